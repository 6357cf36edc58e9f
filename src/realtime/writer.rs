//! The chat writer: one task that takes accepted messages from every connection, stores them in
//! batches (one transaction per batch: group commit), and only then broadcasts them. A message a
//! client has seen is therefore already committed, so it survives a crash of the server.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::{error_frame, ServerFrame};
use super::{Direct, Hub, RoomState};
use crate::storage::messages::{self, NewMessage};
use crate::storage::{now_ms, rfc3339};
use crate::views::{AuthorView, MessageView};

/// Most messages stored in one transaction.
const MAX_BATCH: usize = 512;

/// A message accepted by a connection, waiting to be stored and broadcast.
pub struct Pending {
    pub room: Arc<RoomState>,
    pub user_id: i64,
    pub username: String,
    pub text: String,
    pub nonce: Option<String>,
    /// Where to report a failure to store.
    pub reply: mpsc::Sender<Direct>,
}

/// Runs until `stop`, then stores whatever is still queued (so shutdown flushes everything).
pub async fn run(hub: Hub, mut rx: mpsc::Receiver<Pending>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => if n == 0 { break },
            _ = stop.cancelled() => {
                rx.close();
                while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    write_batch(&hub, &mut batch).await;
                    batch.clear();
                }
                break;
            }
        }
        write_batch(&hub, &mut batch).await;
        batch.clear();
    }
    tracing::debug!("chat writer drained");
}

async fn write_batch(hub: &Hub, batch: &mut [Pending]) {
    let now = now_ms();
    match store(hub, batch, now).await {
        Ok(seqs) => {
            for (p, seq) in batch.iter_mut().zip(seqs) {
                let Some(seq) = seq else {
                    fail(p, "room_deleted", "this room was deleted");
                    continue;
                };
                let view = MessageView {
                    seq,
                    user: AuthorView {
                        id: p.user_id.to_string(),
                        username: std::mem::take(&mut p.username),
                    },
                    text: std::mem::take(&mut p.text),
                    at: rfc3339(now),
                    nonce: p.nonce.take(),
                };
                p.room.broadcast(seq, ServerFrame::Message(&view).encode());
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
    let frame = Utf8Bytes::from(error_frame(code, message, None));
    let _ = p.reply.try_send(Direct::Frame(frame));
}

/// Stores a batch in one transaction; returns each message's seq (`None` if its room is gone).
async fn store(hub: &Hub, batch: &[Pending], now: i64) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let mut per_room: BTreeMap<i64, i64> = BTreeMap::new();
    for p in batch {
        *per_room.entry(p.room.id).or_default() += 1;
    }
    let mut tx = hub.db().pool.begin().await?;
    // First seq for each room, then hand them out in arrival order.
    let mut next: BTreeMap<i64, Option<i64>> = BTreeMap::new();
    for (room_id, count) in &per_room {
        let first = messages::reserve_seqs(&mut tx, *room_id, *count, now).await?;
        next.insert(*room_id, first);
    }
    let mut seqs = Vec::with_capacity(batch.len());
    for p in batch {
        let slot = next
            .get_mut(&p.room.id)
            .expect("every room of the batch was reserved");
        let seq = match slot {
            Some(s) => {
                let seq = *s;
                *s += 1;
                messages::insert(
                    &mut tx,
                    p.room.id,
                    seq,
                    &NewMessage {
                        user_id: p.user_id,
                        username: &p.username,
                        text: &p.text,
                        created_at: now,
                    },
                )
                .await?;
                Some(seq)
            }
            None => None,
        };
        seqs.push(seq);
    }
    tx.commit().await?;
    Ok(seqs)
}
