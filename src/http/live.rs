//! Live over HTTP: LL-HLS playlists and media from a broadcast's in-memory window (with blocking
//! playlist reload and blocking preload-hinted parts), and the room's stream key.
//!
//! HLS responses are public like the rooms they belong to; segment URLs carry the broadcast id so
//! caches never mix two broadcasts.

use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use moim_media::playlist::{self, Variant};
use moim_media::segmenter::Segmenter;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;

use super::auth::client_ip;
use super::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use super::extract::CurrentUser;
use super::media::{media, parse_file, File, PLAYLIST};
use crate::live::{client_hash, Broadcast};
use crate::state::AppState;
/// Shortest time a blocking request may wait (playlist requests wait three target durations
/// when that is longer).
const BLOCK_LIMIT: Duration = Duration::from_secs(6);
/// How long a multivariant request waits for a just-started broadcast's first part.
const FIRST_MEDIA_WAIT: Duration = Duration::from_secs(5);
/// How long a multivariant request waits for the transcoder's rungs to have media.
const RUNG_WAIT: Duration = Duration::from_secs(3);

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
    let mut rx = b.subscribe();
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
    if !wait_for(&b, b.source(), FIRST_MEDIA_WAIT, |s| {
        s.has_media() || s.ended()
    })
    .await
    {
        return Err(ApiError::Unavailable(
            "the broadcast has not sent media yet".into(),
        ));
    }
    // A just-started transcoder's rungs lag the source by a moment; players read this playlist
    // once, so give them a chance to be in it.
    let rungs = b.rungs();
    for r in rungs {
        let failed = || r.failed.load(std::sync::atomic::Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + RUNG_WAIT;
        let mut rx = b.subscribe();
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
        uri: format!("{}/{name}/index.m3u8", b.id()),
        name: name.to_string(),
        codecs: seg.codecs(),
        resolution: seg.resolution(),
        // Measured over the window; until a segment completes, the nominal rate (or a guess).
        bandwidth: match seg.bitrate_bps() {
            0 => nominal_bps,
            measured => measured,
        },
    };
    let mut rows = vec![row("source", &b.source().lock(), 2_500_000)];
    rows[0].uri = format!("{}/src/index.m3u8", b.id());
    for r in b.rungs().iter() {
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
    if b.id() != bid {
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
                b.saw_hls_client(client_hash(client_ip(&state, headers, *peer)));
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
        File::Thumbnail | File::Storyboard | File::StoryboardCues | File::SourcePlaylist => {
            Err(ApiError::not_found("file"))
        }
    }
}

/// The ingest URL shown to streamers (without the key).
fn rtmp_url(state: &AppState, headers: &HeaderMap) -> String {
    let port = state.rtmp_port;
    if let Some(host) = &state.config.live.rtmp_public_host {
        return format!("rtmp://{host}/live");
    }
    let host = state
        .config
        .http
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

/// `GET /api/v1/rooms/{slug}/stream-key`: the current key (made on first use).
pub async fn get_stream_key(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = state.rooms.stream_key(&user, &slug).await?;
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
    let key = state.rooms.rotate_stream_key(&user, &slug).await?;
    // A browser or OBS publishing by WHIP on the old key stops too.
    state
        .sfu
        .remove_room(&slug, Some(crate::sfu::Role::Publisher))
        .await;
    let body = json!({"stream_key": key, "rtmp_url": rtmp_url(&state, &headers)});
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
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
