//! Every free-text field (chat, titles, token names, blocked terms) goes through one sanitiser:
//! whatever comes in, what comes out has no control or invisible-only characters, no stack of
//! more than four combining marks, fits its length, has something visible, and cleaning it
//! again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moim::domain::text::{clean_line, TextError, MAX_MARKS_PER_CHAR, MAX_SILENT_PER_CHAR};
use unicode_normalization::char::is_combining_mark;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for max in [1, 64, 500] {
        match clean_line(s, max) {
            Ok(clean) => {
                assert!(clean.chars().count() <= max);
                assert!(!clean.chars().any(char::is_control));
                assert!(!clean.contains(['\u{200B}', '\u{FEFF}', '\u{3164}', '\u{202E}']));
                // Marks (and silent characters in all) since the last visible character.
                let (mut marks, mut silent) = (0, 0);
                for c in clean.chars() {
                    let mark = is_combining_mark(c);
                    let quiet = mark
                        || matches!(c, '\u{200C}' | '\u{200D}' | '\u{2800}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0020}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}');
                    if quiet {
                        silent += 1;
                        marks += usize::from(mark);
                    } else {
                        (marks, silent) = (0, 0);
                    }
                    assert!(marks <= MAX_MARKS_PER_CHAR && silent <= MAX_SILENT_PER_CHAR);
                }
                assert_eq!(clean.trim(), clean);
                assert_eq!(clean_line(&clean, max).as_deref(), Ok(clean.as_str()));
            }
            Err(TextError::Empty) | Err(TextError::TooLong) => {}
        }
    }
});
