//! End-to-end behaviour of the public API.

use std::borrow::Cow;

use crate::{Filter, DEFAULT_ALLOWLIST};

const BLOCKED: &[&str] = &[
    "fuck*",
    "shit",
    "ass",
    "시발",
    "씨발",
    "병신",
    "ㅂㅅ",
    "ㅅㅂ",
    "개새끼",
];

fn filter() -> Filter {
    Filter::with_default_allowlist(BLOCKED, &[])
}

fn stars(s: &str) -> String {
    "*".repeat(s.chars().count())
}

#[test]
fn evasions_are_fully_masked() {
    let f = filter();
    let cases = [
        "FUCK",
        "ｆｕｃｋ",
        "f u c k",
        "f.u.c.k",
        "f_u_c_k",
        "fuuuuck",
        "f\u{200B}uck",
        "fuсk", // Cyrillic с
        "fúck",
        "fucking",
        "sh1t",
        "$hit",
        "5hit",
        "shiiit",
        "a s s",
        "asss",
        "a55",
        "시발",
        "씨발",
        "ㅅㅣㅂㅏㄹ",
        "시 발",
        "시1발",
        "시.발",
        "시\u{200B}발",
        "\u{1109}\u{1175}\u{1107}\u{1161}\u{11AF}", // conjoining jamo
        "병신",
        "병1신",
        "ㅂㅅ",
        "ㅂ ㅅ",
        "ㅄ",
        "ㅅㅂ",
        "ㅆㅂ",
        "개새끼",
        "개 새 끼",
        "개세끼",
    ];
    for case in cases {
        assert_eq!(f.mask(case), stars(case), "not fully masked: {case:?}");
    }
}

#[test]
fn evasions_inside_sentences() {
    let f = filter();
    let cases = [
        ("you fuck!", "you ****!"),
        ("ok 시발 ok", "ok ** ok"),
        ("개새끼야 꺼져", "***야 꺼져"),
        ("시발아", "**아"),
        ("what the fucking hell", "what the ******* hell"),
        ("this is sh1t.", "this is ****."),
        ("f.u.c.k off", "******* off"),
        ("hey 병신 you ass", "hey ** you ***"),
        ("너 시 발 놈아", "너 *** 놈아"),
        ("so fuck시발", "so ******"),
        ("🙂 fuck 🙂", "🙂 **** 🙂"),
        ("he said 'shit'", "he said '****'"),
        ("shit's sake", "****'s sake"),
        ("f🙂u🙂c🙂k!", "*******!"),
    ];
    for (input, want) in cases {
        assert_eq!(f.mask(input), want, "input {input:?}");
    }
}

#[test]
fn innocent_text_is_untouched() {
    let f = filter();
    let cases = [
        "시발점에서 출발",
        "시발역",
        "갑시다",
        "classic",
        "assassin",
        "as soon as possible",
        "pass the bass",
        "Scunthorpe",
        "hello world",
        "안녕하세요",
        "입시 발표",
        "다시 발견했다",
        "오후 3시 발표",
        "시 발전 계획",
        "shiitake",
        "Matsushita",
        "class assessment",
        "glass",
        "밥시간",
        "let's hit the road",
        "it’s hit or miss",
        "병신년 새해",
        "🙂👍🏽 ok",
        "",
    ];
    for case in cases {
        let out = f.mask(case);
        assert!(
            matches!(out, Cow::Borrowed(_)),
            "masked {case:?} as {out:?}"
        );
        assert!(f.find(case).is_empty());
    }
}

#[test]
fn allowlist_needs_contiguous_words() {
    let f = filter();
    assert_eq!(f.mask("시발점"), "시발점");
    // With a space it is an insult followed by another word.
    assert_eq!(f.mask("시발 점심"), "** 점심");
}

#[test]
fn allowlist_spares_wildcard_hits_inside_innocent_words() {
    let f = Filter::with_default_allowlist(&["*ass*"], &[]);
    assert_eq!(f.mask("classic"), "classic");
    assert_eq!(f.mask("badass move"), "****** move");
    // Without the allow list the wildcard term would hit "classic".
    let bare = Filter::new(&["*ass*"], &[]);
    assert_eq!(bare.mask("classic"), "*******");
    let extra = Filter::with_default_allowlist(&["*ass*"], &["bassoon"]);
    assert_eq!(extra.mask("bassoon"), "bassoon");
}

#[test]
fn find_returns_exact_byte_ranges() {
    let f = filter();
    assert_eq!(f.find("you fuck!"), vec![4..8]);
    assert_eq!(f.find("ok 시발 ok"), vec![3..9]);
    assert_eq!(f.find("shit shit"), vec![0..4, 5..9]);
    // Overlapping hits ("시발" and "ㅅㅂ"-free 씨발 duplicates) merge into one.
    assert_eq!(f.find("씨발씨발"), vec![0..12]);
    // Repeated edge letters are included in the span.
    assert_eq!(f.find("xx ffffuck"), vec![3..10]);
}

#[test]
fn run_counts_and_boundaries() {
    let f = Filter::new(&["ass", "shit"], &[]);
    assert_eq!(f.mask("as"), "as");
    assert_eq!(f.mask("brass"), "brass");
    assert_eq!(f.mask("asset"), "asset");
    assert_eq!(f.mask("1ass"), "1***");
    assert_eq!(f.mask("shits"), "shits");
    let star = Filter::new(&["*shit"], &[]);
    assert_eq!(star.mask("bullshit!"), "********!");
}

#[test]
fn large_lists_still_match() {
    // Past the DFA threshold the automaton kind changes; behaviour must not.
    let mut terms: Vec<String> = (0..400).map(|i| format!("zq{i}x")).collect();
    terms.push("shit".to_owned());
    let f = Filter::new(&terms, &[]);
    assert_eq!(f.mask("oh sh1t"), "oh ****");
    assert_eq!(f.mask("a zq10x b"), "a ***** b");
}

#[test]
fn hangul_syllable_edges() {
    let f = Filter::new(&["ㅂㅅ", "바보"], &[]);
    assert_eq!(f.mask("갑시다"), "갑시다");
    assert_eq!(f.mask("갑바보"), "갑**");
    assert_eq!(f.mask("ㅂㅅ아"), "**아");
}

#[test]
fn mixed_scripts() {
    let f = filter();
    assert_eq!(f.mask("hello 시발 fuck 안녕"), "hello ** **** 안녕");
    assert_eq!(f.mask("ｼ발"), "ｼ발"); // katakana shi is not Hangul
}

#[test]
fn empty_filters() {
    let none: &[&str] = &[];
    let f = Filter::new(none, none);
    assert!(f.is_empty());
    assert!(matches!(f.mask("fuck"), Cow::Borrowed("fuck")));
    let blank = Filter::new(&["", "   ", "*", "**", "2-2"], &[]);
    assert!(blank.is_empty());
    assert!(!filter().is_empty());
    assert!(DEFAULT_ALLOWLIST.contains(&"시발점"));
}

#[test]
fn filter_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Filter>();
}

#[test]
fn odd_input_does_not_panic() {
    let f = filter();
    let long_seps = "., -_ ".repeat(20_000);
    let long_jamo = "ㅋ".repeat(50_000);
    let cases = [
        "\u{0301}",
        "\u{0301}\u{0301}fuck\u{0301}",
        "\u{FFFF}",
        "\u{FFFD}\u{FFFD}",
        "\u{202E}kcuf\u{202C}",
        "\u{3164}\u{115F}\u{1160}",
        "\u{10FFFF}",
        "\u{FDFA}",
        "\u{1100}\u{1161}\u{11A8}\u{11A8}",
        long_seps.as_str(),
        long_jamo.as_str(),
    ];
    for case in cases {
        let out = f.mask(case);
        assert_eq!(out.chars().count(), case.chars().count(), "{case:?}");
    }
    assert_eq!(
        f.mask("\u{0301}\u{0301}fuck\u{0301}"),
        "\u{0301}\u{0301}*****"
    );
}

#[test]
fn long_message_masks_every_hit() {
    let f = filter();
    let text = "fuck 시발 ".repeat(5_000);
    let out = f.mask(&text);
    assert!(out == "**** ** ".repeat(5_000), "some hit left unmasked");
}

/// Small xorshift so the property test needs no extra dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_strings_keep_char_count() {
    // A pool biased towards the interesting characters, plus random scalars.
    let pool: Vec<char> =
        "fuckshita s1$5!|@0ㅅㅂㅏㄹ시발씨병신개새끼 .\u{200B}\u{0301}\u{3164}ｆＵсαㅄ갑"
            .chars()
            .collect();
    let f = filter();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..400 {
        let len = (rng.next() % 40) as usize;
        let s: String = (0..len)
            .map(|_| {
                let r = rng.next();
                if r.is_multiple_of(4) {
                    char::from_u32((r >> 8) as u32 % 0x11_0000).unwrap_or('\u{FFFD}')
                } else {
                    pool[(r >> 8) as usize % pool.len()]
                }
            })
            .collect();
        let out = f.mask(&s);
        assert_eq!(out.chars().count(), s.chars().count(), "{s:?}");
        for r in f.find(&s) {
            assert!(s.is_char_boundary(r.start) && s.is_char_boundary(r.end) && r.start < r.end);
        }
    }
}

/// The fuzz seeds (`fuzz/corpus/normalise`) as an ordinary test: the same properties the fuzz
/// target checks, without a fuzzer.
#[test]
fn fuzz_corpus_keeps_its_properties() {
    let f = Filter::with_default_allowlist(
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
    );
    // Asked at run time (see `moim::source_dir`): a cached test binary may come from another checkout.
    let dir = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../fuzz/corpus/normalise");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus folder exists") {
        let data = std::fs::read(entry.expect("entry").path()).expect("readable seed");
        seen += 1;
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let spans = f.find(text);
        for r in &spans {
            assert!(
                r.start < r.end && text.is_char_boundary(r.start) && text.is_char_boundary(r.end)
            );
        }
        assert!(spans.windows(2).all(|w| w[0].end < w[1].start));
        assert_eq!(f.mask(text).chars().count(), text.chars().count());
    }
    assert!(seen >= 10, "corpus has {seen} seeds");
}
