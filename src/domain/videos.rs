//! Videos: for now the recordings of broadcasts, listed for their owner and shown to whoever
//! the policy lets watch them (the library adds uploads, sharing and deletion).

use super::policy::{self, VideoAction};
use super::{Error, Result};
use crate::storage::users::User;
use crate::storage::videos::{self, Video};
use crate::storage::Db;

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
        if !policy::may_video(user, v.owner_id, v.status, VideoAction::Watch) {
            return Err(Error::not_found("video"));
        }
        Ok(v)
    }
}
