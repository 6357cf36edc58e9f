//! `GET /api/v1/me/events`: the signed-in member's own events as Server-Sent Events, so the
//! library pages update without polling (a video's progress, ready, failed, renamed, deleted).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::error::{ApiError, ApiResult};
use super::extract::CurrentUser;
use crate::realtime::inbox::MAX_STREAMS_PER_MEMBER;
use crate::state::AppState;

/// `event: video` `{"video"}`, `event: video_deleted` `{"id"}`, and `event: resync` (reload:
/// events were missed). A comment every 15 s keeps proxies from closing it; it ends when the
/// server shuts down (the browser reconnects by itself after `retry`).
pub async fn me_events(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Response> {
    let Some(rx) = state.inboxes.open(user.id) else {
        return Err(ApiError::Other(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("at most {MAX_STREAMS_PER_MEMBER} event streams at once; close a tab"),
        ));
    };
    let hello = stream::once(async {
        Ok::<_, Infallible>(
            Event::default()
                .retry(Duration::from_secs(3))
                .event("ready")
                .data("{}"),
        )
    });
    let notes = stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(note) => Event::default().event(note.name).data(&*note.data),
            Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), rx))
    });
    let shutdown = state.shutdown.clone();
    let body = hello
        .chain(notes)
        .take_until(async move { shutdown.cancelled().await });
    let mut resp = Sse::new(body)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}
