//! Videos: recordings of live broadcasts and members' uploads.

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

/// Who may watch a ready video (its owner and admins always may).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone, and it is listed on the owner's page.
    Public,
    /// Anyone with its address; listed nowhere.
    Unlisted,
    /// The owner, and visitors with one of its share links.
    Private,
}

super::column_enum!(Visibility { Public => "public", Unlisted => "unlisted", Private => "private" });

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
    pub has_storyboard: bool,
    /// The upload it was made from.
    pub upload_id: Option<String>,
    /// Why processing failed, in words for its owner.
    pub error: Option<String>,
    /// Processing progress, per mille.
    pub progress: i64,
    pub width: i64,
    pub height: i64,
    /// Size of the original file.
    pub original_bytes: i64,
    /// Bytes kept for it: the original and everything made from it.
    pub stored_bytes: i64,
    pub visibility: Visibility,
    /// The uploaded file's name (cleaned), for downloads.
    pub filename: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, public_id, owner_id, room_id, title, source, status, duration_ms, \
     has_thumbnail, has_storyboard, upload_id, error, progress, width, height, original_bytes, \
     stored_bytes, visibility, filename, created_at";

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
        has_storyboard: row.try_get::<i64, _>("has_storyboard")? != 0,
        upload_id: row.try_get("upload_id")?,
        error: row.try_get("error")?,
        progress: row.try_get("progress")?,
        width: row.try_get("width")?,
        height: row.try_get("height")?,
        original_bytes: row.try_get("original_bytes")?,
        stored_bytes: row.try_get("stored_bytes")?,
        visibility: Visibility::parse(&row.try_get::<String, _>("visibility")?)?,
        filename: row.try_get("filename")?,
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

/// A new uploaded video waiting to be processed (private until its owner says otherwise).
#[allow(clippy::too_many_arguments)]
pub async fn create_uploaded(
    ex: impl Exec<'_>,
    public_id: &str,
    owner_id: i64,
    title: &str,
    filename: &str,
    upload_id: &str,
    original_bytes: i64,
    now: i64,
) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO videos (public_id, owner_id, title, source, status, upload_id, filename, \
         original_bytes, visibility, created_at, updated_at) \
         VALUES ($1, $2, $3, 'upload', 'processing', $4, $5, $6, 'private', $7, $7) RETURNING id",
    )
    .bind(public_id)
    .bind(owner_id)
    .bind(title)
    .bind(upload_id)
    .bind(filename)
    .bind(original_bytes)
    .bind(now)
    .fetch_one(ex)
    .await?
    .try_get("id")
}

/// Records the outcome of a recording.
pub async fn finish(
    ex: impl Exec<'_>,
    id: i64,
    status: VideoStatus,
    duration_ms: i64,
    has_thumbnail: bool,
    stored_bytes: i64,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE videos SET status = $1, duration_ms = $2, has_thumbnail = $3, updated_at = $4, \
         progress = 1000, stored_bytes = $6 WHERE id = $5",
    )
    .bind(status.as_str())
    .bind(duration_ms)
    .bind(i64::from(has_thumbnail))
    .bind(now)
    .bind(id)
    .bind(stored_bytes)
    .execute(ex)
    .await?;
    Ok(())
}

/// What processing an upload made.
#[derive(Debug, Clone, Default)]
pub struct Processed {
    pub duration_ms: i64,
    pub width: i64,
    pub height: i64,
    pub stored_bytes: i64,
    pub has_thumbnail: bool,
    pub has_storyboard: bool,
}

/// Marks a video that is still processing ready; false when it is not (deleted meanwhile).
pub async fn mark_ready(
    ex: impl Exec<'_>,
    id: i64,
    p: &Processed,
    now: i64,
) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE videos SET status = 'ready', progress = 1000, error = NULL, duration_ms = $1, \
         width = $2, height = $3, stored_bytes = $4, has_thumbnail = $5, has_storyboard = $6, \
         updated_at = $7 WHERE id = $8 AND status = 'processing'",
    )
    .bind(p.duration_ms)
    .bind(p.width)
    .bind(p.height)
    .bind(p.stored_bytes)
    .bind(i64::from(p.has_thumbnail))
    .bind(i64::from(p.has_storyboard))
    .bind(now)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records a ready video's pictures and the bytes it keeps with them.
pub async fn set_pictures(
    ex: impl Exec<'_>,
    id: i64,
    has_thumbnail: bool,
    has_storyboard: bool,
    stored_bytes: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE videos SET has_thumbnail = $1, has_storyboard = $2, stored_bytes = $3 \
         WHERE id = $4 AND status = 'ready'",
    )
    .bind(i64::from(has_thumbnail))
    .bind(i64::from(has_storyboard))
    .bind(stored_bytes)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

/// Marks a video that is still processing failed, with the reason; it keeps no bytes.
pub async fn mark_failed(
    ex: impl Exec<'_>,
    id: i64,
    error: &str,
    now: i64,
) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE videos SET status = 'failed', error = $1, stored_bytes = 0, has_thumbnail = 0, \
         has_storyboard = 0, updated_at = $2 WHERE id = $3 AND status = 'processing'",
    )
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Moves a processing video's progress (per mille) and what is known of it so far.
pub async fn set_progress(
    ex: impl Exec<'_>,
    id: i64,
    progress: i64,
    duration_ms: i64,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE videos SET progress = $1, duration_ms = CASE WHEN $2 > 0 THEN $2 ELSE duration_ms END, \
         updated_at = $3 WHERE id = $4 AND status = 'processing'",
    )
    .bind(progress.clamp(0, 999))
    .bind(duration_ms)
    .bind(now)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

/// Changes a video's title and visibility (`None` keeps each).
pub async fn update(
    ex: impl Exec<'_>,
    id: i64,
    title: Option<&str>,
    visibility: Option<Visibility>,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE videos SET title = COALESCE($1, title), visibility = COALESCE($2, visibility), \
         updated_at = $3 WHERE id = $4",
    )
    .bind(title)
    .bind(visibility.map(|v| v.as_str()))
    .bind(now)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn delete(ex: impl Exec<'_>, id: i64) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM videos WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The video made from an upload.
pub async fn by_upload(ex: impl Exec<'_>, upload_id: &str) -> Result<Option<Video>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE upload_id = $1");
    let row = sqlx::query(&sql).bind(upload_id).fetch_optional(ex).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get_by_id(ex: impl Exec<'_>, id: i64) -> Result<Option<Video>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(from_row).transpose()
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

/// A member's public, ready videos, newest first (their page).
pub async fn list_public(
    ex: impl Exec<'_>,
    owner_id: i64,
    limit: i64,
) -> Result<Vec<Video>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM videos WHERE owner_id = $1 AND status = 'ready' \
         AND visibility = 'public' ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(owner_id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Uploaded videos left `processing` with no job to finish them (which a transaction makes
/// impossible; this is the backstop that keeps a video from spinning forever).
/// Returns each one's public id and upload.
pub async fn fail_orphans(
    ex: impl Exec<'_>,
    now: i64,
) -> Result<Vec<(String, Option<String>)>, DbError> {
    let rows = sqlx::query(
        "UPDATE videos SET status = 'failed', error = 'processing stopped; upload it again', \
         stored_bytes = 0, updated_at = $1 WHERE status = 'processing' AND source = 'upload' \
         AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.subject = videos.public_id) \
         RETURNING public_id, upload_id",
    )
    .bind(now)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("public_id")?, r.try_get("upload_id")?)))
        .collect()
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
