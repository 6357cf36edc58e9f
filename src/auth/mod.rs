//! Accounts and who is asking: password hashing (argon2id, in [`hasher`]'s bounded pool), username rules, session cookies and
//! API tokens, and resolving a request's credentials to a user. Owns no HTTP routes or
//! extractors (those live in `http::auth` and `http::extract`) and no permissions (those live
//! in `domain::policy`).

pub mod hasher;
pub mod limiter;
pub mod origin;

use axum::http::{header, HeaderMap};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::storage::users::{self, User};
use crate::storage::{now_ms, Db, DbError};

/// Why a credential or an account detail was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A username or password that breaks the rules; `code` is a snake_case reason.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: &'static str,
    },
    /// A bearer token that belongs to nobody.
    #[error("the API token is not valid")]
    BadToken,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Name of the login session cookie.
pub const SESSION_COOKIE: &str = "moim_session";
/// How long a login session lasts.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Prefix that marks API tokens (helps secret scanners).
pub const TOKEN_PREFIX: &str = "moim_pat_";

/// A new account's name in its three forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    /// As shown: trimmed and NFKC-normalised (fullwidth and mathematical letters become plain).
    pub display: String,
    /// What log-in looks it up by: the display form case-folded (lowercased, NFKC again).
    pub key: String,
    /// The confusable skeletons (Unicode TS #39) of the key and of the name as shown, one or
    /// two: one account per skeleton, so `аdmin` with a Cyrillic `а` cannot sit next to
    /// `admin`, nor `Iris` (capital i) next to `lris`.
    pub skeletons: Vec<String>,
}

fn invalid_username(message: &'static str) -> AuthError {
    AuthError::Invalid {
        code: "invalid_username",
        message,
    }
}

/// The lookup key of a display name: lowercased, then NFKC.
fn key_of(display: &str) -> String {
    display.to_lowercase().nfkc().collect()
}

/// The confusable skeleton of a name, made case-blind: the skeleton of the lowercased skeleton
/// (the confusables table maps some lowercase look-alikes to capitals, such as `0` to `O`).
pub fn skeleton_of(name: &str) -> String {
    let first: String = unicode_security::skeleton(name).collect();
    unicode_security::skeleton(&first.to_lowercase()).collect()
}

/// The skeletons an account with this display name and key holds (deduplicated).
pub fn skeletons_of(display: &str, key: &str) -> Vec<String> {
    let mut all = vec![skeleton_of(key)];
    let shown = skeleton_of(display);
    if shown != all[0] {
        all.push(shown);
    }
    all
}

/// Checks a new username against the rules: 2–32 letters (any script), digits, `_` and `-`,
/// at least one letter or digit, only characters Unicode recommends for identifiers (no
/// fillers, no invisible ones), and one script, or a combination people write in (Latin with
/// Hangul, Han, Hiragana or Katakana; digits go with anything).
pub fn check_new_username(raw: &str) -> Result<Username, AuthError> {
    use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};
    let display: String = raw.trim().nfkc().collect();
    let len = display.chars().count();
    if !(2..=32).contains(&len) {
        return Err(invalid_username("username must be 2 to 32 characters"));
    }
    if !display
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid_username(
            "username may contain only letters, digits, _ and -",
        ));
    }
    if !display.chars().any(char::is_alphanumeric) {
        return Err(invalid_username(
            "username needs at least one letter or digit",
        ));
    }
    if !display.chars().all(|c| c.identifier_allowed()) {
        return Err(invalid_username(
            "username contains a character that is invisible or easily mistaken for another",
        ));
    }
    if display.detect_restriction_level() > RestrictionLevel::HighlyRestrictive {
        return Err(invalid_username(
            "username mixes scripts (such as Latin with Cyrillic or Greek); use one, or Latin with Hangul, Han or Kana",
        ));
    }
    let key = key_of(&display);
    let skeletons = skeletons_of(&display, &key);
    Ok(Username {
        display,
        key,
        skeletons,
    })
}

/// The keys an existing account may be stored under, in the order to try: today's (NFKC,
/// case-folded) and the one accounts made before it were stored under (lowercased NFC). Empty
/// when the text cannot be any account's name.
pub fn lookup_keys(raw: &str) -> Vec<String> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if !(1..=64).contains(&len) || trimmed.chars().any(char::is_control) {
        return Vec::new();
    }
    let current: String = key_of(&trimmed.nfkc().collect::<String>());
    let legacy: String = trimmed
        .nfc()
        .collect::<String>()
        .to_lowercase()
        .nfc()
        .collect();
    if legacy == current {
        vec![current]
    } else {
        vec![current, legacy]
    }
}

/// Checks password length (in characters).
pub fn check_password(pw: &str) -> Result<(), AuthError> {
    let len = pw.chars().count();
    if !(8..=128).contains(&len) {
        return Err(AuthError::Invalid {
            code: "invalid_password",
            message: "password must be 8 to 128 characters",
        });
    }
    Ok(())
}

/// A fresh random secret, URL-safe.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database stores for a secret.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Name of the cookie that marks a browser some account signed in from (see
/// `domain::accounts::LoginSource`).
pub const DEVICE_COOKIE: &str = "moim_device";

/// The session cookie's value from a request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The bearer token, when the request has an `Authorization` header: `Err` when that header
/// is anything but one well-formed `Bearer` token (so it never falls back to the cookie).
fn bearer(headers: &HeaderMap) -> Option<Result<&str, AuthError>> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let value = all.next()?;
    if all.next().is_some() {
        return Some(Err(AuthError::BadToken));
    }
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::BadToken),
    )
}

/// The caller: with an `Authorization` header, its bearer token, which must be valid (the
/// cookie is then not looked at); else the session cookie (an expired or unknown one counts as
/// anonymous); else anonymous.
pub async fn resolve(db: &Db, headers: &HeaderMap) -> Result<Option<User>, AuthError> {
    if let Some(token) = bearer(headers) {
        return match users::user_by_token(&db.pool, &secret_hash(token?)).await? {
            Some(u) => Ok(Some(u)),
            None => Err(AuthError::BadToken),
        };
    }
    if let Some(cookie) = session_cookie(headers) {
        return Ok(users::user_by_session(&db.pool, &secret_hash(cookie), now_ms()).await?);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str) -> &'static str {
        match check_new_username(name) {
            Err(AuthError::Invalid { message, .. }) => message,
            other => panic!("{name:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn look_alike_invisible_and_letterless_names_are_refused() {
        assert!(refused("аdmin").contains("mixes scripts"), "Cyrillic а");
        assert!(refused("rοotadmin").contains("mixes scripts"), "Greek ο");
        assert!(refused("ㅤㅤㅤ").contains("invisible"), "Hangul filler");
        assert!(
            refused("a\u{200B}b").contains("only letters"),
            "zero-width space"
        );
        assert!(refused("ab\u{FEFF}").contains("only letters"), "BOM");
        assert!(refused("---").contains("at least one letter"));
        assert!(refused("_-_").contains("at least one letter"));
        assert!(refused("준호Привет").contains("mixes scripts"));
        assert!(refused("a").contains("2 to 32"));
    }

    #[test]
    fn compatibility_forms_become_plain_and_share_a_skeleton() {
        let plain = check_new_username("admin").unwrap();
        let fullwidth = check_new_username("ａｄｍｉｎ").unwrap();
        let bold = check_new_username("𝐚𝐝𝐦𝐢𝐧").unwrap();
        assert_eq!(fullwidth.display, "admin");
        assert_eq!(bold.key, plain.key);
        assert_eq!(fullwidth.skeletons, plain.skeletons);
        // Case and look-alike letters meet in the skeleton too.
        assert_eq!(
            check_new_username("ADMIN").unwrap().skeletons[0],
            plain.skeletons[0]
        );
        assert_eq!(
            check_new_username("adrnin").unwrap().skeletons,
            plain.skeletons
        );
        // A Cyrillic look-alike that a legacy account might hold has the same skeleton.
        assert_eq!(skeleton_of("аdmin"), plain.skeletons[0]);
        // Digits and capitals that pass for letters meet too.
        assert_eq!(skeleton_of("m0im"), skeleton_of("moim"));
        let iris = check_new_username("Iris").unwrap();
        let lris = check_new_username("lris").unwrap();
        assert!(iris.skeletons.iter().any(|s| lris.skeletons.contains(s)));
    }

    #[test]
    fn names_people_use_are_accepted() {
        for name in [
            "준호",
            "mina_kim-2",
            "준호abc12",
            "日本語テスト",
            "Привет",
            "Ελληνικά",
            "김민수99",
            "José",
        ] {
            let u = check_new_username(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
            assert_eq!(u.key, u.display.to_lowercase(), "{name:?}");
        }
    }

    #[test]
    fn lookup_keys_find_old_and_new_forms() {
        assert_eq!(lookup_keys(" Mina "), vec!["mina"]);
        // Stored before NFKC keys: a fullwidth name's key was its lowercase NFC form.
        assert_eq!(lookup_keys("ＭＩＮＡ"), vec!["mina", "ｍｉｎａ"]);
        assert!(lookup_keys("").is_empty());
        assert!(lookup_keys("a\u{0}b").is_empty());
        assert!(lookup_keys(&"x".repeat(65)).is_empty());
    }

    /// Every fuzz seed keeps the username rules' promises (see `fuzz/fuzz_targets/username.rs`).
    #[test]
    fn fuzz_corpus_keeps_the_rules() {
        let dir = source_dir!().join("fuzz/corpus/username");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus folder exists") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let Ok(raw) = std::str::from_utf8(&bytes) else {
                continue;
            };
            if let Ok(name) = check_new_username(raw) {
                assert_eq!(lookup_keys(raw).first(), Some(&name.key), "{raw:?}");
                assert_eq!(check_new_username(&name.display).unwrap(), name);
            }
            seen += 1;
        }
        assert!(seen >= 20, "corpus has {seen} seeds");
    }
}
