//! Stream keys: the one secret per room that lets an encoder publish to it. Only the room's
//! managers see or rotate it; rotating ends a broadcast running on the old key (`live`
//! subscribes to the event).

use rand::Rng;

use super::events::RoomEvent;
use super::policy::RoomAction;
use super::rooms::Rooms;
use super::Result;
use crate::storage::users::User;
use crate::storage::{live as keys, now_ms};

fn new_stream_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let secret: String = (0..32)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("live_{secret}")
}

impl Rooms {
    /// The room's stream key, made on first use (two first callers get the same key).
    pub async fn stream_key(&self, user: &User, slug: &str) -> Result<String> {
        let room = self.authorised(user, slug, RoomAction::Manage).await?;
        if let Some(k) = keys::key_for_room(&self.db().pool, room.id).await? {
            return Ok(k);
        }
        let mut tx = self.db().begin().await?;
        let key = keys::key_or_insert(&mut tx, room.id, &new_stream_key(), now_ms()).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// A new stream key; the old one stops working and a broadcast on it ends.
    pub async fn rotate_stream_key(&self, user: &User, slug: &str) -> Result<String> {
        let room = self.authorised(user, slug, RoomAction::Manage).await?;
        let key = new_stream_key();
        keys::set_key(&self.db().pool, room.id, &key, now_ms()).await?;
        tracing::info!(room = %room.slug, by = %user.username, "stream key rotated");
        self.publish(room.id, RoomEvent::StreamKeyRotated { slug: room.slug })
            .await;
        Ok(key)
    }
}
