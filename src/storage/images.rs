//! Photos' records; the files themselves are blobs under `images/{public_id}/`.

use sqlx::Row;

use super::{DbError, Exec};

#[derive(Debug, Clone)]
pub struct Image {
    pub id: i64,
    pub public_id: String,
    pub owner_id: i64,
    pub post_id: Option<i64>,
    pub position: i64,
    pub width: i64,
    pub height: i64,
    pub thumbhash: String,
    /// `jpg` or `webp`.
    pub ext: String,
    /// The served sizes: `large:WxH medium:WxH thumb:WxH`.
    pub sizes: String,
    pub bytes: i64,
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, public_id, owner_id, post_id, position, width, height, thumbhash, ext, sizes, bytes, created_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Image, DbError> {
    Ok(Image {
        id: r.try_get("id")?,
        public_id: r.try_get("public_id")?,
        owner_id: r.try_get("owner_id")?,
        post_id: r.try_get("post_id")?,
        position: r.try_get("position")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        thumbhash: r.try_get("thumbhash")?,
        ext: r.try_get("ext")?,
        sizes: r.try_get("sizes")?,
        bytes: r.try_get("bytes")?,
        created_at: r.try_get("created_at")?,
    })
}

/// What a new record holds.
pub struct NewImage<'a> {
    pub public_id: &'a str,
    pub owner_id: i64,
    pub width: i64,
    pub height: i64,
    pub thumbhash: &'a str,
    pub ext: &'a str,
    pub sizes: &'a str,
    pub bytes: i64,
}

pub async fn create(ex: impl Exec<'_>, n: &NewImage<'_>, now: i64) -> Result<Image, DbError> {
    let sql = format!(
        "INSERT INTO images (public_id, owner_id, width, height, thumbhash, ext, sizes, bytes, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(n.public_id)
        .bind(n.owner_id)
        .bind(n.width)
        .bind(n.height)
        .bind(n.thumbhash)
        .bind(n.ext)
        .bind(n.sizes)
        .bind(n.bytes)
        .bind(now)
        .fetch_one(ex)
        .await?;
    from_row(&row)
}

pub async fn get(ex: impl Exec<'_>, public_id: &str) -> Result<Option<Image>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM images WHERE public_id = $1");
    let row = sqlx::query(&sql).bind(public_id).fetch_optional(ex).await?;
    row.as_ref().map(from_row).transpose()
}

/// The images of several posts, each post's in its order.
pub async fn of_posts(ex: impl Exec<'_>, post_ids: &[i64]) -> Result<Vec<Image>, DbError> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = super::id_list(post_ids);
    let sql = format!(
        "SELECT {COLUMNS} FROM images WHERE post_id IN ({list}) ORDER BY post_id, position, id"
    );
    let rows = sqlx::query(&sql).fetch_all(ex).await?;
    rows.iter().map(from_row).collect()
}

/// Attaches `public_ids` to a post in that order, detaching whatever else it had. Only images
/// of `owner_id` not already on another post are taken; returns how many were.
pub async fn attach(
    ex: &mut sqlx::AnyConnection,
    post_id: i64,
    owner_id: i64,
    public_ids: &[String],
) -> Result<usize, DbError> {
    sqlx::query("UPDATE images SET post_id = NULL, position = 0 WHERE post_id = $1")
        .bind(post_id)
        .execute(&mut *ex)
        .await?;
    let mut n = 0;
    for (i, id) in public_ids.iter().enumerate() {
        let r = sqlx::query(
            "UPDATE images SET post_id = $1, position = $2 WHERE public_id = $3 \
             AND owner_id = $4 AND post_id IS NULL",
        )
        .bind(post_id)
        .bind(i as i64)
        .bind(id)
        .bind(owner_id)
        .execute(&mut *ex)
        .await?;
        n += r.rows_affected() as usize;
    }
    Ok(n)
}

/// Images no post holds, older than `before`, for the cleaner.
pub async fn unattached(ex: impl Exec<'_>, before: i64, limit: i64) -> Result<Vec<Image>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM images WHERE post_id IS NULL AND created_at < $1 \
         ORDER BY created_at LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(before)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(ex: impl Exec<'_>, id: i64) -> Result<(), DbError> {
    sqlx::query("DELETE FROM images WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Deletes a photo only if no post holds it (a post may have taken it since it was listed).
pub async fn delete_unattached(ex: impl Exec<'_>, id: i64) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM images WHERE id = $1 AND post_id IS NULL")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Bytes of a member's photos, for the storage quota.
pub async fn bytes_of(ex: impl Exec<'_>, owner_id: i64) -> Result<i64, DbError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS n FROM images WHERE owner_id = $1",
    )
    .bind(owner_id)
    .fetch_one(ex)
    .await?;
    row.try_get("n")
}
