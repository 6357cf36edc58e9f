//! Real-time rooms: the hub of connected rooms, their fan-out (`conn`), presence (viewer counts),
//! chat rules (rate limit, slow mode, sanctions, blocked terms) and the group-commit writer.
//!
//! A room is loaded into the hub while anyone is connected and dropped when the last one leaves;
//! the database stays the source of truth. The hub learns of changes only from the event path
//! (it is a `domain::events::Subscriber`) and answers `domain::Presence`. Owns no HTTP routing
//! and no permission rules (those are `domain::policy`).

pub mod conn;
mod events;
pub mod inbox;
pub mod protocol;
pub mod session;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use moim_filter::Filter;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::limiter::Bucket;
use crate::domain::policy::Standing;
use crate::domain::{Presence, Streams};
use crate::metrics::Metrics;
use crate::storage::rooms::{Room, SanctionKind};
use crate::storage::users::User;
use crate::storage::{self, now_ms, Db};
use crate::views::LiveView;
use protocol::ServerFrame;

/// A per-connection flag the hub raises to end a session: cheap to poll on every turn of the
/// session loop (one atomic load and a waker registration, no lock shared between sessions).
#[derive(Default)]
pub struct Signal {
    state: AtomicU8,
    waker: AtomicWaker,
}

impl Signal {
    pub const NONE: u8 = 0;
    /// The server is shutting down: tell the client to reconnect.
    pub const RESTART: u8 = 1;
    /// The connection must end now (its queue overflowed while being kicked).
    pub const KICK: u8 = 2;

    /// Raises the signal; the first raise wins.
    pub fn raise(&self, what: u8) {
        let _ = self
            .state
            .compare_exchange(Self::NONE, what, Ordering::AcqRel, Ordering::Acquire);
        self.waker.wake();
    }

    /// Ready with the raised value once raised.
    pub fn poll_raised(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<u8> {
        let v = self.state.load(Ordering::Acquire);
        if v != Self::NONE {
            return std::task::Poll::Ready(v);
        }
        self.waker.register(cx.waker());
        match self.state.load(Ordering::Acquire) {
            Self::NONE => std::task::Poll::Pending,
            v => std::task::Poll::Ready(v),
        }
    }
}

/// Chat limits from configuration.
#[derive(Debug, Clone, Copy)]
pub struct ChatLimits {
    pub burst: u32,
    pub per_s: f64,
}

/// Mutable facts about a loaded room, kept in step with the database by the room's events.
#[derive(Debug, Clone)]
pub struct RoomInfo {
    pub owner_id: i64,
    /// Seen by its members only.
    pub private: bool,
    pub slow_mode_s: i64,
    pub moderators: HashSet<i64>,
    /// (user, kind) → expiry in unix ms (`None` = permanent).
    pub sanctions: HashMap<(i64, SanctionKind), Option<i64>>,
    /// The room's last seq when these facts were read: a room loaded from them delivers the
    /// messages after it, backfilling from the database what does not reach it otherwise.
    pub seq_floor: i64,
}

impl RoomInfo {
    /// Where `user` stands in the room (see `domain::policy`).
    pub fn standing(&self, user: Option<&User>) -> Standing {
        let is_moderator = user.is_some_and(|u| self.moderators.contains(&u.id));
        Standing::of(user, self.owner_id, is_moderator)
    }

    /// Expiry of an active sanction (`Some(None)` = permanent), if one is in force.
    pub fn sanction(&self, user_id: i64, kind: SanctionKind, now: i64) -> Option<Option<i64>> {
        match self.sanctions.get(&(user_id, kind)) {
            Some(None) => Some(None),
            Some(Some(exp)) if *exp > now => Some(Some(*exp)),
            _ => None,
        }
    }
}

struct Conn {
    io: Arc<conn::ConnIo>,
    viewer_key: ViewerKey,
    /// Keyed hash of the client's address, to recognise the same viewer's HLS requests and to
    /// count anonymous viewers per address (see `live::client_hash`).
    client: u64,
    user_id: Option<i64>,
    signal: Arc<Signal>,
}

/// Frames a room may have waiting for its fan-out task.
const FANOUT_QUEUE: usize = 1024;

/// A frame on its way to a room's connections.
struct Outgoing {
    seq: i64,
    wire: bytes::Bytes,
    at: Instant,
    /// Another version of the frame for the connections of these users (a poll's count for
    /// those who voted).
    alt: Option<(bytes::Bytes, Arc<HashSet<i64>>)>,
}

/// Members whose map views a room relays at most; more are refused with `map_full`.
pub const MAX_MAP_MEMBERS: usize = 100;
/// A member's view is relayed at most once per this (10 a second).
pub const MAP_RELAY_EVERY: Duration = Duration::from_millis(100);

/// The room's map as its connections share it: where each member looks (memory only).
#[derive(Default)]
pub struct MapRoom {
    /// Each member's latest relayed view, by user id.
    pub views: HashMap<i64, Arc<crate::views::MapViewView>>,
    /// Each member's relay pacing.
    relay: HashMap<i64, Relay>,
}

#[derive(Default)]
struct Relay {
    last: Option<Instant>,
    /// A view that came too soon, sent when the interval ends (the latest wins).
    pending: Option<crate::views::MapViewView>,
}

/// What [`RoomState::pace_view`] decided.
pub enum Paced {
    /// Relay this now.
    Now(crate::views::MapViewView),
    /// Held; relay what is pending after this long (the caller schedules it).
    Later(Duration),
    /// Held behind one already scheduled.
    Queued,
    /// The room's map has [`MAX_MAP_MEMBERS`] members already.
    Full,
}

/// The `seq` of an [`Outgoing`] that carries nothing and asks the fan-out to deliver what the
/// database holds beyond what it has sent (after the broker reconnects, or when the database
/// is ahead of what reached this node).
const CATCH_UP: i64 = -1;
/// Messages a fan-out backfills at once at most (and at most half a connection's queue); a
/// longer gap sends the room's connections to resume with `since` instead.
const MAX_BACKFILL: usize = 500;
/// How long a message that came ahead of a gap waits for the missing ones (usually a publish
/// away on another node) before they are read from the database. Waiting keeps what the
/// database does not hold, such as the sender's `nonce`, and spares a read.
const REORDER_WAIT: Duration = Duration::from_millis(30);

/// A room's fan-out task: delivers frames in order until the room is dropped. Chat messages
/// leave it exactly once each, in seq order, whatever order they come in and however many
/// paths bring them (this node's writer, other nodes through the broker): a seq at or below
/// the last one sent is dropped, and a gap is waited on for [`REORDER_WAIT`], then filled from
/// the database. `last` starts at the room's seq before it was loaded here, so nothing
/// committed since is skipped.
async fn fanout_loop(
    room: std::sync::Weak<RoomState>,
    mut rx: mpsc::Receiver<Outgoing>,
    db: Db,
    mut last: i64,
    max_backfill: usize,
) {
    // Frames in arrival order that wait behind a gap.
    let mut held: std::collections::VecDeque<Outgoing> = std::collections::VecDeque::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let (got, waited) = match deadline {
            Some(d) => tokio::select! {
                biased;
                o = rx.recv() => (Some(o), false),
                _ = tokio::time::sleep_until(d) => (None, true),
            },
            None => (Some(rx.recv().await), false),
        };
        match got {
            Some(None) => break,
            Some(Some(out)) => held.push_back(out),
            None => {}
        }
        let Some(room) = room.upgrade() else { break };
        let mut fill = waited;
        while let Some(front) = held.front() {
            let seq = front.seq;
            if seq == CATCH_UP {
                held.pop_front();
                match storage::messages::last_seq(&db.pool, room.id).await {
                    Ok(l) if l > last => last = room.backfill(&db, last, l, max_backfill).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, room = room.slug, "reading the room's last seq failed");
                        room.lagged_all();
                    }
                }
                continue;
            }
            if seq > last + 1 {
                // The next one may be further back in the queue: it goes first.
                if let Some(i) = held.iter().position(|o| o.seq == last + 1) {
                    let o = held.remove(i).expect("found");
                    last = o.seq;
                    room.deliver(&o);
                    continue;
                }
                if !fill {
                    break;
                }
                last = room.backfill(&db, last, seq - 1, max_backfill).await;
                fill = false;
                continue;
            }
            let out = held.pop_front().expect("front");
            if out.seq > 0 {
                if out.seq <= last {
                    continue;
                }
                last = out.seq;
            }
            room.deliver(&out);
        }
        // Something waits behind a gap: the missing messages get a moment, from the first wait.
        deadline = match (held.is_empty(), deadline) {
            (true, _) => None,
            (false, Some(d)) if !waited => Some(d),
            (false, _) => Some(tokio::time::Instant::now() + REORDER_WAIT),
        };
        room.delivered.store(last, Ordering::Relaxed);
    }
}

/// Who counts as one viewer: a user across all their tabs and devices, or every anonymous
/// connection from one address (so one machine cannot inflate a count or a ranking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewerKey {
    User(i64),
    Anon(u64),
}

/// A room loaded in the hub.
pub struct RoomState {
    pub id: i64,
    pub slug: String,
    pub info: RwLock<RoomInfo>,
    conns: Mutex<HashMap<u64, Conn>>,
    viewers_sent: AtomicUsize,
    /// Viewers watching the stream without a WebSocket here (asked of `live` every tick).
    extra_viewers: AtomicUsize,
    metrics: Arc<Metrics>,
    fanout: mpsc::Sender<Outgoing>,
    /// Per-user rate-limit bucket and time of last message (for slow mode).
    pacing: Mutex<HashMap<i64, (Bucket, Option<Instant>)>>,
    /// Where members look on the room's map.
    pub map: Mutex<MapRoom>,
    /// The last chat seq the fan-out has delivered.
    delivered: std::sync::atomic::AtomicI64,
    /// Bumped before every change an event makes to `info`, so a reread of the database does not
    /// put back what such a change replaced.
    info_gen: AtomicU64,
}

impl RoomState {
    /// Distinct viewers: connected here, plus those only watching the stream.
    pub fn viewers(&self) -> usize {
        let conns = self.conns.lock();
        let keys: HashSet<ViewerKey> = conns.values().map(|c| c.viewer_key).collect();
        keys.len() + self.extra_viewers.load(Ordering::Relaxed)
    }

    /// Client hashes of the connections.
    pub fn clients(&self) -> HashSet<u64> {
        self.conns.lock().values().map(|c| c.client).collect()
    }

    /// Sends a frame to every connection in the room, in order with the room's other frames.
    /// It is framed once here and handed to the room's fan-out task, so a huge room does not hold
    /// up the caller (the chat writer serves every room). Waits only if that task is far behind.
    pub async fn broadcast(&self, seq: i64, text: String) {
        let out = Outgoing {
            seq,
            wire: conn::wire_text(&text),
            at: Instant::now(),
            alt: None,
        };
        // The task lives as long as this room; a closed channel cannot happen while `self` does.
        let _ = self.fanout.send(out).await;
    }

    /// Like [`RoomState::broadcast`] (unsequenced), but the connections of `users` get `alt`.
    pub async fn broadcast_split(&self, text: String, alt: String, users: HashSet<i64>) {
        let out = Outgoing {
            seq: 0,
            wire: conn::wire_text(&text),
            at: Instant::now(),
            alt: Some((conn::wire_text(&alt), Arc::new(users))),
        };
        let _ = self.fanout.send(out).await;
    }

    /// Delivers the stored messages with `last < seq <= upto` that did not reach the fan-out
    /// (lost between nodes, or late); returns the new last seq. A gap longer than `max`, or a
    /// database error, sends every connection to resume with `since`.
    async fn backfill(&self, db: &Db, last: i64, upto: i64, max: usize) -> i64 {
        let rows = if upto - last > max as i64 {
            None
        } else {
            match storage::messages::newest_between(&db.pool, self.id, last, upto + 1, max as i64)
                .await
            {
                Ok(rows) => Some(rows),
                Err(e) => {
                    tracing::warn!(error = %e, room = self.slug, "backfilling the room's chat failed");
                    None
                }
            }
        };
        let Some(rows) = rows else {
            self.lagged_all();
            return upto;
        };
        self.metrics
            .chat_backfilled
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        for m in &rows {
            let view = crate::views::MessageView::from(m);
            self.deliver(&Outgoing {
                seq: m.seq,
                wire: conn::wire_text(&protocol::ServerFrame::Message(&view).encode()),
                at: Instant::now(),
                alt: None,
            });
        }
        upto
    }

    /// Called before an event changes `info` (see `info_gen`).
    pub(crate) fn info_changing(&self) {
        self.info_gen.fetch_add(1, Ordering::SeqCst);
    }

    /// Sends every connection to resume with `since` (what it missed is too much to send).
    fn lagged_all(&self) {
        let frame = protocol::ServerFrame::Reconnect { reason: "lagged" }.encode();
        self.kick_all(&frame, session::CLOSE_LAGGED);
    }

    /// Asks the fan-out to deliver whatever the database holds beyond what it has sent.
    async fn catch_up(&self) {
        let out = Outgoing {
            seq: CATCH_UP,
            wire: bytes::Bytes::new(),
            at: Instant::now(),
            alt: None,
        };
        let _ = self.fanout.send(out).await;
    }

    /// Writes one frame to every connection (see `conn`).
    fn deliver(&self, out: &Outgoing) {
        let conns = self.conns.lock();
        for c in conns.values() {
            let wire = match &out.alt {
                Some((alt, users)) if c.user_id.is_some_and(|u| users.contains(&u)) => alt,
                _ => &out.wire,
            };
            if c.io.send(out.seq, wire.clone()) == conn::Sent::Ok && out.seq != 0 {
                self.metrics.messages_out.fetch_add(1, Ordering::Relaxed);
                self.metrics.fanout.observe(out.at.elapsed());
            }
        }
    }

    /// Applies rate limit and slow mode for a non-moderator; `Err((code, wait))` when refused.
    pub fn pace(
        &self,
        user_id: i64,
        limits: ChatLimits,
        slow_mode_s: i64,
        now: Instant,
    ) -> Result<(), (&'static str, Duration)> {
        let mut pacing = self.pacing.lock();
        let (bucket, last) = pacing
            .entry(user_id)
            .or_insert_with(|| (Bucket::full(limits.burst, now), None));
        if slow_mode_s > 0 {
            if let Some(last) = last {
                let next = *last + Duration::from_secs(slow_mode_s as u64);
                if next > now {
                    return Err(("slow_mode", next - now));
                }
            }
        }
        if limits.burst > 0 {
            bucket
                .take(limits.burst, limits.per_s, now)
                .map_err(|wait| ("rate_limited", wait))?;
        }
        *last = Some(now);
        Ok(())
    }

    /// Paces a member's map view: at most one relayed per [`MAP_RELAY_EVERY`], the latest
    /// held back meanwhile.
    pub fn pace_view(&self, user_id: i64, view: crate::views::MapViewView, now: Instant) -> Paced {
        let mut map = self.map.lock();
        if !map.views.contains_key(&user_id)
            && !map.relay.contains_key(&user_id)
            && map.relay.len() >= MAX_MAP_MEMBERS
        {
            return Paced::Full;
        }
        let r = map.relay.entry(user_id).or_default();
        if r.pending.is_some() {
            r.pending = Some(view);
            return Paced::Queued;
        }
        match r.last {
            Some(last) if now.saturating_duration_since(last) < MAP_RELAY_EVERY => {
                r.pending = Some(view);
                Paced::Later(MAP_RELAY_EVERY - now.saturating_duration_since(last))
            }
            _ => {
                r.last = Some(now);
                Paced::Now(view)
            }
        }
    }

    /// The view held back for `user_id`, now due (see [`RoomState::pace_view`]).
    pub fn take_pending_view(
        &self,
        user_id: i64,
        now: Instant,
    ) -> Option<crate::views::MapViewView> {
        let mut map = self.map.lock();
        let r = map.relay.get_mut(&user_id)?;
        let v = r.pending.take()?;
        r.last = Some(now);
        Some(v)
    }

    /// Forgets a member's map view; true when there was one (the room is told they left).
    pub fn forget_view(&self, user_id: i64) -> bool {
        let mut map = self.map.lock();
        let had_relay = map.relay.remove(&user_id).is_some();
        map.views.remove(&user_id).is_some() || had_relay
    }

    /// The members' current map views.
    pub fn views(&self) -> Vec<crate::views::MapViewView> {
        self.map
            .lock()
            .views
            .values()
            .map(|v| (**v).clone())
            .collect()
    }

    /// Takes a connection out of the room's fan-out (as leaving does, ahead of it); true when
    /// it was its user's last one here.
    pub fn depart(&self, conn_id: u64, user_id: Option<i64>) -> bool {
        let mut conns = self.conns.lock();
        conns.remove(&conn_id);
        user_id.is_some_and(|u| !conns.values().any(|c| c.user_id == Some(u)))
    }

    /// Whether `user_id` has a connection to the room here.
    pub fn has_user(&self, user_id: i64) -> bool {
        self.conns
            .lock()
            .values()
            .any(|c| c.user_id == Some(user_id))
    }

    /// Closes every connection of `user_id` with a final frame.
    pub fn kick_user(&self, user_id: i64, frame: &str, code: u16) {
        self.kick(|c| c.user_id == Some(user_id), frame, code);
    }

    /// The signed-in users connected here.
    fn user_ids(&self) -> HashSet<i64> {
        self.conns
            .lock()
            .values()
            .filter_map(|c| c.user_id)
            .collect()
    }

    /// Closes every connection (room deleted).
    pub fn kick_all(&self, frame: &str, code: u16) {
        self.kick(|_| true, frame, code);
    }

    fn kick(&self, which: impl Fn(&Conn) -> bool, frame: &str, code: u16) {
        let last = [conn::wire_text(frame), conn::wire_close(code, "closed")];
        let conns = self.conns.lock();
        for c in conns.values().filter(|c| which(c)) {
            c.io.finish(false, &last);
            c.signal.raise(Signal::KICK);
        }
    }
}

/// Everything a connection needs to leave its room when it ends (a drop guard).
pub struct Membership {
    hub: Hub,
    pub room: Arc<RoomState>,
    pub conn_id: u64,
    pub signal: Arc<Signal>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.room, self.conn_id);
    }
}

/// The set of loaded rooms plus shared chat machinery; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    db: Db,
    rooms: Mutex<HashMap<i64, Arc<RoomState>>>,
    next_conn: AtomicU64,
    room_buffer: usize,
    pub limits: ChatLimits,
    filter: RwLock<Arc<Filter>>,
    writer: mpsc::Sender<writer::Pending>,
    metrics: Arc<Metrics>,
    streams: Arc<dyn Streams>,
    /// Rooms a WebRTC publisher sends to on this node.
    realtime: Mutex<std::collections::HashSet<i64>>,
    /// Rooms' voice chat members on this node.
    voice: Mutex<HashMap<i64, Vec<crate::views::VoiceMemberView>>>,
    /// This node's id among the site's nodes.
    node: u64,
    /// Wakes the task that rereads loaded rooms (see [`Hub::resync_soon`]).
    resync: Arc<tokio::sync::Notify>,
    /// Viewers on the other nodes: room → node → (count, when heard).
    others: Mutex<HashMap<i64, NodeCounts>>,
}

/// One room's viewers on other nodes: node → (count, when heard).
type NodeCounts = HashMap<u64, (usize, Instant)>;

/// Another node's viewer counts count this long after they were last heard.
const PRESENCE_TTL: Duration = Duration::from_secs(3);

impl Hub {
    /// Builds the hub; the returned writer must be driven by [`writer::run`].
    pub fn new(
        db: Db,
        limits: ChatLimits,
        room_buffer: usize,
        metrics: Arc<Metrics>,
        streams: Arc<dyn Streams>,
        node: u64,
    ) -> (Hub, mpsc::Receiver<writer::Pending>) {
        let (tx, rx) = mpsc::channel(4096);
        let hub = Hub {
            inner: Arc::new(HubInner {
                db,
                rooms: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(1),
                room_buffer,
                limits,
                filter: RwLock::new(Arc::new(Filter::new::<&str>(&[], &[]))),
                writer: tx,
                metrics,
                streams,
                realtime: Mutex::new(std::collections::HashSet::new()),
                voice: Mutex::new(HashMap::new()),
                node,
                others: Mutex::new(HashMap::new()),
                resync: Arc::new(tokio::sync::Notify::new()),
            }),
        };
        // Rereads run one at a time, off the event path; several asked at once are one.
        let notified = hub.inner.resync.clone();
        let weak = Arc::downgrade(&hub.inner);
        tokio::spawn(async move {
            loop {
                notified.notified().await;
                let Some(inner) = weak.upgrade() else { break };
                Hub { inner }.resync_all().await;
            }
        });
        (hub, rx)
    }

    /// Whether a WebRTC publisher sends room `room_id`'s broadcast (on this node).
    pub fn realtime(&self, room_id: i64) -> bool {
        self.inner.realtime.lock().contains(&room_id)
    }

    /// Who is in room `room_id`'s voice chat (on this node).
    pub fn voice(&self, room_id: i64) -> Vec<crate::views::VoiceMemberView> {
        self.inner
            .voice
            .lock()
            .get(&room_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Frames a connection may have queued before it must resync.
    pub fn room_buffer(&self) -> usize {
        self.inner.room_buffer
    }

    pub fn limits(&self) -> ChatLimits {
        self.inner.limits
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn filter(&self) -> Arc<Filter> {
        self.inner.filter.read().clone()
    }

    pub fn set_filter(&self, f: Filter) {
        *self.inner.filter.write() = Arc::new(f);
    }

    pub fn writer(&self) -> &mpsc::Sender<writer::Pending> {
        &self.inner.writer
    }

    /// A loaded room, if anyone is in it.
    pub fn loaded(&self, room_id: i64) -> Option<Arc<RoomState>> {
        self.inner.rooms.lock().get(&room_id).cloned()
    }

    /// The room's broadcast while one runs.
    pub fn live(&self, slug: &str) -> Option<LiveView> {
        self.inner.streams.status(slug)
    }

    /// The room's moderation facts: cached while it is loaded, else read from the database.
    pub async fn room_info(&self, room: &Room) -> Result<RoomInfo, storage::DbError> {
        match self.loaded(room.id) {
            Some(r) => {
                let mut info = r.info.read().clone();
                // Should the room unload before this connection joins, a new one starts here.
                info.seq_floor = r.delivered.load(Ordering::Relaxed);
                Ok(info)
            }
            None => self.load_info(room).await,
        }
    }

    /// Number of rooms with at least one connection.
    pub fn loaded_rooms(&self) -> usize {
        self.inner.rooms.lock().len()
    }

    /// Reads what the hub caches about a room from the database.
    pub async fn load_info(&self, room: &Room) -> Result<RoomInfo, storage::DbError> {
        let pool = &self.inner.db.pool;
        let seq_floor = storage::messages::last_seq(pool, room.id).await?;
        let moderators = storage::rooms::moderators(pool, room.id).await?;
        let sanctions = storage::rooms::active_sanctions(pool, room.id, now_ms()).await?;
        Ok(RoomInfo {
            owner_id: room.owner_id,
            private: room.private,
            slow_mode_s: room.slow_mode_s,
            moderators: moderators.into_iter().map(|(id, _)| id).collect(),
            sanctions: sanctions
                .into_iter()
                .map(|s| ((s.user_id, s.kind), s.expires_at))
                .collect(),
            seq_floor,
        })
    }

    /// Asks for [`Hub::resync_all`] soon, on its own task (the event path goes on meanwhile).
    pub fn resync_soon(&self) {
        self.inner.resync.notify_one();
    }

    /// After the broker reconnects: each loaded room rereads its moderation facts (a ban on
    /// another node meanwhile takes hold here) and delivers the messages it missed.
    pub async fn resync_all(&self) {
        match crate::domain::settings::blocked_terms(&self.inner.db).await {
            Ok(t) => self.set_filter(Filter::with_default_allowlist(&t.terms, &t.allowed)),
            Err(e) => tracing::warn!(error = %e, "rereading the blocked terms failed"),
        }
        let rooms: Vec<Arc<RoomState>> = self.inner.rooms.lock().values().cloned().collect();
        for room in rooms {
            // Read again should an event change the facts while they are read (its change is
            // newer than what was read).
            let mut read = None;
            for _ in 0..3 {
                let gen = room.info_gen.load(Ordering::SeqCst);
                let loaded = match storage::rooms::get_by_id(&self.inner.db.pool, room.id).await {
                    Ok(Some(r)) => self.load_info(&r).await.map(Some),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                let mut info = room.info.write();
                if room.info_gen.load(Ordering::SeqCst) != gen {
                    continue;
                }
                read = Some(loaded.map(|l| {
                    l.map(|mut l| {
                        l.seq_floor = info.seq_floor;
                        let became_private = l.private && !info.private;
                        *info = l;
                        became_private
                    })
                }));
                break;
            }
            let Some(read) = read else { continue };
            match read {
                Ok(Some(true)) => {
                    let frame = ServerFrame::Reconnect { reason: "private" }.encode();
                    room.kick_all(&frame, session::CLOSE_PRIVATE);
                    continue;
                }
                Ok(Some(false)) => {
                    let banned: Vec<i64> = {
                        let info = room.info.read();
                        let now = now_ms();
                        room.user_ids()
                            .into_iter()
                            .filter(|u| info.sanction(*u, SanctionKind::Ban, now).is_some())
                            .collect()
                    };
                    for u in banned {
                        let frame =
                            protocol::error_frame("banned", "you are banned from this room", None);
                        room.kick_user(u, &frame, session::CLOSE_BANNED);
                    }
                }
                Ok(None) => {
                    let frame =
                        protocol::error_frame("room_deleted", "this room was deleted", None);
                    room.kick_all(&frame, session::CLOSE_DELETED);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, room = room.slug, "rereading the room failed")
                }
            }
            room.catch_up().await;
        }
    }

    /// Registers a connection in a room (loading the room if needed). From here on the room's
    /// broadcasts reach `io`, held back until the session unpauses it after its welcome.
    pub fn join(
        &self,
        room: &Room,
        info: RoomInfo,
        user_id: Option<i64>,
        client: u64,
        io: Arc<conn::ConnIo>,
    ) -> Membership {
        let conn_id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let signal = Arc::new(Signal::default());
        let floor = info.seq_floor;
        let mut rooms = self.inner.rooms.lock();
        let state = rooms
            .entry(room.id)
            .or_insert_with(|| {
                Arc::new_cyclic(|weak| {
                    let (fanout, rx) = mpsc::channel(FANOUT_QUEUE);
                    tokio::spawn(fanout_loop(
                        weak.clone(),
                        rx,
                        self.inner.db.clone(),
                        floor,
                        MAX_BACKFILL.min(self.inner.room_buffer / 2).max(1),
                    ));
                    RoomState {
                        id: room.id,
                        slug: room.slug.clone(),
                        info: RwLock::new(info),
                        conns: Mutex::new(HashMap::new()),
                        viewers_sent: AtomicUsize::new(0),
                        extra_viewers: AtomicUsize::new(0),
                        metrics: self.inner.metrics.clone(),
                        fanout,
                        pacing: Mutex::new(HashMap::new()),
                        map: Mutex::new(MapRoom::default()),
                        delivered: std::sync::atomic::AtomicI64::new(floor),
                        info_gen: AtomicU64::new(0),
                    }
                })
            })
            .clone();
        state.conns.lock().insert(
            conn_id,
            Conn {
                io,
                viewer_key: user_id.map_or(ViewerKey::Anon(client), ViewerKey::User),
                client,
                user_id,
                signal: signal.clone(),
            },
        );
        drop(rooms);
        self.inner
            .metrics
            .connections
            .fetch_add(1, Ordering::Relaxed);
        Membership {
            hub: self.clone(),
            room: state,
            conn_id,
            signal,
        }
    }

    fn leave(&self, room: &Arc<RoomState>, conn_id: u64) {
        let mut rooms = self.inner.rooms.lock();
        let empty = {
            let mut conns = room.conns.lock();
            conns.remove(&conn_id);
            conns.is_empty()
        };
        if empty {
            rooms.remove(&room.id);
        }
        self.inner
            .metrics
            .connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Another node's viewer counts (see [`Event::Presence`](crate::domain::events::Event)):
    /// rooms it no longer lists are forgotten for it.
    pub fn presence(&self, node: u64, rooms: &[(i64, usize)]) {
        if node == self.inner.node {
            return;
        }
        let now = Instant::now();
        let listed: HashSet<i64> = rooms.iter().map(|(r, _)| *r).collect();
        let mut others = self.inner.others.lock();
        others.retain(|room, nodes| {
            if !listed.contains(room) {
                nodes.remove(&node);
            }
            nodes.retain(|_, (_, at)| now.duration_since(*at) < PRESENCE_TTL);
            !nodes.is_empty()
        });
        for (room, count) in rooms {
            others.entry(*room).or_default().insert(node, (*count, now));
        }
    }

    /// Viewers of a loaded room on every node of the site.
    pub fn site_viewers(&self, room: &RoomState) -> usize {
        room.viewers() + self.others_viewers(room.id)
    }

    /// Viewers of room `room_id` on the other nodes (as last heard, within [`PRESENCE_TTL`]).
    fn others_viewers(&self, room_id: i64) -> usize {
        let now = Instant::now();
        self.inner.others.lock().get(&room_id).map_or(0, |nodes| {
            nodes
                .values()
                .filter(|(_, at)| now.duration_since(*at) < PRESENCE_TTL)
                .map(|(n, _)| n)
                .sum()
        })
    }

    /// Tells every connected session that the server is restarting.
    pub fn restart_all(&self) {
        let rooms: Vec<Arc<RoomState>> = self.inner.rooms.lock().values().cloned().collect();
        for room in rooms {
            for c in room.conns.lock().values() {
                c.signal.raise(Signal::RESTART);
            }
        }
    }

    /// Sends coalesced viewer counts (at most once per tick, only when changed) until cancelled.
    /// With `broker` (several nodes), also tells the other nodes this node's counts each tick
    /// and adds theirs to what rooms are shown.
    pub async fn run_viewer_ticker(
        self,
        every: Duration,
        broker: Option<Arc<dyn crate::domain::events::Broker>>,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported = false;
        // Rooms the database was ahead of at the last tick: room → its seq then.
        let mut behind: HashMap<i64, i64> = HashMap::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let rooms: Vec<Arc<RoomState>> = self.inner.rooms.lock().values().cloned().collect();
            let mut here = Vec::with_capacity(rooms.len());
            for room in &rooms {
                let stream_only = self
                    .inner
                    .streams
                    .stream_only_viewers(&room.slug, &|| room.clients());
                room.extra_viewers.store(stream_only, Ordering::Relaxed);
                here.push((room.id, room.viewers()));
            }
            if let Some(b) = &broker {
                // Rooms whose messages the database has and this node did not hear (an event
                // lost between nodes with no later one to show the gap) catch up.
                let ids: Vec<i64> = rooms.iter().map(|r| r.id).collect();
                let mut next_behind = HashMap::new();
                for chunk in ids.chunks(500) {
                    match storage::messages::last_seqs(&self.inner.db.pool, chunk).await {
                        Ok(seqs) => {
                            for (id, seq) in seqs {
                                let Some(room) = rooms.iter().find(|r| r.id == id) else {
                                    continue;
                                };
                                // A message still on its way is not missing: only one the
                                // database had a tick ago and that has not arrived since.
                                let delivered = room.delivered.load(Ordering::Relaxed);
                                if behind.get(&id).is_some_and(|s| *s > delivered) {
                                    room.catch_up().await;
                                }
                                if seq > delivered {
                                    next_behind.insert(id, seq);
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "comparing rooms with the database failed")
                        }
                    }
                }
                behind = next_behind;
                // Once more after the last room empties, so the others forget it at once.
                if !here.is_empty() || reported {
                    reported = !here.is_empty();
                    b.publish(crate::domain::events::Event::Presence {
                        node: self.inner.node,
                        rooms: here.clone(),
                    })
                    .await;
                }
            }
            for (room, (_, local)) in rooms.into_iter().zip(here) {
                let count = local + self.others_viewers(room.id);
                if room.viewers_sent.swap(count, Ordering::Relaxed) != count {
                    room.broadcast(0, ServerFrame::Viewers { count }.encode())
                        .await;
                }
                // Forget pacing state that no longer limits anyone (keeps memory bounded).
                let now = Instant::now();
                let limits = self.inner.limits;
                let slow = Duration::from_secs(room.info.read().slow_mode_s.max(0) as u64);
                room.pacing.lock().retain(|_, (bucket, last)| {
                    let recent = last.is_some_and(|t| now.saturating_duration_since(t) < slow);
                    recent || !bucket.is_full(limits.burst, limits.per_s, now)
                });
            }
        }
    }
}

impl crate::domain::RoomChat for Hub {
    fn mask(&self, text: &str) -> String {
        self.filter().mask(text).into_owned()
    }

    fn notice(
        &self,
        room_id: i64,
        author: (i64, String),
        text: String,
        kind: &'static str,
    ) -> bool {
        let pending = writer::Pending {
            room_id,
            user_id: author.0,
            username: author.1,
            text,
            nonce: None,
            reply: None,
            kind: Some(kind),
        };
        self.inner.writer.try_send(pending).is_ok()
    }
}

impl Presence for Hub {
    fn viewers(&self, room_id: i64, slug: &str) -> usize {
        // A loaded room's count already includes stream-only viewers (set every tick).
        let here = match self.loaded(room_id) {
            Some(r) => r.viewers(),
            None => self.inner.streams.stream_only_viewers(slug, &HashSet::new),
        };
        here + self.others_viewers(room_id)
    }

    fn live(&self, slug: &str) -> Option<LiveView> {
        Hub::live(self, slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signal_wakes_a_waiting_session_and_keeps_the_first_value() {
        let s = Arc::new(Signal::default());
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { std::future::poll_fn(|cx| s.poll_raised(cx)).await })
        };
        tokio::task::yield_now().await;
        s.raise(Signal::RESTART);
        s.raise(Signal::KICK);
        assert_eq!(waiter.await.unwrap(), Signal::RESTART);
        // Already raised: ready at once.
        assert_eq!(
            std::future::poll_fn(|cx| s.poll_raised(cx)).await,
            Signal::RESTART
        );
    }
}
