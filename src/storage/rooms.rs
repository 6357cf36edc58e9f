//! Rooms, their moderators and sanctions (bans and timeouts).

use sqlx::Row;

use super::{DbError, Exec};

/// A stored room.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Room {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub owner_id: i64,
    pub owner: String,
    pub slow_mode_s: i64,
    /// Broadcasts are kept as videos in the owner's library.
    pub record_broadcasts: bool,
    /// Seen by its members only.
    pub private: bool,
    pub created_at: i64,
    pub last_activity_at: i64,
}

const ROOM_COLUMNS: &str = "r.id, r.slug, r.title, r.owner_id, u.username AS owner, \
     r.slow_mode_s, r.record_broadcasts, r.visibility, r.created_at, r.last_activity_at";

fn room_from_row(row: &sqlx::any::AnyRow) -> Result<Room, DbError> {
    Ok(Room {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        title: row.try_get("title")?,
        owner_id: row.try_get("owner_id")?,
        owner: row.try_get("owner")?,
        slow_mode_s: row.try_get("slow_mode_s")?,
        record_broadcasts: row.try_get::<i64, _>("record_broadcasts")? != 0,
        private: row.try_get::<String, _>("visibility")? == "private",
        created_at: row.try_get("created_at")?,
        last_activity_at: row.try_get("last_activity_at")?,
    })
}

pub async fn create(
    ex: impl Exec<'_>,
    slug: &str,
    title: &str,
    owner_id: i64,
    private: bool,
    now: i64,
) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO rooms (slug, title, owner_id, visibility, created_at, last_activity_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(slug)
    .bind(title)
    .bind(owner_id)
    .bind(if private { "private" } else { "public" })
    .bind(now)
    .fetch_one(ex)
    .await?
    .try_get("id")
}

/// A private room with its members (the owner among them).
pub async fn create_private(
    ex: &mut sqlx::AnyConnection,
    slug: &str,
    title: &str,
    owner_id: i64,
    members: &[i64],
    now: i64,
) -> Result<i64, DbError> {
    let id: i64 = sqlx::query(
        "INSERT INTO rooms (slug, title, owner_id, visibility, created_at, last_activity_at) \
         VALUES ($1, $2, $3, 'private', $4, $4) RETURNING id",
    )
    .bind(slug)
    .bind(title)
    .bind(owner_id)
    .bind(now)
    .fetch_one(&mut *ex)
    .await?
    .try_get("id")?;
    for m in members {
        sqlx::query(
            "INSERT INTO room_members (room_id, user_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(m)
        .bind(now)
        .execute(&mut *ex)
        .await?;
    }
    Ok(id)
}

pub async fn is_member(ex: impl Exec<'_>, room_id: i64, user_id: i64) -> Result<bool, DbError> {
    let row = sqlx::query("SELECT 1 AS x FROM room_members WHERE room_id = $1 AND user_id = $2")
        .bind(room_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}

pub async fn get(ex: impl Exec<'_>, slug: &str) -> Result<Option<Room>, DbError> {
    let sql = format!(
        "SELECT {ROOM_COLUMNS} FROM rooms r JOIN users u ON u.id = r.owner_id WHERE r.slug = $1"
    );
    let row = sqlx::query(&sql).bind(slug).fetch_optional(ex).await?;
    row.as_ref().map(room_from_row).transpose()
}

pub async fn get_by_id(ex: impl Exec<'_>, id: i64) -> Result<Option<Room>, DbError> {
    let sql = format!(
        "SELECT {ROOM_COLUMNS} FROM rooms r JOIN users u ON u.id = r.owner_id WHERE r.id = $1"
    );
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(room_from_row).transpose()
}

/// Every room, most recently active first (the caller re-sorts by live viewers).
pub async fn list(ex: impl Exec<'_>, limit: i64) -> Result<Vec<Room>, DbError> {
    let sql = format!(
        "SELECT {ROOM_COLUMNS} FROM rooms r JOIN users u ON u.id = r.owner_id \
         WHERE r.visibility = 'public' ORDER BY r.last_activity_at DESC, r.id DESC LIMIT $1"
    );
    let rows = sqlx::query(&sql).bind(limit).fetch_all(ex).await?;
    rows.iter().map(room_from_row).collect()
}

/// One member's rooms.
pub async fn list_owned(
    ex: impl Exec<'_>,
    owner_id: i64,
    limit: i64,
) -> Result<Vec<Room>, DbError> {
    let sql = format!(
        "SELECT {ROOM_COLUMNS} FROM rooms r JOIN users u ON u.id = r.owner_id \
         WHERE r.owner_id = $1 AND r.visibility = 'public' \
         ORDER BY r.last_activity_at DESC, r.id DESC LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(owner_id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(room_from_row).collect()
}

pub async fn update(
    ex: impl Exec<'_>,
    id: i64,
    title: &str,
    slow_mode_s: i64,
    record_broadcasts: bool,
    private: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE rooms SET title = $1, slow_mode_s = $2, record_broadcasts = $3, visibility = $4 \
         WHERE id = $5",
    )
    .bind(title)
    .bind(slow_mode_s)
    .bind(i64::from(record_broadcasts))
    .bind(if private { "private" } else { "public" })
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

/// Deletes a room with everything in it (several statements: run it in a transaction).
pub async fn delete(conn: &mut sqlx::AnyConnection, id: i64) -> Result<(), DbError> {
    for sql in [
        "DELETE FROM messages WHERE room_id = $1",
        "DELETE FROM room_moderators WHERE room_id = $1",
        "DELETE FROM room_sanctions WHERE room_id = $1",
        "DELETE FROM stream_keys WHERE room_id = $1",
        "UPDATE videos SET room_id = NULL WHERE room_id = $1",
        "DELETE FROM rooms WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn add_moderator(
    ex: impl Exec<'_>,
    room_id: i64,
    user_id: i64,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO room_moderators (room_id, user_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room_id)
    .bind(user_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn remove_moderator(
    ex: impl Exec<'_>,
    room_id: i64,
    user_id: i64,
) -> Result<bool, DbError> {
    let res = sqlx::query("DELETE FROM room_moderators WHERE room_id = $1 AND user_id = $2")
        .bind(room_id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(res.rows_affected() > 0)
}

/// Whether the user is an appointed moderator of the room.
pub async fn is_moderator(ex: impl Exec<'_>, room_id: i64, user_id: i64) -> Result<bool, DbError> {
    let row =
        sqlx::query("SELECT 1 AS one FROM room_moderators WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .fetch_optional(ex)
            .await?;
    Ok(row.is_some())
}

/// (user id, username) of each moderator.
pub async fn moderators(ex: impl Exec<'_>, room_id: i64) -> Result<Vec<(i64, String)>, DbError> {
    let rows = sqlx::query(
        "SELECT u.id, u.username FROM room_moderators m JOIN users u ON u.id = m.user_id \
         WHERE m.room_id = $1 ORDER BY u.username_key",
    )
    .bind(room_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("username")?)))
        .collect()
}

/// Whether a sanction keeps a user out of the room or only silences them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SanctionKind {
    Ban,
    Timeout,
}

super::column_enum!(SanctionKind { Ban => "ban", Timeout => "timeout" });

/// An active ban or timeout.
#[derive(Debug, Clone)]
pub struct Sanction {
    pub user_id: i64,
    pub username: String,
    pub kind: SanctionKind,
    pub expires_at: Option<i64>,
}

/// Records (or replaces) a sanction.
pub async fn set_sanction(
    ex: impl Exec<'_>,
    room_id: i64,
    user_id: i64,
    kind: SanctionKind,
    expires_at: Option<i64>,
    by: i64,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO room_sanctions (room_id, user_id, kind, expires_at, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (room_id, user_id, kind) DO UPDATE SET expires_at = excluded.expires_at, \
         created_by = excluded.created_by, created_at = excluded.created_at",
    )
    .bind(room_id)
    .bind(user_id)
    .bind(kind.as_str())
    .bind(expires_at)
    .bind(by)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn clear_sanction(
    ex: impl Exec<'_>,
    room_id: i64,
    user_id: i64,
    kind: SanctionKind,
) -> Result<bool, DbError> {
    let res =
        sqlx::query("DELETE FROM room_sanctions WHERE room_id = $1 AND user_id = $2 AND kind = $3")
            .bind(room_id)
            .bind(user_id)
            .bind(kind.as_str())
            .execute(ex)
            .await?;
    Ok(res.rows_affected() > 0)
}

/// Sanctions still in force at `now`.
pub async fn active_sanctions(
    ex: impl Exec<'_>,
    room_id: i64,
    now: i64,
) -> Result<Vec<Sanction>, DbError> {
    let rows = sqlx::query(
        "SELECT s.user_id, u.username, s.kind, s.expires_at FROM room_sanctions s \
         JOIN users u ON u.id = s.user_id \
         WHERE s.room_id = $1 AND (s.expires_at IS NULL OR s.expires_at > $2) \
         ORDER BY s.created_at",
    )
    .bind(room_id)
    .bind(now)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Sanction {
                user_id: r.try_get("user_id")?,
                username: r.try_get("username")?,
                kind: SanctionKind::parse(&r.try_get::<String, _>("kind")?)?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
}

/// Deletes bans and timeouts that have run out; returns how many.
pub async fn delete_expired_sanctions(ex: impl Exec<'_>, now: i64) -> Result<u64, DbError> {
    let res =
        sqlx::query("DELETE FROM room_sanctions WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(now)
            .execute(ex)
            .await?;
    Ok(res.rows_affected())
}

/// How many rooms a user owns.
pub async fn count_owned(ex: impl Exec<'_>, owner_id: i64) -> Result<i64, DbError> {
    // A seller's rooms with buyers are the market's, not theirs to count.
    sqlx::query(
        "SELECT COUNT(*) AS n FROM rooms r WHERE r.owner_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM market_contacts m WHERE m.room_id = r.id)",
    )
    .bind(owner_id)
    .fetch_one(ex)
    .await?
    .try_get("n")
}
