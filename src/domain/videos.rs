//! Videos: recordings of broadcasts and members' uploads, listed for their owner and shown to
//! whoever the policy lets watch them.

use super::policy::{self, VideoAction};
use super::{Error, Result};
use crate::storage::users::User;
use crate::storage::videos::{self, Video};
use crate::storage::Db;

/// The job kind that turns an upload into a playable video (subject: its public id).
pub const PROCESS_JOB: &str = "video.process";

/// A random id for URLs: 11 characters of `[A-Za-z0-9]` (65 bits).
pub fn new_public_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..11)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Most videos listed at once.
const LIST_LIMIT: i64 = 500;

/// Video operations; cheap to clone.
#[derive(Clone)]
pub struct Videos {
    db: Db,
}

impl Videos {
    pub fn new(db: Db) -> Videos {
        Videos { db }
    }

    /// The caller's own videos, newest first.
    pub async fn list_own(&self, user: &User) -> Result<Vec<Video>> {
        Ok(videos::list_owned(&self.db.pool, user.id, LIST_LIMIT).await?)
    }

    /// The video if `user` may watch it; 404 otherwise (a hidden video is not admitted to).
    pub async fn watchable(&self, user: Option<&User>, public_id: &str) -> Result<Video> {
        if public_id.len() > 32 || !public_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::not_found("video"));
        }
        let v = videos::get(&self.db.pool, public_id)
            .await?
            .ok_or_else(|| Error::not_found("video"))?;
        if !policy::may_video(user, &v, VideoAction::Watch) {
            return Err(Error::not_found("video"));
        }
        Ok(v)
    }

    /// The video made from the caller's upload `upload_id`, if it is one of theirs.
    pub async fn of_upload(&self, user: &User, upload_id: &str) -> Result<Option<Video>> {
        Ok(videos::by_upload(&self.db.pool, upload_id)
            .await?
            .filter(|v| v.owner_id == user.id))
    }
}
