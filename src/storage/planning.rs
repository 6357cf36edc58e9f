//! Planning together in a room: invite links, candidate pins on the room's map, polls and their
//! ballots. Coordinates are stored as 1e-7 degrees (as posts'), option lists as JSON text.

use sqlx::Row;

use super::{DbError, Exec};

/// An invite link to a room.
#[derive(Debug, Clone)]
pub struct Invite {
    pub id: i64,
    pub room_id: i64,
    pub code: String,
    pub created_by: i64,
    pub expires_at: Option<i64>,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

fn invite_from_row(r: &sqlx::any::AnyRow) -> Result<Invite, DbError> {
    Ok(Invite {
        id: r.try_get("id")?,
        room_id: r.try_get("room_id")?,
        code: r.try_get("code")?,
        created_by: r.try_get("created_by")?,
        expires_at: r.try_get("expires_at")?,
        max_uses: r.try_get("max_uses")?,
        uses: r.try_get("uses")?,
        revoked_at: r.try_get("revoked_at")?,
        created_at: r.try_get("created_at")?,
    })
}

const INVITE_COLUMNS: &str =
    "id, room_id, code, created_by, expires_at, max_uses, uses, revoked_at, created_at";

pub async fn create_invite(
    ex: impl Exec<'_>,
    room_id: i64,
    code: &str,
    created_by: i64,
    expires_at: Option<i64>,
    max_uses: Option<i64>,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO room_invites (room_id, code, created_by, expires_at, max_uses, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(room_id)
    .bind(code)
    .bind(created_by)
    .bind(expires_at)
    .bind(max_uses)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn invite(ex: impl Exec<'_>, code: &str) -> Result<Option<Invite>, DbError> {
    let sql = format!("SELECT {INVITE_COLUMNS} FROM room_invites WHERE code = $1");
    let row = sqlx::query(&sql).bind(code).fetch_optional(ex).await?;
    row.as_ref().map(invite_from_row).transpose()
}

/// A room's invites that are not revoked, newest first.
pub async fn invites(ex: impl Exec<'_>, room_id: i64, limit: i64) -> Result<Vec<Invite>, DbError> {
    let sql = format!(
        "SELECT {INVITE_COLUMNS} FROM room_invites WHERE room_id = $1 AND revoked_at IS NULL \
         ORDER BY id DESC LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(room_id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(invite_from_row).collect()
}

/// How many invites of a room still work at `now` (not revoked, expired or used up).
pub async fn count_invites(ex: impl Exec<'_>, room_id: i64, now: i64) -> Result<i64, DbError> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM room_invites WHERE room_id = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2) AND (max_uses IS NULL OR uses < max_uses)",
    )
    .bind(room_id)
    .bind(now)
    .fetch_one(ex)
    .await?
    .try_get("n")
}

/// Revokes an invite of the room; false when there is no such live invite.
pub async fn revoke_invite(
    ex: impl Exec<'_>,
    room_id: i64,
    code: &str,
    now: i64,
) -> Result<bool, DbError> {
    let res = sqlx::query(
        "UPDATE room_invites SET revoked_at = $3 WHERE room_id = $1 AND code = $2 \
         AND revoked_at IS NULL",
    )
    .bind(room_id)
    .bind(code)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// Takes one use of an invite if it is still usable at `now` (one statement, so two accepts at
/// once cannot both take the last use); false when it is not.
pub async fn use_invite(ex: impl Exec<'_>, id: i64, now: i64) -> Result<bool, DbError> {
    let res = sqlx::query(
        "UPDATE room_invites SET uses = uses + 1 WHERE id = $1 AND revoked_at IS NULL \
         AND (max_uses IS NULL OR uses < max_uses) AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// Makes a user a member of a room; false when they already were.
pub async fn add_member(
    ex: impl Exec<'_>,
    room_id: i64,
    user_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let res = sqlx::query(
        "INSERT INTO room_members (room_id, user_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(room_id)
    .bind(user_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// A candidate place on a room's map.
#[derive(Debug, Clone)]
pub struct Pin {
    pub id: i64,
    pub room_id: i64,
    pub user_id: i64,
    pub username: String,
    /// The place post's id, when the pin is one.
    pub post_id: Option<i64>,
    pub name: String,
    pub lat_e7: i64,
    pub lng_e7: i64,
    pub created_at: i64,
}

pub async fn add_pin(ex: impl Exec<'_>, p: &Pin) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO room_pins (room_id, user_id, post_id, name, lat_e7, lng_e7, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(p.room_id)
    .bind(p.user_id)
    .bind(p.post_id)
    .bind(&p.name)
    .bind(p.lat_e7)
    .bind(p.lng_e7)
    .bind(p.created_at)
    .fetch_one(ex)
    .await?
    .try_get("id")
}

/// A room's pins, oldest first.
pub async fn pins(ex: impl Exec<'_>, room_id: i64) -> Result<Vec<Pin>, DbError> {
    let rows = sqlx::query(
        "SELECT p.id, p.room_id, p.user_id, u.username, p.post_id, p.name, p.lat_e7, p.lng_e7, \
         p.created_at FROM room_pins p JOIN users u ON u.id = p.user_id \
         WHERE p.room_id = $1 ORDER BY p.id",
    )
    .bind(room_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Pin {
                id: r.try_get("id")?,
                room_id: r.try_get("room_id")?,
                user_id: r.try_get("user_id")?,
                username: r.try_get("username")?,
                post_id: r.try_get("post_id")?,
                name: r.try_get("name")?,
                lat_e7: r.try_get("lat_e7")?,
                lng_e7: r.try_get("lng_e7")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

pub async fn delete_pin(ex: impl Exec<'_>, room_id: i64, id: i64) -> Result<bool, DbError> {
    let res = sqlx::query("DELETE FROM room_pins WHERE room_id = $1 AND id = $2")
        .bind(room_id)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(res.rows_affected() > 0)
}

/// A stored poll.
#[derive(Debug, Clone)]
pub struct Poll {
    pub id: i64,
    pub room_id: i64,
    pub created_by: i64,
    pub creator: String,
    pub question: String,
    pub options: Vec<String>,
    /// The pin behind each option (polls made from the map's pins).
    pub pins: Vec<Option<i64>>,
    pub mode: String,
    pub anonymous: bool,
    pub results: String,
    pub closes_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub created_at: i64,
}

fn poll_from_row(r: &sqlx::any::AnyRow) -> Result<Poll, DbError> {
    let json = |col: &str| -> Result<String, DbError> { r.try_get(col) };
    let decode = |e: serde_json::Error| DbError::Decode(Box::new(e));
    Ok(Poll {
        id: r.try_get("id")?,
        room_id: r.try_get("room_id")?,
        created_by: r.try_get("created_by")?,
        creator: r.try_get("creator")?,
        question: r.try_get("question")?,
        options: serde_json::from_str(&json("options")?).map_err(decode)?,
        pins: serde_json::from_str(&json("pins")?).map_err(decode)?,
        mode: r.try_get("mode")?,
        anonymous: r.try_get::<i64, _>("anonymous")? != 0,
        results: r.try_get("results")?,
        closes_at: r.try_get("closes_at")?,
        closed_at: r.try_get("closed_at")?,
        created_at: r.try_get("created_at")?,
    })
}

const POLL_COLUMNS: &str = "p.id, p.room_id, p.created_by, u.username AS creator, p.question, \
     p.options, p.pins, p.mode, p.anonymous, p.results, p.closes_at, p.closed_at, p.created_at";

pub async fn create_poll(ex: impl Exec<'_>, p: &Poll) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO polls (room_id, created_by, question, options, pins, mode, anonymous, \
         results, closes_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         RETURNING id",
    )
    .bind(p.room_id)
    .bind(p.created_by)
    .bind(&p.question)
    .bind(serde_json::to_string(&p.options).expect("strings serialise"))
    .bind(serde_json::to_string(&p.pins).expect("ids serialise"))
    .bind(&p.mode)
    .bind(i64::from(p.anonymous))
    .bind(&p.results)
    .bind(p.closes_at)
    .bind(p.created_at)
    .fetch_one(ex)
    .await?
    .try_get("id")
}

pub async fn poll(ex: impl Exec<'_>, id: i64) -> Result<Option<Poll>, DbError> {
    let sql = format!(
        "SELECT {POLL_COLUMNS} FROM polls p JOIN users u ON u.id = p.created_by WHERE p.id = $1"
    );
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(poll_from_row).transpose()
}

/// A room's newest polls, newest first.
pub async fn room_polls(ex: impl Exec<'_>, room_id: i64, limit: i64) -> Result<Vec<Poll>, DbError> {
    let sql = format!(
        "SELECT {POLL_COLUMNS} FROM polls p JOIN users u ON u.id = p.created_by \
         WHERE p.room_id = $1 ORDER BY p.id DESC LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(room_id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(poll_from_row).collect()
}

/// How many of a room's polls are open.
pub async fn count_open(ex: impl Exec<'_>, room_id: i64) -> Result<i64, DbError> {
    sqlx::query("SELECT COUNT(*) AS n FROM polls WHERE room_id = $1 AND closed_at IS NULL")
        .bind(room_id)
        .fetch_one(ex)
        .await?
        .try_get("n")
}

/// Marks a poll closed at `now`; false when it already was (so only one closer announces).
pub async fn close_poll(ex: impl Exec<'_>, id: i64, now: i64) -> Result<bool, DbError> {
    let res = sqlx::query("UPDATE polls SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(res.rows_affected() > 0)
}

/// Open polls with a closing time, soonest first: (id, closes_at).
pub async fn closing(ex: impl Exec<'_>, limit: i64) -> Result<Vec<(i64, i64)>, DbError> {
    let rows = sqlx::query(
        "SELECT id, closes_at FROM polls WHERE closed_at IS NULL AND closes_at IS NOT NULL \
         ORDER BY closes_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("closes_at")?)))
        .collect()
}

/// Holds an open poll against closing until the transaction ends: true when the poll is open
/// at `now`, so a ballot written in the same transaction is either counted by the close or
/// refused. PostgreSQL takes a share lock on the row (voters do not wait on each other, a close
/// waits for them); SQLite's transactions already hold the write lock.
pub async fn hold_open(
    ex: impl Exec<'_>,
    backend: super::Backend,
    poll_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let lock = match backend {
        super::Backend::Postgres => " FOR SHARE",
        super::Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT id FROM polls WHERE id = $1 AND closed_at IS NULL \
         AND (closes_at IS NULL OR closes_at > $2){lock}"
    );
    let row = sqlx::query(&sql)
        .bind(poll_id)
        .bind(now)
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}

/// Serialises planning writes to one room until the transaction ends (a no-op update takes
/// the room row's lock), so counted caps hold when requests race.
pub async fn lock_room(ex: impl Exec<'_>, room_id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE rooms SET last_seq = last_seq WHERE id = $1")
        .bind(room_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Stores (or replaces) a member's ballot.
pub async fn vote(
    ex: impl Exec<'_>,
    poll_id: i64,
    user_id: i64,
    choices: &[usize],
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO poll_votes (poll_id, user_id, choices, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (poll_id, user_id) DO UPDATE SET choices = excluded.choices, \
         updated_at = excluded.updated_at",
    )
    .bind(poll_id)
    .bind(user_id)
    .bind(serde_json::to_string(choices).expect("indexes serialise"))
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Takes a member's ballot back; false when there was none.
pub async fn unvote(ex: impl Exec<'_>, poll_id: i64, user_id: i64) -> Result<bool, DbError> {
    let res = sqlx::query("DELETE FROM poll_votes WHERE poll_id = $1 AND user_id = $2")
        .bind(poll_id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(res.rows_affected() > 0)
}

/// A ballot: who (id and name) and their choices.
#[derive(Debug, Clone)]
pub struct Ballot {
    pub user_id: i64,
    pub username: String,
    pub choices: Vec<usize>,
}

/// Every ballot of a poll, by voter name.
pub async fn ballots(ex: impl Exec<'_>, poll_id: i64) -> Result<Vec<Ballot>, DbError> {
    let rows = sqlx::query(
        "SELECT v.user_id, u.username, v.choices FROM poll_votes v \
         JOIN users u ON u.id = v.user_id WHERE v.poll_id = $1 ORDER BY u.username_key",
    )
    .bind(poll_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            let text: String = r.try_get("choices")?;
            Ok(Ballot {
                user_id: r.try_get("user_id")?,
                username: r.try_get("username")?,
                choices: serde_json::from_str(&text).map_err(|e| DbError::Decode(Box::new(e)))?,
            })
        })
        .collect()
}
