//! The cookies and links a sign-in through a provider carries (`moim_signin`, `moim_pending`, the
//! connect ticket) come back from the browser as any bytes: they open only when moim sealed them
//! for that purpose and they have not expired, and opening never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moim::signin::Sealer;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let sealer = Sealer::new(b"fuzz key".to_vec());
    for purpose in ["flow", "pending", "link"] {
        // Forged input never opens (the signature needs the key).
        assert!(sealer.open::<serde_json::Value>(purpose, s, 0).is_none());
    }
    // What is sealed opens as itself, for its purpose only.
    let sealed = sealer.seal("flow", &s, 10);
    assert_eq!(
        sealer.open::<String>("flow", &sealed, 9).as_deref(),
        Some(s)
    );
    assert!(sealer.open::<String>("pending", &sealed, 9).is_none());
    assert!(sealer.open::<String>("flow", &sealed, 10).is_none());
});
