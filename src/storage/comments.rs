//! Comments on posts (one level of replies), their votes, and reports of posts and comments.

use sqlx::Row;

use super::{DbError, Exec};

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: i64,
    pub post_id: i64,
    pub author_id: i64,
    pub author: String,
    pub parent_id: Option<i64>,
    pub body: String,
    pub up: i64,
    pub down: i64,
    pub hidden_at: Option<i64>,
    /// Deleted while it had replies: kept, empty, as their placeholder.
    pub deleted_at: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: &str = "c.id, c.post_id, c.author_id, u.username AS author, c.parent_id, c.body, \
     c.up, c.down, c.hidden_at, c.deleted_at, c.created_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Comment, DbError> {
    Ok(Comment {
        id: r.try_get("id")?,
        post_id: r.try_get("post_id")?,
        author_id: r.try_get("author_id")?,
        author: r.try_get("author")?,
        parent_id: r.try_get("parent_id")?,
        body: r.try_get("body")?,
        up: r.try_get("up")?,
        down: r.try_get("down")?,
        hidden_at: r.try_get("hidden_at")?,
        deleted_at: r.try_get("deleted_at")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A new comment; the post's count goes up in the same transaction.
pub async fn create(
    ex: &mut sqlx::AnyConnection,
    post_id: i64,
    author_id: i64,
    parent_id: Option<i64>,
    body: &str,
    now: i64,
) -> Result<i64, DbError> {
    let row = sqlx::query(
        "INSERT INTO comments (post_id, author_id, parent_id, body, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(post_id)
    .bind(author_id)
    .bind(parent_id)
    .bind(body)
    .bind(now)
    .fetch_one(&mut *ex)
    .await?;
    recount(&mut *ex, post_id).await?;
    row.try_get("id")
}

/// Writes the post's count of visible comments.
pub async fn recount(ex: &mut sqlx::AnyConnection, post_id: i64) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE posts SET comments = (SELECT COUNT(*) FROM comments c \
         WHERE c.post_id = $1 AND c.hidden_at IS NULL AND c.deleted_at IS NULL) WHERE id = $1",
    )
    .bind(post_id)
    .execute(&mut *ex)
    .await?;
    Ok(())
}

pub async fn get(ex: impl Exec<'_>, id: i64) -> Result<Option<Comment>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM comments c JOIN users u ON u.id = c.author_id WHERE c.id = $1"
    );
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(from_row).transpose()
}

/// A post's comments in the order written, at most `limit`.
pub async fn of_post(ex: impl Exec<'_>, post_id: i64, limit: i64) -> Result<Vec<Comment>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM comments c JOIN users u ON u.id = c.author_id \
         WHERE c.post_id = $1 ORDER BY c.id LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(post_id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn count_of_post(ex: impl Exec<'_>, post_id: i64) -> Result<i64, DbError> {
    sqlx::query("SELECT COUNT(*) AS n FROM comments WHERE post_id = $1")
        .bind(post_id)
        .fetch_one(ex)
        .await?
        .try_get("n")
}

pub async fn set_hidden(
    ex: &mut sqlx::AnyConnection,
    c: &Comment,
    at: Option<i64>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE comments SET hidden_at = $2 WHERE id = $1")
        .bind(c.id)
        .bind(at)
        .execute(&mut *ex)
        .await?;
    recount(ex, c.post_id).await
}

/// Deletes a comment; one with replies stays, emptied, so they keep their place.
pub async fn delete(ex: &mut sqlx::AnyConnection, c: &Comment, now: i64) -> Result<(), DbError> {
    let replies = sqlx::query("SELECT 1 AS x FROM comments WHERE parent_id = $1 LIMIT 1")
        .bind(c.id)
        .fetch_optional(&mut *ex)
        .await?;
    if replies.is_some() {
        sqlx::query("UPDATE comments SET body = '', deleted_at = $2 WHERE id = $1")
            .bind(c.id)
            .bind(now)
            .execute(&mut *ex)
            .await?;
        sqlx::query("DELETE FROM comment_votes WHERE comment_id = $1")
            .bind(c.id)
            .execute(&mut *ex)
            .await?;
    } else {
        sqlx::query("DELETE FROM comments WHERE id = $1")
            .bind(c.id)
            .execute(&mut *ex)
            .await?;
    }
    recount(ex, c.post_id).await
}

/// Sets a member's vote on a comment (1, -1, or 0 to take it back) and rewrites the counts;
/// returns `(up, down)`.
pub async fn vote(
    ex: &mut sqlx::AnyConnection,
    comment_id: i64,
    user_id: i64,
    vote: i64,
) -> Result<(i64, i64), DbError> {
    if vote == 0 {
        sqlx::query("DELETE FROM comment_votes WHERE comment_id = $1 AND user_id = $2")
            .bind(comment_id)
            .bind(user_id)
            .execute(&mut *ex)
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO comment_votes (comment_id, user_id, vote) VALUES ($1, $2, $3) \
             ON CONFLICT (comment_id, user_id) DO UPDATE SET vote = $3",
        )
        .bind(comment_id)
        .bind(user_id)
        .bind(vote)
        .execute(&mut *ex)
        .await?;
    }
    let row = sqlx::query(
        "UPDATE comments SET \
         up = (SELECT COUNT(*) FROM comment_votes WHERE comment_id = $1 AND vote > 0), \
         down = (SELECT COUNT(*) FROM comment_votes WHERE comment_id = $1 AND vote < 0) \
         WHERE id = $1 RETURNING up, down",
    )
    .bind(comment_id)
    .fetch_one(&mut *ex)
    .await?;
    Ok((row.try_get("up")?, row.try_get("down")?))
}

/// A member's votes among `comment_ids`: `(comment id, vote)`.
pub async fn votes_among(
    ex: impl Exec<'_>,
    user_id: i64,
    comment_ids: &[i64],
) -> Result<Vec<(i64, i64)>, DbError> {
    if comment_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT comment_id, vote FROM comment_votes WHERE user_id = $1 AND comment_id IN ({})",
        super::id_list(comment_ids)
    );
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(ex).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("comment_id")?, r.try_get("vote")?)))
        .collect()
}

/// A report of a post, or of one of its comments.
#[derive(Debug, Clone)]
pub struct Report {
    pub id: i64,
    pub post_id: i64,
    pub comment_id: Option<i64>,
    pub reporter: String,
    pub reason: String,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    pub resolution: Option<String>,
}

const REPORT_COLUMNS: &str = "r.id, r.post_id, r.comment_id, u.username AS reporter, r.reason, \
     r.created_at, r.resolved_at, r.resolution FROM reports r JOIN users u ON u.id = r.reporter_id";

fn report_from_row(r: &sqlx::any::AnyRow) -> Result<Report, DbError> {
    Ok(Report {
        id: r.try_get("id")?,
        post_id: r.try_get("post_id")?,
        comment_id: r.try_get("comment_id")?,
        reporter: r.try_get("reporter")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
        resolved_at: r.try_get("resolved_at")?,
        resolution: r.try_get("resolution")?,
    })
}

/// Files a report; false when the same member already has an open one on the same thing.
pub async fn report(
    ex: &mut sqlx::AnyConnection,
    post_id: i64,
    comment_id: Option<i64>,
    reporter_id: i64,
    reason: &str,
    now: i64,
) -> Result<bool, DbError> {
    let open = sqlx::query(
        "SELECT 1 AS x FROM reports WHERE post_id = $1 AND reporter_id = $2 \
         AND resolved_at IS NULL AND (comment_id = $3 OR (comment_id IS NULL AND $4 = 0))",
    )
    .bind(post_id)
    .bind(reporter_id)
    .bind(comment_id.unwrap_or(0))
    .bind(i64::from(comment_id.is_some()))
    .fetch_optional(&mut *ex)
    .await?;
    if open.is_some() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO reports (post_id, comment_id, reporter_id, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(post_id)
    .bind(comment_id)
    .bind(reporter_id)
    .bind(reason)
    .bind(now)
    .execute(&mut *ex)
    .await?;
    Ok(true)
}

/// Open reports, oldest first.
pub async fn open_reports(ex: impl Exec<'_>, limit: i64) -> Result<Vec<Report>, DbError> {
    let sql = format!("SELECT {REPORT_COLUMNS} WHERE r.resolved_at IS NULL ORDER BY r.id LIMIT $1");
    let rows = sqlx::query(&sql).bind(limit).fetch_all(ex).await?;
    rows.iter().map(report_from_row).collect()
}

/// One open report.
pub async fn open_report(ex: impl Exec<'_>, id: i64) -> Result<Option<Report>, DbError> {
    let sql = format!("SELECT {REPORT_COLUMNS} WHERE r.id = $1 AND r.resolved_at IS NULL");
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(report_from_row).transpose()
}

/// Closes a report; false if unknown or already closed.
pub async fn resolve(
    ex: impl Exec<'_>,
    id: i64,
    by: i64,
    resolution: &str,
    now: i64,
) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE reports SET resolved_at = $2, resolved_by = $3, resolution = $4 \
         WHERE id = $1 AND resolved_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(by)
    .bind(resolution)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}
