//! One WebSocket connection in a room: welcome (history or resume), then a loop that drains what
//! the room's fan-out could not write at once, answers the client's frames, and ends on kick,
//! lag, close or shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::Rng;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::conn::{wire_close, wire_text, ConnIo, SharedIo, Work};
use super::protocol::{self, error_frame, ClientFrame, ServerFrame};
use super::writer::Pending;
use super::{Hub, Membership, RoomInfo};
use crate::auth::limiter::Bucket;
use crate::domain::events::{Broker, Event, RoomEvent};
use crate::domain::parties::{Parties, Request};
use crate::domain::party::ControlMode;
use crate::domain::pins::{NewPin, Pins};
use crate::domain::policy::RoomAction;
use crate::domain::polls::Polls;
use crate::domain::text;
use crate::domain::Error;
use crate::storage::messages;
use crate::storage::now_ms;
use crate::storage::rooms::{Room, SanctionKind};
use crate::storage::users::User;
use crate::views::{AuthorView, MapViewView, MessageView, RoomView, UserView};

/// Close codes we send.
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_RESTART: u16 = 1012;
pub const CLOSE_LAGGED: u16 = 4001;
pub const CLOSE_BANNED: u16 = 4003;
pub const CLOSE_DELETED: u16 = 4004;
/// The room became private: reconnect (its people get back in).
pub const CLOSE_PRIVATE: u16 = 4005;

/// How a connection was opened.
pub struct Opened {
    pub room: Room,
    pub info: RoomInfo,
    pub user: Option<User>,
    pub since: Option<i64>,
    /// The client asked to resume (`since`) but its address is over its replay allowance: it
    /// gets the recent history instead, marked `truncated`.
    pub replay_refused: bool,
    /// See `crate::live::client_hash`.
    pub client: u64,
}

/// Per-server settings every session uses.
#[derive(Clone)]
pub struct Settings {
    /// At shutdown, clients are told to reconnect at a random moment within this window.
    pub reconnect_jitter: Duration,
    pub history_limit: usize,
    pub resume_limit: usize,
    /// Most bytes of history one welcome carries; older messages beyond it are left out and
    /// the welcome says `truncated`.
    pub max_welcome_bytes: usize,
    /// Watch parties (the room's `party.*` frames go there).
    pub parties: Parties,
    /// The room's map pins (`map.pin.*`) and polls (in the welcome).
    pub pins: Pins,
    pub polls: Polls,
    /// Where relayed map views go (to every node's sockets in the room).
    pub broker: Arc<dyn Broker>,
}

/// Polls a welcome carries at most (the room's newest).
const WELCOME_POLLS: i64 = 5;
/// `map.view` frames a connection may send at once, and per second after that; more are
/// dropped (a page sends at most about 8 a second while the map moves).
const MAP_BURST: u32 = 10;
const MAP_PER_S: f64 = 10.0;
/// Pin frames a connection may send at once, and per second after that.
const PIN_BURST: u32 = 10;
const PIN_PER_S: f64 = 1.0;

/// Leaves out the oldest messages until the rest encode to at most `max_bytes`; true when it
/// left any out.
fn cap_history(history: &mut Vec<MessageView>, max_bytes: usize) -> bool {
    let mut total = 0;
    let mut keep_from = history.len();
    for (i, m) in history.iter().enumerate().rev() {
        // The message's JSON and its separating comma.
        total += serde_json::to_vec(m).map_or(0, |v| v.len()) + 1;
        if total > max_bytes {
            break;
        }
        keep_from = i;
    }
    if keep_from == 0 {
        return false;
    }
    history.drain(..keep_from);
    true
}

/// The client side of the socket as tungstenite reads it.
pub type ClientStream = WebSocketStream<SharedIo>;

/// Runs a connection to its end.
pub async fn run(
    hub: Hub,
    io: Arc<ConnIo>,
    mut ws: ClientStream,
    opened: Opened,
    shutdown: CancellationToken,
    settings: Settings,
) {
    let Settings {
        reconnect_jitter,
        history_limit,
        resume_limit,
        max_welcome_bytes,
        parties,
        pins,
        polls,
        broker,
    } = settings;
    let Opened {
        room,
        info,
        user,
        since,
        replay_refused,
        client,
    } = opened;
    // Joined before reading history: broadcasts from now on wait in the paused queue, and the
    // ones the history already holds are dropped by seq when the welcome goes out.
    let was_private = info.private;
    let member = hub.join(&room, info, user.as_ref().map(|u| u.id), client, io.clone());
    // The room went private between the handshake's check and this join (whose kick this
    // connection missed): it leaves like the others did, to be checked again.
    if !was_private && member.room.info.read().private {
        let f = ServerFrame::Reconnect { reason: "private" }.encode();
        io.unpause(wire_text(&f), i64::MAX);
        return finish(
            &io,
            false,
            &[wire_close(CLOSE_PRIVATE, "the room became private")],
        )
        .await;
    }
    // A signed-in member is in the room's watch party while connected (and a little after).
    let _in_party = match &user {
        Some(u) => Some(parties.enter(&room, u).await),
        None => None,
    };

    let pool = &hub.db().pool;
    let loaded = match since {
        Some(since) => {
            let limit = resume_limit as i64;
            messages::after_latest(pool, room.id, since, limit + 1)
                .await
                .map(|mut rows| {
                    let truncated = rows.len() as i64 > limit;
                    if truncated {
                        rows.remove(0);
                    }
                    (rows, truncated)
                })
        }
        None => messages::page(pool, room.id, None, history_limit as i64)
            .await
            .map(|rows| (rows, false)),
    };
    let (history, mut truncated) = match loaded {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "loading chat history failed");
            let f = error_frame("internal", "could not load the room; try again", None);
            io.unpause(wire_text(&f), i64::MAX);
            return finish(&io, false, &[wire_close(1011, "internal error")]).await;
        }
    };
    let covered = history.last().map_or(since.unwrap_or(0), |m| m.seq);
    let mut history: Vec<MessageView> = history.iter().map(MessageView::from).collect();
    if cap_history(&mut history, max_welcome_bytes) {
        hub.metrics()
            .refused(crate::metrics::Refusal::WelcomeTruncated);
        truncated = true;
    }
    truncated |= replay_refused;
    let you = user.as_ref().map(UserView::from);
    // Asked after joining, so a broadcast that starts meanwhile is either in the welcome or
    // arrives as a `live` frame.
    let room_view = RoomView::new(
        &room,
        hub.site_viewers(&member.room),
        hub.live(&room.slug).as_ref(),
    );
    let party = parties.view(room.id).await;
    let pin_list = pins.views(room.id).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "loading the room's pins failed");
        Vec::new()
    });
    let poll_list = polls
        .of_room(&room, user.as_ref(), WELCOME_POLLS)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "loading the room's polls failed");
            Vec::new()
        });
    let views = member.room.views();
    let welcome = ServerFrame::Welcome {
        room: &room_view,
        you: you.as_ref(),
        viewers: room_view.viewers,
        history: &history,
        truncated,
        party: party.as_ref(),
        pins: &pin_list,
        polls: &poll_list,
        views: &views,
        realtime: hub.realtime(room.id),
        voice: &hub.voice(room.id),
    }
    .encode();
    drop((pin_list, poll_list, views));
    drop(history);
    io.unpause(wire_text(&welcome), covered);
    drop(welcome);

    let signal = member.signal.clone();
    // Party frames may change what everyone in the room is sent: paced per connection.
    let mut party_pace = Bucket::full(PARTY_BURST, Instant::now());
    let mut map_pace = Bucket::full(MAP_BURST, Instant::now());
    let mut pin_pace = Bucket::full(PIN_BURST, Instant::now());
    // A shutdown that began while this session was joining has already signalled the others.
    if shutdown.is_cancelled() {
        signal.raise(super::Signal::RESTART);
    }
    // Once the server is stopping: the moment this client is told to move, at random within
    // the reconnect window (so clients do not all arrive elsewhere at once). Until then the
    // session goes on as before: what the client sends meanwhile is still taken.
    let mut restart_at: Option<tokio::time::Instant> = None;
    let end = loop {
        let moving =
            restart_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            biased;
            raised = std::future::poll_fn(|cx| signal.poll_raised(cx)), if restart_at.is_none() => {
                if raised != super::Signal::RESTART {
                    break End::Kicked;
                }
                let max = reconnect_jitter.as_millis() as u64;
                let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..=max));
                restart_at = Some(tokio::time::Instant::now() + jitter);
            }
            _ = tokio::time::sleep_until(moving), if restart_at.is_some() => break End::Shutdown,
            work = std::future::poll_fn(|cx| io.poll_work(cx)) => match work {
                Work::Lagged => break End::Lagged,
                Work::Gone => break End::Gone,
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    let reply = match protocol::parse_client(t.as_str()) {
                        Err(e) => Some(error_frame(e.code(), &e.to_string(), None)),
                                                Ok(frame) => match party_request(frame) {
                            Ok(req) => match party_pace.take(PARTY_BURST, PARTY_PER_S, Instant::now()) {
                                                                Ok(()) => match timed_out(&member, user.as_ref(), &req) {
                                    Some(f) => Some(f),
                                    None => party_frame(&parties, &room, user.as_ref(), req).await,
                                },
                                Err(wait) => Some(error_frame(
                                    "rate_limited",
                                    "too many watch-party frames; slow down",
                                    Some(wait.as_millis() as u64),
                                )),
                            },
                            Err(frame @ (ClientFrame::MapView { .. }
                            | ClientFrame::MapPinAdd { .. }
                            | ClientFrame::MapPinRemove { .. })) => {
                                let map = MapContext {
                                    hub: &hub,
                                    member: &member,
                                    user: user.as_ref(),
                                    pins: &pins,
                                    broker: &broker,
                                };
                                map.handle(&mut map_pace, &mut pin_pace, frame).await
                            }
                            Err(frame) => handle_frame(&hub, &member, &io, user.as_ref(), frame),
                        },
                    };
                    if let Some(reply) = reply {
                        io.send(0, wire_text(&reply));
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let err = protocol::ProtocolError::Binary;
                    io.send(0, wire_text(&error_frame(err.code(), &err.to_string(), None)));
                }
                Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(_))) => break End::TooLarge,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break End::Gone,
                Some(Ok(_)) => {} // pings are answered by tungstenite through the same queue
            },
        }
    };

    // Out of the room's fan-out now (its last frames are queued already), and off the map when
    // this was the member's last connection to the room here: decided under the room's lock,
    // so of two tabs ending at once the second one does it.
    let last = member
        .room
        .depart(member.conn_id, user.as_ref().map(|u| u.id));
    if let Some(u) = &user {
        if last && member.room.forget_view(u.id) {
            let user = AuthorView {
                id: u.id.to_string(),
                username: u.username.clone(),
            };
            broker
                .publish(Event::room(room.id, RoomEvent::MapLeft { user }))
                .await;
        }
    }
    match end {
        // Whatever is still queued (a kick's last frames, say) gets its bounded chance.
        End::Gone | End::Kicked => drain_final(&io).await,
        End::TooLarge => {
            hub.metrics()
                .refused(crate::metrics::Refusal::WsFrameTooLarge);
            let f = error_frame(
                "too_large",
                &format!("frames are at most {} bytes", protocol::MAX_CLIENT_FRAME),
                None,
            );
            finish(
                &io,
                false,
                &[wire_text(&f), wire_close(CLOSE_TOO_BIG, "frame too large")],
            )
            .await;
            // The rest of the oversized frame is still arriving: read it away (briefly), so
            // closing does not reset the connection before the client reads why.
            discard_input(ws.get_mut()).await;
        }
        End::Lagged => {
            let f = ServerFrame::Reconnect { reason: "lagged" }.encode();
            let close = wire_close(CLOSE_LAGGED, "fell behind; reconnect with since");
            finish(&io, true, &[wire_text(&f), close]).await;
        }
        End::Shutdown => {
            // Leave the room first: nothing more is queued behind the goodbye.
            drop(member);
            let f = ServerFrame::Reconnect { reason: "restart" }.encode();
            let close = wire_close(CLOSE_RESTART, "server restarting");
            finish(&io, false, &[wire_text(&f), close]).await;
        }
    }
}

enum End {
    Gone,
    /// The client sent a frame over [`protocol::MAX_CLIENT_FRAME`].
    TooLarge,
    Kicked,
    Lagged,
    Shutdown,
}

/// A client that cannot take its last frames for this long is dropped without them.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the final frames and waits (bounded) until they are written.
async fn finish(io: &ConnIo, drop_queued: bool, frames: &[bytes::Bytes]) {
    io.finish(drop_queued, frames);
    drain_final(io).await;
}

/// Reads and drops what the client still sends, until it closes, for at most 2 s or 1 MiB.
async fn discard_input(io: &mut SharedIo) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 8192];
    let mut left = 1 << 20;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while left > 0 {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n.min(left),
            }
        }
    })
    .await;
}

/// Writes what is queued, for at most [`WRITE_TIMEOUT`].
pub async fn drain_final(io: &ConnIo) {
    let drain = std::future::poll_fn(|cx| io.poll_drain(cx));
    let _ = tokio::time::timeout(WRITE_TIMEOUT, drain).await;
}

/// The server's clock, Unix milliseconds to the microsecond (what `time.pong` carries).
fn server_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_micros() as f64 / 1000.0)
}

/// Watch-party frames a connection may send at once, and per second after that (a page sends a
/// report every 5 s and a command now and then).
const PARTY_BURST: u32 = 30;
const PARTY_PER_S: f64 = 4.0;

/// A `party.*` frame as a request to the watch party; any other frame back as it was.
fn party_request(frame: ClientFrame) -> Result<Request, ClientFrame> {
    // Ids leave as strings; one that is not a number names nobody.
    let id = |s: &str| s.parse::<i64>().unwrap_or(-1);
    Ok(match frame {
        ClientFrame::PartyLoad { video_id } => Request::Load(video_id),
        ClientFrame::PartyPlay => Request::Play,
        ClientFrame::PartyPause => Request::Pause,
        ClientFrame::PartySeek { position_s } => Request::Seek(position_s),
        ClientFrame::PartyRate { rate } => Request::Rate(rate),
        ClientFrame::PartyQueue { video_ids } => Request::Queue(video_ids),
        ClientFrame::PartyNext => Request::Next,
        ClientFrame::PartyStop => Request::Stop,
        ClientFrame::PartyHost { user_id } => Request::Host(id(&user_id)),
        ClientFrame::PartyMode { mode, selected } => Request::Mode(
            match mode {
                protocol::PartyMode::Host => ControlMode::HostOnly,
                protocol::PartyMode::Selected => ControlMode::Selected,
                protocol::PartyMode::Everyone => ControlMode::Everyone,
            },
            selected.iter().map(|s| id(s)).collect(),
        ),
        ClientFrame::PartyReady { ready } => Request::Ready(ready),
        ClientFrame::PartyBuffering { state } => Request::Buffering(state),
        ClientFrame::PartyReport {
            position_s,
            at_server_ms,
        } => Request::Report {
            position_s,
            at_server_ms,
        },
        other => return Err(other),
    })
}

/// An `error` frame when a member timed out in the room gives the party a command (saying
/// where they are, ready or stalled stays open to them).
fn timed_out(member: &Membership, user: Option<&User>, req: &Request) -> Option<String> {
    let user = user?;
    if matches!(
        req,
        Request::Ready(_) | Request::Buffering(_) | Request::Report { .. }
    ) {
        return None;
    }
    let now = now_ms();
    let exp = member
        .room
        .info
        .read()
        .sanction(user.id, SanctionKind::Timeout, now)?;
    let wait = exp.map(|e| (e - now).max(0) as u64);
    Some(error_frame(
        "timed_out",
        "you are timed out in this room",
        wait,
    ))
}

/// Hands a request to the room's watch party; an `error` frame for this client when refused.
async fn party_frame(
    parties: &Parties,
    room: &Room,
    user: Option<&User>,
    req: Request,
) -> Option<String> {
    let Some(user) = user else {
        return Some(error_frame(
            "login_required",
            "log in to take part in the watch party",
            None,
        ));
    };
    let err = parties.request(room, user, req).await.err()?;
    Some(refusal(&err, "watch party request"))
}

/// An `error` frame saying why a request was refused.
fn refusal(err: &Error, what: &str) -> String {
    let (code, message) = match err {
        Error::Invalid { code, message } | Error::Conflict { code, message } => {
            (*code, message.clone())
        }
        Error::Forbidden(m) => ("forbidden", m.clone()),
        Error::NotFound(m) => ("not_found", m.clone()),
        Error::Unauthorized => ("login_required", "log in first".to_string()),
        e => {
            tracing::error!(error = %e, "{what} failed");
            ("internal", "something went wrong; try again".to_string())
        }
    };
    error_frame(code, &message, None)
}

/// What `map.*` frames need from their session.
struct MapContext<'a> {
    hub: &'a Hub,
    member: &'a Membership,
    user: Option<&'a User>,
    pins: &'a Pins,
    broker: &'a Arc<dyn Broker>,
}

impl MapContext<'_> {
    /// Relays a view (paced), or adds or removes a pin; an `error` frame when refused.
    async fn handle(
        &self,
        pace: &mut Bucket,
        pin_pace: &mut Bucket,
        frame: ClientFrame,
    ) -> Option<String> {
        let Some(user) = self.user else {
            return Some(error_frame(
                "login_required",
                "log in to use the room's map",
                None,
            ));
        };
        let room = &self.member.room;
        match frame {
            ClientFrame::MapView {
                center,
                zoom,
                bounds,
                cursor,
            } => {
                let now = Instant::now();
                if pace.take(MAP_BURST, MAP_PER_S, now).is_err() {
                    self.hub
                        .metrics()
                        .refused(crate::metrics::Refusal::MapViewDropped);
                    return None;
                }
                let p = |v: [f64; 2]| [protocol::round6(v[0]), protocol::round6(v[1])];
                let view = MapViewView {
                    user: AuthorView {
                        id: user.id.to_string(),
                        username: user.username.clone(),
                    },
                    center: p(center),
                    zoom: (zoom * 100.0).round() / 100.0,
                    bounds: [p(bounds[0]), p(bounds[1])],
                    cursor: cursor.map(p),
                };
                match room.pace_view(user.id, view, now) {
                    super::Paced::Full => Some(error_frame(
                        "map_full",
                        &format!(
                            "{} members share this room's map already",
                            super::MAX_MAP_MEMBERS
                        ),
                        None,
                    )),
                    super::Paced::Now(view) => {
                        let event = RoomEvent::MapView {
                            view: Box::new(view),
                        };
                        self.broker.publish(Event::room(room.id, event)).await;
                        None
                    }
                    super::Paced::Later(wait) => {
                        let (room, broker, user_id) = (room.clone(), self.broker.clone(), user.id);
                        tokio::spawn(async move {
                            tokio::time::sleep(wait).await;
                            if let Some(view) = room.take_pending_view(user_id, Instant::now()) {
                                let event = RoomEvent::MapView {
                                    view: Box::new(view),
                                };
                                broker.publish(Event::room(room.id, event)).await;
                            }
                        });
                        None
                    }
                    super::Paced::Queued => None,
                }
            }
            ClientFrame::MapPinAdd { .. } | ClientFrame::MapPinRemove { .. }
                if pin_pace.take(PIN_BURST, PIN_PER_S, Instant::now()).is_err() =>
            {
                Some(error_frame(
                    "rate_limited",
                    "too many pin changes; slow down",
                    Some(1000),
                ))
            }
            ClientFrame::MapPinAdd {
                place_id,
                name,
                lat,
                lng,
            } => {
                let new = NewPin {
                    place_id,
                    name,
                    lat,
                    lng,
                };
                let err = self.pins.add(user, &room.slug, new).await.err()?;
                Some(refusal(&err, "adding a pin"))
            }
            ClientFrame::MapPinRemove { id } => {
                let err = self.pins.remove(user, &room.slug, &id).await.err()?;
                Some(refusal(&err, "removing a pin"))
            }
            _ => None,
        }
    }
}

/// Handles one client frame; returns a frame for this client only, if any.
fn handle_frame(
    hub: &Hub,
    member: &Membership,
    io: &Arc<ConnIo>,
    user: Option<&User>,
    frame: ClientFrame,
) -> Option<String> {
    match frame {
        ClientFrame::Ping => Some(ServerFrame::Pong.encode()),
        ClientFrame::TimePing { t0 } => Some(
            ServerFrame::TimePong {
                t0,
                server_ms: server_ms(),
            }
            .encode(),
        ),
        ClientFrame::Send { text, nonce } => {
            let room = &member.room;
            let standing = room.info.read().standing(user);
            let Some(user) = user.filter(|_| standing.may(RoomAction::Chat)) else {
                return Some(error_frame("login_required", "log in to chat", None));
            };
            let text = match text::clean(&text) {
                Ok(t) => t,
                Err(e) => return Some(error_frame(e.code(), &e.message(), None)),
            };
            let (paced, slow_mode_s) = {
                let info = room.info.read();
                let now = now_ms();
                if info.sanction(user.id, SanctionKind::Ban, now).is_some() {
                    let f = error_frame("banned", "you are banned from this room", None);
                    room.kick_user(user.id, &f, CLOSE_BANNED);
                    return None;
                }
                if let Some(exp) = info.sanction(user.id, SanctionKind::Timeout, now) {
                    let wait = exp.map(|e| (e - now).max(0) as u64);
                    return Some(error_frame(
                        "timed_out",
                        "you are timed out in this room",
                        wait,
                    ));
                }
                (standing.is_paced(), info.slow_mode_s)
            };
            if paced {
                if let Err((code, wait)) =
                    room.pace(user.id, hub.limits(), slow_mode_s, Instant::now())
                {
                    let msg = if code == "slow_mode" {
                        "slow mode is on; wait before sending again"
                    } else {
                        "you are sending messages too fast"
                    };
                    return Some(error_frame(code, msg, Some(wait.as_millis() as u64)));
                }
            }
            let text = hub.filter().mask(&text).into_owned();
            let pending = Pending {
                room_id: room.id,
                user_id: user.id,
                username: user.username.clone(),
                text,
                nonce,
                reply: Some(io.clone()),
                kind: None,
            };
            match hub.writer().try_send(pending) {
                Ok(()) => None,
                Err(_) => Some(error_frame(
                    "unavailable",
                    "the server is busy or shutting down; try again",
                    Some(1000),
                )),
            }
        }
        // Taken by `party_request` before this is called.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: i64, text: &str) -> MessageView {
        MessageView {
            seq,
            user: crate::views::AuthorView {
                id: "1".into(),
                username: "u".into(),
            },
            text: text.into(),
            at: "2026-01-01T00:00:00Z".into(),
            nonce: None,
            kind: None,
        }
    }

    #[test]
    fn the_welcome_keeps_the_newest_messages_that_fit() {
        let mut history: Vec<MessageView> = (1001..=1100)
            .map(|i| message(i, &"가".repeat(500)))
            .collect();
        let one = serde_json::to_vec(&history[0]).unwrap().len() + 1;
        assert!(cap_history(&mut history, one * 10 + one / 2));
        assert_eq!(history.len(), 10);
        assert_eq!(history.first().unwrap().seq, 1091);
        assert_eq!(history.last().unwrap().seq, 1100);
        // Under the cap nothing is left out.
        assert!(!cap_history(&mut history, one * 10));
        assert_eq!(history.len(), 10);
    }
}
