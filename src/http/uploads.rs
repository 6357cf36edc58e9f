//! Resumable uploads over tus 1.0.0 (core, creation, termination, checksum) at
//! `/api/v1/uploads`: the protocol's headers here, the model in `domain::uploads`. The
//! [`mark_tus`] layer checks `Tus-Resumable` and puts it on every answer; errors are also JSON
//! like the rest of the API.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};

use super::error::{ApiError, ApiPath, ApiResult};
use super::extract::CurrentUser;
use crate::domain::uploads::{parse_metadata, Checksum, Refused};
use crate::state::AppState;

pub const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,termination,checksum";
const CHECKSUMS: &str = "sha1,sha256";

fn tus_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Other(status, code, message.into())
}

/// Every request but `OPTIONS` must say which tus it speaks (412 names the one we speak).
fn version_refusal(req: &Request) -> Option<Response> {
    if req.method() == axum::http::Method::OPTIONS {
        return None;
    }
    let headers = req.headers();
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => None,
        _ => {
            let mut resp = error(
                StatusCode::PRECONDITION_FAILED,
                "tus_version",
                format!("send `Tus-Resumable: {TUS_VERSION}`"),
            )
            .into_response();
            resp.headers_mut()
                .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
            Some(resp)
        }
    }
}

/// The protocol's frame around everything under `/api/v1/uploads`: the version check before
/// any route runs, and `Tus-Resumable` on every answer, including the ones other layers give
/// (401, 403, 404, 405).
pub async fn mark_tus(req: Request, next: axum::middleware::Next) -> Response {
    if !req.uri().path().starts_with("/api/v1/uploads") {
        return next.run(req).await;
    }
    let resp = match version_refusal(&req) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    };
    tus_headers(resp)
}

fn number(headers: &HeaderMap, name: &'static str) -> ApiResult<Option<i64>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|_| v.as_bytes().iter().all(u8::is_ascii_digit) && !v.is_empty())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid("invalid_header", format!("{name} must be a whole number"))
            }),
    }
}

/// `Upload-Metadata`, parsed (see `domain::uploads::parse_metadata`).
fn metadata(headers: &HeaderMap) -> ApiResult<Vec<(String, String)>> {
    let Some(raw) = headers.get("upload-metadata") else {
        return Ok(Vec::new());
    };
    let raw = raw.to_str().map_err(|_| bad_metadata())?;
    parse_metadata(raw).ok_or_else(bad_metadata)
}

fn bad_metadata() -> ApiError {
    ApiError::invalid(
        "invalid_metadata",
        "Upload-Metadata must be `key base64value` pairs separated by commas, values UTF-8",
    )
}

fn advertise(resp: &mut Response, state: &AppState) {
    let h = resp.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(EXTENSIONS));
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static(CHECKSUMS),
    );
    h.insert(
        "tus-max-size",
        HeaderValue::from(state.uploads.limits().max_bytes),
    );
}

/// `OPTIONS /api/v1/uploads[/{id}]`: what this server supports.
pub async fn options(State(state): State<AppState>) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    advertise(&mut resp, &state);
    resp
}

/// `POST /api/v1/uploads`: announces an upload (`Upload-Length`, `Upload-Metadata` with
/// `filename` and `title`).
pub async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
) -> Response {
    let made = async {
        if headers.contains_key("upload-defer-length") {
            return Err(ApiError::invalid(
                "invalid_header",
                "Upload-Defer-Length is not supported; send Upload-Length",
            ));
        }
        let length = number(&headers, "upload-length")?
            .ok_or_else(|| ApiError::invalid("invalid_header", "Upload-Length is required"))?;
        let meta = metadata(&headers)?;
        let find = |k: &str| {
            meta.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let upload = state
            .uploads
            .create(&user, length as u64, find("filename"), find("title"))
            .await?;
        let location = format!("/api/v1/uploads/{}", upload.id);
        Ok::<_, ApiError>(
            (
                StatusCode::CREATED,
                [
                    (header::LOCATION, location),
                    (HeaderName::from_static("upload-offset"), "0".to_string()),
                ],
            )
                .into_response(),
        )
    }
    .await;
    let mut resp = made.unwrap_or_else(IntoResponse::into_response);
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        advertise(&mut resp, &state);
    }
    resp
}

/// `HEAD /api/v1/uploads/{id}`: where the upload stands.
pub async fn head(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let u = state.uploads.get(&user, &id).await?;
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert("upload-offset", HeaderValue::from(u.received));
    h.insert("upload-length", HeaderValue::from(u.length));
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let meta = format!("filename {},title {}", b64(&u.filename), b64(&u.title));
    if let Ok(v) = HeaderValue::from_str(&meta) {
        h.insert("upload-metadata", v);
    }
    if u.completed_at.is_some() {
        add_video_id(&state, &user, &id, &mut resp).await?;
    }
    Ok(resp)
}

/// `Moim-Video-Id`: the video a finished upload became.
async fn add_video_id(
    state: &AppState,
    user: &crate::storage::users::User,
    upload_id: &str,
    resp: &mut Response,
) -> ApiResult<()> {
    if let Some(v) = state.videos.of_upload(user, upload_id).await? {
        if let Ok(value) = HeaderValue::from_str(&v.public_id) {
            resp.headers_mut().insert("moim-video-id", value);
        }
    }
    Ok(())
}

/// `PATCH /api/v1/uploads/{id}`: the next piece, at `Upload-Offset`.
pub async fn patch(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> ApiResult<Response> {
    let headers = req.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/offset+octet-stream" {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send pieces as `Content-Type: application/offset+octet-stream`",
        ));
    }
    let offset = number(headers, "upload-offset")?
        .ok_or_else(|| ApiError::invalid("invalid_header", "Upload-Offset is required"))?;
    let checksum = match headers.get("upload-checksum") {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(Checksum::parse).ok_or_else(|| {
            ApiError::invalid(
                "invalid_checksum",
                "Upload-Checksum must be `sha256 <base64>` or `sha1 <base64>`",
            )
        })?),
    };
    let body = Body::into_data_stream(req.into_body())
        .map_err(std::io::Error::other)
        .boxed();
    match state
        .uploads
        .append(&user, &id, offset, body, checksum)
        .await?
    {
        Ok(now) => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            resp.headers_mut()
                .insert("upload-offset", HeaderValue::from(now));
            add_video_id(&state, &user, &id, &mut resp).await?;
            Ok(resp)
        }
        Err(Refused::Offset { expected }) => Err(error(
            StatusCode::CONFLICT,
            "offset_mismatch",
            format!("the upload stands at byte {expected}; send that offset"),
        )),
        Err(Refused::Busy) => Err(error(
            StatusCode::LOCKED,
            "upload_busy",
            "another piece of this upload is arriving; try again when it is done",
        )),
        Err(Refused::Checksum) => Err(error(
            StatusCode::from_u16(460).expect("460 is a valid status"),
            "checksum_mismatch",
            "the piece does not match its Upload-Checksum; it was not kept",
        )),
        Err(Refused::TooLong) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the piece runs past the upload's length",
        )),
        Err(Refused::Complete) => Err(error(
            StatusCode::CONFLICT,
            "upload_complete",
            "the upload is already complete",
        )),
    }
}

/// `DELETE /api/v1/uploads/{id}`: abandons the upload (tus termination).
pub async fn terminate(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.uploads.terminate(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
