//! Sign-up, log-in, log-out, the current user and API tokens.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::extract::CurrentUser;
use crate::auth::{self, SESSION_COOKIE, SESSION_TTL_MS, TOKEN_PREFIX};
use crate::state::AppState;
use crate::storage::users::{self, User};
use crate::storage::{is_unique_violation, now_ms, rfc3339};
use crate::views::UserView;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

fn session_cookie(state: &AppState, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if state.config.http.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    ))
    .expect("cookie made of URL-safe base64 and fixed text")
}

/// Starts a session for `user` and answers with the user and the cookie.
async fn start_session(state: &AppState, user: &User, status: StatusCode) -> ApiResult<Response> {
    let secret = auth::random_secret();
    let now = now_ms();
    users::create_session(
        &state.db.pool,
        &auth::secret_hash(&secret),
        user.id,
        now,
        now + SESSION_TTL_MS,
    )
    .await?;
    let cookie = session_cookie(state, &secret, SESSION_TTL_MS / 1000);
    Ok((
        status,
        [(header::SET_COOKIE, cookie)],
        Json(json!({"user": UserView::from(user)})),
    )
        .into_response())
}

/// The client's address: the TCP peer, or behind a trusted proxy the address it appended last
/// to `X-Forwarded-For` (earlier entries are whatever the client claimed).
pub fn client_ip(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    if state.config.http.trust_proxy {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}

fn limited(wait: std::time::Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_s: wait.as_secs_f64().ceil() as u64,
    }
}

pub async fn signup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let (username, key) = auth::normalise_username(&body.username)?;
    auth::check_password(&body.password)?;
    let ip = client_ip(&state, &headers, peer);
    state.signup_by_ip.check(&ip).map_err(limited)?;
    let hash = auth::hash_password(body.password).await?;
    let user = match users::create(&state.db.pool, &username, &key, &hash, now_ms()).await {
        Ok(u) => u,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(
                "username_taken",
                "that username is taken".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %user.username, role = user.role.as_str(), "account created");
    start_session(&state, &user, StatusCode::CREATED).await
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let ip = client_ip(&state, &headers, peer);
    state.login_by_ip.check(&ip).map_err(limited)?;
    let bad = || {
        ApiError::Other(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password".into(),
        )
    };
    // Malformed usernames get the same answer as wrong ones: no hints about accounts.
    let Ok((_, key)) = auth::normalise_username(&body.username) else {
        return Err(bad());
    };
    state.login_by_account.check(&key).map_err(limited)?;
    let found = users::find_with_hash(&state.db.pool, &key).await?;
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let ok = auth::verify_password(body.password, hash).await?;
    match user {
        Some(user) if ok => start_session(&state, &user, StatusCode::OK).await,
        _ => Err(bad()),
    }
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(cookie) = auth::session_cookie(&headers) {
        users::delete_session(&state.db.pool, &auth::secret_hash(cookie)).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie(&state, "", 0))],
    )
        .into_response())
}

pub async fn me(CurrentUser(user): CurrentUser) -> Json<serde_json::Value> {
    Json(json!({"user": UserView::from(&user)}))
}

/// API tokens a user may hold at once.
const MAX_TOKENS: usize = 50;

#[derive(Deserialize)]
pub struct NewToken {
    name: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<Response> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::invalid(
            "invalid_name",
            "token name must be 1 to 64 characters",
        ));
    }
    if users::list_tokens(&state.db.pool, user.id).await?.len() >= MAX_TOKENS {
        return Err(ApiError::Conflict(
            "too_many_tokens",
            format!("at most {MAX_TOKENS} tokens; revoke one first"),
        ));
    }
    let token = format!("{TOKEN_PREFIX}{}", auth::random_secret());
    let id = users::create_token(
        &state.db.pool,
        user.id,
        name,
        &auth::secret_hash(&token),
        now_ms(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id.to_string(), "name": name, "token": token})),
    )
        .into_response())
}

pub async fn list_tokens(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<serde_json::Value>> {
    let tokens = users::list_tokens(&state.db.pool, user.id).await?;
    let tokens: Vec<_> = tokens
        .iter()
        .map(|t| json!({"id": t.id.to_string(), "name": t.name, "created_at": rfc3339(t.created_at)}))
        .collect();
    Ok(Json(json!({"tokens": tokens})))
}

pub async fn delete_token(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("token"))?;
    if users::delete_token(&state.db.pool, user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("token"))
    }
}
