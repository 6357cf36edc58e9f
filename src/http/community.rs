//! The community over HTTP: photos (`/api/v1/images`, served at `/images/{id}/{size}`), posts
//! and their likes, favourites, comments and reports, places, rankings and the report queue.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::extract::{CurrentUser, MaybeUser};
use crate::domain::community::{image_view, FeedQuery, PostInput};
use crate::state::AppState;
use crate::storage::rfc3339;

/// The picture types taken, by `Content-Type`.
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp", "image/gif"];

/// `POST /api/v1/images`: the raw picture as the body.
pub async fn upload_image(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    req: Request,
) -> ApiResult<Response> {
    let limits = state.images.photos().limits();
    let too_large = || {
        ApiError::Other(
            StatusCode::PAYLOAD_TOO_LARGE,
            "image_too_large",
            format!(
                "a picture may be at most {} MB",
                limits.max_bytes / (1024 * 1024)
            ),
        )
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !IMAGE_TYPES.contains(&content_type.as_str()) {
        return Err(ApiError::Other(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image",
            "send the picture itself with Content-Type image/jpeg, image/png, image/webp or \
             image/gif"
                .into(),
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(too_large());
    }
    // Counted before the body is read, so a member cannot make the server buffer many.
    state.images.admit(&user)?;
    let mut body = Body::into_data_stream(req.into_body());
    // Reserved as the body arrives, not from what the client claims.
    let mut data = bytes::BytesMut::with_capacity(declared.unwrap_or(0).min(1 << 20) as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid("body_read_failed", format!("the body did not arrive: {e}"))
        })?;
        if data.len() + chunk.len() > limits.max_bytes {
            return Err(too_large());
        }
        data.extend_from_slice(&chunk);
    }
    let img = state.images.upload(&user, data.freeze()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "image": image_view(&img) })),
    )
        .into_response())
}

/// `GET /images/{id}/{size}`: a served size. Photos never change, so they are cached for good
/// (a hidden post's are not cached, and are 404 to all but its author and moderators).
pub async fn image_file(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath((id, size)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (key, mime, public) = state.images.file(user.as_ref(), &id, &size).await?;
    let cache = if public {
        "public, max-age=31536000, immutable"
    } else {
        "private, no-store"
    };
    let mut resp = super::videos::blob_response(&state, &key, &headers, mime, cache.into()).await?;
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct FeedParams {
    kind: Option<String>,
    tag: Option<String>,
    q: Option<String>,
    near: Option<String>,
    radius_m: Option<f64>,
    sort: Option<String>,
    period: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    author: Option<String>,
}

/// `GET /api/v1/posts`.
pub async fn list_posts(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiQuery(q): ApiQuery<FeedParams>,
) -> ApiResult<Json<Value>> {
    let (posts, next) = state
        .community
        .feed(
            user.as_ref(),
            FeedQuery {
                kind: q.kind,
                tag: q.tag,
                q: q.q,
                near: q.near,
                radius_m: q.radius_m,
                sort: q.sort,
                period: q.period,
                cursor: q.cursor,
                limit: q.limit,
                author: q.author,
            },
        )
        .await?;
    Ok(Json(json!({ "posts": posts, "next_cursor": next })))
}

/// `POST /api/v1/posts`.
pub async fn create_post(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<PostInput>,
) -> ApiResult<Response> {
    let post = state.community.create(&user, body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "post": post }))).into_response())
}

/// `GET /api/v1/posts/{id}`.
pub async fn get_post(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let post = state.community.get(user.as_ref(), &id).await?;
    Ok(Json(json!({ "post": post })))
}

/// `PATCH /api/v1/posts/{id}`.
pub async fn update_post(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PostInput>,
) -> ApiResult<Json<Value>> {
    let post = state.community.update(&user, &id, body).await?;
    Ok(Json(json!({ "post": post })))
}

/// `DELETE /api/v1/posts/{id}`.
pub async fn delete_post(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.community.delete(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/posts/{id}/like`.
pub async fn like(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let likes = state.community.like(&user, &id, true).await?;
    Ok(Json(json!({ "likes": likes, "liked_by_me": true })))
}

/// `DELETE /api/v1/posts/{id}/like`.
pub async fn unlike(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let likes = state.community.like(&user, &id, false).await?;
    Ok(Json(json!({ "likes": likes, "liked_by_me": false })))
}

/// `PUT /api/v1/posts/{id}/favorite`.
pub async fn favorite(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    state.community.favorite(&user, &id, true).await?;
    Ok(Json(json!({ "favorited_by_me": true })))
}

/// `DELETE /api/v1/posts/{id}/favorite`.
pub async fn unfavorite(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    state.community.favorite(&user, &id, false).await?;
    Ok(Json(json!({ "favorited_by_me": false })))
}

/// `GET /api/v1/me/favorites`.
pub async fn my_favorites(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Value>> {
    let posts = state.community.favorites(&user).await?;
    Ok(Json(json!({ "posts": posts })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    body: String,
    parent_id: Option<String>,
}

/// `POST /api/v1/posts/{id}/comments`.
pub async fn create_comment(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewComment>,
) -> ApiResult<Response> {
    let c = state
        .community
        .comment(&user, &id, &body.body, body.parent_id.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "comment": c }))).into_response())
}

/// `GET /api/v1/posts/{id}/comments`.
pub async fn list_comments(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let list = state.community.comments(user.as_ref(), &id).await?;
    Ok(Json(json!({ "comments": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    vote: i64,
}

/// `PUT /api/v1/comments/{id}/vote`.
pub async fn vote_comment(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Vote>,
) -> ApiResult<Json<Value>> {
    let (up, down) = state.community.vote(&user, &id, body.vote).await?;
    Ok(Json(
        json!({ "up": up, "down": down, "my_vote": body.vote }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentPatch {
    hidden: bool,
}

/// `PATCH /api/v1/comments/{id}` `{"hidden"}` (moderators).
pub async fn update_comment(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CommentPatch>,
) -> ApiResult<StatusCode> {
    state
        .community
        .hide_comment(&user, &id, body.hidden)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/comments/{id}`.
pub async fn delete_comment(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.community.delete_comment(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReport {
    reason: String,
    comment_id: Option<String>,
}

/// `POST /api/v1/posts/{id}/reports`.
pub async fn report(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewReport>,
) -> ApiResult<Response> {
    state
        .community
        .report(&user, &id, body.comment_id.as_deref(), &body.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "reported": true }))).into_response())
}

/// `GET /api/v1/reports` (moderators).
pub async fn list_reports(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Value>> {
    let list = state.community.reports(&user).await?;
    let views: Vec<Value> = list
        .iter()
        .map(|r| {
            json!({
                "id": r.id.to_string(),
                "post_id": r.post_id.to_string(),
                "comment_id": r.comment_id.map(|c| c.to_string()),
                "reporter": r.reporter,
                "reason": r.reason,
                "created_at": rfc3339(r.created_at),
            })
        })
        .collect();
    Ok(Json(json!({ "reports": views })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    action: String,
}

/// `POST /api/v1/reports/{id}/resolve` `{"action":"dismiss"|"hide"|"delete"}`.
pub async fn resolve_report(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Resolution>,
) -> ApiResult<StatusCode> {
    state.community.resolve(&user, &id, &body.action).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/places/{id}`.
pub async fn get_place(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (post, reviews) = state.community.place(user.as_ref(), &id).await?;
    let mut place = serde_json::to_value(&post.place).map_err(anyhow::Error::from)?;
    place["post"] = serde_json::to_value(&post).map_err(anyhow::Error::from)?;
    Ok(Json(json!({ "place": place, "reviews": reviews })))
}

#[derive(Deserialize)]
pub struct RankingParams {
    what: Option<String>,
    period: Option<String>,
}

/// `GET /api/v1/rankings?what=places|posts&period=week`.
pub async fn rankings(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiQuery(q): ApiQuery<RankingParams>,
) -> ApiResult<Json<Value>> {
    let what = q.what.unwrap_or_else(|| "posts".into());
    let period = q.period.unwrap_or_else(|| "week".into());
    let list = state
        .community
        .rankings(user.as_ref(), &what, &period)
        .await?;
    let ranked: Vec<Value> = list
        .into_iter()
        .enumerate()
        .map(|(i, r)| json!({ "rank": i + 1, "score": r.score, "post": r.post }))
        .collect();
    Ok(Json(
        json!({ "what": what, "period": period, "ranking": ranked }),
    ))
}

/// `POST /api/v1/posts/{id}/contact`: the private room with the seller.
pub async fn contact(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let slug = state.community.contact(&user, &id).await?;
    let (room, _) = state.rooms.get(Some(&user), &slug).await?;
    Ok((StatusCode::CREATED, Json(json!({ "room": room }))).into_response())
}

/// `GET /api/v1/me/contacts`: the buyer–seller rooms the caller is in, as seller or buyer.
pub async fn my_contacts(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Value>> {
    let list = state.community.contacts(&user).await?;
    let views: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({
                "room": { "slug": c.slug, "url": format!("/r/{}", c.slug) },
                "post": { "id": c.post_id.to_string(), "title": c.title,
                          "status": c.status.map(|s| s.as_str()) },
                "seller": { "id": c.seller_id.to_string(), "username": c.seller },
                "buyer": { "id": c.buyer_id.to_string(), "username": c.buyer },
                "role": if c.seller_id == user.id { "seller" } else { "buyer" },
                "created_at": rfc3339(c.created_at),
                "last_activity_at": rfc3339(c.last_activity_at),
            })
        })
        .collect();
    Ok(Json(json!({ "contacts": views })))
}

/// `GET /api/v1/ai`: what the AI helpers offer here, for the editor.
pub async fn ai_status(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "review_drafts": state.drafts.enabled(),
        "vision": crate::domain::drafts::vision(&state.drafts),
    }))
}

/// `GET /api/v1/map`: what a map in the UI draws: the operator's tiles (None: a blank map with
/// pins), their attribution, and where a map opens.
pub async fn map_settings(State(state): State<AppState>) -> Json<Value> {
    let map = &state.config.map;
    let (lat, lng) = map.center().unwrap_or((0.0, 0.0));
    Json(json!({"map": {
        "tile_url": map.tile_url(),
        "attribution": map.map_attribution,
        "max_zoom": map.map_max_zoom,
        "center": [lat, lng],
        "zoom": map.map_zoom,
    }}))
}

/// `POST /api/v1/ai/review-draft`: the draft as `text/event-stream`: `{"delta":"…"}` events,
/// then `{"done":true}`, or `{"error","message"}` if the model fails midway. Nothing is kept.
pub async fn review_draft(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<crate::domain::drafts::DraftInput>,
) -> ApiResult<Response> {
    let stream = state.drafts.draft(&user, body).await?;
    let events = futures_util::stream::unfold(Some(stream), |s| async move {
        let mut s = s?;
        let event = match s.next().await {
            Some(Ok(delta)) => (json!({ "delta": delta }), Some(s)),
            Some(Err(e)) => (
                json!({ "error": "ai_failed", "message": e.to_string() }),
                None,
            ),
            None => (json!({ "done": true }), None),
        };
        let line = format!("data: {}\n\n", event.0);
        Some((Ok::<_, std::convert::Infallible>(line), event.1))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(events),
    )
        .into_response())
}
