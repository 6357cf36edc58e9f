//! Live over HTTP: LL-HLS playlists and media from a broadcast's in-memory window (with blocking
//! playlist reload and blocking preload-hinted parts), stream keys, and recordings as videos.
//!
//! HLS responses are public like the rooms they belong to; segment URLs carry the broadcast id so
//! caches never mix two broadcasts. Recorded videos are served from disk by their random id.

use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use moim_media::playlist::{self, Variant};
use moim_media::segmenter::Segmenter;
use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::client_ip;
use super::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use super::rooms::load_room;
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::live::recorder::video_dir;
use crate::live::{client_hash, Broadcast};
use crate::storage::users::Role;
use crate::storage::{live as keys, now_ms, rfc3339, videos};

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
/// Shortest time a blocking request may wait (playlist requests wait three target durations
/// when that is longer).
const BLOCK_LIMIT: Duration = Duration::from_secs(6);
/// How long a multivariant request waits for a just-started broadcast's first part.
const FIRST_MEDIA_WAIT: Duration = Duration::from_secs(5);
/// How long a multivariant request waits for the transcoder's rungs to have media.
const RUNG_WAIT: Duration = Duration::from_secs(3);

/// A file name in a broadcast's or recording's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File {
    Playlist,
    Init(u32),
    Segment(u64),
    Part(u64, u32),
    Thumbnail,
}

fn parse_file(name: &str) -> Option<File> {
    if name == "index.m3u8" {
        return Some(File::Playlist);
    }
    if name == "thumbnail.jpg" {
        return Some(File::Thumbnail);
    }
    fn num(s: &str) -> Option<&str> {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
    }
    if let Some(rest) = name
        .strip_prefix("init")
        .and_then(|r| r.strip_suffix(".mp4"))
    {
        return num(rest)?.parse().ok().map(File::Init);
    }
    if let Some(rest) = name.strip_prefix('s').and_then(|r| r.strip_suffix(".m4s")) {
        return num(rest)?.parse().ok().map(File::Segment);
    }
    if let Some(rest) = name.strip_prefix('p').and_then(|r| r.strip_suffix(".m4s")) {
        let (msn, idx) = rest.split_once('.')?;
        return Some(File::Part(num(msn)?.parse().ok()?, num(idx)?.parse().ok()?));
    }
    None
}

fn media(body: Bytes, content_type: &'static str, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        body,
    )
        .into_response()
}

fn broadcast(state: &AppState, slug: &str) -> ApiResult<Arc<Broadcast>> {
    state
        .live
        .get(slug)
        .ok_or_else(|| ApiError::NotFound("this room is not live".into()))
}

/// Waits until `ready` holds for a rendition's window, or the limit passes. True if it holds.
async fn wait_for(
    b: &Broadcast,
    seg: &Mutex<Segmenter>,
    limit: Duration,
    ready: impl Fn(&Segmenter) -> bool,
) -> bool {
    let mut rx = b.changed.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if ready(&seg.lock()) {
            return true;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => return ready(&seg.lock()),
        }
    }
}

/// `GET /live/{slug}/index.m3u8`: the multivariant playlist: the source, and the transcoder's
/// rungs that have media.
pub async fn live_index(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Response> {
    let b = broadcast(&state, &slug)?;
    // An ended broadcast's media playlists stay readable for the players already on them; a new
    // viewer of an ended broadcast is told the room is not live.
    if b.ended() {
        return Err(ApiError::NotFound("this room is not live".into()));
    }
    if !wait_for(&b, &b.seg, FIRST_MEDIA_WAIT, |s| s.has_media() || s.ended()).await {
        return Err(ApiError::Unavailable(
            "the broadcast has not sent media yet".into(),
        ));
    }
    // A just-started transcoder's rungs lag the source by a moment; players read this playlist
    // once, so give them a chance to be in it.
    let rungs: Vec<_> = b.rungs.lock().clone();
    for r in rungs {
        let failed = || r.failed.load(std::sync::atomic::Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + RUNG_WAIT;
        let mut rx = b.changed.subscribe();
        while !failed() && !r.seg.lock().has_media() {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                break;
            }
        }
    }
    struct Row {
        uri: String,
        name: String,
        codecs: String,
        resolution: Option<(u32, u32)>,
        bandwidth: u64,
    }
    let row = |name: &str, seg: &Segmenter, nominal_bps: u64| Row {
        uri: format!("{}/{name}/index.m3u8", b.id),
        name: name.to_string(),
        codecs: seg.codecs(),
        resolution: seg.resolution(),
        // Measured over the window; until a segment completes, the nominal rate (or a guess).
        bandwidth: match seg.bitrate_bps() {
            0 => nominal_bps,
            measured => measured,
        },
    };
    let mut rows = vec![row("source", &b.seg.lock(), 2_500_000)];
    rows[0].uri = format!("{}/src/index.m3u8", b.id);
    for r in b.rungs.lock().iter() {
        if r.failed.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        let seg = r.seg.lock();
        if seg.has_media() {
            rows.push(row(&r.name, &seg, u64::from(r.step.kbps) * 1000 + 96_000));
        }
    }
    let variants: Vec<Variant<'_>> = rows
        .iter()
        .map(|r| Variant {
            uri: &r.uri,
            bandwidth: r.bandwidth,
            average_bandwidth: None,
            codecs: &r.codecs,
            resolution: r.resolution,
            frame_rate: None,
            name: &r.name,
        })
        .collect();
    let text = playlist::multivariant(&variants);
    Ok(media(Bytes::from(text), PLAYLIST, "no-cache"))
}

#[derive(Deserialize)]
pub struct HlsQuery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<u32>,
    /// Delta updates are not offered (no `CAN-SKIP-UNTIL`), so a skip request gets the full
    /// playlist, as the spec allows.
    #[serde(rename = "_HLS_skip")]
    _skip: Option<String>,
}

/// `GET /live/{slug}/{broadcast}/{rendition}/{file}`: media playlist, init, segments, parts.
pub async fn live_file(
    State(state): State<AppState>,
    ApiPath((slug, bid, rendition, file)): ApiPath<(String, String, String, String)>,
    ApiQuery(q): ApiQuery<HlsQuery>,
    // The request itself rather than a `HeaderMap` extractor, which would copy every header of
    // every part request; only playlist requests look at two of them.
    req: Request,
) -> ApiResult<Response> {
    let b = broadcast(&state, &slug)?;
    if b.id != bid {
        return Err(ApiError::NotFound("no such broadcast".into()));
    }
    let seg = b
        .rendition(&rendition)
        .ok_or_else(|| ApiError::NotFound("no such rendition".into()))?;
    let file = parse_file(&file).ok_or_else(|| ApiError::not_found("file"))?;
    match file {
        File::Playlist => {
            if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
                let headers = req.headers();
                b.saw_hls_client(client_hash(client_ip(&state, headers, *peer), headers));
            }
            if let Some(msn) = q.msn {
                let next = seg.lock().next_msn();
                // The spec's limit: more than two segments ahead is a client error.
                if msn > next + 2 {
                    return Err(ApiError::invalid(
                        "hls_msn_too_far",
                        "_HLS_msn is more than two segments ahead of the playlist",
                    ));
                }
                // Three target durations, as the spec suggests, but never less than the floor.
                let limit = BLOCK_LIMIT.max(Duration::from_secs(
                    3 * u64::from(seg.lock().target_duration()),
                ));
                if !wait_for(&b, &seg, limit, |s| s.has(msn, q.part)).await {
                    return Err(ApiError::Unavailable(
                        "the playlist did not reach that part in time".into(),
                    ));
                }
            } else if q.part.is_some() {
                return Err(ApiError::invalid(
                    "hls_part_without_msn",
                    "_HLS_part needs _HLS_msn",
                ));
            }
            Ok(media(b.playlist(&rendition, &seg), PLAYLIST, "no-cache"))
        }
        File::Init(epoch) => {
            let data = seg.lock().init(epoch);
            data.map(|d| media(d, "video/mp4", "public, max-age=3600"))
                .ok_or_else(|| ApiError::not_found("init segment"))
        }
        File::Segment(msn) => {
            // A plain-HLS player asks only for listed segments; tolerate a request a moment early.
            let in_reach = msn <= seg.lock().next_msn();
            if in_reach {
                wait_for(&b, &seg, BLOCK_LIMIT, |s| s.has(msn, None)).await;
            }
            let data = seg.lock().segment(msn);
            data.map(|d| media(d, "video/iso.segment", "public, max-age=60"))
                .ok_or_else(|| ApiError::not_found("segment"))
        }
        File::Part(msn, idx) => {
            // The preload hint names the next part before it exists: hold the request until it
            // does (that is what makes LL-HLS low latency), but only for that next part.
            let hinted = {
                let seg = seg.lock();
                match seg.last_part() {
                    Some((m, i)) => (msn == m && idx == i + 1) || (msn == m + 1 && idx == 0),
                    None => msn == seg.next_msn() && idx == 0,
                }
            };
            if hinted {
                wait_for(&b, &seg, BLOCK_LIMIT, |s| s.has(msn, Some(idx))).await;
            }
            let data = seg.lock().part(msn, idx);
            data.map(|d| media(d, "video/iso.segment", "public, max-age=60"))
                .ok_or_else(|| ApiError::not_found("part"))
        }
        File::Thumbnail => Err(ApiError::not_found("file")),
    }
}

/// The ingest URL shown to streamers (without the key).
fn rtmp_url(state: &AppState, headers: &HeaderMap) -> String {
    let port = state.rtmp_port;
    if let Some(host) = &state.config.rtmp_public_host {
        return format!("rtmp://{host}/live");
    }
    let host = state
        .config
        .public_url
        .as_deref()
        .and_then(|u| u.split_once("://").map(|(_, rest)| rest))
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("localhost");
    // Drop the HTTP port (and any path), keep the host; IPv6 literals keep their brackets.
    let host = host.split('/').next().unwrap_or(host);
    let host = match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    };
    if port == 1935 {
        format!("rtmp://{host}/live")
    } else {
        format!("rtmp://{host}:{port}/live")
    }
}

fn new_stream_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let secret: String = (0..32)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("live_{secret}")
}

async fn manage_room(
    state: &AppState,
    user: &crate::storage::users::User,
    slug: &str,
) -> ApiResult<crate::storage::rooms::Room> {
    let room = load_room(state, slug).await?;
    if user.role != Role::Admin && user.id != room.owner_id {
        return Err(ApiError::forbidden());
    }
    Ok(room)
}

/// `GET /api/v1/rooms/{slug}/stream-key`: the current key (made on first use).
pub async fn get_stream_key(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let room = manage_room(&state, &user, &slug).await?;
    let key = match keys::key_for_room(&state.db.pool, room.id).await? {
        Some(k) => k,
        None => {
            let k = new_stream_key();
            keys::set_key(&state.db.pool, room.id, &k, now_ms()).await?;
            k
        }
    };
    let body = json!({"stream_key": key, "rtmp_url": rtmp_url(&state, &headers)});
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `POST /api/v1/rooms/{slug}/stream-key`: a new key; the old one stops working and a broadcast
/// running on it ends.
pub async fn rotate_stream_key(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let room = manage_room(&state, &user, &slug).await?;
    let key = new_stream_key();
    keys::set_key(&state.db.pool, room.id, &key, now_ms()).await?;
    state.live.end_room(&room.slug).await;
    tracing::info!(room = %room.slug, by = %user.username, "stream key rotated");
    let body = json!({"stream_key": key, "rtmp_url": rtmp_url(&state, &headers)});
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}

/// A video as the API shows it.
#[derive(Debug, Serialize)]
pub struct VideoView {
    pub id: String,
    pub title: String,
    pub status: String,
    pub source: String,
    pub duration_s: f64,
    pub hls_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub created_at: String,
}

impl VideoView {
    fn new(v: &videos::Video) -> VideoView {
        let ready = v.status == "ready";
        VideoView {
            id: v.public_id.clone(),
            title: v.title.clone(),
            status: v.status.clone(),
            source: v.source.clone(),
            duration_s: v.duration_ms as f64 / 1000.0,
            hls_url: ready.then(|| format!("/videos/{}/index.m3u8", v.public_id)),
            thumbnail_url: (ready && v.has_thumbnail)
                .then(|| format!("/videos/{}/thumbnail.jpg", v.public_id)),
            created_at: rfc3339(v.created_at),
        }
    }
}

/// `GET /api/v1/videos`: the caller's own videos, newest first.
pub async fn list_videos(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<serde_json::Value>> {
    let list = videos::list_owned(&state.db.pool, user.id, 500).await?;
    let views: Vec<VideoView> = list.iter().map(VideoView::new).collect();
    Ok(Json(json!({"videos": views})))
}

/// `GET /api/v1/videos/{id}`: a ready video is visible to anyone with its id (like an unlisted
/// video); one still processing or failed only to its owner and admins.
pub async fn get_video(
    State(state): State<AppState>,
    crate::auth::MaybeUser(user): crate::auth::MaybeUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let v = visible_video(&state, &id, user.as_ref()).await?;
    Ok(Json(json!({"video": VideoView::new(&v)})))
}

async fn visible_video(
    state: &AppState,
    id: &str,
    user: Option<&crate::storage::users::User>,
) -> ApiResult<videos::Video> {
    if id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found("video"));
    }
    let v = videos::get(&state.db.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("video"))?;
    let privileged = user.is_some_and(|u| u.role == Role::Admin || u.id == v.owner_id);
    if v.status != "ready" && !privileged {
        return Err(ApiError::not_found("video"));
    }
    Ok(v)
}

/// `GET /videos/{id}/{file}`: a ready video's playlist, init segments, segments and thumbnail.
pub async fn video_file(
    State(state): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let v = visible_video(&state, &id, None).await?;
    let file = parse_file(&name).ok_or_else(|| ApiError::not_found("file"))?;
    let (content_type, cache) = match file {
        File::Playlist => (PLAYLIST, "public, max-age=60"),
        File::Init(_) => ("video/mp4", "public, max-age=86400"),
        File::Segment(_) => ("video/iso.segment", "public, max-age=86400"),
        File::Thumbnail => ("image/jpeg", "public, max-age=3600"),
        File::Part(..) => return Err(ApiError::not_found("file")),
    };
    // `name` passed `parse_file`, so it is one of a few fixed shapes: no path tricks.
    let path = video_dir(&state.config.data_dir, &v.public_id).join(&name);
    match tokio::fs::read(&path).await {
        Ok(data) => Ok(media(Bytes::from(data), content_type, cache)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::not_found("file")),
        Err(e) => Err(ApiError::Internal(
            anyhow::Error::new(e).context("reading a video file"),
        )),
    }
}

/// `GET /live/{slug}/thumbnail.jpg`: a recent frame of the broadcast (needs ffmpeg).
pub async fn live_thumbnail(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Response> {
    let b = broadcast(&state, &slug)?;
    let jpeg = b.thumbnail();
    jpeg.map(|j| media(j, "image/jpeg", "public, max-age=10"))
        .ok_or_else(|| ApiError::not_found("thumbnail"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(parse_file("index.m3u8"), Some(File::Playlist));
        assert_eq!(parse_file("init0.mp4"), Some(File::Init(0)));
        assert_eq!(parse_file("s12.m4s"), Some(File::Segment(12)));
        assert_eq!(parse_file("p12.3.m4s"), Some(File::Part(12, 3)));
        for bad in [
            "",
            "s.m4s",
            "s-1.m4s",
            "p1.m4s",
            "p1..m4s",
            "p1.2.3.m4s",
            "init.mp4",
            "../x",
            "s1.m4s/",
            "s99999999999999999999.m4s",
            "s+1.m4s",
            "index.m3u",
        ] {
            assert_eq!(parse_file(bad), None, "{bad}");
        }
    }
}
