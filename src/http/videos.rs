//! Videos over HTTP: the caller's list, one video, and a ready video's HLS files.

use std::ops::Range;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, ApiPath, ApiResult};
use super::extract::{CurrentUser, MaybeUser};
use super::media::{parse_file, File, PLAYLIST};
use crate::live::recorder::video_key;
use crate::state::AppState;
use crate::storage::blobs::BlobError;
use crate::views::VideoView;

/// `GET /api/v1/videos`: the caller's own videos, newest first.
pub async fn list_videos(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Value>> {
    let list = state.videos.list_own(&user).await?;
    let views: Vec<VideoView> = list.iter().map(VideoView::from).collect();
    Ok(Json(json!({"videos": views})))
}

/// `GET /api/v1/videos/{id}`.
pub async fn get_video(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let v = state.videos.watchable(user.as_ref(), &id).await?;
    Ok(Json(json!({"video": VideoView::from(&v)})))
}

/// What a `Range` header asks of a blob of `size` bytes: `Ok(None)` for all of it (no header, or
/// one we do not serve ranges for, such as several ranges), `Err` when it cannot be satisfied.
fn wanted_range(headers: &HeaderMap, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    // A header we cannot read is ignored (the whole blob is sent), as HTTP allows.
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    let range = match (num(a), num(b)) {
        (Some(first), Some(last)) if first <= last => first..last.saturating_add(1).min(size),
        (Some(first), None) if b.is_empty() => first..size,
        (None, Some(0)) if a.is_empty() => return Err(()),
        (None, Some(n)) if a.is_empty() => size.saturating_sub(n)..size,
        _ => return Ok(None),
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

/// `GET /videos/{id}/{file}`: a ready video's playlist, init segments, segments and thumbnail,
/// with single byte ranges.
pub async fn video_file(
    State(state): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let v = state.videos.watchable(None, &id).await?;
    let file = parse_file(&name).ok_or_else(|| ApiError::not_found("file"))?;
    let (content_type, cache) = match file {
        File::Playlist => (PLAYLIST, "public, max-age=60"),
        File::Init(_) => ("video/mp4", "public, max-age=86400"),
        File::Segment(_) => ("video/iso.segment", "public, max-age=86400"),
        File::Thumbnail => ("image/jpeg", "public, max-age=3600"),
        File::Part(..) => return Err(ApiError::not_found("file")),
    };
    // `name` passed `parse_file`, so it is one of a few fixed shapes: a valid key.
    let key = video_key(&v.public_id, &name);
    let blob_error = |e: BlobError| match e {
        BlobError::NotFound => ApiError::not_found("file"),
        e => ApiError::Internal(anyhow::Error::new(e).context("reading a video file")),
    };
    // The size first (a zero-length read), then the body for the range asked.
    let size = state
        .blobs
        .get(&key, Some(0..0))
        .await
        .map_err(blob_error)?
        .size;
    let Ok(range) = wanted_range(&headers, size) else {
        return Ok((
            StatusCode::RANGE_NOT_SATISFIABLE,
            [
                (header::CONTENT_RANGE, format!("bytes */{size}")),
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_string()),
            ],
        )
            .into_response());
    };
    let partial = range.is_some();
    let blob = state.blobs.get(&key, range).await.map_err(blob_error)?;
    let mut resp = Response::new(Body::from_stream(blob.body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(blob.range.end - blob.range.start),
    );
    if partial {
        let r = &blob.range;
        let value = format!("bytes {}-{}/{}", r.start, r.end - 1, blob.size);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&value).expect("digits and punctuation"),
        );
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> Result<Option<Range<u64>>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        wanted_range(&h, size)
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(wanted_range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(range("bytes=0-3", 10), Ok(Some(0..4)));
        assert_eq!(range("bytes=5-", 10), Ok(Some(5..10)));
        assert_eq!(range("bytes=-3", 10), Ok(Some(7..10)));
        assert_eq!(range("bytes=8-100", 10), Ok(Some(8..10)));
        assert_eq!(range("bytes=-100", 10), Ok(Some(0..10)));
        assert_eq!(range("bytes=0-1,4-5", 10), Ok(None));
        assert_eq!(range("items=0-1", 10), Ok(None));
        // Unsatisfiable: 416.
        for bad in ["bytes=10-", "bytes=12-20", "bytes=-0"] {
            assert_eq!(range(bad, 10), Err(()), "{bad}");
        }
        assert_eq!(range("bytes=-3", 0), Err(()));
        // Unreadable: ignored.
        for odd in ["bytes=5-2", "bytes=-", "bytes=x-1", "bytes=3", "bytes=1-x"] {
            assert_eq!(range(odd, 10), Ok(None), "{odd}");
        }
    }
}
