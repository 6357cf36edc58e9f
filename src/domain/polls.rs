//! Polls in a room: typed options or the map's pins; single, multiple or ranked choice (counted
//! by [`super::tally`]); anonymous or public voters; results shown always, to those who voted, or
//! once closed; an optional closing time the server enforces.
//!
//! A ballot is one row per member and poll (a new vote replaces it), so a member counts once
//! however many votes race. Live results are coalesced: a vote marks its poll, and the poll's
//! count goes out once per [`COALESCE`] however many votes came in meanwhile. Closing (by hand,
//! by the closer task at `closes_at`, or by the first request that finds the time passed) is a
//! conditional update, so exactly one closer writes the result line in the chat.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::events::{Audience, RoomEvent};
use super::policy::{self, Standing};
use super::rooms::Rooms;
use super::tally::{self, Mode};
use super::{text, Error, Result, RoomChat};
use crate::storage::planning::{self, Ballot, Poll};
use crate::storage::rooms::Room;
use crate::storage::users::User;
use crate::storage::{now_ms, rfc3339};
use crate::views::{AuthorView, BallotView, PollResultsView, PollView};

/// Longest question and option, in characters.
pub const MAX_QUESTION_CHARS: usize = 200;
pub const MAX_OPTION_CHARS: usize = 80;
/// Options a poll has at most.
pub const MAX_OPTIONS: usize = 20;
/// Open polls a room holds at most, and one member starts at most.
pub const MAX_OPEN_PER_ROOM: i64 = 10;
/// Longest a poll may stay open when it has a closing time: 30 days.
pub const MAX_OPEN_MS: i64 = 30 * 24 * 3600 * 1000;
/// Polls a room's list shows.
const LIST_LIMIT: i64 = 20;
/// Ballots a public poll's results list at most (the count covers them all).
pub const MAX_BALLOTS_SHOWN: usize = 200;
/// Live results go out at most this often per poll.
pub const COALESCE: Duration = Duration::from_millis(250);

/// When a poll's results are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Always,
    OnVote,
    OnClose,
}

impl Shown {
    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Always => "always",
            Shown::OnVote => "on_vote",
            Shown::OnClose => "on_close",
        }
    }
    pub fn parse(s: &str) -> Option<Shown> {
        Some(match s {
            "always" => Shown::Always,
            "on_vote" => Shown::OnVote,
            "on_close" => Shown::OnClose,
            _ => return None,
        })
    }
}

/// A poll to start.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPoll {
    pub question: String,
    #[serde(default)]
    pub options: Option<Vec<String>>,
    /// One option per pin on the room's map.
    #[serde(default)]
    pub from_pins: bool,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub results: Option<String>,
    /// Unix ms (the HTTP edge parses RFC 3339).
    #[serde(skip)]
    pub closes_at: Option<i64>,
}

/// Poll operations; cheap to clone.
#[derive(Clone)]
pub struct Polls {
    rooms: Rooms,
    chat: Arc<dyn RoomChat>,
    inner: Arc<Inner>,
}

struct Inner {
    /// Polls started per member: 10 at once, then one a minute.
    starts: crate::auth::limiter::KeyedLimiter<i64>,
    /// Polls whose live count is due to go out.
    pending: Mutex<HashSet<i64>>,
    /// Wakes the closer when a poll with a closing time is made.
    wake: Notify,
}

fn parse_id(id: &str) -> Result<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::not_found("poll"))
}

fn line(raw: &str, max: usize, code: &'static str, what: &str) -> Result<String> {
    text::clean_line(raw, max).map_err(|e| {
        Error::invalid(
            code,
            match e {
                text::TextError::Empty => format!("{what} needs at least one visible character"),
                text::TextError::TooLong => format!("{what} is at most {max} characters"),
            },
        )
    })
}

/// Whether a member sees a poll's count: `voted` when they have a ballot in it.
pub fn results_visible(shown: Shown, closed: bool, voted: bool) -> bool {
    closed
        || match shown {
            Shown::Always => true,
            Shown::OnVote => voted,
            Shown::OnClose => false,
        }
}

fn mode_of(p: &Poll) -> Mode {
    Mode::parse(&p.mode).unwrap_or(Mode::Single)
}

fn shown_of(p: &Poll) -> Shown {
    Shown::parse(&p.results).unwrap_or(Shown::OnClose)
}

/// The count of `ballots`, with who chose what unless the poll is anonymous.
fn results(p: &Poll, ballots: &[Ballot]) -> PollResultsView {
    let choices: Vec<Vec<usize>> = ballots
        .iter()
        // A ballot the poll no longer fits (cannot happen: options never change) is left out.
        .filter(|b| tally::check_ballot(mode_of(p), p.options.len(), &b.choices).is_ok())
        .map(|b| b.choices.clone())
        .collect();
    let t = tally::tally(mode_of(p), p.options.len(), &choices);
    PollResultsView {
        counts: t.counts,
        voters: t.voters,
        winner: t.winner,
        rounds: t.rounds,
        ballots: (!p.anonymous).then(|| {
            ballots
                .iter()
                .take(MAX_BALLOTS_SHOWN)
                .map(|b| BallotView {
                    user: AuthorView {
                        id: b.user_id.to_string(),
                        username: b.username.clone(),
                    },
                    choices: b.choices.clone(),
                })
                .collect()
        }),
    }
}

/// The poll without its count or anyone's ballot.
fn bare(p: &Poll, room: &str) -> PollView {
    PollView {
        id: p.id.to_string(),
        room: room.to_string(),
        question: p.question.clone(),
        options: p.options.clone(),
        pins: p.pins.iter().map(|id| id.map(|i| i.to_string())).collect(),
        mode: p.mode.clone(),
        anonymous: p.anonymous,
        results_shown: p.results.clone(),
        results: None,
        closes_at: p.closes_at.map(rfc3339),
        closed: p.closed_at.is_some(),
        closed_at: p.closed_at.map(rfc3339),
        created_by: AuthorView {
            id: p.created_by.to_string(),
            username: p.creator.clone(),
        },
        created_at: rfc3339(p.created_at),
        my_choices: None,
    }
}

/// The chat line that announces a closed poll: language-neutral, "📊 question → winner" (or
/// the options level at the top, or "—" with no votes).
fn announcement(p: &Poll, r: &PollResultsView) -> String {
    let outcome = match r.winner {
        Some(w) => p.options[w].clone(),
        None if r.voters == 0 => "—".to_string(),
        None => {
            let top = match &r.rounds {
                Some(rounds) => rounds.last().map(|last| {
                    let max = last.iter().flatten().max().copied().unwrap_or(0);
                    last.iter()
                        .enumerate()
                        .filter(|(_, c)| **c == Some(max))
                        .map(|(i, _)| i)
                        .collect::<Vec<_>>()
                }),
                None => {
                    let max = r.counts.iter().max().copied().unwrap_or(0);
                    Some(
                        r.counts
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| **c == max)
                            .map(|(i, _)| i)
                            .collect(),
                    )
                }
            };
            top.unwrap_or_default()
                .iter()
                .map(|i| p.options[*i].as_str())
                .collect::<Vec<_>>()
                .join(" = ")
        }
    };
    format!("📊 {} → {}", p.question, outcome)
}

impl Polls {
    pub fn new(rooms: Rooms, chat: Arc<dyn RoomChat>) -> Polls {
        Polls {
            rooms,
            chat,
            inner: Arc::new(Inner {
                starts: crate::auth::limiter::KeyedLimiter::new(10, 1.0 / 60.0, 100_000),
                pending: Mutex::new(HashSet::new()),
                wake: Notify::new(),
            }),
        }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        &self.rooms.db().pool
    }

    /// The poll as `user` sees it: the count when they may see it, their own ballot.
    async fn view_for(&self, p: &Poll, room: &str, user: Option<&User>) -> Result<PollView> {
        let ballots = planning::ballots(self.pool(), p.id).await?;
        let mine = user.and_then(|u| ballots.iter().find(|b| b.user_id == u.id));
        let mut view = bare(p, room);
        if results_visible(shown_of(p), p.closed_at.is_some(), mine.is_some()) {
            view.results = Some(results(p, &ballots));
        }
        view.my_choices = mine.map(|b| b.choices.clone());
        Ok(view)
    }

    /// Tells the room where the poll stands: the count to whoever may see it.
    async fn announce(&self, p: &Poll, room: &str) -> Result<()> {
        let ballots = planning::ballots(self.pool(), p.id).await?;
        self.announce_with(p, room, &ballots).await;
        Ok(())
    }

    /// [`Polls::announce`] with the ballots already read.
    async fn announce_with(&self, p: &Poll, room: &str, ballots: &[Ballot]) {
        let closed = p.closed_at.is_some();
        let audience = match shown_of(p) {
            _ if closed => Audience::Everyone,
            Shown::Always => Audience::Everyone,
            Shown::OnVote => Audience::Voters(ballots.iter().map(|b| b.user_id).collect()),
            Shown::OnClose => Audience::Nobody,
        };
        let results = (audience != Audience::Nobody).then(|| Box::new(results(p, ballots)));
        let event = RoomEvent::Poll {
            poll: Box::new(bare(p, room)),
            results,
            audience,
        };
        self.rooms.publish(p.room_id, event).await;
    }

    /// The poll and its room, if `user` may see the room (404 otherwise); a poll whose closing
    /// time has passed is closed first.
    async fn load(&self, user: Option<&User>, id: &str) -> Result<(Poll, Room, Standing)> {
        let id = parse_id(id)?;
        let p = planning::poll(self.pool(), id)
            .await?
            .ok_or_else(|| Error::not_found("poll"))?;
        let (room, standing) =
            self.rooms
                .visible_by_id(user, p.room_id)
                .await
                .map_err(|e| match e {
                    Error::NotFound(_) => Error::not_found("poll"),
                    e => e,
                })?;
        let p = match p.closes_at {
            Some(at) if p.closed_at.is_none() && at <= now_ms() => {
                self.finish(&p, &room.slug, at).await?
            }
            _ => p,
        };
        Ok((p, room, standing))
    }

    /// Closes a poll at `at` (once: a poll someone else closed first is returned as it is),
    /// writes its result in the chat (through the chat writer, in order with the room's
    /// messages) and tells the room.
    async fn finish(&self, p: &Poll, room: &str, at: i64) -> Result<Poll> {
        let mut tx = self.rooms.db().begin().await?;
        if !planning::close_poll(&mut *tx, p.id, at).await? {
            drop(tx);
            return planning::poll(self.pool(), p.id)
                .await?
                .ok_or_else(|| Error::not_found("poll"));
        }
        let ballots = planning::ballots(&mut *tx, p.id).await?;
        tx.commit().await?;
        let mut closed = p.clone();
        closed.closed_at = Some(at);
        let text = announcement(&closed, &results(&closed, &ballots));
        tracing::info!(poll = p.id, room, "poll closed");
        if !self
            .chat
            .notice(p.room_id, (p.created_by, p.creator.clone()), text, "poll")
        {
            tracing::warn!(
                poll = p.id,
                room,
                "the chat writer is full: the poll's line is left out"
            );
        }
        self.announce_with(&closed, room, &ballots).await;
        Ok(closed)
    }

    /// Starts a poll in the room.
    pub async fn create(&self, user: &User, slug: &str, new: NewPoll) -> Result<PollView> {
        let room = self.rooms.find(slug).await?;
        let standing = self.rooms.standing(&room, Some(user)).await?;
        self.rooms.require_planner(&room, standing, user).await?;
        let question = self.chat.mask(&line(
            &new.question,
            MAX_QUESTION_CHARS,
            "invalid_question",
            "the question",
        )?);
        let mode = match new.mode.as_deref() {
            None => Mode::Single,
            Some(m) => Mode::parse(m).ok_or_else(|| {
                Error::invalid("invalid_mode", "mode must be single, multiple or ranked")
            })?,
        };
        let shown = match new.results.as_deref() {
            None => Shown::Always,
            Some(s) => Shown::parse(s).ok_or_else(|| {
                Error::invalid(
                    "invalid_results",
                    "results must be always, on_vote or on_close",
                )
            })?,
        };
        let now = now_ms();
        if let Some(at) = new.closes_at {
            if at <= now {
                return Err(Error::invalid(
                    "invalid_closes_at",
                    "closes_at must be in the future",
                ));
            }
            if at - now > MAX_OPEN_MS {
                return Err(Error::invalid(
                    "invalid_closes_at",
                    "a poll closes at most 30 days from now",
                ));
            }
        }
        let (options, pins) = match (new.options, new.from_pins) {
            (Some(_), true) => {
                return Err(Error::invalid(
                    "invalid_options",
                    "give options or from_pins, not both",
                ))
            }
            (None, false) => {
                return Err(Error::invalid(
                    "invalid_options",
                    "give the options, or from_pins to vote on the map's pins",
                ))
            }
            (Some(list), false) => {
                let mut options = Vec::with_capacity(list.len());
                for o in list.iter().take(MAX_OPTIONS + 1) {
                    let o = line(o, MAX_OPTION_CHARS, "invalid_options", "an option")?;
                    options.push(self.chat.mask(&o));
                }
                let pins = vec![None; options.len()];
                (options, pins)
            }
            (None, true) => {
                let pins = planning::pins(self.pool(), room.id).await?;
                let options: Vec<String> = pins.iter().map(|p| p.name.clone()).collect();
                (options, pins.iter().map(|p| Some(p.id)).collect())
            }
        };
        if !(2..=MAX_OPTIONS).contains(&options.len()) {
            return Err(Error::invalid(
                "invalid_options",
                format!("a poll has 2 to {MAX_OPTIONS} options"),
            ));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = options.iter().find(|o| !seen.insert(o.to_lowercase())) {
            return Err(Error::invalid(
                "invalid_options",
                format!("\"{dup}\" is an option twice"),
            ));
        }
        self.inner
            .starts
            .check(&user.id)
            .map_err(|wait| Error::RateLimited {
                retry_after_s: wait.as_secs().max(1),
            })?;
        let mut tx = self.rooms.db().begin().await?;
        // One planner at a time per room, so the caps below hold under concurrency.
        planning::lock_room(&mut *tx, room.id).await?;
        let open = planning::room_polls(&mut *tx, room.id, LIST_LIMIT * 5).await?;
        let open: Vec<&Poll> = open.iter().filter(|p| p.closed_at.is_none()).collect();
        if open.len() as i64 >= MAX_OPEN_PER_ROOM {
            return Err(Error::conflict(
                "too_many_polls",
                format!("a room has at most {MAX_OPEN_PER_ROOM} open polls; close one first"),
            ));
        }
        if open.iter().filter(|p| p.created_by == user.id).count() >= 3 {
            return Err(Error::conflict(
                "too_many_polls",
                "you have 3 open polls here; close one first",
            ));
        }
        let mut poll = Poll {
            id: 0,
            room_id: room.id,
            created_by: user.id,
            creator: user.username.clone(),
            question,
            options,
            pins,
            mode: mode.as_str().into(),
            anonymous: new.anonymous,
            results: shown.as_str().into(),
            closes_at: new.closes_at,
            closed_at: None,
            created_at: now,
        };
        poll.id = planning::create_poll(&mut *tx, &poll).await?;
        tx.commit().await?;
        if poll.closes_at.is_some() {
            self.inner.wake.notify_one();
        }
        self.announce(&poll, &room.slug).await?;
        self.view_for(&poll, &room.slug, Some(user)).await
    }

    /// One poll as `user` sees it.
    pub async fn get(&self, user: Option<&User>, id: &str) -> Result<PollView> {
        let (p, room, _) = self.load(user, id).await?;
        self.view_for(&p, &room.slug, user).await
    }

    /// The room's newest polls, newest first.
    pub async fn list(&self, user: Option<&User>, slug: &str) -> Result<Vec<PollView>> {
        let room = self.rooms.find_visible(user, slug).await?;
        self.of_room(&room, user, LIST_LIMIT).await
    }

    /// Up to `limit` of the room's newest polls as `user` sees them (open ones past their time
    /// are closed first).
    pub async fn of_room(
        &self,
        room: &Room,
        user: Option<&User>,
        limit: i64,
    ) -> Result<Vec<PollView>> {
        let now = now_ms();
        let mut out = Vec::new();
        for p in planning::room_polls(self.pool(), room.id, limit).await? {
            let p = match p.closes_at {
                Some(at) if p.closed_at.is_none() && at <= now => {
                    self.finish(&p, &room.slug, at).await?
                }
                _ => p,
            };
            out.push(self.view_for(&p, &room.slug, user).await?);
        }
        Ok(out)
    }

    /// Casts or replaces `user`'s ballot.
    pub async fn vote(&self, user: &User, id: &str, choices: &[usize]) -> Result<PollView> {
        let (p, room, standing) = self.load(Some(user), id).await?;
        self.rooms.require_planner(&room, standing, user).await?;
        if p.closed_at.is_some() {
            return Err(Error::conflict("poll_closed", "this poll is closed"));
        }
        tally::check_ballot(mode_of(&p), p.options.len(), choices)
            .map_err(|m| Error::invalid("invalid_choices", m))?;
        let now = now_ms();
        let mut tx = self.rooms.db().begin().await?;
        if !planning::hold_open(&mut *tx, self.rooms.db().backend, p.id, now).await? {
            return Err(Error::conflict("poll_closed", "this poll is closed"));
        }
        planning::vote(&mut *tx, p.id, user.id, choices, now).await?;
        tx.commit().await?;
        self.touch(p.id);
        self.view_for(&p, &room.slug, Some(user)).await
    }

    /// Takes `user`'s ballot back (while the poll is open).
    pub async fn unvote(&self, user: &User, id: &str) -> Result<()> {
        let (p, room, standing) = self.load(Some(user), id).await?;
        self.rooms.require_planner(&room, standing, user).await?;
        if p.closed_at.is_some() {
            return Err(Error::conflict("poll_closed", "this poll is closed"));
        }
        let mut tx = self.rooms.db().begin().await?;
        if !planning::hold_open(&mut *tx, self.rooms.db().backend, p.id, now_ms()).await? {
            return Err(Error::conflict("poll_closed", "this poll is closed"));
        }
        if !planning::unvote(&mut *tx, p.id, user.id).await? {
            return Err(Error::not_found("vote"));
        }
        tx.commit().await?;
        self.touch(p.id);
        Ok(())
    }

    /// Closes a poll now: whoever started it, or a moderator.
    pub async fn close(&self, user: &User, id: &str) -> Result<PollView> {
        let (p, room, standing) = self.load(Some(user), id).await?;
        if !policy::may_take_down(standing, p.created_by == user.id) {
            return Err(Error::Forbidden(
                "only who started a poll or a moderator may close it".into(),
            ));
        }
        let p = match p.closed_at {
            Some(_) => p,
            None => self.finish(&p, &room.slug, now_ms()).await?,
        };
        self.view_for(&p, &room.slug, Some(user)).await
    }

    /// Schedules the poll's live count (once per [`COALESCE`] however many votes come in).
    fn touch(&self, poll_id: i64) {
        if !self.inner.pending.lock().insert(poll_id) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(COALESCE).await;
            // Taken off first: a vote from now on schedules the next count.
            me.inner.pending.lock().remove(&poll_id);
            let Ok(Some(p)) = planning::poll(me.pool(), poll_id).await else {
                return;
            };
            let Ok(Some(room)) = crate::storage::rooms::get_by_id(me.pool(), p.room_id).await
            else {
                return;
            };
            if let Err(e) = me.announce(&p, &room.slug).await {
                tracing::warn!(error = %e, "sending a poll's count failed");
            }
        });
    }

    /// Closes polls when their time comes, until `stop`.
    pub async fn run_closer(self, stop: CancellationToken) {
        loop {
            let wait = match self.close_due().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "closing due polls failed");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.wake.notified() => {}
            }
        }
    }

    /// Closes the polls whose time has come; how long until the next one is due (at most a
    /// minute, so polls made on other nodes are not missed for long).
    async fn close_due(&self) -> Result<Duration> {
        let now = now_ms();
        let due = planning::closing(self.pool(), 50).await?;
        let full = due.len() == 50;
        for (id, at) in due {
            if at > now {
                return Ok(Duration::from_millis((at - now).min(60_000) as u64));
            }
            let Some(p) = planning::poll(self.pool(), id).await? else {
                continue;
            };
            let Some(room) = crate::storage::rooms::get_by_id(self.pool(), p.room_id).await? else {
                continue;
            };
            self.finish(&p, &room.slug, at).await?;
        }
        // Fifty were due: there may be more at once.
        Ok(if full {
            Duration::ZERO
        } else {
            Duration::from_secs(60)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_show_as_the_poll_says() {
        use Shown::*;
        // (shown, closed, voted) → visible
        for (shown, closed, voted, visible) in [
            (Always, false, false, true),
            (OnVote, false, false, false),
            (OnVote, false, true, true),
            (OnClose, false, true, false),
            (OnClose, true, false, true),
            (OnVote, true, false, true),
        ] {
            assert_eq!(
                results_visible(shown, closed, voted),
                visible,
                "{shown:?} closed {closed} voted {voted}"
            );
        }
    }

    fn poll(mode: &str, options: &[&str]) -> Poll {
        Poll {
            id: 1,
            room_id: 1,
            created_by: 1,
            creator: "mina".into(),
            question: "Dinner?".into(),
            options: options.iter().map(|s| s.to_string()).collect(),
            pins: vec![None; options.len()],
            mode: mode.into(),
            anonymous: true,
            results: "always".into(),
            closes_at: None,
            closed_at: Some(1),
            created_at: 0,
        }
    }

    fn ballot(user_id: i64, choices: &[usize]) -> Ballot {
        Ballot {
            user_id,
            username: format!("u{user_id}"),
            choices: choices.to_vec(),
        }
    }

    #[test]
    fn the_chat_line_names_the_winner_or_the_tie() {
        let p = poll("single", &["Ramen", "Tacos", "Pho"]);
        let r = results(&p, &[ballot(1, &[1]), ballot(2, &[1]), ballot(3, &[0])]);
        assert_eq!(announcement(&p, &r), "📊 Dinner? → Tacos");
        let r = results(&p, &[ballot(1, &[1]), ballot(2, &[0])]);
        assert_eq!(announcement(&p, &r), "📊 Dinner? → Ramen = Tacos");
        let r = results(&p, &[]);
        assert_eq!(announcement(&p, &r), "📊 Dinner? → —");
        // Anonymous: nobody's ballot is in the results.
        assert!(r.ballots.is_none());
        let mut public = p.clone();
        public.anonymous = false;
        let r = results(&public, &[ballot(7, &[2])]);
        assert_eq!(r.ballots.as_ref().unwrap()[0].user.username, "u7");
    }
}
