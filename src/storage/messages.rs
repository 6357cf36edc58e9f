//! Chat messages. Sequence numbers are per room, gap-free, handed out by bumping
//! `rooms.last_seq` inside the same transaction that stores the messages, so any number of
//! writers (and later nodes) agree on them.

use sqlx::Row;

use super::{DbError, Exec};

/// A stored chat message.
#[derive(Debug, Clone)]
pub struct Message {
    pub seq: i64,
    pub user_id: i64,
    pub username: String,
    pub text: String,
    pub created_at: i64,
    /// `chat`, or what the server wrote it about (`poll`).
    pub kind: String,
}

/// A message about to be stored.
pub struct NewMessage<'a> {
    pub room_id: i64,
    pub user_id: i64,
    pub username: &'a str,
    pub text: &'a str,
    /// `chat`, or what the server wrote it about.
    pub kind: &'a str,
}

/// Stores a batch of messages in one transaction and returns each one's seq, or `None` for a
/// message whose room no longer exists. Two statements whatever the batch size: one UPDATE
/// reserves seqs for every room (`rooms.last_seq`), one INSERT stores every row. Both must commit
/// together: run it in a transaction.
pub async fn store_batch(
    conn: &mut sqlx::AnyConnection,
    batch: &[NewMessage<'_>],
    now: i64,
) -> Result<Vec<Option<i64>>, DbError> {
    // Count per room, in first-seen order.
    let mut rooms: Vec<(i64, i64)> = Vec::new();
    for m in batch {
        match rooms.iter_mut().find(|(id, _)| *id == m.room_id) {
            Some((_, n)) => *n += 1,
            None => rooms.push((m.room_id, 1)),
        }
    }
    let mut sql = String::from("UPDATE rooms SET last_seq = last_seq + CASE id");
    for i in 0..rooms.len() {
        sql.push_str(&format!(" WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2));
    }
    sql.push_str(&format!(
        " END, last_activity_at = ${} WHERE id IN (",
        2 * rooms.len() + 1
    ));
    for i in 0..rooms.len() {
        sql.push_str(if i == 0 { "$" } else { ", $" });
        sql.push_str(&(2 * i + 1).to_string());
    }
    sql.push_str(") RETURNING id, last_seq");
    let mut q = sqlx::query(&sql);
    for (id, n) in &rooms {
        q = q.bind(*id).bind(*n);
    }
    let rows = q.bind(now).fetch_all(&mut *conn).await?;
    // Next free seq per room still present.
    let mut next: Vec<(i64, i64)> = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let last: i64 = r.try_get("last_seq")?;
        let n = rooms
            .iter()
            .find(|(rid, _)| *rid == id)
            .map_or(0, |(_, n)| *n);
        next.push((id, last - n + 1));
    }
    let seqs: Vec<Option<i64>> = batch
        .iter()
        .map(|m| {
            next.iter_mut()
                .find(|(id, _)| *id == m.room_id)
                .map(|(_, s)| {
                    *s += 1;
                    *s - 1
                })
        })
        .collect();
    let stored: Vec<(&NewMessage, i64)> = batch
        .iter()
        .zip(&seqs)
        .filter_map(|(m, s)| s.map(|s| (m, s)))
        .collect();
    if !stored.is_empty() {
        let mut sql = String::from(
            "INSERT INTO messages (room_id, seq, user_id, username, text, created_at, kind) VALUES ",
        );
        for i in 0..stored.len() {
            let b = 7 * i;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7
            ));
        }
        let mut q = sqlx::query(&sql);
        for (m, seq) in &stored {
            q = q
                .bind(m.room_id)
                .bind(*seq)
                .bind(m.user_id)
                .bind(m.username)
                .bind(m.text)
                .bind(now)
                .bind(m.kind);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(seqs)
}

fn message_from_row(r: &sqlx::any::AnyRow) -> Result<Message, DbError> {
    Ok(Message {
        seq: r.try_get("seq")?,
        user_id: r.try_get("user_id")?,
        username: r.try_get("username")?,
        text: r.try_get("text")?,
        created_at: r.try_get("created_at")?,
        kind: r.try_get("kind")?,
    })
}

/// Up to `limit` visible messages with seq below `before` (or the newest), oldest first.
pub async fn page(
    ex: impl Exec<'_>,
    room_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Message>, DbError> {
    newest_between(ex, room_id, 0, before.unwrap_or(i64::MAX), limit).await
}

/// The newest `limit` visible messages with seq above `since`, oldest first.
pub async fn after_latest(
    ex: impl Exec<'_>,
    room_id: i64,
    since: i64,
    limit: i64,
) -> Result<Vec<Message>, DbError> {
    newest_between(ex, room_id, since, i64::MAX, limit).await
}

/// The room's last seq handed out (0 before its first message).
pub async fn last_seq(ex: impl Exec<'_>, room_id: i64) -> Result<i64, DbError> {
    let row = sqlx::query("SELECT last_seq FROM rooms WHERE id = $1")
        .bind(room_id)
        .fetch_optional(ex)
        .await?;
    Ok(match row {
        Some(r) => r.try_get("last_seq")?,
        None => 0,
    })
}

/// Each of `rooms`' last seq handed out, by room id (rooms that are gone are left out).
pub async fn last_seqs(ex: impl Exec<'_>, rooms: &[i64]) -> Result<Vec<(i64, i64)>, DbError> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=rooms.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, last_seq FROM rooms WHERE id IN ({})",
        marks.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for id in rooms {
        q = q.bind(*id);
    }
    let rows = q.fetch_all(ex).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("last_seq")?)))
        .collect()
}

/// The newest `limit` visible messages with `after < seq < before`, oldest first.
pub async fn newest_between(
    ex: impl Exec<'_>,
    room_id: i64,
    after: i64,
    before: i64,
    limit: i64,
) -> Result<Vec<Message>, DbError> {
    let rows = sqlx::query(
        "SELECT seq, user_id, username, text, created_at, kind FROM messages \
         WHERE room_id = $1 AND deleted = 0 AND seq > $2 AND seq < $3 \
         ORDER BY seq DESC LIMIT $4",
    )
    .bind(room_id)
    .bind(after)
    .bind(before)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    let mut out = rows
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok(out)
}

/// Hides a message; false when there is no such visible message.
pub async fn mark_deleted(ex: impl Exec<'_>, room_id: i64, seq: i64) -> Result<bool, DbError> {
    let res = sqlx::query(
        "UPDATE messages SET deleted = 1 WHERE room_id = $1 AND seq = $2 AND deleted = 0",
    )
    .bind(room_id)
    .bind(seq)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{rooms, users, Db};

    #[tokio::test]
    async fn batches_hand_out_seqs_per_room_and_skip_missing_rooms() {
        let dir = std::env::temp_dir().join(format!("moim-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::connect(None, &dir).await.unwrap();
        let mut tx = db.pool.begin().await.unwrap();
        let u = users::create(&mut tx, "u", "u", "x", 0).await.unwrap();
        tx.commit().await.unwrap();
        let a = rooms::create(&db.pool, "aaa", "A", u.id, false, 0)
            .await
            .unwrap();
        let b = rooms::create(&db.pool, "bbb", "B", u.id, false, 0)
            .await
            .unwrap();
        let msg = |room_id, text| NewMessage {
            room_id,
            user_id: u.id,
            username: "u",
            text,
            kind: "chat",
        };
        let batch = [msg(a, "a1"), msg(b, "b1"), msg(a, "a2"), msg(999, "lost")];
        let mut tx = db.pool.begin().await.unwrap();
        let seqs = store_batch(&mut tx, &batch, 5).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(seqs, [Some(1), Some(1), Some(2), None]);
        let mut tx = db.pool.begin().await.unwrap();
        let seqs = store_batch(&mut tx, &[msg(a, "a3")], 6).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(seqs, [Some(3)]);
        let texts: Vec<String> = page(&db.pool, a, None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["a1", "a2", "a3"]);
        assert_eq!(after_latest(&db.pool, b, 0, 10).await.unwrap().len(), 1);
        db.pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
