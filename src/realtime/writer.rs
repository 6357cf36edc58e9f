//! The chat writer: one task that takes accepted messages from every connection, stores them in
//! batches (one transaction per batch: group commit), and only then publishes them on the event
//! path (the hub fans them out). A message a client has seen is therefore already committed, so
//! it survives a crash of the server.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::conn::{wire_text, ConnIo};
use super::protocol::error_frame;
use super::Hub;
use crate::domain::events::{Broker, Event, RoomEvent};
use crate::storage::messages::{self, NewMessage};
use crate::storage::{now_ms, rfc3339};
use crate::views::{AuthorView, MessageView};

/// Most messages stored in one transaction. The real limit is also at most half a connection's
/// queue (`room_buffer`), so one commit's burst cannot push a healthy reader into lag.
const MAX_BATCH: usize = 512;

/// A message accepted by a connection, waiting to be stored and broadcast.
pub struct Pending {
    pub room_id: i64,
    pub user_id: i64,
    pub username: String,
    pub text: String,
    pub nonce: Option<String>,
    /// The sender's connection, to report a failure to store (`None` for a line the server
    /// writes).
    pub reply: Option<Arc<ConnIo>>,
    /// `None` for a member's message; what the server wrote it about otherwise (`poll`).
    pub kind: Option<&'static str>,
}

/// After a commit, messages arriving within this window wait for its end so they share the next
/// commit. Idle rooms pay nothing; busy servers commit at most every couple of milliseconds.
const LINGER: Duration = Duration::from_millis(2);

/// Runs until `stop`, then stores whatever is still queued (so shutdown flushes everything).
pub async fn run(
    hub: Hub,
    broker: Arc<dyn Broker>,
    mut rx: mpsc::Receiver<Pending>,
    stop: CancellationToken,
) {
    let max = hub.room_buffer().div_ceil(2).clamp(8, MAX_BATCH);
    let mut batch = Vec::with_capacity(max);
    let mut last_commit: Option<Instant> = None;
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, max) => if n == 0 { break },
            _ = stop.cancelled() => {
                rx.close();
                while rx.recv_many(&mut batch, max).await > 0 {
                    write_batch(&hub, &*broker, &mut batch).await;
                    batch.clear();
                }
                break;
            }
        }
        if let Some(until) = last_commit.map(|t| t + LINGER) {
            if Instant::now() < until && batch.len() < max {
                tokio::time::sleep_until(until.into()).await;
                while batch.len() < max {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
            }
        }
        write_batch(&hub, &*broker, &mut batch).await;
        last_commit = Some(Instant::now());
        batch.clear();
    }
    tracing::debug!("chat writer drained");
}

async fn write_batch(hub: &Hub, broker: &dyn Broker, batch: &mut [Pending]) {
    let now = now_ms();
    let rows: Vec<NewMessage> = batch
        .iter()
        .map(|p| NewMessage {
            room_id: p.room_id,
            user_id: p.user_id,
            username: &p.username,
            text: &p.text,
            kind: p.kind.unwrap_or("chat"),
        })
        .collect();
    let stored = async {
        let mut tx = hub.db().begin().await?;
        let seqs = messages::store_batch(&mut tx, &rows, now).await?;
        tx.commit().await?;
        Ok::<_, crate::storage::DbError>(seqs)
    }
    .await;
    drop(rows);
    match stored {
        Ok(seqs) => {
            for (p, seq) in batch.iter_mut().zip(seqs) {
                let Some(seq) = seq else {
                    fail(p, "room_deleted", "this room was deleted");
                    continue;
                };
                let message = MessageView {
                    seq,
                    user: AuthorView {
                        id: p.user_id.to_string(),
                        username: std::mem::take(&mut p.username),
                    },
                    text: std::mem::take(&mut p.text),
                    at: rfc3339(now),
                    nonce: p.nonce.take(),
                    kind: p.kind.map(str::to_string),
                };
                // The hub hands it to the room as loaded now, not as it was when the message was
                // sent: if everyone left and someone rejoined meanwhile, the newcomer gets it too.
                broker
                    .publish(Event::room(p.room_id, RoomEvent::Message { message }))
                    .await;
                hub.metrics().messages_in.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, count = batch.len(), "storing chat messages failed");
            for p in batch.iter() {
                fail(p, "internal", "the message could not be stored; try again");
            }
        }
    }
}

fn fail(p: &Pending, code: &str, message: &str) {
    match &p.reply {
        Some(reply) => {
            reply.send(0, wire_text(&error_frame(code, message, None)));
        }
        None => tracing::warn!(
            room = p.room_id,
            code,
            "a server's chat line was not stored"
        ),
    }
}
