//! Where a state-changing request may come from: the `Host` it names (against DNS rebinding)
//! and the `Origin` a browser sends (against cross-site request forgery). Both are checked on
//! every state-changing request and WebSocket upgrade; see docs/operations.md, "Limits and
//! abuse".

use axum::http::{header, HeaderMap};

/// Why a request was refused, for its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The `Host` header names a site other than this one.
    Host,
    /// More than one `Origin` header.
    TwoOrigins,
    /// `Origin` (or `Sec-Fetch-Site`) says another site.
    CrossSite,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Host => {
                "the Host header names another site; moim answers state-changing requests only for its own address (set --public-url)"
            }
            Refusal::TwoOrigins => "more than one Origin header",
            Refusal::CrossSite => "cross-site request refused",
        }
    }
}

/// The site moim serves, as far as requests are checked against it.
#[derive(Debug, Clone)]
pub struct Site {
    /// `scheme://host[:port]` of the configured public URL, lowercased, default port dropped.
    public: Option<Origin>,
    /// Take the scheme from `X-Forwarded-Proto` (a trusted proxy terminates TLS).
    trust_proxy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    /// Host and port as written in a `Host` header, lowercased, default port dropped.
    authority: String,
}

impl Origin {
    /// Parses `scheme://host[:port]` (anything after the authority is ignored; userinfo is not
    /// an origin and makes it invalid).
    fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let authority = rest.split(['/', '?', '#']).next()?;
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        Some(Origin {
            authority: normalise_authority(&scheme, authority),
            scheme,
        })
    }
}

/// Lowercases and drops the scheme's default port (`example.org:443` for https).
fn normalise_authority(scheme: &str, authority: &str) -> String {
    let lower = authority.to_ascii_lowercase();
    let default = if scheme == "https" { ":443" } else { ":80" };
    match lower.strip_suffix(default) {
        Some(bare) => bare.to_string(),
        None => lower,
    }
}

/// True for a `Host` that cannot be a rebound DNS name: an IP literal, `localhost` or a name
/// under `.localhost` (which resolvers keep on the machine).
fn is_literal_or_localhost(host_header: &str) -> bool {
    let host = if let Some(rest) = host_header.strip_prefix('[') {
        // [v6]:port
        return rest
            .split(']')
            .next()
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host_header
            .rsplit_once(':')
            .map_or(host_header, |(h, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    host_header
                }
            })
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host.parse::<std::net::Ipv4Addr>().is_ok()
        || host == "localhost"
        || host.ends_with(".localhost")
}

impl Site {
    pub fn new(public_url: Option<&str>, trust_proxy: bool) -> Site {
        Site {
            public: public_url.and_then(Origin::parse),
            trust_proxy,
        }
    }

    fn host(headers: &HeaderMap) -> Option<&str> {
        headers.get(header::HOST).and_then(|h| h.to_str().ok())
    }

    /// The scheme this request reached moim by.
    fn scheme<'h>(&self, headers: &'h HeaderMap) -> &'h str {
        if self.trust_proxy {
            if let Some(proto) = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .map(str::trim)
            {
                if proto.eq_ignore_ascii_case("https") {
                    return "https";
                }
            }
        }
        "http"
    }

    /// True when `host` is the public URL's host.
    fn is_public(&self, host: &str) -> bool {
        self.public
            .as_ref()
            .is_some_and(|p| normalise_authority(&p.scheme, host) == p.authority)
    }

    /// The `Host` check: the public URL's host, or a name that cannot be rebound (an IP
    /// literal or `localhost`).
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        match Site::host(headers) {
            Some(host) if self.is_public(host) || is_literal_or_localhost(host) => Ok(()),
            _ => Err(Refusal::Host),
        }
    }

    /// The CSRF check for a request a browser could make with the user's cookies: its one
    /// `Origin` must be this site (scheme, host and port), or without `Origin`, its
    /// `Sec-Fetch-Site` must say same-origin. Requests with neither come from programs, which
    /// cannot carry a victim's cookies.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        if let Some(origin) = origins.next() {
            if origins.next().is_some() {
                return Err(Refusal::TwoOrigins);
            }
            let origin = origin
                .to_str()
                .ok()
                .and_then(Origin::parse)
                .ok_or(Refusal::CrossSite)?;
            // This site as the request names it: the public origin when it came by the public
            // host, else the scheme it came by and its Host.
            let host = Site::host(headers).ok_or(Refusal::CrossSite)?;
            let expected = match &self.public {
                Some(public) if self.is_public(host) => public.clone(),
                _ => {
                    let scheme = self.scheme(headers);
                    Origin {
                        authority: normalise_authority(scheme, host),
                        scheme: scheme.to_string(),
                    }
                }
            };
            return if origin == expected {
                Ok(())
            } else {
                Err(Refusal::CrossSite)
            };
        }
        match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some("same-origin") | Some("none") | None => Ok(()),
            Some(_) => Err(Refusal::CrossSite),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(list: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn without_a_public_url_only_unreboundable_hosts_pass() {
        let site = Site::new(None, false);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "app.localhost",
            "[::1]:8080",
            "192.168.1.5",
        ] {
            assert!(site.check_host(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil",
        ] {
            assert_eq!(
                site.check_host(&headers(&[("host", bad)])),
                Err(Refusal::Host),
                "{bad}"
            );
        }
        assert_eq!(site.check_host(&HeaderMap::new()), Err(Refusal::Host));
    }

    #[test]
    fn with_a_public_url_its_host_and_unreboundable_ones_pass() {
        let site = Site::new(Some("https://moim.example"), true);
        for ok in [
            "moim.example",
            "MOIM.example:443",
            "127.0.0.1:8080",
            "localhost",
        ] {
            assert!(site.check_host(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        assert!(site
            .check_host(&headers(&[("host", "evil.example")]))
            .is_err());
        let public_host = ("host", "moim.example");
        assert!(site
            .check_origin(&headers(&[public_host, ("origin", "https://moim.example")]))
            .is_ok());
        assert_eq!(
            site.check_origin(&headers(&[public_host, ("origin", "http://moim.example")])),
            Err(Refusal::CrossSite),
            "another scheme is another origin"
        );
        assert_eq!(
            site.check_origin(&headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://moim.example")
            ])),
            Err(Refusal::CrossSite),
            "the origin must be the host the request came by"
        );
    }

    #[test]
    fn the_origin_must_match_scheme_host_and_port() {
        let site = Site::new(None, false);
        let host = ("host", "127.0.0.1:8080");
        assert!(site
            .check_origin(&headers(&[host, ("origin", "http://127.0.0.1:8080")]))
            .is_ok());
        for bad in [
            "https://127.0.0.1:8080",
            "http://127.0.0.1:8081",
            "http://127.0.0.1",
            "http://evil.example",
            "null",
            "http://127.0.0.1:8080.evil.example",
            "http://user@127.0.0.1:8080",
            "file://127.0.0.1:8080",
        ] {
            assert_eq!(
                site.check_origin(&headers(&[host, ("origin", bad)])),
                Err(Refusal::CrossSite),
                "{bad}"
            );
        }
        assert_eq!(
            site.check_origin(&headers(&[
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ])),
            Err(Refusal::TwoOrigins)
        );
        assert!(site
            .check_origin(&headers(&[host, ("sec-fetch-site", "same-origin")]))
            .is_ok());
        assert!(site
            .check_origin(&headers(&[host, ("sec-fetch-site", "cross-site")]))
            .is_err());
        assert!(site.check_origin(&headers(&[host])).is_ok());
    }

    #[test]
    fn behind_a_trusted_proxy_the_forwarded_scheme_counts() {
        let site = Site::new(None, true);
        let h = headers(&[
            ("host", "10.0.0.5"),
            ("x-forwarded-proto", "https"),
            ("origin", "https://10.0.0.5"),
        ]);
        assert!(site.check_origin(&h).is_ok());
        let untrusted = Site::new(None, false);
        assert!(untrusted.check_origin(&h).is_err());
    }

    /// Every fuzz seed gets an answer; an origin passes only for the host the request names.
    #[test]
    fn fuzz_corpus_gets_answers() {
        let dir = source_dir!().join("fuzz/corpus/request_origin");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus folder exists") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let mut lines = bytes.split(|&b| b == b'\n');
            let mut h = HeaderMap::new();
            for name in ["host", "origin", "x-forwarded-proto"] {
                if let Some(Ok(v)) = lines.next().map(HeaderValue::from_bytes) {
                    h.append(name, v);
                }
            }
            for site in [Site::new(None, false), Site::new(None, true)] {
                let _ = (site.check_host(&h), site.check_origin(&h));
            }
            let public = Site::new(Some("https://moim.example"), false);
            if h.contains_key("origin") && public.check_origin(&h).is_ok() {
                let host = h.get("host").and_then(|v| v.to_str().ok()).unwrap_or("");
                let host = host.to_ascii_lowercase();
                let host = host.trim_end_matches(":80").trim_end_matches(":443");
                let origin = h
                    .get("origin")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_ascii_lowercase();
                assert!(origin.contains(host), "{origin} via {host}");
            }
            seen += 1;
        }
        assert!(seen >= 10, "corpus has {seen} seeds");
    }
}
