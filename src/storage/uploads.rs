//! Resumable uploads: how long each is, how much has arrived, and when it expires. The bytes
//! are blobs (`uploads/{id}/{offset}`), one per accepted PATCH.

use sqlx::Row;

use super::{DbError, Exec};

/// An upload in progress (or just finished).
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub user_id: i64,
    pub length: i64,
    pub received: i64,
    pub filename: String,
    pub title: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, length, received, filename, title, created_at, expires_at, completed_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Upload, DbError> {
    Ok(Upload {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        length: r.try_get("length")?,
        received: r.try_get("received")?,
        filename: r.try_get("filename")?,
        title: r.try_get("title")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        completed_at: r.try_get("completed_at")?,
    })
}

pub async fn create(ex: impl Exec<'_>, u: &Upload) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO uploads (id, user_id, length, received, filename, title, created_at, expires_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $6, $7)",
    )
    .bind(&u.id)
    .bind(u.user_id)
    .bind(u.length)
    .bind(&u.filename)
    .bind(&u.title)
    .bind(u.created_at)
    .bind(u.expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get(ex: impl Exec<'_>, id: &str) -> Result<Option<Upload>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM uploads WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Unfinished uploads `user_id` has open.
pub async fn open_count(ex: impl Exec<'_>, user_id: i64) -> Result<i64, DbError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM uploads WHERE user_id = $1 AND completed_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(ex)
    .await?;
    row.try_get("n")
}

/// Moves `received` from `from` to `to` and records the piece stored under `blob_key`
/// (marking the upload complete at `now` when `to` is its length, and moving its expiry to
/// `expires_at`). False, recording nothing, when another request moved it first.
pub async fn advance(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    from: i64,
    to: i64,
    blob_key: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, DbError> {
    let res = sqlx::query(
        "UPDATE uploads SET received = $3, expires_at = $5, \
         completed_at = CASE WHEN $3 = length THEN $4 ELSE completed_at END \
         WHERE id = $1 AND received = $2 AND completed_at IS NULL",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    if res.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO upload_pieces (upload_id, start_at, length, blob_key) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(from)
    .bind(to - from)
    .bind(blob_key)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// The uploads still arriving.
pub async fn unfinished(ex: impl Exec<'_>) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query("SELECT id FROM uploads WHERE completed_at IS NULL ORDER BY id")
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
}

/// Sets an unfinished upload that stands at `was` back to `at` and forgets its pieces from
/// there on (the caller deletes their blobs). False, changing nothing, when it no longer
/// stands at `was` or is complete.
pub async fn cut_back(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    was: i64,
    at: i64,
) -> Result<bool, DbError> {
    let moved = sqlx::query(
        "UPDATE uploads SET received = $3 WHERE id = $1 AND received = $2 \
         AND completed_at IS NULL",
    )
    .bind(id)
    .bind(was)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM upload_pieces WHERE upload_id = $1 AND start_at >= $2")
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// The blob keys of an upload's accepted pieces, in order, with their lengths.
pub async fn pieces(ex: impl Exec<'_>, id: &str) -> Result<Vec<(String, i64)>, DbError> {
    let rows = sqlx::query(
        "SELECT blob_key, length FROM upload_pieces WHERE upload_id = $1 ORDER BY start_at",
    )
    .bind(id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("blob_key")?, r.try_get("length")?)))
        .collect()
}

/// Notes that `user_id` started an upload at `now` (for uploads per day).
pub async fn note_start(ex: impl Exec<'_>, user_id: i64, now: i64) -> Result<(), DbError> {
    sqlx::query("INSERT INTO upload_starts (user_id, started_at) VALUES ($1, $2)")
        .bind(user_id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Forgets upload starts before `before`.
pub async fn prune_starts(ex: impl Exec<'_>, before: i64) -> Result<u64, DbError> {
    let res = sqlx::query("DELETE FROM upload_starts WHERE started_at < $1")
        .bind(before)
        .execute(ex)
        .await?;
    Ok(res.rows_affected())
}

/// Serialises a member's upload announcements on PostgreSQL (SQLite's write transactions are
/// serial already): locks their user row until the transaction ends.
pub async fn lock_user(
    conn: &mut sqlx::AnyConnection,
    user_id: i64,
    postgres: bool,
) -> Result<(), DbError> {
    if postgres {
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn delete(ex: impl Exec<'_>, id: &str) -> Result<bool, DbError> {
    let res = sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Unfinished uploads past their expiry, at most `limit`.
pub async fn expired(ex: impl Exec<'_>, now: i64, limit: i64) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query(
        "SELECT id FROM uploads WHERE completed_at IS NULL AND expires_at <= $1 LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
}
