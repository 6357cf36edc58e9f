//! The skeleton: a text folded into collapsed runs of comparable units, each
//! run remembering which original chars (and so which bytes) it came from.

use std::cell::OnceCell;

use crate::fold::{fold_char, is_invisible, is_jamo_unit, is_spaceless, Folded};

/// Zero-width/filler/combining char: no unit, transparent to boundary checks.
pub(crate) const INVISIBLE: u8 = 1;
pub(crate) const SPACE: u8 = 2;
/// Letter or digit of any script.
pub(crate) const ALNUM: u8 = 4;
/// Produced at least one real (non-leet) letter unit.
pub(crate) const WORD: u8 = 8;
/// A WORD char outside the spaceless scripts: it defines Latin word boundaries.
pub(crate) const LATIN: u8 = 16;
/// Produced a leet unit, so the leet pass is worth running.
pub(crate) const LEET: u8 = 32;
/// Apostrophe, which continues a word after a letter ("it's hit").
pub(crate) const APOS: u8 = 64;

const NONE: usize = usize::MAX;

#[derive(Clone, Copy, Debug)]
pub(crate) struct CharInfo {
    pub start: usize,
    pub end: usize,
    pub flags: u8,
}

impl CharInfo {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A maximal run of one repeated unit.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub ch: char,
    pub count: usize,
    /// Index of the run's first unit in `Skeleton::unit_char`.
    pub first_unit: usize,
}

/// Unit flag: first unit of its original char (syllable).
pub(crate) const STARTS: u8 = 1;
/// Unit flag: last unit of its original char (syllable).
pub(crate) const ENDS: u8 = 2;

/// One pass over the text: either digits/symbols dropped, or leet-mapped.
pub(crate) struct Skeleton {
    /// One char per run; this is what the automata search.
    pub key: String,
    run_byte: Vec<usize>,
    pub runs: Vec<Run>,
    /// Original char index of every unit.
    pub unit_char: Vec<usize>,
    /// STARTS/ENDS of every unit.
    pub unit_flags: Vec<u8>,
    /// `sep_prefix[i]` = separators among chars `..i` (visible chars with
    /// no unit); only needed for allow-list hits, so built on demand.
    sep_prefix: OnceCell<Vec<usize>>,
}

impl Skeleton {
    fn build(chars: &[CharInfo], items: &[Folded], item_start: &[usize], leet: bool) -> Self {
        let mut sk = Skeleton {
            key: String::with_capacity(items.len()),
            run_byte: Vec::with_capacity(items.len()),
            runs: Vec::with_capacity(items.len()),
            unit_char: Vec::with_capacity(items.len()),
            unit_flags: Vec::with_capacity(items.len()),
            sep_prefix: OnceCell::new(),
        };
        for i in 0..chars.len() {
            let mine = items.get(item_start[i]..item_start[i + 1]).unwrap_or(&[]);
            let n = if leet {
                mine.len()
            } else {
                mine.iter().filter(|f| !f.leet).count()
            };
            let mut k = 0;
            for f in mine {
                if leet || !f.leet {
                    k += 1;
                    sk.push(f.ch, i, k == 1, k == n);
                }
            }
        }
        sk
    }

    fn push(&mut self, ch: char, char_idx: usize, starts: bool, ends: bool) {
        let unit = self.unit_char.len();
        self.unit_char.push(char_idx);
        let flags = if starts { STARTS } else { 0 } | if ends { ENDS } else { 0 };
        self.unit_flags.push(flags);
        if let Some(run) = self.runs.last_mut().filter(|r| r.ch == ch) {
            run.count += 1;
            return;
        }
        self.run_byte.push(self.key.len());
        self.key.push(ch);
        self.runs.push(Run {
            ch,
            count: 1,
            first_unit: unit,
        });
    }

    /// First and last (inclusive) run covered by the key byte range `start..end`.
    pub fn runs_between(&self, start: usize, end: usize) -> (usize, usize) {
        let first = self.run_byte.partition_point(|&b| b < start);
        let past = self.run_byte.partition_point(|&b| b < end);
        (first, past.saturating_sub(1).max(first))
    }

    /// Number of separator chars among original chars `a..=b`.
    pub fn separators(&self, chars: &[CharInfo], a: usize, b: usize) -> usize {
        let prefix = self.sep_prefix.get_or_init(|| {
            let mut produced = vec![false; chars.len()];
            for &c in &self.unit_char {
                if let Some(slot) = produced.get_mut(c) {
                    *slot = true;
                }
            }
            let mut prefix = Vec::with_capacity(chars.len() + 1);
            let mut total = 0;
            prefix.push(0);
            for (info, made) in chars.iter().zip(produced) {
                total += usize::from(!made && !info.has(INVISIBLE));
                prefix.push(total);
            }
            prefix
        });
        let hi = prefix.get(b + 1).copied().unwrap_or(0);
        let lo = prefix.get(a).copied().unwrap_or(0);
        hi.saturating_sub(lo)
    }
}

/// Per-char lookups used to judge candidate matches.
struct Neighbours {
    prev_vis: Vec<usize>,
    next_vis: Vec<usize>,
    space_prefix: Vec<usize>,
}

impl Neighbours {
    fn new(chars: &[CharInfo]) -> Self {
        let n = chars.len();
        let mut prev_vis = vec![NONE; n];
        let mut last = NONE;
        for (i, c) in chars.iter().enumerate() {
            prev_vis[i] = last;
            if !c.has(INVISIBLE) {
                last = i;
            }
        }
        let mut next_vis = vec![NONE; n];
        last = NONE;
        for i in (0..n).rev() {
            next_vis[i] = last;
            if !chars[i].has(INVISIBLE) {
                last = i;
            }
        }
        let mut space_prefix = Vec::with_capacity(n + 1);
        let mut total = 0;
        space_prefix.push(0);
        for c in chars {
            total += usize::from(c.has(SPACE));
            space_prefix.push(total);
        }
        Neighbours {
            prev_vis,
            next_vis,
            space_prefix,
        }
    }
}

/// A text prepared for matching: per-char facts plus one or two skeletons.
pub(crate) struct Text {
    pub chars: Vec<CharInfo>,
    /// Built on demand: most messages have no candidate match at all.
    near: OnceCell<Neighbours>,
    /// `[dropped]`, or `[dropped, leet]` when the text has any leet char.
    pub passes: Vec<Skeleton>,
    /// First/last char of the word around each WORD char (for `*` terms).
    words: OnceCell<(Vec<usize>, Vec<usize>)>,
}

impl Text {
    pub fn new(s: &str) -> Self {
        let mut chars = Vec::with_capacity(s.len());
        let mut items: Vec<Folded> = Vec::with_capacity(s.len() * 2);
        let mut item_start = Vec::with_capacity(s.len() + 1);
        let mut any_leet = false;
        for (start, c) in s.char_indices() {
            item_start.push(items.len());
            let before = items.len();
            fold_char(c, &mut items);
            let mine = &items[before..];
            let mut flags = 0;
            if mine.is_empty() && is_invisible(c) {
                flags |= INVISIBLE;
            }
            if c.is_whitespace() {
                flags |= SPACE;
            }
            if matches!(c, '\'' | '\u{2019}' | '\u{02BC}') {
                flags |= APOS;
            }
            if c.is_alphanumeric() {
                flags |= ALNUM;
            }
            if mine.iter().any(|f| !f.leet) {
                flags |= WORD;
                if !is_spaceless(c) && !mine.iter().any(|f| is_jamo_unit(f.ch)) {
                    flags |= LATIN;
                }
            }
            if mine.iter().any(|f| f.leet) {
                flags |= LEET;
                any_leet = true;
            }
            chars.push(CharInfo {
                start,
                end: start + c.len_utf8(),
                flags,
            });
        }
        item_start.push(items.len());
        let mut passes = vec![Skeleton::build(&chars, &items, &item_start, false)];
        if any_leet {
            passes.push(Skeleton::build(&chars, &items, &item_start, true));
        }
        Text {
            chars,
            near: OnceCell::new(),
            passes,
            words: OnceCell::new(),
        }
    }

    fn near(&self) -> &Neighbours {
        self.near.get_or_init(|| Neighbours::new(&self.chars))
    }

    /// Nearest non-invisible char before char `i`.
    pub fn prev_visible(&self, i: usize) -> Option<&CharInfo> {
        self.near().prev_vis.get(i).and_then(|&j| self.chars.get(j))
    }

    /// Whether char `i` continues a Latin word from the left: the previous
    /// visible char is a letter, or an apostrophe right after one.
    pub fn latin_before(&self, i: usize) -> bool {
        let near = self.near();
        let prev = |j: usize| near.prev_vis.get(j).copied().unwrap_or(NONE);
        let j = prev(i);
        match self.chars.get(j) {
            Some(c) if c.has(LATIN) => true,
            Some(c) if c.has(APOS) => self.chars.get(prev(j)).is_some_and(|c| c.has(LATIN)),
            _ => false,
        }
    }

    /// Nearest non-invisible char after char `i`.
    pub fn next_visible(&self, i: usize) -> Option<&CharInfo> {
        self.near().next_vis.get(i).and_then(|&j| self.chars.get(j))
    }

    /// Whether any whitespace char lies among chars `a..=b`.
    pub fn has_space(&self, a: usize, b: usize) -> bool {
        let hi = self.near().space_prefix.get(b + 1).copied().unwrap_or(0);
        let lo = self.near().space_prefix.get(a).copied().unwrap_or(0);
        hi > lo
    }

    /// Widens chars `a..=b` to the whole surrounding word on the chosen sides.
    pub fn widen(&self, a: usize, b: usize, left: bool, right: bool) -> (usize, usize) {
        let (first, last) = self.words.get_or_init(|| self.word_extents());
        let mut a2 = a;
        let mut b2 = b;
        if left {
            let j = self.near().prev_vis.get(a).copied().unwrap_or(NONE);
            if let Some(&f) = first.get(j).filter(|&&f| f != NONE) {
                a2 = a2.min(f);
            }
        }
        if right {
            let j = self.near().next_vis.get(b).copied().unwrap_or(NONE);
            if let Some(&l) = last.get(j).filter(|&&l| l != NONE) {
                b2 = b2.max(l);
            }
        }
        (a2, b2)
    }

    /// For each WORD char, the first and last WORD char of its word (words
    /// may contain invisibles); NONE elsewhere. Linear, so widening stays cheap.
    fn word_extents(&self) -> (Vec<usize>, Vec<usize>) {
        let n = self.chars.len();
        let mut first = vec![NONE; n];
        let mut last = vec![NONE; n];
        let mut cur = NONE;
        for (i, c) in self.chars.iter().enumerate() {
            if c.has(WORD) {
                if cur == NONE {
                    cur = i;
                }
                first[i] = cur;
            } else if !c.has(INVISIBLE) {
                cur = NONE;
            }
        }
        cur = NONE;
        for i in (0..n).rev() {
            let c = &self.chars[i];
            if c.has(WORD) {
                if cur == NONE {
                    cur = i;
                }
                last[i] = cur;
            } else if !c.has(INVISIBLE) {
                cur = NONE;
            }
        }
        (first, last)
    }
}

/// A blocked or allowed term reduced to its run string and run counts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TermKey {
    pub key: String,
    pub counts: Vec<usize>,
    pub first: char,
    pub last: char,
}

/// Normalises a term. Latin terms use the leet pass, so an admin's "$hit"
/// means "shit" rather than "hit"; Korean terms drop digits ("시1발" = 시발).
pub(crate) fn term_key(term: &str) -> Option<TermKey> {
    let text = Text::new(term);
    let plain = text.passes.first()?;
    let korean = plain.runs.iter().any(|r| is_jamo_unit(r.ch));
    let chosen = if korean { plain } else { text.passes.last()? };
    let first = chosen.runs.first()?.ch;
    let last = chosen.runs.last()?.ch;
    Some(TermKey {
        key: chosen.key.clone(),
        counts: chosen.runs.iter().map(|r| r.count).collect(),
        first,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_collapse_and_keep_syllable_edges() {
        let t = Text::new("갑바");
        let sk = &t.passes[0];
        assert_eq!(sk.key, "ㄱㅏㅂㅏ");
        let b = &sk.runs[2];
        assert_eq!((b.ch, b.count), ('ㅂ', 2));
        // The first ㅂ is 갑's final, the second starts 바.
        let flags = &sk.unit_flags[b.first_unit..b.first_unit + 2];
        assert_eq!(flags, &[ENDS, STARTS]);
    }

    #[test]
    fn leet_pass_only_when_needed() {
        assert_eq!(Text::new("shit").passes.len(), 1);
        let t = Text::new("sh1t");
        assert_eq!(t.passes.len(), 2);
        assert_eq!(t.passes[0].key, "sht");
        assert_eq!(t.passes[1].key, "shit");
    }

    #[test]
    fn separators_and_invisibles_are_distinguished() {
        let t = Text::new("a\u{200B}b c");
        let sk = &t.passes[0];
        assert_eq!(sk.separators(&t.chars, 0, 2), 0);
        assert_eq!(sk.separators(&t.chars, 0, 4), 1);
        assert_eq!(t.prev_visible(2).map(|c| c.start), Some(0));
        assert!(t.has_space(0, 4));
        assert!(!t.has_space(0, 2));
    }

    #[test]
    fn term_keys() {
        let k = term_key("ass").unwrap();
        assert_eq!((k.key.as_str(), k.counts.as_slice()), ("as", &[1, 2][..]));
        assert_eq!(term_key("$hit").unwrap().key, "shit");
        assert_eq!(term_key("시1발").unwrap().key, "ㅅㅣㅂㅏㄹ");
        assert_eq!(term_key(" ... "), None);
    }

    #[test]
    fn widen_covers_the_word() {
        let t = Text::new("a fucking\u{200B}ly b");
        assert_eq!(t.widen(2, 5, false, true), (2, 11));
        assert_eq!(t.widen(2, 5, false, false), (2, 5));
        assert_eq!(t.widen(4, 5, true, false), (2, 5));
    }
}
