//! Several nodes as one site. [`RedisBroker`] carries the event path between nodes over one
//! Redis pub/sub channel: each committed change is published once (never once per recipient)
//! and every other node hands it to its own subscribers, as if it had happened there.
//!
//! Redis delivers at most once: while it is down, slow, or a node is reconnecting, events are
//! lost. Nothing depends on it for durability. Chat messages carry the room's gap-free `seq`,
//! and a room's fan-out backfills any gap from the database and drops what it has already sent
//! (`realtime`), and the hub compares its rooms with the database every second. Every event a
//! node publishes also carries that node's own running count, so a receiver that sees a count
//! skipped (the sender's publish failed, or its outbox overflowed) knows it missed something;
//! then, and whenever the subscription comes back, [`Event::Resync`] tells this node's
//! subscribers to reread what they cache. Meanwhile each node keeps serving its own sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// may share one Redis without hearing each other (a copy of a database keeps the id: give the
/// copy a new one before it joins the same Redis, see docs/operations.md).
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
/// The subscription is asked for a PING this often; no answer within [`COMMAND_TIMEOUT`] and it
/// counts as lost (a connection cut without a word would otherwise leave the node deaf).
const HEARTBEAT: Duration = Duration::from_secs(3);
/// Waits between attempts to reach Redis again: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// The longest the outbox is given to empty at shutdown.
const FLUSH: Duration = Duration::from_secs(2);

/// What travels on the channel: the event, the node it comes from (a node skips its own) and
/// that node's count of the events it published (a gap means some were lost).
#[derive(Serialize)]
struct Outgoing<'a> {
    node: u64,
    n: u64,
    event: &'a Event,
}

#[derive(Deserialize)]
struct Incoming {
    node: u64,
    n: u64,
    event: Event,
}

/// Whether other nodes need to hear of `event`. What is about this node's own media (its SFU's
/// publishers and voice members) stays here; so does the broker's own resync notice.
fn crosses(event: &Event) -> bool {
    !matches!(
        event,
        Event::Resync
            | Event::Room {
                event: RoomEvent::Realtime { .. } | RoomEvent::Voice { .. },
                ..
            }
    )
}

/// The event path across nodes: an event is queued for Redis, then handed to this node's
/// subscribers (an answer still follows its effect here).
pub struct RedisBroker {
    local: Arc<LocalBroker>,
    node: u64,
    /// Events this node has published (the count each one carries).
    sent: AtomicU64,
    outbox: parking_lot::Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    publisher: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: CancellationToken,
    stats: Arc<BrokerStats>,
}

impl RedisBroker {
    /// Checks the URL and starts the publishing and subscribing tasks (they keep trying to
    /// reach Redis until [`close`](RedisBroker::close); the first attempt is not awaited, so a
    /// node starts while Redis is down and catches up when it comes).
    pub fn start(
        url: &str,
        site: &str,
        node: u64,
        local: Arc<LocalBroker>,
        stats: Arc<BrokerStats>,
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
        let stop = CancellationToken::new();
        let publisher = tokio::spawn(publish_loop(
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
            stop.clone(),
        ));
        Ok(Arc::new(RedisBroker {
            local,
            node,
            sent: AtomicU64::new(0),
            outbox: parking_lot::Mutex::new(Some(outbox)),
            publisher: parking_lot::Mutex::new(Some(publisher)),
            stop,
            stats,
        }))
    }

    /// At shutdown, after the last chat messages are stored: stops listening, and gives what
    /// is still queued for the other nodes up to [`FLUSH`] to go out.
    pub async fn close(&self) {
        self.stop.cancel();
        drop(self.outbox.lock().take());
        let publisher = self.publisher.lock().take();
        if let Some(p) = publisher {
            if tokio::time::timeout(FLUSH, p).await.is_err() {
                tracing::warn!("events for the other nodes were still queued at shutdown");
            }
        }
    }
}

impl Broker for RedisBroker {
    fn publish(&self, event: Event) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if crosses(&event) {
                // Counted whether or not it gets out: a receiver then sees the gap.
                let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
                let wire = serde_json::to_vec(&Outgoing {
                    node: self.node,
                    n,
                    event: &event,
                });
                let queued = match wire {
                    Ok(wire) => self
                        .outbox
                        .lock()
                        .as_ref()
                        .is_some_and(|o| o.try_send(wire).is_ok()),
                    Err(e) => {
                        tracing::error!(error = %e, "an event could not be encoded for Redis");
                        false
                    }
                };
                if !queued {
                    self.stats.publish_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.local.publish(event).await;
        })
    }
}

/// A connection for commands, with moim's own time limits (redis-rs would give up on an answer
/// after 500 ms by default).
async fn connect(client: &redis::Client) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Sends the outbox to Redis in order, many events per round trip, until the outbox closes
/// (and is empty). A batch that fails is sent once more on a new connection; one that fails
/// again is dropped and counted (the other nodes see the gap in this node's count and reread).
/// While Redis cannot be reached, a connection is tried at most every [`RETRY_MAX`] and the
/// outbox is drained meanwhile rather than queued without end.
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
        let n = batch.len() as u64;
        let mut pipe = redis::pipe();
        for wire in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(&channel).arg(wire).ignore();
        }
        let mut failure = None;
        for attempt in 0..2 {
            if conn.is_none() && (attempt > 0 || tokio::time::Instant::now() >= next_try) {
                match connect(&client).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        failure = Some(e.kind_str());
                        next_try = tokio::time::Instant::now() + RETRY_MAX;
                        break;
                    }
                }
            }
            let Some(c) = conn.as_mut() else {
                failure = Some("not connected".into());
                break;
            };
            match pipe.query_async::<()>(c).await {
                Ok(()) => {
                    failure = None;
                    break;
                }
                Err(e) => {
                    failure = Some(e.kind_str());
                    conn = None;
                }
            }
        }
        match failure {
            None => {
                stats.published.fetch_add(n, Ordering::Relaxed);
                if warned {
                    tracing::info!("publishing to Redis again");
                    warned = false;
                }
            }
            Some(why) => {
                stats.publish_failed.fetch_add(n, Ordering::Relaxed);
                if !warned {
                    tracing::warn!(error = %why, "publishing to Redis failed: the other nodes miss this one's news until it works again (they catch up from the database)");
                    warned = true;
                }
            }
        }
    }
}

/// Listens on the channel and hands other nodes' events to this node's subscribers, in the
/// order Redis delivers them. Reconnects for as long as it runs; each new subscription, and
/// each gap in a sender's count, is followed by [`Event::Resync`] here, so caches reread what
/// they missed.
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
            let (mut sink, stream) = client.get_async_pubsub().await?.split();
            sink.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>((sink, stream))
        };
        let subscribed = tokio::select! {
            _ = stop.cancelled() => break,
            r = tokio::time::timeout(COMMAND_TIMEOUT, attempt) => r,
        };
        match subscribed {
            Ok(Ok((mut sink, mut messages))) => {
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
                local.publish(Event::Resync).await;
                // Each sender's last count, to see a gap.
                let mut counts: HashMap<u64, u64> = HashMap::new();
                let mut heartbeat = tokio::time::interval(HEARTBEAT);
                heartbeat.tick().await;
                let lost = loop {
                    let msg = tokio::select! {
                        _ = stop.cancelled() => break None,
                        _ = heartbeat.tick() => {
                            let pong = tokio::time::timeout(COMMAND_TIMEOUT, sink.ping::<redis::Value>()).await;
                            if !matches!(pong, Ok(Ok(_))) {
                                break Some("Redis did not answer a PING");
                            }
                            continue;
                        }
                        m = messages.next() => m,
                    };
                    let Some(msg) = msg else {
                        break Some("the connection closed");
                    };
                    let incoming: Result<Incoming, _> =
                        serde_json::from_slice(msg.get_payload_bytes());
                    match incoming {
                        Ok(i) if i.node == node => {}
                        Ok(i) => {
                            stats.received.fetch_add(1, Ordering::Relaxed);
                            let last = counts.insert(i.node, i.n);
                            local.publish(i.event).await;
                            match last {
                                Some(l) if i.n != l + 1 => {
                                    stats.missed.fetch_add(1, Ordering::Relaxed);
                                    tracing::warn!("events from another node were lost on the way: catching up from the database");
                                    local.publish(Event::Resync).await;
                                }
                                // The first heard from a node that has published before: what
                                // came before it may be news this node has not seen.
                                None if i.n > 1 => local.publish(Event::Resync).await,
                                _ => {}
                            }
                            if counts.len() > 10_000 {
                                counts.clear();
                            }
                        }
                        Err(e) => {
                            if stats.undecodable.fetch_add(1, Ordering::Relaxed) == 0 {
                                tracing::warn!(error = %e, "an event from Redis could not be read (a node of another version?)");
                            }
                        }
                    }
                };
                stats.up.store(false, Ordering::Relaxed);
                let Some(why) = lost else { break };
                tracing::warn!(why, "lost the Redis subscription: chat goes on for this node's sockets, and catches up when Redis returns");
                down_logged = true;
            }
            failed => {
                if !down_logged {
                    let why = match failed {
                        Ok(Err(e)) => e.kind_str(),
                        _ => "timed out".to_string(),
                    };
                    tracing::warn!(error = %why, "cannot subscribe to Redis: this node hears no other until it can");
                    down_logged = true;
                }
            }
        }
        let jitter = Duration::from_millis(rand::random::<u64>() % 50);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait + jitter) => {}
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
    stats.up.store(false, Ordering::Relaxed);
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
        assert!(!crosses(&Event::Resync));
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
            n: 7,
            event: &e,
        })
        .unwrap();
        let back: Incoming = serde_json::from_slice(&wire).unwrap();
        assert_eq!((back.node, back.n), (42, 7));
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
        )
        .err()
        .unwrap();
        assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
    }
}
