//! Sign-up, log-in, log-out, the current user and API tokens over HTTP: per-address and
//! per-account limits and the cookies (session, device) here, the rest in `domain::accounts`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::extract::CurrentUser;
use crate::auth::{self, DEVICE_COOKIE, SESSION_COOKIE};
use crate::domain::accounts::{LoginSource, DEVICE_TRUST_MS};
use crate::limits::address_key;
use crate::metrics::Refusal;
use crate::state::AppState;
use crate::storage::rfc3339;
use crate::storage::users::User;
use crate::views::UserView;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

/// An HttpOnly, SameSite=Lax cookie (Secure behind https) for `path`. Lax, not Strict: a
/// provider sends the browser back to a sign-in with a cross-site navigation.
pub(super) fn cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age_s: i64,
) -> HeaderValue {
    let secure = if state.config.http.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    ))
    .expect("cookie made of URL-safe base64 and fixed text")
}

fn session_cookie(state: &AppState, value: &str, max_age_s: i64) -> HeaderValue {
    cookie(state, SESSION_COOKIE, value, "/", max_age_s)
}

fn device_cookie(state: &AppState, value: &str) -> HeaderValue {
    cookie(
        state,
        DEVICE_COOKIE,
        value,
        "/api/v1/auth",
        DEVICE_TRUST_MS / 1000,
    )
}

/// Where a log-in or sign-up comes from: the address as the limits count it, and the browser's
/// device cookie if it looks like one moim set.
pub(super) fn login_source(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> LoginSource {
    let address = address_key(client_ip(state, headers, peer)).to_string();
    let device = auth::cookie(headers, DEVICE_COOKIE)
        .filter(|v| (20..=64).contains(&v.len()))
        .map(str::to_string);
    LoginSource { address, device }
}

/// Starts a session for `user` and remembers where they signed in from: the cookies to set
/// (the session's, and a device cookie for a browser that had none).
pub(super) async fn session_cookies(
    state: &AppState,
    user: &User,
    source: &LoginSource,
) -> ApiResult<Vec<HeaderValue>> {
    let session = state.accounts.start_session(user).await?;
    let minted = state.accounts.remember_source(user, source).await?;
    let mut cookies = vec![session_cookie(state, &session.secret, session.max_age_s)];
    if let Some(device) = minted {
        cookies.push(device_cookie(state, &device));
    }
    Ok(cookies)
}

/// Starts a session for `user`, and answers with the user and the cookies.
pub(super) async fn start_session(
    state: &AppState,
    user: &User,
    source: &LoginSource,
    status: StatusCode,
) -> ApiResult<Response> {
    let cookies = session_cookies(state, user, source).await?;
    let mut resp = (status, Json(json!({"user": UserView::from(user)}))).into_response();
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
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

pub(super) fn limited(wait: std::time::Duration) -> ApiError {
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
    let names = state
        .accounts
        .check_signup(&body.username, &body.password)?;
    let ip = address_key(client_ip(&state, &headers, peer));
    state.signup_by_ip.check(&ip).map_err(|w| {
        state.metrics.refused(Refusal::LoginRateLimited);
        limited(w)
    })?;
    let user = state.accounts.signup(names, body.password).await?;
    let source = login_source(&state, &headers, peer);
    start_session(&state, &user, &source, StatusCode::CREATED).await
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let ip = address_key(client_ip(&state, &headers, peer));
    let throttled = |w| {
        state.metrics.refused(Refusal::LoginRateLimited);
        limited(w)
    };
    state.login_by_ip.check(&ip).map_err(throttled)?;
    let bad = || {
        ApiError::Other(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password".into(),
        )
    };
    // Malformed usernames get the same answer as wrong ones: no hints about accounts.
    let keys = auth::lookup_keys(&body.username);
    let Some(key) = keys.first().cloned() else {
        return Err(bad());
    };
    // Per account, only failures from sources that never signed in to it count, and only
    // they are held back: strangers guessing cannot lock the owner out of a browser or an
    // address they have used before (see docs/operations.md, "Limits and abuse").
    // The attempt's token is taken before the password is checked (so guesses sent at once
    // cannot all slip through while each is being hashed) and given back if it was right.
    let source = login_source(&state, &headers, peer);
    let trusted = state.accounts.is_trusted(&keys, &source).await?;
    if !trusted {
        state.login_by_account.check(&key).map_err(throttled)?;
    }
    match state.accounts.verify(&keys, body.password).await? {
        Some(user) => {
            if !trusted {
                state.login_by_account.refund(&key);
            }
            start_session(&state, &user, &source, StatusCode::OK).await
        }
        None => Err(bad()),
    }
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(cookie) = auth::session_cookie(&headers) {
        state.accounts.end_session(cookie).await?;
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

#[derive(Deserialize)]
pub struct NewToken {
    name: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<Response> {
    let t = state.accounts.create_token(&user, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": t.id.to_string(), "name": t.name, "token": t.token})),
    )
        .into_response())
}

pub async fn list_tokens(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<serde_json::Value>> {
    let tokens = state.accounts.tokens(&user).await?;
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
    state.accounts.delete_token(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
