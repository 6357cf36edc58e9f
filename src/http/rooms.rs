//! Rooms and their moderation over HTTP. Every change is written to the database first and then
//! applied to the room if it is loaded in the hub, so connected clients see it at once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::app::AppState;
use crate::auth::{CurrentUser, MaybeUser};
use crate::realtime::protocol::{error_frame, ServerFrame};
use crate::realtime::session::CLOSE_BANNED;
use crate::realtime::{text, RoomInfo};
use crate::storage::rooms::{self, Room, SanctionKind};
use crate::storage::users::{self, Role, User};
use crate::storage::{is_unique_violation, messages, now_ms, rfc3339};
use crate::views::{MessageView, RoomView};

/// Longest timeout or timed ban: 14 days.
const MAX_SANCTION_S: i64 = 14 * 24 * 3600;
/// Longest slow-mode interval: 1 hour.
const MAX_SLOW_MODE_S: i64 = 3600;
/// Rooms a member may own (admins are not limited).
const MAX_ROOMS_PER_MEMBER: i64 = 50;

pub async fn load_room(state: &AppState, slug: &str) -> ApiResult<Room> {
    rooms::get(&state.db.pool, slug)
        .await?
        .ok_or_else(|| ApiError::not_found("room"))
}

/// The room's moderation facts: from the hub when loaded, else from the database.
pub async fn room_info(state: &AppState, room: &Room) -> ApiResult<RoomInfo> {
    match state.hub.loaded(room.id) {
        Some(r) => Ok(r.info.read().clone()),
        None => Ok(state.hub.load_info(room).await?),
    }
}

fn is_manager(room: &Room, user: &User) -> bool {
    user.role == Role::Admin || user.id == room.owner_id
}

fn view(state: &AppState, room: &Room) -> RoomView {
    // A loaded room's count already includes stream-only viewers (set every second).
    let viewers = match state.hub.loaded(room.id) {
        Some(r) => r.viewers(),
        None => state.live.hls_only_viewers(&room.slug, room.id),
    };
    RoomView::new(room, viewers, state.live.status(&room.slug).as_ref())
}

fn validate_slug(slug: &str) -> ApiResult<()> {
    let ok = (3..=48).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "invalid_slug",
            "slug must be 3 to 48 characters of a-z, 0-9 and -",
        ))
    }
}

fn validate_title(raw: &str) -> ApiResult<String> {
    match text::clean(raw) {
        Ok(t) if t.chars().count() <= 100 => Ok(t),
        _ => Err(ApiError::invalid(
            "invalid_title",
            "title must be 1 to 100 characters",
        )),
    }
}

#[derive(Deserialize)]
pub struct NewRoom {
    slug: String,
    title: String,
}

pub async fn create_room(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<NewRoom>,
) -> ApiResult<Response> {
    validate_slug(&body.slug)?;
    let title = validate_title(&body.title)?;
    if user.role != Role::Admin
        && rooms::count_owned(&state.db.pool, user.id).await? >= MAX_ROOMS_PER_MEMBER
    {
        return Err(ApiError::Conflict(
            "too_many_rooms",
            format!("you already own {MAX_ROOMS_PER_MEMBER} rooms; delete one first"),
        ));
    }
    match rooms::create(&state.db.pool, &body.slug, &title, user.id, now_ms()).await {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(
                "slug_taken",
                "that slug is taken".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let room = load_room(&state, &body.slug).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"room": view(&state, &room)})),
    )
        .into_response())
}

pub async fn list_rooms(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let list = rooms::list(&state.db.pool, 500).await?;
    let mut views: Vec<(RoomView, i64)> = list
        .iter()
        .map(|r| (view(&state, r), r.last_activity_at))
        .collect();
    // Live rooms first, then most viewers, then most recent activity.
    views.sort_by(|a, b| {
        b.0.live
            .cmp(&a.0.live)
            .then(b.0.viewers.cmp(&a.0.viewers))
            .then(b.1.cmp(&a.1))
    });
    let rooms: Vec<RoomView> = views.into_iter().map(|(v, _)| v).collect();
    Ok(Json(json!({"rooms": rooms})))
}

pub async fn get_room(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let room = load_room(&state, &slug).await?;
    let (moderate, manage) = match &user {
        Some(u) => (
            room_info(&state, &room).await?.can_moderate(u),
            is_manager(&room, u),
        ),
        None => (false, false),
    };
    Ok(Json(json!({
        "room": view(&state, &room),
        "permissions": {"moderate": moderate, "manage": manage},
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomPatch {
    title: Option<String>,
    slow_mode_s: Option<i64>,
    record_broadcasts: Option<bool>,
}

pub async fn update_room(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(patch): ApiJson<RoomPatch>,
) -> ApiResult<Json<serde_json::Value>> {
    let room = load_room(&state, &slug).await?;
    if !is_manager(&room, &user) {
        return Err(ApiError::forbidden());
    }
    let title = match patch.title {
        Some(t) => validate_title(&t)?,
        None => room.title.clone(),
    };
    let slow = patch.slow_mode_s.unwrap_or(room.slow_mode_s);
    if !(0..=MAX_SLOW_MODE_S).contains(&slow) {
        return Err(ApiError::invalid(
            "invalid_slow_mode",
            format!("slow_mode_s must be 0 to {MAX_SLOW_MODE_S}"),
        ));
    }
    let record = patch.record_broadcasts.unwrap_or(room.record_broadcasts);
    rooms::update(&state.db.pool, room.id, &title, slow, record).await?;
    state.hub.update_info(room.id, |i| {
        i.title = title.clone();
        i.slow_mode_s = slow;
    });
    let room = load_room(&state, &slug).await?;
    let room_view = view(&state, &room);
    if let Some(r) = state.hub.loaded(room.id) {
        r.broadcast(0, ServerFrame::Room { room: &room_view }.encode())
            .await;
    }
    Ok(Json(json!({"room": room_view})))
}

pub async fn delete_room(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let room = load_room(&state, &slug).await?;
    if !is_manager(&room, &user) {
        return Err(ApiError::forbidden());
    }
    rooms::delete(&state.db.pool, room.id).await?;
    state.hub.close_room(room.id);
    state.live.end_room(&room.slug).await;
    tracing::info!(room = %room.slug, by = %user.username, "room deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Page {
    before: Option<i64>,
    limit: Option<i64>,
}

pub async fn list_messages(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(q): ApiQuery<Page>,
) -> ApiResult<Json<serde_json::Value>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("invalid_limit", "limit must be 1 to 200"));
    }
    let room = load_room(&state, &slug).await?;
    let list = messages::page(&state.db.pool, room.id, q.before, limit).await?;
    let list: Vec<MessageView> = list.iter().map(MessageView::from).collect();
    Ok(Json(json!({"messages": list})))
}

/// Loads the room and checks the caller moderates it.
async fn moderated_room(state: &AppState, user: &User, slug: &str) -> ApiResult<(Room, RoomInfo)> {
    let room = load_room(state, slug).await?;
    let info = room_info(state, &room).await?;
    if !info.can_moderate(user) {
        return Err(ApiError::forbidden());
    }
    Ok((room, info))
}

pub async fn delete_message(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, seq)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    let (room, _) = moderated_room(&state, &user, &slug).await?;
    if !messages::mark_deleted(&state.db.pool, room.id, seq).await? {
        return Err(ApiError::not_found("message"));
    }
    if let Some(r) = state.hub.loaded(room.id) {
        r.broadcast(0, ServerFrame::Deleted { seq }.encode()).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Username {
    username: String,
}

async fn find_user(state: &AppState, username: &str) -> ApiResult<User> {
    let (_, key) =
        crate::auth::normalise_username(username).map_err(|_| ApiError::not_found("user"))?;
    users::find_by_key(&state.db.pool, &key)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

pub async fn add_moderator(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<Username>,
) -> ApiResult<Response> {
    let room = load_room(&state, &slug).await?;
    if !is_manager(&room, &user) {
        return Err(ApiError::forbidden());
    }
    let target = find_user(&state, &body.username).await?;
    rooms::add_moderator(&state.db.pool, room.id, target.id, now_ms()).await?;
    state.hub.update_info(room.id, |i| {
        i.moderators.insert(target.id);
    });
    let list = moderator_list(&state, room.id).await?;
    Ok((StatusCode::CREATED, Json(list)).into_response())
}

async fn moderator_list(state: &AppState, room_id: i64) -> ApiResult<serde_json::Value> {
    let mods = rooms::moderators(&state.db.pool, room_id).await?;
    let mods: Vec<_> = mods
        .iter()
        .map(|(id, name)| json!({"id": id.to_string(), "username": name}))
        .collect();
    Ok(json!({"moderators": mods}))
}

pub async fn list_moderators(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let room = load_room(&state, &slug).await?;
    Ok(Json(moderator_list(&state, room.id).await?))
}

pub async fn remove_moderator(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, username)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let room = load_room(&state, &slug).await?;
    if !is_manager(&room, &user) {
        return Err(ApiError::forbidden());
    }
    let target = find_user(&state, &username).await?;
    if !rooms::remove_moderator(&state.db.pool, room.id, target.id).await? {
        return Err(ApiError::not_found("moderator"));
    }
    state.hub.update_info(room.id, |i| {
        i.moderators.remove(&target.id);
    });
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct SanctionBody {
    username: String,
    duration_s: Option<i64>,
}

async fn sanction(
    state: &AppState,
    user: &User,
    slug: &str,
    body: SanctionBody,
    kind: SanctionKind,
) -> ApiResult<Response> {
    let (room, info) = moderated_room(state, user, slug).await?;
    let target = find_user(state, &body.username).await?;
    if info.can_moderate(&target) {
        return Err(ApiError::Forbidden(
            "moderators, the owner and admins cannot be banned or timed out".into(),
        ));
    }
    let duration = match (kind, body.duration_s) {
        (SanctionKind::Timeout, None) => {
            return Err(ApiError::invalid(
                "invalid_duration",
                "duration_s is required",
            ))
        }
        (_, Some(d)) if !(1..=MAX_SANCTION_S).contains(&d) => {
            return Err(ApiError::invalid(
                "invalid_duration",
                format!("duration_s must be 1 to {MAX_SANCTION_S}"),
            ))
        }
        (_, d) => d,
    };
    let now = now_ms();
    let expires_at = duration.map(|d| now + d * 1000);
    rooms::set_sanction(
        &state.db.pool,
        room.id,
        target.id,
        kind,
        expires_at,
        user.id,
        now,
    )
    .await?;
    state.hub.update_info(room.id, |i| {
        i.sanctions.insert((target.id, kind), expires_at);
    });
    if kind == SanctionKind::Ban {
        if let Some(r) = state.hub.loaded(room.id) {
            let f = error_frame("banned", "you are banned from this room", None);
            r.kick_user(target.id, &f, CLOSE_BANNED);
        }
    }
    tracing::info!(room = %room.slug, target = %target.username, kind = kind.as_str(), by = %user.username, "sanction");
    let body = json!({
        kind.as_str(): {
            "username": target.username,
            "expires_at": expires_at.map(rfc3339),
        }
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn lift(
    state: &AppState,
    user: &User,
    slug: &str,
    username: &str,
    kind: SanctionKind,
) -> ApiResult<StatusCode> {
    let (room, _) = moderated_room(state, user, slug).await?;
    let target = find_user(state, username).await?;
    if !rooms::clear_sanction(&state.db.pool, room.id, target.id, kind).await? {
        return Err(ApiError::not_found(kind.as_str()));
    }
    state.hub.update_info(room.id, |i| {
        i.sanctions.remove(&(target.id, kind));
    });
    Ok(StatusCode::NO_CONTENT)
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
    lift(&state, &user, &slug, &username, SanctionKind::Ban).await
}

pub async fn untimeout_user(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, username)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    lift(&state, &user, &slug, &username, SanctionKind::Timeout).await
}

pub async fn list_sanctions(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let (room, _) = moderated_room(&state, &user, &slug).await?;
    let list = rooms::active_sanctions(&state.db.pool, room.id, now_ms()).await?;
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
