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

/// Moves `received` from `from` to `to` (marking the upload complete at `now` when `to` is its
/// length). False when another request moved it first.
pub async fn advance(
    ex: impl Exec<'_>,
    id: &str,
    from: i64,
    to: i64,
    now: i64,
) -> Result<bool, DbError> {
    let res = sqlx::query(
        "UPDATE uploads SET received = $3, \
         completed_at = CASE WHEN $3 = length THEN $4 ELSE completed_at END \
         WHERE id = $1 AND received = $2 AND completed_at IS NULL",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() == 1)
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
