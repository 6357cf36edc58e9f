//! Accounts, login sessions and API tokens. Secrets are stored only as SHA-256 hashes.

use sqlx::Row;

use super::{DbError, Exec};

/// A stored account (without its password hash).
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    /// Moderates the community (posts, comments, reports) site-wide; a member otherwise.
    Moderator,
    Member,
}

super::column_enum!(Role { Admin => "admin", Moderator => "moderator", Member => "member" });

impl Role {
    pub fn from_api(s: &str) -> Option<Role> {
        Role::parse(s).ok()
    }
}

/// Changes a member's site role.
pub async fn set_role(ex: impl Exec<'_>, user_id: i64, role: Role) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
        .bind(user_id)
        .bind(role.as_str())
        .execute(ex)
        .await?;
    Ok(())
}

pub(crate) fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, DbError> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: Role::parse(&row.try_get::<String, _>("role")?)?,
    })
}

/// Creates an account; the very first account becomes admin. Run it in a transaction: the
/// account is made a member, then claims the one `first_admin` row. Of several sign-ups at the
/// same moment exactly one claim succeeds (the others wait on its key and then find it taken),
/// where "no users yet?" checked inside the insert let two of them win on PostgreSQL.
pub async fn create(
    conn: &mut sqlx::AnyConnection,
    username: &str,
    key: &str,
    password_hash: &str,
    now: i64,
) -> Result<User, DbError> {
    let row = sqlx::query(
        "INSERT INTO users (username, username_key, password_hash, role, created_at) \
         VALUES ($1, $2, $3, 'member', $4) RETURNING id, username, role",
    )
    .bind(username)
    .bind(key)
    .bind(password_hash)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let mut user = user_from_row(&row)?;
    let claimed = sqlx::query(
        "INSERT INTO first_admin (id, user_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING \
         RETURNING user_id",
    )
    .bind(user.id)
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1")
            .bind(user.id)
            .execute(&mut *conn)
            .await?;
        user.role = Role::Admin;
    }
    Ok(user)
}

/// Looks up an account and its password hash by normalised username.
pub async fn find_with_hash(
    ex: impl Exec<'_>,
    key: &str,
) -> Result<Option<(User, String)>, DbError> {
    let row =
        sqlx::query("SELECT id, username, role, password_hash FROM users WHERE username_key = $1")
            .bind(key)
            .fetch_optional(ex)
            .await?;
    row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
        .transpose()
}

pub async fn find_by_key(ex: impl Exec<'_>, key: &str) -> Result<Option<User>, DbError> {
    let row = sqlx::query("SELECT id, username, role FROM users WHERE username_key = $1")
        .bind(key)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Stores a login session.
pub async fn create_session(
    ex: impl Exec<'_>,
    token_hash: &str,
    user_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn delete_session(ex: impl Exec<'_>, token_hash: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(ex)
        .await?;
    Ok(())
}

/// The user a live session belongs to.
pub async fn user_by_session(
    ex: impl Exec<'_>,
    token_hash: &str,
    now: i64,
) -> Result<Option<User>, DbError> {
    let row = sqlx::query(
        "SELECT u.id, u.username, u.role FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The user an API token belongs to.
pub async fn user_by_token(ex: impl Exec<'_>, token_hash: &str) -> Result<Option<User>, DbError> {
    let row = sqlx::query(
        "SELECT u.id, u.username, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Stores an API token; returns its id.
pub async fn create_token(
    ex: impl Exec<'_>,
    user_id: i64,
    name: &str,
    token_hash: &str,
    now: i64,
) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(token_hash)
    .bind(now)
    .fetch_one(ex)
    .await?
    .try_get("id")
}

/// A token's listing entry (never the secret).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

pub async fn list_tokens(ex: impl Exec<'_>, user_id: i64) -> Result<Vec<TokenInfo>, DbError> {
    let rows =
        sqlx::query("SELECT id, name, created_at FROM api_tokens WHERE user_id = $1 ORDER BY id")
            .bind(user_id)
            .fetch_all(ex)
            .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Revokes one of the user's tokens; false when it does not exist or is someone else's.
pub async fn delete_token(ex: impl Exec<'_>, user_id: i64, id: i64) -> Result<bool, DbError> {
    let res = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(res.rows_affected() > 0)
}

/// Deletes sessions past their expiry; returns how many.
pub async fn delete_expired_sessions(ex: impl Exec<'_>, now: i64) -> Result<u64, DbError> {
    let res = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(ex)
        .await?;
    Ok(res.rows_affected())
}

/// How a successful log-in was made, remembered in `login_trust`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustKind {
    /// The hash of the browser's device cookie.
    Device,
    /// The client address (an IPv6 one by its /64).
    Address,
}

impl TrustKind {
    fn as_str(self) -> &'static str {
        match self {
            TrustKind::Device => "device",
            TrustKind::Address => "address",
        }
    }
}

/// Sources an account keeps at most, per kind; older ones are forgotten.
pub const MAX_TRUSTED_PER_KIND: i64 = 20;

/// True when the account `key` signed in from `address`, or from the browser whose device
/// cookie hashes to `device`, at or after `since`.
pub async fn is_trusted(
    ex: impl Exec<'_>,
    key: &str,
    address: &str,
    device: Option<&str>,
    since: i64,
) -> Result<bool, DbError> {
    let row = sqlx::query(
        "SELECT 1 AS hit FROM login_trust t JOIN users u ON u.id = t.user_id \
         WHERE u.username_key = $1 AND t.last_ok_at >= $2 \
           AND ((t.kind = 'address' AND t.value = $3) OR (t.kind = 'device' AND t.value = $4)) \
         LIMIT 1",
    )
    .bind(key)
    .bind(since)
    .bind(address)
    .bind(device.unwrap_or(""))
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}

/// Records a successful log-in's source, keeping the newest [`MAX_TRUSTED_PER_KIND`].
pub async fn remember_trusted(
    conn: &mut sqlx::AnyConnection,
    user_id: i64,
    kind: TrustKind,
    value: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO login_trust (user_id, kind, value, last_ok_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, kind, value) DO UPDATE SET last_ok_at = excluded.last_ok_at",
    )
    .bind(user_id)
    .bind(kind.as_str())
    .bind(value)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM login_trust WHERE user_id = $1 AND kind = $2 AND value NOT IN \
         (SELECT value FROM login_trust WHERE user_id = $1 AND kind = $2 \
          ORDER BY last_ok_at DESC LIMIT $3)",
    )
    .bind(user_id)
    .bind(kind.as_str())
    .bind(MAX_TRUSTED_PER_KIND)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets sources not used since `before`.
pub async fn delete_stale_trust(ex: impl Exec<'_>, before: i64) -> Result<u64, DbError> {
    let res = sqlx::query("DELETE FROM login_trust WHERE last_ok_at < $1")
        .bind(before)
        .execute(ex)
        .await?;
    Ok(res.rows_affected())
}

/// Claims `skeleton` for `user_id`; a unique violation when another account holds it.
pub async fn claim_skeleton(
    conn: &mut sqlx::AnyConnection,
    skeleton: &str,
    user_id: i64,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO username_skeletons (skeleton, user_id) VALUES ($1, $2)")
        .bind(skeleton)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// (id, username) of accounts without a skeleton row, oldest first, at most `limit`.
pub async fn without_skeleton(
    ex: impl Exec<'_>,
    limit: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let rows = sqlx::query(
        "SELECT id, username FROM users u \
         WHERE NOT EXISTS (SELECT 1 FROM username_skeletons s WHERE s.user_id = u.id) \
         ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("username")?)))
        .collect()
}

/// Gives `user_id` its skeleton unless an (older) account holds it already; then it gets a
/// private one (`#` and its id, which no name can produce) so the backfill never revisits it.
pub async fn backfill_skeleton(
    ex: impl Exec<'_>,
    skeleton: &str,
    user_id: i64,
) -> Result<bool, DbError> {
    let res = sqlx::query(
        "INSERT INTO username_skeletons (skeleton, user_id) VALUES ($1, $2) \
         ON CONFLICT (skeleton) DO NOTHING",
    )
    .bind(skeleton)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Whether an account holds this confusable skeleton.
pub async fn skeleton_taken(ex: impl Exec<'_>, skeleton: &str) -> Result<bool, DbError> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM username_skeletons WHERE skeleton = $1")
            .bind(skeleton)
            .fetch_optional(ex)
            .await?
            .is_some(),
    )
}
