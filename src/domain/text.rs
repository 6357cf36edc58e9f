//! Chat text rules: control characters out, whitespace trimmed, 1–500 characters.

/// Longest message, in characters, after cleaning.
pub const MAX_CHARS: usize = 500;

/// Why a message text was refused.
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

/// Removes control characters (and bidi overrides that could disguise text), turning line
/// breaks and tabs into spaces, then trims and checks the length.
pub fn clean(raw: &str) -> Result<String, TextError> {
    let cleaned: String = raw
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() => None,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => None,
            c => Some(c),
        })
        .collect();
    let trimmed = cleaned.trim();
    let len = trimmed.chars().count();
    if len == 0 {
        Err(TextError::Empty)
    } else if len > MAX_CHARS {
        Err(TextError::TooLong)
    } else {
        Ok(trimmed.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
