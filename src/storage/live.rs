//! Stream keys: one secret per room that lets an encoder publish to it.

use sqlx::Row;

use super::{DbError, Exec};

/// The room's current key, if one was ever made.
pub async fn key_for_room(ex: impl Exec<'_>, room_id: i64) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT stream_key FROM stream_keys WHERE room_id = $1")
        .bind(room_id)
        .fetch_optional(ex)
        .await?;
    row.map(|r| r.try_get("stream_key")).transpose()
}

/// The room's key, storing `fresh` first if the room has none. Race-free: of two first-time
/// callers, one insert wins and both read the winner's key.
pub async fn key_or_insert(
    conn: &mut sqlx::AnyConnection,
    room_id: i64,
    fresh: &str,
    now: i64,
) -> Result<String, DbError> {
    sqlx::query(
        "INSERT INTO stream_keys (room_id, stream_key, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (room_id) DO NOTHING",
    )
    .bind(room_id)
    .bind(fresh)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT stream_key FROM stream_keys WHERE room_id = $1")
        .bind(room_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("stream_key")
}

/// Sets (or replaces) the room's key; the old one stops working at once.
pub async fn set_key(ex: impl Exec<'_>, room_id: i64, key: &str, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO stream_keys (room_id, stream_key, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (room_id) DO UPDATE SET stream_key = excluded.stream_key, \
         created_at = excluded.created_at",
    )
    .bind(room_id)
    .bind(key)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// The room slug a key publishes to.
pub async fn room_for_key(ex: impl Exec<'_>, key: &str) -> Result<Option<String>, DbError> {
    let row = sqlx::query(
        "SELECT r.slug FROM stream_keys k JOIN rooms r ON r.id = k.room_id WHERE k.stream_key = $1",
    )
    .bind(key)
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("slug")).transpose()
}
