//! Live streaming benchmark: moim against nginx with Debian's RTMP module (HLS, 2 s fragments),
//! both on this machine, in one run.
//!
//! 1. Latency: a live ffmpeg encoder (`-re`, test pattern) publishes to each server; a poller
//!    notes when each part (moim, via blocking playlist reload) or segment (nginx, polled every
//!    50 ms) becomes available and compares with when its last frame was captured (encoder start +
//!    media time). Then headless Chromium plays each stream with hls.js and reports how far it
//!    plays behind the playlist's live edge; glass-to-glass ≈ the two added.
//! 2. Ingest cost: N publishers replay a pre-encoded clip with `-c copy` (no encoding in the
//!    measurement); server CPU and RSS over the window.
//! 3. Delivery: 1,000 viewers follow the stream as players do (moim: blocking reload + parts;
//!    nginx: playlist every second + segments), then a capacity run of back-to-back non-blocking
//!    requests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::hist::Histogram;

mod load;
pub(crate) mod servers;

use load::{capacity, delivery};
use servers::{start_moim, start_nginx, Srv};

#[derive(clap::Args, Clone, Debug)]
pub struct LiveOpts {
    /// moim binary; default: `cargo build --release -p moim`.
    #[arg(long)]
    pub moim_bin: Option<PathBuf>,
    /// Seconds measured per step.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Publisher counts for the ingest-cost runs.
    #[arg(long, default_value = "1,10,20")]
    pub publishers: String,
    /// Simulated viewers in the delivery run.
    #[arg(long, default_value_t = 1000)]
    pub viewers: usize,
    /// Concurrent clients in the capacity run.
    #[arg(long, default_value_t = 200)]
    pub capacity_clients: usize,
    /// Skip the Chromium step.
    #[arg(long)]
    pub no_browser: bool,
    /// Steps to run, comma-separated: latency, ingest, delivery.
    #[arg(long, default_value = "latency,ingest,delivery")]
    pub steps: String,
    /// Where to write the JSON results.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A live-encoding publisher: test pattern and tone, encoded in real time, 1 s keyframes.
fn live_encoder(url: &str, seconds: u64) -> anyhow::Result<(Child, Instant, i64)> {
    let at = Instant::now();
    let wall = unix_ms();
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "30", "-b:v", "2500k", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ffmpeg")?;
    Ok((child, at, wall))
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `2026-11-22T21:34:22.123Z` → unix milliseconds.
fn parse_pdt(s: &str) -> Option<i64> {
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (h, mi, sec, ms) = (n(11, 13)?, n(14, 16)?, n(17, 19)?, n(20, 23)?);
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

/// A `-c copy` publisher replaying `clip` forever in real time.
fn replayer(clip: &Path, url: &str) -> anyhow::Result<Child> {
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(clip)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ffmpeg")
}

/// The pre-encoded clip: 720p30, 2.5 Mbit/s, 1 s keyframes, AAC.
fn make_clip(dir: &Path) -> anyhow::Result<PathBuf> {
    let clip = dir.join("clip.flv");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t", "30", "-c:v", "libx264", "-preset", "veryfast", "-g", "30",
        ])
        .args(["-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k"])
        .args([
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv",
        ])
        .arg(&clip)
        .status()
        .context("running ffmpeg to make the clip")?;
    if !st.success() {
        bail!("ffmpeg could not make the clip");
    }
    Ok(clip)
}

fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// (URI, duration) of every media line, with parts for moim.
fn entries(text: &str, parts: bool) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut pending: Option<f64> = None;
    for line in text.lines() {
        if parts {
            if let Some(a) = line.strip_prefix("#EXT-X-PART:") {
                let d = a
                    .strip_prefix("DURATION=")
                    .and_then(|r| r.split(',').next())
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0.0);
                let uri = a.split("URI=\"").nth(1).and_then(|r| r.split('"').next());
                if let Some(u) = uri {
                    out.push((u.to_string(), d));
                }
            }
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            pending = d
                .trim_end_matches(',')
                .split(',')
                .next()
                .and_then(|d| d.parse().ok());
        } else if !line.starts_with('#') && !line.is_empty() {
            if let Some(d) = pending.take() {
                out.push((line.to_string(), d));
            }
        }
    }
    out
}

fn header(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Follows a stream for `secs`, returning the capture→available latency of each part/segment.
async fn availability(
    srv: &Srv,
    media_playlist: &str,
    start: Instant,
    secs: u64,
) -> (Histogram, Histogram, Option<i64>) {
    let http = reqwest::Client::new();
    let mut first_pdt = None;
    let mut hist = Histogram::default();
    let mut oldest = Histogram::default();
    let mut seen: HashMap<String, ()> = HashMap::new();
    // Media time from the stream's start: the first segment starts at the encoder's frame 0.
    let mut media_end = 0.0f64;
    let end = Instant::now() + Duration::from_secs(secs);
    let moim = srv.name == "moim";
    let mut next: Option<(u64, u64)> = None;
    let mut first = true;
    let debug = std::env::var("MOIM_BENCH_DEBUG").is_ok();
    while Instant::now() < end {
        let url = match (moim, next) {
            (true, Some((m, p))) => {
                format!("{}{media_playlist}?_HLS_msn={m}&_HLS_part={p}", srv.http)
            }
            _ => format!("{}{media_playlist}", srv.http),
        };
        let Ok(resp) = http.get(&url).send().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let now = Instant::now();
        let text = resp.text().await.unwrap_or_default();
        let list = entries(&text, moim);
        if debug && first {
            eprintln!(
                "   {url}: {}",
                text.lines().take(12).collect::<Vec<_>>().join(" | ")
            );
        }
        if first_pdt.is_none() && header(&text, "#EXT-X-MEDIA-SEQUENCE:") == Some(0) {
            first_pdt = text
                .lines()
                .find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
                .and_then(parse_pdt);
        }
        if first && !list.is_empty() {
            // Count from the stream's first entry: the window must still hold media sequence 0.
            if header(&text, "#EXT-X-MEDIA-SEQUENCE:").unwrap_or(0) != 0 {
                eprintln!("   warning: the window already moved past the start");
            }
            first = false;
        }
        for (uri, d) in list {
            if seen.insert(uri.clone(), ()).is_none() {
                media_end += d;
                let captured = start + Duration::from_secs_f64(media_end);
                let newest = now.saturating_duration_since(captured);
                if debug && hist.count() < 5 {
                    eprintln!(
                        "   {uri}: media end {media_end:.3} s, at {:.3} s",
                        now.duration_since(start).as_secs_f64()
                    );
                }
                hist.record(newest.as_micros() as u64);
                oldest.record((newest + Duration::from_secs_f64(d)).as_micros() as u64);
            }
        }
        if moim {
            // Ask for the part after the preload hint's: the server holds the request until then.
            next = text
                .lines()
                .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p"))
                .and_then(|r| r.split(".m4s").next())
                .and_then(|r| r.split_once('.'))
                .and_then(|(m, p)| Some((m.parse().ok()?, p.parse().ok()?)));
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (hist, oldest, first_pdt)
}

/// Chromium + hls.js: median seconds behind the playlist's live edge (and the script's other
/// figure, which is only meaningful when playback starts at the stream's start).
async fn behind_edge(
    root: &Path,
    url: &str,
    low_latency: bool,
    start: Instant,
    secs: u64,
) -> Option<(f64, f64)> {
    let script = root.join("e2e/g2g.mjs");
    let since_start_ms = start.elapsed().as_millis();
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(url)
        .arg(if low_latency { "1" } else { "0" })
        .arg(secs.to_string())
        .arg(since_start_ms.to_string())
        .arg(root.join("web/vendor/hls.light.min.js"))
        .current_dir(root.join("e2e"))
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    Some((v["edge_s"].as_f64()?, v["clock_s"].as_f64()?))
}

/// The media playlist a player would pick (moim: the source rendition from the multivariant).
async fn media_playlist(srv: &Srv, stream: &str) -> anyhow::Result<String> {
    let path = (srv.playlist)(stream);
    if srv.name != "moim" {
        return Ok(path);
    }
    let http = reqwest::Client::new();
    let text = http
        .get(format!("{}/live/{stream}/index.m3u8", srv.http))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let uri = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .context("a variant in moim's multivariant playlist")?;
    Ok(format!("/live/{stream}/{uri}"))
}

/// Waits until a stream's playlist answers 200.
async fn wait_playlist(srv: &Srv, stream: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::new();
    loop {
        if srv.name == "moim" {
            if let Ok(p) = media_playlist(srv, stream).await {
                return Ok(p);
            }
        } else {
            let p = (srv.playlist)(stream);
            if let Ok(r) = http.get(format!("{}{p}", srv.http)).send().await {
                if r.status().is_success() {
                    return Ok(p);
                }
            }
        }
        if Instant::now() > deadline {
            bail!("{}: no playlist for {stream} within 30 s", srv.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ms(us: u64) -> String {
    format!("{:.0}", us as f64 / 1000.0)
}

pub async fn run(o: LiveOpts, moim_bin: PathBuf, root: PathBuf) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("moim-bench-live-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let counts: Vec<usize> = o
        .publishers
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let streams = counts.iter().copied().max().unwrap_or(1).max(2);
    eprintln!("live bench: making the 720p clip");
    let clip = make_clip(&work)?;
    let mut results = serde_json::Map::new();
    let mut table: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, vals: Vec<String>| table.push((name.to_string(), vals));
    let mut cols = Vec::new();
    let mut per_server: Vec<serde_json::Value> = Vec::new();
    let mut latency_rows: Vec<Vec<String>> = vec![vec![]; 5];
    let mut startup_ms: Option<i64> = None;
    let mut ingest_rows: HashMap<usize, (Vec<String>, Vec<String>)> = HashMap::new();
    let mut delivery_rows: Vec<Vec<String>> = vec![vec![]; 10];
    for which in ["moim", "nginx-rtmp"] {
        let dir = work.join(which);
        std::fs::create_dir_all(&dir)?;
        let srv = if which == "moim" {
            start_moim(&moim_bin, &dir, streams).await?
        } else {
            start_nginx(&dir, streams).await?
        };
        cols.push(which.to_string());
        let step = |name: &str| o.steps.split(',').any(|s| s.trim() == name);
        let mut sj = json!({});
        if step("latency") {
            eprintln!("== {which}: latency (live encoder, {} s)", o.duration);
            let key = srv.keys[0].clone();
            let (enc, start, start_wall) =
                live_encoder(&format!("{}/live/{key}", srv.rtmp), o.duration + 30)?;
            let stream = if which == "moim" {
                "live-0".to_string()
            } else {
                key.clone()
            };
            let pl = wait_playlist(&srv, &stream).await?;
            let (avail, avail_oldest, pdt0) = availability(&srv, &pl, start, o.duration).await;
            if let Some(p) = pdt0 {
                // moim stamps a segment with the wall-clock arrival of its first frame: for segment
                // 0 that is the encoder's start-up (process start → first frame delivered).
                startup_ms = Some(p - start_wall);
                eprintln!(
                    "   encoder start-up (spawn → first frame at moim): {} ms",
                    p - start_wall
                );
            }
            let browser = if o.no_browser {
                None
            } else {
                let url = if which == "moim" {
                    format!("{}/live/{stream}/index.m3u8", srv.http)
                } else {
                    format!("{}{pl}", srv.http)
                };
                behind_edge(&root, &url, which == "moim", start, 15).await
            };
            kill(enc);
            latency_rows[0].push(ms(avail.quantile(0.5)));
            latency_rows[1].push(ms(avail.quantile(0.95)));
            latency_rows[2].push(ms(avail_oldest.quantile(0.5)));
            latency_rows[3].push(browser.map_or("-".into(), |b| format!("{:.0}", b.0 * 1000.0)));
            // Glass-to-glass: how far the player is behind the edge, plus how old the edge's
            // newest frame was when it became available, minus the encoder's start-up in that.
            let g2g = browser.map(|b| {
                b.0 * 1000.0 + avail.quantile(0.5) as f64 / 1000.0 - startup_ms.unwrap_or(0) as f64
            });
            latency_rows[4].push(g2g.map_or("-".into(), |g| format!("{g:.0}")));
            sj = json!({
                "availability_ms": {"p50": avail.quantile(0.5) as f64 / 1000.0, "p95": avail.quantile(0.95) as f64 / 1000.0, "samples": avail.count()},
                "availability_oldest_frame_ms": {"p50": avail_oldest.quantile(0.5) as f64 / 1000.0},
                "player_behind_edge_ms": browser.map(|b| b.0 * 1000.0),
                "glass_to_glass_estimate_ms": browser.map(|b| b.0 * 1000.0 + avail.quantile(0.5) as f64 / 1000.0 - startup_ms.unwrap_or(0) as f64),
            });
            tokio::time::sleep(Duration::from_secs(3)).await;
        }

        for &n in counts.iter().filter(|_| step("ingest")) {
            eprintln!("== {which}: ingest cost, {n} publisher(s) replaying with -c copy");
            let rss0 = srv.rss_kb();
            let mut pubs = Vec::new();
            for k in srv.keys.iter().take(n) {
                pubs.push(replayer(&clip, &format!("{}/live/{k}", srv.rtmp))?);
            }
            tokio::time::sleep(Duration::from_secs(6)).await;
            let cpu0 = srv.cpu_us();
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs(o.duration)).await;
            let cpu = srv.cpu_us().saturating_sub(cpu0) as f64 / 1e6;
            let secs = t0.elapsed().as_secs_f64();
            let rss = srv.rss_kb();
            for p in pubs {
                kill(p);
            }
            let per_stream_pct = 100.0 * cpu / secs / n as f64;
            let rss_per = rss.saturating_sub(rss0) as f64 / 1024.0 / n as f64;
            let e = ingest_rows.entry(n).or_default();
            e.0.push(format!("{per_stream_pct:.2}"));
            e.1.push(format!("{rss_per:.1}"));
            sj[format!("ingest_{n}")] = json!({"cpu_pct_of_core_per_stream": per_stream_pct, "rss_mb_per_stream": rss_per, "rss_mb_total": rss as f64 / 1024.0});
            // Let broadcasts end (moim: the grace period) before the next step.
            tokio::time::sleep(Duration::from_secs(12)).await;
        }

        if step("delivery") || step("capacity-only") {
            eprintln!("== {which}: delivery, {} viewers", o.viewers);
            let publisher = replayer(&clip, &format!("{}/live/{}", srv.rtmp, srv.keys[1]))?;
            let stream = if which == "moim" {
                "live-1".to_string()
            } else {
                srv.keys[1].clone()
            };
            let pl = wait_playlist(&srv, &stream).await?;
            tokio::time::sleep(Duration::from_secs(5)).await;
            let cpu0 = srv.cpu_us();
            let t0 = Instant::now();
            let d = if step("capacity-only") {
                std::sync::Arc::new(load::LoadStats::default())
            } else {
                delivery(&srv, &pl, o.viewers, o.duration).await
            };
            let secs = t0.elapsed().as_secs_f64();
            let cpu = srv.cpu_us().saturating_sub(cpu0) as f64 / 1e6;
            eprintln!(
                "== {which}: capacity, {} clients back to back",
                o.capacity_clients
            );
            let c = capacity(&srv, &pl, o.capacity_clients, 10, true).await;
            let cp = capacity(&srv, &pl, o.capacity_clients, 10, false).await;
            kill(publisher);
            let nb = d.nonblocking.lock().unwrap();
            let cb = c.nonblocking.lock().unwrap();
            let rps = d.requests.load(Ordering::Relaxed) as f64 / secs;
            delivery_rows[0].push(format!("{rps:.0}"));
            delivery_rows[1].push(ms(nb.quantile(0.5)));
            delivery_rows[2].push(ms(nb.quantile(0.99)));
            delivery_rows[3].push(d.errors.load(Ordering::Relaxed).to_string());
            delivery_rows[4].push(format!("{:.0}", 100.0 * cpu / secs));
            let crps = c.requests.load(Ordering::Relaxed) as f64 / 10.0;
            delivery_rows[5].push(format!("{crps:.0}"));
            delivery_rows[6].push(format!(
                "{} / {}",
                ms(cb.quantile(0.5)),
                ms(cb.quantile(0.99))
            ));
            delivery_rows[7].push(format!(
                "{:.0}",
                c.bytes.load(Ordering::Relaxed) as f64 * 8.0 / 10.0 / 1e6
            ));
            {
                let pb = cp.nonblocking.lock().unwrap();
                let prps = cp.requests.load(Ordering::Relaxed) as f64 / 10.0;
                delivery_rows[8].push(format!("{prps:.0}"));
                delivery_rows[9].push(format!(
                    "{} / {}",
                    ms(pb.quantile(0.5)),
                    ms(pb.quantile(0.99))
                ));
            }
            sj["delivery"] = json!({
                "viewers": o.viewers, "requests_per_s": rps, "mbit_per_s": d.bytes.load(Ordering::Relaxed) as f64 * 8.0 / secs / 1e6,
                "nonblocking_ms": {"p50": nb.quantile(0.5) as f64 / 1000.0, "p99": nb.quantile(0.99) as f64 / 1000.0},
                "blocking_ms": {"p50": d.blocking.lock().unwrap().quantile(0.5) as f64 / 1000.0},
                "errors": d.errors.load(Ordering::Relaxed), "server_cpu_pct": 100.0 * cpu / secs,
            });
            sj["capacity_playlist_only"] =
                json!({"requests_per_s": cp.requests.load(Ordering::Relaxed) as f64 / 10.0});
            sj["capacity"] = json!({
            "mbit_per_s": c.bytes.load(Ordering::Relaxed) as f64 * 8.0 / 10.0 / 1e6,
                "clients": o.capacity_clients, "requests_per_s": crps,
                "ms": {"p50": cb.quantile(0.5) as f64 / 1000.0, "p99": cb.quantile(0.99) as f64 / 1000.0},
                "errors": c.errors.load(Ordering::Relaxed),
            });
            drop(nb);
            drop(cb);
        }
        let mut entry = serde_json::Map::new();
        entry.insert(which.to_string(), sj);
        per_server.push(serde_json::Value::Object(entry));
        drop(srv);
    }
    let labels = [
        "capture → available, newest frame p50 (ms)",
        "capture → available, newest frame p95 (ms)",
        "capture → available, oldest frame p50 (ms)",
        "player behind live edge, Chromium (ms)",
        "glass-to-glass estimate (ms)",
    ];
    for (l, v) in labels.iter().zip(latency_rows) {
        row(l, v);
    }
    for n in &counts {
        let (cpu, rss) = ingest_rows.remove(n).unwrap_or_default();
        row(
            &format!("ingest {n} stream(s): CPU % of a core per stream"),
            cpu,
        );
        row(&format!("ingest {n} stream(s): RSS MB per stream"), rss);
    }
    let dl = [
        "delivery: requests/s",
        "delivery: non-blocking p50 (ms)",
        "delivery: non-blocking p99 (ms)",
        "delivery: errors",
        "delivery: server CPU (% of a core)",
        "capacity: requests/s (playlist + media)",
        "capacity: p50 / p99 (ms)",
        "capacity: Mbit/s",
        "capacity: requests/s (playlist only)",
        "capacity: playlist p50 / p99 (ms)",
    ];
    for (l, v) in dl.iter().zip(delivery_rows) {
        row(l, v);
    }
    println!("\nLive streaming: moim (LL-HLS, parts ≤ 334 ms, 1 s segments) vs nginx-rtmp (HLS, 2 s fragments)");
    if let Some(s) = startup_ms {
        println!("(latencies count from the encoder's process start; its start-up, {s} ms as measured by moim's first program date time, is in every latency figure for both servers)");
    }
    println!(
        "{:<48}{:>14}{:>14}",
        "metric",
        cols[0],
        cols.get(1).map_or("", |s| s)
    );
    for (name, vals) in &table {
        print!("{name:<48}");
        for v in vals {
            print!("{v:>14}");
        }
        println!();
    }
    results.insert("servers".into(), json!(per_server));
    results.insert("encoder_startup_ms".into(), json!(startup_ms));
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| root.join("bench/results/live.json"));
    if let Some(p) = out.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {}", out.display());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
