//! moim-bench: the chat fan-out benchmark. Starts moim, a socket.io 4 server, a plain `ws`
//! server and Bun's built-in WebSocket pub/sub one after another, drives the same scenarios
//! against each over loopback WebSockets, and prints a side-by-side table plus
//! `bench/results/latest.json`. See bench/README.md.

mod client;
mod cluster;
mod community;
mod forward;
mod hist;
mod library;
mod live;
mod map;
mod party;
mod report;
mod rtc_peer;
mod server;
mod voice;
mod webrtc;
mod wrtc;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use tokio::sync::{watch, Semaphore};

use client::{ClientSpec, Control, PublisherSpec, Schedule, Shared};
use report::RunResult;
use server::{Kind, Launch, MoimSetup, Server};

#[derive(Parser)]
#[command(
    name = "moim-bench",
    about = "Chat fan-out benchmark: moim vs socket.io vs ws vs Bun"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the chat scenarios against every server and print the comparison.
    All(Opts),
    /// Live streaming: moim against nginx-rtmp (latency, ingest cost, delivery).
    Live(live::LiveOpts),
    /// The video library: moim against ffmpeg and the disk (time to playable, upload speed,
    /// transcode cost, share links).
    Library(library::LibraryOpts),
    /// Watch together: four Chromium pages in one party (gap, convergence, corrections).
    Party(party::PartyOpts),
    /// The shared map's relay: members' views relayed by moim against the `ws` relay.
    Map(map::MapOpts),
    /// The community: photo processing against libvips, the hot feed and the cost of a like.
    Community(community::CommunityOpts),
    /// Real-time media: glass-to-glass through moim's SFU against a direct connection, and the
    /// WHEP first frame.
    Webrtc(webrtc::WebrtcOpts),
    /// Voice: many members in one room's voice chat (str0m clients over UDP): moim's CPU and
    /// the packets it forwards.
    Voice(voice::VoiceOpts),
    /// Forwarding cost: one WHIP publisher to 1, 50, 200 WHEP viewers (str0m clients).
    Forward(forward::ForwardOpts),
    /// Forwarding with real libwebrtc clients (`@roamhq/wrtc`) through moim and Janus's
    /// VideoRoom: the SFUs' CPU per forwarded stream, packet loss, frames decoded.
    Wrtc(wrtc::WrtcOpts),
    /// Chat across nodes: scenario A on one node, then dealt round three nodes of one site
    /// (PostgreSQL, Redis): latency, CPU per delivery per node and Redis's.
    Cluster(cluster::ClusterOpts),
}

#[derive(Args, Clone, Debug)]
struct Opts {
    /// Smoke run: a tenth of the clients (and of the rooms in C), short windows.
    #[arg(long)]
    quick: bool,
    /// Servers to run, comma-separated: moim, socketio, ws, bun (also `uws`).
    #[arg(long, default_value = "moim,socketio,ws,bun")]
    servers: String,
    /// Scenarios to run, comma-separated: a, b, c.
    #[arg(long, default_value = "a,b,c")]
    scenarios: String,
    /// Seconds of measured publishing per scenario.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Seconds of unmeasured warm-up publishing before the measured window.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Most seconds to wait, after publishing stops, for the last messages to arrive.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Seconds all clients sit connected and idle before RSS is read.
    #[arg(long, default_value_t = 3.0)]
    idle: f64,
    /// Size of each published message text, in bytes.
    #[arg(long, default_value_t = 100)]
    msg_bytes: usize,
    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,

    /// Scenario A: clients in the one room.
    #[arg(long, default_value_t = 1000)]
    a_clients: usize,
    /// Scenario A: messages per second, all publishers together.
    #[arg(long, default_value_t = 100.0)]
    a_rate: f64,
    /// Scenario A: publishers (they are also among the clients).
    #[arg(long, default_value_t = 4)]
    a_publishers: usize,
    /// Scenario B: clients in the one room.
    #[arg(long, default_value_t = 10_000)]
    b_clients: usize,
    /// Scenario B: messages per second, all publishers together.
    #[arg(long, default_value_t = 10.0)]
    b_rate: f64,
    /// Scenario B: publishers.
    #[arg(long, default_value_t = 4)]
    b_publishers: usize,
    /// Scenario C: rooms.
    #[arg(long, default_value_t = 1000)]
    c_rooms: usize,
    /// Scenario C: clients per room (one of them publishes).
    #[arg(long, default_value_t = 10)]
    c_clients: usize,
    /// Scenario C: messages per second in each room.
    #[arg(long, default_value_t = 1.0)]
    c_rate: f64,

    /// moim binary; default: `cargo build --release -p moim`, then the binary next to this one.
    #[arg(long)]
    moim_bin: Option<PathBuf>,
    /// Extra argument for `moim serve` (repeatable), e.g. `--moim-arg=--config=/tmp/moim.toml`.
    #[arg(long, allow_hyphen_values = true)]
    moim_arg: Vec<String>,
    /// Node.js executable for the peer servers.
    #[arg(long, default_value = "node")]
    node: String,
    /// Bun executable for the Bun peer (default: the one npm installs in bench/peers).
    #[arg(long)]
    bun: Option<PathBuf>,
    /// Repository root (holds bench/peers and bench/results).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Where the JSON summary goes (default: <root>/bench/results/latest.json).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One scenario's shape.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub id: char,
    pub rooms: usize,
    pub clients_per_room: usize,
    pub publishers_per_room: usize,
    /// Messages per second across all rooms.
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
}

impl Scenario {
    pub fn clients(&self) -> usize {
        self.rooms * self.clients_per_room
    }

    pub fn describe(&self, msg_bytes: usize) -> String {
        let pubs = if self.rooms == 1 {
            format!("{} publishers", self.publishers_per_room)
        } else {
            format!(
                "{} publisher and {} msg/s per room",
                self.publishers_per_room,
                trim_num(self.rate / self.rooms as f64)
            )
        };
        format!(
            "Scenario {}: {} room(s) x {} clients, {} msg/s total ({pubs}), {msg_bytes} B texts, {} s measured",
            self.id,
            self.rooms,
            self.clients_per_room,
            trim_num(self.rate),
            trim_num(self.duration.as_secs_f64()),
        )
    }
}

pub fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn scenarios(o: &Opts) -> anyhow::Result<Vec<Scenario>> {
    let div = if o.quick { 10 } else { 1 };
    let duration = Duration::from_secs_f64(if o.quick {
        (o.duration / 5.0).max(2.0)
    } else {
        o.duration
    });
    let warmup = Duration::from_secs_f64(if o.quick {
        (o.warmup / 2.0).max(1.0)
    } else {
        o.warmup
    });
    let mut out = vec![];
    for id in o
        .scenarios
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
    {
        let s = match id.as_str() {
            "a" => Scenario {
                id: 'A',
                rooms: 1,
                clients_per_room: (o.a_clients / div).max(2),
                publishers_per_room: o.a_publishers.max(1),
                rate: o.a_rate,
                duration,
                warmup,
            },
            "b" => Scenario {
                id: 'B',
                rooms: 1,
                clients_per_room: (o.b_clients / div).max(2),
                publishers_per_room: o.b_publishers.max(1),
                rate: o.b_rate,
                duration,
                warmup,
            },
            "c" => {
                let rooms = (o.c_rooms / div).max(1);
                Scenario {
                    id: 'C',
                    rooms,
                    clients_per_room: o.c_clients.max(2),
                    publishers_per_room: 1,
                    rate: o.c_rate * rooms as f64,
                    duration,
                    warmup,
                }
            }
            "" => continue,
            other => bail!("unknown scenario {other:?} (use a, b, c)"),
        };
        if s.publishers_per_room > s.clients_per_room {
            bail!("scenario {}: more publishers than clients", s.id);
        }
        if s.rate <= 0.0 {
            bail!("scenario {}: rate must be positive", s.id);
        }
        out.push(s);
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let opts = match cli.cmd {
        Cmd::All(opts) => opts,
        Cmd::Library(lo) => {
            let (_, bin) = root_and_moim(lo.moim_bin.as_deref())?;
            return runtime()?.block_on(library::run(lo, bin));
        }
        Cmd::Community(co) => {
            let (_, bin) = root_and_moim(co.moim_bin.as_deref())?;
            return runtime()?.block_on(community::run(co, bin));
        }
        Cmd::Party(po) => {
            let (root, bin) = root_and_moim(po.moim_bin.as_deref())?;
            return runtime()?.block_on(party::run(po, bin, root));
        }
        Cmd::Webrtc(wo) => {
            let (root, bin) = root_and_moim(wo.moim_bin.as_deref())?;
            return runtime()?.block_on(webrtc::run(wo, bin, root));
        }
        Cmd::Forward(fo) => {
            let (_, bin) = root_and_moim(fo.moim_bin.as_deref())?;
            return runtime()?.block_on(forward::run(fo, bin));
        }
        Cmd::Wrtc(wo) => {
            let (root, bin) = root_and_moim(wo.moim_bin.as_deref())?;
            return runtime()?.block_on(wrtc::run(wo, bin, root));
        }
        Cmd::Cluster(co) => {
            let nofile = server::raise_nofile();
            let (_, bin) = root_and_moim(co.moim_bin())?;
            return runtime()?.block_on(cluster::run(co, bin, nofile));
        }
        Cmd::Voice(vo) => {
            let (_, bin) = root_and_moim(vo.moim_bin.as_deref())?;
            return runtime()?.block_on(voice::run(vo, bin));
        }
        Cmd::Map(mo) => {
            let nofile = server::raise_nofile();
            let (root, bin) = root_and_moim(mo.moim_bin.as_deref())?;
            let peers_dir = root.join("bench/peers");
            ensure_peers(&peers_dir, &[Kind::Ws], Path::new(""))?;
            let launch = Launch {
                moim_bin: bin,
                moim_args: Vec::new(),
                node: mo.node.clone(),
                bun: PathBuf::new(),
                peers_dir,
                nofile: nofile.min(65_536),
            };
            return runtime()?.block_on(map::run(mo, launch));
        }
        Cmd::Live(lo) => {
            server::raise_nofile();
            let (root, bin) = root_and_moim(lo.moim_bin.as_deref())?;
            return runtime()?.block_on(live::run(lo, bin, root));
        }
    };
    let nofile = server::raise_nofile();
    let rt = runtime()?;
    rt.block_on(run_all(opts, nofile))
}

/// The repository root (bench/loadgen → ../..) and the moim binary: given, or built.
fn root_and_moim(given: Option<&Path>) -> anyhow::Result<(PathBuf, PathBuf)> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = std::fs::canonicalize(&built).unwrap_or(built);
    let bin = match given {
        Some(b) => b.to_path_buf(),
        None => build_moim(&root)?,
    };
    Ok((root, bin))
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn repo_root(o: &Opts) -> PathBuf {
    if let Some(r) = &o.root {
        return r.clone();
    }
    // bench/loadgen → repository root.
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&built).unwrap_or(built)
}

/// The moim binary: given, or built by cargo (a no-op when up to date).
fn moim_binary(o: &Opts, root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(b) = &o.moim_bin {
        if !b.exists() {
            bail!("--moim-bin {} does not exist", b.display());
        }
        return Ok(b.clone());
    }
    build_moim(root)
}

/// `cargo build --release -p moim` (a no-op when up to date) and the binary's path.
fn build_moim(root: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("building moim: cargo build --release -p moim");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "-p", "moim"])
        .current_dir(root)
        .status()
        .context("running cargo build --release -p moim")?;
    if !status.success() {
        bail!("cargo build --release -p moim failed");
    }
    let mut candidates = vec![];
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release/moim"));
    }
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            if dir.ends_with("release") {
                candidates.push(dir.join("moim"));
            }
        }
    }
    candidates.push(root.join("target/release/moim"));
    candidates
        .into_iter()
        .find(|p| p.exists())
        .context("built moim, but found no target/release/moim; pass --moim-bin")
}

/// Where npm puts the `bun` executable of `@oven/bun-linux-x64`.
const BUN_IN_PEERS: &str = "node_modules/@oven/bun-linux-x64/bin/bun";

/// The `bun` executable: given, or the one npm installed in the peers' directory.
fn bun_binary(o: &Opts, peers: &Path) -> PathBuf {
    o.bun.clone().unwrap_or_else(|| peers.join(BUN_IN_PEERS))
}

/// Installs the peers' npm packages when one that `kinds` needs is missing.
fn ensure_peers(peers: &Path, kinds: &[Kind], bun: &Path) -> anyhow::Result<()> {
    let missing = kinds.iter().any(|k| match k {
        Kind::Moim => false,
        Kind::SocketIo => !peers.join("node_modules/socket.io").exists(),
        Kind::Ws => !peers.join("node_modules/ws").exists(),
        Kind::Bun => !bun.exists(),
    });
    if !missing {
        return Ok(());
    }
    eprintln!("installing peer servers: npm ci in {}", peers.display());
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(peers)
        .status()
        .context("running npm ci")?;
    if !status.success() {
        bail!("npm ci failed in {}", peers.display());
    }
    if kinds.contains(&Kind::Bun) && !bun.exists() {
        bail!(
            "no bun at {} (npm ships it for linux x64 only; pass --bun PATH)",
            bun.display()
        );
    }
    Ok(())
}

async fn run_all(o: Opts, nofile: u64) -> anyhow::Result<()> {
    let root = repo_root(&o);
    let scens = scenarios(&o)?;
    let mut kinds = vec![];
    for s in o.servers.split(',').filter(|s| !s.trim().is_empty()) {
        match Kind::parse(s) {
            Some(k) => kinds.push(k),
            None => bail!("unknown server {s:?} (use moim, socketio, ws, bun)"),
        }
    }
    let most = scens.iter().map(|s| s.clients()).max().unwrap_or(0) as u64;
    if most + 64 > nofile {
        bail!("{most} connections need more file descriptors than RLIMIT_NOFILE allows ({nofile}); raise the hard limit");
    }
    let peers_dir = root.join("bench/peers");
    let moim_bin = if kinds.contains(&Kind::Moim) {
        moim_binary(&o, &root)?
    } else {
        PathBuf::new()
    };
    let bun = bun_binary(&o, &peers_dir);
    ensure_peers(&peers_dir, &kinds, &bun)?;
    let launch = Launch {
        moim_bin: moim_bin.clone(),
        moim_args: o.moim_arg.clone(),
        node: o.node.clone(),
        bun,
        peers_dir,
        nofile: nofile.min(65_536),
    };
    warn_if_busy().await;
    let work = std::env::temp_dir().join(format!("moim-bench-{}", std::process::id()));
    let started = Instant::now();
    eprintln!(
        "moim-bench: servers {:?}, scenarios {:?}, {} s measured each, fd limit {nofile}",
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        scens.iter().map(|s| s.id).collect::<Vec<_>>(),
        scens.first().map_or(0.0, |s| s.duration.as_secs_f64()),
    );

    let mut results: Vec<RunResult> = vec![];
    for kind in &kinds {
        for s in &scens {
            let dir = work.join(format!("{}-{}", kind.name(), s.id));
            eprintln!("\n== {} / scenario {} ==", kind.name(), s.id);
            let r = match run_one(*kind, s, &launch, &dir, &o).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("   FAILED: {e:#}");
                    RunResult::failed(*kind, s, format!("{e:#}"))
                }
            };
            eprintln!("   {}", r.one_line());
            results.push(r);
        }
    }
    let _ = std::fs::remove_dir_all(&work);

    let text = report::tables(&scens, &kinds, &results, o.msg_bytes);
    println!("{text}");
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| root.join("bench/results/latest.json"));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = report::json(
        &o_summary(&o, &moim_bin, &launch.bun, &root),
        &scens,
        &results,
    );
    std::fs::write(&out, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    // The same tables as printed, beside the JSON (latest.txt).
    std::fs::write(out.with_extension("txt"), text.trim_start())
        .with_context(|| format!("writing {}", out.with_extension("txt").display()))?;
    eprintln!(
        "wrote {} (whole run {:.0} s)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Says so when other processes keep the machine busy: they skew every figure.
async fn warn_if_busy() {
    let Some(before) = server::machine_busy_us() else {
        return;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let busy = server::machine_busy_us().unwrap_or(before) - before;
    if busy > 200_000 {
        eprintln!(
            "WARNING: other processes use {:.0}% of a core right now; results will be skewed",
            busy as f64 / 1e4
        );
    }
}

fn o_summary(o: &Opts, moim_bin: &Path, bun: &Path, root: &Path) -> serde_json::Value {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let version = |exe: &std::ffi::OsStr| {
        std::process::Command::new(exe)
            .arg("--version")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    serde_json::json!({
        "quick": o.quick,
        "msg_bytes": o.msg_bytes,
        "moim_bin": moim_bin.display().to_string(),
        "moim_args": o.moim_arg,
        "git_commit": git(&["rev-parse", "HEAD"]),
        "git_dirty": git(&["status", "--porcelain"]).map(|s| !s.is_empty()),
        "node": version(o.node.as_ref()),
        "bun": version(bun.as_os_str()),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    })
}

/// Room name / slug of room `r` in scenario `s`.
fn room_name(s: &Scenario, r: usize) -> String {
    format!("bench-{}-{r:04}", s.id.to_ascii_lowercase())
}

/// Starts a fresh server, runs one scenario against it, stops it.
async fn run_one(
    kind: Kind,
    s: &Scenario,
    launch: &Launch,
    dir: &Path,
    o: &Opts,
) -> anyhow::Result<RunResult> {
    let mut srv = Server::start(kind, launch, dir).await?;
    let result = drive(std::slice::from_mut(&mut srv), &[], s, o).await;
    srv.stop().await;
    let _ = std::fs::remove_dir_all(dir);
    result
}

/// Runs scenario `s` against `servers` (several moim nodes of one site: the clients are dealt
/// round the nodes, publishers too). CPU is the servers' together, and also per process, with
/// `others` (label, pid: the nodes' Redis, say) counted beside them.
async fn drive(
    servers: &mut [Server],
    others: &[(String, u32)],
    s: &Scenario,
    o: &Opts,
) -> anyhow::Result<RunResult> {
    let srv_kind = servers[0].kind;
    let pid = servers[0].pid;
    let pids: Vec<u32> = servers.iter().map(|v| v.pid).collect();
    let ports: Vec<u16> = servers.iter().map(|v| v.port).collect();
    let mut watched: Vec<(String, u32)> = servers
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("node {}", i + 1), v.pid))
        .collect();
    watched.extend(others.iter().cloned());
    let cpu_all = |pids: &[u32]| {
        pids.iter()
            .map(|p| server::cpu_us(*p).unwrap_or(0))
            .sum::<u64>()
    };
    let sys_all = |pids: &[u32]| {
        pids.iter()
            .map(|p| server::cpu_split_us(*p).map_or(0, |c| c.1))
            .sum::<u64>()
    };
    let token = if srv_kind == Kind::Moim {
        let setup = MoimSetup::new(servers[0].port).await?;
        for r in 0..s.rooms {
            setup.create_room(&room_name(s, r)).await?;
        }
        Some(setup.token)
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = server::status_kb(pid, "VmRSS").unwrap_or(0);

    // Connect everyone.
    let shared = Arc::new(Shared::new());
    let gate = Arc::new(Semaphore::new(o.connect_concurrency.max(1)));
    let (ctl_tx, ctl_rx) = watch::channel(Control::default());
    let per_pub_rate = s.rate / (s.rooms * s.publishers_per_room) as f64;
    let interval = Duration::from_secs_f64(1.0 / per_pub_rate);
    let total_pubs = s.rooms * s.publishers_per_room;
    let mut tasks = Vec::with_capacity(s.clients());
    let connect_started = Instant::now();
    let mut index = 0;
    for r in 0..s.rooms {
        let room = room_name(s, r);
        for c in 0..s.clients_per_room {
            let publisher = (c < s.publishers_per_room).then(|| {
                let id = (r * s.publishers_per_room + c) as u32;
                PublisherSpec {
                    id,
                    interval,
                    // Spread all publishers evenly over one interval.
                    offset: interval.mul_f64(id as f64 / total_pubs as f64),
                    msg_bytes: o.msg_bytes,
                }
            });
            let spec = ClientSpec {
                kind: srv_kind,
                port: ports[index % ports.len()],
                room: room.clone(),
                room_clients: s.clients_per_room as u64,
                token: if publisher.is_some() {
                    token.clone()
                } else {
                    None
                },
                publisher,
                index,
            };
            index += 1;
            tasks.push(tokio::spawn(client::run(
                spec,
                shared.clone(),
                gate.clone(),
                ctl_rx.clone(),
            )));
        }
    }
    let total = s.clients();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = shared.connected.load(Ordering::Relaxed)
            + shared.connect_failed.load(Ordering::Relaxed);
        if done >= total {
            break;
        }
        if Instant::now() > deadline || !servers.iter_mut().all(|v| v.alive()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::Relaxed);
    eprintln!("   connected {connected}/{total} in {connect_s:.1} s");
    if connected == 0 || !servers.iter_mut().all(|v| v.alive()) {
        let _ = ctl_tx.send(Control {
            schedule: None,
            stop: true,
        });
        let err = shared.first_error.lock().unwrap().clone();
        bail!(
            "no usable connections (first error: {}); {}",
            err.unwrap_or_default(),
            servers[0].log_tail()
        );
    }

    // Idle, then memory with everyone connected.
    tokio::time::sleep(Duration::from_secs_f64(o.idle)).await;
    let rss_idle = server::status_kb(pid, "VmRSS").unwrap_or(0);

    // Warm-up, a quiet second, then the measured window.
    let now = Instant::now();
    let warm_start = now + Duration::from_millis(100);
    let warm_end = warm_start + s.warmup;
    let start = warm_end + Duration::from_secs(1);
    let end = start + s.duration;
    let _ = ctl_tx.send(Control {
        schedule: Some(Schedule {
            warm_start,
            warm_end,
            start,
            end,
        }),
        stop: false,
    });
    tokio::time::sleep_until(start.into()).await;
    let cpu0 = cpu_all(&pids);
    let sys0 = sys_all(&pids);
    let each0: Vec<u64> = watched
        .iter()
        .map(|(_, p)| server::cpu_us(*p).unwrap_or(0))
        .collect();
    let self_cpu0 = server::cpu_us(server::self_pid()).unwrap_or(0);
    let machine0 = server::machine_busy_us().unwrap_or(0);
    let delivered0 = shared.delivered.load(Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let window = t0.elapsed().as_secs_f64();
    let delivered_window = shared.delivered.load(Ordering::Relaxed) - delivered0;
    let cpu_window = cpu_all(&pids).saturating_sub(cpu0);

    // Drain: wait (bounded) until everything published has arrived.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(o.drain);
    // Publishers may still be finishing their last send.
    tokio::time::sleep(Duration::from_millis(50)).await;
    loop {
        let exp = shared.expected.load(Ordering::Relaxed);
        let got = shared.delivered.load(Ordering::Relaxed);
        if got >= exp || Instant::now() >= drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let busy = t0.elapsed().as_secs_f64();
    let cpu_total = cpu_all(&pids).saturating_sub(cpu0);
    let cpu_sys = sys_all(&pids).saturating_sub(sys0);
    let cpu_by_process: Vec<(String, u64)> = watched
        .iter()
        .zip(&each0)
        .map(|((label, p), c0)| {
            (
                label.clone(),
                server::cpu_us(*p).unwrap_or(0).saturating_sub(*c0),
            )
        })
        .collect();
    let self_cpu = server::cpu_us(server::self_pid())
        .unwrap_or(0)
        .saturating_sub(self_cpu0);
    let machine = server::machine_busy_us()
        .unwrap_or(0)
        .saturating_sub(machine0);
    let rss_end = server::status_kb(pid, "VmRSS").unwrap_or(0);
    let rss_peak = server::status_kb(pid, "VmHWM").unwrap_or(0);
    let alive = servers.iter_mut().all(|v| v.alive());

    let _ = ctl_tx.send(Control {
        schedule: None,
        stop: true,
    });
    for t in tasks {
        let _ = t.await;
    }
    let lat = shared.latency();
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let expected = shared.expected.load(Ordering::Relaxed);
    let published = shared.published.load(Ordering::Relaxed);
    let first_error = shared.first_error.lock().unwrap().clone();
    let others_cpu: u64 = cpu_by_process
        .iter()
        .skip(servers.len())
        .map(|(_, c)| *c)
        .sum();
    Ok(RunResult {
        server: srv_kind,
        scenario: s.id,
        error: if alive {
            None
        } else {
            Some(format!(
                "server exited during the run; {}",
                servers[0].log_tail()
            ))
        },
        clients: total,
        connected,
        connect_s,
        published,
        publish_rate: published as f64 / s.duration.as_secs_f64(),
        expected,
        delivered,
        deliveries_per_s: delivered_window as f64 / window,
        lost: expected.saturating_sub(delivered),
        extra: delivered.saturating_sub(expected),
        reordered: shared.reordered.load(Ordering::Relaxed),
        disconnects: shared.disconnects.load(Ordering::Relaxed),
        server_errors: shared.server_errors.load(Ordering::Relaxed),
        send_failures: shared.send_failures.load(Ordering::Relaxed),
        warm_lost: shared
            .warm_expected
            .load(Ordering::Relaxed)
            .saturating_sub(shared.warm_delivered.load(Ordering::Relaxed)),
        p50_us: lat.quantile(0.50),
        p99_us: lat.quantile(0.99),
        max_us: lat.max(),
        mean_us: lat.mean(),
        samples: lat.count(),
        cpu_us: cpu_total,
        cpu_sys_us: cpu_sys,
        cpu_window_us: cpu_window,
        busy_s: busy,
        window_s: window,
        cpu_us_per_delivery: if delivered > 0 {
            cpu_total as f64 / delivered as f64
        } else {
            f64::NAN
        },
        loadgen_cpu_us: self_cpu,
        other_cpu_us: machine.saturating_sub(cpu_total + self_cpu + others_cpu),
        cpu_by_process,
        rss_before_kb: rss_before,
        rss_idle_kb: rss_idle,
        rss_end_kb: rss_end,
        rss_peak_kb: rss_peak,
        rss_per_conn_b: if connected > 0 {
            (rss_idle as f64 - rss_before as f64) * 1024.0 / connected as f64
        } else {
            f64::NAN
        },
        first_error,
    })
}
