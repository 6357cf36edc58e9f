//! Persisted jobs: work that must outlive a restart or a dead node (processing an uploaded
//! video, deleting a video's files). One table on both databases.
//!
//! A worker claims the oldest job whose lease has run out (a new job's lease is 0) by moving the
//! lease forward with a compare-and-set, so two workers, on one node or many, never hold one job;
//! it renews the lease while it works and deletes the row when the work is done or given up. A
//! worker that dies simply stops renewing, and the job is claimed again once its lease ends.

use sqlx::Row;

use super::{DbError, Exec};

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    /// Claims so far, this one included.
    pub attempts: i64,
}

/// Adds a job; it can be claimed at once.
pub async fn enqueue(
    ex: impl Exec<'_>,
    kind: &str,
    subject: &str,
    now: i64,
) -> Result<i64, DbError> {
    sqlx::query("INSERT INTO jobs (kind, subject, created_at) VALUES ($1, $2, $3) RETURNING id")
        .bind(kind)
        .bind(subject)
        .bind(now)
        .fetch_one(ex)
        .await?
        .try_get("id")
}

/// Adds a job that cannot be claimed before `after`.
pub async fn enqueue_after(
    ex: impl Exec<'_>,
    kind: &str,
    subject: &str,
    now: i64,
    after: i64,
) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO jobs (kind, subject, lease_until, created_at) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(kind)
    .bind(subject)
    .bind(after)
    .bind(now)
    .fetch_one(ex)
    .await?
    .try_get("id")
}

/// Drops the pending jobs of one kind and subject (a worker holding one loses its lease at the
/// next renewal and stops).
pub async fn cancel(ex: impl Exec<'_>, kind: &str, subject: &str) -> Result<u64, DbError> {
    let r = sqlx::query("DELETE FROM jobs WHERE kind = $1 AND subject = $2")
        .bind(kind)
        .bind(subject)
        .execute(ex)
        .await?;
    Ok(r.rows_affected())
}

/// Claims the oldest claimable job for `owner` until `until`, or `None` when there is none.
pub async fn claim(
    pool: &sqlx::AnyPool,
    owner: &str,
    now: i64,
    until: i64,
) -> Result<Option<Job>, DbError> {
    // A few tries: another worker may take the candidate between the read and the update.
    for _ in 0..8 {
        let Some(row) = sqlx::query(
            "SELECT id FROM jobs WHERE lease_until <= $1 ORDER BY lease_until, id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(pool)
        .await?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        let claimed = sqlx::query(
            "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id = $3 AND lease_until <= $4 RETURNING id, kind, subject, attempts",
        )
        .bind(owner)
        .bind(until)
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await?;
        if let Some(r) = claimed {
            return Ok(Some(Job {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                subject: r.try_get("subject")?,
                attempts: r.try_get("attempts")?,
            }));
        }
    }
    Ok(None)
}

/// Moves the lease of a job `owner` holds to `until`; false when it is no longer theirs (it ran
/// out and someone else claimed it, or the job was deleted).
pub async fn renew(ex: impl Exec<'_>, id: i64, owner: &str, until: i64) -> Result<bool, DbError> {
    let r = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
        .bind(until)
        .bind(id)
        .bind(owner)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Hands a job back unfinished (this node is stopping): claimable at once, and this claim not
/// counted as an attempt.
pub async fn release(ex: impl Exec<'_>, id: i64, owner: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE jobs SET lease_until = 0, lease_owner = NULL, attempts = attempts - 1 \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .execute(ex)
    .await?;
    Ok(())
}

/// The job is over (done, or given up).
pub async fn finish(ex: impl Exec<'_>, id: i64) -> Result<(), DbError> {
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Jobs of one kind and subject still pending.
pub async fn pending(ex: impl Exec<'_>, kind: &str, subject: &str) -> Result<i64, DbError> {
    sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE kind = $1 AND subject = $2")
        .bind(kind)
        .bind(subject)
        .fetch_one(ex)
        .await?
        .try_get("n")
}
