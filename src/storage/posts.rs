//! Community posts and what hangs on them: places, tags, search pieces, likes, favourites.
//! Comments and reports are in [`super::comments`].

use sqlx::Row;

use super::{DbError, Exec};

/// What a post is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Place,
    Review,
    Market,
    Talk,
}

super::column_enum!(Kind { Place => "place", Review => "review", Market => "market", Talk => "talk" });

impl Kind {
    pub fn from_api(s: &str) -> Option<Kind> {
        Kind::parse(s).ok()
    }
}

/// Where a market listing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    OnSale,
    Reserved,
    Sold,
}

super::column_enum!(Status { OnSale => "on_sale", Reserved => "reserved", Sold => "sold" });

impl Status {
    pub fn from_api(s: &str) -> Option<Status> {
        Status::parse(s).ok()
    }
}

#[derive(Debug, Clone)]
pub struct Post {
    pub id: i64,
    pub kind: Kind,
    pub author_id: i64,
    pub author: String,
    pub title: String,
    pub body: String,
    /// Space-separated, in the author's order.
    pub tags: String,
    /// A review's place (the id of the place's post).
    pub place_id: Option<i64>,
    pub rating: Option<i64>,
    pub price: Option<i64>,
    pub condition: Option<String>,
    pub neighbourhood: Option<String>,
    pub status: Option<Status>,
    pub buyer_id: Option<i64>,
    pub buyer: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub likes: i64,
    pub comments: i64,
    pub hot: i64,
    pub hidden_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "p.id, p.kind, p.author_id, u.username AS author, p.title, p.body, p.tags, \
     p.place_id, p.rating, p.price, p.item_condition, p.neighbourhood, p.status, p.buyer_id, \
     b.username AS buyer, p.lat_e7, p.lng_e7, p.likes, p.comments, p.hot, p.hidden_at, p.created_at, \
     p.updated_at";
const FROM: &str =
    "FROM posts p JOIN users u ON u.id = p.author_id LEFT JOIN users b ON b.id = p.buyer_id";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Post, DbError> {
    Ok(Post {
        id: r.try_get("id")?,
        kind: Kind::parse(&r.try_get::<String, _>("kind")?)?,
        author_id: r.try_get("author_id")?,
        author: r.try_get("author")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        tags: r.try_get("tags")?,
        place_id: r.try_get("place_id")?,
        rating: r.try_get("rating")?,
        price: r.try_get("price")?,
        condition: r.try_get("item_condition")?,
        neighbourhood: r.try_get("neighbourhood")?,
        status: r
            .try_get::<Option<String>, _>("status")?
            .map(|s| Status::parse(&s))
            .transpose()?,
        buyer_id: r.try_get("buyer_id")?,
        buyer: r.try_get("buyer")?,
        lat: r.try_get::<Option<i64>, _>("lat_e7")?.map(from_e7),
        lng: r.try_get::<Option<i64>, _>("lng_e7")?.map(from_e7),
        likes: r.try_get("likes")?,
        comments: r.try_get("comments")?,
        hot: r.try_get("hot")?,
        hidden_at: r.try_get("hidden_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Degrees as stored: × 10⁷, an integer.
pub fn to_e7(deg: f64) -> i64 {
    (deg * 1e7).round() as i64
}

pub fn from_e7(v: i64) -> f64 {
    v as f64 / 1e7
}

/// The fields a post is written with (created or changed).
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub place_id: Option<i64>,
    pub rating: Option<i64>,
    pub price: Option<i64>,
    pub condition: Option<String>,
    pub neighbourhood: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    /// Normalised text for the `LIKE` check of a search.
    pub search_text: String,
}

pub async fn create(
    ex: impl Exec<'_>,
    kind: Kind,
    author_id: i64,
    f: &Fields,
    status: Option<Status>,
    hot: i64,
    now: i64,
) -> Result<i64, DbError> {
    let row = sqlx::query(
        "INSERT INTO posts (kind, author_id, title, body, tags, place_id, rating, price, \
         item_condition, neighbourhood, status, lat_e7, lng_e7, hot, search_text, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) \
         RETURNING id",
    )
    .bind(kind.as_str())
    .bind(author_id)
    .bind(&f.title)
    .bind(&f.body)
    .bind(f.tags.join(" "))
    .bind(f.place_id)
    .bind(f.rating)
    .bind(f.price)
    .bind(f.condition.as_deref())
    .bind(f.neighbourhood.as_deref())
    .bind(status.map(Status::as_str))
    .bind(f.lat.map(to_e7))
    .bind(f.lng.map(to_e7))
    .bind(hot)
    .bind(&f.search_text)
    .bind(now)
    .fetch_one(ex)
    .await?;
    row.try_get("id")
}

/// Rewrites a post's fields (the kind, author, counts and hot key stay).
pub async fn update(ex: impl Exec<'_>, id: i64, f: &Fields, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE posts SET title = $2, body = $3, tags = $4, rating = $5, price = $6, \
         item_condition = $7, neighbourhood = $8, lat_e7 = $9, lng_e7 = $10, search_text = $11, \
         updated_at = $12 WHERE id = $1",
    )
    .bind(id)
    .bind(&f.title)
    .bind(&f.body)
    .bind(f.tags.join(" "))
    .bind(f.rating)
    .bind(f.price)
    .bind(f.condition.as_deref())
    .bind(f.neighbourhood.as_deref())
    .bind(f.lat.map(to_e7))
    .bind(f.lng.map(to_e7))
    .bind(&f.search_text)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get(ex: impl Exec<'_>, id: i64) -> Result<Option<Post>, DbError> {
    let sql = format!("SELECT {COLUMNS} {FROM} WHERE p.id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(from_row).transpose()
}

/// Several posts by id (in no particular order).
pub async fn get_many(ex: impl Exec<'_>, ids: &[i64]) -> Result<Vec<Post>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} {FROM} WHERE p.id IN ({})",
        super::id_list(ids)
    );
    let rows = sqlx::query(&sql).fetch_all(ex).await?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(ex: impl Exec<'_>, id: i64) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM posts WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_hidden(ex: impl Exec<'_>, id: i64, at: Option<i64>) -> Result<(), DbError> {
    sqlx::query("UPDATE posts SET hidden_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_status(
    ex: impl Exec<'_>,
    id: i64,
    status: Status,
    buyer_id: Option<i64>,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE posts SET status = $2, buyer_id = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(status.as_str())
        .bind(buyer_id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Replaces a post's tags.
pub async fn set_tags(
    ex: &mut sqlx::AnyConnection,
    post_id: i64,
    tags: &[String],
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM post_tags WHERE post_id = $1")
        .bind(post_id)
        .execute(&mut *ex)
        .await?;
    for t in tags {
        sqlx::query("INSERT INTO post_tags (tag, post_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(t)
            .bind(post_id)
            .execute(&mut *ex)
            .await?;
    }
    Ok(())
}

/// Rows per `INSERT` of search pieces.
const GRAM_BATCH: usize = 400;

/// Replaces a post's search pieces.
pub async fn set_grams<'a>(
    ex: &mut sqlx::AnyConnection,
    post_id: i64,
    grams: impl IntoIterator<Item = &'a String>,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM post_grams WHERE post_id = $1")
        .bind(post_id)
        .execute(&mut *ex)
        .await?;
    let all: Vec<&String> = grams.into_iter().collect();
    for chunk in all.chunks(GRAM_BATCH) {
        let mut sql = String::from("INSERT INTO post_grams (gram, post_id) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, $1)", i + 2));
        }
        let mut q = sqlx::query(&sql).bind(post_id);
        for g in chunk {
            q = q.bind(g.as_str());
        }
        q.execute(&mut *ex).await?;
    }
    Ok(())
}

/// How a feed is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Hot,
    New,
    Top,
}

/// Where the previous page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// `(hot, id)` of the last post.
    Hot(i64, i64),
    New(i64),
    /// `(likes, id)`.
    Top(i64, i64),
}

/// What a feed shows.
#[derive(Debug, Clone)]
pub struct Feed {
    pub kind: Option<Kind>,
    pub tag: Option<String>,
    pub author_id: Option<i64>,
    /// Search pieces every post must hold.
    pub grams: Vec<String>,
    /// `LIKE` patterns the normalised text must match.
    pub patterns: Vec<String>,
    /// Centre and radius in metres.
    pub near: Option<(f64, f64, f64)>,
    /// Created at or after.
    pub since: Option<i64>,
    pub sort: Sort,
    pub after: Option<Cursor>,
    pub limit: i64,
}

enum Arg {
    I(i64),
    F(f64),
    S(String),
}

/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_320.0;

/// A page of a feed. Hidden posts are never in one.
pub async fn feed(ex: impl Exec<'_>, f: &Feed) -> Result<Vec<Post>, DbError> {
    let mut args: Vec<Arg> = Vec::new();
    let arg = |a: Arg, args: &mut Vec<Arg>| {
        args.push(a);
        format!("${}", args.len())
    };
    let mut wh = vec!["p.hidden_at IS NULL".to_string()];
    if let Some(k) = f.kind {
        let n = arg(Arg::S(k.as_str().into()), &mut args);
        wh.push(format!("p.kind = {n}"));
    }
    if let Some(a) = f.author_id {
        let n = arg(Arg::I(a), &mut args);
        wh.push(format!("p.author_id = {n}"));
    }
    if let Some(t) = &f.tag {
        let n = arg(Arg::S(t.clone()), &mut args);
        wh.push(format!(
            "p.id IN (SELECT post_id FROM post_tags WHERE tag = {n})"
        ));
    }
    if !f.grams.is_empty() {
        let list: Vec<String> = f
            .grams
            .iter()
            .map(|g| arg(Arg::S(g.clone()), &mut args))
            .collect();
        let count = arg(Arg::I(f.grams.len() as i64), &mut args);
        wh.push(format!(
            "p.id IN (SELECT post_id FROM post_grams WHERE gram IN ({}) GROUP BY post_id \
             HAVING COUNT(*) = {count})",
            list.join(", ")
        ));
    }
    for pat in &f.patterns {
        let n = arg(Arg::S(pat.clone()), &mut args);
        wh.push(format!("p.search_text LIKE {n} ESCAPE '\\'"));
    }
    if let Some((lat, lng, radius)) = f.near {
        // A box first (integers, so the index on latitude serves it), then the distance on a
        // flat earth, exact enough at a city's scale. Floats bound here are never null (a
        // null binds as a 4-byte float, and PostgreSQL keeps that type for the statement).
        let dlat = radius / M_PER_DEG;
        let cos = lat.to_radians().cos().max(0.01);
        let (lo, hi) = (
            arg(Arg::I(to_e7(lat - dlat)), &mut args),
            arg(Arg::I(to_e7(lat + dlat)), &mut args),
        );
        let (clat, clng, c2, r2) = (
            arg(Arg::F(lat * 1e7), &mut args),
            arg(Arg::F(lng * 1e7), &mut args),
            arg(Arg::F(cos * cos), &mut args),
            arg(Arg::F((dlat * 1e7) * (dlat * 1e7)), &mut args),
        );
        wh.push(format!(
            "p.lat_e7 IS NOT NULL AND p.lat_e7 BETWEEN {lo} AND {hi} AND \
             (p.lat_e7 - {clat}) * (p.lat_e7 - {clat}) \
             + (p.lng_e7 - {clng}) * (p.lng_e7 - {clng}) * {c2} <= {r2}"
        ));
    }
    if let Some(s) = f.since {
        let n = arg(Arg::I(s), &mut args);
        wh.push(format!("p.created_at >= {n}"));
    }
    let order = match f.sort {
        Sort::Hot => "p.hot DESC, p.id DESC",
        Sort::New => "p.id DESC",
        Sort::Top => "p.likes DESC, p.id DESC",
    };
    match f.after {
        Some(Cursor::Hot(h, id)) => {
            let (a, b, c) = (
                arg(Arg::I(h), &mut args),
                arg(Arg::I(h), &mut args),
                arg(Arg::I(id), &mut args),
            );
            wh.push(format!("(p.hot < {a} OR (p.hot = {b} AND p.id < {c}))"));
        }
        Some(Cursor::New(id)) => {
            let n = arg(Arg::I(id), &mut args);
            wh.push(format!("p.id < {n}"));
        }
        Some(Cursor::Top(l, id)) => {
            let (a, b, c) = (
                arg(Arg::I(l), &mut args),
                arg(Arg::I(l), &mut args),
                arg(Arg::I(id), &mut args),
            );
            wh.push(format!("(p.likes < {a} OR (p.likes = {b} AND p.id < {c}))"));
        }
        None => {}
    }
    let limit = arg(Arg::I(f.limit), &mut args);
    let sql = format!(
        "SELECT {COLUMNS} {FROM} WHERE {} ORDER BY {order} LIMIT {limit}",
        wh.join(" AND ")
    );
    let mut q = sqlx::query(&sql);
    for a in args {
        q = match a {
            Arg::I(v) => q.bind(v),
            Arg::F(v) => q.bind(v),
            Arg::S(v) => q.bind(v),
        };
    }
    let rows = q.fetch_all(ex).await?;
    rows.iter().map(from_row).collect()
}

/// The hot feed's SQL with no filter, for the test that it uses its index.
pub const HOT_FEED_SQL: &str = "SELECT p.id FROM posts p WHERE p.hidden_at IS NULL \
     ORDER BY p.hot DESC, p.id DESC LIMIT 20";

/// Adds a like; false if it was there. Returns the new count.
pub async fn like(
    ex: &mut sqlx::AnyConnection,
    post_id: i64,
    user_id: i64,
    now: i64,
) -> Result<Option<(i64, i64)>, DbError> {
    let r = sqlx::query(
        "INSERT INTO post_likes (post_id, user_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(post_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *ex)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    bump_likes(ex, post_id, 1).await.map(Some)
}

/// Takes a like back; `None` if there was none.
pub async fn unlike(
    ex: &mut sqlx::AnyConnection,
    post_id: i64,
    user_id: i64,
) -> Result<Option<(i64, i64)>, DbError> {
    let r = sqlx::query("DELETE FROM post_likes WHERE post_id = $1 AND user_id = $2")
        .bind(post_id)
        .bind(user_id)
        .execute(&mut *ex)
        .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    bump_likes(ex, post_id, -1).await.map(Some)
}

/// Changes the count; returns `(likes, created_at)` so the caller can write the hot key.
async fn bump_likes(
    ex: &mut sqlx::AnyConnection,
    post_id: i64,
    by: i64,
) -> Result<(i64, i64), DbError> {
    let row = sqlx::query(
        "UPDATE posts SET likes = likes + $2 WHERE id = $1 RETURNING likes, created_at",
    )
    .bind(post_id)
    .bind(by)
    .fetch_one(&mut *ex)
    .await?;
    Ok((row.try_get("likes")?, row.try_get("created_at")?))
}

pub async fn set_hot(ex: impl Exec<'_>, post_id: i64, hot: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE posts SET hot = $2 WHERE id = $1")
        .bind(post_id)
        .bind(hot)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn likes_count(ex: impl Exec<'_>, post_id: i64) -> Result<i64, DbError> {
    sqlx::query("SELECT likes FROM posts WHERE id = $1")
        .bind(post_id)
        .fetch_one(ex)
        .await?
        .try_get("likes")
}

/// Which of `post_ids` `user_id` likes.
pub async fn liked_among(
    ex: impl Exec<'_>,
    user_id: i64,
    post_ids: &[i64],
) -> Result<Vec<i64>, DbError> {
    among(ex, "post_likes", user_id, post_ids).await
}

/// Which of `post_ids` `user_id` keeps as favourites.
pub async fn favorite_among(
    ex: impl Exec<'_>,
    user_id: i64,
    post_ids: &[i64],
) -> Result<Vec<i64>, DbError> {
    among(ex, "post_favorites", user_id, post_ids).await
}

async fn among(
    ex: impl Exec<'_>,
    table: &'static str,
    user_id: i64,
    post_ids: &[i64],
) -> Result<Vec<i64>, DbError> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT post_id FROM {table} WHERE user_id = $1 AND post_id IN ({})",
        super::id_list(post_ids)
    );
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(ex).await?;
    rows.iter().map(|r| r.try_get("post_id")).collect()
}

pub async fn favorite(
    ex: impl Exec<'_>,
    post_id: i64,
    user_id: i64,
    on: bool,
    now: i64,
) -> Result<(), DbError> {
    let q = if on {
        sqlx::query(
            "INSERT INTO post_favorites (user_id, post_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(post_id)
        .bind(now)
    } else {
        sqlx::query("DELETE FROM post_favorites WHERE user_id = $1 AND post_id = $2")
            .bind(user_id)
            .bind(post_id)
    };
    q.execute(ex).await?;
    Ok(())
}

/// A member's favourites, newest first.
pub async fn favorites_of(
    ex: impl Exec<'_>,
    user_id: i64,
    limit: i64,
) -> Result<Vec<Post>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} {FROM} JOIN post_favorites f ON f.post_id = p.id \
         WHERE f.user_id = $1 AND p.hidden_at IS NULL ORDER BY f.created_at DESC LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(user_id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(from_row).collect()
}

/// A place's details.
#[derive(Debug, Clone)]
pub struct Place {
    pub post_id: i64,
    pub name: String,
    pub category: String,
    pub address: Option<String>,
    pub hours: Option<String>,
    pub phone: Option<String>,
    pub rating_sum: i64,
    pub rating_count: i64,
}

fn place_from_row(r: &sqlx::any::AnyRow) -> Result<Place, DbError> {
    Ok(Place {
        post_id: r.try_get("post_id")?,
        name: r.try_get("name")?,
        category: r.try_get("category")?,
        address: r.try_get("address")?,
        hours: r.try_get("hours")?,
        phone: r.try_get("phone")?,
        rating_sum: r.try_get("rating_sum")?,
        rating_count: r.try_get("rating_count")?,
    })
}

/// Writes a place's details (created or changed; the ratings stay).
pub async fn put_place(ex: impl Exec<'_>, p: &Place) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO places (post_id, name, category, address, hours, phone) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (post_id) DO UPDATE SET name = $2, \
         category = $3, address = $4, hours = $5, phone = $6",
    )
    .bind(p.post_id)
    .bind(&p.name)
    .bind(&p.category)
    .bind(p.address.as_deref())
    .bind(p.hours.as_deref())
    .bind(p.phone.as_deref())
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn places(ex: impl Exec<'_>, post_ids: &[i64]) -> Result<Vec<Place>, DbError> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT post_id, name, category, address, hours, phone, rating_sum, rating_count \
         FROM places WHERE post_id IN ({})",
        super::id_list(post_ids)
    );
    let rows = sqlx::query(&sql).fetch_all(ex).await?;
    rows.iter().map(place_from_row).collect()
}

/// Counts a place's rating again from its visible reviews.
pub async fn recount_rating(ex: impl Exec<'_>, place_id: i64) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE places SET \
         rating_sum = (SELECT COALESCE(SUM(r.rating), 0) FROM posts r \
           WHERE r.place_id = $1 AND r.kind = 'review' AND r.hidden_at IS NULL), \
         rating_count = (SELECT COUNT(*) FROM posts r \
           WHERE r.place_id = $1 AND r.kind = 'review' AND r.hidden_at IS NULL) \
         WHERE post_id = $1",
    )
    .bind(place_id)
    .execute(ex)
    .await?;
    Ok(())
}

/// Whether members other than `author_id` reviewed a place.
pub async fn has_others_reviews(
    ex: impl Exec<'_>,
    place_id: i64,
    author_id: i64,
) -> Result<bool, DbError> {
    let row = sqlx::query(
        "SELECT 1 AS x FROM posts WHERE place_id = $1 AND kind = 'review' AND author_id <> $2 \
         LIMIT 1",
    )
    .bind(place_id)
    .bind(author_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}

/// All reviews' rating sum and count on the site, for the Bayesian prior.
pub async fn site_ratings(ex: impl Exec<'_>) -> Result<(i64, i64), DbError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(rating_sum), 0) AS BIGINT) AS s, \
         CAST(COALESCE(SUM(rating_count), 0) AS BIGINT) AS n FROM places",
    )
    .fetch_one(ex)
    .await?;
    Ok((row.try_get("s")?, row.try_get("n")?))
}

/// A place's visible reviews, newest first.
pub async fn reviews_of(
    ex: impl Exec<'_>,
    place_id: i64,
    limit: i64,
) -> Result<Vec<Post>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} {FROM} WHERE p.place_id = $1 AND p.kind = 'review' \
         AND p.hidden_at IS NULL ORDER BY p.id DESC LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(place_id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Posts with the most likes given since `since`: `(post id, likes in the period)`.
pub async fn most_liked_since(
    ex: impl Exec<'_>,
    since: i64,
    limit: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let rows = sqlx::query(
        "SELECT l.post_id, COUNT(*) AS n FROM post_likes l JOIN posts p ON p.id = l.post_id \
         WHERE l.created_at >= $1 AND p.hidden_at IS NULL GROUP BY l.post_id \
         ORDER BY n DESC, l.post_id DESC LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("post_id")?, r.try_get("n")?)))
        .collect()
}

/// Places reviewed since `since`: `(place id, rating sum, review count)` in the period.
pub async fn reviewed_since(
    ex: impl Exec<'_>,
    since: i64,
) -> Result<Vec<(i64, i64, i64)>, DbError> {
    let rows = sqlx::query(
        "SELECT p.place_id, CAST(SUM(p.rating) AS BIGINT) AS s, COUNT(*) AS n FROM posts p \
         JOIN posts pl ON pl.id = p.place_id \
         WHERE p.kind = 'review' AND p.created_at >= $1 AND p.hidden_at IS NULL \
         AND pl.hidden_at IS NULL GROUP BY p.place_id",
    )
    .bind(since)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("place_id")?, r.try_get("s")?, r.try_get("n")?)))
        .collect()
}

/// Whether a member has reviewed a place.
pub async fn has_review(ex: impl Exec<'_>, user_id: i64, place_id: i64) -> Result<bool, DbError> {
    let row = sqlx::query(
        "SELECT 1 AS x FROM posts WHERE author_id = $1 AND place_id = $2 AND kind = 'review'",
    )
    .bind(user_id)
    .bind(place_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}

/// The room a buyer has with a listing's seller, if any.
pub async fn contact_room(
    ex: impl Exec<'_>,
    post_id: i64,
    buyer_id: i64,
) -> Result<Option<String>, DbError> {
    let row = sqlx::query(
        "SELECT r.slug FROM market_contacts m JOIN rooms r ON r.id = m.room_id \
         WHERE m.post_id = $1 AND m.buyer_id = $2",
    )
    .bind(post_id)
    .bind(buyer_id)
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("slug")).transpose()
}

/// Records a buyer's room; false when the buyer has one already (another press won).
pub async fn add_contact(
    ex: impl Exec<'_>,
    post_id: i64,
    buyer_id: i64,
    room_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let r = sqlx::query(
        "INSERT INTO market_contacts (post_id, buyer_id, room_id, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(post_id)
    .bind(buyer_id)
    .bind(room_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A buyer–seller room of a listing.
#[derive(Debug, Clone)]
pub struct Contact {
    pub post_id: i64,
    pub title: String,
    pub status: Option<Status>,
    pub seller_id: i64,
    pub seller: String,
    pub buyer_id: i64,
    pub buyer: String,
    pub slug: String,
    pub created_at: i64,
    pub last_activity_at: i64,
}

/// The rooms a member has as a seller or a buyer, most recently active first.
pub async fn contacts_of(
    ex: impl Exec<'_>,
    user_id: i64,
    limit: i64,
) -> Result<Vec<Contact>, DbError> {
    let rows = sqlx::query(
        "SELECT m.post_id, p.title, p.status, p.author_id AS seller_id, s.username AS seller, \
         m.buyer_id, b.username AS buyer, r.slug, m.created_at, r.last_activity_at \
         FROM market_contacts m JOIN posts p ON p.id = m.post_id \
         JOIN users s ON s.id = p.author_id JOIN users b ON b.id = m.buyer_id \
         JOIN rooms r ON r.id = m.room_id \
         WHERE m.buyer_id = $1 OR p.author_id = $1 \
         ORDER BY r.last_activity_at DESC, m.created_at DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Contact {
                post_id: r.try_get("post_id")?,
                title: r.try_get("title")?,
                status: r
                    .try_get::<Option<String>, _>("status")?
                    .map(|s| Status::parse(&s))
                    .transpose()?,
                seller_id: r.try_get("seller_id")?,
                seller: r.try_get("seller")?,
                buyer_id: r.try_get("buyer_id")?,
                buyer: r.try_get("buyer")?,
                slug: r.try_get("slug")?,
                created_at: r.try_get("created_at")?,
                last_activity_at: r.try_get("last_activity_at")?,
            })
        })
        .collect()
}
