//! Blocked-terms matching for chat messages in Korean and English. This crate
//! owns the normalisation of text into an evasion-resistant "skeleton"
//! (width/case/accent folding, look-alike letters, leet digits, Hangul jamo,
//! repeated letters, separators and zero-width chars) and the matching of
//! admin-supplied blocked terms against it, with an allow list for innocent
//! words. It is pure: no I/O, no global state, and it never panics on input.
//!
//! Choices on ambiguous cases:
//! - Allowed words must appear contiguously (no separator inside), so
//!   "시발점" is spared but "시발 점심" is masked.
//! - A Korean match that spans whitespace must not be glued to a letter or
//!   digit on either side: "시 발" and "너 시 발 놈" are masked, but
//!   "입시 발표", "3시 발표" and "시 발전" are not (so "시 발놈" slips through;
//!   the unspaced "시발놈" is masked). No allow-list entry is needed for 발표.
//! - Latin word boundaries only look at letters outside Hangul/CJK/kana, so
//!   "fuck시발" still matches "fuck".
//! - A Latin match may not start right after a letter or after a
//!   contraction apostrophe ("let's hit" is not "s hit").
//! - Terms with a `*` at either end mask the whole surrounding word.
//! - Latin terms are read through the leet table ("$hit" = "shit"); Korean
//!   terms drop digits. ㅔ/ㅐ and ㅖ/ㅒ are folded like tense consonants.

#![forbid(unsafe_code)]

mod fold;
mod matcher;
mod normalise;
#[cfg(test)]
mod tests;

pub use matcher::Filter;

/// Innocent words that contain common blocked terms. Allowed words only
/// shield a blocked match lying entirely inside them.
pub const DEFAULT_ALLOWLIST: &[&str] = &[
    // Korean
    "시발점",
    "시발역",
    "시발택시",
    "시발탄",
    "갑시다",
    "입시다",
    "병신년",
    // English
    "classic",
    "classical",
    "class",
    "glass",
    "grass",
    "brass",
    "bass",
    "pass",
    "passage",
    "passion",
    "mass",
    "massage",
    "assassin",
    "assess",
    "assessment",
    "assume",
    "assist",
    "assistant",
    "associate",
    "asset",
    "embassy",
    "compass",
    "harass",
    "scunthorpe",
    "shiitake",
    "cockpit",
    "cocktail",
    "peacock",
    "hancock",
    "shuttlecock",
    "sussex",
    "essex",
    "middlesex",
    "analysis",
    "analyst",
    "therapist",
    "cumulative",
    "circumstance",
    "document",
    "dickens",
    "hitchcock",
    "penistone",
    "matsushita",
];
