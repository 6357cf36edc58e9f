//! `Host`, `Origin` and `X-Forwarded-Proto` come from whoever sends the request: the checks
//! answer yes or no for any of them, never panic, and never let a foreign origin through.
//! Input: up to three lines (Host, Origin, X-Forwarded-Proto).
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use moim::auth::origin::Site;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let mut headers = HeaderMap::new();
    for name in ["host", "origin", "x-forwarded-proto"] {
        if let Some(Ok(v)) = lines.next().map(HeaderValue::from_bytes) {
            headers.append(name, v);
        }
    }
    for site in [
        Site::new(None, false),
        Site::new(None, true),
        Site::new(Some("https://moim.example"), false),
    ] {
        let _ = site.check_host(&headers);
        let _ = site.check_origin(&headers);
    }
    // An origin passes only when it names the host the request came by.
    if let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) {
        let public = Site::new(Some("https://moim.example"), false);
        if public.check_origin(&headers).is_ok() {
            let host = headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let host = host.trim_end_matches(":80").trim_end_matches(":443");
            assert!(origin.to_ascii_lowercase().contains(host));
        }
    }
});
