//! Watch together: four Chromium pages in one room's watch party (`e2e/party.mjs`), on loopback
//! and with one page's socket held back each way; prints how far apart the pages play, how fast
//! they come together after play, seek and reload, and how often they correct, next to the
//! thresholds Jellyfin SyncPlay and Syncplay document (neither runs here: they need their own
//! media servers and desktop players, so their figures are their designs' floors).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

use crate::live::servers::start_moim_with;

#[derive(Args, Clone, Debug)]
pub struct PartyOpts {
    /// moim binary; default: `cargo build --release -p moim`.
    #[arg(long)]
    pub moim_bin: Option<PathBuf>,
    /// Seconds sampled while playing, per run (half before the pause and seek, half after).
    #[arg(long, default_value_t = 120)]
    pub steady_s: u32,
    /// Extra delay on one page's socket, ms each way, one run per value.
    #[arg(long, default_value = "0,100")]
    pub delays: String,
    /// Chromium to drive.
    #[arg(long, default_value = "/usr/bin/chromium")]
    pub chromium: PathBuf,
    /// Working directory (default: a new one under the temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// SyncPlay (Jellyfin): corrects by playback rate from 60 ms of drift, seeks from 3 s.
const SYNCPLAY_RATE_FLOOR_MS: f64 = 60.0;
/// Syncplay (the desktop tool): does nothing below 1.5 s.
const SYNCPLAY_DESKTOP_MS: f64 = 1500.0;

pub async fn run(o: PartyOpts, moim_bin: PathBuf, root: PathBuf) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("moim-bench-party-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let e2e = root.join("e2e");
    crate::live::servers::ensure_e2e(&e2e)?;
    // Long enough for the sampling, the pause, the seek to 0:40 and the rest.
    let clip = dir.join("film.mp4");
    let seconds = (o.steady_s + 120).to_string();
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000"])
        .args(["-t", &seconds])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "64k"])
        .arg(&clip)
        .status()
        .context("running ffmpeg")?;
    if !made.success() {
        bail!("ffmpeg could not make the clip");
    }
    let mut rows = Vec::new();
    for delay in o.delays.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let run_dir = dir.join(format!("delay-{delay}"));
        let srv = start_moim_with(&moim_bin, &run_dir, 0, &[]).await?;
        let cpu0 = srv.cpu_us();
        let out = Command::new("node")
            .arg(e2e.join("party.mjs"))
            .env("MOIM_URL", &srv.http)
            .env("MOIM_CHROMIUM", &o.chromium)
            .env("MOIM_VIDEO_FILE", &clip)
            .env("MOIM_PARTY_STEADY_S", o.steady_s.to_string())
            .env("MOIM_PARTY_DELAY_MS", delay)
            .output()
            .context("running node e2e/party.mjs")?;
        let cpu_s = (srv.cpu_us() - cpu0) as f64 / 1e6;
        drop(srv);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(line) = stdout
            .lines()
            .find_map(|l| l.strip_prefix("PARTY-FIGURES "))
        else {
            bail!(
                "the browser run with {delay} ms gave no figures:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let f: Value = serde_json::from_str(line)?;
        println!("delay {delay} ms: {line}");
        println!("  moim CPU over the run: {cpu_s:.2} s");
        rows.push((delay.to_string(), f, cpu_s));
    }
    report(&rows);
    Ok(())
}

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

fn list(v: &Value, k: &str) -> String {
    v[k].as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

fn report(rows: &[(String, Value, f64)]) {
    println!();
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10} {:>12} {:>14}",
        "delay ms",
        "gap p50",
        "gap p95",
        "gap max",
        "play ms",
        "seek ms",
        "reload ms",
        "pause gap",
        "seeks/min",
        "rate chg/min"
    );
    for (delay, f, _) in rows {
        println!(
            "{:<10} {:>8.1} {:>8.1} {:>8.1} {:>9.0} {:>9.0} {:>10.0} {:>10.1} {:>12} {:>14}",
            delay,
            num(f, "gap_p50_ms"),
            num(f, "gap_p95_ms"),
            num(f, "gap_max_ms"),
            num(f, "converge_play_ms"),
            num(f, "converge_seek_ms"),
            num(f, "converge_reload_ms"),
            num(f, "pause_gap_s") * 1000.0,
            list(f, "seeks_per_min"),
            list(f, "rate_changes_per_min"),
        );
    }
    println!();
    for (delay, f, _) in rows {
        let p95 = num(f, "gap_p95_ms");
        let goal = if delay == "0" { 50.0 } else { 100.0 };
        println!(
            "delay {delay} ms: p95 gap {p95:.1} ms = {:.2}× the goal ({goal} ms), {:.2}× SyncPlay's \
             rate-correction floor ({SYNCPLAY_RATE_FLOOR_MS} ms), {:.3}× Syncplay's threshold \
             ({SYNCPLAY_DESKTOP_MS} ms); seek convergence {:.0} ms = {:.2}× the goal (1000 ms)",
            p95 / goal,
            p95 / SYNCPLAY_RATE_FLOOR_MS,
            p95 / SYNCPLAY_DESKTOP_MS,
            num(f, "converge_seek_ms"),
            num(f, "converge_seek_ms") / 1000.0,
        );
    }
}
