//! Accounts and who is asking: password hashing (argon2id), username rules, session cookies,
//! API tokens, and the extractors handlers use to learn the caller. Owns no HTTP routes (those
//! live in `http::auth`) and no room permissions (those live in `realtime::Permissions`).

pub mod limiter;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::storage::now_ms;
use crate::storage::users::{self, User};

/// Name of the login session cookie.
pub const SESSION_COOKIE: &str = "moim_session";
/// How long a login session lasts.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Prefix that marks API tokens (helps secret scanners).
pub const TOKEN_PREFIX: &str = "moim_pat_";

/// Checks a username and returns (display form, lookup key). Display is NFC; the key is also
/// lowercased so "Alice" and "alice" are the same account.
pub fn normalise_username(raw: &str) -> Result<(String, String), ApiError> {
    let name: String = raw.trim().nfc().collect();
    let len = name.chars().count();
    if !(3..=32).contains(&len) {
        return Err(ApiError::invalid(
            "invalid_username",
            "username must be 3 to 32 characters",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::invalid(
            "invalid_username",
            "username may contain only letters, digits, _ and -",
        ));
    }
    let key: String = name.to_lowercase().nfc().collect();
    Ok((name, key))
}

/// Checks password length (in characters).
pub fn check_password(pw: &str) -> Result<(), ApiError> {
    let len = pw.chars().count();
    if !(8..=128).contains(&len) {
        return Err(ApiError::invalid(
            "invalid_password",
            "password must be 8 to 128 characters",
        ));
    }
    Ok(())
}

/// Hashes a password with argon2id (off the async threads: it is deliberately slow).
pub async fn hash_password(pw: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await?
}

/// Verifies a password against a stored hash. With no hash (unknown user) it checks against a
/// fixed hash and fails, so both cases cost the same and reveal nothing.
pub async fn verify_password(pw: String, hash: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(dummy_hash);
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        let ok = Argon2::default()
            .verify_password(pw.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && known)
    })
    .await?
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(b"moim-no-such-user", &salt)
                .map(|h| h.to_string())
                .expect("argon2 with default parameters hashes any input")
        })
        .clone()
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

/// The session cookie's value from a request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
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

/// The caller, if they are logged in (cookie or bearer token).
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<User>);

/// The caller, who must be logged in (401 `login_required` otherwise).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// Resolves the caller from headers; a bad or expired credential counts as anonymous.
pub async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<MaybeUser, ApiError> {
    if let Some(token) = bearer(headers) {
        let user = users::user_by_token(&state.db.pool, &secret_hash(token)).await?;
        return match user {
            Some(u) => Ok(MaybeUser(Some(u))),
            None => Err(ApiError::Unauthorized),
        };
    }
    if let Some(cookie) = session_cookie(headers) {
        let user = users::user_by_session(&state.db.pool, &secret_hash(cookie), now_ms()).await?;
        return Ok(MaybeUser(user));
    }
    Ok(MaybeUser(None))
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(m) = parts.extensions.get::<MaybeUser>() {
            return Ok(m.clone());
        }
        let m = resolve(state, &parts.headers).await?;
        parts.extensions.insert(m.clone());
        Ok(m)
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match MaybeUser::from_request_parts(parts, state).await?.0 {
            Some(u) => Ok(CurrentUser(u)),
            None => Err(ApiError::Unauthorized),
        }
    }
}
