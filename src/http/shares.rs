//! Share links over HTTP: the owner's API under `/api/v1/videos/{id}/shares`, the visitor's
//! `/api/v1/s/{code}` (and `/unlock` for a password), and the page `/s/{code}`.

use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::extract::CurrentUser;
use crate::domain::shares::{self, Grant, NewShare, Opened, COOKIE_PREFIX};
use crate::state::AppState;
use crate::storage::rfc3339;
use crate::storage::shares::Share;
use crate::views::VideoView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShareBody {
    slug: Option<String>,
    /// RFC 3339.
    expires_at: Option<String>,
    password: Option<String>,
    max_views: Option<i64>,
}

/// The address people open: the public URL when configured, else the host the request came to.
pub(super) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.http.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn share_view(s: &Share, base: &str) -> Value {
    json!({
        "code": s.code,
        "url": format!("{base}/s/{}", s.code),
        "expires_at": s.expires_at.map(rfc3339),
        "max_views": s.max_views,
        "views": s.views,
        "has_password": s.password_hash.is_some(),
        "state": shares::state_of(s, crate::storage::now_ms()),
        "last_view_at": s.last_view_at.map(rfc3339),
        "created_at": rfc3339(s.created_at),
    })
}

/// `POST /api/v1/videos/{id}/shares`.
pub async fn create_share(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewShareBody>,
) -> ApiResult<Response> {
    let video = state.videos.manageable(&user, &id).await?;
    let expires_at = match body.expires_at.as_deref() {
        None => None,
        Some(t) => Some(parse_time(t)?),
    };
    let new = NewShare {
        slug: body.slug,
        expires_at,
        password: body.password,
        max_views: body.max_views,
    };
    let share = state.shares.create(&user, &video, new).await?;
    let base = base_url(&state, &headers);
    Ok((
        StatusCode::CREATED,
        Json(json!({"share": share_view(&share, &base)})),
    )
        .into_response())
}

fn parse_time(t: &str) -> ApiResult<i64> {
    parse_time_field(t, "expires_at", "invalid_expiry")
}

/// An RFC 3339 time as unix ms; `field` and `code` say what was wrong.
pub(super) fn parse_time_field(t: &str, field: &str, code: &'static str) -> ApiResult<i64> {
    let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::invalid(
                code,
                format!("{field} must be an RFC 3339 time, e.g. 2026-12-24T18:00:00Z"),
            )
        })?;
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// `GET /api/v1/videos/{id}/shares`.
pub async fn list_shares(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let video = state.videos.manageable(&user, &id).await?;
    let list = state.shares.list(&user, &video).await?;
    let base = base_url(&state, &headers);
    let views: Vec<Value> = list.iter().map(|s| share_view(s, &base)).collect();
    Ok(Json(json!({"shares": views})))
}

/// `DELETE /api/v1/videos/{id}/shares/{code}`: revokes it.
pub async fn revoke_share(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((id, code)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let video = state.videos.manageable(&user, &id).await?;
    state.shares.revoke(&user, &video, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/videos/{id}/shares/{code}/qr.svg`: the link as a QR code.
pub async fn share_qr(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((id, code)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let video = state.videos.manageable(&user, &id).await?;
    let list = state.shares.list(&user, &video).await?;
    let share = list
        .iter()
        .find(|s| s.code == code.to_ascii_lowercase())
        .ok_or_else(|| ApiError::not_found("share"))?;
    let url = format!("{}/s/{}", base_url(&state, &headers), share.code);
    let qr = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("QR code: {e}")))?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        svg,
    )
        .into_response())
}

/// The grants the visitor's cookies carry.
pub fn grants(headers: &HeaderMap) -> Vec<Grant> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            let code = name.strip_prefix(COOKIE_PREFIX)?;
            Some(Grant {
                code: code.to_string(),
                value: value.to_string(),
            })
        })
        .take(32)
        .collect()
}

/// The visitor's answer: the link and its video, and the grant cookie when one was made.
fn opened(state: &AppState, o: Opened) -> Response {
    let body = json!({
        "share": {
            "code": o.share.code,
            "expires_at": o.share.expires_at.map(rfc3339),
        },
        "video": VideoView::from(&o.video),
    });
    let mut resp = Json(body).into_response();
    if let Some((value, until)) = o.grant {
        let secure = if state.config.http.secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{COOKIE_PREFIX}{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            o.share.code,
            shares::grant_max_age(until).as_secs()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /api/v1/s/{code}`: opens the link (counting a view unless the visitor already holds
/// its grant). 404 unknown, 410 expired / used up / revoked, 401 `password_required`.
pub async fn open_share(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let o = state.shares.open(&code, &grants(&headers)).await?;
    Ok(opened(&state, o))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unlock {
    password: String,
}

/// `POST /api/v1/s/{code}/unlock` `{"password"}`: opens a link that has a password.
pub async fn unlock_share(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<Unlock>,
) -> ApiResult<Response> {
    let o = state.shares.unlock(&code, &body.password).await?;
    Ok(opened(&state, o))
}

/// `GET /s/{code}`: the page (the UI's shell), with the status of the link: 200, 401 (it asks
/// for the password), 404 or 410. Nothing is counted until the page opens the link.
pub async fn share_page(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    Extension(pages): Extension<super::assets::Pages>,
    headers: HeaderMap,
) -> Response {
    let status = match state.shares.peek(&code, &grants(&headers)).await {
        Ok(()) => StatusCode::OK,
        // The same status the API would answer (404, 410, 401, or 500 with the cause logged).
        Err(e) => ApiError::from(e).into_response().status(),
    };
    let mut page = super::assets::page(&pages, &headers);
    if page.status() == StatusCode::OK {
        *page.status_mut() = status;
    }
    page
}
