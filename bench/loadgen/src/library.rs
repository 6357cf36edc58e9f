//! Video library benchmark: moim against ffmpeg itself (and the disk), on this machine, in one
//! run.
//!
//! 1. Time to playable: a 60 s 720p30 H.264/AAC MP4 is uploaded to moim (tus, 8 MiB pieces);
//!    from the answer to the last piece to the `ready` event on `/me/events`, against the wall
//!    time of `ffmpeg -c copy -f hls` (4 s fMP4 segments, VOD) on the same file.
//! 2. Upload throughput: a 256 MiB file (not a video: it fails processing, which is cheap)
//!    uploaded in 8 MiB pieces, bytes per second from the announcement to the last answer,
//!    against copying the same file (and syncing it) on the same disk.
//! 3. Transcode cost: a 60 s 720p MPEG-4 Part 2 / Opus Matroska file (which moim must
//!    transcode) goes through moim's default ladder; moim's CPU time and its children's (ffmpeg)
//!    per video second, against the one ffmpeg command that makes the same ladder as HLS.
//! 4. Share links: `wrk` on `/s/{code}` (the page with the link's status) and on
//!    `/api/v1/s/{code}` with a grant (a visitor reloading): requests per second and p99.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use serde_json::{json, Value};

use crate::live::servers::{start_moim_with, Srv};

#[derive(clap::Args, Clone, Debug)]
pub struct LibraryOpts {
    /// moim binary; default: `cargo build --release -p moim`.
    #[arg(long)]
    pub moim_bin: Option<PathBuf>,
    /// Seconds of test video.
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    /// Runs of each timed step (the best counts).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// MiB of the file used for upload throughput (large, so per-request costs do not hide
    /// the rate).
    #[arg(long, default_value_t = 256)]
    pub upload_mib: usize,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 10)]
    pub wrk_seconds: u32,
    /// Where the test files and servers live (default: a fresh directory under /tmp).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const PIECE: usize = 8 << 20;
/// moim's default ladder, for the peer command (`--video-ladder` default).
const LADDER: [(u32, u32); 3] = [(720, 2800), (480, 1400), (360, 800)];

fn ffmpeg(args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .status()
        .context("running ffmpeg")?;
    if !st.success() {
        bail!("ffmpeg {args:?} failed");
    }
    Ok(())
}

/// User + system CPU of a process and of its waited-for children, microseconds.
fn cpu_with_children_us(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(at) = stat.rfind(')') else { return 0 };
    let f: Vec<u64> = stat[at + 2..]
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14–17 of the line, 11–14 after the state.
    let ticks = f.get(11..15).map_or(0, |s| s.iter().sum::<u64>());
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000 / hz
}

/// CPU so far of the benchmark itself (`RUSAGE_SELF`: the HTTP client) or of the children it
/// waited for (`RUSAGE_CHILDREN`: ffmpeg runs), microseconds.
fn rusage_us(who: libc::c_int) -> u64 {
    // SAFETY: getrusage fills a stack struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

fn own_us() -> u64 {
    rusage_us(libc::RUSAGE_SELF)
}

fn own_children_us() -> u64 {
    rusage_us(libc::RUSAGE_CHILDREN)
}

/// A signed-in member on a running moim, with the tus client and the event stream.
struct Member {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Member {
    async fn signup(base: &str, name: &str) -> anyhow::Result<Member> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()?;
        let resp = http
            .post(format!("{base}/api/v1/auth/signup"))
            .json(&json!({"username": name, "password": "bench password 1"}))
            .send()
            .await?;
        let cookie = crate::server::session_cookie(&resp).context("no session cookie")?;
        Ok(Member {
            http,
            base: base.to_string(),
            cookie,
        })
    }

    /// Uploads `data` in 8 MiB pieces: (video id, seconds the upload took, instant of the
    /// last answer).
    async fn upload(&self, data: &[u8], name: &str) -> anyhow::Result<(String, f64, Instant)> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(name);
        // Pieces are slices of one buffer: the client copies nothing of its own.
        let data = bytes::Bytes::copy_from_slice(data);
        let started = Instant::now();
        let resp = self
            .http
            .post(format!("{}/api/v1/uploads", self.base))
            .header("cookie", &self.cookie)
            .header("tus-resumable", "1.0.0")
            .header("upload-length", data.len().to_string())
            .header("upload-metadata", format!("filename {b64}"))
            .send()
            .await?;
        if resp.status() != 201 {
            bail!("upload creation: {} {}", resp.status(), resp.text().await?);
        }
        let location = resp.headers()["location"].to_str()?.to_string();
        let mut offset = 0;
        loop {
            let end = (offset + PIECE).min(data.len());
            let resp = self
                .http
                .patch(format!("{}{location}", self.base))
                .header("cookie", &self.cookie)
                .header("tus-resumable", "1.0.0")
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", offset.to_string())
                .body(data.slice(offset..end))
                .send()
                .await?;
            if resp.status() != 204 {
                bail!("upload piece: {} {}", resp.status(), resp.text().await?);
            }
            offset = end;
            if offset == data.len() {
                let done = Instant::now();
                let id = resp
                    .headers()
                    .get("moim-video-id")
                    .context("no Moim-Video-Id")?
                    .to_str()?
                    .to_string();
                return Ok((id, done.duration_since(started).as_secs_f64(), done));
            }
        }
    }

    async fn events(&self) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .http
            .get(format!("{}/api/v1/me/events", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .header("cookie", &self.cookie)
            .json(&body)
            .send()
            .await?;
        Ok(r.error_for_status()?.json().await?)
    }
}

/// What a video must be for [`wait_until`] to return.
#[derive(Clone, Copy)]
enum Until {
    /// Ready (playable).
    Ready,
    /// Ready and with its thumbnail (so the next run starts on an idle server).
    Pictures,
    /// Failed (the throughput file is no video).
    Failed,
}

/// Reads the event stream until video `id` is as `until` says; returns when that was seen. A
/// failure nobody expected is an error.
/// Lets the disk finish what earlier steps left it (dirty pages of a copy, a refused upload's
/// deleted files), so each timed write starts from the same quiet disk.
fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

async fn wait_until(
    events: &mut reqwest::Response,
    buf: &mut String,
    id: &str,
    until: Until,
) -> anyhow::Result<Instant> {
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let v: Value = serde_json::from_str(data).unwrap_or_default();
            let video = &v["video"];
            if video["id"] != id {
                continue;
            }
            let done = match (video["status"].as_str(), until) {
                (Some("failed"), Until::Failed) => true,
                (Some("failed"), _) => bail!("video failed: {}", video["error"]),
                (Some("ready"), Until::Ready) => true,
                (Some("ready"), Until::Pictures) => !video["thumbnail_url"].is_null(),
                _ => false,
            };
            if done {
                return Ok(Instant::now());
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(900), events.chunk())
            .await
            .context("no event in 15 minutes")??
            .context("the event stream ended")?;
        buf.push_str(std::str::from_utf8(&chunk)?);
    }
}

/// Seconds of one ffmpeg run, and its CPU.
fn timed_ffmpeg(args: &[&str]) -> anyhow::Result<(f64, f64)> {
    let cpu0 = own_children_us();
    let t = Instant::now();
    ffmpeg(args)?;
    Ok((
        t.elapsed().as_secs_f64(),
        (own_children_us() - cpu0) as f64 / 1e6,
    ))
}

/// `wrk` on one URL: (requests per second, p99 milliseconds).
pub(crate) fn wrk(url: &str, seconds: u32, header: Option<&str>) -> anyhow::Result<(f64, f64)> {
    wrk_with(url, seconds, header, 32)
}

/// `wrk` with `connections` open at once.
pub(crate) fn wrk_with(
    url: &str,
    seconds: u32,
    header: Option<&str>,
    connections: u32,
) -> anyhow::Result<(f64, f64)> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg(url)
        .stderr(Stdio::inherit())
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| format!("wrk output: {text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim())
        .and_then(|v| {
            let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
            let n: f64 = num.parse().ok()?;
            Some(match unit {
                "us" => n / 1000.0,
                "ms" => n,
                "s" => n * 1000.0,
                _ => n,
            })
        })
        .unwrap_or(f64::NAN);
    let errors = text.lines().any(|l| l.contains("Non-2xx"));
    if errors {
        bail!("wrk saw error answers: {text}");
    }
    Ok((rps, p99))
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

pub async fn run(o: LibraryOpts, moim_bin: PathBuf) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("moim-bench-library-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let secs = o.seconds.to_string();
    let mp4 = dir.join("h264-720p.mp4");
    let mkv = dir.join("mpeg4-720p.mkv");
    eprintln!("making {} s of 720p30 test video…", o.seconds);
    let av = |size: &str| {
        vec![
            "-f".to_string(),
            "lavfi".into(),
            "-i".into(),
            format!("testsrc2=size={size}:rate=30"),
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "sine=frequency=440:sample_rate=48000".into(),
            "-t".into(),
            secs.clone(),
        ]
    };
    if !mp4.exists() {
        let mut a = av("1280x720");
        a.extend(
            [
                "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-b:v", "3000k", "-pix_fmt",
                "yuv420p", "-c:a", "aac", "-b:a", "128k",
            ]
            .map(String::from),
        );
        a.push(mp4.display().to_string());
        ffmpeg(&a.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    if !mkv.exists() {
        let mut a = av("1280x720");
        a.extend(
            [
                "-c:v", "mpeg4", "-q:v", "4", "-c:a", "libopus", "-b:a", "96k",
            ]
            .map(String::from),
        );
        a.push(mkv.display().to_string());
        ffmpeg(&a.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    let data = std::fs::read(&mp4)?;
    let mb = data.len() as f64 / 1e6;

    // The peers: ffmpeg remuxing to HLS, and a plain copy on the same disk.
    let mut remux_s = Vec::new();
    for i in 0..o.runs {
        let out = dir.join(format!("ffmpeg-hls-{i}"));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)?;
        let playlist = out.join("index.m3u8").display().to_string();
        let mp4s = mp4.display().to_string();
        let (wall, _) = timed_ffmpeg(&[
            "-i",
            &mp4s,
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_time",
            "4",
            "-hls_segment_type",
            "fmp4",
            "-hls_playlist_type",
            "vod",
            &playlist,
        ])?;
        remux_s.push(wall);
    }
    let big = dir.join("upload.bin");
    let big_data: Vec<u8> = (0..o.upload_mib << 20)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect();
    std::fs::write(&big, &big_data)?;
    let big_mb = big_data.len() as f64 / 1e6;
    let mut copy_mbps = Vec::new();
    for i in 0..o.runs {
        let to = dir.join(format!("copy-{i}.bin"));
        settle();
        let t = Instant::now();
        std::fs::copy(&big, &to)?;
        std::fs::File::open(&to)?.sync_all()?;
        copy_mbps.push(big_mb / t.elapsed().as_secs_f64());
        std::fs::remove_file(&to)?;
    }
    // The same through user space (what a server receiving bytes must do at the least): read
    // and write in 1 MiB pieces, then sync.
    let mut rw_mbps = Vec::new();
    for i in 0..o.runs {
        use std::io::{Read, Write};
        let to = dir.join(format!("rw-{i}.bin"));
        settle();
        let t = Instant::now();
        let mut from = std::fs::File::open(&big)?;
        let mut out = std::fs::File::create(&to)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = from.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
        }
        out.sync_all()?;
        rw_mbps.push(big_mb / t.elapsed().as_secs_f64());
        std::fs::remove_file(&to)?;
    }
    // What syncing every acknowledged piece would cost at the least: each 8 MiB piece written
    // to a file of its own and synced before the next, from memory, without HTTP. (moim syncs
    // a file's pieces once, when it is whole, and checks pieces at start; tusd never syncs.)
    let mut pieces_mbps = Vec::new();
    for i in 0..o.runs {
        use std::io::Write;
        let to = dir.join(format!("pieces-{i}"));
        std::fs::create_dir_all(&to)?;
        settle();
        let t = Instant::now();
        for (n, piece) in big_data.chunks(PIECE).enumerate() {
            let mut out = std::fs::File::create(to.join(format!("{n}")))?;
            out.write_all(piece)?;
            out.sync_all()?;
        }
        pieces_mbps.push(big_mb / t.elapsed().as_secs_f64());
        std::fs::remove_dir_all(&to)?;
    }

    // moim: time to playable and upload speed.
    // Without the lower renditions a remuxed upload gains after it plays: they would encode
    // beside the next run (what is measured is the remux, and the transcode on its own).
    let srv: Srv = start_moim_with(
        &moim_bin,
        &dir.join("moim"),
        0,
        &["--video-remux-ladder", "false"],
    )
    .await?;
    let member = Member::signup(&srv.http, "uploader").await?;
    let mut events = member.events().await?;
    let mut buf = String::new();
    let mut playable_s = Vec::new();
    let mut upload_mbps = Vec::new();
    for i in 0..o.runs {
        settle();
        let (server0, client0) = (srv.cpu_us(), own_us());
        let (id, took, _) = member.upload(&big_data, &format!("big-{i}.bin")).await?;
        upload_mbps.push(big_mb / took);
        // Where the time goes: both sides share the machine's cores.
        println!(
            "upload run {i}: {took:.3} s wall, moim {:.3} CPU-s, client {:.3} CPU-s",
            (srv.cpu_us() - server0) as f64 / 1e6,
            (own_us() - client0) as f64 / 1e6
        );
        // Its processing (it is refused) ends, and its files go, before the next run starts.
        wait_until(&mut events, &mut buf, &id, Until::Failed).await?;
        let blobs = dir.join("moim/moim/blobs");
        let leftovers = || {
            blobs.join("videos").join(&id).exists()
                || std::fs::read_dir(blobs.join("uploads")).is_ok_and(|mut d| d.next().is_some())
        };
        let since = Instant::now();
        while leftovers() {
            if since.elapsed() > Duration::from_secs(120) {
                bail!("the refused upload's files were still there after 2 minutes");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(big_data);
    for i in 0..o.runs {
        let (id, _, done) = member.upload(&data, &format!("clip-{i}.mp4")).await?;
        let ready = wait_until(&mut events, &mut buf, &id, Until::Ready).await?;
        playable_s.push(ready.duration_since(done).as_secs_f64());
        wait_until(&mut events, &mut buf, &id, Until::Pictures).await?;
    }

    // Transcoding: moim (with its ffmpeg children) against the one ffmpeg ladder command.
    let mkv_data = std::fs::read(&mkv)?;
    let pid = srv.pids[0];
    let cpu0 = cpu_with_children_us(pid);
    let (id, _, done) = member.upload(&mkv_data, "ladder.mkv").await?;
    let ready = wait_until(&mut events, &mut buf, &id, Until::Ready).await?;
    let moim_tx_wall = ready.duration_since(done).as_secs_f64();
    let moim_tx_cpu = (cpu_with_children_us(pid) - cpu0) as f64 / 1e6;
    let out = dir.join("ffmpeg-ladder");
    let _ = std::fs::remove_dir_all(&out);
    let mut graph = format!("[0:v:0]split={}", LADDER.len());
    for i in 0..LADDER.len() {
        graph.push_str(&format!("[s{i}]"));
    }
    graph.push(';');
    let mut args: Vec<String> = vec!["-i".into(), mkv.display().to_string()];
    for (i, (h, _)) in LADDER.iter().enumerate() {
        graph.push_str(&format!(
            "[s{i}]scale=-2:{h}:flags=bicubic,format=yuv420p[o{i}]"
        ));
        if i + 1 < LADDER.len() {
            graph.push(';');
        }
    }
    args.extend(["-filter_complex".into(), graph]);
    for (i, (h, k)) in LADDER.iter().enumerate() {
        let rung = out.join(format!("{h}p"));
        std::fs::create_dir_all(&rung)?;
        args.extend(
            [
                "-map",
                &format!("[o{i}]"),
                "-map",
                "0:a:0",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                "-maxrate",
                &format!("{k}k"),
                "-bufsize",
                &format!("{}k", k * 2),
                "-profile:v",
                "high",
                "-sc_threshold",
                "0",
                "-force_key_frames",
                "expr:gte(t,n_forced*2)",
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                "-ac",
                "2",
                "-ar",
                "48000",
                "-f",
                "hls",
                "-hls_time",
                "4",
                "-hls_segment_type",
                "fmp4",
                "-hls_playlist_type",
                "vod",
            ]
            .map(String::from),
        );
        args.push(rung.join("index.m3u8").display().to_string());
    }
    let (ff_tx_wall, ff_tx_cpu) =
        timed_ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>())?;

    // Share links.
    let share = member
        .post(&format!("/videos/{id}/shares"), json!({}))
        .await?;
    let code = share["share"]["code"]
        .as_str()
        .context("share code")?
        .to_string();
    let page = format!("{}/s/{code}", srv.http);
    let api = format!("{}/api/v1/s/{code}", srv.http);
    let opened = reqwest::Client::new().get(&api).send().await?;
    let grant = opened
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("moim_share_"))
        .map(|v| v.split(';').next().unwrap_or(v).to_string())
        .context("no grant cookie")?;
    let (page_rps, page_p99) = wrk(&page, o.wrk_seconds, None)?;
    let (api_rps, api_p99) = wrk(&api, o.wrk_seconds, Some(&format!("Cookie: {grant}")))?;
    drop(srv);

    let video_s = f64::from(o.seconds);
    let (remux, playable) = (best(&remux_s), best(&playable_s));
    let (copy, upload, rw) = (
        copy_mbps.iter().copied().fold(0.0, f64::max),
        upload_mbps.iter().copied().fold(0.0, f64::max),
        rw_mbps.iter().copied().fold(0.0, f64::max),
    );
    let pieces = pieces_mbps.iter().copied().fold(0.0, f64::max);
    println!(
        "\n## Video library ({} s 720p30 test video, {mb:.1} MB; best of {})\n",
        o.seconds, o.runs
    );
    println!("| measure | moim | peer | ratio (moim/peer) | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| time to playable after the last byte (H.264/AAC MP4) | {playable:.3} s | ffmpeg -c copy -f hls: {remux:.3} s | {:.2}× | ≤ 1.5× |",
        playable / remux
    );
    println!(
        "| upload throughput, {} MiB file in 8 MiB PATCH pieces | {upload:.0} MB/s | file copy + fsync: {copy:.0} MB/s | {:.2}× | ≥ 0.7× |",
        o.upload_mib,
        upload / copy
    );
    println!(
        "| the same upload | {upload:.0} MB/s | read + write in 1 MiB pieces + fsync: {rw:.0} MB/s | {:.2}× | — |",
        upload / rw
    );
    println!(
        "| the same upload | {upload:.0} MB/s | syncing every piece (8 MiB files from memory, no HTTP): {pieces:.0} MB/s | {:.2}× | — |",
        upload / pieces
    );
    println!(
        "| transcode to the 720/480/360 ladder, CPU-s per video-s | {:.2} (wall {moim_tx_wall:.1} s) | one ffmpeg command: {:.2} (wall {ff_tx_wall:.1} s) | {:.2}× | ≤ 1.1× |",
        moim_tx_cpu / video_s,
        ff_tx_cpu / video_s,
        moim_tx_cpu / ff_tx_cpu
    );
    println!("| share page `/s/{{code}}`, wrk -t2 -c32 | {page_rps:.0} req/s, p99 {page_p99:.1} ms | — | — | a figure |");
    println!("| share API with a grant, wrk -t2 -c32 | {api_rps:.0} req/s, p99 {api_p99:.1} ms | — | — | a figure |");
    println!("\nruns: playable {playable_s:.3?} s, ffmpeg remux {remux_s:.3?} s, upload {upload_mbps:.0?} MB/s, copy {copy_mbps:.0?} MB/s, read+write {rw_mbps:.0?} MB/s, synced pieces {pieces_mbps:.0?} MB/s");
    if o.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
