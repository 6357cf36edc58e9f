//! The video library's worker pool: turns finished uploads into playable videos.
//!
//! Work arrives as persisted jobs (`storage::jobs`), so it survives restarts and, with many
//! nodes, whichever node is free takes it. Each worker claims a job with a lease, renews the
//! lease while it works, and deletes the job when the video is ready or has failed; a worker
//! that dies stops renewing and the job is taken again when the lease runs out. A job taken
//! [`MAX_ATTEMPTS`] times without finishing, or running past the configured timeout, fails its
//! video with a reason: no video stays "processing" forever.
//!
//! What processing does is in [`process`]; the ffmpeg and ffprobe children in [`tools`].

mod process;
mod tools;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::LibraryConfig;
use crate::domain::events::{Broker, Event, Subscriber};
use crate::domain::plans::Plans;
use crate::domain::uploads::Uploads;
use crate::domain::videos::{DELETE_BLOBS_JOB, PROCESS_JOB};
use crate::storage::blobs::{self, Blobs};
use crate::storage::jobs::{self, Job};
use crate::storage::videos::{self, Video, VideoStatus};
use crate::storage::{now_ms, Db};
use crate::views::VideoView;

pub use tools::Tools;

/// Claims a job may have before its video fails (a file that kills the process every time must
/// not be retried forever).
pub const MAX_ATTEMPTS: i64 = 3;
/// How often an idle worker looks for jobs it was not told about (another node's, or one whose
/// lease ran out).
const POLL: Duration = Duration::from_secs(5);

/// The worker pool's shared parts; cheap to clone.
#[derive(Clone)]
pub struct Library(Arc<Inner>);

struct Inner {
    db: Db,
    blobs: Arc<dyn Blobs>,
    broker: Arc<dyn Broker>,
    uploads: Uploads,
    plans: Plans,
    cfg: Arc<LibraryConfig>,
    tools: Tools,
    /// Scratch space for transcoding (`{data_dir}/work`).
    work_dir: PathBuf,
    /// This node's name on the leases it takes.
    node: String,
    wake: Notify,
}

impl Library {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        blobs: Arc<dyn Blobs>,
        broker: Arc<dyn Broker>,
        uploads: Uploads,
        plans: Plans,
        cfg: Arc<LibraryConfig>,
        tools: Tools,
        work_dir: PathBuf,
    ) -> Library {
        Library(Arc::new(Inner {
            db,
            blobs,
            broker,
            uploads,
            plans,
            cfg,
            tools,
            work_dir,
            node: format!("node-{:016x}", rand::random::<u64>()),
            wake: Notify::new(),
        }))
    }

    /// Starts the workers; they stop when `stop` is cancelled, handing back what they held.
    pub fn spawn_workers(&self, stop: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        // Scratch left by a previous run is no one's now.
        let _ = std::fs::remove_dir_all(&self.0.work_dir);
        (0..self.0.cfg.video_workers())
            .map(|_| tokio::spawn(self.clone().worker(stop.clone())))
            .collect()
    }

    async fn worker(self, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            let now = now_ms();
            let until = now + self.0.cfg.video_lease().as_millis() as i64;
            match jobs::claim(&self.0.db.pool, &self.0.node, now, until).await {
                Ok(Some(job)) => self.run(job, &stop).await,
                Ok(None) => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = self.0.wake.notified() => {}
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job failed");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        }
    }

    /// Runs one claimed job to its end, keeping its lease alive meanwhile.
    async fn run(&self, job: Job, stop: &CancellationToken) {
        if job.kind == DELETE_BLOBS_JOB {
            return self.delete_blobs(job).await;
        }
        if job.kind != PROCESS_JOB {
            tracing::warn!(kind = %job.kind, "unknown job kind dropped");
            let _ = jobs::finish(&self.0.db.pool, job.id).await;
            return;
        }
        let lost = CancellationToken::new();
        let renewer = tokio::spawn(renew(
            self.0.db.clone(),
            job.id,
            self.0.node.clone(),
            self.0.cfg.video_lease(),
            lost.clone(),
        ));
        let outcome = tokio::select! {
            r = tokio::time::timeout(self.0.cfg.video_timeout(), self.process_job(&job)) => Some(r),
            _ = stop.cancelled() => None,
            _ = lost.cancelled() => {
                tracing::warn!(job = job.id, "lost the lease of a job; another worker has it");
                renewer.abort();
                return;
            }
        };
        renewer.abort();
        let pool = &self.0.db.pool;
        match outcome {
            // Stopping: the job goes back for the next start (or another node), not counted.
            None => {
                if let Err(e) = jobs::release(pool, job.id, &self.0.node).await {
                    tracing::warn!(job = job.id, error = %e, "handing a job back failed");
                }
            }
            Some(Ok(Ok(()))) => {
                let _ = jobs::finish(pool, job.id).await;
            }
            Some(Ok(Err(Retry(e)))) => {
                // Storage trouble, not the file: leave the job for a later claim (its lease
                // runs out, which spaces the tries), unless it has had its tries.
                tracing::warn!(job = job.id, attempt = job.attempts, error = %e, "processing failed; it will be retried");
                if job.attempts >= MAX_ATTEMPTS {
                    self.give_up(
                        &job,
                        "processing kept failing on the server; upload it again",
                    )
                    .await;
                }
            }
            Some(Err(_elapsed)) => {
                let limit = self.0.cfg.video_timeout_s;
                let reason = if limit < 120 {
                    format!("processing took longer than {limit} seconds")
                } else {
                    format!("processing took longer than {} minutes", limit.div_ceil(60))
                };
                self.give_up(&job, &reason).await;
            }
        }
    }

    /// Deletes a deleted video's files (or an upload's pieces); on failure the job stays and
    /// is tried again when its lease runs out.
    async fn delete_blobs(&self, job: Job) {
        let prefix = &job.subject;
        let sane = (prefix.starts_with("videos/") || prefix.starts_with("uploads/"))
            && prefix.ends_with('/')
            && prefix.matches('/').count() == 2;
        if !sane {
            tracing::warn!(%prefix, "refusing to delete an odd blob prefix");
            let _ = jobs::finish(&self.0.db.pool, job.id).await;
            return;
        }
        match blobs::delete_all(&*self.0.blobs, prefix).await {
            Ok(n) => {
                tracing::debug!(%prefix, blobs = n, "deleted");
                let _ = jobs::finish(&self.0.db.pool, job.id).await;
            }
            Err(e) => tracing::warn!(%prefix, error = %e, "deleting blobs failed; will retry"),
        }
    }

    /// Sets the video's stored bytes from what the store holds: after an attempt cut short,
    /// the count may lag what was written (a new playlist) or removed.
    async fn recount(&self, video: &Video) -> Result<(), Retry> {
        let bytes = process::stored_bytes(self, &video.public_id)
            .await
            .map_err(|e| match e {
                process::Failure::Server(e) => Retry(e),
                process::Failure::File(why) => Retry(anyhow::anyhow!(why)),
            })?;
        if bytes != video.stored_bytes {
            videos::set_pictures(
                &self.0.db.pool,
                video.id,
                video.has_thumbnail,
                video.has_storyboard,
                bytes,
            )
            .await
            .map_err(retry)?;
            self.announce(&video.public_id).await;
        }
        Ok(())
    }

    /// Best effort: see [`process::drop_unlisted_renditions`].
    async fn drop_unlisted(&self, public_id: &str) {
        match process::drop_unlisted_renditions(self, public_id).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(video = %public_id, blobs = n, "unfinished renditions removed"),
            Err(process::Failure::File(e)) => {
                tracing::warn!(video = %public_id, error = %e, "cannot remove unfinished renditions")
            }
            Err(process::Failure::Server(e)) => {
                tracing::warn!(video = %public_id, error = %e, "cannot remove unfinished renditions")
            }
        }
    }

    /// Records what came after the video played (pictures, renditions) and tells its owner.
    async fn store_extras(
        &self,
        video: &Video,
        thumb: bool,
        board: bool,
        later: &process::Later,
    ) -> Result<(), Retry> {
        let bytes = later.stored_bytes();
        videos::set_pictures(&self.0.db.pool, video.id, thumb, board, bytes)
            .await
            .map_err(retry)?;
        self.announce(&video.public_id).await;
        Ok(())
    }

    /// One job's work: `Ok` when the video ended ready or failed for its file's sake.
    async fn process_job(&self, job: &Job) -> Result<(), Retry> {
        let Some(video) = videos::get(&self.0.db.pool, &job.subject)
            .await
            .map_err(retry)?
        else {
            return Ok(()); // deleted meanwhile
        };
        if video.status != VideoStatus::Processing {
            // Ready, with its job still here: an attempt at lower renditions was cut short
            // (a crash, a stop). The video plays as it is; what that attempt wrote goes.
            if video.status == VideoStatus::Ready {
                self.drop_unlisted(&video.public_id).await;
                self.recount(&video).await?;
            }
            return Ok(());
        }
        if job.attempts > MAX_ATTEMPTS {
            self.fail(
                &video,
                &format!("processing was interrupted {MAX_ATTEMPTS} times; upload it again"),
            )
            .await
            .map_err(retry)?;
            return Ok(());
        }
        match process::run(self, &video).await {
            Ok((done, mut later)) => {
                let ok = videos::mark_ready(&self.0.db.pool, video.id, &done, now_ms())
                    .await
                    .map_err(retry)?;
                if !ok {
                    return Ok(()); // deleted meanwhile
                }
                tracing::info!(video = %video.public_id, duration_s = done.duration_ms / 1000, "video ready");
                self.announce(&video.public_id).await;
                // Pictures after it plays. Best effort: a failure (or a crash, after which the
                // video is ready and not processed again) leaves it without them.
                let (mut thumb, mut board) = (false, false);
                match process::pictures(self, &mut later).await {
                    Ok(made) => (thumb, board) = made,
                    Err(process::Failure::File(why)) => {
                        tracing::info!(video = %video.public_id, %why, "no pictures")
                    }
                    Err(process::Failure::Server(e)) => {
                        tracing::warn!(video = %video.public_id, error = %e, "storing pictures failed")
                    }
                }
                if thumb || board {
                    self.store_extras(&video, thumb, board, &later).await?;
                }
                // Then, for a remuxed video, lower renditions (best effort, like pictures).
                match process::lower_renditions(self, &video, &mut later).await {
                    Ok(true) => {
                        tracing::info!(video = %video.public_id, "lower renditions added");
                        self.store_extras(&video, thumb, board, &later).await?;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        match e {
                            process::Failure::File(why) => {
                                tracing::info!(video = %video.public_id, %why, "no lower renditions")
                            }
                            process::Failure::Server(e) => {
                                tracing::warn!(video = %video.public_id, error = %e, "making lower renditions failed")
                            }
                        }
                        self.drop_unlisted(&video.public_id).await;
                    }
                }
                Ok(())
            }
            Err(process::Failure::File(reason)) => {
                tracing::info!(video = %video.public_id, %reason, "video refused");
                self.fail(&video, &reason).await.map_err(retry)
            }
            Err(process::Failure::Server(e)) => Err(Retry(e)),
        }
    }

    /// Fails the job's video with `reason` and drops the job.
    async fn give_up(&self, job: &Job, reason: &str) {
        match videos::get(&self.0.db.pool, &job.subject).await {
            Ok(Some(v)) if v.status == VideoStatus::Ready => {
                // It plays; only what came after (lower renditions) ran out of time.
                self.drop_unlisted(&v.public_id).await;
            }
            Ok(Some(v)) => {
                if let Err(e) = self.fail(&v, reason).await {
                    tracing::warn!(video = %v.public_id, error = %e, "cannot mark a video failed");
                    return; // the job stays; the next claim tries again
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a job's video");
                return;
            }
        }
        let _ = jobs::finish(&self.0.db.pool, job.id).await;
    }

    /// A failed video keeps nothing: its files and its upload go, the reason stays.
    /// Only a video still processing: a ready one (its pictures timed out, say) keeps its files.
    async fn fail(&self, video: &videos::Video, reason: &str) -> anyhow::Result<()> {
        if !videos::mark_failed(&self.0.db.pool, video.id, reason, now_ms()).await? {
            return Ok(());
        }
        self.announce(&video.public_id).await;
        blobs::delete_all(&*self.0.blobs, &format!("videos/{}/", video.public_id)).await?;
        if let Some(upload) = &video.upload_id {
            self.0.uploads.discard(upload).await?;
        }
        Ok(())
    }

    /// Tells the owner's pages what the video looks like now.
    async fn announce(&self, public_id: &str) {
        if let Ok(Some(v)) = videos::get(&self.0.db.pool, public_id).await {
            self.0
                .broker
                .publish(Event::Video {
                    owner_id: v.owner_id,
                    video: VideoView::from(&v),
                })
                .await;
        }
    }
}

/// A job that should be tried again later: the server, not the file, was at fault.
struct Retry(anyhow::Error);

fn retry(e: impl Into<anyhow::Error>) -> Retry {
    Retry(e.into())
}

/// Keeps a job's lease alive until aborted (renewed every third of it); cancels `lost` when the
/// lease is no longer ours.
async fn renew(db: Db, id: i64, node: String, lease: Duration, lost: CancellationToken) {
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let until = now_ms() + lease.as_millis() as i64;
        match jobs::renew(&db.pool, id, &node, until).await {
            Ok(true) => {}
            Ok(false) => {
                lost.cancel();
                return;
            }
            // A blip: the lease still has two thirds of its time; try again next tick.
            Err(e) => tracing::warn!(job = id, error = %e, "renewing a job's lease failed"),
        }
    }
}

impl Subscriber for Library {
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Event::Video { video, .. } = event {
                if video.status == VideoStatus::Processing && video.progress == 0.0 {
                    // A new video to process: wake one idle worker (or the next to idle).
                    self.0.wake.notify_one();
                }
            }
        })
    }
}
