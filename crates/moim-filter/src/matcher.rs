//! The filter: Aho–Corasick over skeleton keys, then per-match checks
//! (run counts, syllable edges, word boundaries) and the allow list.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use unicode_normalization::char::is_combining_mark;

use crate::fold::{is_jamo_unit, is_spaceless};
use crate::normalise::{term_key, CharInfo, Skeleton, Text, ALNUM, ENDS, LATIN, STARTS};

/// How one term constrains a match of its key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Variant {
    counts: Box<[usize]>,
    /// Latin term without a leading `*`: the char before must not be a letter.
    check_start: bool,
    check_end: bool,
    wild_start: bool,
    wild_end: bool,
    /// Starts with a jamo: guards against spans like 입시 발표.
    korean: bool,
}

/// Terms grouped by key, so "as" and "ass" share one automaton pattern.
#[derive(Default)]
struct TermSet {
    ac: Option<AhoCorasick>,
    variants: Vec<Vec<Variant>>,
}

impl TermSet {
    fn build<'a>(terms: impl Iterator<Item = &'a str>) -> Self {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut keys: Vec<String> = Vec::new();
        let mut variants: Vec<Vec<Variant>> = Vec::new();
        for raw in terms {
            let trimmed = raw.trim();
            let wild_start = trimmed.starts_with('*');
            let wild_end = trimmed.len() > 1 && trimmed.ends_with('*');
            let Some(tk) = term_key(trimmed.trim_matches('*')) else {
                continue;
            };
            let spaced = |c: char| !is_spaceless(c);
            let v = Variant {
                counts: tk.counts.into_boxed_slice(),
                check_start: !wild_start && spaced(tk.first),
                check_end: !wild_end && spaced(tk.last),
                wild_start,
                wild_end,
                korean: is_jamo_unit(tk.first),
            };
            let id = *index.entry(tk.key.clone()).or_insert_with(|| {
                keys.push(tk.key);
                variants.push(Vec::new());
                keys.len() - 1
            });
            // "시발" and "씨발" fold to the same variant; check it once.
            if !variants[id].contains(&v) {
                variants[id].push(v);
            }
        }
        if keys.is_empty() {
            return TermSet::default();
        }
        // Standard semantics are required for overlapping search. A build
        // error (limits exceeded) leaves the set inert rather than panicking.
        let build = |kind| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .kind(kind)
                .build(&keys)
                .ok()
        };
        // A DFA is fastest for overlapping search but its memory grows with
        // the list, so large lists let the crate pick an NFA.
        let ac = if keys.len() <= 300 {
            build(Some(AhoCorasickKind::DFA)).or_else(|| build(None))
        } else {
            build(None)
        };
        TermSet { ac, variants }
    }

    fn is_empty(&self) -> bool {
        self.ac.is_none()
    }

    /// Calls `hit(variant, first_char, last_char)` for every match in `sk`
    /// that satisfies run counts, syllable edges and word boundaries.
    /// `tight` picks the narrowest span instead of the widest.
    fn scan(
        &self,
        t: &Text,
        sk: &Skeleton,
        tight: bool,
        mut hit: impl FnMut(&Variant, usize, usize),
    ) {
        let Some(ac) = &self.ac else { return };
        let Ok(iter) = ac.try_find_overlapping_iter(sk.key.as_str()) else {
            return;
        };
        for m in iter {
            let (first, last) = sk.runs_between(m.start(), m.end());
            let Some(vs) = self.variants.get(m.pattern().as_usize()) else {
                continue;
            };
            for v in vs {
                let edge = Edges { t, sk, v, tight };
                if let Some((pu, qu)) = edge.span(first, last) {
                    if let (Some(&a), Some(&b)) = (sk.unit_char.get(pu), sk.unit_char.get(qu)) {
                        hit(v, a, b);
                    }
                }
            }
        }
    }
}

/// Chooses where inside the edge runs a match begins and ends.
struct Edges<'a> {
    t: &'a Text,
    sk: &'a Skeleton,
    v: &'a Variant,
    tight: bool,
}

impl Edges<'_> {
    fn can_start(&self, u: usize) -> bool {
        let flags = self.sk.unit_flags.get(u).copied().unwrap_or(0);
        let Some(&c) = self.sk.unit_char.get(u) else {
            return false;
        };
        flags & STARTS != 0 && !(self.v.check_start && self.t.latin_before(c))
    }

    fn can_end(&self, u: usize) -> bool {
        let flags = self.sk.unit_flags.get(u).copied().unwrap_or(0);
        let Some(&c) = self.sk.unit_char.get(u) else {
            return false;
        };
        flags & ENDS != 0
            && !(self.v.check_end && self.t.next_visible(c).is_some_and(|n| n.has(LATIN)))
    }

    /// Unit indices where a match over runs `first..=last` begins and ends.
    /// Edge runs may hold extra repeats ("ffffuck", or "is shit" where the
    /// s-run crosses a word gap), so every admissible offset is considered.
    fn span(&self, first: usize, last: usize) -> Option<(usize, usize)> {
        let counts = &self.v.counts;
        let runs = self.sk.runs.get(first..=last)?;
        if runs.len() != counts.len() {
            return None;
        }
        let (fr, lr) = (runs.first()?, runs.last()?);
        let (k0, kn) = (*counts.first()?, *counts.last()?);
        if k0 > fr.count || kn > lr.count {
            return None;
        }
        if runs.len() == 1 {
            // Widest pair: if any (p, q) fits, the earliest p and latest q do.
            let p = (0..=fr.count - k0).find(|&p| self.can_start(fr.first_unit + p))?;
            let q = (p + k0 - 1..fr.count)
                .rev()
                .find(|&q| self.can_end(fr.first_unit + q))?;
            return Some((fr.first_unit + p, fr.first_unit + q));
        }
        let mut middle = runs.iter().zip(counts.iter()).skip(1).take(runs.len() - 2);
        if middle.any(|(r, &k)| r.count < k) {
            return None;
        }
        let starts = 0..=fr.count - k0;
        let ends = kn - 1..lr.count;
        let ok_p = |p: &usize| self.can_start(fr.first_unit + p);
        let ok_q = |q: &usize| self.can_end(lr.first_unit + q);
        let (p, q) = if self.tight {
            (starts.rev().find(ok_p)?, ends.clone().find(ok_q)?)
        } else {
            (starts.clone().find(ok_p)?, ends.rev().find(ok_q)?)
        };
        Some((fr.first_unit + p, lr.first_unit + q))
    }
}

/// Blocked-terms filter. Immutable after construction; share it via `Arc`.
pub struct Filter {
    blocked: TermSet,
    allowed: TermSet,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("blocked_keys", &self.blocked.variants.len())
            .field("allowed_keys", &self.allowed.variants.len())
            .finish()
    }
}

impl Filter {
    /// Builds from blocked terms and allowed (innocent) words. Empty or
    /// whitespace-only terms, and terms with no letters, are ignored.
    ///
    /// A leading/trailing `*` on a blocked term allows any prefix/suffix
    /// and masks the whole word ("fuck*" masks all of "fucking").
    pub fn new<S: AsRef<str>>(blocked: &[S], allowed: &[S]) -> Filter {
        Filter {
            blocked: TermSet::build(blocked.iter().map(AsRef::as_ref)),
            allowed: TermSet::build(allowed.iter().map(AsRef::as_ref)),
        }
    }

    /// Filter with [`crate::DEFAULT_ALLOWLIST`] plus `extra_allowed`.
    pub fn with_default_allowlist<S: AsRef<str>>(blocked: &[S], extra_allowed: &[S]) -> Filter {
        let allowed = crate::DEFAULT_ALLOWLIST
            .iter()
            .copied()
            .chain(extra_allowed.iter().map(AsRef::as_ref));
        Filter {
            blocked: TermSet::build(blocked.iter().map(AsRef::as_ref)),
            allowed: TermSet::build(allowed),
        }
    }

    /// True when no usable blocked term was given; such a filter matches nothing.
    pub fn is_empty(&self) -> bool {
        self.blocked.is_empty()
    }

    /// Byte ranges (in `text`) of matched blocked spans, sorted, with
    /// overlapping or touching spans merged.
    pub fn find(&self, text: &str) -> Vec<Range<usize>> {
        if self.is_empty() || text.is_empty() {
            return Vec::new();
        }
        let t = Text::new(text);
        // (core span checked against the allow list, widened span to mask)
        let mut hits: Vec<((usize, usize), (usize, usize))> = Vec::new();
        for sk in &t.passes {
            self.blocked.scan(&t, sk, false, |v, a, b| {
                if let Some(span) = accept_blocked(&t, v, a, b) {
                    hits.push(((a, b), span));
                }
            });
        }
        if hits.is_empty() {
            return Vec::new();
        }
        let allowed = self.allowed_spans(&t);
        let mut spans: Vec<(usize, usize)> = hits
            .into_iter()
            .filter(|(core, _)| !covered(&allowed, *core))
            .map(|(_, span)| span)
            .collect();
        spans.sort_unstable();
        let mut out: Vec<Range<usize>> = Vec::with_capacity(spans.len());
        for (a, b) in spans {
            let (Some(ca), Some(cb)) = (t.chars.get(a), t.chars.get(b)) else {
                continue;
            };
            // Accents after the last char belong to it; leave none dangling.
            let tail = text.get(cb.end..).unwrap_or("");
            let marks: usize = tail
                .chars()
                .take_while(|&c| is_combining_mark(c))
                .map(char::len_utf8)
                .sum();
            let end = cb.end + marks;
            match out.last_mut() {
                Some(prev) if ca.start <= prev.end => prev.end = prev.end.max(end),
                _ => out.push(ca.start..end),
            }
        }
        out
    }

    /// `text` with each char inside a matched span replaced by `*`.
    /// Borrowed when nothing matched.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let spans = self.find(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for r in spans {
            let (Some(keep), Some(hide)) = (text.get(pos..r.start), text.get(r.start..r.end))
            else {
                continue;
            };
            out.push_str(keep);
            out.extend(hide.chars().map(|_| '*'));
            pos = r.end;
        }
        out.push_str(text.get(pos..).unwrap_or(""));
        Cow::Owned(out)
    }

    /// Char spans of allowed-word matches, sorted by start, with the running
    /// maximum of their ends so containment is one binary search.
    fn allowed_spans(&self, t: &Text) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        for sk in &t.passes {
            // Allowed words must be written contiguously: "시발 점심" is not 시발점.
            self.allowed.scan(t, sk, true, |_, a, b| {
                if sk.separators(&t.chars, a, b) == 0 {
                    spans.push((a, b));
                }
            });
        }
        spans.sort_unstable();
        let mut max_end = 0;
        for s in &mut spans {
            max_end = max_end.max(s.1);
            s.1 = max_end;
        }
        spans
    }
}

/// Final check on a blocked hit over chars `a..=b`; returns the span to mask.
fn accept_blocked(t: &Text, v: &Variant, a: usize, b: usize) -> Option<(usize, usize)> {
    // A Korean hit bridging a space must stand alone: glued to other letters
    // or digits it is almost always two innocent words (입시 발표, 3시 발표,
    // 시 발전), while the evasion "시 발" is surrounded by spaces/punctuation.
    if v.korean && t.has_space(a, b) {
        let glued = |c: Option<&CharInfo>| c.is_some_and(|c| c.has(ALNUM));
        if (!v.wild_start && glued(t.prev_visible(a))) || (!v.wild_end && glued(t.next_visible(b)))
        {
            return None;
        }
    }
    if v.wild_start || v.wild_end {
        return Some(t.widen(a, b, v.wild_start, v.wild_end));
    }
    Some((a, b))
}

/// Whether some allowed span (prefix-max form, see `allowed_spans`) contains `core`.
fn covered(allowed: &[(usize, usize)], core: (usize, usize)) -> bool {
    let n = allowed.partition_point(|s| s.0 <= core.0);
    n > 0 && allowed.get(n - 1).is_some_and(|s| s.1 >= core.1)
}
