//! Real-time media: glass-to-glass from a Chromium page's canvas clock to another page's screen,
//! through moim's SFU (WHIP in, WHEP out) against the same two pages connected directly (the
//! floor: what the browsers themselves take), and how long a new WHEP viewer waits for its
//! first frame (`e2e/webrtc-g2g.mjs`). Prints the figures and moim's over the direct path.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

use crate::live::servers::start_moim_with;

#[derive(Args, Clone, Debug)]
pub struct WebrtcOpts {
    /// moim binary; default: `cargo build --release -p moim`.
    #[arg(long)]
    pub moim_bin: Option<PathBuf>,
    /// Seconds sampled on each path.
    #[arg(long, default_value_t = 20)]
    pub seconds: u32,
    /// New viewers timed to their first frame, one after another.
    #[arg(long, default_value_t = 20)]
    pub joins: u32,
    /// Chromium to drive.
    #[arg(long, default_value = "/usr/bin/chromium")]
    pub chromium: PathBuf,
    /// Working directory (default: a new one under the temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub async fn run(o: WebrtcOpts, moim_bin: PathBuf, root: PathBuf) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("moim-bench-webrtc-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let e2e = root.join("e2e");
    crate::live::servers::ensure_e2e(&e2e)?;
    let srv = start_moim_with(&moim_bin, &dir, 0, &[]).await?;
    let cpu0 = srv.cpu_us();
    let out = Command::new("node")
        .arg(e2e.join("webrtc-g2g.mjs"))
        .env("MOIM_URL", &srv.http)
        .env("MOIM_CHROMIUM", &o.chromium)
        .env("MOIM_G2G_S", o.seconds.to_string())
        .env("MOIM_FIRST_FRAMES", o.joins.to_string())
        .output()
        .context("running node e2e/webrtc-g2g.mjs")?;
    let cpu_s = (srv.cpu_us() - cpu0) as f64 / 1e6;
    drop(srv);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WEBRTC-FIGURES "))
    else {
        bail!(
            "the browser run gave no figures:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let f: Value = serde_json::from_str(line)?;
    let n = |k: &str| f[k].as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "{:<28} {:>8} {:>8} {:>8}",
        "glass-to-glass", "p50 ms", "p95 ms", "frames"
    );
    println!(
        "{:<28} {:>8.0} {:>8.0} {:>8.0}",
        "direct (browser to browser)",
        n("direct_p50_ms"),
        n("direct_p95_ms"),
        n("direct_frames")
    );
    println!(
        "{:<28} {:>8.0} {:>8.0} {:>8.0}",
        "WHIP → moim → WHEP",
        n("moim_p50_ms"),
        n("moim_p95_ms"),
        n("moim_frames")
    );
    println!();
    println!(
        "moim/direct: p50 {:.2}×, p95 {:.2}× (moim adds {:+.0} ms at p50); goal p50 ≤ 60 ms: {:.2}×, p95 ≤ 100 ms: {:.2}×",
        n("moim_p50_ms") / n("direct_p50_ms"),
        n("moim_p95_ms") / n("direct_p95_ms"),
        n("moim_p50_ms") - n("direct_p50_ms"),
        n("moim_p50_ms") / 60.0,
        n("moim_p95_ms") / 100.0,
    );
    println!(
        "WHEP first frame: p50 {:.0} ms, p95 {:.0} ms over {} joins; goal p95 ≤ 400 ms: {:.2}×",
        n("first_frame_p50_ms"),
        n("first_frame_p95_ms"),
        o.joins,
        n("first_frame_p95_ms") / 400.0
    );
    println!(
        "  of which: the WHEP answer at p50 {:.0} ms, the connection (ICE + DTLS) at p50 {:.0} ms",
        n("answered_p50_ms"),
        n("connected_p50_ms")
    );
    println!("moim CPU over the run: {cpu_s:.2} s");
    Ok(())
}
