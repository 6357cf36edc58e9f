//! One broadcast: a room's live window (the source and the transcoder's rungs), its rendered
//! playlists, its HLS viewers, its thumbnail and the hand-off of finished segments to its
//! recording. What happens to it over time is `Live`'s (and the lifecycle's) business.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moim_media::segmenter::{self, Segmenter};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{hls_url, lifecycle, recorder, thumbnail, transcode, Live};
use crate::views::LiveView;

/// How often a live thumbnail is refreshed.
const THUMBNAIL_EVERY: Duration = Duration::from_secs(10);

/// One broadcast: a room's live window, its publisher and its recording.
pub struct Broadcast {
    /// Random id in segment URLs, so a new broadcast never reuses cached URLs.
    pub(super) id: String,
    pub(super) slug: String,
    pub(super) room_id: i64,
    pub(super) started_at: i64,
    /// The source rendition's live window.
    pub(super) seg: Arc<Mutex<Segmenter>>,
    pub(super) seg_cfg: segmenter::Config,
    /// Lower renditions, once the transcoder has started (kept across publisher reconnects).
    pub(super) rungs: Mutex<Vec<Arc<transcode::Rung>>>,
    pub(super) transcoder: Mutex<Option<transcode::Handle>>,
    /// Bumped whenever a part or segment appears or the broadcast ends: blocked playlist and
    /// part requests wait on it.
    pub(super) changed: watch::Sender<u64>,
    /// Its id in the lifecycle.
    pub(super) num: lifecycle::BroadcastId,
    /// Set (under the lifecycle's lock) the moment the lifecycle ends it.
    pub(super) ended: AtomicBool,
    /// Cancelled to disconnect the publisher (key rotated, room deleted, shutdown).
    pub(super) kick: CancellationToken,
    /// The room as it was when the broadcast started (owner, title, recording on or off).
    pub(super) room: crate::storage::rooms::Room,
    /// Started with the first media, so a publisher that never sends any, or loses a race for
    /// the room, leaves no empty video behind; `None` inside when recording is off or failed.
    pub(super) recorder: tokio::sync::OnceCell<Option<mpsc::Sender<recorder::Op>>>,
    /// Serialises "drain the segmenter, hand the events to the recorder" between the ingest
    /// task and `Live::end`.
    pub(super) record_order: tokio::sync::Mutex<()>,
    /// Rendered media playlists by rendition, with the `changed` version they show.
    pub(super) playlists: Mutex<HashMap<String, (u64, Bytes)>>,
    /// HLS clients by hash, with when they last fetched a playlist.
    pub(super) hls_clients: Mutex<HashMap<u64, Instant>>,
    /// Latest thumbnail, and when one was last asked of ffmpeg.
    pub(super) thumbnail: Mutex<(Option<Bytes>, Option<Instant>)>,
}

impl Broadcast {
    /// Random id in segment URLs.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The source rendition's live window.
    pub fn source(&self) -> &Arc<Mutex<Segmenter>> {
        &self.seg
    }

    /// The transcoder's renditions (failed ones included: check `Rung::failed`).
    pub fn rungs(&self) -> Vec<Arc<transcode::Rung>> {
        self.rungs.lock().clone()
    }

    /// Wakes on every new part or segment and at the end (see `changed`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Wakes everyone waiting for a change.
    pub fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// The broadcast has ended (the playlist has `EXT-X-ENDLIST`).
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// The live window of a rendition: `src` or a rung's name; failed rungs are gone.
    pub fn rendition(&self, name: &str) -> Option<Arc<Mutex<Segmenter>>> {
        if name == "src" {
            return Some(self.seg.clone());
        }
        self.rungs
            .lock()
            .iter()
            .find(|r| r.name == name && !r.failed.load(std::sync::atomic::Ordering::Relaxed))
            .map(|r| r.seg.clone())
    }

    /// A rendition's LL-HLS media playlist, rendered once per change and shared: when a part
    /// lands, every blocked player asks for the same text at the same moment.
    pub fn playlist(&self, rendition: &str, seg: &Mutex<Segmenter>) -> Bytes {
        // Every change to a window bumps `changed` before the window's lock is released. A
        // request that saw a change (under that lock) therefore sees its version here too, so a
        // cached text matching the current version is never older than what it waited for.
        let version = *self.changed.borrow();
        if let Some((v, text)) = self.playlists.lock().get(rendition) {
            if *v == version {
                return text.clone();
            }
        }
        // Render under the window's lock and label with the version read there, so label and
        // text agree.
        let seg = seg.lock();
        let version = *self.changed.borrow();
        let text = Bytes::from(seg.playlist(true));
        drop(seg);
        self.playlists
            .lock()
            .insert(rendition.to_string(), (version, text.clone()));
        text
    }

    /// URL of its multivariant playlist.
    pub fn hls_url(&self) -> String {
        hls_url(&self.slug)
    }

    /// What room views show about it.
    pub fn view(&self) -> LiveView {
        let has_thumbnail = self.thumbnail.lock().0.is_some();
        LiveView {
            hls_url: self.hls_url(),
            since_ms: self.started_at,
            thumbnail_url: has_thumbnail.then(|| format!("/live/{}/thumbnail.jpg", self.slug)),
        }
    }

    /// Notes that an HLS client fetched a playlist.
    pub fn saw_hls_client(&self, client: u64) {
        let now = Instant::now();
        let mut seen = self.hls_clients.lock();
        if seen.len() >= MAX_HLS_CLIENTS && !seen.contains_key(&client) {
            seen.retain(|_, t| now.duration_since(*t) < HLS_VIEWER_WINDOW);
            if seen.len() >= MAX_HLS_CLIENTS {
                return;
            }
        }
        seen.insert(client, now);
    }

    /// HLS clients seen recently that are not among `connected` (WebSocket clients of the room).
    pub fn hls_only_viewers(&self, connected: &std::collections::HashSet<u64>) -> usize {
        let now = Instant::now();
        let mut seen = self.hls_clients.lock();
        seen.retain(|_, t| now.duration_since(*t) < HLS_VIEWER_WINDOW);
        seen.keys().filter(|c| !connected.contains(c)).count()
    }

    /// The latest thumbnail, if ffmpeg made one.
    pub fn thumbnail(&self) -> Option<Bytes> {
        self.thumbnail.lock().0.clone()
    }

    /// Makes a new thumbnail from a just-finished segment, at most every `THUMBNAIL_EVERY`, in
    /// the background.
    pub(super) fn refresh_thumbnail(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        epoch: u32,
        segment: &Bytes,
    ) {
        {
            let mut t = self.thumbnail.lock();
            if t.1.is_some_and(|at| at.elapsed() < THUMBNAIL_EVERY) {
                return;
            }
            t.1 = Some(Instant::now());
        }
        let Some(init) = self.seg.lock().init(epoch) else {
            return;
        };
        let mut mp4 = Vec::with_capacity(init.len() + segment.len());
        mp4.extend_from_slice(&init);
        mp4.extend_from_slice(segment);
        let me = self.clone();
        tasks.spawn(async move {
            if let Some(jpeg) = thumbnail::jpeg(mp4).await {
                me.thumbnail.lock().0 = Some(Bytes::from(jpeg));
            }
        });
    }

    /// Hands segmenter output to the recorder (in order; waits if the disk is behind) and
    /// refreshes the thumbnail now and then.
    pub async fn record(self: &Arc<Self>, live: &Live, events: Vec<segmenter::Event>) {
        let tasks = live.tasks();
        if let Some(segmenter::Event::Segment {
            init_epoch, data, ..
        }) = events
            .iter()
            .rev()
            .find(|e| matches!(e, segmenter::Event::Segment { .. }))
        {
            self.refresh_thumbnail(tasks, *init_epoch, data);
        }
        if events.is_empty() {
            return;
        }
        let recorder = self
            .recorder
            .get_or_init(|| async {
                if !self.room.record_broadcasts {
                    return None;
                }
                match recorder::start(live, &self.room).await {
                    Ok(tx) => Some(tx),
                    Err(e) => {
                        tracing::warn!(room = %self.slug, error = %e, "cannot record this broadcast");
                        None
                    }
                }
            })
            .await;
        let Some(tx) = recorder else { return };
        for ev in events {
            let op = match ev {
                segmenter::Event::Init { epoch } => match self.seg.lock().init(epoch) {
                    Some(data) => recorder::Op::Init { epoch, data },
                    None => continue,
                },
                segmenter::Event::Segment {
                    msn,
                    duration_ms,
                    init_epoch,
                    discontinuity,
                    data,
                } => recorder::Op::Segment {
                    msn,
                    duration_ms,
                    init_epoch,
                    discontinuity,
                    data,
                },
                segmenter::Event::Part { .. } => continue,
            };
            if tx.send(op).await.is_err() {
                return; // the recorder failed and said so in the log
            }
        }
    }
}

/// How recently an HLS client must have fetched a playlist to count as watching.
const HLS_VIEWER_WINDOW: Duration = Duration::from_secs(15);
/// Most HLS clients remembered per broadcast (memory bound; beyond it new ones are not counted).
const MAX_HLS_CLIENTS: usize = 100_000;
