//! Recording a broadcast as a video: its segments are written to disk as they complete, and
//! at the end a VOD playlist and a thumbnail are added and the video is marked ready.
//!
//! Files live in `{data_dir}/videos/{public_id}/` with the same names the live playlist uses
//! (`init{epoch}.mp4`, `s{msn}.m4s`) plus `index.m3u8` and `thumbnail.jpg`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use moim_media::playlist::{self, MediaPlaylist, SegmentRef};
use rand::Rng;
use tokio::sync::mpsc;

use super::Live;
use crate::storage::rooms::Room;
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

/// A random id for URLs: 11 characters of `[A-Za-z0-9]` (65 bits).
pub fn new_public_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..11)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `2026-11-22 21:51 UTC`: readable in a title.
fn when(ms: i64) -> String {
    let full = storage::rfc3339(ms);
    match (full.get(..10), full.get(11..16)) {
        (Some(date), Some(hm)) => format!("{date} {hm} UTC"),
        _ => full,
    }
}

/// Where a video's files live.
pub fn video_dir(data_dir: &Path, public_id: &str) -> PathBuf {
    data_dir.join("videos").join(public_id)
}

/// Creates the video row and directory and starts the recorder task.
pub async fn start(live: &Live, room: &Room) -> anyhow::Result<mpsc::Sender<Op>> {
    let public_id = new_public_id();
    let dir = video_dir(&live.config().data_dir, &public_id);
    tokio::fs::create_dir_all(&dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let title = format!("{} — {}", room.title, when(now_ms()));
    let id = videos::create(
        &live.db().pool,
        &public_id,
        room.owner_id,
        Some(room.id),
        &title,
        "live",
        now_ms(),
    )
    .await?;
    // Room for a few segments while the disk catches up; the ingest waits beyond that.
    let (tx, rx) = mpsc::channel(16);
    let db = live.db().clone();
    live.tasks().spawn(run(db, id, dir, rx));
    Ok(tx)
}

struct Written {
    msn: u64,
    duration_ms: f64,
    init_epoch: u32,
    discontinuity: bool,
}

async fn run(db: storage::Db, id: i64, dir: PathBuf, mut rx: mpsc::Receiver<Op>) {
    let mut segments: Vec<Written> = Vec::new();
    let mut failed = false;
    while let Some(op) = rx.recv().await {
        let result = match op {
            Op::Init { epoch, data } => {
                tokio::fs::write(dir.join(playlist::init_uri(epoch)), &data).await
            }
            Op::Segment {
                msn,
                duration_ms,
                init_epoch,
                discontinuity,
                data,
            } => {
                let r = tokio::fs::write(dir.join(playlist::segment_uri(msn)), &data).await;
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
        "failed"
    } else {
        match write_playlist(&dir, &segments).await {
            Ok(()) => "ready",
            Err(e) => {
                tracing::warn!(video = id, error = %e, "writing the recording's playlist failed");
                "failed"
            }
        }
    };
    let thumb = status == "ready" && make_thumbnail(&dir, &segments).await;
    if let Err(e) = videos::finish(
        &db.pool,
        id,
        status,
        duration_ms.round() as i64,
        thumb,
        now_ms(),
    )
    .await
    {
        tracing::warn!(video = id, error = %e, "cannot mark the recording finished");
    }
    tracing::info!(
        video = id,
        status,
        duration_s = duration_ms / 1000.0,
        "recording finished"
    );
}

async fn write_playlist(dir: &Path, segments: &[Written]) -> std::io::Result<()> {
    let refs: Vec<SegmentRef<'_>> = segments
        .iter()
        .map(|s| SegmentRef {
            msn: s.msn,
            duration: s.duration_ms / 1000.0,
            discontinuity: s.discontinuity,
            init_epoch: s.init_epoch,
            program_date_time_ms: 0,
            parts: &[],
            open: false,
        })
        .collect();
    let max = segments.iter().map(|s| s.duration_ms).fold(0.0, f64::max);
    let text = MediaPlaylist {
        target_duration: (max / 1000.0).round().max(1.0) as u32,
        part_target: None,
        media_sequence: segments.first().map_or(0, |s| s.msn),
        discontinuity_sequence: 0,
        segments: &refs,
        preload_hint: None,
        ended: true,
        vod: true,
    }
    .render();
    // Write then rename, so a reader never sees half a playlist.
    let tmp = dir.join("index.m3u8.tmp");
    tokio::fs::write(&tmp, text).await?;
    tokio::fs::rename(&tmp, dir.join("index.m3u8")).await
}

/// A JPEG from the first keyframe of a middle segment, if ffmpeg is installed. Best effort.
async fn make_thumbnail(dir: &Path, segments: &[Written]) -> bool {
    let Some(seg) = segments.get(segments.len() / 2) else {
        return false;
    };
    let mut input = match tokio::fs::read(dir.join(playlist::init_uri(seg.init_epoch))).await {
        Ok(b) => b,
        Err(_) => return false,
    };
    match tokio::fs::read(dir.join(playlist::segment_uri(seg.msn))).await {
        Ok(b) => input.extend_from_slice(&b),
        Err(_) => return false,
    }
    match super::thumbnail::jpeg(input).await {
        Some(jpeg) => tokio::fs::write(dir.join("thumbnail.jpg"), jpeg)
            .await
            .is_ok(),
        None => false,
    }
}
