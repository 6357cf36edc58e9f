//! Videos over HTTP: the caller's list, one video, and a ready video's HLS files.

use std::ops::Range;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::extract::{CurrentUser, MaybeUser};
use super::media::{is_rendition, parse_file, File, PLAYLIST};
use crate::domain::videos::VideoPatch;
use crate::live::recorder::video_key;
use crate::state::AppState;
use crate::storage::blobs::BlobError;
use crate::storage::users::User;
use crate::storage::videos::{VideoSource, VideoStatus, Visibility};
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

/// `GET /api/v1/users/{username}`: a member's page: their public videos and their rooms (live
/// ones first).
pub async fn member_page(
    State(state): State<AppState>,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let member = state.rooms.member(&username).await?;
    let videos = state.videos.list_public(member.id).await?;
    let rooms = state.rooms.owned_by(member.id).await?;
    let views: Vec<VideoView> = videos.iter().map(VideoView::from).collect();
    Ok(Json(json!({
        "user": {"id": member.id.to_string(), "username": member.username},
        "videos": views,
        "rooms": rooms,
    })))
}

/// What may change on a video.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    title: Option<String>,
    visibility: Option<Visibility>,
}

/// `PATCH /api/v1/videos/{id}`: rename, or change who may watch.
pub async fn update_video(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchBody>,
) -> ApiResult<Json<Value>> {
    let patch = VideoPatch {
        title: body.title,
        visibility: body.visibility,
    };
    let v = state.videos.update(&user, &id, patch).await?;
    Ok(Json(json!({"video": VideoView::from(&v)})))
}

/// `DELETE /api/v1/videos/{id}`: the video and all its files.
pub async fn delete_video(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.videos.delete(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/videos/{id}/original`: the file as uploaded, for its owner.
pub async fn download_original(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let v = state.videos.manageable(&user, &id).await?;
    if v.source != VideoSource::Upload || v.status == VideoStatus::Failed {
        return Err(ApiError::not_found("original"));
    }
    let name = if v.filename.is_empty() {
        "video".to_string()
    } else {
        v.filename.clone()
    };
    let mut resp = blob_response(
        &state,
        &video_key(&v.public_id, "original"),
        &headers,
        "application/octet-stream",
        "private, no-store".into(),
    )
    .await?;
    resp.headers_mut()
        .insert(header::CONTENT_DISPOSITION, attachment(&name));
    Ok(resp)
}

/// `Content-Disposition: attachment` naming the file (RFC 6266: an ASCII fallback and the
/// UTF-8 name).
fn attachment(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
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

/// `GET /videos/{id}/{file}`: a ready video's playlist, init segments, segments, thumbnail and
/// storyboard, with single byte ranges and `ETag`.
pub async fn video_file(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath((id, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let v = watchable(&state, user.as_ref(), &id, &headers).await?;
    serve_file(&state, v, None, &name, &headers).await
}

/// The video if the visitor may watch it, themselves or through a share link.
async fn watchable(
    state: &AppState,
    user: Option<&User>,
    id: &str,
    headers: &HeaderMap,
) -> ApiResult<crate::storage::videos::Video> {
    let grants = super::shares::grants(headers);
    Ok(state
        .videos
        .watchable_shared(user, id, &state.shares, &grants)
        .await?)
}

/// `GET /videos/{id}/{rendition}/{file}`: the same for one rendition of a transcoded video.
pub async fn rendition_file(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath((id, rendition, name)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !is_rendition(&rendition) {
        return Err(ApiError::not_found("file"));
    }
    let v = watchable(&state, user.as_ref(), &id, &headers).await?;
    serve_file(&state, v, Some(&rendition), &name, &headers).await
}

/// `GET /party/{slug}/{id}/{file}`: a video's files through a room's watch party, while the
/// party plays or queues it (how the room sees a private video its owner loaded).
pub async fn party_file(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath((slug, id, name)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let v = party_video(&state, user.as_ref(), &slug, &id).await?;
    serve_file(&state, v, None, &name, &headers).await
}

/// `GET /party/{slug}/{id}/{rendition}/{file}`: the same for one rendition.
pub async fn party_rendition_file(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath((slug, id, rendition, name)): ApiPath<(String, String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !is_rendition(&rendition) {
        return Err(ApiError::not_found("file"));
    }
    let v = party_video(&state, user.as_ref(), &slug, &id).await?;
    serve_file(&state, v, Some(&rendition), &name, &headers).await
}

async fn party_video(
    state: &AppState,
    user: Option<&User>,
    slug: &str,
    id: &str,
) -> ApiResult<crate::storage::videos::Video> {
    // Viewing the room is the condition (the room's own answer, 404 when it cannot be seen).
    let _ = state.rooms.get(user, slug).await?;
    let room = state.rooms.find(slug).await?;
    let held = state.parties.holds(room.id, id).await;
    Ok(state.videos.watchable_in_party(id, held).await?)
}

async fn serve_file(
    state: &AppState,
    v: crate::storage::videos::Video,
    rendition: Option<&str>,
    name: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let file = parse_file(name).ok_or_else(|| ApiError::not_found("file"))?;
    let (content_type, max_age) = match file {
        File::Playlist | File::SourcePlaylist => (PLAYLIST, 60),
        File::Init(_) => ("video/mp4", 86400),
        File::Segment(_) => ("video/iso.segment", 86400),
        File::Thumbnail | File::Storyboard => ("image/jpeg", 3600),
        File::StoryboardCues => ("text/vtt; charset=utf-8", 3600),
        File::Part(..) => return Err(ApiError::not_found("file")),
    };
    // Only what anyone may see goes into shared caches.
    let cache = if v.visibility == Visibility::Public {
        format!("public, max-age={max_age}")
    } else {
        format!("private, max-age={max_age}")
    };
    // `name` passed `parse_file` and `rendition` `is_rendition`: a valid key.
    let key = match rendition {
        Some(r) => video_key(&v.public_id, &format!("{r}/{name}")),
        None => video_key(&v.public_id, name),
    };
    let mut resp = blob_response(state, &key, headers, content_type, cache).await?;
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(resp)
}

/// A blob as an HTTP answer: one byte range (206), `ETag` and `If-None-Match` (304).
pub(super) async fn blob_response(
    state: &AppState,
    key: &str,
    headers: &HeaderMap,
    content_type: &'static str,
    cache: String,
) -> ApiResult<Response> {
    let blob_error = |e: BlobError| match e {
        BlobError::NotFound => ApiError::not_found("file"),
        e => ApiError::Internal(anyhow::Error::new(e).context("reading a video file")),
    };
    // The size first (a zero-length read), then the body for the range asked.
    let size = state
        .blobs
        .get(key, Some(0..0))
        .await
        .map_err(blob_error)?
        .size;
    // A video's files never change once written (a new processing writes a new video), so
    // the key and size name the content.
    let etag = format!("\"{:016x}\"", fxhash(&format!("{key}:{size}")));
    let common = |h: &mut HeaderMap| {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&cache).expect("ascii"),
        );
        h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("ascii"));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        common(resp.headers_mut());
        return Ok(resp);
    }
    let Ok(range) = wanted_range(headers, size) else {
        let mut resp = (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{size}"))],
        )
            .into_response();
        common(resp.headers_mut());
        return Ok(resp);
    };
    let partial = range.is_some();
    let blob = state.blobs.get(key, range).await.map_err(blob_error)?;
    let mut resp = Response::new(Body::from_stream(blob.body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    common(h);
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

/// FNV-1a: a stable 64-bit digest for `ETag`s (not a security boundary).
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
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

#[cfg(test)]
mod attachment_tests {
    use super::attachment;

    #[test]
    fn file_names_are_quoted_safely() {
        assert_eq!(
            attachment("clip.mp4").to_str().unwrap(),
            "attachment; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4"
        );
        assert_eq!(
            attachment("여름 \"휴가\".mov").to_str().unwrap(),
            "attachment; filename=\"__ ____.mov\"; filename*=UTF-8''%EC%97%AC%EB%A6%84%20%22%ED%9C%B4%EA%B0%80%22.mov"
        );
    }
}
