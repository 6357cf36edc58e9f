//! Recording a broadcast as a video: its segments are stored as they complete, and at the end a
//! VOD playlist and a thumbnail are added and the video is marked ready.
//!
//! Blobs are `videos/{public_id}/…` ([`video_key`]) with the same names the live playlist uses
//! (`init{epoch}.mp4`, `s{msn}.m4s`) plus `index.m3u8` and `thumbnail.jpg`.

use std::sync::Arc;

use bytes::Bytes;
use moim_media::playlist::{self, VodSegment};
use tokio::sync::mpsc;

use super::Live;
use crate::storage::blobs::{self, Blobs};
use crate::storage::rooms::Room;
use crate::storage::videos::{VideoSource, VideoStatus};
use crate::storage::{self, now_ms, videos};

/// Work for the recorder, in stream order.
#[derive(Debug)]
pub enum Op {
    Init {
        epoch: u32,
        data: Bytes,
    },
    Segment {
        msn: u64,
        duration_ms: f64,
        init_epoch: u32,
        discontinuity: bool,
        data: Bytes,
    },
    Finish,
}

/// `2026-11-22 21:51 UTC`: readable in a title.
fn when(ms: i64) -> String {
    let full = storage::rfc3339(ms);
    match (full.get(..10), full.get(11..16)) {
        (Some(date), Some(hm)) => format!("{date} {hm} UTC"),
        _ => full,
    }
}

/// The blob key of one of a video's files.
pub fn video_key(public_id: &str, name: &str) -> String {
    format!("videos/{public_id}/{name}")
}

/// Creates the video row and directory and starts the recorder task.
pub async fn start(live: &Live, room: &Room) -> anyhow::Result<mpsc::Sender<Op>> {
    let public_id = crate::domain::videos::new_public_id();
    let title = format!("{} — {}", room.title, when(now_ms()));
    let id = videos::create(
        &live.db().pool,
        &public_id,
        room.owner_id,
        Some(room.id),
        &title,
        VideoSource::Live,
        now_ms(),
    )
    .await?;
    // Room for a few segments while the disk catches up; the ingest waits beyond that.
    let (tx, rx) = mpsc::channel(16);
    let db = live.db().clone();
    live.tasks()
        .spawn(run(db, live.blobs().clone(), id, public_id, rx));
    Ok(tx)
}

struct Written {
    msn: u64,
    duration_ms: f64,
    init_epoch: u32,
    discontinuity: bool,
}

async fn run(
    db: storage::Db,
    blobs: Arc<dyn Blobs>,
    id: i64,
    public_id: String,
    mut rx: mpsc::Receiver<Op>,
) {
    let key = |name: &str| video_key(&public_id, name);
    let mut segments: Vec<Written> = Vec::new();
    let mut failed = false;
    // What the video keeps, for its owner's storage use.
    let mut stored: u64 = 0;
    while let Some(op) = rx.recv().await {
        let result = match op {
            Op::Init { epoch, data } => blobs
                .put(&key(&playlist::init_uri(epoch)), blobs::once(data))
                .await
                .map(|n| stored += n),
            Op::Segment {
                msn,
                duration_ms,
                init_epoch,
                discontinuity,
                data,
            } => {
                let r = blobs
                    .put(&key(&playlist::segment_uri(msn)), blobs::once(data))
                    .await
                    .map(|n| stored += n);
                if r.is_ok() {
                    segments.push(Written {
                        msn,
                        duration_ms,
                        init_epoch,
                        discontinuity: discontinuity && !segments.is_empty(),
                    });
                }
                r
            }
            Op::Finish => break,
        };
        if let Err(e) = result {
            // Keep draining so the broadcast itself goes on; the video ends up `failed`.
            if !failed {
                tracing::warn!(video = id, error = %e, "recording write failed");
            }
            failed = true;
        }
    }
    let duration_ms: f64 = segments.iter().map(|s| s.duration_ms).sum();
    let status = if failed || segments.is_empty() {
        VideoStatus::Failed
    } else {
        match write_playlist(&*blobs, &key("index.m3u8"), &segments).await {
            Ok(n) => {
                stored += n;
                VideoStatus::Ready
            }
            Err(e) => {
                tracing::warn!(video = id, error = %e, "writing the recording's playlist failed");
                VideoStatus::Failed
            }
        }
    };
    let thumb = match status {
        VideoStatus::Ready => make_thumbnail(&*blobs, &public_id, &segments).await,
        _ => None,
    };
    stored += thumb.unwrap_or(0);
    if status != VideoStatus::Ready {
        // A failed recording keeps nothing: its files go, by a job that retries until they
        // have (the library's workers run it).
        let prefix = format!("videos/{public_id}/");
        let job = crate::storage::jobs::enqueue(
            &db.pool,
            crate::domain::videos::DELETE_BLOBS_JOB,
            &prefix,
            now_ms(),
        );
        if let Err(e) = job.await {
            tracing::warn!(video = id, error = %e, "cannot queue a failed recording's files for deletion");
        }
        stored = 0;
    }
    if let Err(e) = videos::finish(
        &db.pool,
        id,
        status,
        duration_ms.round() as i64,
        thumb.is_some(),
        stored as i64,
        now_ms(),
    )
    .await
    {
        tracing::warn!(video = id, error = %e, "cannot mark the recording finished");
    }
    tracing::info!(
        video = id,
        status = status.as_str(),
        duration_s = duration_ms / 1000.0,
        "recording finished"
    );
}

async fn write_playlist(
    blobs: &dyn Blobs,
    key: &str,
    segments: &[Written],
) -> Result<u64, blobs::BlobError> {
    let list: Vec<VodSegment> = segments
        .iter()
        .map(|s| VodSegment {
            msn: s.msn,
            duration_ms: s.duration_ms,
            init_epoch: s.init_epoch,
            discontinuity: s.discontinuity,
        })
        .collect();
    // A put is whole or nothing, so a reader never sees half a playlist.
    blobs.put(key, blobs::once(playlist::vod(&list))).await
}

/// A JPEG from the first keyframe of a middle segment, if ffmpeg is installed (its size).
/// Best effort.
async fn make_thumbnail(blobs: &dyn Blobs, public_id: &str, segments: &[Written]) -> Option<u64> {
    let seg = segments.get(segments.len() / 2)?;
    let read = |name: String| async move {
        blobs
            .get(&video_key(public_id, &name), None)
            .await
            .ok()?
            .bytes()
            .await
            .ok()
    };
    let (Some(init), Some(media)) = (
        read(playlist::init_uri(seg.init_epoch)).await,
        read(playlist::segment_uri(seg.msn)).await,
    ) else {
        return None;
    };
    let mut input = init.to_vec();
    input.extend_from_slice(&media);
    let jpeg = super::thumbnail::jpeg(input).await?;
    blobs
        .put(&video_key(public_id, "thumbnail.jpg"), blobs::once(jpeg))
        .await
        .ok()
}
