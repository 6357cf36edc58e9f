//! Watch parties as a service: one [`Timeline`] per room with members in it, fed by the room
//! socket's `party.*` frames, by members coming and going, by the room's broadcasts starting and
//! ending, and by one timer per party (at [`Timeline::next_deadline`]). Every change is published
//! on the event path as [`RoomEvent::Party`]; the rooms hub turns it into `party.state` frames.
//!
//! A party lives on the node that holds it, in memory: it is made when the first member joins,
//! pauses when the last has been gone for [`LEAVE_GRACE_MS`], and is forgotten after
//! [`IDLE_MS`] with nobody in it. Commands are serialised per party and published in order, each
//! state numbered (`rev`), so a client that meets two states keeps the newer.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::events::{Broker, Event, RoomEvent, Subscriber};
use super::party::{
    Command, ControlMode, MemberId, PartyConfig, PartyState, PartyVideo, Refusal, Timeline,
    MAX_QUEUE,
};
use super::policy::{self, VideoAction};
use super::{Error, Result, Streams};
use crate::storage::rooms::Room;
use crate::storage::users::User;
use crate::storage::videos::{self, VideoStatus, Visibility};
use crate::storage::{now_ms, Db};
use crate::views::{PartyChangeView, PartyMemberView, PartyVideoView, PartyView};

/// A member whose last connection closed is still in the party this long, so a reload or a
/// short network loss keeps their place (and a host keeps the role).
pub const LEAVE_GRACE_MS: i64 = 10_000;
/// Most members `members` lists.
pub const MAX_LISTED: usize = 200;
/// A party nobody has been in for this long is forgotten.
pub const IDLE_MS: i64 = 30 * 60 * 1000;

/// What a member asks of the party (the room socket's `party.*` frames).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Load(String),
    Play,
    Pause,
    Seek(f64),
    Rate(f64),
    Queue(Vec<String>),
    Next,
    Stop,
    Host(MemberId),
    Mode(ControlMode, Vec<MemberId>),
    Ready(bool),
    Buffering(bool),
    Report { position_s: f64, at_server_ms: f64 },
}

/// The watch parties of this node; cheap to clone.
#[derive(Clone)]
pub struct Parties {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    broker: Arc<dyn Broker>,
    streams: Arc<dyn Streams>,
    cfg: PartyConfig,
    parties: Mutex<HashMap<i64, Arc<Party>>>,
    /// Drift of members' reports from the timeline, for metrics.
    drift: Arc<dyn Fn(f64) + Send + Sync>,
}

/// One room's party.
struct Party {
    room_id: i64,
    state: tokio::sync::Mutex<Held>,
    /// Wakes the party's timer when its deadline may have moved.
    wake: Notify,
}

/// What a party's lock guards.
struct Held {
    timeline: Timeline,
    rev: u64,
    owner: MemberId,
    /// Open connections per member.
    conns: HashMap<MemberId, usize>,
    /// Names of the owner, the members present, and the host and selected ones while named.
    names: HashMap<MemberId, String>,
    /// Members whose last connection closed, and when they leave for good.
    leaving: HashMap<MemberId, i64>,
    /// Since when nobody is in the party.
    empty_since: Option<i64>,
    live: bool,
    /// The party was dropped from the node (idle): a late caller must not use it.
    gone: bool,
}

impl Held {
    fn member(&self, id: MemberId) -> PartyMemberView {
        PartyMemberView {
            id: id.to_string(),
            username: self.names.get(&id).cloned().unwrap_or_default(),
        }
    }

    fn view(&self, change: Option<PartyChangeView>) -> PartyView {
        let s: PartyState = self.timeline.state();
        let members = |ids: &[MemberId]| ids.iter().map(|id| self.member(*id)).collect();
        PartyView {
            rev: self.rev,
            video: s.video.as_ref().map(video_view),
            playing: s.playing,
            position_s: s.position_s,
            at_server_ms: s.at_ms,
            rate: s.rate,
            host: self.member(s.host),
            mode: match s.mode {
                ControlMode::HostOnly => "host",
                ControlMode::Selected => "selected",
                ControlMode::Everyone => "everyone",
            }
            .into(),
            controllers: members(&s.controllers),
            queue: s.queue.iter().map(video_view).collect(),
            waiting_for: members(&s.waiting_for),
            ready: members(&s.ready),
            live: self.live,
            change,
        }
    }

    /// When the party's timer must next run.
    fn deadline(&self) -> Option<i64> {
        let leaves = self.leaving.values().copied().min();
        let idle = self.empty_since.map(|t| t + IDLE_MS);
        [self.timeline.next_deadline(), leaves, idle]
            .into_iter()
            .flatten()
            .min()
    }
}

fn video_view(v: &PartyVideo) -> PartyVideoView {
    PartyVideoView {
        id: v.id.clone(),
        title: v.title.clone(),
        hls_url: v.hls_url.clone(),
        duration_s: v.duration_s,
        thumbnail_url: v.thumbnail_url.clone(),
    }
}

/// A member's place in a party while one of their connections is open; dropping it lets them
/// go (after [`LEAVE_GRACE_MS`]).
pub struct Presence {
    parties: Parties,
    party: Arc<Party>,
    member: MemberId,
}

impl Drop for Presence {
    fn drop(&mut self) {
        let parties = self.parties.clone();
        let party = self.party.clone();
        let member = self.member;
        tokio::spawn(async move { parties.exit(&party, member).await });
    }
}

fn refusal(r: Refusal) -> Error {
    match r {
        Refusal::Forbidden => Error::Forbidden(r.to_string()),
        Refusal::NoVideo => Error::invalid("no_video", "no video is loaded; load one first"),
        Refusal::Invalid(m) => Error::invalid("invalid_command", m),
    }
}

impl Parties {
    pub fn new(
        db: Db,
        broker: Arc<dyn Broker>,
        streams: Arc<dyn Streams>,
        cfg: PartyConfig,
        drift: Arc<dyn Fn(f64) + Send + Sync>,
    ) -> Parties {
        Parties {
            inner: Arc::new(Inner {
                db,
                broker,
                streams,
                cfg,
                parties: Mutex::new(HashMap::new()),
                drift,
            }),
        }
    }

    /// The room's party, made (with its timer) if there is none.
    fn party(&self, room: &Room) -> Arc<Party> {
        let mut parties = self.inner.parties.lock();
        if let Some(p) = parties.get(&room.id) {
            return p.clone();
        }
        let party = Arc::new(Party {
            room_id: room.id,
            state: tokio::sync::Mutex::new(Held {
                timeline: Timeline::new(room.owner_id, self.inner.cfg),
                // Above any revision an earlier party of this room reached (a client that saw
                // one keeps the highest), unless it changed a thousand times a millisecond.
                rev: now_ms().max(0) as u64 * 1000,
                owner: room.owner_id,
                conns: HashMap::new(),
                names: HashMap::from([(room.owner_id, room.owner.clone())]),
                leaving: HashMap::new(),
                empty_since: Some(now_ms()),
                live: self.inner.streams.status(&room.slug).is_some(),
                gone: false,
            }),
            wake: Notify::new(),
        });
        parties.insert(room.id, party.clone());
        tokio::spawn(self.clone().run_timer(Arc::downgrade(&party)));
        party
    }

    /// The party of a room, if this node holds one.
    fn existing(&self, room_id: i64) -> Option<Arc<Party>> {
        self.inner.parties.lock().get(&room_id).cloned()
    }

    /// A signed-in member opened a connection to the room. Nothing is broadcast: who is in a
    /// party is not part of its state (it would make every join a change for everyone).
    pub async fn enter(&self, room: &Room, user: &User) -> Presence {
        loop {
            let party = self.party(room);
            let mut held = party.state.lock().await;
            if held.gone {
                // Dropped as idle between the lookup and the lock: make a new one.
                continue;
            }
            *held.conns.entry(user.id).or_default() += 1;
            held.names.insert(user.id, user.username.clone());
            held.leaving.remove(&user.id);
            held.empty_since = None;
            held.timeline.join(user.id);
            drop(held);
            party.wake.notify_one();
            return Presence {
                parties: self.clone(),
                party,
                member: user.id,
            };
        }
    }

    /// A member's connection closed; the last one starts their grace.
    async fn exit(&self, party: &Arc<Party>, member: MemberId) {
        let mut held = party.state.lock().await;
        let Some(n) = held.conns.get_mut(&member) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            held.conns.remove(&member);
            held.leaving.insert(member, now_ms() + LEAVE_GRACE_MS);
            drop(held);
            party.wake.notify_one();
        }
    }

    /// The room's party as members see it, if there is one with a video or a queue.
    pub async fn view(&self, room_id: i64) -> Option<PartyView> {
        let party = self.existing(room_id)?;
        let held = party.state.lock().await;
        let s = held.timeline.state();
        let settled = s.mode != ControlMode::HostOnly || s.host != held.owner;
        (s.video.is_some() || !s.queue.is_empty() || settled).then(|| held.view(None))
    }

    /// The signed-in members in the room's party now, by name (at most [`MAX_LISTED`]).
    pub async fn members(&self, room_id: i64) -> Vec<PartyMemberView> {
        let Some(party) = self.existing(room_id) else {
            return Vec::new();
        };
        let held = party.state.lock().await;
        let mut out: Vec<PartyMemberView> = held
            .conns
            .keys()
            .chain(held.leaving.keys())
            .map(|id| held.member(*id))
            .collect();
        out.sort_by(|a, b| a.username.cmp(&b.username));
        out.truncate(MAX_LISTED);
        out
    }

    /// Whether `video_id` is playing or queued in the room's party (so the room's members may
    /// fetch it through the room).
    pub async fn holds(&self, room_id: i64, video_id: &str) -> bool {
        let Some(p) = self.existing(room_id) else {
            return false;
        };
        let held = p.state.lock().await;
        // Only a video the party was given the room's address for (a private one, loaded by
        // someone who could watch it): a public one that was made private since is not.
        held.timeline
            .video_held(video_id)
            .is_some_and(|v| v.hls_url.starts_with("/party/"))
    }

    /// Applies a member's request. Errors are the member's alone (an `error` frame).
    pub async fn request(&self, room: &Room, user: &User, req: Request) -> Result<()> {
        let Some(party) = self.existing(room.id) else {
            return Err(Error::invalid("no_party", "join the room first"));
        };
        // Videos are looked up before the party is locked (a database read), and only for
        // someone who may load them.
        if matches!(req, Request::Load(_) | Request::Queue(_)) {
            let held = party.state.lock().await;
            if !held.timeline.may_control(user.id) {
                return Err(refusal(Refusal::Forbidden));
            }
        }
        let videos = match &req {
            Request::Load(id) => self.videos(room, user, std::slice::from_ref(id)).await?,
            Request::Queue(ids) => self.videos(room, user, ids).await?,
            _ => Vec::new(),
        };
        let now = now_ms();
        let mut held = party.state.lock().await;
        if !held.timeline.has_member(user.id) {
            return Err(Error::invalid("no_party", "join the room first"));
        }
        let before = held.timeline.state();
        let (cmd, action) = match req {
            Request::Ready(r) => {
                let changed = held.timeline.ready(user.id, r);
                return self.settle(&party, held, changed, None).await;
            }
            Request::Buffering(b) => {
                let changed = held.timeline.buffering(user.id, b, now);
                let change = changed.then(|| {
                    let s = held.timeline.state();
                    let action = if s.waiting_for.is_empty() {
                        "resumed"
                    } else {
                        "waiting"
                    };
                    PartyChangeView {
                        action: action.into(),
                        by: None,
                        position_s: s.position_s,
                    }
                });
                return self.settle(&party, held, changed, change).await;
            }
            Request::Report {
                position_s,
                at_server_ms,
            } => {
                if let Some(d) = held
                    .timeline
                    .report(user.id, position_s, at_server_ms as i64)
                {
                    (self.inner.drift)(d);
                }
                return Ok(());
            }
            Request::Load(_) => {
                let v = videos.into_iter().next().expect("one video was looked up");
                (Command::Load(v), "load")
            }
            Request::Queue(_) => (Command::Queue(videos), "queue"),
            Request::Play if held.live => {
                return Err(Error::conflict(
                    "live",
                    "the room is live; the party can play once the broadcast ends",
                ))
            }
            Request::Play => (Command::Play, "play"),
            Request::Next if held.live => {
                return Err(Error::conflict(
                    "live",
                    "the room is live; the party can play once the broadcast ends",
                ))
            }
            Request::Pause => (Command::Pause, "pause"),
            Request::Seek(p) => (Command::Seek(p), "seek"),
            Request::Rate(r) => (Command::Rate(r), "rate"),
            Request::Next => (Command::Next, "next"),
            Request::Stop => (Command::Stop, "stop"),
            Request::Host(to) => (Command::Hand(to), "host"),
            Request::Mode(mode, selected) => {
                if user.id != held.owner {
                    return Err(refusal(Refusal::Forbidden));
                }
                if let Some(absent) = selected.iter().find(|id| !held.timeline.has_member(**id)) {
                    return Err(Error::invalid(
                        "invalid_command",
                        format!("member {absent} is not in the room"),
                    ));
                }
                (Command::Mode(mode, selected), "mode")
            }
        };
        held.timeline.command(user.id, cmd, now).map_err(refusal)?;
        let after = held.timeline.state();
        if after == before {
            return Ok(());
        }
        let change = PartyChangeView {
            action: action.into(),
            by: Some(held.member(user.id)),
            position_s: after.position_s,
        };
        self.settle(&party, held, true, Some(change)).await
    }

    /// Publishes the party's new state (when it changed), still holding its lock so states
    /// leave in the order they were made, and lets its timer look at the new deadline.
    async fn settle(
        &self,
        party: &Arc<Party>,
        mut held: tokio::sync::MutexGuard<'_, Held>,
        changed: bool,
        change: Option<PartyChangeView>,
    ) -> Result<()> {
        if changed {
            held.rev += 1;
            let view = held.view(change);
            self.inner
                .broker
                .publish(Event::room(
                    party.room_id,
                    RoomEvent::Party {
                        party: Box::new(view),
                    },
                ))
                .await;
        }
        drop(held);
        party.wake.notify_one();
        Ok(())
    }

    /// The videos `ids` name, each one the member may watch and ready to play.
    async fn videos(&self, room: &Room, user: &User, ids: &[String]) -> Result<Vec<PartyVideo>> {
        if ids.len() > MAX_QUEUE {
            return Err(Error::invalid(
                "invalid_command",
                format!("a queue holds at most {MAX_QUEUE} videos"),
            ));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let ok = id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric());
            let v = match ok {
                true => videos::get(&self.inner.db.pool, id).await?,
                false => None,
            };
            let Some(v) = v.filter(|v| policy::may_video(Some(user), v, VideoAction::Watch)) else {
                return Err(Error::not_found("video"));
            };
            if v.status != VideoStatus::Ready {
                return Err(Error::invalid(
                    "video_not_ready",
                    format!("“{}” is still being processed", v.title),
                ));
            }
            // A private video is seen through the room (for as long as the party holds it);
            // the others by their own address.
            let base = if v.visibility == Visibility::Private {
                format!("/party/{}/{}", room.slug, v.public_id)
            } else {
                format!("/videos/{}", v.public_id)
            };
            out.push(PartyVideo {
                id: v.public_id.clone(),
                title: v.title.clone(),
                hls_url: format!("{base}/index.m3u8"),
                duration_s: v.duration_ms as f64 / 1000.0,
                thumbnail_url: v.has_thumbnail.then(|| format!("{base}/thumbnail.jpg")),
            });
        }
        Ok(out)
    }

    /// The party's timer: ticks the timeline at its deadline, lets members go whose grace ran
    /// out, pauses a party nobody is in, and forgets one idle for [`IDLE_MS`].
    async fn run_timer(self, party: Weak<Party>) {
        loop {
            let Some(p) = party.upgrade() else { return };
            let deadline = p.state.lock().await.deadline();
            let wait = deadline.map(|d| Duration::from_millis((d - now_ms()).max(0) as u64));
            let wake = async {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = p.wake.notified() => continue,
                _ = wake => {}
            }
            if !self.due(&p).await {
                return;
            }
        }
    }

    /// Does what is due now; false once the party is forgotten.
    async fn due(&self, party: &Arc<Party>) -> bool {
        let now = now_ms();
        let mut held = party.state.lock().await;
        if held.gone {
            return false;
        }
        let before = held.timeline.state();
        let mut changed = false;
        let gone: Vec<MemberId> = held
            .leaving
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(m, _)| *m)
            .collect();
        for m in gone {
            held.leaving.remove(&m);
            changed |= held.timeline.leave(m, now);
            if held.timeline.state().host != m && !held.timeline.state().controllers.contains(&m) {
                held.names.remove(&m);
            }
        }
        if held.timeline.is_empty() && held.leaving.is_empty() && held.empty_since.is_none() {
            held.empty_since = Some(now);
            changed |= held.timeline.interrupt(now);
        }
        if held.empty_since.is_some_and(|t| t + IDLE_MS <= now) {
            held.gone = true;
            let mut parties = self.inner.parties.lock();
            if parties
                .get(&party.room_id)
                .is_some_and(|p| Arc::ptr_eq(p, party))
            {
                parties.remove(&party.room_id);
            }
            return false;
        }
        let ended = before.video.as_ref().map(|v| v.id.clone());
        changed |= held.timeline.tick(now);
        let after = held.timeline.state();
        if !changed || after == before {
            drop(held);
            return true;
        }
        let action = if after.video.as_ref().map(|v| &v.id) != ended.as_ref() {
            "advanced"
        } else if !before.waiting_for.is_empty() && after.waiting_for.is_empty() {
            "resumed"
        } else if before.playing && !after.playing {
            "ended"
        } else {
            ""
        };
        let change = (!action.is_empty()).then(|| PartyChangeView {
            action: action.into(),
            by: None,
            position_s: after.position_s,
        });
        let _ = self.settle(party, held, true, change).await;
        true
    }

    /// A broadcast started or ended in the room (`live`); a video was deleted.
    async fn on_event(&self, event: &Event) {
        match event {
            Event::Room {
                room_id,
                event: RoomEvent::LiveStarted { .. } | RoomEvent::LiveEnded,
            } => {
                let live = matches!(
                    event,
                    Event::Room {
                        event: RoomEvent::LiveStarted { .. },
                        ..
                    }
                );
                let Some(party) = self.existing(*room_id) else {
                    return;
                };
                let now = now_ms();
                let mut held = party.state.lock().await;
                let was_playing = held.timeline.interrupt(now);
                let changed = was_playing || held.live != live;
                held.live = live;
                let change = was_playing.then(|| PartyChangeView {
                    action: "interrupted".into(),
                    by: None,
                    position_s: held.timeline.state().position_s,
                });
                let _ = self.settle(&party, held, changed, change).await;
            }
            Event::VideoDeleted { id, .. } => self.forget_everywhere(id, |_| true).await,
            // Hidden, or no longer ready: parties that show it by its own address lose it (a
            // private one loaded by its owner keeps playing through the room).
            Event::Video { video, .. }
                if video.visibility == Visibility::Private
                    || video.status != VideoStatus::Ready =>
            {
                let ready = video.status == VideoStatus::Ready;
                self.forget_everywhere(&video.id, |v| !ready || !v.hls_url.starts_with("/party/"))
                    .await
            }
            Event::Room {
                room_id,
                event: RoomEvent::Deleted { .. },
            } => {
                let party = self.inner.parties.lock().remove(room_id);
                if let Some(party) = party {
                    party.state.lock().await.gone = true;
                    party.wake.notify_one();
                }
            }
            _ => {}
        }
    }
}

impl Parties {
    /// Takes `id` out of every party that holds it where `which` says so.
    async fn forget_everywhere(&self, id: &str, which: impl Fn(&PartyVideo) -> bool) {
        let parties: Vec<Arc<Party>> = self.inner.parties.lock().values().cloned().collect();
        for party in parties {
            let mut held = party.state.lock().await;
            if !held.timeline.video_held(id).is_some_and(&which) {
                continue;
            }
            let changed = held.timeline.forget(id, now_ms());
            let _ = self.settle(&party, held, changed, None).await;
        }
    }
}

impl Subscriber for Parties {
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
        Box::pin(self.on_event(event))
    }
}
