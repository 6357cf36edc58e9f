//! The HTTP surface: routes, cross-cutting middleware (CSRF origin check, request metrics, body
//! limits), health endpoints and the embedded web UI. Handlers live in the submodules by concept.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod community;
pub mod error;
pub mod events;
pub mod extract;
pub mod live;
pub mod media;
pub mod planning;
pub mod rooms;
pub mod serve;
pub mod shares;
pub mod signin;
pub mod uploads;
pub mod videos;
pub mod webrtc;
pub mod ws;

use std::sync::atomic::Ordering;

use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::metrics::Refusal;
use crate::state::AppState;
use error::ApiError;

/// Largest JSON body accepted.
const MAX_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/providers", get(signin::providers))
        .route("/auth/oidc/pending", get(signin::pending))
        .route("/auth/oidc/complete", post(signin::complete))
        .route("/me", get(auth::me))
        .route("/me/password", put(signin::set_password))
        .route("/me/identities", get(signin::list_identities))
        .route(
            "/me/identities/{id}",
            post(signin::connect_identity).delete(signin::disconnect_identity),
        )
        .route("/admin/sign-in-providers", get(signin::admin_providers))
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
            "/rooms/{slug}/whep",
            post(webrtc::whep)
                .options(webrtc::options)
                .layer(DefaultBodyLimit::max(webrtc::MAX_SDP)),
        )
        .route(
            "/whep/{id}",
            delete(webrtc::delete_whep)
                .patch(webrtc::patch_whep)
                .options(webrtc::options_session),
        )
        .route("/webrtc/ice-servers", get(webrtc::ice_servers))
        .route(
            "/rooms/{slug}/voice",
            post(webrtc::voice_join).layer(DefaultBodyLimit::max(webrtc::MAX_SDP)),
        )
        .route("/rooms/{slug}/voice/moderate", post(webrtc::voice_moderate))
        .route(
            "/voice/{id}",
            delete(webrtc::voice_leave)
                .patch(webrtc::voice_patch)
                .layer(DefaultBodyLimit::max(webrtc::MAX_SDP)),
        )
        .route("/rooms/{slug}/party", get(rooms::get_party))
        .route(
            "/rooms/{slug}/invites",
            post(planning::create_invite).get(planning::list_invites),
        )
        .route(
            "/rooms/{slug}/invites/{code}",
            delete(planning::revoke_invite),
        )
        .route("/invites/{code}", get(planning::get_invite))
        .route("/invites/{code}/accept", post(planning::accept_invite))
        .route(
            "/rooms/{slug}/pins",
            get(planning::list_pins).post(planning::add_pin),
        )
        .route("/rooms/{slug}/pins/{id}", delete(planning::remove_pin))
        .route(
            "/rooms/{slug}/polls",
            get(planning::list_polls).post(planning::create_poll),
        )
        .route("/polls/{id}", get(planning::get_poll))
        .route(
            "/polls/{id}/vote",
            put(planning::vote).delete(planning::unvote),
        )
        .route("/polls/{id}/close", post(planning::close_poll))
        .route(
            "/rooms/{slug}/stream-key",
            get(live::get_stream_key).post(live::rotate_stream_key),
        )
        .route("/uploads", post(uploads::create).options(uploads::options))
        .route(
            "/uploads/{id}",
            axum::routing::head(uploads::head)
                .patch(uploads::patch)
                .delete(uploads::terminate)
                .options(uploads::options),
        )
        .route("/me/usage", get(admin::my_usage))
        .route("/me/events", get(events::me_events))
        .route(
            "/admin/plans",
            get(admin::list_plans).post(admin::create_plan),
        )
        .route(
            "/admin/plans/{name}",
            axum::routing::patch(admin::update_plan),
        )
        .route(
            "/admin/users/{username}/plan",
            axum::routing::put(admin::assign_plan),
        )
        .route("/videos", get(videos::list_videos))
        .route("/users/{username}", get(videos::member_page))
        .route(
            "/videos/{id}",
            get(videos::get_video)
                .patch(videos::update_video)
                .delete(videos::delete_video),
        )
        .route("/videos/{id}/original", get(videos::download_original))
        .route(
            "/videos/{id}/shares",
            get(shares::list_shares).post(shares::create_share),
        )
        .route(
            "/videos/{id}/shares/{code}",
            axum::routing::delete(shares::revoke_share),
        )
        .route("/videos/{id}/shares/{code}/qr.svg", get(shares::share_qr))
        .route("/s/{code}", get(shares::open_share))
        .route("/s/{code}/unlock", post(shares::unlock_share))
        .route("/images", post(community::upload_image))
        .route(
            "/posts",
            get(community::list_posts).post(community::create_post),
        )
        .route(
            "/posts/{id}",
            get(community::get_post)
                .patch(community::update_post)
                .delete(community::delete_post),
        )
        .route(
            "/posts/{id}/like",
            put(community::like).delete(community::unlike),
        )
        .route(
            "/posts/{id}/favorite",
            put(community::favorite).delete(community::unfavorite),
        )
        .route(
            "/posts/{id}/comments",
            get(community::list_comments).post(community::create_comment),
        )
        .route("/posts/{id}/reports", post(community::report))
        .route("/posts/{id}/contact", post(community::contact))
        .route("/me/contacts", get(community::my_contacts))
        .route("/comments/{id}/vote", put(community::vote_comment))
        .route(
            "/comments/{id}",
            axum::routing::patch(community::update_comment).delete(community::delete_comment),
        )
        .route("/reports", get(community::list_reports))
        .route("/reports/{id}/resolve", post(community::resolve_report))
        .route("/places/{id}", get(community::get_place))
        .route("/rankings", get(community::rankings))
        .route("/ai", get(community::ai_status))
        .route("/map", get(community::map_settings))
        .route("/ai/review-draft", post(community::review_draft))
        .route("/me/favorites", get(community::my_favorites))
        .route("/admin/users/{username}/role", put(admin::set_role))
        .route(
            "/admin/blocked-terms",
            get(admin::get_blocked_terms)
                .put(admin::put_blocked_terms)
                .layer(
                    // The largest lists the rules allow must fit (about 3 MiB written as escapes).
                    DefaultBodyLimit::max(crate::domain::settings::MAX_LISTS_BYTES),
                ),
        )
        .fallback(api_not_found)
        .layer(middleware::from_fn_with_state(state.clone(), check_origin));

    // WHIP is authorised by the stream key as a bearer token, not an API token: outside the
    // Origin check (no browser cookie is consulted there).
    let whip = Router::new()
        .route(
            "/api/v1/rooms/{slug}/whip",
            post(webrtc::whip).options(webrtc::options),
        )
        .route(
            "/api/v1/whip/{id}",
            delete(webrtc::delete_whip)
                .patch(webrtc::patch_whip)
                .options(webrtc::options_session),
        )
        .layer(DefaultBodyLimit::max(webrtc::MAX_SDP));

    Router::new()
        .merge(whip)
        .nest("/api/v1", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/live/{slug}/index.m3u8", get(live::live_index))
        .route("/live/{slug}/thumbnail.jpg", get(live::live_thumbnail))
        .route(
            "/live/{slug}/{bid}/{rendition}/{file}",
            get(live::live_file),
        )
        .route("/s/{code}", get(shares::share_page))
        .route("/auth/{id}/start", get(signin::start))
        .route("/auth/{id}/callback", get(signin::callback))
        .route("/images/{id}/{size}", get(community::image_file))
        .route("/videos/{id}/{file}", get(videos::video_file))
        .route(
            "/videos/{id}/{rendition}/{file}",
            get(videos::rendition_file),
        )
        .route("/party/{slug}/{id}/{file}", get(videos::party_file))
        .route(
            "/party/{slug}/{id}/{rendition}/{file}",
            get(videos::party_rendition_file),
        )
        // The UI's assets, and the page shell for every other GET (the pages are the UI's).
        .merge(assets::routes())
        .layer(axum::Extension(assets::Pages::new(
            state.config.map.tile_source(),
        )))
        .layer(middleware::from_fn_with_state(state.clone(), refuse_nul))
        .layer(middleware::from_fn(uploads::mark_tus))
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

/// Refuses a NUL character (`%00`) anywhere in the path or query before any route sees it:
/// nothing in moim is named with one, and PostgreSQL cannot compare text holding one.
async fn refuse_nul(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let uri = req.uri();
    if uri.path().contains("%00") {
        state.metrics.refused(Refusal::NulCharacter);
        return ApiError::invalid(
            "invalid_path",
            "the path may not contain NUL characters (%00)",
        )
        .into_response();
    }
    if uri.query().is_some_and(|q| q.contains("%00")) {
        state.metrics.refused(Refusal::NulCharacter);
        return ApiError::invalid(
            "invalid_query",
            "the query may not contain NUL characters (%00)",
        )
        .into_response();
    }
    next.run(req).await
}

/// Counts responses by route template and status.
async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // `MatchedPath` is a shared string: cloning it allocates nothing.
    let route = req.extensions().get::<MatchedPath>().cloned();
    // Pages have no routes of their own (the UI's router owns them): the shell answers them.
    let unmatched = if req.uri().path().starts_with("/api/") {
        "unmatched"
    } else {
        "page"
    };
    let resp = next.run(req).await;
    let route = route.as_ref().map_or(unmatched, |p| p.as_str());
    state.metrics.http_request(route, resp.status().as_u16());
    resp
}

/// The DNS-rebinding and CSRF defences for state changes: the request must name this site in
/// `Host`, and a browser's request must come from this site (`Origin`). A request whose bearer
/// token signed it in skips both (neither attack can know a token; a cookie is never consulted
/// when an `Authorization` header is present).
async fn check_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    if parts.headers.contains_key(header::AUTHORIZATION) {
        // Resolved here (and kept for the handler's extractor): 401 for a bad token.
        match extract::MaybeUser::from_request_parts(&mut parts, &state).await {
            Ok(extract::MaybeUser(Some(_))) => {
                return next.run(Request::from_parts(parts, body)).await
            }
            Ok(extract::MaybeUser(None)) => {}
            Err(e) => return e.into_response(),
        }
    }
    let checked = state
        .site
        .check_host(&parts.headers)
        .and_then(|()| state.site.check_origin(&parts.headers));
    if let Err(why) = checked {
        state.metrics.refused(match why {
            crate::auth::origin::Refusal::Host => Refusal::WrongHost,
            _ => Refusal::CrossSite,
        });
        return ApiError::Other(StatusCode::FORBIDDEN, "csrf_rejected", why.message().into())
            .into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
