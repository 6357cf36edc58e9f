//! Thumbnails: one JPEG frame decoded by ffmpeg from an fMP4 (init + segment) in memory.
//!
//! ffmpeg is optional: without it there are no thumbnails and everything else works.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Longest a thumbnail may take before the child is killed. One frame takes ffmpeg well under
/// a second on an idle core, but a busy 2-core machine (a transcoding ladder, a build) has been
/// seen to need more than ten, and a recording gets only one try.
const TIMEOUT: Duration = Duration::from_secs(45);
/// Larger output than this is not a thumbnail.
const MAX_JPEG: usize = 2 << 20;

/// A 320-pixel-wide JPEG of the first frame of `mp4`, or `None` (no ffmpeg, no video, error).
pub async fn jpeg(mp4: Vec<u8>) -> Option<Vec<u8>> {
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-threads", "1", "-f", "mp4", "-i", "pipe:0"])
        .args(["-frames:v", "1"])
        .args([
            "-vf",
            "scale=320:-2",
            "-f",
            "image2",
            "-c:v",
            "mjpeg",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let mut stdout = child.stdout.take()?;
    let work = async move {
        // Feed and read at once: ffmpeg may answer before it has read everything.
        let feed = async move {
            let _ = stdin.write_all(&mp4).await;
            drop(stdin);
        };
        let mut out = Vec::new();
        let read = async {
            let _ = (&mut stdout)
                .take(MAX_JPEG as u64 + 1)
                .read_to_end(&mut out)
                .await;
        };
        tokio::join!(feed, read);
        let status = child.wait().await.ok()?;
        (status.success() && !out.is_empty() && out.len() <= MAX_JPEG).then_some(out)
    };
    tokio::time::timeout(TIMEOUT, work).await.ok().flatten()
}
