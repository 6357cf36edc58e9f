//! Per-character folding: what a single original char contributes to the
//! skeleton. Stateless tables only; no allocation on the hot path.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// One folded unit produced by an original char.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Folded {
    pub ch: char,
    /// Came from a digit/symbol via the leet table; only the leet pass keeps it.
    pub leet: bool,
}

const SBASE: u32 = 0xAC00;
const SCOUNT: u32 = 11172;

/// Compatibility jamo for each initial consonant index of a precomposed syllable.
const CHOSEONG: [char; 19] = [
    'ㄱ', 'ㄲ', 'ㄴ', 'ㄷ', 'ㄸ', 'ㄹ', 'ㅁ', 'ㅂ', 'ㅃ', 'ㅅ', 'ㅆ', 'ㅇ', 'ㅈ', 'ㅉ', 'ㅊ', 'ㅋ',
    'ㅌ', 'ㅍ', 'ㅎ',
];

/// Compatibility jamo for final consonant index 1..=27 (index 0 here is final 1).
const JONGSEONG: [char; 27] = [
    'ㄱ', 'ㄲ', 'ㄳ', 'ㄴ', 'ㄵ', 'ㄶ', 'ㄷ', 'ㄹ', 'ㄺ', 'ㄻ', 'ㄼ', 'ㄽ', 'ㄾ', 'ㄿ', 'ㅀ', 'ㅁ',
    'ㅂ', 'ㅄ', 'ㅅ', 'ㅆ', 'ㅇ', 'ㅈ', 'ㅊ', 'ㅋ', 'ㅌ', 'ㅍ', 'ㅎ',
];

/// Invisible characters that users insert to split words; they vanish entirely
/// (no unit, and transparent for boundary checks).
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    ) || is_combining_mark(c)
}

pub(crate) fn is_hangul_syllable(c: char) -> bool {
    (SBASE..SBASE + SCOUNT).contains(&(c as u32))
}

/// Scripts written without spaces between words (or, for Korean, with
/// particles glued on), where a Latin-style word boundary makes no sense.
pub(crate) fn is_spaceless(c: char) -> bool {
    matches!(
        c,
        '\u{1100}'..='\u{11FF}'
            | '\u{3040}'..='\u{30FF}'
            | '\u{3130}'..='\u{318F}'
            | '\u{31F0}'..='\u{31FF}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{A960}'..='\u{A97F}'
            | '\u{AC00}'..='\u{D7FF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{FF66}'..='\u{FFDC}'
            | '\u{20000}'..='\u{2FFFF}'
    )
}

/// True for the compatibility-jamo unit alphabet used for Korean.
/// U+3164 (the Hangul filler) sits inside the block but is invisible.
pub(crate) fn is_jamo_unit(c: char) -> bool {
    matches!(c, '\u{3131}'..='\u{3163}' | '\u{3165}'..='\u{318E}')
}

fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        _ => return None,
    })
}

/// Cyrillic/Greek/Latin look-alikes (input already lowercased).
fn confusable(c: char) -> Option<char> {
    Some(match c {
        'а' | 'α' | 'ɑ' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' | 'đ' => 'd',
        'е' | 'ε' => 'e',
        'ƒ' => 'f',
        'ɡ' => 'g',
        'н' | 'һ' => 'h',
        'і' | 'ι' | 'ı' => 'i',
        'ј' | 'ϳ' => 'j',
        'к' | 'κ' => 'k',
        'ӏ' | 'ł' => 'l',
        'м' => 'm',
        'о' | 'ο' | 'ø' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' => 'u',
        'ν' => 'v',
        'ԝ' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'ү' | 'γ' => 'y',
        _ => return None,
    })
}

/// Splits compound jamo and folds tense consonants (씨발 ≈ 시발) and the
/// merged vowels ㅔ/ㅐ, ㅖ/ㅒ (pronounced alike, swapped to evade).
fn push_jamo(j: char, out: &mut Vec<Folded>) {
    let parts: &[char] = match j {
        'ㄳ' => &['ㄱ', 'ㅅ'],
        'ㄵ' => &['ㄴ', 'ㅈ'],
        'ㄶ' => &['ㄴ', 'ㅎ'],
        'ㄺ' => &['ㄹ', 'ㄱ'],
        'ㄻ' => &['ㄹ', 'ㅁ'],
        'ㄼ' => &['ㄹ', 'ㅂ'],
        'ㄽ' => &['ㄹ', 'ㅅ'],
        'ㄾ' => &['ㄹ', 'ㅌ'],
        'ㄿ' => &['ㄹ', 'ㅍ'],
        'ㅀ' => &['ㄹ', 'ㅎ'],
        'ㅄ' => &['ㅂ', 'ㅅ'],
        'ㅘ' => &['ㅗ', 'ㅏ'],
        'ㅙ' => &['ㅗ', 'ㅐ'],
        'ㅚ' => &['ㅗ', 'ㅣ'],
        'ㅝ' => &['ㅜ', 'ㅓ'],
        'ㅞ' => &['ㅜ', 'ㅐ'],
        'ㅟ' => &['ㅜ', 'ㅣ'],
        'ㅢ' => &['ㅡ', 'ㅣ'],
        _ => {
            let plain = match j {
                'ㄲ' => 'ㄱ',
                'ㄸ' => 'ㄷ',
                'ㅃ' => 'ㅂ',
                'ㅆ' => 'ㅅ',
                'ㅉ' => 'ㅈ',
                'ㅔ' => 'ㅐ',
                'ㅖ' => 'ㅒ',
                other => other,
            };
            out.push(Folded {
                ch: plain,
                leet: false,
            });
            return;
        }
    };
    for &p in parts {
        push_jamo(p, out);
    }
}

/// Maps a conjoining jamo (U+1100 block) onto the compatibility alphabet.
fn conjoining_to_compat(c: char) -> Option<char> {
    let u = c as u32;
    match u {
        0x1100..=0x1112 => Some(CHOSEONG[(u - 0x1100) as usize]),
        0x1161..=0x1175 => char::from_u32(0x314F + (u - 0x1161)),
        0x11A8..=0x11C2 => Some(JONGSEONG[(u - 0x11A8) as usize]),
        // NFKD sends ㅄ (and half-width ㅄ) to this archaic initial cluster.
        0x1121 => Some('ㅄ'),
        _ => None,
    }
}

/// Folds one already-decomposed, lowercased char.
fn fold_simple(c: char, out: &mut Vec<Folded>) {
    if is_invisible(c) {
        return;
    }
    if let Some(j) = conjoining_to_compat(c) {
        push_jamo(j, out);
    } else if is_jamo_unit(c) {
        push_jamo(c, out);
    } else if let Some(l) = confusable(c) {
        out.push(Folded { ch: l, leet: false });
    } else if c.is_alphabetic() {
        out.push(Folded { ch: c, leet: false });
    } else if let Some(l) = leet(c) {
        out.push(Folded { ch: l, leet: true });
    }
}

/// Appends the units of original char `c` to `out`.
pub(crate) fn fold_char(c: char, out: &mut Vec<Folded>) {
    if c.is_ascii() {
        if c.is_ascii_alphabetic() {
            out.push(Folded {
                ch: c.to_ascii_lowercase(),
                leet: false,
            });
        } else if let Some(l) = leet(c) {
            out.push(Folded { ch: l, leet: true });
        }
        return;
    }
    if is_jamo_unit(c) {
        push_jamo(c, out);
        return;
    }
    if is_hangul_syllable(c) {
        let s = c as u32 - SBASE;
        push_jamo(CHOSEONG[(s / 588) as usize], out);
        if let Some(v) = char::from_u32(0x314F + (s % 588) / 28) {
            push_jamo(v, out);
        }
        let t = s % 28;
        if t > 0 {
            push_jamo(JONGSEONG[(t - 1) as usize], out);
        }
        return;
    }
    if is_invisible(c) {
        return;
    }
    // NFKD then dropping marks gives NFKC's width/compat folding plus accent stripping.
    decompose_compatible(c, |d| {
        if is_combining_mark(d) {
            return;
        }
        for l in d.to_lowercase() {
            if !is_combining_mark(l) {
                fold_simple(l, out);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> String {
        let mut out = Vec::new();
        for c in s.chars() {
            fold_char(c, &mut out);
        }
        out.iter().map(|f| f.ch).collect()
    }

    #[test]
    fn width_case_and_accents_fold() {
        assert_eq!(units("ＦＵＣＫ"), "fuck");
        assert_eq!(units("Éé"), "ee");
        assert_eq!(units("①"), "i"); // ① → 1 → leet i
        assert_eq!(units("fuсk"), "fuck"); // Cyrillic с
        assert_eq!(units("ΑΣΣ"), "aσσ"); // Greek sigma has no Latin twin here
    }

    #[test]
    fn hangul_decomposes_and_folds() {
        assert_eq!(units("씨발"), "ㅅㅣㅂㅏㄹ");
        assert_eq!(units("시발"), "ㅅㅣㅂㅏㄹ");
        assert_eq!(units("ㅄ"), "ㅂㅅ");
        assert_eq!(units("닭"), "ㄷㅏㄹㄱ");
        assert_eq!(units("과"), "ㄱㅗㅏ");
        // Conjoining jamo and half-width jamo join the same alphabet.
        assert_eq!(units("\u{1109}\u{1175}"), "ㅅㅣ");
        assert_eq!(units("\u{FFB5}"), units("ㅅ"));
    }

    #[test]
    fn invisibles_vanish() {
        assert_eq!(units("a\u{200B}\u{3164}\u{FE0F}\u{0301}b"), "ab");
    }

    #[test]
    fn leet_is_marked() {
        let mut out = Vec::new();
        fold_char('$', &mut out);
        fold_char('2', &mut out);
        assert_eq!(
            out,
            vec![Folded {
                ch: 's',
                leet: true
            }]
        );
    }
}
