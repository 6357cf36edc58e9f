//! The one event path: every state change a domain operation commits is published here as a
//! typed [`Event`], and whatever must react subscribes (the rooms hub fans frames out to
//! sockets, `live` ends broadcasts; later the watch party and a Redis broker for other nodes).
//!
//! Events are plain data that serialise to JSON, so a broker between nodes can carry them.
//! Order and durability come from the database, not from here: a subscriber that needs every
//! chat message (another node) checks `seq` for gaps and backfills from storage.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::storage::rooms::{Room, SanctionKind};
use crate::views::{
    AuthorView, LiveView, MapViewView, MessageView, PartyView, PinView, PollResultsView, PollView,
    VideoView,
};

/// Something that happened, after it was committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// Something happened in one room.
    Room { room_id: i64, event: RoomEvent },
    /// The site's blocked-terms lists changed.
    BlockedTerms {
        terms: Vec<String>,
        allowed: Vec<String>,
    },
    /// A video was added or changed (uploaded, processing progress, ready, failed, edited).
    Video { owner_id: i64, video: VideoView },
    /// A video was deleted.
    VideoDeleted { owner_id: i64, id: String },
    /// How many watch each room loaded on node `node` (sent by each node of a site every
    /// second while it has any; a node's figures older than a few seconds are forgotten).
    Presence { node: u64, rooms: Vec<(i64, usize)> },
    /// Events from other nodes may have been missed (this node's Redis subscription came up
    /// again, or another node's count skipped): what subscribers cache is reread. Never sent
    /// between nodes.
    Resync,
}

/// What happened in a room.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    /// A chat message was stored.
    Message {
        message: MessageView,
    },
    /// A moderator removed a message.
    MessageDeleted {
        seq: i64,
    },
    /// Title, slow mode or recording changed (the room as it is now).
    Updated {
        room: Room,
    },
    /// The room is gone, with everything in it.
    Deleted {
        slug: String,
    },
    ModeratorAdded {
        user_id: i64,
    },
    ModeratorRemoved {
        user_id: i64,
    },
    /// A ban or timeout, new or replaced (`expires_at` in unix ms; `None` = permanent).
    Sanctioned {
        user_id: i64,
        kind: SanctionKind,
        expires_at: Option<i64>,
    },
    SanctionLifted {
        user_id: i64,
        kind: SanctionKind,
    },
    /// The stream key changed: the old one no longer publishes.
    StreamKeyRotated {
        slug: String,
    },
    /// A broadcast started.
    LiveStarted {
        live: LiveView,
    },
    /// The room's broadcast ended.
    LiveEnded,
    /// The room's watch party changed (its whole new state).
    Party {
        party: Box<PartyView>,
    },
    /// The pins on the room's map changed (all of them as they are now).
    Pins {
        pins: Vec<PinView>,
    },
    /// A poll was created, voted in or closed. `poll` is as someone who may not see the
    /// results sees it; `results` goes to `audience` only.
    Poll {
        poll: Box<PollView>,
        results: Option<Box<PollResultsView>>,
        audience: Audience,
    },
    /// A member's view of the room's map moved (relayed to everyone there, never stored).
    MapView {
        view: Box<MapViewView>,
    },
    /// A member left the room's map (their last connection to the room ended).
    MapLeft {
        user: AuthorView,
    },
    /// A WebRTC publisher (WHIP) connected to the room's broadcast, or left it.
    Realtime {
        publishing: bool,
    },
    /// The room's voice chat members changed (joined, left, muted, speaking).
    Voice {
        members: Vec<crate::views::VoiceMemberView>,
    },
}

/// Who is sent a poll's results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Everyone,
    /// Those who voted (the results of an `on_vote` poll), by user id.
    Voters(Vec<i64>),
    Nobody,
}

impl Event {
    pub fn room(room_id: i64, event: RoomEvent) -> Event {
        Event::Room { room_id, event }
    }
}

/// Reacts to events on this node.
pub trait Subscriber: Send + Sync {
    /// Handles one event; `publish` waits for it, so handlers are quick (hand work to a task
    /// if it may take long).
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()>;
}

/// The publish side of the event path.
pub trait Broker: Send + Sync {
    /// Delivers `event` to this node's subscribers, in order, before returning (so an HTTP
    /// answer follows its effect: a banned user is already disconnected), and to other nodes
    /// where there are any.
    fn publish(&self, event: Event) -> BoxFuture<'_, ()>;
}

/// The in-process broker: one node, subscribers called in the order they subscribed.
#[derive(Default)]
pub struct LocalBroker {
    subscribers: RwLock<Vec<Arc<dyn Subscriber>>>,
}

impl LocalBroker {
    pub fn new() -> Arc<LocalBroker> {
        Arc::new(LocalBroker::default())
    }

    /// Adds a subscriber (at start-up, before events flow).
    pub fn subscribe(&self, s: Arc<dyn Subscriber>) {
        self.subscribers.write().push(s);
    }
}

impl Broker for LocalBroker {
    fn publish(&self, event: Event) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Cloned out, so a subscriber may publish in turn (live ends a broadcast when its
            // room is deleted, and says so).
            let subs: Vec<Arc<dyn Subscriber>> = self.subscribers.read().clone();
            for s in subs {
                s.handle(&event).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    struct Record(Arc<Mutex<Vec<String>>>, &'static str);

    impl Subscriber for Record {
        fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                let Event::Room { room_id, .. } = event else {
                    return;
                };
                self.0.lock().push(format!("{}:{room_id}", self.1));
            })
        }
    }

    #[tokio::test]
    async fn every_subscriber_hears_each_event_in_order() {
        let broker = LocalBroker::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        broker.subscribe(Arc::new(Record(log.clone(), "a")));
        broker.subscribe(Arc::new(Record(log.clone(), "b")));
        broker.publish(Event::room(1, RoomEvent::LiveEnded)).await;
        broker
            .publish(Event::room(2, RoomEvent::MessageDeleted { seq: 3 }))
            .await;
        broker
            .publish(Event::BlockedTerms {
                terms: vec![],
                allowed: vec![],
            })
            .await;
        assert_eq!(*log.lock(), ["a:1", "b:1", "a:2", "b:2"]);
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = Event::room(
            7,
            RoomEvent::Sanctioned {
                user_id: 3,
                kind: SanctionKind::Timeout,
                expires_at: Some(1_000),
            },
        );
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"room","room_id":7,"event":{"type":"sanctioned","user_id":3,"kind":"timeout","expires_at":1000}}"#
        );
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
}
