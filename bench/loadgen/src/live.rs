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
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::hist::Histogram;
use crate::server::{cpu_ns, status_kb};

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

const NGINX_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A server under test.
struct Srv {
    name: &'static str,
    child: Child,
    /// Processes whose CPU and memory count (nginx: master and workers).
    pids: Vec<u32>,
    http: String,
    rtmp: String,
    /// Stream name → playlist path on `http`.
    keys: Vec<String>,
    playlist: Box<dyn Fn(&str) -> String + Send + Sync>,
}

impl Drop for Srv {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Srv {
    fn cpu_us(&self) -> u64 {
        self.pids.iter().filter_map(|p| cpu_ns(*p)).sum::<u64>() / 1000
    }
    fn rss_kb(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|p| status_kb(*p, "VmRSS"))
            .sum()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

async fn start_moim(bin: &Path, dir: &Path, streams: usize) -> anyhow::Result<Srv> {
    let data = dir.join("moim");
    std::fs::create_dir_all(&data)?;
    let log = std::fs::File::create(dir.join("moim.log"))?;
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rtmp-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--max-broadcasts", "50", "--shutdown-grace-s", "3"])
        .args(["--login-rate-per-min", "1000"])
        .env("RUST_LOG", "warn")
        .env_remove("MOIM_CONFIG")
        .current_dir(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting moim")?;
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let (mut l1, mut l2) = (String::new(), String::new());
    out.read_line(&mut l1)?;
    out.read_line(&mut l2)?;
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let http = l1
        .trim()
        .strip_prefix("moim listening on ")
        .context("moim's first line")?
        .to_string();
    let rtmp = l2
        .trim()
        .strip_prefix("moim rtmp on ")
        .context("moim's second line")?
        .trim_end_matches("/live")
        .to_string();
    // An owner, rooms and their keys.
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let r = client
        .post(format!("{http}/api/v1/auth/signup"))
        .json(&json!({"username": "bench", "password": "bench password"}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("moim signup: {}", r.status());
    }
    let mut keys = Vec::new();
    for i in 0..streams {
        let slug = format!("live-{i}");
        client
            .post(format!("{http}/api/v1/rooms"))
            .json(&json!({"slug": slug, "title": slug}))
            .send()
            .await?
            .error_for_status()?;
        // Passthrough, recording off: the same work nginx does (nginx records nothing either).
        client
            .patch(format!("{http}/api/v1/rooms/{slug}"))
            .json(&json!({"record_broadcasts": false}))
            .send()
            .await?
            .error_for_status()?;
        let k: serde_json::Value = client
            .get(format!("{http}/api/v1/rooms/{slug}/stream-key"))
            .send()
            .await?
            .json()
            .await?;
        keys.push(k["stream_key"].as_str().context("stream key")?.to_string());
    }
    let pid = child.id();
    Ok(Srv {
        name: "moim",
        child,
        pids: vec![pid],
        http: http.clone(),
        rtmp,
        keys,
        playlist: Box::new(|stream: &str| stream.to_string()),
    })
}

async fn start_nginx(dir: &Path, streams: usize) -> anyhow::Result<Srv> {
    if !Path::new(NGINX_MODULE).exists() {
        bail!("nginx's RTMP module is missing: apt-get install nginx-light libnginx-mod-rtmp");
    }
    let root = dir.join("nginx");
    let hls = root.join("hls");
    std::fs::create_dir_all(root.join("logs"))?;
    std::fs::create_dir_all(&hls)?;
    let (http_port, rtmp_port) = (free_port(), free_port());
    let conf = format!(
        r#"load_module {NGINX_MODULE};
daemon off;
master_process on;
worker_processes auto;
error_log {root}/logs/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 4096; }}
rtmp {{
  server {{
    listen 127.0.0.1:{rtmp_port};
    chunk_size 4096;
    application live {{
      live on;
      record off;
      hls on;
      hls_path {hls};
      hls_fragment 2s;
      hls_playlist_length 12s;
    }}
  }}
}}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path {root}/tmp;
  types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
  server {{
    listen 127.0.0.1:{http_port};
    location /hls/ {{
      alias {hls}/;
      add_header Cache-Control no-cache;
      add_header Access-Control-Allow-Origin *;
    }}
  }}
}}
"#,
        root = root.display(),
        hls = hls.display(),
    );
    let conf_path = root.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let log = std::fs::File::create(dir.join("nginx.log"))?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&root)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting nginx")?;
    // Wait for the worker, then collect master + workers.
    let master = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pids = vec![master];
    while Instant::now() < deadline {
        let kids = children_of(master);
        if !kids.is_empty() && std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok() {
            pids.extend(kids);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if pids.len() < 2 {
        bail!(
            "nginx did not start; see {}",
            dir.join("nginx.log").display()
        );
    }
    let keys = (0..streams).map(|i| format!("s{i}")).collect();
    Ok(Srv {
        name: "nginx-rtmp",
        child,
        pids,
        http: format!("http://127.0.0.1:{http_port}"),
        rtmp: format!("rtmp://127.0.0.1:{rtmp_port}"),
        keys,
        playlist: Box::new(|stream: &str| format!("/hls/{stream}.m3u8")),
    })
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
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

#[derive(Default)]
struct LoadStats {
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    nonblocking: Mutex<Histogram>,
    blocking: Mutex<Histogram>,
}

/// `viewers` players following the stream for `secs`: moim's LL-HLS loop or nginx's polling.
async fn delivery(srv: &Srv, playlist: &str, viewers: usize, secs: u64) -> Arc<LoadStats> {
    let stats = Arc::new(LoadStats::default());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(viewers)
        .build()
        .expect("http client");
    let end = Instant::now() + Duration::from_secs(secs);
    let moim = srv.name == "moim";
    let base = srv.http.clone();
    let playlist = playlist.to_string();
    let dir = playlist[..playlist.rfind('/').unwrap_or(0)].to_string();
    let mut tasks = Vec::new();
    for i in 0..viewers {
        let (http, stats, base, playlist, dir) = (
            http.clone(),
            stats.clone(),
            base.clone(),
            playlist.clone(),
            dir.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Spread the start over a second, as real viewers do not arrive in lockstep.
            tokio::time::sleep(Duration::from_millis((i as u64 * 1000) / viewers as u64)).await;
            let mut next: Option<(u64, u64)> = None;
            let mut fetched: HashMap<String, ()> = HashMap::new();
            while Instant::now() < end {
                let url = match next {
                    Some((m, p)) => format!("{base}{playlist}?_HLS_msn={m}&_HLS_part={p}"),
                    None => format!("{base}{playlist}"),
                };
                let t = Instant::now();
                let text = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                    _ => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let took = t.elapsed().as_micros() as u64;
                stats.requests.fetch_add(1, Ordering::Relaxed);
                if next.is_some() {
                    stats.blocking.lock().unwrap().record(took);
                } else {
                    stats.nonblocking.lock().unwrap().record(took);
                }
                // Fetch what is new (only the newest entry on the first pass, like a player
                // joining at the live edge).
                let list = entries(&text, moim);
                let fresh: Vec<String> = if fetched.is_empty() {
                    list.last().map(|(u, _)| u.clone()).into_iter().collect()
                } else {
                    list.into_iter()
                        .map(|(u, _)| u)
                        .filter(|u| !fetched.contains_key(u))
                        .collect()
                };
                for uri in fresh {
                    let t = Instant::now();
                    match http.get(format!("{base}{dir}/{uri}")).send().await {
                        Ok(r) if r.status().is_success() => {
                            let n = r.bytes().await.map(|b| b.len()).unwrap_or(0);
                            stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                            stats.requests.fetch_add(1, Ordering::Relaxed);
                            stats
                                .nonblocking
                                .lock()
                                .unwrap()
                                .record(t.elapsed().as_micros() as u64);
                        }
                        _ => {
                            stats.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    fetched.insert(uri, ());
                }
                if fetched.len() > 64 {
                    fetched.clear(); // only "new since last time" matters
                    fetched.insert(String::new(), ());
                }
                if moim {
                    next = text
                        .lines()
                        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p"))
                        .and_then(|r| r.split(".m4s").next())
                        .and_then(|r| r.split_once('.'))
                        .and_then(|(m, p)| Some((m.parse().ok()?, p.parse().ok()?)));
                } else {
                    // hls.js reloads a live playlist about once per target duration; 1 s here.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    stats
}

/// Back-to-back non-blocking requests from `clients` for `secs`: playlist, then (with `media`)
/// the newest part or segment.
async fn capacity(
    srv: &Srv,
    playlist: &str,
    clients: usize,
    secs: u64,
    media: bool,
) -> Arc<LoadStats> {
    let stats = Arc::new(LoadStats::default());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("http client");
    let end = Instant::now() + Duration::from_secs(secs);
    let moim = srv.name == "moim";
    let dir = playlist[..playlist.rfind('/').unwrap_or(0)].to_string();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, stats) = (http.clone(), stats.clone());
        let (pl, base, dir) = (
            format!("{}{playlist}", srv.http),
            srv.http.clone(),
            dir.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let t = Instant::now();
                let Ok(r) = http.get(&pl).send().await else {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let text = r.text().await.unwrap_or_default();
                stats
                    .nonblocking
                    .lock()
                    .unwrap()
                    .record(t.elapsed().as_micros() as u64);
                stats.requests.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(text.len() as u64, Ordering::Relaxed);
                if !media {
                    continue;
                }
                let Some((uri, _)) = entries(&text, moim).pop() else {
                    continue;
                };
                let t = Instant::now();
                match http.get(format!("{base}{dir}/{uri}")).send().await {
                    Ok(r) if r.status().is_success() => {
                        let n = r.bytes().await.map(|b| b.len()).unwrap_or(0);
                        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        stats.requests.fetch_add(1, Ordering::Relaxed);
                        stats
                            .nonblocking
                            .lock()
                            .unwrap()
                            .record(t.elapsed().as_micros() as u64);
                    }
                    _ => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    stats
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
            latency_rows[4].push(browser.map_or("-".into(), |b| format!("{:.0}", b.1 * 1000.0)));
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

        if step("delivery") {
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
            let d = delivery(&srv, &pl, o.viewers, o.duration).await;
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
