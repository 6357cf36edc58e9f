//! Each member's own event stream (`GET /api/v1/me/events`, Server-Sent Events): what happens
//! to their videos (processing progress, ready, failed, renamed, deleted) reaches every page
//! they have open, without polling.
//!
//! Delivery is best effort, like a broker's: a stream that falls behind is told to `resync`
//! (reload what it shows) rather than holding an unbounded queue.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::broadcast;

use crate::domain::events::{Event, Subscriber};

/// Events one stream may have waiting before it must resync.
const BUFFER: usize = 64;
/// Streams one member may hold open at once (tabs, devices).
pub const MAX_STREAMS_PER_MEMBER: usize = 16;

/// One event for a member's pages: its SSE `event:` name and JSON `data:`.
#[derive(Debug, Clone)]
pub struct Note {
    pub name: &'static str,
    pub data: Arc<str>,
}

/// The open streams, by member.
#[derive(Default)]
pub struct Inboxes {
    members: Mutex<HashMap<i64, broadcast::Sender<Note>>>,
}

impl Inboxes {
    pub fn new() -> Arc<Inboxes> {
        Arc::new(Inboxes::default())
    }

    /// A new stream for `user_id`, or `None` when they already hold the most allowed.
    pub fn open(&self, user_id: i64) -> Option<broadcast::Receiver<Note>> {
        let mut members = self.members.lock();
        let tx = members
            .entry(user_id)
            .or_insert_with(|| broadcast::channel(BUFFER).0);
        if tx.receiver_count() >= MAX_STREAMS_PER_MEMBER {
            return None;
        }
        Some(tx.subscribe())
    }

    fn deliver(&self, user_id: i64, note: Note) {
        let mut members = self.members.lock();
        if let Some(tx) = members.get(&user_id) {
            if tx.send(note).is_err() {
                // Nobody listens any more.
                members.remove(&user_id);
            }
        }
    }

    /// Members with a stream entry (for tests of the clean-up).
    pub fn len(&self) -> usize {
        self.members.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Subscriber for Inboxes {
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event {
                Event::Video { owner_id, video } => self.deliver(
                    *owner_id,
                    Note {
                        name: "video",
                        data: json!({ "video": video }).to_string().into(),
                    },
                ),
                Event::VideoDeleted { owner_id, id } => self.deliver(
                    *owner_id,
                    Note {
                        name: "video_deleted",
                        data: json!({ "id": id }).to_string().into(),
                    },
                ),
                Event::Room { .. }
                | Event::BlockedTerms { .. }
                | Event::Presence { .. }
                | Event::Resync => {}
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{Broker, LocalBroker};

    #[tokio::test]
    async fn notes_reach_their_member_only_and_streams_are_bounded() {
        let inboxes = Inboxes::new();
        let broker = LocalBroker::new();
        broker.subscribe(inboxes.clone());
        let mut mine = inboxes.open(1).unwrap();
        let mut theirs = inboxes.open(2).unwrap();
        broker
            .publish(Event::VideoDeleted {
                owner_id: 1,
                id: "abc".into(),
            })
            .await;
        let note = mine.recv().await.unwrap();
        assert_eq!(
            (note.name, &*note.data),
            ("video_deleted", r#"{"id":"abc"}"#)
        );
        assert!(theirs.try_recv().is_err());
        let held: Vec<_> = (1..MAX_STREAMS_PER_MEMBER)
            .map(|_| inboxes.open(1).unwrap())
            .collect();
        assert!(inboxes.open(1).is_none(), "one more than allowed");
        drop(held);
        drop(mine);
        assert!(inboxes.open(1).is_some());
        // A member whose streams all closed is forgotten at the next event.
        drop(theirs);
        broker
            .publish(Event::VideoDeleted {
                owner_id: 2,
                id: "x".into(),
            })
            .await;
        assert_eq!(inboxes.len(), 1);
    }
}
