//! Forwarding with real libwebrtc clients: one publisher and N subscribers, each an
//! `RTCPeerConnection` of `@roamhq/wrtc` (Chromium's WebRTC library, in Node) run by
//! `bench/peers/wrtc-forward.mjs`, through moim (WHIP/WHEP) and, in the same run, through
//! Janus's VideoRoom (Debian's `janus`), the peer. For each count and SFU: the SFU's CPU while
//! forwarding, the streams it forwards per core, the packets the subscribers lost and the frames
//! they decoded of those sent. The subscribers decode what they get (libwebrtc always does), so
//! the clients' CPU, on the same two cores, bounds the counts this machine can drive.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

use crate::live::servers::start_moim_with;

#[derive(Args, Clone, Debug)]
pub struct WrtcOpts {
    /// moim binary; default: `cargo build --release -p moim`.
    #[arg(long)]
    pub moim_bin: Option<PathBuf>,
    /// Subscriber counts to measure, comma-separated.
    #[arg(long, default_value = "1,10,25")]
    pub subscribers: String,
    /// Seconds measured per count (after everyone connected and 4 s of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Video bitrate of the publisher, kbit/s.
    #[arg(long, default_value_t = 1500)]
    pub kbps: u64,
    /// The Janus program (Debian's `janus`); `none` measures moim alone.
    #[arg(long, default_value = "janus")]
    pub janus: String,
    /// Working directory (default: a new one under the temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// A Janus gateway with the HTTP transport and the VideoRoom plugin only, on loopback.
struct Janus {
    child: Child,
    url: String,
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_janus(bin: &str, dir: &Path) -> anyhow::Result<Janus> {
    std::fs::create_dir_all(dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // Only the plugin and transport used: the package's folders hold many more.
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/janus");
    for (sub, file) in [
        ("plugins", "libjanus_videoroom.so"),
        ("transports", "libjanus_http.so"),
    ] {
        std::fs::create_dir_all(dir.join(sub))?;
        let link = dir.join(sub).join(file);
        if !link.exists() {
            std::os::unix::fs::symlink(lib.join(sub).join(file), &link)?;
        }
    }
    std::fs::create_dir_all(dir.join("none"))?;
    let d = dir.display();
    std::fs::write(
        dir.join("janus.jcfg"),
        format!(
            "general: {{\n  configs_folder = \"{d}\"\n  plugins_folder = \"{d}/plugins\"\n  \
             transports_folder = \"{d}/transports\"\n  events_folder = \"{d}/none\"\n  \
             loggers_folder = \"{d}/none\"\n  debug_level = 3\n  session_timeout = 120\n}}\n\
             media: {{\n  rtp_port_range = \"40000-49999\"\n}}\n\
             nat: {{\n  ice_enforce_list = \"lo\"\n  ignore_mdns = true\n}}\n"
        ),
    )?;
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")?;
    std::fs::write(
        dir.join("janus.transport.http.jcfg"),
        format!(
            "general: {{\n  base_path = \"/janus\"\n  http = true\n  port = {port}\n  \
             ip = \"127.0.0.1\"\n  https = false\n}}\nadmin: {{\n  admin_http = false\n}}\n"
        ),
    )?;
    let log = std::fs::File::create(dir.join("janus.log"))?;
    let child = Command::new(bin)
        .arg(format!("--configs-folder={d}"))
        .arg(format!("--config={d}/janus.jcfg"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let url = format!("http://127.0.0.1:{port}/janus");
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{url}/info")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("janus did not answer on {url} (log in {d}/janus.log)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Janus { child, url })
}

/// What one run measured.
struct Row {
    target: &'static str,
    subscribers: usize,
    sfu_cores: f64,
    loss: f64,
    decoded: f64,
    publisher_kbps: f64,
    client_cores: f64,
}

/// Runs the clients against one SFU, reading its CPU (`pids`) at the window's ends.
fn drive(
    root: &Path,
    target: &'static str,
    url: &str,
    key: &str,
    n: usize,
    o: &WrtcOpts,
    pids: &[u32],
) -> anyhow::Result<Row> {
    let peers = root.join("bench/peers");
    let mut child = Command::new("node")
        .arg(peers.join("wrtc-forward.mjs"))
        .current_dir(&peers)
        .env("TARGET", target)
        .env("URL", url)
        .env("KEY", key)
        .env("SUBSCRIBERS", n.to_string())
        .env("SECONDS", o.seconds.to_string())
        .env("KBPS", o.kbps.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting node")?;
    // User + system time of the whole process (`/proc/PID/stat`): it keeps the time of threads
    // that have ended, which a sum over the threads alive at each reading would lose.
    let cpu = || -> u64 {
        pids.iter()
            .filter_map(|p| crate::server::cpu_us(*p).map(|us| us * 1000))
            .sum::<u64>()
    };
    let out = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let (mut c0, mut t0, mut used, mut secs) = (0, Instant::now(), 0, 0.0);
    let mut report = None;
    for line in out.lines() {
        let line = line?;
        match line.as_str() {
            "WINDOW-START" => {
                c0 = cpu();
                t0 = Instant::now();
            }
            "WINDOW-END" => {
                used = cpu().saturating_sub(c0);
                secs = t0.elapsed().as_secs_f64();
            }
            l if l.starts_with('{') => report = Some(serde_json::from_str::<serde_json::Value>(l)?),
            l => eprintln!("{target}: {l}"),
        }
    }
    let status = child.wait()?;
    let Some(r) = report.filter(|_| status.success()) else {
        bail!("{target} with {n} subscribers: the clients failed ({status})");
    };
    // Both SFUs forward the same codec (Janus's room takes VP8 only; moim prefers H.264).
    let codecs = r["codecs"].as_str().unwrap_or("");
    if codecs != "video/VP8" {
        bail!("{target} with {n} subscribers: the clients got {codecs:?}, not VP8 alone");
    }
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    let expected = f("frames_sent") * n as f64;
    let packets = f("received_packets") + f("lost_packets");
    Ok(Row {
        target,
        subscribers: n,
        sfu_cores: used as f64 / 1e9 / secs.max(0.001),
        loss: if packets > 0.0 {
            f("lost_packets") / packets
        } else {
            1.0
        },
        decoded: if expected > 0.0 {
            f("frames_decoded") / expected
        } else {
            0.0
        },
        publisher_kbps: f("publisher_kbps"),
        client_cores: f("client_cores"),
    })
}

pub async fn run(o: WrtcOpts, moim_bin: PathBuf, root: PathBuf) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("moim-bench-wrtc-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let peers = root.join("bench/peers");
    if !peers.join("node_modules/@roamhq/wrtc").exists() {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&peers)
            .status()?;
        if !st.success() {
            bail!("npm ci in {} failed", peers.display());
        }
    }
    let counts = crate::forward::counts(&o.subscribers)?;
    let mut rows = Vec::new();
    for &n in &counts {
        // A fresh server per count and SFU, so each is measured alone.
        let srv = start_moim_with(
            &moim_bin,
            &dir.join(format!("moim-{n}")),
            1,
            &["--webrtc-max-viewers-per-room", "1000"],
        )
        .await?;
        let (http, key, pids) = (srv.http.clone(), srv.keys[0].clone(), srv.pids.clone());
        let (r, o2) = (root.clone(), o.clone());
        rows.push(
            tokio::task::spawn_blocking(move || drive(&r, "moim", &http, &key, n, &o2, &pids))
                .await??,
        );
        drop(srv);
        if o.janus != "none" {
            let j = start_janus(&o.janus, &dir.join(format!("janus-{n}"))).await?;
            let (r, o2, url, pid) = (root.clone(), o.clone(), j.url.clone(), j.child.id());
            rows.push(
                tokio::task::spawn_blocking(move || drive(&r, "janus", &url, "", n, &o2, &[pid]))
                    .await??,
            );
            drop(j);
        }
    }
    println!();
    println!(
        "| SFU | subscribers | SFU CPU | streams per core | packets lost | frames decoded | publisher | clients' CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.3} cores | {:.0} | {:.2} % | {:.1} % | {:.0} kbit/s | {:.2} cores |",
            r.target,
            r.subscribers,
            r.sfu_cores,
            r.subscribers as f64 / r.sfu_cores.max(1e-6),
            r.loss * 100.0,
            r.decoded * 100.0,
            r.publisher_kbps,
            r.client_cores
        );
    }
    for &n in &counts {
        let of = |t: &str| {
            rows.iter()
                .find(|r| r.target == t && r.subscribers == n)
                .map(|r| r.sfu_cores)
        };
        if let (Some(m), Some(j)) = (of("moim"), of("janus")) {
            println!(
                "{n} subscribers: moim uses {:.2}× Janus's CPU ({:.2}× its streams per core)",
                m / j.max(1e-9),
                j / m.max(1e-9)
            );
        }
    }
    Ok(())
}
