//! The HTTP surface: routes, cross-cutting middleware (CSRF origin check, request metrics, body
//! limits), health endpoints and the embedded web UI. Handlers live in the submodules by concept.

pub mod admin;
pub mod auth;
pub mod error;
pub mod extract;
pub mod live;
pub mod media;
pub mod rooms;
pub mod serve;
pub mod videos;
pub mod ws;

use std::sync::atomic::Ordering;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;
use error::ApiError;

/// Largest JSON body accepted.
const MAX_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route(
            "/me/tokens",
            post(auth::create_token).get(auth::list_tokens),
        )
        .route("/me/tokens/{id}", delete(auth::delete_token))
        .route("/rooms", post(rooms::create_room).get(rooms::list_rooms))
        .route(
            "/rooms/{slug}",
            get(rooms::get_room)
                .patch(rooms::update_room)
                .delete(rooms::delete_room),
        )
        .route("/rooms/{slug}/messages", get(rooms::list_messages))
        .route(
            "/rooms/{slug}/messages/{seq}",
            delete(rooms::delete_message),
        )
        .route(
            "/rooms/{slug}/moderators",
            post(rooms::add_moderator).get(rooms::list_moderators),
        )
        .route(
            "/rooms/{slug}/moderators/{username}",
            delete(rooms::remove_moderator),
        )
        .route(
            "/rooms/{slug}/bans",
            post(rooms::ban_user).get(rooms::list_sanctions),
        )
        .route("/rooms/{slug}/bans/{username}", delete(rooms::unban_user))
        .route("/rooms/{slug}/timeouts", post(rooms::timeout_user))
        .route(
            "/rooms/{slug}/timeouts/{username}",
            delete(rooms::untimeout_user),
        )
        .route("/rooms/{slug}/ws", get(ws::room_ws))
        .route(
            "/rooms/{slug}/stream-key",
            get(live::get_stream_key).post(live::rotate_stream_key),
        )
        .route("/videos", get(videos::list_videos))
        .route("/videos/{id}", get(videos::get_video))
        .route(
            "/admin/blocked-terms",
            get(admin::get_blocked_terms).put(admin::put_blocked_terms),
        )
        .fallback(api_not_found)
        .layer(middleware::from_fn(check_origin));

    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(page))
        .route("/r/{slug}", get(page))
        .route("/admin", get(page))
        .route("/videos", get(page))
        .route("/v/{id}", get(page))
        .route("/assets/{file}", get(asset))
        .route("/live/{slug}/index.m3u8", get(live::live_index))
        .route("/live/{slug}/thumbnail.jpg", get(live::live_thumbnail))
        .route(
            "/live/{slug}/{bid}/{rendition}/{file}",
            get(live::live_file),
        )
        .route("/videos/{id}/{file}", get(videos::video_file))
        .fallback(page_not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    } else {
        "ready".into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .metrics
            .render(state.hub.loaded_rooms(), state.live.running()),
    )
        .into_response()
}

async fn api_not_found() -> ApiError {
    ApiError::not_found("endpoint")
}

/// Counts responses by route template and status.
async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // `MatchedPath` is a shared string: cloning it allocates nothing.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    state.metrics.http_request(route, resp.status().as_u16());
    resp
}

/// True when a browser says the request comes from this same site. Requests without Origin or
/// Fetch-Metadata come from non-browser clients, which cannot carry a victim's cookies.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'));
        return matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

/// CSRF defence for cookie-authenticated state changes: the request must come from our origin.
async fn check_origin(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
    if !safe && !bearer && !same_origin(req.headers()) {
        return ApiError::Other(
            StatusCode::FORBIDDEN,
            "csrf_rejected",
            "cross-site request refused".into(),
        )
        .into_response();
    }
    next.run(req).await
}

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const DOM_JS: &str = include_str!("../../web/dom.js");
const PLAYER_JS: &str = include_str!("../../web/player.js");
/// hls.js, vendored (see web/vendor/README.md).
const HLS_JS: &str = include_str!("../../web/vendor/hls.light.min.js");
const STYLE_CSS: &str = include_str!("../../web/style.css");

fn html(status: StatusCode) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
                     connect-src 'self'; style-src 'self'; script-src 'self'; \
                     frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                ),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        ],
        Html(INDEX_HTML),
    )
        .into_response()
}

async fn page() -> Response {
    html(StatusCode::OK)
}

async fn page_not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return ApiError::not_found("endpoint").into_response();
    }
    html(StatusCode::NOT_FOUND)
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "dom.js" => (DOM_JS, "text/javascript; charset=utf-8"),
        "player.js" => (PLAYER_JS, "text/javascript; charset=utf-8"),
        "hls.light.min.js" => (HLS_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
