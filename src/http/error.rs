//! The one error type at the HTTP edge: every failure becomes
//! `{"error":"snake_code","message":"…"}` with the right status. 5xx causes are logged, never sent.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("login required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("too many requests")]
    RateLimited { retry_after_s: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: a bounded resource is saturated.
    #[error("{message}")]
    Busy { message: String, retry_after_s: u64 },
    #[error("{2}")]
    Other(StatusCode, &'static str, String),
    /// 422 with what is wrong with each field.
    #[error("{0}")]
    Unprocessable(String, Vec<(&'static str, String)>),
    /// 408, and the connection closes: the body did not arrive in time.
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest(code, message.into())
    }
    pub fn not_found(what: &str) -> ApiError {
        ApiError::NotFound(format!("{what} not found"))
    }
    pub fn forbidden() -> ApiError {
        ApiError::Forbidden("you are not allowed to do that".into())
    }
}

impl From<crate::domain::Error> for ApiError {
    fn from(e: crate::domain::Error) -> Self {
        use crate::domain::Error as E;
        match e {
            E::Invalid { code, message } => ApiError::BadRequest(code, message),
            E::Unauthorized => ApiError::Unauthorized,
            E::Forbidden(m) => ApiError::Forbidden(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict { code, message } => ApiError::Conflict(code, message),
            E::TooLarge(m) => ApiError::Other(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            E::Oversized { code, message } => {
                ApiError::Other(StatusCode::PAYLOAD_TOO_LARGE, code, message)
            }
            E::Unsupported { code, message } => {
                ApiError::Other(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, message)
            }
            E::Unprocessable { message, fields } => ApiError::Unprocessable(message, fields),
            E::QuotaExceeded(m) => ApiError::Other(StatusCode::FORBIDDEN, "quota_exceeded", m),
            E::Gone { code, message } => ApiError::Other(StatusCode::GONE, code, message),
            E::PasswordRequired { code, message } => {
                ApiError::Other(StatusCode::UNAUTHORIZED, code, message)
            }
            E::Busy {
                message,
                retry_after_s,
            } => ApiError::Busy {
                message,
                retry_after_s,
            },
            E::RateLimited { retry_after_s } => ApiError::RateLimited { retry_after_s },
            E::Disabled { code, message } => ApiError::Other(StatusCode::NOT_FOUND, code, message),
            E::Upstream { code, message } => {
                ApiError::Other(StatusCode::BAD_GATEWAY, code, message)
            }
            E::Db(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    /// The same mapping as the domain's (`domain::accounts`), so the two cannot drift.
    fn from(e: crate::auth::AuthError) -> Self {
        crate::domain::Error::from(e).into()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest(code, _) => (StatusCode::BAD_REQUEST, *code),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "login_required"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(code, _) => (StatusCode::CONFLICT, *code),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Other(status, code, _) => (*status, *code),
            ApiError::Unprocessable(..) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields"),
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let message = match &self {
            ApiError::Internal(_) => "internal server error".to_string(),
            other => other.to_string(),
        };
        let mut body = json!({"error": code, "message": message});
        if let ApiError::Unprocessable(_, fields) = &self {
            let map: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.clone())))
                .collect();
            body["fields"] = serde_json::Value::Object(map);
        }
        let mut resp = (status, Json(body)).into_response();
        if let ApiError::BodyTimeout(_) = self {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let ApiError::RateLimited { retry_after_s } | ApiError::Busy { retry_after_s, .. } = self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s.max(1)));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if let Some(late) = find_cause::<super::serve::BodyTimedOut>(&r) {
            return ApiError::BodyTimeout(late.0.as_secs());
        }
        let status = r.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "invalid_json",
        };
        ApiError::Other(status, code, r.body_text())
    }
}

/// The first error of type `T` in `e`'s chain of causes.
fn find_cause<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::invalid("invalid_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::invalid("invalid_query", r.body_text())
    }
}

/// True when the JSON text escapes a NUL: `\u0000` after an odd run of backslashes (an even
/// run is escaped backslashes followed by the plain text `u0000`).
fn has_escaped_nul(json: &[u8]) -> bool {
    json.windows(5).enumerate().any(|(i, w)| {
        w == b"u0000" && json[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
    })
}

/// `Json` whose rejections are [`ApiError`]s, and which refuses NUL characters (`\u0000`) in
/// any string: no field of moim means to hold one, and PostgreSQL cannot store them.
pub struct ApiJson<T>(pub T);

impl<T> FromRequest<crate::state::AppState> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &crate::state::AppState,
    ) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(|r| ApiError::from(JsonRejection::from(r)))?;
        parse_json(state, &headers, &bytes).map(ApiJson)
    }
}

/// A JSON body as [`ApiJson`] reads one, for a handler that takes more than one kind of body.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    state: &crate::state::AppState,
    headers: &axum::http::HeaderMap,
    bytes: &bytes::Bytes,
) -> Result<T, ApiError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false);
    if !json_type {
        return Err(ApiError::Other(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a body with `Content-Type: application/json`".into(),
        ));
    }
    if has_escaped_nul(bytes) {
        state.metrics.refused(crate::metrics::Refusal::NulCharacter);
        return Err(ApiError::invalid(
            "invalid_json",
            "text may not contain NUL characters (\\u0000)",
        ));
    }
    let axum::Json(value) = axum::Json::<T>::from_bytes(bytes)?;
    Ok(value)
}

/// `Path` whose rejections are [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query` whose rejections are [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

#[cfg(test)]
mod tests {
    #[test]
    fn escaped_nul_is_told_from_an_escaped_backslash() {
        use super::has_escaped_nul;
        assert!(has_escaped_nul(br#"{"a":"x\u0000y"}"#));
        assert!(has_escaped_nul(br#"{"a":"\\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a":"\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a":"u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a":"\u0001"}"#));
    }
}
