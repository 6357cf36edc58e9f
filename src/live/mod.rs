//! Live broadcasting: the broadcasts running now, their publishers and their recordings.
//!
//! A broadcast belongs to a room and lives while its publisher is connected, plus a grace period
//! in which the same stream key may come back and continue it (viewers see a discontinuity, not
//! a new broadcast). Media flows: RTMP connection (`ingest`) → the broadcast's `Segmenter`
//! (moim-media, in memory: the live window) → HTTP (`http::live` reads the window and blocks on
//! `changed` for LL-HLS) and → the recorder (`recorder`, on disk, as a video).
//!
//! Owns no HTTP routing and no RTMP parsing; those are `http::live` and `moim_media::rtmp`.

pub mod ingest;
pub mod recorder;
pub mod thumbnail;
pub mod transcode;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moim_media::segmenter::{self, Segmenter};
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::domain::events::{Broker, Event, RoomEvent, Subscriber};
use crate::domain::Streams;
use crate::metrics::Metrics;
use crate::storage::blobs::Blobs;
use crate::storage::{self, now_ms, Db};
use crate::views::LiveView;

/// How long an ended broadcast's playlist (with `EXT-X-ENDLIST`) stays readable.
const ENDED_LINGER: Duration = Duration::from_secs(30);
/// How often a live thumbnail is refreshed.
const THUMBNAIL_EVERY: Duration = Duration::from_secs(10);

/// Whether a publisher is attached to a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publisher {
    /// Connection id of the publisher.
    Connected(u64),
    /// Gone since then; may come back within the grace period.
    Away(Instant),
    Ended,
}

/// One broadcast: a room's live window, its publisher and its recording.
pub struct Broadcast {
    /// Random id in segment URLs, so a new broadcast never reuses cached URLs.
    pub id: String,
    pub slug: String,
    pub room_id: i64,
    pub started_at: i64,
    /// The source rendition's live window.
    pub seg: Arc<Mutex<Segmenter>>,
    seg_cfg: segmenter::Config,
    /// Lower renditions, once the transcoder has started (kept across publisher reconnects).
    pub rungs: Mutex<Vec<Arc<transcode::Rung>>>,
    transcoder: Mutex<Option<transcode::Handle>>,
    /// Bumped whenever a part or segment appears or the broadcast ends: blocked playlist and
    /// part requests wait on it.
    pub changed: watch::Sender<u64>,
    publisher: Mutex<Publisher>,
    /// Cancelled to disconnect the publisher (key rotated, room deleted, shutdown).
    pub kick: CancellationToken,
    /// The room as it was when the broadcast started (owner, title, recording on or off).
    room: crate::storage::rooms::Room,
    /// Started with the first media, so a publisher that never sends any, or loses a race for
    /// the room, leaves no empty video behind; `None` inside when recording is off or failed.
    recorder: tokio::sync::OnceCell<Option<mpsc::Sender<recorder::Op>>>,
    /// Serialises "drain the segmenter, hand the events to the recorder" between the ingest
    /// task and `Live::end`.
    record_order: tokio::sync::Mutex<()>,
    /// Rendered media playlists by rendition, with the `changed` version they show.
    playlists: Mutex<HashMap<String, (u64, Bytes)>>,
    /// HLS clients by hash, with when they last fetched a playlist.
    hls_clients: Mutex<HashMap<u64, Instant>>,
    /// Latest thumbnail, and when one was last asked of ffmpeg.
    thumbnail: Mutex<(Option<Bytes>, Option<Instant>)>,
}

impl Broadcast {
    /// Wakes everyone waiting for a change.
    pub fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// The broadcast has ended (the playlist has `EXT-X-ENDLIST`).
    pub fn ended(&self) -> bool {
        *self.publisher.lock() == Publisher::Ended
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
    fn refresh_thumbnail(self: &Arc<Self>, tasks: &TaskTracker, epoch: u32, segment: &Bytes) {
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

/// A keyed hash of a client's address and user agent: the same browser's WebSocket and HLS
/// requests hash alike, so a viewer is counted once; the key is random per process, so the hash
/// says nothing about the address.
pub fn client_hash(ip: std::net::IpAddr, headers: &axum::http::HeaderMap) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = KEY.get_or_init(Default::default).build_hasher();
    std::hash::Hash::hash(&ip, &mut h);
    if let Some(ua) = headers.get(axum::http::header::USER_AGENT) {
        h.write(ua.as_bytes());
    }
    h.finish()
}

/// URL of a room's live multivariant playlist.
pub fn hls_url(slug: &str) -> String {
    format!("/live/{slug}/index.m3u8")
}

/// Why a publish was refused (logged; the encoder just sees the connection close).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("unknown stream key")]
    UnknownKey,
    #[error("the room already has a publisher")]
    AlreadyLive,
    #[error("too many broadcasts at once (limit {0})")]
    TooMany(usize),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("database: {0}")]
    Db(#[from] storage::DbError),
}

/// What a transcoder's internal stream key publishes to.
type InternalKey = (std::sync::Weak<Broadcast>, Arc<transcode::Rung>);

/// The broadcasts running now; cheap to clone.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    /// Where the transcoder publishes its rungs back to us.
    rtmp_addr: std::net::SocketAddr,
    /// Internal keys of transcoder rungs.
    internal: Mutex<HashMap<String, InternalKey>>,
    db: Db,
    blobs: Arc<dyn Blobs>,
    broker: Arc<dyn Broker>,
    config: Arc<Config>,
    broadcasts: Mutex<HashMap<String, Arc<Broadcast>>>,
    /// Ingest connections, grace timers and recorders: waited for at shutdown.
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Live {
    pub fn new(
        db: Db,
        blobs: Arc<dyn Blobs>,
        broker: Arc<dyn Broker>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        rtmp_addr: std::net::SocketAddr,
    ) -> Live {
        // The transcoder connects to us; an unspecified listen address means loopback.
        let mut rtmp_addr = rtmp_addr;
        if rtmp_addr.ip().is_unspecified() {
            rtmp_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Live {
            inner: Arc::new(Inner {
                metrics,
                rtmp_addr,
                internal: Mutex::new(HashMap::new()),
                db,
                blobs,
                broker,
                config,
                broadcasts: Mutex::new(HashMap::new()),
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Where recordings are stored.
    pub fn blobs(&self) -> &Arc<dyn Blobs> {
        &self.inner.blobs
    }

    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    pub fn stopping(&self) -> &CancellationToken {
        &self.inner.stop
    }

    /// The room's broadcast, running or just ended.
    pub fn get(&self, slug: &str) -> Option<Arc<Broadcast>> {
        self.inner.broadcasts.lock().get(slug).cloned()
    }

    /// Live status for room views: only while the broadcast runs.
    pub fn status(&self, slug: &str) -> Option<LiveView> {
        let b = self.get(slug)?;
        if b.ended() {
            return None;
        }
        Some(b.view())
    }

    /// Broadcasts running now.
    pub fn running(&self) -> usize {
        self.inner
            .broadcasts
            .lock()
            .values()
            .filter(|b| !b.ended())
            .count()
    }

    /// A publisher presented `key`: attach it to the room's broadcast, continuing one in its
    /// grace period or starting a new one.
    pub async fn begin(&self, key: &str, conn_id: u64) -> Result<Arc<Broadcast>, Refusal> {
        if self.inner.stop.is_cancelled() {
            return Err(Refusal::ShuttingDown);
        }
        let pool = &self.inner.db.pool;
        let slug = storage::live::room_for_key(pool, key)
            .await?
            .ok_or(Refusal::UnknownKey)?;
        let room = storage::rooms::get(pool, &slug)
            .await?
            .ok_or(Refusal::UnknownKey)?;
        {
            let map = self.inner.broadcasts.lock();
            if let Some(b) = map.get(&slug) {
                let mut p = b.publisher.lock();
                match *p {
                    Publisher::Connected(_) => return Err(Refusal::AlreadyLive),
                    Publisher::Away(_) => {
                        *p = Publisher::Connected(conn_id);
                        tracing::info!(room = %slug, broadcast = %b.id, "publisher is back");
                        return Ok(b.clone());
                    }
                    Publisher::Ended => {} // replaced below
                }
            }
            if map.values().filter(|b| !b.ended()).count() >= self.inner.config.max_broadcasts {
                return Err(Refusal::TooMany(self.inner.config.max_broadcasts));
            }
        }
        let cfg = &self.inner.config;
        let seg_cfg = segmenter::Config {
            part_target_ms: cfg.hls_part_ms,
            segment_target_ms: cfg.hls_segment_ms,
            ..segmenter::Config::default()
        };
        let b = Arc::new(Broadcast {
            id: format!("{:08x}", rand::thread_rng().gen::<u32>()),
            slug: slug.clone(),
            room_id: room.id,
            started_at: now_ms(),
            seg: Arc::new(Mutex::new(Segmenter::new(seg_cfg.clone()))),
            seg_cfg,
            rungs: Mutex::new(Vec::new()),
            transcoder: Mutex::new(None),
            changed: watch::channel(0).0,
            publisher: Mutex::new(Publisher::Connected(conn_id)),
            kick: CancellationToken::new(),
            room,
            recorder: tokio::sync::OnceCell::new(),
            record_order: tokio::sync::Mutex::new(()),
            thumbnail: Mutex::new((None, None)),
            hls_clients: Mutex::new(HashMap::new()),
            playlists: Mutex::new(HashMap::new()),
        });
        {
            let mut map = self.inner.broadcasts.lock();
            // Two publishers racing for one room: the first in the map wins. Broadcasts may have
            // started elsewhere since the first check, too.
            if let Some(other) = map.get(&slug) {
                if !other.ended() {
                    return Err(Refusal::AlreadyLive);
                }
            }
            if map.values().filter(|b| !b.ended()).count() >= self.inner.config.max_broadcasts {
                return Err(Refusal::TooMany(self.inner.config.max_broadcasts));
            }
            map.insert(slug.clone(), b.clone());
        }
        tracing::info!(room = %slug, broadcast = %b.id, "broadcast started");
        self.tell_room(&b, true).await;
        Ok(b)
    }

    /// The publisher's connection ended: keep the broadcast for the grace period, then end it
    /// unless the publisher came back.
    pub fn detach(&self, b: &Arc<Broadcast>, conn_id: u64) {
        let away_since = Instant::now();
        {
            let mut p = b.publisher.lock();
            if *p != Publisher::Connected(conn_id) {
                return;
            }
            *p = Publisher::Away(away_since);
        }
        self.stop_transcoder(b, false);
        {
            let mut seg = b.seg.lock();
            seg.break_stream();
            b.notify(); // under the lock: see `Broadcast::playlist`
        }
        let grace = self.inner.config.reconnect_grace;
        let live = self.clone();
        let b = b.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = live.inner.stop.cancelled() => {}
                _ = b.kick.cancelled() => {}
            }
            // Only this absence ends the broadcast: if the publisher came back (and maybe left
            // again, with a grace timer of its own), this timer is stale.
            live.end_if(&b, Some(Publisher::Away(away_since))).await;
        });
    }

    /// Ends a broadcast now: closes the playlist, finishes the recording, tells the room.
    pub async fn end(&self, b: &Arc<Broadcast>) {
        self.end_if(b, None).await;
    }

    /// Ends a broadcast if its publisher state is `expected` (any state but ended when `None`);
    /// checked and changed under one lock, so a publisher returning at that instant is either
    /// kept or refused, never accepted and then cut off.
    async fn end_if(&self, b: &Arc<Broadcast>, expected: Option<Publisher>) {
        {
            let mut p = b.publisher.lock();
            if *p == Publisher::Ended || expected.is_some_and(|e| *p != e) {
                return;
            }
            *p = Publisher::Ended;
        }
        b.kick.cancel();
        self.stop_transcoder(b, true);
        {
            let rungs = b.rungs.lock();
            let mut internal = self.inner.internal.lock();
            for r in rungs.iter() {
                r.seg.lock().finish();
                internal.remove(&r.key);
            }
        }
        let _order = b.record_order.lock().await;
        let events: Vec<_> = {
            let mut seg = b.seg.lock();
            seg.finish();
            b.notify();
            std::iter::from_fn(|| seg.poll_event()).collect()
        };
        b.record(self, events).await;
        if let Some(Some(tx)) = b.recorder.get() {
            let _ = tx.send(recorder::Op::Finish).await;
        }
        drop(_order);
        tracing::info!(room = %b.slug, broadcast = %b.id, "broadcast ended");
        self.tell_room(b, false).await;
        // Keep the ended playlist around briefly so players see EXT-X-ENDLIST.
        let live = self.clone();
        let b = b.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(ENDED_LINGER) => {}
                _ = live.inner.stop.cancelled() => {}
            }
            let mut map = live.inner.broadcasts.lock();
            if map.get(&b.slug).is_some_and(|x| Arc::ptr_eq(x, &b)) {
                map.remove(&b.slug);
            }
        });
    }

    /// The broadcast and rung an internal (transcoder) key publishes to.
    pub fn rung_for_key(&self, key: &str) -> Option<(Arc<Broadcast>, Arc<transcode::Rung>)> {
        let internal = self.inner.internal.lock();
        let (b, rung) = internal.get(key)?;
        let b = b.upgrade()?;
        (!b.ended()).then(|| (b, rung.clone()))
    }

    /// Starts the transcoder for a source of `source_height`, unless transcoding is off or it
    /// runs already. `first`: FLV stream header and sequence header tags.
    pub fn start_transcoder(&self, b: &Arc<Broadcast>, source_height: u32, first: Vec<Bytes>) {
        let cfg = &self.inner.config;
        if !cfg.transcode || b.transcoder.lock().is_some() || b.ended() {
            return;
        }
        let rungs = transcode::rungs_for(b, cfg, source_height, &b.seg_cfg);
        if rungs.is_empty() {
            return; // the source is already the lowest rung
        }
        {
            let mut internal = self.inner.internal.lock();
            for r in &rungs {
                internal.insert(r.key.clone(), (Arc::downgrade(b), r.clone()));
            }
        }
        let handle = transcode::start(b, &rungs, self.inner.rtmp_addr, first, &self.inner.tasks);
        match handle {
            Some(h) => {
                tracing::info!(room = %b.slug, rungs = rungs.len(), "transcoding");
                let mut t = b.transcoder.lock();
                if b.ended() {
                    // `end` ran meanwhile and found no transcoder to stop.
                    h.stop(true);
                } else {
                    *t = Some(h);
                }
            }
            None => {
                // Nobody will publish these rungs: take them out of playlists and key lookup.
                let mut internal = self.inner.internal.lock();
                for r in &rungs {
                    r.failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    internal.remove(&r.key);
                }
            }
        }
    }

    /// Hands one source FLV tag to the transcoder, if it runs; stops it if it cannot keep up.
    pub fn feed_transcoder(&self, b: &Broadcast, tag: impl FnOnce() -> Bytes) {
        let mut t = b.transcoder.lock();
        if let Some(h) = t.as_ref() {
            match h.feed(tag()) {
                Ok(()) => {}
                Err(transcode::Stopped::Exited) => *t = None,
                Err(transcode::Stopped::Behind) => {
                    tracing::warn!(room = %b.slug, "transcoder fell behind; stopping it");
                    h.stop(true);
                    *t = None;
                }
            }
        }
    }

    /// Stops the transcoder. `for_good`: the broadcast is ending; otherwise (publisher away)
    /// the rungs stay listed, waiting for the publisher and a new transcoder.
    fn stop_transcoder(&self, b: &Broadcast, for_good: bool) {
        if let Some(h) = b.transcoder.lock().take() {
            h.stop(for_good);
        }
    }

    /// Ends the room's broadcast, if any (key rotated, room deleted).
    pub async fn end_room(&self, slug: &str) {
        if let Some(b) = self.get(slug) {
            self.end(&b).await;
        }
    }

    /// Shutdown: refuse new publishers, end every broadcast cleanly, wait for recorders.
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        let all: Vec<_> = self.inner.broadcasts.lock().values().cloned().collect();
        for b in all {
            self.end(&b).await;
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    async fn tell_room(&self, b: &Arc<Broadcast>, started: bool) {
        let event = if started {
            RoomEvent::LiveStarted { live: b.view() }
        } else {
            // A slow end can finish after the room's next broadcast began: stay quiet then.
            let newer = self
                .get(&b.slug)
                .is_some_and(|x| !Arc::ptr_eq(&x, b) && !x.ended());
            if newer {
                return;
            }
            RoomEvent::LiveEnded
        };
        self.inner
            .broker
            .publish(Event::room(b.room_id, event))
            .await;
    }
}

impl Streams for Live {
    fn status(&self, slug: &str) -> Option<LiveView> {
        Live::status(self, slug)
    }

    fn stream_only_viewers(&self, slug: &str, connected: &std::collections::HashSet<u64>) -> usize {
        match self.get(slug) {
            Some(b) if !b.ended() => b.hls_only_viewers(connected),
            _ => 0,
        }
    }
}

impl Subscriber for Live {
    fn handle<'a>(&'a self, event: &'a Event) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            // A deleted room or a replaced key ends the broadcast running on it.
            if let Event::Room {
                event: RoomEvent::Deleted { slug } | RoomEvent::StreamKeyRotated { slug },
                ..
            } = event
            {
                self.end_room(slug).await;
            }
        })
    }
}
