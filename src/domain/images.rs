//! Members' photos: processed into their served sizes ([`crate::photos`]), kept through
//! [`Blobs`] under `images/{public_id}/{size}.{ext}`, and recorded so a post can hold them.
//! A photo belongs to whoever uploaded it until a post of theirs takes it; photos no post took
//! within a day are deleted by [`Images::sweep`].

use std::sync::Arc;

use super::videos::{new_public_id, DELETE_BLOBS_JOB};
use super::{Error, Result};
use crate::auth::limiter::KeyedLimiter;
use crate::photos::{PhotoError, Photos, VARIANTS};
use crate::storage::blobs::{self, Blobs};
use crate::storage::images::{self, Image, NewImage};
use crate::storage::users::User;
use crate::storage::{jobs, now_ms, Db};

/// How long a photo waits for a post to take it.
pub const UNATTACHED_MS: i64 = 24 * 3600 * 1000;

#[derive(Clone)]
pub struct Images {
    db: Db,
    blobs: Arc<dyn Blobs>,
    photos: Photos,
    plans: super::plans::Plans,
    /// Uploads per member: 30 at once, then one every 2 s.
    per_user: Arc<KeyedLimiter<i64>>,
}

/// A served size of a photo.
pub struct SizeView {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
}

impl Images {
    pub fn new(
        db: Db,
        blobs: Arc<dyn Blobs>,
        photos: Photos,
        plans: super::plans::Plans,
    ) -> Images {
        Images {
            db,
            blobs,
            photos,
            plans,
            per_user: Arc::new(KeyedLimiter::new(30, 0.5, 100_000)),
        }
    }

    pub fn photos(&self) -> &Photos {
        &self.photos
    }

    /// Whether `user` may upload a photo now (before its body is read); counts one upload.
    pub fn admit(&self, user: &User) -> Result<()> {
        self.per_user
            .check(&user.id)
            .map_err(|wait| Error::RateLimited {
                retry_after_s: wait.as_secs().max(1),
            })
    }

    /// Processes and keeps a photo `user` uploads (after [`Images::admit`]).
    pub async fn upload(&self, user: &User, data: bytes::Bytes) -> Result<Image> {
        let processed = self.photos.process(data).await.map_err(|e| match e {
            PhotoError::TooLarge(message) => Error::Oversized {
                code: "image_too_large",
                message,
            },
            PhotoError::Unsupported(message) => Error::Unsupported {
                code: "unsupported_image",
                message,
            },
            PhotoError::Busy => Error::Busy {
                message: e.to_string(),
                retry_after_s: 2,
            },
            PhotoError::Internal(e) => Error::Internal(e),
        })?;
        // The served sizes count against the member's storage plan.
        let size: i64 = processed
            .variants
            .iter()
            .map(|v| v.bytes.len() as i64)
            .sum();
        self.plans.check_storage(user, size).await?;
        let public_id = new_public_id();
        let ext = processed.variants[0].ext;
        let mut bytes = 0i64;
        let mut keys = Vec::new();
        for v in &processed.variants {
            let key = format!("images/{public_id}/{}.{}", v.name, v.ext);
            bytes += self
                .blobs
                .put(&key, blobs::once(v.bytes.clone()))
                .await
                .map_err(|e| Error::Internal(anyhow::anyhow!("storing a photo: {e}")))?
                as i64;
            keys.push(key);
        }
        let sizes: Vec<String> = processed
            .variants
            .iter()
            .map(|v| format!("{}:{}x{}", v.name, v.width, v.height))
            .collect();
        let record = images::create(
            &self.db.pool,
            &NewImage {
                public_id: &public_id,
                owner_id: user.id,
                width: i64::from(processed.width),
                height: i64::from(processed.height),
                thumbhash: &processed.thumbhash,
                ext,
                sizes: &sizes.join(" "),
                bytes,
            },
            now_ms(),
        )
        .await;
        match record {
            Ok(img) => Ok(img),
            Err(e) => {
                for k in &keys {
                    let _ = self.blobs.delete(k).await;
                }
                Err(e.into())
            }
        }
    }

    /// The blob key of one served size and whether anyone may see it (shared caches may keep
    /// it), or 404. A hidden post's photos are seen only by its author and moderators.
    pub async fn file(
        &self,
        viewer: Option<&User>,
        public_id: &str,
        size: &str,
    ) -> Result<(String, &'static str, bool)> {
        let size = VARIANTS
            .iter()
            .map(|(n, _)| *n)
            .find(|n| *n == size)
            .ok_or_else(|| Error::not_found("photo size"))?;
        let img = images::get(&self.db.pool, public_id)
            .await?
            .ok_or_else(|| Error::not_found("photo"))?;
        let mut public = true;
        if let Some(post_id) = img.post_id {
            let post = crate::storage::posts::get(&self.db.pool, post_id).await?;
            if let Some(p) = post.filter(|p| p.hidden_at.is_some()) {
                if !super::policy::may_post(viewer, p.author_id, super::policy::PostAction::Edit) {
                    return Err(Error::not_found("photo"));
                }
                public = false;
            }
        }
        Ok((
            format!("images/{}/{size}.{}", img.public_id, img.ext),
            crate::photos::mime_of_ext(&img.ext),
            public,
        ))
    }

    /// Deletes photos no post took in time; returns how many.
    pub async fn sweep(&self) -> Result<usize> {
        let now = now_ms();
        let old = images::unattached(&self.db.pool, now - UNATTACHED_MS, 500).await?;
        let mut gone = 0;
        for img in &old {
            let mut tx = self.db.begin().await?;
            if images::delete_unattached(&mut *tx, img.id).await? {
                let dir = format!("images/{}/", img.public_id);
                jobs::enqueue(&mut *tx, DELETE_BLOBS_JOB, &dir, now).await?;
                gone += 1;
            }
            tx.commit().await?;
        }
        Ok(gone)
    }

    /// The blob store, for serving.
    pub fn blobs(&self) -> &Arc<dyn Blobs> {
        &self.blobs
    }
}

/// The served sizes recorded for a photo.
pub fn sizes(img: &Image) -> Vec<SizeView> {
    img.sizes
        .split(' ')
        .filter_map(|s| {
            let (name, dims) = s.split_once(':')?;
            let (w, h) = dims.split_once('x')?;
            let name = VARIANTS.iter().map(|(n, _)| *n).find(|n| *n == name)?;
            Some(SizeView {
                name,
                width: w.parse().ok()?,
                height: h.parse().ok()?,
            })
        })
        .collect()
}
