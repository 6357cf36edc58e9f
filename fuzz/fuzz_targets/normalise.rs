//! Fuzzes normalisation and matching: any UTF-8 input must neither panic nor
//! change the number of chars when masked.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use moim_filter::Filter;

fn filter() -> &'static Filter {
    static FILTER: OnceLock<Filter> = OnceLock::new();
    FILTER.get_or_init(|| {
        Filter::with_default_allowlist(
            &[
                "fuck*",
                "*shit",
                "ass",
                "시발",
                "씨발",
                "병신",
                "ㅂㅅ",
                "ㅅㅂ",
                "개새끼",
                "ㅋ",
            ],
            &["classic"],
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = filter();
    let spans = f.find(text);
    for r in &spans {
        assert!(r.start < r.end && text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
    }
    assert!(spans.windows(2).all(|w| w[0].end < w[1].start));
    let masked = f.mask(text);
    assert_eq!(masked.chars().count(), text.chars().count());
});
