//! Configuration: `moim.toml` (optional) < `MOIM_*` environment < command-line flags.
//!
//! Owns parsing and defaults only; every option is documented in docs/configuration.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// Command line of the `moim` binary.
#[derive(Debug, Parser)]
#[command(
    name = "moim",
    version,
    about = "moim: a self-hosted real-time video community"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (what a bare `moim` does).
    Serve(ServeArgs),
}

/// Flags for `moim serve`. Each also reads a `MOIM_*` variable; unset ones fall back to the
/// config file, then to the defaults in [`Config::default`].
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Config file (TOML). Missing file is fine unless given explicitly.
    #[arg(long, env = "MOIM_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long, env = "MOIM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database and blobs.
    #[arg(long, env = "MOIM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`; default: SQLite file in the data dir.
    #[arg(long, env = "MOIM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Public base URL (e.g. https://moim.example); `https` turns on Secure cookies.
    #[arg(long, env = "MOIM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log format: `pretty` or `json`.
    #[arg(long, env = "MOIM_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Grace period for shutdown, in seconds.
    #[arg(long, env = "MOIM_SHUTDOWN_GRACE_S")]
    pub shutdown_grace_s: Option<u64>,
    /// Chat rate limit: burst size per user per room (0 disables the limit).
    #[arg(long, env = "MOIM_CHAT_RATE_BURST")]
    pub chat_rate_burst: Option<u32>,
    /// Chat rate limit: messages per second refilled.
    #[arg(long, env = "MOIM_CHAT_RATE_PER_S")]
    pub chat_rate_per_s: Option<f64>,
    /// Login attempts allowed per IP per minute (burst).
    #[arg(long, env = "MOIM_LOGIN_RATE_PER_MIN")]
    pub login_rate_per_min: Option<u32>,
    /// Threads running connections (default: one per CPU core).
    #[arg(long, env = "MOIM_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Behind a reverse proxy: take the client address from the last `X-Forwarded-For` entry.
    #[arg(long, env = "MOIM_TRUST_PROXY")]
    pub trust_proxy: Option<bool>,
    /// Messages in the welcome frame without `since`.
    #[arg(long, env = "MOIM_HISTORY_LIMIT")]
    pub history_limit: Option<usize>,
    /// Messages replayed with `since` before `truncated` is set.
    #[arg(long, env = "MOIM_RESUME_LIMIT")]
    pub resume_limit: Option<usize>,
    /// Frames a connection may have waiting for a slow socket before it must resync.
    #[arg(long, env = "MOIM_ROOM_BUFFER")]
    pub room_buffer: Option<usize>,
    /// RTMP ingest address (OBS publishes to rtmp://HOST:PORT/live/{stream key}).
    #[arg(long, env = "MOIM_RTMP_LISTEN")]
    pub rtmp_listen: Option<SocketAddr>,
    /// Host (and port) put in the RTMP URL shown to streamers; default: the HTTP host.
    #[arg(long, env = "MOIM_RTMP_PUBLIC_HOST")]
    pub rtmp_public_host: Option<String>,
    /// Broadcasts running at once.
    #[arg(long, env = "MOIM_MAX_BROADCASTS")]
    pub max_broadcasts: Option<usize>,
    /// Highest ingest bitrate, kbit/s, averaged over 5 s; a faster publisher is disconnected.
    #[arg(long, env = "MOIM_MAX_INGEST_KBPS")]
    pub max_ingest_kbps: Option<u64>,
    /// Seconds a publisher may be gone and come back to the same broadcast.
    #[arg(long, env = "MOIM_RECONNECT_GRACE_S")]
    pub reconnect_grace_s: Option<u64>,
    /// Seconds without data after which a publisher is considered gone.
    #[arg(long, env = "MOIM_INGEST_TIMEOUT_S")]
    pub ingest_timeout_s: Option<u64>,
    /// LL-HLS part duration upper bound, milliseconds.
    #[arg(long, env = "MOIM_HLS_PART_MS")]
    pub hls_part_ms: Option<u32>,
    /// Minimum HLS segment duration, milliseconds (segments end at the next keyframe).
    #[arg(long, env = "MOIM_HLS_SEGMENT_MS")]
    pub hls_segment_ms: Option<u32>,
    /// Make lower renditions with ffmpeg (adaptive bitrate); off = pass the source through.
    #[arg(long, env = "MOIM_TRANSCODE")]
    pub transcode: Option<bool>,
    /// The ladder: `HEIGHT:KBPS,…`; steps at or above the source's height are skipped.
    #[arg(long, env = "MOIM_TRANSCODE_LADDER")]
    pub transcode_ladder: Option<String>,
}

/// Settings from the optional TOML file; same names as the flags, snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    log_format: Option<String>,
    shutdown_grace_s: Option<u64>,
    chat_rate_burst: Option<u32>,
    chat_rate_per_s: Option<f64>,
    login_rate_per_min: Option<u32>,
    trust_proxy: Option<bool>,
    worker_threads: Option<usize>,
    history_limit: Option<usize>,
    resume_limit: Option<usize>,
    room_buffer: Option<usize>,
    rtmp_listen: Option<SocketAddr>,
    rtmp_public_host: Option<String>,
    max_broadcasts: Option<usize>,
    max_ingest_kbps: Option<u64>,
    reconnect_grace_s: Option<u64>,
    ingest_timeout_s: Option<u64>,
    hls_part_ms: Option<u32>,
    hls_segment_ms: Option<u32>,
    transcode: Option<bool>,
    transcode_ladder: Option<String>,
}

/// Effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub log_json: bool,
    pub shutdown_grace: Duration,
    pub chat_rate_burst: u32,
    pub chat_rate_per_s: f64,
    pub login_rate_per_min: u32,
    /// Read the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_proxy: bool,
    /// Async worker threads; `None` = one per core.
    pub worker_threads: Option<usize>,
    /// Messages in the welcome frame without `since`.
    pub history_limit: usize,
    /// Messages replayed with `since` before `truncated` is set.
    pub resume_limit: usize,
    /// Frames a connection may have waiting for a slow socket before it must resync.
    pub room_buffer: usize,
    pub rtmp_listen: SocketAddr,
    pub rtmp_public_host: Option<String>,
    pub max_broadcasts: usize,
    pub max_ingest_kbps: u64,
    pub reconnect_grace: Duration,
    pub ingest_timeout: Duration,
    pub hls_part_ms: u32,
    pub hls_segment_ms: u32,
    pub transcode: bool,
    pub transcode_ladder: Vec<Step>,
}

/// Default transcoding ladder: height:kbit/s.
pub const DEFAULT_LADDER: &str = "720:2800,480:1400,360:800";

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./moim-data"),
            database_url: None,
            public_url: None,
            log_json: false,
            shutdown_grace: Duration::from_secs(10),
            chat_rate_burst: 5,
            chat_rate_per_s: 1.0,
            login_rate_per_min: 10,
            trust_proxy: false,
            worker_threads: None,
            history_limit: 100,
            resume_limit: 1000,
            room_buffer: 256,
            rtmp_listen: SocketAddr::from(([127, 0, 0, 1], 1935)),
            rtmp_public_host: None,
            max_broadcasts: 20,
            max_ingest_kbps: 20_000,
            reconnect_grace: Duration::from_secs(10),
            ingest_timeout: Duration::from_secs(10),
            hls_part_ms: 334,
            hls_segment_ms: 1000,
            transcode: false,
            transcode_ladder: parse_ladder(DEFAULT_LADDER).expect("the default ladder parses"),
        }
    }
}

impl Config {
    /// Merges file, environment (already folded into `args` by clap) and flags.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => match std::fs::read_to_string("moim.toml") {
                Ok(text) => toml::from_str(&text).context("parsing ./moim.toml")?,
                Err(_) => FileConfig::default(),
            },
        };
        let d = Config::default();
        let log_format = args.log_format.clone().or(file.log_format);
        let log_json = match log_format.as_deref() {
            None | Some("pretty") => false,
            Some("json") => true,
            Some(other) => anyhow::bail!("log format must be `pretty` or `json`, not `{other}`"),
        };
        let chat_rate_per_s = args
            .chat_rate_per_s
            .or(file.chat_rate_per_s)
            .unwrap_or(d.chat_rate_per_s);
        anyhow::ensure!(
            chat_rate_per_s.is_finite() && chat_rate_per_s >= 0.0,
            "chat_rate_per_s must be a non-negative number"
        );
        let transcode_ladder = match args.transcode_ladder.clone().or(file.transcode_ladder) {
            Some(text) => {
                parse_ladder(&text).map_err(|e| anyhow::anyhow!("transcode_ladder: {e}"))?
            }
            None => d.transcode_ladder.clone(),
        };
        Ok(Config {
            transcode: args.transcode.or(file.transcode).unwrap_or(d.transcode),
            transcode_ladder,
            listen: args.listen.or(file.listen).unwrap_or(d.listen),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or(d.data_dir),
            database_url: args.database_url.clone().or(file.database_url),
            public_url: args.public_url.clone().or(file.public_url),
            log_json,
            shutdown_grace: Duration::from_secs(
                args.shutdown_grace_s
                    .or(file.shutdown_grace_s)
                    .unwrap_or(d.shutdown_grace.as_secs()),
            ),
            chat_rate_burst: args
                .chat_rate_burst
                .or(file.chat_rate_burst)
                .unwrap_or(d.chat_rate_burst),
            chat_rate_per_s,
            login_rate_per_min: args
                .login_rate_per_min
                .or(file.login_rate_per_min)
                .unwrap_or(d.login_rate_per_min),
            trust_proxy: args
                .trust_proxy
                .or(file.trust_proxy)
                .unwrap_or(d.trust_proxy),
            worker_threads: args
                .worker_threads
                .or(file.worker_threads)
                .map(|n| n.clamp(1, 1024)),
            history_limit: args
                .history_limit
                .or(file.history_limit)
                .unwrap_or(d.history_limit)
                .clamp(1, 1000),
            resume_limit: args
                .resume_limit
                .or(file.resume_limit)
                .unwrap_or(d.resume_limit)
                .clamp(1, 10_000),
            room_buffer: args
                .room_buffer
                .or(file.room_buffer)
                .unwrap_or(d.room_buffer)
                .clamp(16, 65_536),
            rtmp_listen: args
                .rtmp_listen
                .or(file.rtmp_listen)
                .unwrap_or(d.rtmp_listen),
            rtmp_public_host: args.rtmp_public_host.clone().or(file.rtmp_public_host),
            max_broadcasts: args
                .max_broadcasts
                .or(file.max_broadcasts)
                .unwrap_or(d.max_broadcasts)
                .clamp(1, 10_000),
            max_ingest_kbps: args
                .max_ingest_kbps
                .or(file.max_ingest_kbps)
                .unwrap_or(d.max_ingest_kbps)
                .clamp(100, 1_000_000),
            reconnect_grace: Duration::from_secs(
                args.reconnect_grace_s
                    .or(file.reconnect_grace_s)
                    .unwrap_or(d.reconnect_grace.as_secs())
                    .min(600),
            ),
            ingest_timeout: Duration::from_secs(
                args.ingest_timeout_s
                    .or(file.ingest_timeout_s)
                    .unwrap_or(d.ingest_timeout.as_secs())
                    .clamp(1, 600),
            ),
            hls_part_ms: args
                .hls_part_ms
                .or(file.hls_part_ms)
                .unwrap_or(d.hls_part_ms)
                .clamp(100, 2000),
            hls_segment_ms: args
                .hls_segment_ms
                .or(file.hls_segment_ms)
                .unwrap_or(d.hls_segment_ms)
                .clamp(500, 10_000),
        })
    }

    /// True when cookies must carry `Secure` (served over TLS).
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub height: u32,
    pub kbps: u32,
}

/// Parses `720:2800,480:1400` (height:kbit/s, comma-separated).
pub fn parse_ladder(text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (h, k) = item
            .split_once(':')
            .ok_or_else(|| format!("ladder step `{item}` is not HEIGHT:KBPS"))?;
        let height: u32 = h.parse().map_err(|_| format!("bad height in `{item}`"))?;
        let kbps: u32 = k.parse().map_err(|_| format!("bad bitrate in `{item}`"))?;
        if !(90..=2160).contains(&height)
            || !height.is_multiple_of(2)
            || !(50..=50_000).contains(&kbps)
        {
            return Err(format!(
                "ladder step `{item}`: height must be even, 90–2160; bitrate 50–50000 kbit/s"
            ));
        }
        steps.push(Step { height, kbps });
    }
    if steps.len() > 6 {
        return Err("at most 6 ladder steps".into());
    }
    steps.sort_by_key(|s| std::cmp::Reverse(s.height));
    steps.dedup_by_key(|s| s.height);
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladders() {
        assert_eq!(
            parse_ladder("360:800, 720:2800,480:1400").unwrap(),
            vec![
                Step {
                    height: 720,
                    kbps: 2800
                },
                Step {
                    height: 480,
                    kbps: 1400
                },
                Step {
                    height: 360,
                    kbps: 800
                },
            ]
        );
        assert_eq!(parse_ladder("").unwrap(), vec![]);
        for bad in [
            "720",
            "720:x",
            "721:800",
            "40:100",
            "720:10",
            "1:1,2:2,3:3,4:4,5:5,6:6,7:7",
        ] {
            assert!(parse_ladder(bad).is_err(), "{bad}");
        }
    }
}
