//! Planning together over HTTP: a room's invite links, its map's pins and its polls. Each
//! handler parses, calls one domain operation and shapes the answer.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiJson, ApiPath, ApiResult};
use super::extract::{CurrentUser, MaybeUser};
use super::shares::{base_url, parse_time_field};
use crate::domain::invites::NewInvite;
use crate::domain::pins::NewPin;
use crate::domain::polls::NewPoll;
use crate::state::AppState;
use crate::storage::planning::Invite;
use crate::storage::rfc3339;

fn invite_view(i: &Invite, base: &str) -> Value {
    json!({
        "code": i.code,
        "url": format!("{base}/i/{}", i.code),
        "expires_at": i.expires_at.map(rfc3339),
        "max_uses": i.max_uses,
        "uses": i.uses,
        "created_at": rfc3339(i.created_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInviteBody {
    expires_at: Option<String>,
    max_uses: Option<i64>,
}

/// `POST /api/v1/rooms/{slug}/invites`.
pub async fn create_invite(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewInviteBody>,
) -> ApiResult<Response> {
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|t| parse_time_field(t, "expires_at", "invalid_expiry"))
        .transpose()?;
    let new = NewInvite {
        expires_at,
        max_uses: body.max_uses,
    };
    let invite = state.invites.create(&user, &slug, new).await?;
    let base = base_url(&state, &headers);
    Ok((
        StatusCode::CREATED,
        Json(json!({"invite": invite_view(&invite, &base)})),
    )
        .into_response())
}

/// `GET /api/v1/rooms/{slug}/invites`.
pub async fn list_invites(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let list = state.invites.list(&user, &slug).await?;
    let base = base_url(&state, &headers);
    let list: Vec<Value> = list.iter().map(|i| invite_view(i, &base)).collect();
    Ok(Json(json!({ "invites": list })))
}

/// `DELETE /api/v1/rooms/{slug}/invites/{code}`.
pub async fn revoke_invite(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, code)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.invites.revoke(&user, &slug, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/invites/{code}`: the room it opens (title only), while it works.
pub async fn get_invite(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let opened = state.invites.open(&code).await?;
    Ok(Json(json!({
        "invite": {
            "room": {"slug": opened.room.slug, "title": opened.room.title, "owner": opened.room.owner},
            "expires_at": opened.invite.expires_at.map(rfc3339),
        }
    })))
}

/// `POST /api/v1/invites/{code}/accept`.
pub async fn accept_invite(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let room = state.invites.accept(&user, &code).await?;
    Ok(Json(json!({ "room": state.rooms.view(&room) })))
}

/// `GET /api/v1/rooms/{slug}/pins`.
pub async fn list_pins(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let pins = state.pins.list(user.as_ref(), &slug).await?;
    Ok(Json(json!({ "pins": pins })))
}

/// `POST /api/v1/rooms/{slug}/pins`.
pub async fn add_pin(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<NewPin>,
) -> ApiResult<Response> {
    let pin = state.pins.add(&user, &slug, body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "pin": pin }))).into_response())
}

/// `DELETE /api/v1/rooms/{slug}/pins/{id}`.
pub async fn remove_pin(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.pins.remove(&user, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPollBody {
    question: String,
    options: Option<Vec<String>>,
    #[serde(default)]
    from_pins: bool,
    mode: Option<String>,
    #[serde(default)]
    anonymous: bool,
    results: Option<String>,
    closes_at: Option<String>,
}

/// `POST /api/v1/rooms/{slug}/polls`.
pub async fn create_poll(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<NewPollBody>,
) -> ApiResult<Response> {
    let closes_at = body
        .closes_at
        .as_deref()
        .map(|t| parse_time_field(t, "closes_at", "invalid_closes_at"))
        .transpose()?;
    let new = NewPoll {
        question: body.question,
        options: body.options,
        from_pins: body.from_pins,
        mode: body.mode,
        anonymous: body.anonymous,
        results: body.results,
        closes_at,
    };
    let poll = state.polls.create(&user, &slug, new).await?;
    Ok((StatusCode::CREATED, Json(json!({ "poll": poll }))).into_response())
}

/// `GET /api/v1/rooms/{slug}/polls`: the newest first.
pub async fn list_polls(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let polls = state.polls.list(user.as_ref(), &slug).await?;
    Ok(Json(json!({ "polls": polls })))
}

/// `GET /api/v1/polls/{id}`.
pub async fn get_poll(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let poll = state.polls.get(user.as_ref(), &id).await?;
    Ok(Json(json!({ "poll": poll })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    choices: Vec<usize>,
}

/// `PUT /api/v1/polls/{id}/vote`: casts or replaces the caller's ballot.
pub async fn vote(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<VoteBody>,
) -> ApiResult<Json<Value>> {
    if body.choices.len() > crate::domain::polls::MAX_OPTIONS {
        return Err(super::error::ApiError::invalid(
            "invalid_choices",
            "a ballot names each option at most once",
        ));
    }
    let poll = state.polls.vote(&user, &id, &body.choices).await?;
    Ok(Json(json!({ "poll": poll })))
}

/// `DELETE /api/v1/polls/{id}/vote`: takes the caller's ballot back.
pub async fn unvote(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.polls.unvote(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/polls/{id}/close`.
pub async fn close_poll(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let poll = state.polls.close(&user, &id).await?;
    Ok(Json(json!({ "poll": poll })))
}
