//! Several nodes as one site. [`RedisBroker`] carries the event path between nodes over one
//! Redis pub/sub channel: each committed change is published once (never once per recipient)
//! and every other node hands it to its own subscribers, as if it had happened there.
//!
//! Redis delivers at most once: while it is down or a node is reconnecting, events are lost.
//! Nothing depends on it for durability. Chat messages carry the room's gap-free `seq`, and a
//! room's fan-out backfills any gap from the database and drops what it has already sent
//! (`realtime`); when the subscription comes back, [`Event::Reconnected`] tells this node's
//! subscribers to reread what they cache (the hub: each loaded room's moderation facts and the
//! messages it missed). Meanwhile each node keeps serving its own sockets.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::events::{Broker, Event, LocalBroker, RoomEvent};
pub use crate::metrics::BrokerStats;

/// The pub/sub channel the nodes of site `site` publish to and listen on. The site is named by
/// a random id kept in its database, so nodes sharing a database share a channel and two sites
/// may share one Redis without hearing each other.
pub fn channel(site: &str) -> String {
    format!("moim:{site}:events")
}

/// Events waiting to go to Redis; beyond this (Redis slower than the site, or unreachable for
/// long) new ones are dropped and counted.
const OUTBOX: usize = 16_384;
/// Events sent to Redis in one round trip at most.
const BATCH: usize = 256;
/// How long one Redis command may take before the connection counts as lost.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Waits between attempts to reach Redis again: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What travels on the channel: the event and the node it comes from (a node skips its own).
#[derive(Serialize)]
struct Outgoing<'a> {
    node: u64,
    event: &'a Event,
}

#[derive(Deserialize)]
struct Incoming {
    node: u64,
    event: Event,
}

/// Whether other nodes need to hear of `event`. What is about this node's own media (its SFU's
/// publishers and voice members) stays here; so does the broker's own reconnect notice.
fn crosses(event: &Event) -> bool {
    !matches!(
        event,
        Event::Reconnected
            | Event::Room {
                event: RoomEvent::Realtime { .. } | RoomEvent::Voice { .. },
                ..
            }
    )
}

/// The event path across nodes: this node's subscribers first (an answer still follows its
/// effect here), then Redis for the others.
pub struct RedisBroker {
    local: Arc<LocalBroker>,
    node: u64,
    outbox: mpsc::Sender<Vec<u8>>,
    stats: Arc<BrokerStats>,
}

impl RedisBroker {
    /// Checks the URL and starts the publishing and subscribing tasks (they keep trying to
    /// reach Redis until `stop`; the first attempt is not awaited, so a node starts while
    /// Redis is down and catches up when it comes).
    pub fn start(
        url: &str,
        site: &str,
        node: u64,
        local: Arc<LocalBroker>,
        stats: Arc<BrokerStats>,
        stop: CancellationToken,
    ) -> anyhow::Result<Arc<RedisBroker>> {
        anyhow::ensure!(
            url.starts_with("redis://") || url.starts_with("redis+unix://"),
            "the Redis URL must start with redis:// (or redis+unix:// for a socket)"
        );
        // The error may quote the URL, password and all: say only what is wrong.
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("the Redis URL cannot be read ({:?})", e.kind()))?;
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let channel = channel(site);
        tokio::spawn(publish_loop(
            client.clone(),
            channel.clone(),
            rx,
            stats.clone(),
        ));
        tokio::spawn(subscribe_loop(
            client,
            channel,
            node,
            local.clone(),
            stats.clone(),
            stop,
        ));
        Ok(Arc::new(RedisBroker {
            local,
            node,
            outbox,
            stats,
        }))
    }
}

impl Broker for RedisBroker {
    fn publish(&self, event: Event) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if crosses(&event) {
                let wire = serde_json::to_vec(&Outgoing {
                    node: self.node,
                    event: &event,
                });
                match wire {
                    Ok(wire) => {
                        if self.outbox.try_send(wire).is_err() {
                            self.stats.publish_failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "an event could not be encoded for Redis");
                        self.stats.publish_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            self.local.publish(event).await;
        })
    }
}

/// Sends the outbox to Redis in order, many events per round trip. While Redis cannot be
/// reached the outbox is drained and counted as failed (other nodes backfill chat by seq and
/// reread their caches when they reconnect), with a connection attempt at most every
/// [`RETRY_MAX`].
async fn publish_loop(
    client: redis::Client,
    channel: String,
    mut rx: mpsc::Receiver<Vec<u8>>,
    stats: Arc<BrokerStats>,
) {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut next_try = tokio::time::Instant::now();
    let mut warned = false;
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if conn.is_none() && tokio::time::Instant::now() >= next_try {
            let c =
                tokio::time::timeout(COMMAND_TIMEOUT, client.get_multiplexed_async_connection())
                    .await;
            match c {
                Ok(Ok(c)) => {
                    if warned {
                        tracing::info!("publishing to Redis again");
                        warned = false;
                    }
                    conn = Some(c);
                }
                Ok(Err(e)) => {
                    if !warned {
                        tracing::warn!(error = %e.kind_str(), "cannot publish to Redis: other nodes hear nothing from this one until it returns");
                        warned = true;
                    }
                    next_try = tokio::time::Instant::now() + RETRY_MAX;
                }
                Err(_) => {
                    if !warned {
                        tracing::warn!("Redis did not answer: other nodes hear nothing from this one until it returns");
                        warned = true;
                    }
                    next_try = tokio::time::Instant::now() + RETRY_MAX;
                }
            }
        }
        let n = batch.len() as u64;
        let Some(c) = conn.as_mut() else {
            stats.publish_failed.fetch_add(n, Ordering::Relaxed);
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        for wire in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(&channel).arg(wire).ignore();
        }
        let sent = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<()>(c)).await;
        match sent {
            Ok(Ok(())) => {
                stats.published.fetch_add(n, Ordering::Relaxed);
            }
            failed => {
                stats.publish_failed.fetch_add(n, Ordering::Relaxed);
                if !warned {
                    let why = match failed {
                        Ok(Err(e)) => e.kind_str().to_string(),
                        _ => "timed out".to_string(),
                    };
                    tracing::warn!(error = %why, "publishing to Redis failed: other nodes hear nothing from this one until it returns");
                    warned = true;
                }
                conn = None;
                next_try = tokio::time::Instant::now() + RETRY_FIRST;
            }
        }
    }
}

/// Listens on the channel and hands other nodes' events to this node's subscribers, in the
/// order Redis delivers them. Reconnects for as long as it runs; each new subscription is
/// followed by [`Event::Reconnected`] here, so caches reread what they missed meanwhile.
async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    node: u64,
    local: Arc<LocalBroker>,
    stats: Arc<BrokerStats>,
    stop: CancellationToken,
) {
    let mut wait = RETRY_FIRST;
    let mut first = true;
    let mut down_logged = false;
    loop {
        let attempt = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let subscribed = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(COMMAND_TIMEOUT, attempt) => r,
        };
        match subscribed {
            Ok(Ok(pubsub)) => {
                stats.up.store(true, Ordering::Relaxed);
                wait = RETRY_FIRST;
                if first {
                    tracing::info!("subscribed to Redis: this node hears the others");
                } else {
                    stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("subscribed to Redis again: catching up from the database");
                }
                first = false;
                // Whatever was published while no subscription stood is lost: caches reread.
                local.publish(Event::Reconnected).await;
                let mut messages = pubsub.into_on_message();
                loop {
                    let msg = tokio::select! {
                        _ = stop.cancelled() => return,
                        m = messages.next() => m,
                    };
                    let Some(msg) = msg else { break };
                    let incoming: Result<Incoming, _> =
                        serde_json::from_slice(msg.get_payload_bytes());
                    match incoming {
                        Ok(i) if i.node == node => {}
                        Ok(i) => {
                            stats.received.fetch_add(1, Ordering::Relaxed);
                            local.publish(i.event).await;
                        }
                        Err(e) => {
                            if stats.undecodable.fetch_add(1, Ordering::Relaxed) == 0 {
                                tracing::warn!(error = %e, "an event from Redis could not be read (a node of another version?)");
                            }
                        }
                    }
                }
                stats.up.store(false, Ordering::Relaxed);
                tracing::warn!("lost the Redis subscription: chat goes on for this node's sockets, and catches up when Redis returns");
                down_logged = true;
            }
            failed => {
                if !down_logged {
                    let why = match failed {
                        Ok(Err(e)) => e.kind_str().to_string(),
                        _ => "timed out".to_string(),
                    };
                    tracing::warn!(error = %why, "cannot subscribe to Redis: this node hears no other until it can");
                    down_logged = true;
                }
            }
        }
        let jitter = Duration::from_millis(rand::random::<u64>() % 50);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait + jitter) => {}
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}

trait KindStr {
    fn kind_str(&self) -> String;
}

impl KindStr for redis::RedisError {
    /// The error without its details (which may quote the URL).
    fn kind_str(&self) -> String {
        if self.is_connection_refusal() {
            "connection refused".into()
        } else if self.is_timeout() {
            "timed out".into()
        } else if self.is_connection_dropped() {
            "connection dropped".into()
        } else {
            format!("{:?}", self.kind())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_media_and_the_reconnect_notice_stay_on_the_node() {
        assert!(!crosses(&Event::Reconnected));
        assert!(!crosses(&Event::room(
            1,
            RoomEvent::Realtime { publishing: true }
        )));
        assert!(!crosses(&Event::room(
            1,
            RoomEvent::Voice { members: vec![] }
        )));
        assert!(crosses(&Event::room(1, RoomEvent::LiveEnded)));
        assert!(crosses(&Event::room(
            1,
            RoomEvent::MessageDeleted { seq: 2 }
        )));
    }

    #[test]
    fn the_envelope_round_trips() {
        let e = Event::room(3, RoomEvent::MessageDeleted { seq: 9 });
        let wire = serde_json::to_vec(&Outgoing {
            node: 42,
            event: &e,
        })
        .unwrap();
        let back: Incoming = serde_json::from_slice(&wire).unwrap();
        assert_eq!(back.node, 42);
        assert!(matches!(
            back.event,
            Event::Room {
                room_id: 3,
                event: RoomEvent::MessageDeleted { seq: 9 }
            }
        ));
    }

    #[test]
    fn a_bad_url_is_refused_without_being_quoted() {
        let local = LocalBroker::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let err = RedisBroker::start(
            "http://user:hunter2@host",
            "site",
            1,
            local.clone(),
            Default::default(),
            CancellationToken::new(),
        )
        .err()
        .unwrap();
        assert!(!format!("{err:#}").contains("hunter2"));
        let err = RedisBroker::start(
            "redis://user:hunter2@[bad",
            "site",
            1,
            local,
            Default::default(),
            CancellationToken::new(),
        )
        .err()
        .unwrap();
        assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
    }
}
