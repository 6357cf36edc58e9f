//! Storage plans and who has which, plus the figures a plan is checked against.

use sqlx::Row;

use super::{DbError, Exec};

/// A plan: each limit `None` is no limit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub name: String,
    pub storage_bytes: Option<i64>,
    pub max_file_bytes: Option<i64>,
    pub max_duration_s: Option<i64>,
    pub uploads_per_day: Option<i64>,
}

const COLUMNS: &str = "name, storage_bytes, max_file_bytes, max_duration_s, uploads_per_day";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Plan, DbError> {
    Ok(Plan {
        name: r.try_get("name")?,
        storage_bytes: r.try_get("storage_bytes")?,
        max_file_bytes: r.try_get("max_file_bytes")?,
        max_duration_s: r.try_get("max_duration_s")?,
        uploads_per_day: r.try_get("uploads_per_day")?,
    })
}

pub async fn list(ex: impl Exec<'_>) -> Result<Vec<Plan>, DbError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM plans ORDER BY name"))
        .fetch_all(ex)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get(ex: impl Exec<'_>, name: &str) -> Result<Option<Plan>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM plans WHERE name = $1"))
        .bind(name)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn create(ex: impl Exec<'_>, p: &Plan, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO plans (name, storage_bytes, max_file_bytes, max_duration_s, uploads_per_day, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&p.name)
    .bind(p.storage_bytes)
    .bind(p.max_file_bytes)
    .bind(p.max_duration_s)
    .bind(p.uploads_per_day)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn update(ex: impl Exec<'_>, p: &Plan) -> Result<bool, DbError> {
    let res = sqlx::query(
        "UPDATE plans SET storage_bytes = $2, max_file_bytes = $3, max_duration_s = $4, \
         uploads_per_day = $5 WHERE name = $1",
    )
    .bind(&p.name)
    .bind(p.storage_bytes)
    .bind(p.max_file_bytes)
    .bind(p.max_duration_s)
    .bind(p.uploads_per_day)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// The plan assigned to `user_id`, if one is.
pub async fn of_user(ex: impl Exec<'_>, user_id: i64) -> Result<Option<Plan>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {} FROM plans p JOIN user_plans u ON u.plan = p.name WHERE u.user_id = $1",
        COLUMNS
            .split(", ")
            .map(|c| format!("p.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(user_id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Assigns `plan` to `user_id` (`None`: back to the default).
pub async fn assign(
    ex: &mut sqlx::AnyConnection,
    user_id: i64,
    plan: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM user_plans WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *ex)
        .await?;
    if let Some(plan) = plan {
        sqlx::query("INSERT INTO user_plans (user_id, plan) VALUES ($1, $2)")
            .bind(user_id)
            .bind(plan)
            .execute(&mut *ex)
            .await?;
    }
    Ok(())
}

/// What a member holds now: bytes of uploads not yet made into a video (finished or still
/// arriving, counted at their full length), of their videos (the original while processing;
/// then the original and everything made from it; nothing for a failed one) and of their
/// photos' served sizes, videos, and uploads started since `since` (cancelled ones included).
pub struct Usage {
    pub used_bytes: i64,
    pub videos: i64,
    pub uploads_since: i64,
}

pub async fn usage(
    ex: &mut sqlx::AnyConnection,
    user_id: i64,
    since: i64,
) -> Result<Usage, DbError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(length), 0) AS BIGINT) AS used FROM uploads u \
         WHERE user_id = $1 AND NOT EXISTS (SELECT 1 FROM videos v WHERE v.upload_id = u.id)",
    )
    .bind(user_id)
    .fetch_one(&mut *ex)
    .await?;
    let kept = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'processing' THEN original_bytes \
         ELSE stored_bytes END), 0) AS BIGINT) AS kept FROM videos WHERE owner_id = $1",
    )
    .bind(user_id)
    .fetch_one(&mut *ex)
    .await?;
    let recent = sqlx::query(
        "SELECT COUNT(*) AS n FROM upload_starts WHERE user_id = $1 AND started_at >= $2",
    )
    .bind(user_id)
    .bind(since)
    .fetch_one(&mut *ex)
    .await?;
    let videos = sqlx::query("SELECT COUNT(*) AS n FROM videos WHERE owner_id = $1")
        .bind(user_id)
        .fetch_one(&mut *ex)
        .await?;
    let photos = super::images::bytes_of(&mut *ex, user_id).await?;
    Ok(Usage {
        used_bytes: row.try_get::<i64, _>("used")? + kept.try_get::<i64, _>("kept")? + photos,
        uploads_since: recent.try_get("n")?,
        videos: videos.try_get("n")?,
    })
}
