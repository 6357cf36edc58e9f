//! Accounts' identities at sign-in providers (the pair provider, subject), the `state`s of
//! sign-ins that came back, and whether an account has a password.

use sqlx::Row;

use super::users::User;
use super::{DbError, Exec};

/// One provider an account signs in with.
#[derive(Debug, Clone)]
pub struct Identity {
    pub provider: String,
    pub linked_at: i64,
}

/// The account the identity (provider, subject) belongs to.
pub async fn user_of(
    ex: impl Exec<'_>,
    provider: &str,
    subject: &str,
) -> Result<Option<User>, DbError> {
    let row = sqlx::query(
        "SELECT u.id, u.username, u.role FROM user_identities i JOIN users u ON u.id = i.user_id \
         WHERE i.provider = $1 AND i.subject = $2",
    )
    .bind(provider)
    .bind(subject)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(super::users::user_from_row).transpose()
}

/// The account another provider vouched for with this verified address, if exactly one did
/// (among `providers`, the ones the operator trusts for it).
pub async fn user_by_email(
    ex: impl Exec<'_>,
    email: &str,
    providers: &[String],
) -> Result<Option<User>, DbError> {
    if providers.is_empty() {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT DISTINCT u.id, u.username, u.role, i.provider FROM user_identities i \
         JOIN users u ON u.id = i.user_id WHERE i.email = $1 LIMIT 20",
    )
    .bind(email)
    .fetch_all(ex)
    .await?;
    let mut found: Option<User> = None;
    for row in &rows {
        let provider: String = row.try_get("provider")?;
        if !providers.contains(&provider) {
            continue;
        }
        let user = super::users::user_from_row(row)?;
        match &found {
            Some(f) if f.id != user.id => return Ok(None),
            _ => found = Some(user),
        }
    }
    Ok(found)
}

/// Links an identity to an account. A unique violation means the identity belongs to an
/// account already, or the account has one at this provider.
pub async fn link(
    ex: impl Exec<'_>,
    user_id: i64,
    provider: &str,
    subject: &str,
    email: Option<&str>,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO user_identities (provider, subject, user_id, email, linked_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(provider)
    .bind(subject)
    .bind(user_id)
    .bind(email)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// The providers an account signs in with, oldest link first.
pub async fn of_user(ex: impl Exec<'_>, user_id: i64) -> Result<Vec<Identity>, DbError> {
    let rows = sqlx::query(
        "SELECT provider, linked_at FROM user_identities WHERE user_id = $1 \
         ORDER BY linked_at, provider",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Identity {
                provider: r.try_get("provider")?,
                linked_at: r.try_get("linked_at")?,
            })
        })
        .collect()
}

/// Removes the account's identity at `provider`; false when it had none.
pub async fn unlink(ex: impl Exec<'_>, user_id: i64, provider: &str) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM user_identities WHERE user_id = $1 AND provider = $2")
        .bind(user_id)
        .bind(provider)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether the account has a password, and its identities (read in the transaction that
/// would remove one, with the account's row locked on PostgreSQL).
pub async fn sign_in_methods(
    conn: &mut sqlx::AnyConnection,
    user_id: i64,
    lock: bool,
) -> Result<(bool, Vec<Identity>), DbError> {
    let sql = if lock {
        "SELECT password_hash FROM users WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT password_hash FROM users WHERE id = $1"
    };
    let hash: String = sqlx::query(sql)
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("password_hash")?;
    let identities = of_user(&mut *conn, user_id).await?;
    Ok((!hash.is_empty(), identities))
}

/// The account's password hash (empty when it has none).
pub async fn password_hash(ex: impl Exec<'_>, user_id: i64) -> Result<String, DbError> {
    sqlx::query("SELECT password_hash FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(ex)
        .await?
        .try_get("password_hash")
}

/// Records a sign-in's `state` as used; false when it was used before.
pub async fn use_state(
    ex: impl Exec<'_>,
    state_hash: &str,
    expires_at: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO signin_states_used (state_hash, expires_at) VALUES ($1, $2) \
         ON CONFLICT (state_hash) DO NOTHING",
    )
    .bind(state_hash)
    .bind(expires_at)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets states whose cookies have expired (they could not come back anyway).
pub async fn delete_expired_states(ex: impl Exec<'_>, now: i64) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM signin_states_used WHERE expires_at < $1")
        .bind(now)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}

/// When the session with this hash began, if it is current.
pub async fn session_started(
    ex: impl Exec<'_>,
    token_hash: &str,
    user_id: i64,
) -> Result<Option<i64>, DbError> {
    let row = sqlx::query("SELECT created_at FROM sessions WHERE token_hash = $1 AND user_id = $2")
        .bind(token_hash)
        .bind(user_id)
        .fetch_optional(ex)
        .await?;
    row.map(|r| r.try_get("created_at")).transpose()
}

/// Sets the password hash if it is still `old` (two changes at once: one wins); false if not.
pub async fn replace_password_hash(
    ex: impl Exec<'_>,
    user_id: i64,
    old: &str,
    new: &str,
) -> Result<bool, DbError> {
    let done =
        sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
            .bind(user_id)
            .bind(old)
            .bind(new)
            .execute(ex)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every session of the account but the one with hash `keep`; returns how many ended.
pub async fn end_other_sessions(
    ex: impl Exec<'_>,
    user_id: i64,
    keep: &str,
) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}

/// How many of the account's identities are at one of `providers` (the configured ones).
pub fn count_at(identities: &[Identity], providers: &[String]) -> usize {
    identities
        .iter()
        .filter(|i| providers.contains(&i.provider))
        .count()
}
