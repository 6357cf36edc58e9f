//! One WebSocket connection in a room: welcome (history or resume), then a loop that relays the
//! room's broadcasts, answers the client's frames, and ends on kick, lag, close or shutdown.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use super::protocol::{self, error_frame, ClientFrame, ServerFrame};
use super::writer::Pending;
use super::{text, Direct, Hub, Membership, RoomInfo};
use crate::storage::messages;
use crate::storage::now_ms;
use crate::storage::rooms::{Room, SanctionKind};
use crate::storage::users::User;
use crate::views::{MessageView, RoomView, UserView};

/// Close codes we send.
pub const CLOSE_RESTART: u16 = 1012;
pub const CLOSE_LAGGED: u16 = 4001;
pub const CLOSE_BANNED: u16 = 4003;

/// How a connection was opened.
pub struct Opened {
    pub room: Room,
    pub info: RoomInfo,
    pub user: Option<User>,
    pub since: Option<i64>,
}

/// Runs a connection to its end.
/// Per-server settings every session uses.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub grace: Duration,
    pub history_limit: usize,
    pub resume_limit: usize,
    /// A connection that flushed less than this long ago holds further broadcast frames until
    /// this long has passed, so a busy room costs one write per interval, not one per message.
    pub coalesce: Duration,
}

pub async fn run(
    hub: Hub,
    mut socket: WebSocket,
    opened: Opened,
    shutdown: CancellationToken,
    settings: Settings,
) {
    let Settings {
        grace,
        history_limit,
        resume_limit,
        coalesce,
    } = settings;
    let Opened {
        room,
        info,
        user,
        since,
    } = opened;
    let (mut member, mut rx) = hub.join(&room, info, user.as_ref().map(|u| u.id));

    // History is read after subscribing, so nothing falls between; duplicates are skipped by seq.
    let pool = &hub.db().pool;
    let (history, truncated) = match since {
        Some(since) => {
            let limit = resume_limit as i64;
            let mut rows = match messages::after_latest(pool, room.id, since, limit + 1).await {
                Ok(r) => r,
                Err(e) => return internal(socket, e).await,
            };
            let truncated = rows.len() as i64 > limit;
            if truncated {
                rows.remove(0);
            }
            (rows, truncated)
        }
        None => match messages::page(pool, room.id, None, history_limit as i64).await {
            Ok(r) => (r, false),
            Err(e) => return internal(socket, e).await,
        },
    };
    let mut last_seq = history.last().map_or(since.unwrap_or(0), |m| m.seq);
    let history: Vec<MessageView> = history.iter().map(MessageView::from).collect();
    let you = user.as_ref().map(UserView::from);
    let room_view = RoomView::new(&room, member.room.viewers());
    let welcome = ServerFrame::Welcome {
        room: &room_view,
        you: you.as_ref(),
        viewers: room_view.viewers,
        history: &history,
        truncated,
    }
    .encode();
    drop(history);
    if !timed(socket.send(Message::Text(welcome.into()))).await {
        return;
    }

    let metrics = hub.metrics();
    let signal = member.signal.clone();
    // A shutdown that began while this session was joining has already signalled the others.
    if shutdown.is_cancelled() {
        signal.raise(super::Signal::RESTART);
    }
    // Write coalescing: frames fed but not yet flushed wait for `flush_at`.
    let mut last_flush = Instant::now()
        .checked_sub(coalesce)
        .unwrap_or_else(Instant::now);
    let mut unflushed = false;
    let flush_timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(flush_timer);
    let end = loop {
        tokio::select! {
            biased;
            _ = &mut flush_timer, if unflushed => {
                if !timed(socket.flush()).await { break End::Gone; }
                unflushed = false;
                last_flush = Instant::now();
            }
            raised = std::future::poll_fn(|cx| signal.poll_raised(cx)) => {
                break if raised == super::Signal::RESTART { End::Shutdown } else { End::Kicked };
            }
            direct = member.direct_rx.recv() => match direct {
                Some(Direct::Frame(f)) => {
                    if !timed(socket.send(Message::Text(f))).await { break End::Gone; }
                }
                Some(Direct::Close(f, code)) => {
                    timed(socket.send(Message::Text(f))).await;
                    break End::Close(code);
                }
                None => break End::Gone,
            },
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    if let Some(reply) = handle_frame(&hub, &member, user.as_ref(), t.as_str()) {
                        if !timed(socket.send(Message::Text(reply.into()))).await { break End::Gone; }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let err = protocol::ProtocolError::Binary;
                    let f = error_frame(err.code(), &err.to_string(), None);
                    if !timed(socket.send(Message::Text(f.into()))).await { break End::Gone; }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break End::Gone,
                Some(Ok(_)) => {} // ping/pong frames are answered by the library
            },
            b = rx.recv() => match b {
                Ok(b) => {
                    if b.seq != 0 && b.seq <= last_seq { continue; }
                    if b.seq != 0 { last_seq = b.seq; }
                    // Write what is already queued before flushing once: fewer syscalls under load.
                    record(metrics, &b);
                    if !timed(socket.feed(Message::Text(b.text))).await { break End::Gone; }
                    let mut lagged = false;
                    for _ in 0..64 {
                        match rx.try_recv() {
                            Ok(b) => {
                                if b.seq != 0 && b.seq <= last_seq { continue; }
                                if b.seq != 0 { last_seq = b.seq; }
                                record(metrics, &b);
                                if !timed(socket.feed(Message::Text(b.text))).await { break; }
                            }
                            // Never skip past a gap silently: the client must resync.
                            Err(TryRecvError::Lagged(_)) => { lagged = true; break; }
                            Err(_) => break,
                        }
                    }
                    if lagged { break End::Lagged; }
                    let now = Instant::now();
                    let flush_at = last_flush + coalesce;
                    if now >= flush_at {
                        if !timed(socket.flush()).await { break End::Gone; }
                        unflushed = false;
                        last_flush = now;
                    } else if !unflushed {
                        unflushed = true;
                        flush_timer.as_mut().reset(flush_at.into());
                    }
                }
                Err(RecvError::Lagged(_)) => break End::Lagged,
                Err(RecvError::Closed) => break End::Gone,
            },
        }
    };

    match end {
        End::Gone | End::Kicked => {}
        End::Close(code) => close(&mut socket, code, "closed").await,
        End::Lagged => {
            let f = ServerFrame::Reconnect { reason: "lagged" }.encode();
            timed(socket.send(Message::Text(f.into()))).await;
            close(
                &mut socket,
                CLOSE_LAGGED,
                "fell behind; reconnect with since",
            )
            .await;
        }
        End::Shutdown => {
            // Spread reconnects so a restart is not met by every client at the same instant.
            drop(member);
            let max = grace.as_millis().clamp(1, 2000) as u64 / 2;
            let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..=max));
            tokio::time::sleep(jitter).await;
            let f = ServerFrame::Reconnect { reason: "restart" }.encode();
            timed(socket.send(Message::Text(f.into()))).await;
            close(&mut socket, CLOSE_RESTART, "server restarting").await;
        }
    }
}

enum End {
    Gone,
    Kicked,
    Close(u16),
    Lagged,
    Shutdown,
}

/// Counts a chat message delivery (other frames are not deliveries).
fn record(metrics: &crate::metrics::Metrics, b: &super::Broadcast) {
    if b.seq != 0 {
        metrics.messages_out.fetch_add(1, Ordering::Relaxed);
        metrics.fanout.observe(b.sent_at.elapsed());
    }
}

/// A client that cannot take a frame for this long is dropped: a stuck socket must not pin the
/// connection (or delay shutdown) forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a socket write with [`WRITE_TIMEOUT`]; true when it succeeded. Most writes complete at
/// once, so the timer is only set up for one that has to wait.
async fn timed<E>(write: impl std::future::Future<Output = Result<(), E>>) -> bool {
    let mut write = std::pin::pin!(write);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(r) => r.is_ok(),
        std::task::Poll::Pending => {
            matches!(tokio::time::timeout(WRITE_TIMEOUT, write).await, Ok(Ok(())))
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }));
    timed(socket.send(frame)).await;
}

async fn internal(mut socket: WebSocket, e: sqlx::Error) {
    tracing::error!(error = %e, "loading chat history failed");
    let f = error_frame("internal", "could not load the room; try again", None);
    timed(socket.send(Message::Text(f.into()))).await;
    close(&mut socket, 1011, "internal error").await;
}

/// Handles one client frame; returns a frame for this client only, if any.
fn handle_frame(hub: &Hub, member: &Membership, user: Option<&User>, raw: &str) -> Option<String> {
    let frame = match protocol::parse_client(raw) {
        Ok(f) => f,
        Err(e) => return Some(error_frame(e.code(), &e.to_string(), None)),
    };
    match frame {
        ClientFrame::Ping => Some(ServerFrame::Pong.encode()),
        ClientFrame::Send { text, nonce } => {
            let Some(user) = user else {
                return Some(error_frame("login_required", "log in to chat", None));
            };
            let text = match text::clean(&text) {
                Ok(t) => t,
                Err(e) => return Some(error_frame(e.code(), &e.message(), None)),
            };
            let room = &member.room;
            let (moderator, slow_mode_s) = {
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
                (info.can_moderate(user), info.slow_mode_s)
            };
            if !moderator {
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
                room: room.clone(),
                user_id: user.id,
                username: user.username.clone(),
                text,
                nonce,
                reply: member.direct_tx.clone(),
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
    }
}
