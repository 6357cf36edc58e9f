//! Accounts and who is asking: password hashing (argon2id, in [`hasher`]'s bounded pool), username rules, session cookies and
//! API tokens, and resolving a request's credentials to a user. Owns no HTTP routes or
//! extractors (those live in `http::auth` and `http::extract`) and no permissions (those live
//! in `domain::policy`).

pub mod hasher;
pub mod limiter;

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

/// Checks a username and returns (display form, lookup key). Display is NFC; the key is also
/// lowercased so "Alice" and "alice" are the same account.
pub fn normalise_username(raw: &str) -> Result<(String, String), AuthError> {
    let name: String = raw.trim().nfc().collect();
    let len = name.chars().count();
    if !(2..=32).contains(&len) {
        return Err(AuthError::Invalid {
            code: "invalid_username",
            message: "username must be 2 to 32 characters",
        });
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(AuthError::Invalid {
            code: "invalid_username",
            message: "username may contain only letters, digits, _ and -",
        });
    }
    let key: String = name.to_lowercase().nfc().collect();
    Ok((name, key))
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

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The caller: a bearer token (which must be valid), else the session cookie (an expired or
/// unknown one counts as anonymous), else anonymous.
pub async fn resolve(db: &Db, headers: &HeaderMap) -> Result<Option<User>, AuthError> {
    if let Some(token) = bearer(headers) {
        return match users::user_by_token(&db.pool, &secret_hash(token)).await? {
            Some(u) => Ok(Some(u)),
            None => Err(AuthError::BadToken),
        };
    }
    if let Some(cookie) = session_cookie(headers) {
        return Ok(users::user_by_session(&db.pool, &secret_hash(cookie), now_ms()).await?);
    }
    Ok(None)
}
