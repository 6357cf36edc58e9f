//! Live broadcasting: the broadcasts running now, their publishers and their recordings.
//!
//! A broadcast belongs to a room and lives while its publisher is connected, plus a grace period
//! in which the same stream key may come back and continue it (viewers see a discontinuity, not
//! a new broadcast). *When* those things happen is decided by the sans-IO [`lifecycle`] core;
//! `Live` drives it (one lock around it and the map of broadcasts, one timer task) and carries
//! out what it says. Media flows: RTMP connection (`ingest`) → the broadcast's `Segmenter`
//! (moim-media, in memory: the live window) → HTTP (`http::live` reads the window and blocks on
//! `changed` for LL-HLS) and → the recorder (`recorder`, on disk, as a video).
//!
//! Owns no HTTP routing and no RTMP parsing; those are `http::live` and `moim_media::rtmp`.

mod broadcast;
pub mod ingest;
pub mod lifecycle;
pub mod recorder;
pub mod rtc;
pub mod thumbnail;
pub mod transcode;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moim_media::segmenter::{self, Segmenter};
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::LiveConfig;
use crate::domain::events::{Broker, Event, RoomEvent, Subscriber};
use crate::domain::Streams;
use crate::metrics::Metrics;
use crate::storage::blobs::Blobs;
use crate::storage::{self, now_ms, Db};
use crate::views::LiveView;
use lifecycle::{Input, Lifecycle, Output};

pub use broadcast::Broadcast;

/// How long an ended broadcast's playlist (with `EXT-X-ENDLIST`) stays readable.
const ENDED_LINGER: Duration = Duration::from_secs(30);

/// A keyed hash of a client's address (an IPv6 one by its /64): anonymous viewers count once
/// per address, however many sockets, players or user agents one machine opens, and a
/// browser's WebSocket and HLS requests hash alike, so its viewer is counted once. The key is
/// random per process, so the hash says nothing about the address.
pub fn client_hash(ip: std::net::IpAddr) -> u64 {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    KEY.get_or_init(Default::default)
        .hash_one(crate::limits::address_key(ip))
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
    /// Private rooms do not broadcast: live media is served to anyone with the room's name.
    #[error("private rooms cannot broadcast")]
    PrivateRoom,
    #[error(transparent)]
    Lifecycle(#[from] lifecycle::Refusal),
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
    config: Arc<LiveConfig>,
    /// The lifecycle and the broadcasts it has, under one lock so they always agree.
    core: Mutex<Core>,
    /// Wakes the lifecycle's timer when a deadline may have moved.
    clock: tokio::sync::Notify,
    /// Ingest connections, the timer and recorders: waited for at shutdown.
    tasks: TaskTracker,
    stop: CancellationToken,
}

struct Core {
    lifecycle: Lifecycle,
    /// Each room's broadcast, running or lingering after its end.
    broadcasts: HashMap<String, Arc<Broadcast>>,
}

/// What the lifecycle asked for that takes more than the lock: done after it is released.
enum Effect {
    Started(Arc<Broadcast>),
    Away(Arc<Broadcast>),
    Ended(Arc<Broadcast>),
}

impl Live {
    pub fn new(
        db: Db,
        blobs: Arc<dyn Blobs>,
        broker: Arc<dyn Broker>,
        config: Arc<LiveConfig>,
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
                core: Mutex::new(Core {
                    lifecycle: Lifecycle::new(lifecycle::Limits {
                        max_broadcasts: config.max_broadcasts,
                        grace: config.reconnect_grace(),
                        linger: ENDED_LINGER,
                    }),
                    broadcasts: HashMap::new(),
                }),
                clock: tokio::sync::Notify::new(),
                config,
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
            }),
        }
    }

    pub fn config(&self) -> &LiveConfig {
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
        self.inner.core.lock().broadcasts.get(slug).cloned()
    }

    /// Live status for room views: only while the broadcast runs.
    pub fn status(&self, slug: &str) -> Option<LiveView> {
        let b = self.get(slug)?;
        if b.ended() {
            return None;
        }
        Some(b.view())
    }

    /// Whether the room's publisher is connected now (by RTMP or WebRTC).
    pub fn publishing(&self, slug: &str) -> bool {
        self.inner.core.lock().lifecycle.connected(slug)
    }

    /// Broadcasts running now.
    pub fn running(&self) -> usize {
        self.inner.core.lock().lifecycle.running()
    }

    /// A publisher presented `key`: attach it to the room's broadcast, continuing one in its
    /// grace period or starting a new one.
    pub async fn begin(&self, key: &str, conn_id: u64) -> Result<Arc<Broadcast>, Refusal> {
        let pool = &self.inner.db.pool;
        let slug = storage::live::room_for_key(pool, key)
            .await?
            .ok_or(Refusal::UnknownKey)?;
        self.begin_room(&slug, conn_id).await
    }

    /// A publisher already known to hold room `slug`'s key (WHIP checked it) connected on
    /// `conn_id`: as [`Live::begin`].
    pub async fn begin_room(&self, slug: &str, conn_id: u64) -> Result<Arc<Broadcast>, Refusal> {
        let pool = &self.inner.db.pool;
        let room = storage::rooms::get(pool, slug)
            .await?
            .ok_or(Refusal::UnknownKey)?;
        if room.private {
            return Err(Refusal::PrivateRoom);
        }
        let input = Input::Publish {
            slug,
            conn: conn_id,
        };
        let b = self.drive(input, Some(&room), false).await?;
        b.ok_or(Refusal::UnknownKey)
    }

    /// The publisher's connection ended without unpublishing: the lifecycle keeps the broadcast
    /// for the grace period, then ends it unless the publisher came back.
    pub async fn detach(&self, b: &Arc<Broadcast>, conn_id: u64) {
        let input = Input::Dropped {
            slug: &b.slug,
            conn: conn_id,
        };
        let _ = self.drive(input, None, false).await;
    }

    /// Ends a broadcast now: closes the playlist, finishes the recording, tells the room.
    pub async fn end(&self, b: &Arc<Broadcast>) {
        let input = Input::End {
            slug: &b.slug,
            id: b.num,
        };
        let _ = self.drive(input, None, false).await;
    }

    /// Feeds the lifecycle one input and carries out what it says: the map and the `ended`
    /// flags change under its lock, the slower work after. For a publish (`room` given),
    /// returns the broadcast the publisher is now attached to. `detached`: the end of a
    /// broadcast runs as its own task (the timer must not wait on one slow recording while
    /// other rooms' deadlines pass); otherwise the caller waits for it.
    async fn drive(
        &self,
        input: Input<'_>,
        room: Option<&crate::storage::rooms::Room>,
        detached: bool,
    ) -> Result<Option<Arc<Broadcast>>, Refusal> {
        let mut attached = None;
        let mut effects = Vec::new();
        {
            let mut core = self.inner.core.lock();
            core.lifecycle.handle(input, Instant::now())?;
            while let Some(out) = core.lifecycle.poll_output() {
                match out {
                    Output::Started { slug, id } => {
                        let Some(room) = room else { continue };
                        let b = Arc::new(self.new_broadcast(slug.clone(), id, room.clone()));
                        core.broadcasts.insert(slug, b.clone());
                        attached = Some(b.clone());
                        effects.push(Effect::Started(b));
                    }
                    Output::Resumed { slug, .. } => {
                        if let Some(b) = core.broadcasts.get(&slug) {
                            tracing::info!(room = %slug, broadcast = %b.id, "publisher is back");
                            attached = Some(b.clone());
                        }
                    }
                    Output::Away { slug, .. } => {
                        if let Some(b) = core.broadcasts.get(&slug) {
                            effects.push(Effect::Away(b.clone()));
                        }
                    }
                    Output::Ended { slug, .. } => {
                        if let Some(b) = core.broadcasts.get(&slug) {
                            b.ended.store(true, Ordering::Release);
                            effects.push(Effect::Ended(b.clone()));
                        }
                    }
                    Output::Forgotten { slug, id } => {
                        if core.broadcasts.get(&slug).is_some_and(|b| b.num == id) {
                            core.broadcasts.remove(&slug);
                        }
                    }
                }
            }
        }
        // A deadline may have been set or moved.
        self.inner.clock.notify_one();
        for effect in effects {
            match effect {
                Effect::Started(b) => {
                    tracing::info!(room = %b.slug, broadcast = %b.id, "broadcast started");
                    self.tell_room(&b, true).await;
                }
                Effect::Away(b) => {
                    self.stop_transcoder(&b, false);
                    let mut seg = b.seg.lock();
                    seg.break_stream();
                    b.notify(); // under the lock: see `Broadcast::playlist`
                }
                Effect::Ended(b) if detached => {
                    let live = self.clone();
                    self.inner.tasks.spawn(async move { live.finish(&b).await });
                }
                Effect::Ended(b) => self.finish(&b).await,
            }
        }
        Ok(attached)
    }

    fn new_broadcast(
        &self,
        slug: String,
        num: lifecycle::BroadcastId,
        room: crate::storage::rooms::Room,
    ) -> Broadcast {
        let cfg = &self.inner.config;
        let seg_cfg = segmenter::Config {
            part_target_ms: cfg.hls_part_ms,
            segment_target_ms: cfg.hls_segment_ms,
            ..segmenter::Config::default()
        };
        Broadcast {
            id: format!("{:08x}", rand::thread_rng().gen::<u32>()),
            slug,
            room_id: room.id,
            started_at: now_ms(),
            seg: Arc::new(Mutex::new(Segmenter::new(seg_cfg.clone()))),
            seg_cfg,
            rungs: Mutex::new(Vec::new()),
            transcoder: Mutex::new(None),
            changed: watch::channel(0).0,
            num,
            ended: AtomicBool::new(false),
            kick: CancellationToken::new(),
            room,
            recorder: tokio::sync::OnceCell::new(),
            record_order: tokio::sync::Mutex::new(()),
            thumbnail: Mutex::new((None, None)),
            hls_clients: Mutex::new(HashMap::new()),
            playlists: Mutex::new(HashMap::new()),
        }
    }

    /// Runs the lifecycle's deadlines (grace periods, lingering) until shutdown.
    pub async fn run_clock(self) {
        loop {
            let next = self.inner.core.lock().lifecycle.poll_timeout();
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = self.inner.clock.notified() => continue,
                _ = sleep => {}
            }
            let _ = self.drive(Input::Tick, None, true).await;
        }
    }

    /// The end of a broadcast the lifecycle ended: disconnect the publisher, stop the
    /// transcoder, close the playlists, finish the recording, tell the room.
    async fn finish(&self, b: &Arc<Broadcast>) {
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
        let _ = self.drive(Input::Shutdown, None, false).await;
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

    fn stream_only_viewers(
        &self,
        slug: &str,
        connected: &dyn Fn() -> std::collections::HashSet<u64>,
    ) -> usize {
        match self.get(slug) {
            Some(b) if !b.ended() => b.hls_only_viewers(&connected()),
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
