//! Optional transcoding: one ffmpeg child per broadcast turns the source into a ladder of lower
//! renditions for adaptive bitrate.
//!
//! The ingest task hands the source's FLV tags to ffmpeg's stdin; ffmpeg encodes each rung with
//! keyframes forced where the source has them (so every rendition's segments line up) and
//! publishes each rung back to moim's own RTMP listener under a one-off internal key. Those
//! connections go through the normal ingest path into the rung's segmenter. If ffmpeg fails or
//! falls behind, the rungs end and viewers keep the source: the broadcast itself never depends
//! on the child. The child dies with the broadcast (and with moim: `kill_on_drop`).

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use moim_media::segmenter::{self, Segmenter};
use parking_lot::Mutex;
use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Broadcast;
use crate::config::{LiveConfig, Step};

/// FLV tags that may wait for ffmpeg; past this it is too slow and is stopped.
const QUEUE_TAGS: usize = 512;

/// A lower rendition of a broadcast.
pub struct Rung {
    /// In URLs and the quality picker, e.g. `480p`.
    pub name: String,
    pub step: Step,
    /// The internal stream key ffmpeg publishes this rung with.
    pub key: String,
    pub seg: Arc<Mutex<Segmenter>>,
    /// The transcoder stopped; the rung is no longer offered.
    pub failed: AtomicBool,
}

impl Rung {
    fn new(step: Step, seg_cfg: segmenter::Config) -> Rung {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::thread_rng();
        let secret: String = (0..24)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        Rung {
            name: format!("{}p", step.height),
            step,
            key: format!("{INTERNAL_PREFIX}{secret}"),
            seg: Arc::new(Mutex::new(Segmenter::new(seg_cfg))),
            failed: AtomicBool::new(false),
        }
    }
}

/// Stream keys starting with this are the transcoder's, never a room's (room keys start `live_`).
pub const INTERNAL_PREFIX: &str = "tx_";

/// Why a tag could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// ffmpeg is too far behind.
    Behind,
    /// ffmpeg is gone (already logged).
    Exited,
}

/// A running transcoder; dropping it does not stop it, [`Handle::stop`] does.
pub struct Handle {
    tx: mpsc::Sender<Bytes>,
    stop: CancellationToken,
    withdraw: Arc<AtomicBool>,
}

impl Handle {
    /// Queues one FLV tag for ffmpeg.
    pub fn feed(&self, tag: Bytes) -> Result<(), Stopped> {
        self.tx.try_send(tag).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Stopped::Behind,
            mpsc::error::TrySendError::Closed(_) => Stopped::Exited,
        })
    }

    /// Stops ffmpeg. `for_good`: its rungs are withdrawn (failure, broadcast ended); otherwise
    /// they stay listed for the next transcoder (publisher reconnecting).
    pub fn stop(&self, for_good: bool) {
        if for_good {
            self.withdraw.store(true, Ordering::Relaxed);
        }
        self.stop.cancel();
    }
}

/// Makes the rungs worth having for a source of `source_height` (those below it), reusing ones
/// the broadcast already has (a publisher that reconnected keeps its viewers' URLs).
pub fn rungs_for(
    b: &Broadcast,
    config: &LiveConfig,
    source_height: u32,
    seg_cfg: &segmenter::Config,
) -> Vec<Arc<Rung>> {
    let mut rungs = b.rungs.lock();
    if rungs.is_empty() {
        *rungs = config
            .transcode_ladder
            .iter()
            .filter(|s| s.height < source_height)
            .map(|s| Arc::new(Rung::new(*s, seg_cfg.clone())))
            .collect();
    }
    rungs.clone()
}

/// Starts ffmpeg for `rungs`, feeding it `first` (the stream header and sequence headers) before
/// anything else. `None` if ffmpeg cannot be started.
pub fn start(
    b: &Arc<Broadcast>,
    rungs: &[Arc<Rung>],
    rtmp: SocketAddr,
    first: Vec<Bytes>,
    tasks: &tokio_util::task::TaskTracker,
) -> Option<Handle> {
    for r in rungs {
        r.failed.store(false, Ordering::Relaxed);
    }
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning"])
        .args(["-fflags", "+nobuffer", "-f", "flv", "-i", "pipe:0"]);
    for r in rungs {
        let k = r.step.kbps;
        cmd.args(["-map", "0:v:0", "-map", "0:a:0?"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
            ])
            .args(["-profile:v", "main", "-pix_fmt", "yuv420p"])
            .arg("-vf")
            .arg(format!("scale=-2:{}", r.step.height))
            .arg("-b:v")
            .arg(format!("{k}k"))
            .arg("-maxrate")
            .arg(format!("{k}k"))
            .arg("-bufsize")
            .arg(format!("{}k", k * 2))
            // Keyframes exactly where the source has them: segments align across renditions.
            .args(["-force_key_frames", "source", "-sc_threshold", "0"])
            .args(["-c:a", "aac", "-b:a", "96k", "-ac", "2"])
            .args(["-f", "flv"])
            .arg(format!("rtmp://{rtmp}/live/{}", r.key));
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(room = %b.slug, error = %e, "cannot start ffmpeg; passing the source through");
            return None;
        }
    };
    let mut stdin = child.stdin.take()?;
    let stderr = child.stderr.take()?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE_TAGS);
    let stop = CancellationToken::new();
    let withdraw = Arc::new(AtomicBool::new(false));
    let handle = Handle {
        tx,
        stop: stop.clone(),
        withdraw: withdraw.clone(),
    };
    let b = b.clone();
    let rungs: Vec<Arc<Rung>> = rungs.to_vec();
    tasks.spawn(async move {
        // ffmpeg's complaints go to our log, a line at a time, bounded.
        let room = b.slug.clone();
        let log = async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            let mut n = 0;
            while let Ok(Some(line)) = lines.next_line().await {
                n += 1;
                if n <= 20 {
                    tracing::debug!(room = %room, "ffmpeg: {line}");
                }
            }
        };
        let feed = async {
            for tag in first {
                stdin.write_all(&tag).await?;
            }
            while let Some(tag) = rx.recv().await {
                stdin.write_all(&tag).await?;
            }
            stdin.shutdown().await
        };
        let outcome = tokio::select! {
            _ = stop.cancelled() => None,
            r = async { tokio::join!(feed, log).0 } => Some(r),
            st = child.wait() => Some(st.map(|_| ())),
        };
        let _ = child.start_kill();
        let _ = child.wait().await;
        // Exited by itself: a failure. Stopped: withdrawn only if asked.
        let failed = outcome.is_some() || withdraw.load(Ordering::Relaxed);
        if outcome.is_some() && !b.ended() {
            tracing::warn!(room = %b.slug, "transcoder stopped; viewers get the source only");
        }
        for r in &rungs {
            if failed {
                r.failed.store(true, Ordering::Relaxed);
            }
            let mut seg = r.seg.lock();
            seg.break_stream();
            b.notify();
        }
    });
    Some(handle)
}
