//! Watch together: one timeline for everyone in a room, as a state machine with no I/O and no
//! clock of its own. Every call takes the server time in milliseconds; the room's owner of this
//! machine (the hub) feeds it commands and members' reports, calls [`Timeline::tick`] at
//! [`Timeline::next_deadline`] (one timer per room, none per member), and broadcasts
//! [`Timeline::state`] when a call says the state changed.
//!
//! The state says "at server time `at_ms` the position is `position_s`, advancing at `rate`
//! while playing and nobody is waited for". Commands take effect `lead_ms` ahead of the moment
//! they arrive, so every client, having learnt the server's clock, applies them at the same
//! instant. A member who buffers holds the group for at most `max_wait_ms`; then the group goes
//! on and that member catches up on its own (it does not hold the group again until it has
//! played again). The ready check is advisory: it shows who is ready and never blocks a start.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Who is in the party: a member's user id (guests cannot join a party).
pub type MemberId = i64;

/// A video the party can play (what its members' players need).
#[derive(Debug, Clone, PartialEq)]
pub struct PartyVideo {
    pub id: String,
    pub title: String,
    pub hls_url: String,
    pub duration_s: f64,
    pub thumbnail_url: Option<String>,
}

/// Who may control the party, beside the room's owner (always) and the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMode {
    /// The host only (the owner, or whom the owner handed it to).
    HostOnly,
    /// The host and the members the owner selected.
    Selected,
    /// Every member.
    Everyone,
}

/// The timeline's tunables.
#[derive(Debug, Clone, Copy)]
pub struct PartyConfig {
    /// How far ahead of its arrival a command takes effect, ms.
    pub lead_ms: i64,
    /// The longest the group waits for buffering members, ms.
    pub max_wait_ms: i64,
}

impl Default for PartyConfig {
    fn default() -> PartyConfig {
        PartyConfig {
            lead_ms: 150,
            max_wait_ms: 5_000,
        }
    }
}

/// Slowest and fastest playback rates a controller may set.
pub const RATES: std::ops::RangeInclusive<f64> = 0.25..=4.0;

/// Longest queue.
pub const MAX_QUEUE: usize = 100;

/// A command from a member.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Load(PartyVideo),
    Play,
    Pause,
    Seek(f64),
    Rate(f64),
    Queue(Vec<PartyVideo>),
    /// Plays the next video in the queue now.
    Next,
    /// Closes the video (the queue stays).
    Stop,
    /// Hands the host role to a member (the owner or the host may).
    Hand(MemberId),
    /// Sets who may control (the owner only).
    Mode(ControlMode, Vec<MemberId>),
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only the party's controllers may do that")]
    Forbidden,
    #[error("no video is loaded")]
    NoVideo,
    #[error("{0}")]
    Invalid(&'static str),
}

/// One member as the timeline sees it.
#[derive(Debug, Clone, Default)]
struct Member {
    ready: bool,
    buffering: bool,
    /// Waited for once in this stall and let go: not waited for again until it plays again.
    excused: bool,
    /// The last position it reported, and when (server ms), for drift figures.
    report: Option<(f64, i64)>,
    /// When its stall last held the group (server ms): one member holds it at most once per
    /// [`HOLD_COOLDOWN_WAITS`] waits, so a player that stalls and recovers over and over (or a
    /// member who says so) cannot keep everyone frozen.
    last_hold: Option<i64>,
}

/// A member's stall holds the group at most once in this many `max_wait_ms`.
pub const HOLD_COOLDOWN_WAITS: i64 = 6;

/// The party's state as every member receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartyState {
    pub video: Option<PartyVideo>,
    pub playing: bool,
    pub position_s: f64,
    pub at_ms: i64,
    pub rate: f64,
    pub host: MemberId,
    pub mode: ControlMode,
    pub controllers: Vec<MemberId>,
    pub queue: Vec<PartyVideo>,
    pub waiting_for: Vec<MemberId>,
    pub ready: Vec<MemberId>,
}

/// The timeline of one room's party.
#[derive(Debug, Clone)]
pub struct Timeline {
    cfg: PartyConfig,
    owner: MemberId,
    host: Option<MemberId>,
    mode: ControlMode,
    selected: BTreeSet<MemberId>,
    video: Option<PartyVideo>,
    playing: bool,
    /// At `anchor_ms` the position is `anchor_s`; it advances at `rate` from then on while
    /// playing and not held.
    anchor_s: f64,
    anchor_ms: i64,
    rate: f64,
    queue: VecDeque<PartyVideo>,
    members: BTreeMap<MemberId, Member>,
    /// Since when the group waits for buffering members (the position is frozen meanwhile).
    held_since: Option<i64>,
    /// Members in the order they joined (who is in longest first).
    since: Vec<MemberId>,
}

impl Timeline {
    /// An empty party in a room owned by `owner`.
    pub fn new(owner: MemberId, cfg: PartyConfig) -> Timeline {
        Timeline {
            cfg,
            owner,
            host: None,
            mode: ControlMode::HostOnly,
            selected: BTreeSet::new(),
            video: None,
            playing: false,
            anchor_s: 0.0,
            anchor_ms: 0,
            rate: 1.0,
            queue: VecDeque::new(),
            members: BTreeMap::new(),
            held_since: None,
            since: Vec::new(),
        }
    }

    /// The host: whom the owner handed the role to, else the owner.
    pub fn host(&self) -> MemberId {
        self.host.unwrap_or(self.owner)
    }

    /// Whether `who` may play, pause, seek, load and queue.
    pub fn may_control(&self, who: MemberId) -> bool {
        who == self.owner
            || who == self.host()
            || match self.mode {
                ControlMode::HostOnly => false,
                ControlMode::Selected => self.selected.contains(&who),
                ControlMode::Everyone => self.members.contains_key(&who),
            }
    }

    /// The position at server time `now`, seconds.
    pub fn position_at(&self, now: i64) -> f64 {
        let moving = self.playing && self.held_since.is_none();
        let p = if moving && now > self.anchor_ms {
            self.anchor_s + (now - self.anchor_ms) as f64 / 1000.0 * self.rate
        } else {
            self.anchor_s
        };
        match &self.video {
            Some(v) if v.duration_s > 0.0 => p.clamp(0.0, v.duration_s),
            _ => p.max(0.0),
        }
    }

    /// A member joined (a first connection); false when they were already in.
    pub fn join(&mut self, who: MemberId) -> bool {
        if self.members.contains_key(&who) {
            return false;
        }
        self.members.insert(who, Member::default());
        self.since.push(who);
        true
    }

    /// A member left (their last connection closed). The group stops waiting for them. A host
    /// who leaves passes the role on, so the party never sits with nobody to run it: to the
    /// owner when the owner is in, else to the member who has been in longest (then back to
    /// the owner whenever the owner comes and that host leaves). Whether the state changed.
    pub fn leave(&mut self, who: MemberId, now: i64) -> bool {
        if self.members.remove(&who).is_none() {
            return false;
        }
        self.since.retain(|m| *m != who);
        if self.host() == who {
            self.host = if self.members.contains_key(&self.owner) {
                None
            } else {
                self.since.first().copied()
            };
        }
        self.release_if_nobody_waits(now);
        true
    }

    /// Applies a member's command at server time `now`.
    pub fn command(&mut self, who: MemberId, cmd: Command, now: i64) -> Result<(), Refusal> {
        match &cmd {
            Command::Mode(..) if who != self.owner => return Err(Refusal::Forbidden),
            Command::Hand(_) if who != self.owner && who != self.host() => {
                return Err(Refusal::Forbidden)
            }
            Command::Mode(..) | Command::Hand(_) => {}
            _ if !self.may_control(who) => return Err(Refusal::Forbidden),
            _ => {}
        }
        let at = now + self.cfg.lead_ms;
        match cmd {
            Command::Load(video) => self.load(video, at),
            Command::Play => {
                self.need_video()?;
                if !self.playing {
                    let from = self.position_at(at);
                    // At the end, play means from the start.
                    let from = match &self.video {
                        Some(v) if from >= v.duration_s => 0.0,
                        _ => from,
                    };
                    self.set_anchor(from, at);
                    self.playing = true;
                    self.unexcuse();
                }
            }
            Command::Pause => {
                self.need_video()?;
                if self.playing {
                    let p = self.position_at(at);
                    self.set_anchor(p, at);
                    self.playing = false;
                    self.held_since = None;
                }
            }
            Command::Seek(to) => {
                let v = self.need_video()?;
                if !to.is_finite() || to < 0.0 {
                    return Err(Refusal::Invalid("position_s must be 0 or more"));
                }
                let to = to.min(v.duration_s);
                self.set_anchor(to, at);
                // A seek is a fresh start for everyone: nobody is waited for from before it.
                self.held_since = None;
                self.unexcuse();
                for m in self.members.values_mut() {
                    m.buffering = false;
                }
            }
            Command::Rate(r) => {
                self.need_video()?;
                if !r.is_finite() || !RATES.contains(&r) {
                    return Err(Refusal::Invalid("rate must be from 0.25 to 4"));
                }
                let p = self.position_at(at);
                self.set_anchor(p, at);
                self.rate = r;
            }
            Command::Queue(list) => {
                if list.len() > MAX_QUEUE {
                    return Err(Refusal::Invalid("a queue holds at most 100 videos"));
                }
                self.queue = list.into();
            }
            Command::Next => {
                let next = self
                    .queue
                    .pop_front()
                    .ok_or(Refusal::Invalid("the queue is empty"))?;
                self.load(next, at);
                self.playing = true;
            }
            Command::Stop => {
                self.need_video()?;
                self.load_none(at);
            }
            Command::Hand(to) => {
                if !self.members.contains_key(&to) {
                    return Err(Refusal::Invalid("the new host must be in the room"));
                }
                self.host = (to != self.owner).then_some(to);
            }
            Command::Mode(mode, selected) => {
                self.mode = mode;
                self.selected = selected.into_iter().collect();
            }
        }
        Ok(())
    }

    /// A member says whether they are ready (the ready check). Whether the state changed.
    pub fn ready(&mut self, who: MemberId, ready: bool) -> bool {
        match self.members.get_mut(&who) {
            Some(m) if m.ready != ready => {
                m.ready = ready;
                true
            }
            _ => false,
        }
    }

    /// A member's player stalled (`true`) or plays again (`false`). A stall while the party
    /// plays holds the group (the position freezes) until everyone waited for plays again or
    /// `max_wait_ms` passed. Whether the state changed.
    pub fn buffering(&mut self, who: MemberId, state: bool, now: i64) -> bool {
        let playing = self.playing && self.video.is_some();
        let Some(m) = self.members.get_mut(&who) else {
            return false;
        };
        if m.buffering == state {
            return false;
        }
        m.buffering = state;
        if !state {
            m.excused = false;
            return self.release_if_nobody_waits(now);
        }
        if !playing || m.excused {
            return false;
        }
        let cooldown = HOLD_COOLDOWN_WAITS * self.cfg.max_wait_ms;
        if m.last_hold.is_some_and(|t| now - t < cooldown) {
            // Held the group a moment ago: this stall is its own to catch up on.
            m.excused = true;
            return false;
        }
        m.last_hold = Some(now);
        if self.held_since.is_none() {
            // Frozen where the group is now.
            let p = self.position_at(now);
            self.set_anchor(p, now);
            self.held_since = Some(now);
        }
        true
    }

    /// A member's periodic report of where its player is (for drift figures): its drift from
    /// the timeline, seconds (positive = ahead).
    pub fn report(&mut self, who: MemberId, position_s: f64, at_ms: i64) -> Option<f64> {
        if !position_s.is_finite() {
            return None;
        }
        let expected = self.position_at(at_ms);
        let m = self.members.get_mut(&who)?;
        m.report = Some((position_s, at_ms));
        Some(position_s - expected)
    }

    /// When [`tick`](Timeline::tick) must next run: the end of a wait or of the video.
    pub fn next_deadline(&self) -> Option<i64> {
        if let Some(since) = self.held_since {
            return Some(since + self.cfg.max_wait_ms);
        }
        let v = self.video.as_ref()?;
        if !self.playing || self.rate <= 0.0 {
            return None;
        }
        let left_s = (v.duration_s - self.anchor_s).max(0.0);
        Some(self.anchor_ms.max(0) + (left_s / self.rate * 1000.0).ceil() as i64)
    }

    /// Time-driven changes due at `now`: a wait that ran out (the group goes on; the members
    /// it waited for catch up by themselves) and the end of the video (the next in the queue
    /// starts, or the party stops at the end). Whether the state changed.
    pub fn tick(&mut self, now: i64) -> bool {
        let mut changed = false;
        if let Some(since) = self.held_since {
            if now >= since + self.cfg.max_wait_ms {
                for m in self.members.values_mut() {
                    if m.buffering {
                        m.excused = true;
                    }
                }
                self.resume(now);
                changed = true;
            }
        }
        if self.held_since.is_none() && self.playing {
            if let Some(v) = &self.video {
                if self.position_at(now) >= v.duration_s {
                    let end = v.duration_s;
                    match self.queue.pop_front() {
                        Some(next) => {
                            self.load(next, now + self.cfg.lead_ms);
                            self.playing = true;
                        }
                        None => {
                            self.set_anchor(end, now);
                            self.playing = false;
                        }
                    }
                    changed = true;
                }
            }
        }
        changed
    }

    /// Stops the party where it is (a live broadcast takes over the room).
    pub fn interrupt(&mut self, now: i64) -> bool {
        if !self.playing {
            return false;
        }
        let p = self.position_at(now);
        self.set_anchor(p, now);
        self.playing = false;
        self.held_since = None;
        true
    }

    /// Takes a video that is gone (deleted, or hidden from those who loaded it) out of the
    /// party: out of the queue, and closed if it is playing. Whether the state changed.
    pub fn forget(&mut self, video_id: &str, now: i64) -> bool {
        let before = self.queue.len();
        self.queue.retain(|v| v.id != video_id);
        let mut changed = before != self.queue.len();
        if self.video.as_ref().is_some_and(|v| v.id == video_id) {
            self.load_none(now);
            changed = true;
        }
        changed
    }

    /// Whether `video_id` is the party's video or waits in its queue (what a member may fetch
    /// through the room).
    pub fn holds(&self, video_id: &str) -> bool {
        self.video_held(video_id).is_some()
    }

    /// The party's video or a queued one with this id.
    pub fn video_held(&self, video_id: &str) -> Option<&PartyVideo> {
        self.video
            .iter()
            .chain(self.queue.iter())
            .find(|v| v.id == video_id)
    }

    /// Whether `who` is in the party.
    pub fn has_member(&self, who: MemberId) -> bool {
        self.members.contains_key(&who)
    }

    /// Nobody is in the party.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// What every member is told.
    pub fn state(&self) -> PartyState {
        // Named ones only: in `Everyone` mode every member controls besides these, and
        // listing them all would make every join a change for everyone.
        let mut controllers = vec![self.owner, self.host()];
        if self.mode == ControlMode::Selected {
            controllers.extend(self.selected.iter().copied());
        }
        controllers.sort_unstable();
        controllers.dedup();
        let waiting_for = if self.held_since.is_some() {
            self.members
                .iter()
                .filter(|(_, m)| m.buffering && !m.excused)
                .map(|(id, _)| *id)
                .collect()
        } else {
            Vec::new()
        };
        PartyState {
            video: self.video.clone(),
            playing: self.playing,
            position_s: self.anchor_s,
            at_ms: self.anchor_ms,
            rate: self.rate,
            host: self.host(),
            mode: self.mode,
            controllers,
            queue: self.queue.iter().cloned().collect(),
            waiting_for,
            ready: self
                .members
                .iter()
                .filter(|(_, m)| m.ready)
                .map(|(id, _)| *id)
                .collect(),
        }
    }

    fn need_video(&self) -> Result<&PartyVideo, Refusal> {
        self.video.as_ref().ok_or(Refusal::NoVideo)
    }

    fn set_anchor(&mut self, position_s: f64, at_ms: i64) {
        self.anchor_s = position_s;
        self.anchor_ms = at_ms;
    }

    fn load(&mut self, video: PartyVideo, at: i64) {
        self.video = Some(video);
        self.playing = false;
        self.set_anchor(0.0, at);
        self.held_since = None;
        for m in self.members.values_mut() {
            m.ready = false;
            m.buffering = false;
            m.excused = false;
            m.report = None;
        }
    }

    fn load_none(&mut self, at: i64) {
        self.video = None;
        self.playing = false;
        self.set_anchor(0.0, at);
        self.held_since = None;
        for m in self.members.values_mut() {
            m.ready = false;
            m.buffering = false;
            m.excused = false;
        }
    }

    fn unexcuse(&mut self) {
        for m in self.members.values_mut() {
            m.excused = false;
        }
    }

    /// Ends a wait: the group goes on from the frozen position, `lead_ms` from now.
    fn resume(&mut self, now: i64) {
        self.held_since = None;
        let p = self.anchor_s;
        self.set_anchor(p, now + self.cfg.lead_ms);
    }

    fn release_if_nobody_waits(&mut self, now: i64) -> bool {
        if self.held_since.is_none() {
            return false;
        }
        let waits = self.members.values().any(|m| m.buffering && !m.excused);
        if waits {
            return false;
        }
        self.resume(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: MemberId = 1;
    const MINA: MemberId = 2;
    const JUN: MemberId = 3;

    fn video(id: &str, duration_s: f64) -> PartyVideo {
        PartyVideo {
            id: id.into(),
            title: id.into(),
            hls_url: format!("/videos/{id}/index.m3u8"),
            duration_s,
            thumbnail_url: None,
        }
    }

    fn party() -> Timeline {
        let mut t = Timeline::new(OWNER, PartyConfig::default());
        for m in [OWNER, MINA, JUN] {
            t.join(m);
        }
        t
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn play_pause_and_seek_are_scheduled_ahead_and_advance_with_time() {
        let mut t = party();
        assert_eq!(t.command(OWNER, Command::Play, 0), Err(Refusal::NoVideo));
        t.command(OWNER, Command::Load(video("a", 600.0)), 1_000)
            .unwrap();
        t.command(OWNER, Command::Play, 2_000).unwrap();
        let s = t.state();
        assert!(s.playing);
        assert_eq!((s.position_s, s.at_ms), (0.0, 2_150), "150 ms ahead");
        // Before the start instant it holds at the start; after, it runs in real time.
        assert!(close(t.position_at(2_100), 0.0));
        assert!(close(t.position_at(12_150), 10.0));
        // Pause lands 150 ms after it is asked for, where the video will be then.
        t.command(OWNER, Command::Pause, 12_150).unwrap();
        let s = t.state();
        assert!(!s.playing);
        assert!(close(s.position_s, 10.15));
        assert!(close(t.position_at(99_000), 10.15));
        // Seek while paused stays paused; play goes on from there.
        t.command(OWNER, Command::Seek(300.0), 20_000).unwrap();
        assert!(close(t.position_at(30_000), 300.0));
        t.command(OWNER, Command::Play, 30_000).unwrap();
        assert!(close(t.position_at(31_150), 301.0));
        // A seek past the end lands at the end; a negative one is refused.
        t.command(OWNER, Command::Seek(9_999.0), 40_000).unwrap();
        assert!(close(t.state().position_s, 600.0));
        assert!(matches!(
            t.command(OWNER, Command::Seek(-1.0), 40_000),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            t.command(OWNER, Command::Seek(f64::NAN), 40_000),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn a_rate_change_keeps_the_position_continuous() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 600.0)), 0)
            .unwrap();
        t.command(OWNER, Command::Play, 0).unwrap(); // starts at 150
        t.command(OWNER, Command::Rate(2.0), 10_000).unwrap(); // from 10_150
        assert!(close(t.position_at(10_150), 10.0));
        assert!(close(t.position_at(11_150), 12.0));
        for bad in [0.0, 0.1, 5.0, f64::INFINITY] {
            assert!(
                t.command(OWNER, Command::Rate(bad), 12_000).is_err(),
                "{bad}"
            );
        }
        assert_eq!(t.state().rate, 2.0);
    }

    #[test]
    fn a_late_joiner_gets_the_state_that_places_it() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 600.0)), 0)
            .unwrap();
        t.command(OWNER, Command::Play, 0).unwrap();
        assert!(t.join(40));
        assert!(!t.join(40), "a second connection of the same member");
        // The newcomer's player computes the position from the state at any moment.
        let s = t.state();
        let at = 65_150;
        let p = s.position_s + (at - s.at_ms) as f64 / 1000.0 * s.rate;
        assert!(close(p, 65.0));
        assert!(close(t.position_at(at), 65.0));
    }

    #[test]
    fn only_controllers_command_and_the_owner_sets_who_they_are() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 60.0)), 0)
            .unwrap();
        assert_eq!(t.command(MINA, Command::Play, 0), Err(Refusal::Forbidden));
        assert_eq!(t.state().controllers, [OWNER]);
        // Selected members.
        assert_eq!(
            t.command(MINA, Command::Mode(ControlMode::Everyone, vec![]), 0),
            Err(Refusal::Forbidden)
        );
        t.command(OWNER, Command::Mode(ControlMode::Selected, vec![MINA]), 0)
            .unwrap();
        t.command(MINA, Command::Play, 0).unwrap();
        assert_eq!(t.command(JUN, Command::Pause, 0), Err(Refusal::Forbidden));
        assert_eq!(t.state().controllers, [OWNER, MINA]);
        // Everyone.
        t.command(OWNER, Command::Mode(ControlMode::Everyone, vec![]), 0)
            .unwrap();
        t.command(JUN, Command::Pause, 1_000).unwrap();
        assert!(t.may_control(JUN) && !t.may_control(99));
        assert_eq!(t.state().controllers, [OWNER], "everyone else by the mode");
    }

    #[test]
    fn the_host_role_is_handed_over_and_comes_back_when_the_host_leaves() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 60.0)), 0)
            .unwrap();
        assert_eq!(
            t.command(MINA, Command::Hand(MINA), 0),
            Err(Refusal::Forbidden)
        );
        t.command(OWNER, Command::Hand(MINA), 0).unwrap();
        assert_eq!(t.state().host, MINA);
        t.command(MINA, Command::Play, 0).unwrap();
        // The host hands it on; the one before is a viewer again.
        t.command(MINA, Command::Hand(JUN), 0).unwrap();
        assert_eq!(t.command(MINA, Command::Pause, 0), Err(Refusal::Forbidden));
        assert!(matches!(
            t.command(JUN, Command::Hand(99), 0),
            Err(Refusal::Invalid(_))
        ));
        // The host leaves: the owner is host again; the owner could always control.
        assert!(t.leave(JUN, 1_000));
        assert_eq!(t.state().host, OWNER);
        assert!(!t.leave(JUN, 1_000));
        t.command(OWNER, Command::Pause, 2_000).unwrap();
        // The owner leaves while host: the member in longest runs the party meanwhile...
        t.join(JUN);
        assert!(t.leave(OWNER, 3_000));
        assert_eq!(t.state().host, MINA);
        t.command(MINA, Command::Play, 3_000).unwrap();
        // ...and when that host leaves too, the next one.
        assert!(t.leave(MINA, 4_000));
        assert_eq!(t.state().host, JUN);
        // The owner is back: still in control; the host hands it back or leaves.
        t.join(OWNER);
        t.command(OWNER, Command::Pause, 5_000).unwrap();
        assert!(t.leave(JUN, 6_000));
        assert_eq!(t.state().host, OWNER);
    }

    #[test]
    fn a_buffering_member_holds_the_group_until_it_plays_again() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 600.0)), 0)
            .unwrap();
        t.command(OWNER, Command::Play, 0).unwrap();
        assert!(t.buffering(MINA, true, 10_150));
        let s = t.state();
        assert_eq!(s.waiting_for, [MINA]);
        assert!(s.playing, "still playing, held");
        assert!(close(t.position_at(12_000), 10.0), "frozen");
        assert_eq!(t.next_deadline(), Some(15_150));
        // Jun stalls too; Mina recovers; the group still waits for Jun.
        assert!(t.buffering(JUN, true, 11_000));
        assert!(!t.buffering(MINA, false, 11_500));
        assert_eq!(t.state().waiting_for, [JUN]);
        // Jun recovers: the group goes on from where it froze, 150 ms later.
        assert!(t.buffering(JUN, false, 12_000));
        let s = t.state();
        assert!(s.waiting_for.is_empty());
        assert!((s.position_s - 10.0).abs() < 1e-9 && s.at_ms == 12_150);
        assert!(close(t.position_at(13_150), 11.0));
        // A stall while paused holds nothing.
        t.command(OWNER, Command::Pause, 20_000).unwrap();
        assert!(!t.buffering(MINA, true, 21_000));
        assert!(t.state().waiting_for.is_empty());
    }

    #[test]
    fn a_wait_times_out_and_the_late_member_catches_up_alone() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 600.0)), 0)
            .unwrap();
        t.command(OWNER, Command::Play, 0).unwrap();
        t.buffering(MINA, true, 10_150);
        assert!(!t.tick(15_149), "not yet");
        assert!(t.tick(15_150));
        let s = t.state();
        assert!(s.waiting_for.is_empty() && s.playing);
        assert!(close(t.position_at(16_300), 11.0));
        // Still stalled, Mina does not hold the group again...
        assert!(!t.buffering(MINA, true, 15_500), "nothing new");
        assert!(t.state().waiting_for.is_empty());
        // ...until she has played again (which changes nothing for the others)...
        assert!(!t.buffering(MINA, false, 16_000));
        // ...then a new stall holds it once more, once its last hold is long enough ago.
        assert!(!t.buffering(MINA, true, 20_000), "held the group 10 s ago");
        assert!(t.state().waiting_for.is_empty());
        assert!(!t.buffering(MINA, false, 21_000));
        assert!(t.buffering(MINA, true, 10_150 + 30_000));
        assert_eq!(t.state().waiting_for, [MINA]);
    }

    #[test]
    fn a_member_who_stalls_over_and_over_cannot_keep_the_group_frozen() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 600.0)), 0)
            .unwrap();
        t.command(OWNER, Command::Play, 0).unwrap();
        assert!(t.buffering(JUN, true, 1_000));
        assert!(t.buffering(JUN, false, 1_100), "released");
        // Again and again: the group plays on.
        for i in 0..20 {
            let at = 2_000 + i * 500;
            assert!(!t.buffering(JUN, true, at));
            assert!(!t.buffering(JUN, false, at + 100));
            assert!(t.state().waiting_for.is_empty());
        }
        assert!(
            close(t.position_at(12_150), 12.0 - 0.25),
            "lost only the one hold"
        );
        // Someone else's first stall still holds it.
        assert!(t.buffering(MINA, true, 13_000));
        assert_eq!(t.state().waiting_for, [MINA]);
    }

    #[test]
    fn a_member_who_leaves_is_not_waited_for() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 600.0)), 0)
            .unwrap();
        t.command(OWNER, Command::Play, 0).unwrap();
        t.buffering(JUN, true, 5_000);
        assert_eq!(t.state().waiting_for, [JUN]);
        assert!(t.leave(JUN, 6_000));
        let s = t.state();
        assert!(s.waiting_for.is_empty());
        assert!(close(t.position_at(7_150), 5.85));
    }

    #[test]
    fn the_queue_plays_on_and_the_party_stops_at_the_end() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 10.0)), 0)
            .unwrap();
        t.command(OWNER, Command::Queue(vec![video("b", 20.0)]), 0)
            .unwrap();
        t.command(OWNER, Command::Play, 0).unwrap();
        assert_eq!(t.next_deadline(), Some(10_150));
        assert!(!t.tick(10_149));
        assert!(t.tick(10_150));
        let s = t.state();
        assert_eq!(s.video.as_ref().map(|v| v.id.as_str()), Some("b"));
        assert!(s.playing && s.queue.is_empty());
        assert_eq!((s.position_s, s.at_ms), (0.0, 10_300));
        assert_eq!(t.next_deadline(), Some(30_300));
        assert!(t.tick(30_300));
        let s = t.state();
        assert!(!s.playing);
        assert!(close(s.position_s, 20.0));
        assert_eq!(t.next_deadline(), None);
        // Play at the end starts over.
        t.command(OWNER, Command::Play, 40_000).unwrap();
        assert!(close(t.state().position_s, 0.0));
        let long: Vec<PartyVideo> = (0..=MAX_QUEUE)
            .map(|i| video(&i.to_string(), 1.0))
            .collect();
        assert!(t.command(OWNER, Command::Queue(long), 0).is_err());
    }

    #[test]
    fn next_skips_ahead_stop_closes_and_forget_drops_a_gone_video() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 60.0)), 0)
            .unwrap();
        t.command(
            OWNER,
            Command::Queue(vec![video("b", 20.0), video("c", 5.0)]),
            0,
        )
        .unwrap();
        assert!(t.holds("b") && t.holds("a") && !t.holds("z"));
        assert_eq!(t.command(MINA, Command::Next, 0), Err(Refusal::Forbidden));
        t.command(OWNER, Command::Next, 1_000).unwrap();
        let s = t.state();
        assert_eq!(s.video.as_ref().map(|v| v.id.as_str()), Some("b"));
        assert!(s.playing && s.at_ms == 1_150 && s.queue.len() == 1);
        // The queued one is deleted: out of the queue; the playing one: closed.
        assert!(t.forget("c", 2_000));
        assert!(!t.forget("c", 2_000));
        assert!(matches!(
            t.command(OWNER, Command::Next, 2_000),
            Err(Refusal::Invalid(_))
        ));
        assert!(t.forget("b", 3_000));
        let s = t.state();
        assert!(s.video.is_none() && !s.playing);
        assert_eq!(t.next_deadline(), None);
        // Stop closes what plays and keeps the queue.
        t.command(OWNER, Command::Load(video("d", 60.0)), 4_000)
            .unwrap();
        t.command(OWNER, Command::Queue(vec![video("e", 20.0)]), 4_000)
            .unwrap();
        t.command(OWNER, Command::Stop, 5_000).unwrap();
        let s = t.state();
        assert!(s.video.is_none() && s.queue.len() == 1);
        assert_eq!(
            t.command(OWNER, Command::Stop, 5_000),
            Err(Refusal::NoVideo)
        );
    }

    #[test]
    fn the_ready_check_shows_who_is_ready_and_resets_on_load() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 60.0)), 0)
            .unwrap();
        assert!(t.ready(MINA, true));
        assert!(!t.ready(MINA, true));
        assert!(!t.ready(99, true), "not in the room");
        assert_eq!(t.state().ready, [MINA]);
        // Starting never waits for it.
        t.command(OWNER, Command::Play, 0).unwrap();
        assert!(t.state().playing);
        t.command(OWNER, Command::Load(video("b", 60.0)), 1_000)
            .unwrap();
        assert!(t.state().ready.is_empty());
        assert!(!t.state().playing);
    }

    #[test]
    fn reports_measure_drift_and_a_broadcast_interrupts() {
        let mut t = party();
        t.command(OWNER, Command::Load(video("a", 600.0)), 0)
            .unwrap();
        t.command(OWNER, Command::Play, 0).unwrap();
        let drift = t.report(MINA, 10.04, 10_150).unwrap();
        assert!((drift - 0.04).abs() < 1e-9);
        assert_eq!(t.report(99, 1.0, 0), None);
        assert_eq!(t.report(MINA, f64::NAN, 0), None);
        assert!(t.interrupt(20_150));
        let s = t.state();
        assert!(!s.playing && close(s.position_s, 20.0));
        assert!(!t.interrupt(21_000));
    }
}
