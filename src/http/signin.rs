//! Sign-in through outside providers over HTTP: the list of providers, `/auth/{id}/start` and
//! `/auth/{id}/callback` (the browser's round trip through the provider), the username step
//! for a new account, and connecting, listing and disconnecting providers from settings.
//!
//! The flow keeps nothing in the process: what the callback must match (`state`, `nonce`, the
//! PKCE verifier, where to go next) rides in a short-lived, signed, HttpOnly cookie, and each
//! `state` that comes back is recorded in the database, so any node can finish a sign-in any
//! node started and none can be finished twice.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{limited, login_source, session_cookies};
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::extract::{CurrentUser, MaybeUser};
use crate::auth;
use crate::metrics::Refusal;
use crate::signin::SigninError;
use crate::state::AppState;
use crate::storage::{now_ms, rfc3339};
use crate::views::UserView;

/// The cookie that carries a sign-in under way (to `/auth/…` only).
const FLOW_COOKIE: &str = "moim_signin";
/// How long a sign-in may take at the provider.
const FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// The cookie that carries an identity waiting for its username.
const PENDING_COOKIE: &str = "moim_pending";
const PENDING_PATH: &str = "/api/v1/auth/oidc";
const PENDING_TTL_MS: i64 = 15 * 60 * 1000;
/// How long a "connect a provider" link works.
const LINK_TTL_MS: i64 = 5 * 60 * 1000;

/// A sign-in under way, as its cookie holds it.
#[derive(Serialize, Deserialize)]
struct Flow {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    /// Connecting to this signed-in account rather than signing in.
    link: Option<i64>,
}

/// An identity the provider vouched for, waiting for its username.
#[derive(Serialize, Deserialize)]
struct Pending {
    provider: String,
    subject: String,
    email: Option<String>,
    suggested: String,
    next: String,
}

/// A ticket to connect a provider to the account `user`.
#[derive(Serialize, Deserialize)]
struct LinkTicket {
    user: i64,
    provider: String,
}

/// [`super::auth::cookie`] with a lifetime in milliseconds, as the flow's constants are.
fn cookie(state: &AppState, name: &str, value: &str, path: &str, max_age_ms: i64) -> HeaderValue {
    super::auth::cookie(state, name, value, path, max_age_ms / 1000)
}

/// Where a provider sends the browser back to: `{public_url}/auth/{id}/callback`.
pub fn redirect_url(state: &AppState, headers: &HeaderMap, id: &str) -> String {
    format!(
        "{}/auth/{id}/callback",
        super::shares::base_url(state, headers)
    )
}

/// A path on this site to go to afterwards; anything else (another site, `//host`, a
/// backslash) becomes `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 512
                && !n.chars().any(|c| c == '\\' || c.is_control()) =>
        {
            n.to_string()
        }
        _ => "/".into(),
    }
}

fn see_other(to: &str) -> Response {
    let to = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// `GET /api/v1/auth/providers`.
pub async fn providers(State(state): State<AppState>) -> Json<serde_json::Value> {
    let list: Vec<_> = state
        .signin
        .all()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.display_name,
                "kind": p.kind.as_str(),
                "start_url": format!("/auth/{}/start", p.id),
            })
        })
        .collect();
    Json(json!({ "providers": list }))
}

/// `GET /api/v1/admin/sign-in-providers`: what an operator registers with each provider.
pub async fn admin_providers(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    crate::domain::policy::require_site(
        Some(&user),
        crate::domain::policy::SiteAction::Administer,
    )?;
    let list: Vec<_> = state
        .signin
        .all()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.display_name,
                "kind": p.kind.as_str(),
                "issuer": p.issuer,
                "client_id": p.client_id,
                "trust_email": p.trust_email,
                "redirect_url": redirect_url(&state, &headers, &p.id),
            })
        })
        .collect();
    Ok(Json(json!({ "providers": list })))
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
    link: Option<String>,
}

/// `GET /auth/{id}/start`: off to the provider.
pub async fn start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(id): ApiPath<String>,
    Query(q): Query<StartQuery>,
    MaybeUser(me): MaybeUser,
    headers: HeaderMap,
) -> Response {
    let page = Page::new(&state, &headers, &id);
    let Some(provider) = state.signin.get(&id) else {
        return page.show(Problem::UnknownProvider);
    };
    // Each start may cost a request to the provider later: counted as a log-in attempt.
    let ip = crate::limits::address_key(super::auth::client_ip(&state, &headers, peer));
    if state.login_by_ip.check(&ip).is_err() {
        state.metrics.refused(Refusal::LoginRateLimited);
        return page.show(Problem::TooMany);
    }
    let mut next = safe_next(q.next.as_deref());
    let link = match q.link.as_deref() {
        None => None,
        Some(ticket) => {
            let ticket: Option<LinkTicket> = state.sealer.open("link", ticket, now_ms());
            match (ticket, &me) {
                (Some(t), Some(me)) if t.user == me.id && t.provider == id => {
                    if q.next.is_none() {
                        next = "/settings".into();
                    }
                    Some(me.id)
                }
                _ => return page.show(Problem::LinkNeedsSession),
            }
        }
    };
    let authorize = match state
        .signin
        .authorize(provider, &redirect_url(&state, &headers, &id))
        .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(provider = %id, error = %e, "sign-in could not start");
            return page.show(Problem::Failed);
        }
    };
    let flow = Flow {
        provider: id,
        state: authorize.state,
        nonce: authorize.nonce,
        verifier: authorize.pkce_verifier,
        next,
        link,
    };
    let sealed = state.sealer.seal("flow", &flow, now_ms() + FLOW_TTL_MS);
    let mut resp = see_other(&authorize.url);
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookie(&state, FLOW_COOKIE, &sealed, "/auth", FLOW_TTL_MS),
    );
    resp
}

/// What the provider sent back in the callback's query. Parsed by hand, the first of each
/// parameter kept, so that no query, however odd, misses the page that explains.
#[derive(Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackQuery {
    fn parse(raw: Option<&str>) -> CallbackQuery {
        let mut q = CallbackQuery::default();
        for (k, v) in openidconnect::url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let slot = match k.as_ref() {
                "code" => &mut q.code,
                "state" => &mut q.state,
                "error" => &mut q.error,
                "error_description" => &mut q.error_description,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.chars().take(2048).collect());
            }
        }
        q
    }
}

/// `GET /auth/{id}/callback`: back from the provider.
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
    MaybeUser(me): MaybeUser,
    headers: HeaderMap,
) -> Response {
    let q = CallbackQuery::parse(raw.as_deref());
    let flow: Option<Flow> = auth::cookie(&headers, FLOW_COOKIE)
        .and_then(|c| state.sealer.open("flow", c, now_ms()))
        .filter(|f: &Flow| f.provider == id);
    let mut page = Page::new(&state, &headers, &id);
    page.connecting = flow.as_ref().is_some_and(|f| f.link.is_some());
    // The flow's cookie is spent once an answer for it came (its state matched); an answer
    // that belongs to no flow of this browser leaves a sign-in under way alone.
    let spent = flow
        .as_ref()
        .is_some_and(|f| same_state(q.state.as_deref(), &f.state));
    let result = match flow {
        Some(flow) => finish(&state, peer, &id, q, flow, me, &headers).await,
        None => Err(Problem::Expired),
    };
    let mut resp = match result {
        Ok(resp) => resp,
        Err(problem) => {
            state.metrics.refused(Refusal::SigninFailed);
            page.show(problem)
        }
    };
    if spent {
        resp.headers_mut().append(
            header::SET_COOKIE,
            cookie(&state, FLOW_COOKIE, "", "/auth", 0),
        );
    }
    resp
}

/// The state that came back is the flow's (compared in constant time).
fn same_state(given: Option<&str>, expected: &str) -> bool {
    let given = given.unwrap_or("");
    !given.is_empty()
        && given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn finish(
    state: &AppState,
    peer: SocketAddr,
    id: &str,
    q: CallbackQuery,
    flow: Flow,
    me: Option<crate::storage::users::User>,
    headers: &HeaderMap,
) -> Result<Response, Problem> {
    let Some(provider) = state.signin.get(id) else {
        return Err(Problem::UnknownProvider);
    };
    let now = now_ms();
    if !same_state(q.state.as_deref(), &flow.state) {
        return Err(Problem::WrongState);
    }
    if let Some(error) = q.error.as_deref() {
        tracing::info!(provider = %id, error, description = q.error_description.as_deref().unwrap_or(""), "provider sent the browser back with an error");
        return Err(match error {
            "access_denied" => Problem::Cancelled,
            "server_error" | "temporarily_unavailable" => Problem::Failed,
            _ => Problem::Refused,
        });
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or(Problem::WrongState)?;
    let first = crate::storage::identities::use_state(
        &state.db.pool,
        &auth::secret_hash(&flow.state),
        now + FLOW_TTL_MS,
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "recording a sign-in's state failed");
        Problem::Internal
    })?;
    if !first {
        return Err(Problem::Used);
    }
    let who = state
        .signin
        .finish(
            provider,
            &redirect_url(state, headers, id),
            code,
            &flow.verifier,
            &flow.nonce,
            &flow.state,
        )
        .await
        .map_err(|e| {
            tracing::warn!(provider = %id, error = %e, "sign-in failed at the provider");
            match e {
                SigninError::Refused { .. } => Problem::Refused,
                SigninError::Failed(_) => Problem::Failed,
            }
        })?;
    let internal = |e: crate::domain::Error| {
        tracing::error!(error = %e, "finishing a sign-in failed");
        Problem::Internal
    };
    if let Some(link) = flow.link {
        let me = me
            .filter(|m| m.id == link)
            .ok_or(Problem::LinkNeedsSession)?;
        return match state
            .accounts
            .connect(&me, id, &who.subject, who.verified_email.as_deref())
            .await
        {
            Ok(()) => {
                tracing::info!(user = %me.username, provider = %id, "provider connected");
                Ok(see_other(&flow.next))
            }
            Err(crate::domain::Error::Conflict {
                code: "identity_taken",
                ..
            }) => Err(Problem::Taken),
            Err(crate::domain::Error::Conflict { .. }) => Err(Problem::AlreadyConnected),
            Err(e) => Err(internal(e)),
        };
    }
    let trusting: Vec<String> = state
        .signin
        .all()
        .filter(|p| p.trust_email)
        .map(|p| p.id.clone())
        .collect();
    let user = state
        .accounts
        .sign_in_with(id, &who.subject, who.verified_email.as_deref(), &trusting)
        .await
        .map_err(internal)?;
    if let Some(user) = user {
        let source = login_source(state, headers, peer);
        let cookies = session_cookies(state, &user, &source).await.map_err(|e| {
            tracing::error!(error = ?e, "starting a session failed");
            Problem::Internal
        })?;
        tracing::info!(user = %user.username, provider = %id, "signed in through a provider");
        let mut resp = see_other(&flow.next);
        for c in cookies {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        return Ok(resp);
    }
    let suggested =
        crate::domain::accounts::suggest_username(&state.accounts, who.nickname.as_deref())
            .await
            .map_err(internal)?;
    let pending = Pending {
        provider: id.to_string(),
        subject: who.subject,
        email: who.verified_email,
        suggested,
        next: flow.next,
    };
    let sealed = state.sealer.seal("pending", &pending, now + PENDING_TTL_MS);
    let mut resp = see_other("/welcome");
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookie(state, PENDING_COOKIE, &sealed, PENDING_PATH, PENDING_TTL_MS),
    );
    Ok(resp)
}

fn pending_of(state: &AppState, headers: &HeaderMap) -> ApiResult<Pending> {
    auth::cookie(headers, PENDING_COOKIE)
        .and_then(|c| state.sealer.open("pending", c, now_ms()))
        .ok_or_else(|| {
            ApiError::Other(
                StatusCode::NOT_FOUND,
                "no_pending_signin",
                "no sign-in is waiting for a username here (it may have expired): start again"
                    .into(),
            )
        })
}

/// `GET /api/v1/auth/oidc/pending`: the provider and the suggested username for the step.
pub async fn pending(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let p = pending_of(&state, &headers)?;
    let name = state
        .signin
        .get(&p.provider)
        .map(|c| c.config.display_name.clone())
        .unwrap_or_else(|| p.provider.clone());
    Ok(Json(json!({
        "provider": {"id": p.provider, "name": name},
        "suggested_username": p.suggested,
        "next": p.next,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    username: String,
}

/// `POST /api/v1/auth/oidc/complete`: the account, with the chosen username.
pub async fn complete(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Complete>,
) -> ApiResult<Response> {
    let p = pending_of(&state, &headers)?;
    let name = auth::check_new_username(&body.username).map_err(crate::domain::Error::from)?;
    let ip = crate::limits::address_key(super::auth::client_ip(&state, &headers, peer));
    state.signup_by_ip.check(&ip).map_err(|w| {
        state.metrics.refused(Refusal::LoginRateLimited);
        limited(w)
    })?;
    let user = state
        .accounts
        .signup_with_identity(name, &p.provider, &p.subject, p.email.as_deref())
        .await?;
    let source = login_source(&state, &headers, peer);
    let cookies = session_cookies(&state, &user, &source).await?;
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({"user": UserView::from(&user), "next": p.next})),
    )
        .into_response();
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookie(&state, PENDING_COOKIE, "", PENDING_PATH, 0),
    );
    Ok(resp)
}

/// `GET /api/v1/me/identities`.
pub async fn list_identities(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<serde_json::Value>> {
    let (list, has_password) = state.accounts.identities(&user).await?;
    let identities: Vec<_> = list
        .iter()
        .map(|i| {
            json!({
                "provider": i.provider,
                "name": state.signin.get(&i.provider).map(|p| p.config.display_name.clone()),
                "linked_at": rfc3339(i.linked_at),
            })
        })
        .collect();
    Ok(Json(
        json!({ "identities": identities, "has_password": has_password }),
    ))
}

/// `POST /api/v1/me/identities/{id}`: where to send the browser to connect a provider.
pub async fn connect_identity(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if state.signin.get(&id).is_none() {
        return Err(ApiError::not_found("sign-in provider"));
    }
    let ticket = LinkTicket {
        user: user.id,
        provider: id.clone(),
    };
    let sealed = state.sealer.seal("link", &ticket, now_ms() + LINK_TTL_MS);
    Ok(Json(json!({
        "start_url": format!("/auth/{id}/start?link={sealed}"),
    })))
}

/// `DELETE /api/v1/me/identities/{id}`.
pub async fn disconnect_identity(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let offered: Vec<String> = state.signin.all().map(|p| p.id.clone()).collect();
    state.accounts.disconnect(&user, &id, &offered).await?;
    tracing::info!(user = %user.username, provider = %id, "provider disconnected");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
    current_password: Option<String>,
}

/// `PUT /api/v1/me/password`: set a password (an account that has one gives it too), from a
/// browser session only: an API token cannot change how its owner signs in.
pub async fn set_password(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<StatusCode> {
    let session = match auth::session_cookie(&headers) {
        Some(s) if !headers.contains_key(header::AUTHORIZATION) => s,
        _ => {
            return Err(ApiError::from(crate::domain::Error::Forbidden(
                "a password is set from a signed-in browser, not with an API token".into(),
            )))
        }
    };
    // Guesses at the current password count as log-in attempts on the account.
    let key = auth::lookup_keys(&user.username)
        .into_iter()
        .next()
        .unwrap_or_default();
    let checks_current = body.current_password.is_some();
    if checks_current {
        state.login_by_account.check(&key).map_err(|w| {
            state.metrics.refused(Refusal::LoginRateLimited);
            limited(w)
        })?;
    }
    state
        .accounts
        .set_password(&user, session, body.current_password, body.password)
        .await?;
    if checks_current {
        state.login_by_account.refund(&key);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What went wrong, as the person is told.
#[derive(Debug, Clone, Copy)]
enum Problem {
    UnknownProvider,
    Expired,
    Cancelled,
    Refused,
    WrongState,
    Used,
    Failed,
    Taken,
    AlreadyConnected,
    LinkNeedsSession,
    TooMany,
    Internal,
}

impl Problem {
    fn status(self) -> StatusCode {
        match self {
            Problem::UnknownProvider => StatusCode::NOT_FOUND,
            Problem::Failed => StatusCode::BAD_GATEWAY,
            Problem::Taken | Problem::AlreadyConnected => StatusCode::CONFLICT,
            Problem::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Problem::TooMany => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Problem::UnknownProvider => "unknown_provider",
            Problem::Expired => "signin_expired",
            Problem::Cancelled => "signin_cancelled",
            Problem::Refused => "provider_refused",
            Problem::WrongState => "wrong_state",
            Problem::Used => "state_used",
            Problem::Failed => "provider_failed",
            Problem::Taken => "identity_taken",
            Problem::AlreadyConnected => "provider_connected",
            Problem::LinkNeedsSession => "sign_in_first",
            Problem::Internal => "internal",
            Problem::TooMany => "rate_limited",
        }
    }

    /// The explanation, in English and Korean; `{p}` is the provider's name.
    fn text(self, korean: bool) -> &'static str {
        match (self, korean) {
            (Problem::UnknownProvider, false) => "This server has no sign-in provider by that name.",
            (Problem::UnknownProvider, true) => "이 서버에는 그런 이름의 로그인 방법이 없습니다.",
            (Problem::Expired, false) => "This sign-in took too long or was started in another browser. Please start again.",
            (Problem::Expired, true) => "로그인 시간이 너무 오래 걸렸거나 다른 브라우저에서 시작되었습니다. 다시 시도해 주세요.",
            (Problem::Cancelled, false) => "Signing in with {p} was cancelled. Nothing was changed.",
            (Problem::Cancelled, true) => "{p}(으)로 로그인을 취소했습니다. 아무것도 바뀌지 않았습니다.",
            (Problem::Refused, false) => "{p} refused the sign-in (the answer may have been used already, or the server's registration with {p} is wrong). Please try again; if it keeps happening, tell the operator.",
            (Problem::Refused, true) => "{p}에서 로그인을 거절했습니다 (이미 사용된 응답이거나 서버의 {p} 등록 설정이 잘못되었을 수 있습니다). 다시 시도하고, 계속되면 운영자에게 알려 주세요.",
            (Problem::WrongState, false) => "This answer from {p} does not belong to the sign-in this browser started. Please start again.",
            (Problem::WrongState, true) => "{p}의 이 응답은 이 브라우저에서 시작한 로그인의 것이 아닙니다. 다시 시도해 주세요.",
            (Problem::Used, false) => "This sign-in answer was used already. Please start again.",
            (Problem::Used, true) => "이미 사용된 로그인 응답입니다. 다시 시도해 주세요.",
            (Problem::Failed, false) => "{p} could not be reached, or sent an answer that failed moim's checks. Please try again later; if it keeps happening, tell the operator.",
            (Problem::Failed, true) => "{p}에 연결할 수 없거나, {p}의 응답이 moim의 확인을 통과하지 못했습니다. 나중에 다시 시도하고, 계속되면 운영자에게 알려 주세요.",
            (Problem::Taken, false) => "That {p} account is already connected to another moim account.",
            (Problem::Taken, true) => "그 {p} 계정은 이미 다른 moim 계정에 연결되어 있습니다.",
            (Problem::AlreadyConnected, false) => "Your account is connected to another {p} account. Disconnect it in settings first.",
            (Problem::AlreadyConnected, true) => "내 계정에 이미 다른 {p} 계정이 연결되어 있습니다. 먼저 설정에서 연결을 끊어 주세요.",
            (Problem::LinkNeedsSession, false) => "To connect {p}, sign in to your moim account first and start from settings.",
            (Problem::LinkNeedsSession, true) => "{p}을(를) 연결하려면 먼저 moim 계정으로 로그인한 뒤 설정에서 시작해 주세요.",
            (Problem::TooMany, false) => "Too many sign-ins from your address just now. Please wait a minute and try again.",
            (Problem::TooMany, true) => "이 주소에서 방금 로그인 시도가 너무 많았습니다. 1분쯤 기다린 뒤 다시 시도해 주세요.",
            (Problem::Internal, false) => "Something went wrong on this server. Please try again.",
            (Problem::Internal, true) => "서버에서 문제가 생겼습니다. 다시 시도해 주세요.",
        }
    }
}

/// The page that tells a person why signing in did not work, with a way back.
struct Page {
    korean: bool,
    /// The flow was connecting a provider to a signed-in account: the way back is settings.
    connecting: bool,
    provider_id: String,
    provider_name: String,
}

impl Page {
    fn new(state: &AppState, headers: &HeaderMap, id: &str) -> Page {
        let korean = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|first| first.trim().to_ascii_lowercase().starts_with("ko"));
        let provider_name = state
            .signin
            .get(id)
            .map(|p| p.config.display_name.clone())
            .unwrap_or_else(|| "the provider".into());
        Page {
            korean,
            connecting: false,
            provider_id: id.to_string(),
            provider_name,
        }
    }

    fn show(&self, problem: Problem) -> Response {
        let (title, back, again) = match (self.korean, self.connecting) {
            (true, false) => ("로그인하지 못했습니다", "로그인 화면으로", "다시 시도"),
            (false, false) => ("Signing in did not work", "Back to log in", "Try again"),
            (true, true) => ("연결하지 못했습니다", "설정으로", ""),
            (false, true) => ("Connecting did not work", "Back to settings", ""),
        };
        let back_to = if self.connecting {
            "/settings"
        } else {
            "/#login"
        };
        let message =
            escape(problem.text(self.korean)).replace("{p}", &escape(&self.provider_name));
        let retry = match problem {
            // Connecting starts again from settings (a plain start would sign in instead).
            _ if self.connecting => String::new(),
            Problem::UnknownProvider | Problem::Taken | Problem::AlreadyConnected => String::new(),
            Problem::LinkNeedsSession => String::new(),
            _ => format!(
                r#" <a class="button" href="/auth/{}/start">{again}</a>"#,
                escape(&self.provider_id)
            ),
        };
        let html = format!(
            r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · moim</title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<main class="signin-problem card" data-problem="{code}">
<h1>{title}</h1>
<p>{message}</p>
<p><a href="{back_to}">{back}</a>{retry}</p>
</main>
</body>
</html>
"#,
            lang = if self.korean { "ko" } else { "en" },
            code = problem.code(),
        );
        (
            problem.status(),
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'",
                    ),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
            ],
            html,
        )
            .into_response()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/r/room?x=1")), "/r/room?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
