//! Chat messages. Sequence numbers are per room, gap-free, handed out by bumping
//! `rooms.last_seq` inside the same transaction that stores the messages, so any number of
//! writers (and later nodes) agree on them.

use sqlx::{Any, AnyPool, Row, Transaction};

use super::DbError;

/// A stored chat message.
#[derive(Debug, Clone)]
pub struct Message {
    pub seq: i64,
    pub user_id: i64,
    pub username: String,
    pub text: String,
    pub created_at: i64,
}

/// A message about to be stored.
pub struct NewMessage<'a> {
    pub user_id: i64,
    pub username: &'a str,
    pub text: &'a str,
    pub created_at: i64,
}

/// Reserves `count` sequence numbers in a room; returns the first, or `None` if the room is gone.
pub async fn reserve_seqs(
    tx: &mut Transaction<'static, Any>,
    room_id: i64,
    count: i64,
    now: i64,
) -> Result<Option<i64>, DbError> {
    let row = sqlx::query(
        "UPDATE rooms SET last_seq = last_seq + $1, last_activity_at = $2 WHERE id = $3 \
         RETURNING last_seq",
    )
    .bind(count)
    .bind(now)
    .bind(room_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get::<i64, _>("last_seq")? - count + 1),
        None => None,
    })
}

pub async fn insert(
    tx: &mut Transaction<'static, Any>,
    room_id: i64,
    seq: i64,
    m: &NewMessage<'_>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO messages (room_id, seq, user_id, username, text, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(room_id)
    .bind(seq)
    .bind(m.user_id)
    .bind(m.username)
    .bind(m.text)
    .bind(m.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn message_from_row(r: &sqlx::any::AnyRow) -> Result<Message, DbError> {
    Ok(Message {
        seq: r.try_get("seq")?,
        user_id: r.try_get("user_id")?,
        username: r.try_get("username")?,
        text: r.try_get("text")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Up to `limit` visible messages with seq below `before` (or the newest), oldest first.
pub async fn page(
    pool: &AnyPool,
    room_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Message>, DbError> {
    newest_between(pool, room_id, 0, before.unwrap_or(i64::MAX), limit).await
}

/// The newest `limit` visible messages with seq above `since`, oldest first.
pub async fn after_latest(
    pool: &AnyPool,
    room_id: i64,
    since: i64,
    limit: i64,
) -> Result<Vec<Message>, DbError> {
    newest_between(pool, room_id, since, i64::MAX, limit).await
}

/// The newest `limit` visible messages with `after < seq < before`, oldest first.
async fn newest_between(
    pool: &AnyPool,
    room_id: i64,
    after: i64,
    before: i64,
    limit: i64,
) -> Result<Vec<Message>, DbError> {
    let rows = sqlx::query(
        "SELECT seq, user_id, username, text, created_at FROM messages \
         WHERE room_id = $1 AND deleted = 0 AND seq > $2 AND seq < $3 \
         ORDER BY seq DESC LIMIT $4",
    )
    .bind(room_id)
    .bind(after)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut out = rows
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok(out)
}

/// Hides a message; false when there is no such visible message.
pub async fn mark_deleted(pool: &AnyPool, room_id: i64, seq: i64) -> Result<bool, DbError> {
    let res = sqlx::query(
        "UPDATE messages SET deleted = 1 WHERE room_id = $1 AND seq = $2 AND deleted = 0",
    )
    .bind(room_id)
    .bind(seq)
    .execute(pool)
    .await?;
    Ok(res.rows_affected() > 0)
}
