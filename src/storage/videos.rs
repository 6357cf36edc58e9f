//! Videos: for now the recordings of live broadcasts (the library adds uploads).

use sqlx::Row;

use super::{DbError, Exec};

/// Where a video is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoStatus {
    Processing,
    Ready,
    Failed,
}

/// Where a video came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoSource {
    /// A recorded broadcast.
    Live,
    /// A member's upload.
    Upload,
}

super::column_enum!(VideoStatus { Processing => "processing", Ready => "ready", Failed => "failed" });
super::column_enum!(VideoSource { Live => "live", Upload => "upload" });

/// A stored video.
#[derive(Debug, Clone)]
pub struct Video {
    pub id: i64,
    /// The id in URLs: random, so videos cannot be enumerated.
    pub public_id: String,
    pub owner_id: i64,
    pub room_id: Option<i64>,
    pub title: String,
    pub source: VideoSource,
    pub status: VideoStatus,
    pub duration_ms: i64,
    pub has_thumbnail: bool,
    pub created_at: i64,
}

const COLUMNS: &str = "id, public_id, owner_id, room_id, title, source, status, duration_ms, \
     has_thumbnail, created_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Video, DbError> {
    Ok(Video {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        owner_id: row.try_get("owner_id")?,
        room_id: row.try_get("room_id")?,
        title: row.try_get("title")?,
        source: VideoSource::parse(&row.try_get::<String, _>("source")?)?,
        status: VideoStatus::parse(&row.try_get::<String, _>("status")?)?,
        duration_ms: row.try_get("duration_ms")?,
        has_thumbnail: row.try_get::<i64, _>("has_thumbnail")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// A new video in `processing` state.
pub async fn create(
    ex: impl Exec<'_>,
    public_id: &str,
    owner_id: i64,
    room_id: Option<i64>,
    title: &str,
    source: VideoSource,
    now: i64,
) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO videos (public_id, owner_id, room_id, title, source, status, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, 'processing', $6, $6) RETURNING id",
    )
    .bind(public_id)
    .bind(owner_id)
    .bind(room_id)
    .bind(title)
    .bind(source.as_str())
    .bind(now)
    .fetch_one(ex)
    .await?
    .try_get("id")
}

/// Records the outcome of processing.
pub async fn finish(
    ex: impl Exec<'_>,
    id: i64,
    status: VideoStatus,
    duration_ms: i64,
    has_thumbnail: bool,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE videos SET status = $1, duration_ms = $2, has_thumbnail = $3, updated_at = $4 \
         WHERE id = $5",
    )
    .bind(status.as_str())
    .bind(duration_ms)
    .bind(i64::from(has_thumbnail))
    .bind(now)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get(ex: impl Exec<'_>, public_id: &str) -> Result<Option<Video>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE public_id = $1");
    let row = sqlx::query(&sql).bind(public_id).fetch_optional(ex).await?;
    row.as_ref().map(from_row).transpose()
}

/// A member's videos, newest first.
pub async fn list_owned(
    ex: impl Exec<'_>,
    owner_id: i64,
    limit: i64,
) -> Result<Vec<Video>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM videos WHERE owner_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(owner_id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Videos left `processing` by a crash: the recorder that owned them is gone.
pub async fn fail_unfinished(ex: impl Exec<'_>, now: i64) -> Result<u64, DbError> {
    let r = sqlx::query(
        "UPDATE videos SET status = 'failed', updated_at = $1 WHERE status = 'processing' \
         AND source = 'live'",
    )
    .bind(now)
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}
