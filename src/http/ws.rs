//! The room WebSocket endpoint: checks origin and room, then hands the socket to
//! `realtime::session`.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use super::rooms::{load_room, room_info};
use super::same_origin;
use crate::app::AppState;
use crate::auth::MaybeUser;
use crate::realtime::protocol::{error_frame, MAX_CLIENT_FRAME};
use crate::realtime::session::{self, Opened, CLOSE_BANNED};
use crate::storage::now_ms;
use crate::storage::rooms::SanctionKind;

#[derive(Deserialize)]
pub struct WsQuery {
    since: Option<i64>,
}

pub async fn room_ws(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    // Browsers always send Origin on WebSocket handshakes; a foreign one would ride the cookie.
    if !same_origin(&headers) {
        return Err(ApiError::Other(
            StatusCode::FORBIDDEN,
            "csrf_rejected",
            "cross-site WebSocket refused".into(),
        ));
    }
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable("server is restarting".into()));
    }
    let room = load_room(&state, &slug).await?;
    let info = room_info(&state, &room).await?;
    let user = user.map(|(u, _)| u);
    let banned = user
        .as_ref()
        .is_some_and(|u| info.sanction(u.id, SanctionKind::Ban, now_ms()).is_some());
    let token = state.sessions.token();
    let upgrade = upgrade
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .read_buffer_size(2048)
        // A threshold, not an allocation: frames fed in one batch go out in one write.
        .write_buffer_size(16 * 1024);
    Ok(upgrade
        .on_upgrade(move |mut socket| async move {
            let _token = token;
            if banned {
                let f = error_frame("banned", "you are banned from this room", None);
                let _ = socket.send(Message::Text(f.into())).await;
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: CLOSE_BANNED,
                        reason: Utf8Bytes::from_static("banned"),
                    })))
                    .await;
                return;
            }
            let cfg = &state.config;
            let settings = session::Settings {
                grace: cfg.shutdown_grace,
                history_limit: cfg.history_limit,
                resume_limit: cfg.resume_limit,
                coalesce: cfg.chat_coalesce,
            };
            let opened = Opened {
                room,
                info,
                user,
                since: q.since,
            };
            session::run(
                state.hub.clone(),
                socket,
                opened,
                state.shutdown.clone(),
                settings,
            )
            .await;
        })
        .into_response())
}
