//! The community beside the rooms: posts of four kinds (place info, reviews of places, market
//! listings, talk), with photos, tags, likes, favourites, comments with one level of replies,
//! reports, and the orders of [`super::rank`]. Every write is one transaction; the hot key is
//! rewritten in the like's own transaction.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::policy::{self, PostAction};
use super::{images as photo_sizes, rank, search, text, Error, Result};
use crate::storage::comments::{self, Comment};
use crate::storage::images::{self, Image};
use crate::storage::posts::{self, Cursor, Feed, Fields, Kind, Place, Post, Sort, Status};
use crate::storage::users::{self, User};
use crate::storage::{now_ms, rfc3339, Db};
use crate::views::{AuthorView, CommentView, ImageView, PlaceView, PostView, RatingView};

pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_BODY_CHARS: usize = 10_000;
pub const MAX_COMMENT_CHARS: usize = 2_000;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_CHARS: usize = 30;
pub const MAX_IMAGES: usize = 10;
/// Comments a post shows (the oldest this many).
pub const MAX_COMMENTS_SHOWN: i64 = 1000;
/// Longest feed page.
pub const MAX_PAGE: i64 = 100;
/// Widest "near" search, in metres.
pub const MAX_RADIUS_M: f64 = 50_000.0;
/// Reviews a place page shows.
const REVIEWS_SHOWN: i64 = 100;
/// Entries of a ranking.
const RANKING_SIZE: usize = 50;

/// What a place may be.
pub const CATEGORIES: &[&str] = &[
    "restaurant",
    "cafe",
    "bar",
    "hospital",
    "hotel",
    "park",
    "shop",
    "grooming",
    "culture",
    "other",
];
/// What a market item's condition may be.
pub const CONDITIONS: &[&str] = &["new", "like_new", "good", "fair", "poor"];

/// A place as a post gives it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceInput {
    pub name: String,
    pub category: String,
    pub address: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub hours: Option<String>,
    pub phone: Option<String>,
}

/// A new post, or (all optional) a change to one.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostInput {
    pub kind: Option<String>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
    pub image_ids: Option<Vec<String>>,
    pub place: Option<PlaceInput>,
    pub place_id: Option<String>,
    pub rating: Option<i64>,
    pub price: Option<i64>,
    pub condition: Option<String>,
    pub neighbourhood: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    /// Market only, PATCH only.
    pub status: Option<String>,
    /// The buyer a listing is reserved for or sold to (PATCH with `status`).
    pub buyer: Option<String>,
    /// Moderators, PATCH only.
    pub hidden: Option<bool>,
}

/// A feed asked for.
#[derive(Debug, Clone, Default)]
pub struct FeedQuery {
    pub kind: Option<String>,
    pub tag: Option<String>,
    pub q: Option<String>,
    /// `LAT,LNG`.
    pub near: Option<String>,
    pub radius_m: Option<f64>,
    pub sort: Option<String>,
    pub period: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    pub author: Option<String>,
}

/// One entry of a ranking.
pub struct Ranked {
    pub post: PostView,
    pub score: f64,
}

const ALREADY_REVIEWED: &str = "you have reviewed this place already; change that review";

/// The 422 for one wrong field.
fn field_error(field: &'static str, why: &str) -> Error {
    let mut p = Problems::default();
    p.add(field, why);
    p.done().expect_err("one problem was added")
}

/// The 422 when `image_ids` names a photo the post cannot take.
fn photos_not_taken() -> Error {
    field_error(
        "image_ids",
        "a photo is unknown, someone else's or on another post",
    )
}

/// Collects what is wrong with each field, for one 422.
#[derive(Default)]
struct Problems(Vec<(&'static str, String)>);

impl Problems {
    fn add(&mut self, field: &'static str, why: impl Into<String>) {
        self.0.push((field, why.into()));
    }
    fn done(self) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let message = self
            .0
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::Unprocessable {
            message,
            fields: self.0,
        })
    }
}

fn line(p: &mut Problems, field: &'static str, raw: &str, max: usize) -> Option<String> {
    match text::clean_line(raw, max) {
        Ok(s) => Some(s),
        Err(text::TextError::Empty) => {
            p.add(field, "needs at least one visible character");
            None
        }
        Err(text::TextError::TooLong) => {
            p.add(field, format!("must be at most {max} characters"));
            None
        }
    }
}

fn optional_line(
    p: &mut Problems,
    field: &'static str,
    raw: Option<&str>,
    max: usize,
) -> Option<String> {
    match raw.map(str::trim) {
        None | Some("") => None,
        Some(r) => line(p, field, r, max),
    }
}

fn clean_tags(p: &mut Problems, raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if raw.len() > MAX_TAGS {
        p.add("tags", format!("at most {MAX_TAGS} tags"));
        return out;
    }
    for t in raw {
        let t = search::normalise(t.trim().trim_start_matches('#'));
        let ok = !t.is_empty()
            && t.chars().count() <= MAX_TAG_CHARS
            && t.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !ok {
            p.add(
                "tags",
                format!("a tag is 1 to {MAX_TAG_CHARS} letters, digits, _ or -"),
            );
            return Vec::new();
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn check_point(p: &mut Problems, lat: Option<f64>, lng: Option<f64>) -> (Option<f64>, Option<f64>) {
    match (lat, lng) {
        (None, None) => (None, None),
        (Some(a), Some(b)) if (-90.0..=90.0).contains(&a) && (-180.0..=180.0).contains(&b) => {
            (Some(a), Some(b))
        }
        (Some(_), Some(_)) => {
            p.add("lat", "lat is -90 to 90 and lng -180 to 180");
            (None, None)
        }
        _ => {
            p.add("lat", "give both lat and lng, or neither");
            (None, None)
        }
    }
}

fn parse_id(raw: &str, what: &str) -> Result<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::not_found(what))
}

fn search_text(f: &Fields, place: Option<&Place>) -> String {
    let mut all = String::new();
    all.push_str(&f.title);
    all.push('\n');
    all.push_str(&f.tags.join(" "));
    if let Some(pl) = place {
        all.push('\n');
        all.push_str(&pl.name);
        if let Some(a) = &pl.address {
            all.push(' ');
            all.push_str(a);
        }
    }
    if let Some(n) = &f.neighbourhood {
        all.push('\n');
        all.push_str(n);
    }
    all.push('\n');
    all.push_str(&f.body);
    search::normalise(&all)
}

#[derive(Clone)]
pub struct Community {
    db: Db,
    /// Posts, comments and reports per member: 20 at once, then one every 6 s.
    writes: std::sync::Arc<crate::auth::limiter::KeyedLimiter<i64>>,
    /// Likes, favourites and votes per member: 60 at once, then two a second.
    reactions: std::sync::Arc<crate::auth::limiter::KeyedLimiter<i64>>,
    /// The site's mean rating (the Bayesian prior) and when it was read: summing every place
    /// for each page would cost more than the page. Forgotten on this node's rating changes;
    /// another node's show within [`MEAN_TTL`].
    mean: std::sync::Arc<parking_lot::Mutex<Option<(std::time::Instant, f64)>>>,
}

/// Longest the site's mean rating is reused.
const MEAN_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// `Ok` while `user` is within `limiter`'s pace.
fn paced(limiter: &crate::auth::limiter::KeyedLimiter<i64>, user: &User) -> Result<()> {
    limiter.check(&user.id).map_err(|wait| Error::RateLimited {
        retry_after_s: wait.as_secs().max(1),
    })
}

impl Community {
    pub fn new(db: Db) -> Community {
        use crate::auth::limiter::KeyedLimiter;
        Community {
            db,
            writes: std::sync::Arc::new(KeyedLimiter::new(20, 1.0 / 6.0, 100_000)),
            reactions: std::sync::Arc::new(KeyedLimiter::new(60, 2.0, 100_000)),
            mean: Default::default(),
        }
    }

    /// The site's mean rating, from the cache when fresh.
    async fn site_mean(&self) -> Result<f64> {
        if let Some((at, m)) = *self.mean.lock() {
            if at.elapsed() < MEAN_TTL {
                return Ok(m);
            }
        }
        let (s, n) = posts::site_ratings(&self.db.pool).await?;
        let m = if n > 0 {
            s as f64 / n as f64
        } else {
            rank::BAYES_DEFAULT_MEAN
        };
        *self.mean.lock() = Some((std::time::Instant::now(), m));
        Ok(m)
    }

    /// A rating changed: the next page reads the mean afresh.
    fn ratings_changed(&self) {
        *self.mean.lock() = None;
    }

    async fn post(&self, id: &str) -> Result<Post> {
        let id = parse_id(id, "post")?;
        posts::get(&self.db.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("post"))
    }

    /// A post the caller may see: hidden ones only to their author and moderators.
    async fn visible(&self, viewer: Option<&User>, id: &str) -> Result<Post> {
        let p = self.post(id).await?;
        if p.hidden_at.is_some() && !policy::may_post(viewer, p.author_id, PostAction::Edit) {
            return Err(Error::not_found("post"));
        }
        Ok(p)
    }

    /// Writes a new post.
    pub async fn create(&self, user: &User, input: PostInput) -> Result<PostView> {
        let mut p = Problems::default();
        let kind = match input.kind.as_deref().map(Kind::from_api) {
            Some(Some(k)) => Some(k),
            _ => {
                p.add("kind", "must be place, review, market or talk");
                None
            }
        };
        for (field, given) in [
            ("status", input.status.is_some()),
            ("buyer", input.buyer.is_some()),
            ("hidden", input.hidden.is_some()),
        ] {
            if given {
                p.add(field, "is set by changing the post, not when writing it");
            }
        }
        let Some(kind) = kind else {
            p.done()?;
            unreachable!("a missing kind is a problem");
        };
        let (fields, place) = self.fields(&mut p, kind, &input, None).await?;
        let image_ids = input.image_ids.clone().unwrap_or_default();
        if image_ids.len() > MAX_IMAGES {
            p.add("image_ids", format!("at most {MAX_IMAGES} photos"));
        }
        if kind == Kind::Review {
            if let Some(place_id) = fields.place_id {
                if posts::has_review(&self.db.pool, user.id, place_id).await? {
                    p.add(
                        "place_id",
                        "you have reviewed this place already; change that review",
                    );
                }
            }
        }
        p.done()?;
        paced(&self.writes, user)?;
        let now = now_ms();
        let status = (kind == Kind::Market).then_some(Status::OnSale);
        let mut tx = self.db.begin().await?;
        let id = match posts::create(
            &mut *tx,
            kind,
            user.id,
            &fields,
            status,
            rank::hot(0, now),
            now,
        )
        .await
        {
            Ok(id) => id,
            // Two reviews of one place sent at once: the index keeps one.
            Err(e) if crate::storage::is_unique_violation(&e) => {
                return Err(field_error("place_id", ALREADY_REVIEWED))
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(mut pl) = place.clone() {
            pl.post_id = id;
            posts::put_place(&mut *tx, &pl).await?;
        }
        posts::set_tags(&mut tx, id, &fields.tags).await?;
        posts::set_grams(&mut tx, id, &search::grams(&fields.search_text)).await?;
        if let Some(place_id) = fields.place_id {
            posts::recount_rating(&mut *tx, place_id).await?;
            self.ratings_changed();
        }
        let taken = images::attach(&mut tx, id, user.id, &image_ids).await?;
        if taken != image_ids.len() {
            return Err(photos_not_taken());
        }
        tx.commit().await?;
        self.get(Some(user), &id.to_string()).await
    }

    /// Checks and cleans the fields of a post of `kind` (`old`: the post being changed, whose
    /// values stand where the input gives none).
    async fn fields(
        &self,
        p: &mut Problems,
        kind: Kind,
        input: &PostInput,
        old: Option<(&Post, Option<&Place>)>,
    ) -> Result<(Fields, Option<Place>)> {
        let old_post = old.map(|o| o.0);
        let title = match (&input.title, old_post) {
            (Some(t), _) => line(p, "title", t, MAX_TITLE_CHARS).unwrap_or_default(),
            (None, Some(o)) => o.title.clone(),
            (None, None) => match (&input.place, kind) {
                (Some(pl), Kind::Place) => {
                    line(p, "title", &pl.name, MAX_TITLE_CHARS).unwrap_or_default()
                }
                _ => {
                    p.add("title", "is required");
                    String::new()
                }
            },
        };
        let body = match (&input.body, old_post) {
            (Some(b), _) => match text::clean_block(b, MAX_BODY_CHARS) {
                Ok(b) => b,
                Err(text::TextError::Empty) if kind != Kind::Talk && kind != Kind::Review => {
                    String::new()
                }
                Err(text::TextError::Empty) => {
                    p.add("body", "needs at least one visible character");
                    String::new()
                }
                Err(text::TextError::TooLong) => {
                    p.add(
                        "body",
                        format!("must be at most {MAX_BODY_CHARS} characters"),
                    );
                    String::new()
                }
            },
            (None, Some(o)) => o.body.clone(),
            (None, None) if kind == Kind::Talk || kind == Kind::Review => {
                p.add("body", "is required");
                String::new()
            }
            (None, None) => String::new(),
        };
        let tags = match (&input.tags, old_post) {
            (Some(t), _) => clean_tags(p, t),
            (None, Some(o)) => o
                .tags
                .split(' ')
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            (None, None) => Vec::new(),
        };
        let mut f = Fields {
            title,
            body,
            tags,
            ..Fields::default()
        };
        let not_for = |p: &mut Problems, field: &'static str, given: bool| {
            if given {
                p.add(field, format!("is not part of a {} post", kind.as_str()));
            }
        };
        let mut place = None;
        match kind {
            Kind::Place => {
                not_for(p, "place_id", input.place_id.is_some());
                not_for(p, "rating", input.rating.is_some());
                not_for(p, "price", input.price.is_some());
                not_for(p, "condition", input.condition.is_some());
                let old_place = old.and_then(|o| o.1);
                match (&input.place, old_place) {
                    (Some(pl), _) => {
                        let name = line(p, "place.name", &pl.name, 100).unwrap_or_default();
                        let category = pl.category.trim().to_ascii_lowercase();
                        if !CATEGORIES.contains(&category.as_str()) {
                            p.add(
                                "place.category",
                                format!("must be one of {}", CATEGORIES.join(", ")),
                            );
                        }
                        let (lat, lng) = check_point(p, pl.lat, pl.lng);
                        f.lat = lat;
                        f.lng = lng;
                        place = Some(Place {
                            post_id: old_post.map_or(0, |o| o.id),
                            name,
                            category,
                            address: optional_line(p, "place.address", pl.address.as_deref(), 200),
                            hours: optional_line(p, "place.hours", pl.hours.as_deref(), 200),
                            phone: optional_line(p, "place.phone", pl.phone.as_deref(), 40),
                            rating_sum: 0,
                            rating_count: 0,
                        });
                    }
                    (None, Some(op)) => {
                        f.lat = old_post.and_then(|o| o.lat);
                        f.lng = old_post.and_then(|o| o.lng);
                        place = Some(op.clone());
                    }
                    (None, None) => p.add("place", "a place post needs its place"),
                }
            }
            Kind::Review => {
                not_for(p, "place", input.place.is_some());
                not_for(p, "price", input.price.is_some());
                not_for(p, "condition", input.condition.is_some());
                match (&input.place_id, old_post) {
                    (Some(raw), None) => {
                        let target = match raw.parse::<i64>() {
                            Ok(n) => posts::get(&self.db.pool, n).await?,
                            Err(_) => None,
                        };
                        match target {
                            Some(t) if t.kind == Kind::Place && t.hidden_at.is_none() => {
                                f.place_id = Some(t.id)
                            }
                            _ => p.add("place_id", "no such place"),
                        }
                    }
                    (Some(_), Some(_)) => p.add("place_id", "a review stays with its place"),
                    (None, Some(o)) => f.place_id = o.place_id,
                    (None, None) => p.add("place_id", "a review needs the place it reviews"),
                }
                match (input.rating, old_post) {
                    (Some(r), _) if (1..=5).contains(&r) => f.rating = Some(r),
                    (Some(_), _) => p.add("rating", "must be 1 to 5"),
                    (None, Some(o)) => f.rating = o.rating,
                    (None, None) => p.add("rating", "a review needs 1 to 5 stars"),
                }
            }
            Kind::Market => {
                not_for(p, "place", input.place.is_some());
                not_for(p, "place_id", input.place_id.is_some());
                not_for(p, "rating", input.rating.is_some());
                match (input.price, old_post) {
                    (Some(pr), _) if (0..=1_000_000_000_000).contains(&pr) => f.price = Some(pr),
                    (Some(_), _) => p.add("price", "must be 0 (free) or more"),
                    (None, Some(o)) => f.price = o.price,
                    (None, None) => p.add("price", "a listing needs a price (0 gives it away)"),
                }
                f.condition = match (&input.condition, old_post) {
                    (Some(c), _) if CONDITIONS.contains(&c.as_str()) => Some(c.clone()),
                    (Some(_), _) => {
                        p.add(
                            "condition",
                            format!("must be one of {}", CONDITIONS.join(", ")),
                        );
                        None
                    }
                    (None, Some(o)) => o.condition.clone(),
                    (None, None) => None,
                };
                f.neighbourhood = match (&input.neighbourhood, old_post) {
                    (Some(n), _) => optional_line(p, "neighbourhood", Some(n), 60),
                    (None, Some(o)) => o.neighbourhood.clone(),
                    (None, None) => None,
                };
            }
            Kind::Talk => {
                not_for(p, "place", input.place.is_some());
                not_for(p, "place_id", input.place_id.is_some());
                not_for(p, "rating", input.rating.is_some());
                not_for(p, "price", input.price.is_some());
                not_for(p, "condition", input.condition.is_some());
            }
        }
        if kind != Kind::Place {
            if input.lat.is_some() || input.lng.is_some() {
                let (lat, lng) = check_point(p, input.lat, input.lng);
                f.lat = lat;
                f.lng = lng;
            } else if let Some(o) = old_post {
                f.lat = o.lat;
                f.lng = o.lng;
            }
        } else if input.lat.is_some() || input.lng.is_some() {
            p.add("lat", "a place's pin is place.lat and place.lng");
        }
        if kind != Kind::Market && input.neighbourhood.is_some() {
            p.add("neighbourhood", "is part of a market listing");
        }
        f.search_text = search_text(&f, place.as_ref());
        Ok((f, place))
    }

    /// One post as `viewer` sees it.
    pub async fn get(&self, viewer: Option<&User>, id: &str) -> Result<PostView> {
        let p = self.visible(viewer, id).await?;
        Ok(self.views(viewer, vec![p]).await?.remove(0))
    }

    /// Changes a post: its text and details (author, moderators), its market status (the
    /// seller), or whether it is hidden (moderators).
    pub async fn update(&self, user: &User, id: &str, input: PostInput) -> Result<PostView> {
        let post = self.visible(Some(user), id).await?;
        let content = input.title.is_some()
            || input.body.is_some()
            || input.tags.is_some()
            || input.image_ids.is_some()
            || input.place.is_some()
            || input.place_id.is_some()
            || input.rating.is_some()
            || input.price.is_some()
            || input.condition.is_some()
            || input.neighbourhood.is_some()
            || input.lat.is_some()
            || input.lng.is_some();
        if content {
            policy::require_post(Some(user), post.author_id, PostAction::Edit)?;
        }
        if input.status.is_some() || input.buyer.is_some() {
            policy::require_post(Some(user), post.author_id, PostAction::SetStatus)?;
        }
        if input.hidden.is_some() {
            policy::require_post(Some(user), post.author_id, PostAction::Moderate)?;
        }
        let mut p = Problems::default();
        if input
            .kind
            .as_deref()
            .is_some_and(|k| k != post.kind.as_str())
        {
            p.add("kind", "a post keeps its kind");
        }
        let old_place = if post.kind == Kind::Place {
            posts::places(&self.db.pool, &[post.id]).await?.pop()
        } else {
            None
        };
        let (fields, place) = self
            .fields(&mut p, post.kind, &input, Some((&post, old_place.as_ref())))
            .await?;
        let status = match (&input.status, post.kind) {
            (None, _) => None,
            (Some(s), Kind::Market) => match Status::from_api(s) {
                Some(s) => Some(s),
                None => {
                    p.add("status", "must be on_sale, reserved or sold");
                    None
                }
            },
            (Some(_), _) => {
                p.add("status", "only market listings have a status");
                None
            }
        };
        let mut buyer_id = None;
        match (status, &input.buyer) {
            (Some(Status::Reserved), None) => p.add("buyer", "a reserved listing names its buyer"),
            (Some(Status::OnSale), Some(_)) => p.add("buyer", "a listing on sale has no buyer"),
            (None, Some(_)) => p.add("buyer", "give the buyer with the status"),
            (Some(_), Some(name)) => match self.user_named(name).await? {
                Some(b) if b.id == post.author_id => p.add("buyer", "the seller cannot buy"),
                Some(b) => buyer_id = Some(b.id),
                None => p.add("buyer", "no such member"),
            },
            _ => {}
        }
        if let Some(ids) = &input.image_ids {
            if ids.len() > MAX_IMAGES {
                p.add("image_ids", format!("at most {MAX_IMAGES} photos"));
            }
        }
        p.done()?;
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        if content {
            posts::update(&mut *tx, post.id, &fields, now).await?;
            if let Some(pl) = &place {
                posts::put_place(&mut *tx, pl).await?;
            }
            posts::set_tags(&mut tx, post.id, &fields.tags).await?;
            posts::set_grams(&mut tx, post.id, &search::grams(&fields.search_text)).await?;
            if let Some(ids) = &input.image_ids {
                // The photos it had are released and those named taken in the new order.
                let taken = images::attach(&mut tx, post.id, post.author_id, ids).await?;
                if taken != ids.len() {
                    return Err(photos_not_taken());
                }
            }
        }
        if let Some(s) = status {
            if post.status == Some(Status::Sold) && s != Status::Sold {
                return Err(Error::conflict("sold", "a sold listing stays sold"));
            }
            posts::set_status(&mut *tx, post.id, s, buyer_id, now).await?;
        }
        if let Some(h) = input.hidden {
            self.set_hidden_in(&mut tx, &post, h, now).await?;
        }
        // The place's rating is counted again from its visible reviews, inside the
        // transaction: edits and hides racing each other cannot make it drift.
        if let Some(place_id) = post.place_id {
            posts::recount_rating(&mut *tx, place_id).await?;
            self.ratings_changed();
        }
        tx.commit().await?;
        self.get(Some(user), id).await
    }

    /// Hides or shows a post; a review's stars leave or rejoin its place's rating.
    async fn set_hidden_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        post: &Post,
        hidden: bool,
        now: i64,
    ) -> Result<()> {
        if post.hidden_at.is_some() == hidden {
            return Ok(());
        }
        posts::set_hidden(&mut *tx, post.id, hidden.then_some(now)).await?;
        if let Some(place_id) = post.place_id {
            posts::recount_rating(&mut *tx, place_id).await?;
            self.ratings_changed();
        }
        Ok(())
    }

    async fn user_named(&self, name: &str) -> Result<Option<User>> {
        for key in crate::auth::lookup_keys(name) {
            if let Some(u) = users::find_by_key(&self.db.pool, &key).await? {
                return Ok(Some(u));
            }
        }
        Ok(None)
    }

    /// Deletes a post (author, moderators), its photos' files after it.
    pub async fn delete(&self, user: &User, id: &str) -> Result<()> {
        let post = self.visible(Some(user), id).await?;
        policy::require_post(Some(user), post.author_id, PostAction::Edit)?;
        let now = now_ms();
        if post.kind == Kind::Place
            && !policy::may_post(Some(user), post.author_id, PostAction::Moderate)
            && posts::has_others_reviews(&self.db.pool, post.id, post.author_id).await?
        {
            return Err(Error::conflict(
                "has_reviews",
                "others have reviewed this place; a moderator can delete it",
            ));
        }
        let mut tx = self.db.begin().await?;
        let imgs = images::of_posts(&mut *tx, &[post.id]).await?;
        for img in &imgs {
            images::delete(&mut *tx, img.id).await?;
            let dir = format!("images/{}/", img.public_id);
            crate::storage::jobs::enqueue(&mut *tx, super::videos::DELETE_BLOBS_JOB, &dir, now)
                .await?;
        }
        if !posts::delete(&mut *tx, post.id).await? {
            return Err(Error::not_found("post"));
        }
        if let Some(place_id) = post.place_id {
            posts::recount_rating(&mut *tx, place_id).await?;
            self.ratings_changed();
        }
        tx.commit().await?;
        Ok(())
    }

    /// Likes a post (`on`) or takes the like back; the hot key moves in the same transaction.
    pub async fn like(&self, user: &User, id: &str, on: bool) -> Result<i64> {
        let post = self.visible(Some(user), id).await?;
        if on && post.hidden_at.is_some() {
            return Err(Error::conflict("hidden", "a hidden post cannot be liked"));
        }
        paced(&self.reactions, user)?;
        let mut tx = self.db.begin().await?;
        let changed = if on {
            posts::like(&mut tx, post.id, user.id, now_ms()).await?
        } else {
            posts::unlike(&mut tx, post.id, user.id).await?
        };
        let likes = match changed {
            Some((likes, created_at)) => {
                posts::set_hot(&mut *tx, post.id, rank::hot(likes, created_at)).await?;
                likes
            }
            None => posts::likes_count(&mut *tx, post.id).await?,
        };
        tx.commit().await?;
        Ok(likes)
    }

    pub async fn favorite(&self, user: &User, id: &str, on: bool) -> Result<()> {
        let post = self.visible(Some(user), id).await?;
        paced(&self.reactions, user)?;
        posts::favorite(&self.db.pool, post.id, user.id, on, now_ms()).await?;
        Ok(())
    }

    /// A member's favourites.
    pub async fn favorites(&self, user: &User) -> Result<Vec<PostView>> {
        let list = posts::favorites_of(&self.db.pool, user.id, 200).await?;
        self.views(Some(user), list).await
    }

    /// A page of posts, and the cursor of the next one.
    pub async fn feed(
        &self,
        viewer: Option<&User>,
        q: FeedQuery,
    ) -> Result<(Vec<PostView>, Option<String>)> {
        let bad = |code, m: &str| Err(Error::invalid(code, m.to_string()));
        let kind = match q.kind.as_deref() {
            None | Some("") | Some("all") => None,
            Some(k) => match Kind::from_api(k) {
                Some(k) => Some(k),
                None => return bad("invalid_kind", "kind is place, review, market or talk"),
            },
        };
        let sort = match q.sort.as_deref() {
            None | Some("") | Some("hot") => Sort::Hot,
            Some("new") => Sort::New,
            Some("top") => Sort::Top,
            Some(_) => return bad("invalid_sort", "sort is hot, new or top"),
        };
        let day = 24 * 3600 * 1000;
        let since = match q.period.as_deref() {
            None | Some("") | Some("all") => None,
            Some("day") => Some(now_ms() - day),
            Some("week") => Some(now_ms() - 7 * day),
            Some("month") => Some(now_ms() - 30 * day),
            Some(_) => return bad("invalid_period", "period is day, week, month or all"),
        };
        let limit = q.limit.unwrap_or(20);
        if !(1..=MAX_PAGE).contains(&limit) {
            return bad("invalid_limit", "limit is 1 to 100");
        }
        let after = match q.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(parse_cursor(c, sort).ok_or_else(|| {
                Error::invalid("invalid_cursor", "the cursor is not one this feed gave")
            })?),
        };
        let tag = match q.tag.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(search::normalise(t.trim_start_matches('#'))),
        };
        let (grams, patterns) = match q.q.as_deref() {
            None => (Vec::new(), Vec::new()),
            Some(raw) if raw.chars().count() > search::MAX_QUERY_CHARS => {
                return bad("invalid_query", "a search is at most 100 characters")
            }
            Some(raw) => match search::query(raw) {
                None => (Vec::new(), Vec::new()),
                Some(parsed) => (
                    parsed.grams,
                    parsed
                        .words
                        .iter()
                        .map(|w| search::like_pattern(w))
                        .collect(),
                ),
            },
        };
        let near = match q.near.as_deref() {
            None | Some("") => None,
            Some(n) => {
                let parsed = n
                    .split_once(',')
                    .and_then(|(a, b)| {
                        Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?))
                    })
                    .filter(|(a, b)| (-90.0..=90.0).contains(a) && (-180.0..=180.0).contains(b));
                let Some((lat, lng)) = parsed else {
                    return bad("invalid_near", "near is LAT,LNG, e.g. 37.5665,126.9780");
                };
                let r = q.radius_m.unwrap_or(5000.0);
                if !(r.is_finite() && r > 0.0 && r <= MAX_RADIUS_M) {
                    return bad("invalid_radius", "radius_m is above 0 and at most 50000");
                }
                Some((lat, lng, r))
            }
        };
        let author_id = match q.author.as_deref() {
            None => None,
            Some(name) => match self.user_named(name).await? {
                Some(u) => Some(u.id),
                None => return Err(Error::not_found("user")),
            },
        };
        let feed = Feed {
            kind,
            tag,
            author_id,
            grams,
            patterns,
            near,
            since,
            sort,
            after,
            limit: limit + 1,
        };
        let mut list = posts::feed(&self.db.pool, &feed).await?;
        let next = if list.len() as i64 > limit {
            list.truncate(limit as usize);
            list.last().map(|p| cursor_of(p, sort))
        } else {
            None
        };
        Ok((self.views(viewer, list).await?, next))
    }

    /// A place with its rating and reviews.
    pub async fn place(
        &self,
        viewer: Option<&User>,
        id: &str,
    ) -> Result<(PostView, Vec<PostView>)> {
        let post = self.visible(viewer, id).await?;
        if post.kind != Kind::Place {
            return Err(Error::not_found("place"));
        }
        let reviews = posts::reviews_of(&self.db.pool, post.id, REVIEWS_SHOWN).await?;
        let mut all = vec![post];
        all.extend(reviews);
        let mut views = self.views(viewer, all).await?;
        let place = views.remove(0);
        Ok((place, views))
    }

    /// This period's most popular posts (by likes given in it) or places (by the Bayesian
    /// average of the reviews written in it).
    pub async fn rankings(
        &self,
        viewer: Option<&User>,
        what: &str,
        period: &str,
    ) -> Result<Vec<Ranked>> {
        let day = 24 * 3600 * 1000;
        let since = match period {
            "day" => now_ms() - day,
            "week" => now_ms() - 7 * day,
            "month" => now_ms() - 30 * day,
            "all" => 0,
            _ => {
                return Err(Error::invalid(
                    "invalid_period",
                    "period is day, week, month or all",
                ))
            }
        };
        let scored: Vec<(i64, f64)> = match what {
            "posts" => posts::most_liked_since(&self.db.pool, since, RANKING_SIZE as i64)
                .await?
                .into_iter()
                .map(|(id, n)| (id, n as f64))
                .collect(),
            "places" => {
                let rows = posts::reviewed_since(&self.db.pool, since).await?;
                let (s, n) = rows
                    .iter()
                    .fold((0, 0), |(s, n), (_, rs, rn)| (s + rs, n + rn));
                let mean = if n > 0 {
                    s as f64 / n as f64
                } else {
                    rank::BAYES_DEFAULT_MEAN
                };
                let mut v: Vec<(i64, f64)> = rows
                    .iter()
                    .map(|(id, rs, rn)| (*id, rank::bayesian(*rs, *rn, mean)))
                    .collect();
                v.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
                v.truncate(RANKING_SIZE);
                v
            }
            _ => return Err(Error::invalid("invalid_what", "what is places or posts")),
        };
        let ids: Vec<i64> = scored.iter().map(|(id, _)| *id).collect();
        let list = posts::get_many(&self.db.pool, &ids).await?;
        let by_id: HashMap<i64, Post> = list.into_iter().map(|p| (p.id, p)).collect();
        let ordered: Vec<(Post, f64)> = scored
            .into_iter()
            .filter_map(|(id, s)| by_id.get(&id).cloned().map(|p| (p, s)))
            .collect();
        let scores: Vec<f64> = ordered.iter().map(|(_, s)| *s).collect();
        let views = self
            .views(viewer, ordered.into_iter().map(|(p, _)| p).collect())
            .await?;
        Ok(views
            .into_iter()
            .zip(scores)
            .map(|(post, score)| Ranked { post, score })
            .collect())
    }

    /// Posts as the API shows them: photos, places, and the caller's likes in a few queries.
    pub async fn views(&self, viewer: Option<&User>, list: Vec<Post>) -> Result<Vec<PostView>> {
        let ids: Vec<i64> = list.iter().map(|p| p.id).collect();
        let mut place_ids: Vec<i64> = list
            .iter()
            .filter_map(|p| {
                if p.kind == Kind::Place {
                    Some(p.id)
                } else {
                    p.place_id
                }
            })
            .collect();
        place_ids.sort_unstable();
        place_ids.dedup();
        let imgs = images::of_posts(&self.db.pool, &ids).await?;
        let places: HashMap<i64, Place> = posts::places(&self.db.pool, &place_ids)
            .await?
            .into_iter()
            .map(|p| (p.post_id, p))
            .collect();
        let mean = if list.iter().any(|p| p.kind == Kind::Place) {
            self.site_mean().await?
        } else {
            rank::BAYES_DEFAULT_MEAN
        };
        let (liked, faved): (HashSet<i64>, HashSet<i64>) = match viewer {
            Some(u) => (
                posts::liked_among(&self.db.pool, u.id, &ids)
                    .await?
                    .into_iter()
                    .collect(),
                posts::favorite_among(&self.db.pool, u.id, &ids)
                    .await?
                    .into_iter()
                    .collect(),
            ),
            None => Default::default(),
        };
        let mut by_post: HashMap<i64, Vec<ImageView>> = HashMap::new();
        for img in &imgs {
            if let Some(pid) = img.post_id {
                by_post.entry(pid).or_default().push(image_view(img));
            }
        }
        Ok(list
            .into_iter()
            .map(|p| {
                let place = (p.kind == Kind::Place)
                    .then(|| places.get(&p.id))
                    .flatten()
                    .map(|pl| place_view(pl, &p, mean));
                let place_name = p
                    .place_id
                    .and_then(|id| places.get(&id))
                    .map(|pl| pl.name.clone());
                PostView {
                    id: p.id.to_string(),
                    kind: p.kind.as_str(),
                    title: p.title,
                    body: p.body,
                    author: AuthorView {
                        id: p.author_id.to_string(),
                        username: p.author,
                    },
                    tags: p
                        .tags
                        .split(' ')
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect(),
                    images: by_post.remove(&p.id).unwrap_or_default(),
                    likes: p.likes,
                    comments: p.comments,
                    liked_by_me: liked.contains(&p.id),
                    favorited_by_me: faved.contains(&p.id),
                    hidden: p.hidden_at.is_some(),
                    place,
                    place_id: p.place_id.map(|i| i.to_string()),
                    place_name,
                    rating: p.rating,
                    price: p.price,
                    condition: p.condition,
                    neighbourhood: p.neighbourhood,
                    status: p.status.map(Status::as_str),
                    buyer: match (p.buyer_id, p.buyer) {
                        (Some(id), Some(username)) => Some(AuthorView {
                            id: id.to_string(),
                            username,
                        }),
                        _ => None,
                    },
                    lat: p.lat,
                    lng: p.lng,
                    created_at: rfc3339(p.created_at),
                    updated_at: rfc3339(p.updated_at),
                }
            })
            .collect())
    }

    /// Comments a member writes on a visible post; a reply answers a top-level comment.
    pub async fn comment(
        &self,
        user: &User,
        post_id: &str,
        body: &str,
        parent_id: Option<&str>,
    ) -> Result<CommentView> {
        let post = self.visible(Some(user), post_id).await?;
        if post.hidden_at.is_some() {
            return Err(Error::conflict("hidden", "a hidden post takes no comments"));
        }
        let body = text::clean_block(body, MAX_COMMENT_CHARS).map_err(|e| match e {
            text::TextError::Empty => Error::invalid("invalid_body", "the comment is empty"),
            text::TextError::TooLong => Error::invalid(
                "invalid_body",
                format!("a comment is at most {MAX_COMMENT_CHARS} characters"),
            ),
        })?;
        let parent = match parent_id {
            None => None,
            Some(raw) => {
                let id = raw.parse::<i64>().map_err(|_| {
                    Error::invalid("invalid_parent", "no such comment on this post")
                })?;
                match comments::get(&self.db.pool, id).await? {
                    Some(c)
                        if c.post_id == post.id
                            && c.hidden_at.is_none()
                            && c.deleted_at.is_none() =>
                    {
                        // One level: a reply to a reply answers its top-level comment.
                        Some(c.parent_id.unwrap_or(c.id))
                    }
                    _ => {
                        return Err(Error::invalid(
                            "invalid_parent",
                            "no such comment on this post",
                        ))
                    }
                }
            }
        };
        if comments::count_of_post(&self.db.pool, post.id).await? >= MAX_COMMENTS_SHOWN {
            return Err(Error::conflict(
                "too_many_comments",
                "this post has as many comments as it can take",
            ));
        }
        paced(&self.writes, user)?;
        let mut tx = self.db.begin().await?;
        let id = comments::create(&mut tx, post.id, user.id, parent, &body, now_ms()).await?;
        tx.commit().await?;
        let c = comments::get(&self.db.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("comment"))?;
        Ok(comment_view(&c, 0))
    }

    /// A post's comments, best first by the Wilson bound, replies under their comment.
    pub async fn comments(&self, viewer: Option<&User>, post_id: &str) -> Result<Vec<CommentView>> {
        let post = self.visible(viewer, post_id).await?;
        let all = comments::of_post(&self.db.pool, post.id, MAX_COMMENTS_SHOWN).await?;
        let staff = policy::may_post(viewer, 0, PostAction::Moderate);
        let shown: Vec<Comment> = all
            .into_iter()
            .filter(|c| {
                c.hidden_at.is_none() || staff || viewer.is_some_and(|u| u.id == c.author_id)
            })
            .collect();
        let ids: Vec<i64> = shown.iter().map(|c| c.id).collect();
        let mine: HashMap<i64, i64> = match viewer {
            Some(u) => comments::votes_among(&self.db.pool, u.id, &ids)
                .await?
                .into_iter()
                .collect(),
            None => HashMap::new(),
        };
        let mut top: Vec<CommentView> = Vec::new();
        let mut replies: BTreeMap<i64, Vec<CommentView>> = BTreeMap::new();
        for c in &shown {
            let v = comment_view(c, mine.get(&c.id).copied().unwrap_or(0));
            match c.parent_id {
                Some(parent) => replies.entry(parent).or_default().push(v),
                None => top.push(v),
            }
        }
        let order = |a: &CommentView, b: &CommentView| {
            b.score.total_cmp(&a.score).then_with(|| {
                a.id.parse::<i64>()
                    .unwrap_or(0)
                    .cmp(&b.id.parse::<i64>().unwrap_or(0))
            })
        };
        for t in &mut top {
            if let Some(mut r) = replies.remove(&t.id.parse::<i64>().unwrap_or(0)) {
                r.sort_by(order);
                t.replies = r;
            }
        }
        top.sort_by(order);
        Ok(top)
    }

    async fn comment_of(&self, id: &str) -> Result<Comment> {
        let id = parse_id(id, "comment")?;
        comments::get(&self.db.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("comment"))
    }

    /// Votes a comment up (1), down (-1) or takes the vote back (0); returns `(up, down)`.
    pub async fn vote(&self, user: &User, comment_id: &str, vote: i64) -> Result<(i64, i64)> {
        if !(-1..=1).contains(&vote) {
            return Err(Error::invalid("invalid_vote", "vote is 1, -1 or 0"));
        }
        let c = self.comment_of(comment_id).await?;
        if c.hidden_at.is_some() || c.deleted_at.is_some() {
            return Err(Error::not_found("comment"));
        }
        self.visible(Some(user), &c.post_id.to_string()).await?;
        paced(&self.reactions, user)?;
        let mut tx = self.db.begin().await?;
        let counts = comments::vote(&mut tx, c.id, user.id, vote).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// Hides or shows a comment (moderators).
    pub async fn hide_comment(&self, user: &User, comment_id: &str, hidden: bool) -> Result<()> {
        let c = self.comment_of(comment_id).await?;
        policy::require_post(Some(user), c.author_id, PostAction::Moderate)?;
        let mut tx = self.db.begin().await?;
        comments::set_hidden(&mut tx, &c, hidden.then(now_ms)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a comment and its replies (its author, moderators).
    pub async fn delete_comment(&self, user: &User, comment_id: &str) -> Result<()> {
        let c = self.comment_of(comment_id).await?;
        if c.deleted_at.is_some() {
            return Err(Error::not_found("comment"));
        }
        policy::require_post(Some(user), c.author_id, PostAction::Edit)?;
        let mut tx = self.db.begin().await?;
        comments::delete(&mut tx, &c, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reports a post, or one of its comments.
    pub async fn report(
        &self,
        user: &User,
        post_id: &str,
        comment_id: Option<&str>,
        reason: &str,
    ) -> Result<()> {
        let post = self.visible(Some(user), post_id).await?;
        let comment = match comment_id {
            None => None,
            Some(c) => {
                let c = self.comment_of(c).await?;
                if c.post_id != post.id {
                    return Err(Error::not_found("comment"));
                }
                Some(c.id)
            }
        };
        let reason = text::clean_line(reason, 500).map_err(|_| {
            Error::invalid(
                "invalid_reason",
                "say what is wrong, in at most 500 characters",
            )
        })?;
        paced(&self.writes, user)?;
        let mut tx = self.db.begin().await?;
        let filed = comments::report(&mut tx, post.id, comment, user.id, &reason, now_ms()).await?;
        tx.commit().await?;
        if !filed {
            return Err(Error::conflict(
                "already_reported",
                "you have reported this already; a moderator will look at it",
            ));
        }
        Ok(())
    }

    /// The open reports (moderators).
    pub async fn reports(&self, user: &User) -> Result<Vec<comments::Report>> {
        policy::require_post(Some(user), 0, PostAction::Moderate)?;
        Ok(comments::open_reports(&self.db.pool, 500).await?)
    }

    /// Closes a report (moderators): `dismiss` it, or `hide` or `delete` what it is about.
    pub async fn resolve(&self, user: &User, report_id: &str, action: &str) -> Result<()> {
        policy::require_post(Some(user), 0, PostAction::Moderate)?;
        let id = parse_id(report_id, "report")?;
        let report = comments::open_report(&self.db.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("open report"))?;
        let now = now_ms();
        match (action, report.comment_id) {
            ("dismiss", _) => {}
            ("hide", Some(c)) => self.hide_comment(user, &c.to_string(), true).await?,
            ("delete", Some(c)) => self.delete_comment(user, &c.to_string()).await?,
            ("hide", None) => {
                if let Some(post) = posts::get(&self.db.pool, report.post_id).await? {
                    let mut tx = self.db.begin().await?;
                    self.set_hidden_in(&mut tx, &post, true, now).await?;
                    tx.commit().await?;
                }
            }
            ("delete", None) => self.delete(user, &report.post_id.to_string()).await?,
            _ => {
                return Err(Error::invalid(
                    "invalid_action",
                    "action is dismiss, hide or delete",
                ))
            }
        }
        // Deleting a post or comment takes its reports with it.
        comments::resolve(&self.db.pool, id, user.id, action, now).await?;
        Ok(())
    }
}

impl Community {
    /// The private room between `buyer` and a listing's seller: the same room every time for
    /// the same buyer, a room of its own for each buyer. Returns its slug.
    pub async fn contact(&self, buyer: &User, post_id: &str) -> Result<String> {
        let post = self.visible(Some(buyer), post_id).await?;
        if post.kind != Kind::Market {
            return Err(Error::conflict(
                "not_a_listing",
                "only market listings have a seller to contact",
            ));
        }
        if post.author_id == buyer.id {
            return Err(Error::conflict("own_listing", "this is your own listing"));
        }
        if let Some(slug) = posts::contact_room(&self.db.pool, post.id, buyer.id).await? {
            return Ok(slug);
        }
        if post.status == Some(Status::Sold) || post.hidden_at.is_some() {
            return Err(Error::conflict("sold", "this listing is sold"));
        }
        let now = now_ms();
        let slug = format!("m-{}", new_slug_tail());
        let title: String = format!("{} · {}", post.title, buyer.username)
            .chars()
            .take(super::rooms::MAX_TITLE_CHARS)
            .collect();
        let mut tx = self.db.begin().await?;
        let room_id = crate::storage::rooms::create_private(
            &mut tx,
            &slug,
            &title,
            post.author_id,
            &[post.author_id, buyer.id],
            now,
        )
        .await?;
        if posts::add_contact(&mut *tx, post.id, buyer.id, room_id, now).await? {
            tx.commit().await?;
            return Ok(slug);
        }
        // The same buyer pressed twice at once and the other press won: its room it is.
        tx.rollback().await?;
        posts::contact_room(&self.db.pool, post.id, buyer.id)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("a contact room vanished")))
    }

    /// The buyer–seller rooms `user` is in.
    pub async fn contacts(&self, user: &User) -> Result<Vec<posts::Contact>> {
        Ok(posts::contacts_of(&self.db.pool, user.id, 500).await?)
    }
}

/// Ten random characters of `[a-z0-9]` (52 bits) for a private room's slug.
fn new_slug_tail() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn parse_cursor(c: &str, sort: Sort) -> Option<Cursor> {
    let mut parts = c.split('.');
    let tag = parts.next()?;
    let a: i64 = parts.next()?.parse().ok()?;
    let b: Option<i64> = parts.next().map(|s| s.parse().ok()).unwrap_or(None);
    if parts.next().is_some() {
        return None;
    }
    match (tag, sort, b) {
        ("h", Sort::Hot, Some(id)) => Some(Cursor::Hot(a, id)),
        ("n", Sort::New, None) => Some(Cursor::New(a)),
        ("t", Sort::Top, Some(id)) => Some(Cursor::Top(a, id)),
        _ => None,
    }
}

fn cursor_of(p: &Post, sort: Sort) -> String {
    match sort {
        Sort::Hot => format!("h.{}.{}", p.hot, p.id),
        Sort::New => format!("n.{}", p.id),
        Sort::Top => format!("t.{}.{}", p.likes, p.id),
    }
}

pub fn image_view(img: &Image) -> ImageView {
    let sizes = photo_sizes::sizes(img);
    ImageView {
        id: img.public_id.clone(),
        width: img.width,
        height: img.height,
        thumbhash: img.thumbhash.clone(),
        variants: sizes
            .iter()
            .map(|s| (s.name, format!("/images/{}/{}", img.public_id, s.name)))
            .collect(),
        sizes: sizes
            .iter()
            .map(|s| (s.name, [s.width, s.height]))
            .collect(),
    }
}

fn place_view(pl: &Place, post: &Post, mean: f64) -> PlaceView {
    PlaceView {
        id: pl.post_id.to_string(),
        name: pl.name.clone(),
        category: pl.category.clone(),
        address: pl.address.clone(),
        lat: post.lat,
        lng: post.lng,
        hours: pl.hours.clone(),
        phone: pl.phone.clone(),
        rating: RatingView {
            average: (pl.rating_count > 0).then(|| pl.rating_sum as f64 / pl.rating_count as f64),
            bayesian: rank::bayesian(pl.rating_sum, pl.rating_count, mean),
            count: pl.rating_count,
        },
    }
}

fn comment_view(c: &Comment, my_vote: i64) -> CommentView {
    let deleted = c.deleted_at.is_some();
    CommentView {
        id: c.id.to_string(),
        post_id: c.post_id.to_string(),
        parent_id: c.parent_id.map(|p| p.to_string()),
        // A deleted comment names no one and says nothing.
        author: AuthorView {
            id: if deleted {
                String::new()
            } else {
                c.author_id.to_string()
            },
            username: if deleted {
                String::new()
            } else {
                c.author.clone()
            },
        },
        body: c.body.clone(),
        up: c.up,
        down: c.down,
        score: rank::wilson(c.up, c.down),
        my_vote,
        hidden: c.hidden_at.is_some(),
        deleted,
        created_at: rfc3339(c.created_at),
        replies: Vec::new(),
    }
}
