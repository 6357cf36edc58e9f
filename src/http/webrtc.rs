//! WebRTC over HTTP: WHIP (RFC 9725) to publish a room's broadcast from a browser or OBS, with
//! the room's stream key as the bearer token, and WHEP to watch one in real time. The media
//! itself goes through the SFU (`sfu`); these handlers only carry the SDP and the sessions'
//! resource URLs (`/api/v1/whip/{id}`, `/api/v1/whep/{id}`, ids that cannot be guessed).

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiPath, ApiResult};
use super::extract::MaybeUser;
use crate::sfu::{Role, SfuError};
use crate::state::AppState;

/// Largest SDP body taken (an offer with many codecs and candidates is a few KiB).
pub const MAX_SDP: usize = 64 * 1024;

fn sfu_error(e: SfuError) -> ApiError {
    match e {
        SfuError::BadSdp(m) => ApiError::invalid("invalid_sdp", m),
        SfuError::Unsupported(m) => {
            ApiError::Other(StatusCode::UNPROCESSABLE_ENTITY, "unsupported_media", m)
        }
        SfuError::PublisherPresent => ApiError::Other(
            StatusCode::CONFLICT,
            "already_publishing",
            "the room already has a publisher: end that broadcast first".into(),
        ),
        e @ (SfuError::RoomFull(_) | SfuError::ServerFull(_) | SfuError::ForwardFull(_)) => {
            ApiError::Other(
                StatusCode::SERVICE_UNAVAILABLE,
                "webrtc_full",
                format!("{e}; the low-latency HLS stream still works"),
            )
        }
        e @ SfuError::CamerasFull(_) => {
            ApiError::Other(StatusCode::CONFLICT, "cameras_full", e.to_string())
        }
        e @ SfuError::VoiceFull(_) => {
            ApiError::Other(StatusCode::SERVICE_UNAVAILABLE, "voice_full", e.to_string())
        }
        SfuError::NoSuchPeer => ApiError::not_found("session"),
        e @ SfuError::Unavailable(_) => ApiError::Other(
            StatusCode::SERVICE_UNAVAILABLE,
            "webrtc_unavailable",
            e.to_string(),
        ),
    }
}

/// The SDP body of an offer: `Content-Type: application/sdp`, UTF-8, bounded.
fn sdp_body(headers: &HeaderMap, body: &Bytes) -> ApiResult<String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
    {
        return Err(ApiError::Other(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "an offer is sent as Content-Type: application/sdp".into(),
        ));
    }
    if body.len() > MAX_SDP {
        return Err(ApiError::Other(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the offer is over 64 KiB".into(),
        ));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::invalid("invalid_sdp", "the offer is not UTF-8 text"))
}

/// The ICE servers a client is given, named by `who` (see `sfu::ice`).
fn ice_servers_for(state: &AppState, who: Option<&str>) -> Vec<crate::sfu::ice::IceServer> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    state.ice_servers.for_client(who, now)
}

/// `GET /api/v1/webrtc/ice-servers`: the STUN and TURN servers a page configures its
/// `RTCPeerConnection` with (TURN credentials for signed-in members only).
pub async fn ice_servers(State(state): State<AppState>, MaybeUser(user): MaybeUser) -> Response {
    let who = user.as_ref().map(|u| format!("u{}", u.id));
    let servers = ice_servers_for(&state, who.as_deref());
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        )],
        axum::Json(serde_json::json!({
            "ice_servers": servers,
            "ttl_s": state.ice_servers.ttl_s(),
        })),
    )
        .into_response()
}

fn answer(kind: &str, id: &str, sdp: String, servers: &[crate::sfu::ice::IceServer]) -> Response {
    let location = format!("/api/v1/{kind}/{id}");
    let mut response = (
        StatusCode::CREATED,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/sdp"),
            ),
            (
                header::LOCATION,
                HeaderValue::from_str(&location).expect("hex id"),
            ),
            (
                header::ETAG,
                HeaderValue::from_str(&format!("\"{}\"", &id[..8])).expect("hex id"),
            ),
            (
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Location, ETag, Link"),
            ),
        ],
        sdp,
    )
        .into_response();
    for link in crate::sfu::ice::link_headers(servers) {
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, v);
        }
    }
    response
}

/// The stream key in `Authorization: Bearer`, if it is `slug`'s.
async fn key_is_rooms(state: &AppState, headers: &HeaderMap, slug: &str) -> ApiResult<()> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest)
        })
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 128);
    let unauthorized = || {
        ApiError::Other(
            StatusCode::UNAUTHORIZED,
            "invalid_stream_key",
            "send the room's stream key as Authorization: Bearer <stream key>".into(),
        )
    };
    let Some(key) = key else {
        return Err(unauthorized());
    };
    let room = crate::storage::live::room_for_key(&state.db.pool, key)
        .await
        .map_err(crate::domain::Error::from)?;
    if room.as_deref() == Some(slug) {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

/// Offers per client address: each costs a DTLS certificate and a handshake slot.
fn offer_allowed(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> ApiResult<()> {
    let ip = crate::limits::address_key(super::auth::client_ip(state, headers, peer));
    state
        .webrtc_offers_by_ip
        .check(&ip)
        .map_err(|w| ApiError::RateLimited {
            retry_after_s: w.as_secs_f64().ceil() as u64,
        })
}

/// `POST /api/v1/rooms/{slug}/whip`: a publisher's offer.
pub async fn whip(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    key_is_rooms(&state, &headers, &slug).await?;
    offer_allowed(&state, &headers, peer)?;
    let sdp = sdp_body(&headers, &body)?;
    let room = state.rooms.find(&slug).await?;
    if room.private {
        return Err(ApiError::Other(
            StatusCode::FORBIDDEN,
            "private_room",
            "a private room cannot broadcast".into(),
        ));
    }
    // One publisher per room, whichever way it publishes: an RTMP encoder live now keeps it.
    if state.live.publishing(&slug) && !state.sfu.counts(&slug).await.0 {
        return Err(ApiError::Other(
            StatusCode::CONFLICT,
            "already_publishing",
            "the room is live from an RTMP encoder: end that broadcast first".into(),
        ));
    }
    let (id, sdp) = state
        .sfu
        .offer(&slug, Role::Publisher, sdp)
        .await
        .map_err(sfu_error)?;
    tracing::info!(room = %slug, "WHIP publisher offered");
    let servers = ice_servers_for(&state, Some(&format!("room-{slug}")));
    Ok(answer("whip", &id, sdp, &servers))
}

/// `POST /api/v1/rooms/{slug}/whep`: a viewer's offer (private rooms: members only).
pub async fn whep(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    MaybeUser(user): MaybeUser,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    state.rooms.find_visible(user.as_ref(), &slug).await?;
    offer_allowed(&state, &headers, peer)?;
    let who = user.as_ref().map(|u| format!("u{}", u.id));
    let sdp = sdp_body(&headers, &body)?;
    let (id, sdp) = state
        .sfu
        .offer(&slug, Role::Viewer, sdp)
        .await
        .map_err(sfu_error)?;
    Ok(answer(
        "whep",
        &id,
        sdp,
        &ice_servers_for(&state, who.as_deref()),
    ))
}

/// A session's resource, checked to be of the kind the URL says (and for WHIP, that the
/// stream key is its room's).
async fn session(state: &AppState, id: &str, role: Role, headers: &HeaderMap) -> ApiResult<String> {
    let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let found = if valid {
        state.sfu.peer(id).await
    } else {
        None
    };
    let Some((room, r)) = found.filter(|(_, r)| *r == role) else {
        return Err(ApiError::not_found("session"));
    };
    if r == Role::Publisher {
        key_is_rooms(state, headers, &room).await?;
    }
    Ok(room)
}

/// `DELETE /api/v1/whip/{id}` and `/api/v1/whep/{id}`: the session ends (200, as RFC 9725).
pub async fn delete_whip(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let room = session(&state, &id, Role::Publisher, &headers).await?;
    state.sfu.remove(&id).await;
    tracing::info!(room = %room, "WHIP publisher ended its broadcast");
    Ok(StatusCode::OK)
}

pub async fn delete_whep(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    session(&state, &id, Role::Viewer, &headers).await?;
    state.sfu.remove(&id).await;
    Ok(StatusCode::OK)
}

/// `PATCH` on a session: trickled candidates (`application/trickle-ice-sdpfrag`). moim's side
/// is ICE-lite and learns a client's addresses from its connectivity checks, so candidates
/// need no action: 204. An ICE restart (an `ice-ufrag` other than the session's, with
/// `If-Match`, RFC 9725 §4.3.2) gets 200 and a fragment with moim's new credentials.
async fn patch(
    state: &AppState,
    id: &str,
    role: Role,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    session(state, id, role, headers).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/trickle-ice-sdpfrag") {
        return Err(ApiError::Other(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a PATCH carries application/trickle-ice-sdpfrag".into(),
        ));
    }
    let text = String::from_utf8_lossy(body);
    let ufrag = text
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("a=ice-ufrag:"));
    if let Some(ufrag) = ufrag {
        let current = state.sfu.ufrag(id).await.unwrap_or_default();
        if ufrag != current {
            if !headers.contains_key(header::IF_MATCH) {
                return Err(ApiError::Other(
                    StatusCode::PRECONDITION_REQUIRED,
                    "if_match_required",
                    "an ICE restart is sent with If-Match: \"*\" (RFC 9725)".into(),
                ));
            }
            let Some(pwd) = text
                .lines()
                .find_map(|l| l.trim_end_matches('\r').strip_prefix("a=ice-pwd:"))
            else {
                return Err(ApiError::invalid(
                    "invalid_sdpfrag",
                    "an ICE restart carries a=ice-ufrag and a=ice-pwd",
                ));
            };
            let (ufrag, pwd) = state
                .sfu
                .restart_ice(id, ufrag, pwd)
                .await
                .map_err(sfu_error)?;
            let etag = format!("\"{}-{}\"", &id[..8], ufrag);
            return Ok((
                StatusCode::OK,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/trickle-ice-sdpfrag"),
                    ),
                    (
                        header::ETAG,
                        HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"r\"")),
                    ),
                ],
                format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"),
            )
                .into_response());
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn patch_whip(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    patch(&state, &id, Role::Publisher, &headers, &body).await
}

pub async fn patch_whep(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    patch(&state, &id, Role::Viewer, &headers, &body).await
}

/// `OPTIONS` on a session's resource.
pub async fn options_session() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::ALLOW, "PATCH, DELETE, OPTIONS")],
    )
        .into_response()
}

/// `OPTIONS` on the endpoints: what they take.
pub async fn options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "POST, OPTIONS"),
            (
                header::HeaderName::from_static("accept-post"),
                "application/sdp",
            ),
        ],
    )
        .into_response()
}

/// `POST /api/v1/rooms/{slug}/voice`: a member joins the room's voice chat with an SDP offer
/// (its microphone on the first audio m-line, then one receiving audio m-line per member slot).
pub async fn voice_join(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    super::extract::CurrentUser(user): super::extract::CurrentUser,
    ApiPath(slug): ApiPath<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    state.rooms.require_talker(&user, &slug).await?;
    offer_allowed(&state, &headers, peer)?;
    // A page joining again by itself (after its network dropped) names the session it had:
    // one someone else ended stays ended (410), so a removed member or a stale tab does not
    // come back on its own.
    let previous = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("previous="));
    if let Some(previous) = previous {
        if previous.len() != 32 || !previous.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid(
                "invalid_request",
                "previous is the 32-hex-digit id of the session this page had",
            ));
        }
        if let Ok(Some(_)) | Err(_) = state.sfu.ending(previous).await {
            return Err(voice_gone(&state, previous).await);
        }
    }
    let sdp = sdp_body(&headers, &body)?;
    let (id, sdp, line) = state
        .sfu
        .offer_voice(&slug, user.id, &user.username, sdp)
        .await
        .map_err(|e| match e {
            e @ SfuError::ForwardFull(_) => {
                ApiError::Other(StatusCode::SERVICE_UNAVAILABLE, "voice_full", e.to_string())
            }
            e => sfu_error(e),
        })?;
    tracing::debug!(room = %slug, ?line, "voice member joined");
    let servers = ice_servers_for(&state, Some(&format!("u{}", user.id)));
    Ok(answer("voice", &id, sdp, &servers))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoicePatch {
    muted: Option<bool>,
    camera: Option<bool>,
}

/// `PATCH /api/v1/voice/{id}`: with `{"muted": bool}`, mute or unmute one's own microphone (the
/// server stops forwarding it, whatever the client does); with `{"camera": bool}`, turn one's
/// camera on (200 with the camera line it is seen on) or off; with an SDP offer
/// (`application/sdp`), renegotiate or restart ICE: 200 with the answer.
pub async fn voice_patch(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/sdp"));
    if is_sdp {
        if !matches!(state.sfu.peer(&id).await, Some((_, Role::Voice))) {
            return Err(voice_gone(&state, &id).await);
        }
        let sdp = sdp_body(&headers, &body)?;
        let answer = match state.sfu.renegotiate(&id, sdp).await {
            Ok(a) => a,
            Err(e) => return Err(voice_error(&state, &id, e).await),
        };
        return Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/sdp"),
            )],
            answer,
        )
            .into_response());
    }
    let body: VoicePatch = super::error::parse_json(&state, &headers, &body)?;
    if body.muted.is_none() && body.camera.is_none() {
        return Err(ApiError::invalid(
            "invalid_request",
            "send {\"muted\": true|false}, {\"camera\": true|false}, or both",
        ));
    }
    if !matches!(state.sfu.peer(&id).await, Some((_, Role::Voice))) {
        return Err(voice_gone(&state, &id).await);
    }
    if let Some(muted) = body.muted {
        if !state.sfu.mute(&id, muted).await {
            return Err(voice_gone(&state, &id).await);
        }
    }
    let mut line = None;
    if let Some(on) = body.camera {
        line = match state.sfu.camera(&id, on).await {
            Ok(l) => l,
            Err(e) => return Err(voice_error(&state, &id, e).await),
        };
    }
    if body.camera.is_some() {
        return Ok(axum::Json(serde_json::json!({ "camera": line })).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Why a voice session is not there: 410 when someone else ended it (the client should not
/// rejoin), 404 when it is unknown or was lost to the network (the client may join again).
async fn voice_gone(state: &AppState, id: &str) -> ApiError {
    match state.sfu.ending(id).await {
        Err(e) => sfu_error(e),
        Ok(Some(crate::sfu::Ending::Replaced)) => ApiError::Other(
            StatusCode::GONE,
            "voice_replaced",
            "you joined this room's voice chat from another tab or device".into(),
        ),
        Ok(Some(crate::sfu::Ending::Removed)) => ApiError::Other(
            StatusCode::GONE,
            "voice_removed",
            "a moderator took you out of this room's voice chat".into(),
        ),
        Ok(None) => ApiError::not_found("session"),
    }
}

/// An SFU error about voice session `id`: a session gone meanwhile says how (see `voice_gone`).
async fn voice_error(state: &AppState, id: &str, e: SfuError) -> ApiError {
    match e {
        SfuError::NoSuchPeer => voice_gone(state, id).await,
        e => sfu_error(e),
    }
}

/// `DELETE /api/v1/voice/{id}`: leave the voice chat.
pub async fn voice_leave(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    match state.sfu.peer(&id).await {
        Some((_, Role::Voice)) => {
            state.sfu.remove(&id).await;
            Ok(StatusCode::OK)
        }
        _ => Err(ApiError::not_found("session")),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceModeration {
    username: String,
    action: VoiceAction,
}

#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum VoiceAction {
    Mute,
    Unmute,
    Remove,
}

/// `POST /api/v1/rooms/{slug}/voice/moderate`: a moderator mutes, unmutes or removes a member
/// of the voice chat.
pub async fn voice_moderate(
    State(state): State<AppState>,
    super::extract::CurrentUser(user): super::extract::CurrentUser,
    ApiPath(slug): ApiPath<String>,
    super::error::ApiJson(body): super::error::ApiJson<VoiceModeration>,
) -> ApiResult<Response> {
    state
        .rooms
        .require_voice_moderator(&user, &slug, &body.username)
        .await?;
    let touched = moderate_voice_by_name(&state, &slug, &body.username, body.action).await;
    if touched == 0 {
        return Err(ApiError::not_found("voice member"));
    }
    Ok(axum::Json(serde_json::json!({"sessions": touched})).into_response())
}

/// Applies a voice action to whoever is in `slug`'s voice chat as `username`: sessions touched.
pub async fn moderate_voice_by_name(
    state: &AppState,
    slug: &str,
    username: &str,
    action: VoiceAction,
) -> usize {
    let mute = match action {
        VoiceAction::Mute => Some(true),
        VoiceAction::Unmute => Some(false),
        VoiceAction::Remove => None,
    };
    state.sfu.moderate_voice(slug, username, mute).await
}
