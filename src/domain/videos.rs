//! Videos: recordings of broadcasts and members' uploads, listed for their owner and shown to
//! whoever the policy lets watch them.

use std::sync::Arc;

use super::events::{Broker, Event};
use super::policy::{self, VideoAction};
use super::{text, Error, Result};
use crate::storage::users::User;
use crate::storage::videos::{self, Video, VideoSource, VideoStatus, Visibility};
use crate::storage::{jobs, now_ms, uploads, Db};
use crate::views::VideoView;

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

/// The job kind that deletes every blob under a prefix (subject: `videos/{id}/` or
/// `uploads/{id}/`), after the video's row is gone.
pub const DELETE_BLOBS_JOB: &str = "blobs.delete";

/// Most videos listed at once.
const LIST_LIMIT: i64 = 500;

/// Video operations; cheap to clone.
#[derive(Clone)]
pub struct Videos {
    db: Db,
    broker: Arc<dyn Broker>,
    /// How long a deleted video's files wait before they go: long enough for a worker still
    /// processing it to notice (its job is gone) and stop writing.
    delete_delay_ms: i64,
}

/// A change to a video's details; absent fields stay as they are.
#[derive(Debug, Default, Clone)]
pub struct VideoPatch {
    pub title: Option<String>,
    pub visibility: Option<Visibility>,
}

/// Fails uploaded videos left processing with no job to finish them (a backstop run at
/// start: a transaction makes them impossible) and lets their files and uploads go. Returns
/// how many there were.
pub async fn fail_orphans(db: &Db) -> Result<usize> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let orphans = videos::fail_orphans(&mut *tx, now).await?;
    for (public_id, upload) in &orphans {
        let dir = format!("videos/{public_id}/");
        jobs::enqueue(&mut *tx, DELETE_BLOBS_JOB, &dir, now).await?;
        if let Some(upload) = upload {
            if uploads::delete(&mut *tx, upload).await? {
                let dir = format!("uploads/{upload}/");
                jobs::enqueue(&mut *tx, DELETE_BLOBS_JOB, &dir, now).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(orphans.len())
}

impl Videos {
    pub fn new(db: Db, broker: Arc<dyn Broker>, delete_delay_ms: i64) -> Videos {
        Videos {
            db,
            broker,
            delete_delay_ms,
        }
    }

    /// The video if `user` may manage it: 404 when they may not even see it, 403 when they may
    /// watch but not change it.
    pub async fn manageable(&self, user: &User, public_id: &str) -> Result<Video> {
        let v = self.watchable(Some(user), public_id).await?;
        if !policy::may_video(Some(user), &v, VideoAction::Manage) {
            return Err(Error::Forbidden(
                "only its owner may change this video".into(),
            ));
        }
        Ok(v)
    }

    /// Renames a video or changes who may watch it.
    pub async fn update(&self, user: &User, public_id: &str, patch: VideoPatch) -> Result<Video> {
        let v = self.manageable(user, public_id).await?;
        let title = match &patch.title {
            Some(t) => Some(text::clean_line(t, 200).map_err(|why| {
                Error::invalid(
                    "invalid_title",
                    match why {
                        text::TextError::Empty => "the title is empty",
                        text::TextError::TooLong => "the title is longer than 200 characters",
                    },
                )
            })?),
            None => None,
        };
        videos::update(
            &self.db.pool,
            v.id,
            title.as_deref(),
            patch.visibility,
            now_ms(),
        )
        .await?;
        let v = videos::get(&self.db.pool, public_id)
            .await?
            .ok_or_else(|| Error::not_found("video"))?;
        self.broker
            .publish(Event::Video {
                owner_id: v.owner_id,
                video: VideoView::from(&v),
            })
            .await;
        Ok(v)
    }

    /// Deletes a video: at once for its owner and for usage; its files (and an upload not yet
    /// moved into it) go in a job, so a crash cannot leave them behind.
    pub async fn delete(&self, user: &User, public_id: &str) -> Result<()> {
        let v = self.manageable(user, public_id).await?;
        if v.source == VideoSource::Live && v.status == VideoStatus::Processing {
            return Err(Error::conflict(
                "still_recording",
                "the broadcast is still being recorded; delete it when it has ended",
            ));
        }
        let now = now_ms();
        let after = now + self.delete_delay_ms;
        let mut tx = self.db.begin().await?;
        videos::delete(&mut *tx, v.id).await?;
        jobs::cancel(&mut *tx, PROCESS_JOB, &v.public_id).await?;
        jobs::enqueue_after(
            &mut *tx,
            DELETE_BLOBS_JOB,
            &format!("videos/{}/", v.public_id),
            now,
            after,
        )
        .await?;
        if let Some(upload) = &v.upload_id {
            if uploads::delete(&mut *tx, upload).await? {
                jobs::enqueue_after(
                    &mut *tx,
                    DELETE_BLOBS_JOB,
                    &format!("uploads/{upload}/"),
                    now,
                    after,
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.broker
            .publish(Event::VideoDeleted {
                owner_id: v.owner_id,
                id: v.public_id,
            })
            .await;
        Ok(())
    }

    /// The caller's own videos, newest first.
    pub async fn list_own(&self, user: &User) -> Result<Vec<Video>> {
        Ok(videos::list_owned(&self.db.pool, user.id, LIST_LIMIT).await?)
    }

    /// A member's public videos (what their page lists).
    pub async fn list_public(&self, owner_id: i64) -> Result<Vec<Video>> {
        Ok(videos::list_public(&self.db.pool, owner_id, LIST_LIMIT).await?)
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

    /// A video played through a room's watch party (`held`: the room's party holds it, and
    /// the caller may view the room); 404 otherwise.
    pub async fn watchable_in_party(&self, public_id: &str, held: bool) -> Result<Video> {
        let v = match held {
            true => videos::get(&self.db.pool, public_id).await?,
            false => None,
        };
        v.filter(|v| policy::may_video_in_party(v, held))
            .ok_or_else(|| Error::not_found("video"))
    }

    /// As [`Videos::watchable`], or through a share-link grant the visitor holds.
    pub async fn watchable_shared(
        &self,
        user: Option<&User>,
        public_id: &str,
        shares: &super::shares::Shares,
        grants: &[super::shares::Grant],
    ) -> Result<Video> {
        match self.watchable(user, public_id).await {
            Ok(v) => Ok(v),
            Err(e) if grants.is_empty() => Err(e),
            Err(e) => {
                let Some(v) = videos::get(&self.db.pool, public_id).await? else {
                    return Err(e);
                };
                if v.status == VideoStatus::Ready && shares.admits(&v, grants).await? {
                    Ok(v)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The video made from the caller's upload `upload_id`, if it is one of theirs.
    pub async fn of_upload(&self, user: &User, upload_id: &str) -> Result<Option<Video>> {
        Ok(videos::by_upload(&self.db.pool, upload_id)
            .await?
            .filter(|v| v.owner_id == user.id))
    }
}
