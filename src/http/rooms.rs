//! Rooms and their moderation over HTTP: each handler parses, calls one `domain::Rooms`
//! operation and shapes the answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiJson, ApiPath, ApiQuery, ApiResult};
use super::extract::{CurrentUser, MaybeUser};
use crate::domain::rooms::RoomPatch;
use crate::state::AppState;
use crate::storage::rfc3339;
use crate::storage::rooms::SanctionKind;

#[derive(Deserialize)]
pub struct NewRoom {
    slug: String,
    title: String,
    #[serde(default)]
    visibility: Option<String>,
}

/// `"public"` or `"private"`.
fn parse_visibility(v: &str) -> ApiResult<bool> {
    match v {
        "public" => Ok(false),
        "private" => Ok(true),
        _ => Err(super::error::ApiError::invalid(
            "invalid_visibility",
            "visibility must be public or private",
        )),
    }
}

pub async fn create_room(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<NewRoom>,
) -> ApiResult<Response> {
    let private = match body.visibility.as_deref() {
        Some(v) => parse_visibility(v)?,
        None => false,
    };
    let room = state
        .rooms
        .create(&user, &body.slug, &body.title, private)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"room": room}))).into_response())
}

pub async fn list_rooms(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"rooms": state.rooms.list().await?})))
}

pub async fn get_room(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (room, perms) = state.rooms.get(user.as_ref(), &slug).await?;
    Ok(Json(json!({
        "room": room,
        "permissions": {"moderate": perms.moderate, "manage": perms.manage},
    })))
}

/// `GET /api/v1/rooms/{slug}/party`: the room's watch party (`null` when none has a video or a
/// queue) and the signed-in members in it now (for picking a host or controllers).
pub async fn get_party(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let _ = state.rooms.get(user.as_ref(), &slug).await?;
    let room = state.rooms.find(&slug).await?;
    let party = state.parties.view(room.id).await;
    let members = state.parties.members(room.id).await;
    Ok(Json(json!({ "party": party, "members": members })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    title: Option<String>,
    slow_mode_s: Option<i64>,
    record_broadcasts: Option<bool>,
    visibility: Option<String>,
}

pub async fn update_room(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<PatchBody>,
) -> ApiResult<Json<Value>> {
    let patch = RoomPatch {
        title: body.title,
        slow_mode_s: body.slow_mode_s,
        record_broadcasts: body.record_broadcasts,
        private: body
            .visibility
            .as_deref()
            .map(parse_visibility)
            .transpose()?,
    };
    let made_private = patch.private == Some(true);
    let room = state.rooms.update(&user, &slug, patch).await?;
    if made_private {
        // A private room does not broadcast, and its viewers watch again as members.
        state.sfu.remove_room(&slug, None).await;
    }
    Ok(Json(json!({"room": room})))
}

pub async fn delete_room(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.rooms.delete(&user, &slug).await?;
    // Its WebRTC sessions end with it.
    state.sfu.remove_room(&slug, None).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Page {
    before: Option<i64>,
    limit: Option<i64>,
}

pub async fn list_messages(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(q): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let list = state
        .rooms
        .messages(user.as_ref(), &slug, q.before, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({"messages": list})))
}

pub async fn delete_message(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, seq)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    state.rooms.delete_message(&user, &slug, seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Username {
    username: String,
}

fn moderator_list(mods: &[(i64, String)]) -> Value {
    let mods: Vec<_> = mods
        .iter()
        .map(|(id, name)| json!({"id": id.to_string(), "username": name}))
        .collect();
    json!({"moderators": mods})
}

pub async fn add_moderator(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<Username>,
) -> ApiResult<Response> {
    let list = state
        .rooms
        .add_moderator(&user, &slug, &body.username)
        .await?;
    Ok((StatusCode::CREATED, Json(moderator_list(&list))).into_response())
}

pub async fn list_moderators(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(moderator_list(
        &state.rooms.moderators(user.as_ref(), &slug).await?,
    )))
}

pub async fn remove_moderator(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, username)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .rooms
        .remove_moderator(&user, &slug, &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct SanctionBody {
    username: String,
    duration_s: Option<i64>,
}

async fn sanction(
    state: &AppState,
    user: &crate::storage::users::User,
    slug: &str,
    body: SanctionBody,
    kind: SanctionKind,
) -> ApiResult<Response> {
    let (username, expires_at) = state
        .rooms
        .sanction(user, slug, &body.username, kind, body.duration_s)
        .await?;
    // A ban or timeout takes the member out of the voice chat at once.
    super::webrtc::moderate_voice_by_name(
        state,
        slug,
        &username,
        super::webrtc::VoiceAction::Remove,
    )
    .await;
    let body = json!({
        kind.as_str(): {
            "username": username,
            "expires_at": expires_at.map(rfc3339),
        }
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn ban_user(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<SanctionBody>,
) -> ApiResult<Response> {
    sanction(&state, &user, &slug, body, SanctionKind::Ban).await
}

pub async fn timeout_user(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<SanctionBody>,
) -> ApiResult<Response> {
    sanction(&state, &user, &slug, body, SanctionKind::Timeout).await
}

pub async fn unban_user(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, username)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .rooms
        .lift(&user, &slug, &username, SanctionKind::Ban)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn untimeout_user(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, username)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .rooms
        .lift(&user, &slug, &username, SanctionKind::Timeout)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_sanctions(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let list = state.rooms.sanctions(&user, &slug).await?;
    let list: Vec<_> = list
        .iter()
        .map(|s| {
            json!({
                "username": s.username,
                "kind": s.kind.as_str(),
                "expires_at": s.expires_at.map(rfc3339),
            })
        })
        .collect();
    Ok(Json(json!({"bans": list})))
}
