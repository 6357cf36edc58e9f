//! The one text sanitiser for every free-text field people type (chat messages, room titles,
//! token names, and every later one): control characters, direction controls and invisible
//! characters out, stacks of combining marks cut short, whitespace trimmed, then a length
//! check; text with nothing visible left is empty. Usernames have stricter rules of their own
//! (`auth::check_new_username`).

use unicode_normalization::char::is_combining_mark;

/// Longest chat message, in characters, after cleaning.
pub const MAX_CHARS: usize = 500;

/// Combining marks kept on one base character. Scripts that stack marks (Vietnamese, Thai,
/// Devanagari) use up to three; more is "Zalgo" text that spills over neighbouring lines.
pub const MAX_MARKS_PER_CHAR: usize = 4;

/// Why a text was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TextError {
    Empty,
    TooLong,
}

impl TextError {
    pub fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "empty",
            TextError::TooLong => "too_long",
        }
    }
    pub fn message(&self) -> String {
        match self {
            TextError::Empty => "message is empty".into(),
            TextError::TooLong => format!("message is longer than {MAX_CHARS} characters"),
        }
    }
}

/// Silent characters (marks, joiners, selectors, tags) kept on one base character; a flag
/// needs seven, a keycap two.
pub const MAX_SILENT_PER_CHAR: usize = 8;

/// Characters removed wherever they are: they render as nothing (or reorder what follows) and
/// serve only to disguise text. Every Default_Ignorable code point is one (per Unicode's
/// identifier tables), except the few that [`is_silent`] keeps for emoji and joining scripts.
fn is_stripped(c: char) -> bool {
    use unicode_security::general_security_profile::IdentifierType;
    use unicode_security::GeneralSecurityProfile;
    if is_kept_ignorable(c) {
        return false;
    }
    c.identifier_type() == Some(IdentifierType::Default_Ignorable)
        || matches!(c,
            '\u{00AD}'                      // soft hyphen
            | '\u{034F}'                    // combining grapheme joiner
            | '\u{061C}'                    // Arabic letter mark
            | '\u{115F}' | '\u{1160}'       // Hangul choseong / jungseong fillers
            | '\u{17B4}' | '\u{17B5}'       // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}'       // Mongolian variation selectors and vowel separator
            | '\u{200B}'                    // zero-width space
            | '\u{200E}' | '\u{200F}'       // left-to-right / right-to-left marks
            | '\u{202A}'..='\u{202E}'       // direction embeddings and overrides
            | '\u{2060}'..='\u{206F}'       // word joiner, invisible operators, isolates, deprecated
            | '\u{3164}'                    // Hangul filler
            | '\u{FEFF}'                    // byte-order mark / zero-width no-break space
            | '\u{FFA0}'                    // halfwidth Hangul filler
            | '\u{FFF0}'..='\u{FFF8}'       // unassigned, default-ignorable
        | '\u{FFF9}'..='\u{FFFB}'       // interlinear annotation
        | '\u{E0000}'..='\u{E0FFF}'     // tags and the rest of plane 14 (kept ones excepted above)
            | '\u{1BCA0}'..='\u{1BCA3}'     // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}'     // musical symbol format controls
        )
}

/// Default-ignorable characters real text needs (emoji sequences, Persian and Indic joining,
/// flag tags).
fn is_kept_ignorable(c: char) -> bool {
    matches!(c,
        '\u{200C}' | '\u{200D}'         // zero-width non-joiner / joiner
        | '\u{FE00}'..='\u{FE0F}'       // variation selectors
        | '\u{E0020}'..='\u{E007F}'     // tags
        | '\u{E0100}'..='\u{E01EF}'     // variation selectors supplement
    )
}

/// Characters that show nothing on their own: the kept ignorables, combining marks, and the
/// braille blank.
fn is_silent(c: char) -> bool {
    is_kept_ignorable(c) || is_combining_mark(c) || c == '\u{2800}'
}

/// Cleans one line of text for a field of at most `max_chars` characters: line breaks and tabs
/// become spaces, control, direction and invisible characters go, at most
/// [`MAX_MARKS_PER_CHAR`] combining marks stay on a character, and the ends are trimmed.
/// `Empty` when nothing visible is left.
pub fn clean_line(raw: &str, max_chars: usize) -> Result<String, TextError> {
    let mut out = String::with_capacity(
        raw.len()
            .min(max_chars.saturating_mul(4).saturating_add(16)),
    );
    // Counted since the last character that shows something: joiners and selectors between
    // marks do not start a new count.
    let (mut marks, mut silent) = (0, 0);
    for c in raw.chars() {
        let c = match c {
            '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' => ' ',
            c if c.is_control() || is_stripped(c) => continue,
            c => c,
        };
        if is_silent(c) {
            silent += 1;
            if is_combining_mark(c) {
                marks += 1;
            }
            if silent > MAX_SILENT_PER_CHAR || marks > MAX_MARKS_PER_CHAR {
                continue;
            }
        } else {
            (marks, silent) = (0, 0);
        }
        out.push(c);
    }
    let trimmed = out.trim();
    if !trimmed.chars().any(|c| !c.is_whitespace() && !is_silent(c)) {
        return Err(TextError::Empty);
    }
    if trimmed.chars().count() > max_chars {
        return Err(TextError::TooLong);
    }
    Ok(trimmed.to_string())
}

/// Cleans text of several lines (a post, a comment) of at most `max_chars` characters: each
/// line as [`clean_line`] would, line breaks kept (`\r\n` as `\n`), at most one empty line in a
/// row, the ends trimmed. `Empty` when nothing visible is left.
pub fn clean_block(raw: &str, max_chars: usize) -> Result<String, TextError> {
    let mut lines: Vec<String> = Vec::new();
    for line in raw.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match clean_line(line, usize::MAX) {
            Ok(l) => lines.push(l),
            Err(TextError::Empty) => {
                if lines.last().is_some_and(|l| !l.is_empty()) {
                    lines.push(String::new());
                }
            }
            Err(e) => return Err(e),
        }
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return Err(TextError::Empty);
    }
    let out = lines.join("\n");
    if out.chars().count() > max_chars {
        return Err(TextError::TooLong);
    }
    Ok(out)
}

/// A chat message: [`clean_line`] with [`MAX_CHARS`].
pub fn clean(raw: &str) -> Result<String, TextError> {
    clean_line(raw, MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_lines() {
        assert_eq!(
            clean_block("\n\n first\r\n\n\n\n second \u{202E}line\n\n", 100).unwrap(),
            "first\n\nsecond line"
        );
        assert_eq!(clean_block(" \n\u{200B}\n ", 100), Err(TextError::Empty));
        assert_eq!(clean_block("abc\ndef", 6), Err(TextError::TooLong));
    }

    #[test]
    fn cleans_and_checks() {
        assert_eq!(clean("  hi \u{0}there\u{7}  ").unwrap(), "hi there");
        assert_eq!(clean("a\nb").unwrap(), "a b");
        assert_eq!(clean("\u{202E}evil").unwrap(), "evil");
        assert_eq!(clean("안녕 하세요").unwrap(), "안녕 하세요");
        assert_eq!(clean("   ").unwrap_err(), TextError::Empty);
        assert_eq!(clean("\u{1}\u{2}").unwrap_err(), TextError::Empty);
        assert_eq!(clean(&"가".repeat(500)).unwrap().chars().count(), 500);
        assert_eq!(clean(&"가".repeat(501)).unwrap_err(), TextError::TooLong);
        // Surrounding whitespace does not count toward the limit.
        assert!(clean(&format!("  {}  ", "x".repeat(500))).is_ok());
    }

    #[test]
    fn invisible_only_text_is_empty() {
        for raw in [
            "\u{200B}\u{200B}\u{200B}",
            "\u{FEFF}",
            "\u{3164}\u{3164}",
            "\u{115F}\u{1160}",
            "\u{200E}\u{200F}\u{2066}",
            "\u{200D}\u{FE0F}",
            "\u{2800}\u{2800}",
            "\u{3000}\u{00A0} \u{200B}",
            "\u{0301}\u{0301}",
        ] {
            assert_eq!(clean(raw), Err(TextError::Empty), "{raw:?}");
        }
    }

    #[test]
    fn invisible_characters_inside_text_go() {
        assert_eq!(clean("ad\u{200B}min").unwrap(), "admin");
        assert_eq!(clean("\u{FEFF}hello\u{2060}").unwrap(), "hello");
        assert_eq!(clean("a\u{200F}b\u{2067}c").unwrap(), "abc");
        assert_eq!(clean("ㅋ\u{3164}ㅋ").unwrap(), "ㅋㅋ");
    }

    #[test]
    fn stacks_of_combining_marks_are_cut_short() {
        let zalgo = format!("a{}b", "\u{0301}".repeat(499));
        let cleaned = clean(&zalgo).unwrap();
        assert_eq!(
            cleaned,
            format!("a{}b", "\u{0301}".repeat(MAX_MARKS_PER_CHAR))
        );
        // Real text keeps its marks: Vietnamese stacks two, Devanagari and Thai use them too.
        for real in ["Việt Nam", "ệ", "नमस्ते", "สวัสดี", "e\u{0301}"] {
            assert_eq!(clean(real).unwrap(), real);
        }
    }

    #[test]
    fn joiners_between_marks_do_not_reset_the_count() {
        let sneaky = format!(
            "a{}",
            "\u{0301}\u{0301}\u{0301}\u{0301}\u{200D}".repeat(100)
        );
        let cleaned = clean(&sneaky).unwrap();
        let marks = cleaned.chars().filter(|c| is_combining_mark(*c)).count();
        assert!(marks <= MAX_MARKS_PER_CHAR, "{marks} marks kept");
        assert!(cleaned.chars().count() <= 1 + MAX_SILENT_PER_CHAR);
        // Other default-ignorables and line separators.
        assert_eq!(clean("a\u{FFF0}b\u{E0001}c").unwrap(), "abc");
        assert_eq!(clean("a\u{2028}b\u{2029}c").unwrap(), "a b c");
    }

    #[test]
    fn emoji_sequences_survive() {
        for emoji in [
            "👩\u{200D}👩\u{200D}👧",
            "❤\u{FE0F}",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "👍🏽",
        ] {
            assert_eq!(clean(emoji).unwrap(), emoji);
        }
    }

    #[test]
    fn fields_have_their_own_length() {
        assert!(clean_line(&"x".repeat(64), 64).is_ok());
        assert_eq!(clean_line(&"x".repeat(65), 64), Err(TextError::TooLong));
    }

    /// Every fuzz seed (and any crash the fuzzer saved there) keeps the sanitiser's promises.
    #[test]
    fn fuzz_corpus_keeps_the_rules() {
        let dir = source_dir!().join("fuzz/corpus/free_text");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus folder exists") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let Ok(raw) = std::str::from_utf8(&bytes) else {
                continue;
            };
            if let Ok(clean) = clean_line(raw, MAX_CHARS) {
                assert!(
                    !clean.chars().any(|c| c.is_control() || is_stripped(c)),
                    "{raw:?}"
                );
                assert!(clean.chars().any(|c| !c.is_whitespace() && !is_silent(c)));
                let (mut marks, mut silent) = (0, 0);
                for c in clean.chars() {
                    if is_silent(c) {
                        silent += 1;
                        marks += usize::from(is_combining_mark(c));
                    } else {
                        (marks, silent) = (0, 0);
                    }
                    assert!(
                        marks <= MAX_MARKS_PER_CHAR && silent <= MAX_SILENT_PER_CHAR,
                        "{raw:?}"
                    );
                }
                assert_eq!(
                    clean_line(&clean, MAX_CHARS).as_ref(),
                    Ok(&clean),
                    "{raw:?}"
                );
            }
            seen += 1;
        }
        assert!(seen >= 15, "corpus has {seen} seeds");
    }
}
