//! Share links of videos.

use sqlx::Row;

use super::{DbError, Exec};

/// A share link.
#[derive(Clone)]
pub struct Share {
    pub id: i64,
    pub code: String,
    pub video_id: i64,
    pub created_by: i64,
    pub password_hash: Option<String>,
    pub expires_at: Option<i64>,
    pub max_views: Option<i64>,
    pub views: i64,
    pub last_view_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for Share {
    /// Without the password hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("code", &self.code)
            .field("video_id", &self.video_id)
            .field("views", &self.views)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, code, video_id, created_by, password_hash, expires_at, max_views, \
     views, last_view_at, revoked_at, created_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Share, DbError> {
    Ok(Share {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        video_id: r.try_get("video_id")?,
        created_by: r.try_get("created_by")?,
        password_hash: r.try_get("password_hash")?,
        expires_at: r.try_get("expires_at")?,
        max_views: r.try_get("max_views")?,
        views: r.try_get("views")?,
        last_view_at: r.try_get("last_view_at")?,
        revoked_at: r.try_get("revoked_at")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A new link; false when the code is taken.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    ex: impl Exec<'_>,
    code: &str,
    video_id: i64,
    created_by: i64,
    password_hash: Option<&str>,
    expires_at: Option<i64>,
    max_views: Option<i64>,
    now: i64,
) -> Result<bool, DbError> {
    let r = sqlx::query(
        "INSERT INTO shares (code, video_id, created_by, password_hash, expires_at, max_views, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING",
    )
    .bind(code)
    .bind(video_id)
    .bind(created_by)
    .bind(password_hash)
    .bind(expires_at)
    .bind(max_views)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn get(ex: impl Exec<'_>, code: &str) -> Result<Option<Share>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM shares WHERE code = $1");
    let row = sqlx::query(&sql).bind(code).fetch_optional(ex).await?;
    row.as_ref().map(from_row).transpose()
}

/// A video's links, newest first.
pub async fn of_video(ex: impl Exec<'_>, video_id: i64) -> Result<Vec<Share>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM shares WHERE video_id = $1 ORDER BY created_at DESC, id DESC"
    );
    let rows = sqlx::query(&sql).bind(video_id).fetch_all(ex).await?;
    rows.iter().map(from_row).collect()
}

/// Counts one view if the link still admits one (not revoked, not expired, views left): the
/// check and the count are one statement, so parallel visitors cannot overrun `max_views`.
pub async fn count_view(ex: impl Exec<'_>, code: &str, now: i64) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE shares SET views = views + 1, last_view_at = $2 WHERE code = $1 \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
         AND (max_views IS NULL OR views < max_views)",
    )
    .bind(code)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Revokes a link (kept, so visitors are told it was revoked); false if unknown or revoked.
pub async fn revoke(ex: impl Exec<'_>, id: i64, now: i64) -> Result<bool, DbError> {
    let r = sqlx::query("UPDATE shares SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Links of one video, for the per-video cap.
pub async fn count_of_video(ex: impl Exec<'_>, video_id: i64) -> Result<i64, DbError> {
    sqlx::query("SELECT COUNT(*) AS n FROM shares WHERE video_id = $1")
        .bind(video_id)
        .fetch_one(ex)
        .await?
        .try_get("n")
}
