//! Text search of posts that works for Korean on both databases.
//!
//! Korean words are short: 맛집 and 병원 are two syllables, and a trigram index (PostgreSQL's
//! `pg_trgm`, SQLite's FTS5 trigram tokenizer) cannot find a word shorter than three characters
//! by its index. So moim keeps its own index: each post's normalised text ([`normalise`]: NFC,
//! lower case) cut into the **two-character pieces** of every word, plus the single characters
//! of words outside ASCII (one syllable is a word in Korean: 개, 빵), in a plain table
//! `post_grams(gram, post_id)` with a B-tree on `(gram, post_id)`. A query is cut the same way;
//! a post matches when it holds every piece (`GROUP BY post_id HAVING COUNT(*) = n`), and then
//! every query word is checked against the text with `LIKE`, since holding the pieces is not
//! the same as holding them in order. The same SQL runs on SQLite and PostgreSQL.

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization;

/// Characters of a post's text that are indexed (the title, tags and place come first).
pub const INDEXED_CHARS: usize = 4000;
/// Words of a query that count.
pub const MAX_QUERY_WORDS: usize = 8;
/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

/// NFC and lower case: what is indexed and what is searched.
pub fn normalise(text: &str) -> String {
    text.nfc().flat_map(char::to_lowercase).collect()
}

/// The words of normalised text: runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// The pieces one word is found by: its two-character pieces, or the word itself when it is a
/// single character outside ASCII; nothing for a single ASCII character.
fn word_grams(word: &str, out: &mut BTreeSet<String>) {
    let chars: Vec<char> = word.chars().collect();
    match chars.len() {
        0 => {}
        1 if chars[0].is_ascii() => {}
        1 => {
            out.insert(chars[0].to_string());
        }
        _ => {
            for pair in chars.windows(2) {
                out.insert(pair.iter().collect());
            }
        }
    }
}

/// The index entries of a post's normalised text.
pub fn grams(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let cut: String = text.chars().take(INDEXED_CHARS).collect();
    for w in words(&cut) {
        word_grams(w, &mut out);
        // Single characters of longer non-ASCII words too, so 개 finds 강아지 개껌.
        if w.chars().count() > 1 {
            for c in w.chars().filter(|c| !c.is_ascii()) {
                out.insert(c.to_string());
            }
        }
    }
    out
}

/// A query, parsed: the pieces a post must hold and the words it must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub grams: Vec<String>,
    pub words: Vec<String>,
}

/// Parses a query; `None` when it has no word at all.
pub fn query(raw: &str) -> Option<Query> {
    let text = normalise(raw);
    let mut ws: Vec<String> = Vec::new();
    for w in words(&text) {
        if ws.len() == MAX_QUERY_WORDS {
            break;
        }
        if !ws.iter().any(|x| x == w) {
            ws.push(w.to_string());
        }
    }
    if ws.is_empty() {
        return None;
    }
    let mut grams = BTreeSet::new();
    for w in &ws {
        word_grams(w, &mut grams);
    }
    Some(Query {
        grams: grams.into_iter().collect(),
        words: ws,
    })
}

/// `%word%` for `LIKE … ESCAPE '\'`.
pub fn like_pattern(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_syllable_words_are_indexed_and_queried_by_their_pair() {
        let g = grams(&normalise("강남 맛집 추천! Best Coffee"));
        for want in ["강남", "맛집", "집추", "be", "co", "ee", "맛", "집"] {
            if want == "집추" {
                assert!(!g.contains(want), "pieces do not cross words");
            } else {
                assert!(g.contains(want), "{want} missing from {g:?}");
            }
        }
        let q = query("맛집").unwrap();
        assert_eq!(q.grams, ["맛집"]);
        assert_eq!(q.words, ["맛집"]);
        let q = query("동물 병원").unwrap();
        assert_eq!(q.grams, ["동물", "병원"]);
    }

    #[test]
    fn one_syllable_and_ascii_queries() {
        let q = query("개").unwrap();
        assert_eq!(q.grams, ["개"]);
        assert!(grams(&normalise("강아지 개껌")).contains("개"));
        // One ASCII letter has no pieces: only the LIKE check applies.
        let q = query("a").unwrap();
        assert!(q.grams.is_empty());
        assert_eq!(q.words, ["a"]);
        assert_eq!(query("  !!  "), None);
    }

    #[test]
    fn normalisation_meets_in_the_middle() {
        // Decomposed Hangul (NFD, as macOS file names) finds composed text.
        let nfd: String = "맛집".nfd().collect();
        assert_eq!(query(&nfd).unwrap().grams, ["맛집"]);
        assert_eq!(normalise("CAFÉ"), "café");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
