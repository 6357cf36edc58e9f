//! Stream keys: one secret per room that lets an encoder publish to it.

use sqlx::{AnyPool, Row};

use super::DbError;

/// The room's current key, if one was ever made.
pub async fn key_for_room(pool: &AnyPool, room_id: i64) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT stream_key FROM stream_keys WHERE room_id = $1")
        .bind(room_id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.try_get("stream_key")).transpose()
}

/// Sets (or replaces) the room's key; the old one stops working at once.
pub async fn set_key(pool: &AnyPool, room_id: i64, key: &str, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO stream_keys (room_id, stream_key, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (room_id) DO UPDATE SET stream_key = excluded.stream_key, \
         created_at = excluded.created_at",
    )
    .bind(room_id)
    .bind(key)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// The room slug a key publishes to.
pub async fn room_for_key(pool: &AnyPool, key: &str) -> Result<Option<String>, DbError> {
    let row = sqlx::query(
        "SELECT r.slug FROM stream_keys k JOIN rooms r ON r.id = k.room_id WHERE k.stream_key = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.map(|r| r.try_get("slug")).transpose()
}
