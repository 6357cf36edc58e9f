//! Configuration: `moim.toml` (optional) < `MOIM_*` environment < command-line flags.
//!
//! Every option is declared once, in the [`options!`] table below, inside its subsystem's group
//! (`http`, `chat`, `live`, `limits`, `storage`): that one line makes the flag, the environment variable,
//! the file key, the default, the accepted range and the field of the group's struct. Each
//! subsystem is handed only its group. Secrets are [`Secret`]s: their `Debug` says nothing.
//! Owns parsing and defaults only; every option is documented in docs/configuration.md (a test
//! checks that).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
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

/// A value that must not be shown: its `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "log format must be `pretty` or `json`, not `{other}`"
            )),
        }
    }
}

/// The transcoding ladder, parsed from `HEIGHT:KBPS,…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder(pub Vec<Step>);

impl FromStr for Ladder {
    type Err = String;
    fn from_str(s: &str) -> Result<Ladder, String> {
        parse_ladder(s).map(Ladder)
    }
}

impl<'de> Deserialize<'de> for Ladder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ladder, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::ops::Deref for Ladder {
    type Target = [Step];
    fn deref(&self) -> &[Step] {
        &self.0
    }
}

/// Declares every option once. For each group: a struct with one field per option; for all of
/// them together: the flags (`ServeArgs`), the file's keys, the merge with precedence
/// file < environment < flags, and the list [`OPTIONS`] the docs test walks.
///
/// An option is `name: Type = default` (one token tree: a literal or `{ expression }`),
/// optionally followed by `, in LO..=HI` (clamped), or `name: Type = none` for one that may
/// stay unset. Doc lines become the flag's help; `#[arg(…)]` lines go to clap.
macro_rules! options {
    (
        $(
            $(#[doc = $gdoc:literal])*
            $group:ident: $Group:ident {
                $(
                    $(#[doc = $doc:literal])*
                    $(#[arg($($arg:tt)*)])*
                    $field:ident: $ty:ty = $default:tt $(, in $lo:literal ..= $hi:literal)?;
                )*
            }
        )*
    ) => {
        /// Flags for `moim serve`. Each also reads its `MOIM_*` variable; unset ones fall back to
        /// the config file, then to the defaults.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct ServeArgs {
            /// Config file (TOML). A missing file is fine unless given explicitly.
            #[arg(long, env = "MOIM_CONFIG")]
            pub config: Option<PathBuf>,
            /// A sign-in provider's setting, `ID.KEY=VALUE` (repeatable): the keys of an
            /// `[oidc.<id>]` table. Also `MOIM_OIDC_<ID>_<KEY>` variables.
            #[arg(long = "oidc", value_name = "ID.KEY=VALUE")]
            pub oidc: Vec<String>,
            $($(
                $(#[doc = $doc])*
                #[arg(long $(, $($arg)*)*)]
                pub $field: Option<$ty>,
            )*)*
        }

        /// Settings from the optional TOML file; the keys are the flags' names in snake_case.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FileConfig {
            $($( $field: Option<$ty>, )*)*
            /// `[oidc.<id>]`: sign-in providers.
            #[serde(default)]
            oidc: std::collections::BTreeMap<String, toml::Table>,
        }

        $(
            $(#[doc = $gdoc])*
            #[derive(Debug, Clone)]
            pub struct $Group {
                $(
                    $(#[doc = $doc])*
                    pub $field: options!(@type $ty, $default),
                )*
            }

            impl Default for $Group {
                fn default() -> Self {
                    $Group { $( $field: options!(@default $default), )* }
                }
            }
        )*

        /// Effective configuration, by subsystem.
        #[derive(Debug, Clone, Default)]
        pub struct Config {
            $( pub $group: $Group, )*
            /// Sign-in providers (`[oidc.<id>]` tables), in id order.
            pub oidc: Vec<OidcProvider>,
        }

        /// Every option: (file key, flag, environment variable).
        pub const OPTIONS: &[(&str, &str, &str)] = &[
            $($( options!(@names $field $(, $($arg)*)*), )*)*
        ];

        fn merge(args: &ServeArgs, file: FileConfig) -> Config {
            Config {
                oidc: Vec::new(),
                $(
                    $group: $Group {
                        $(
                            $field: options!(
                                @merge args.$field.clone().or(file.$field), $default $(, $lo, $hi)?
                            ),
                        )*
                    },
                )*
            }
        }
    };
    (@type $ty:ty, none) => { Option<$ty> };
    (@type $ty:ty, $default:tt) => { $ty };
    (@default none) => { None };
    (@default $default:tt) => { $default };
    (@merge $v:expr, none) => { $v };
    (@merge $v:expr, $default:tt) => { $v.unwrap_or_else(|| $default) };
    (@merge $v:expr, $default:tt, $lo:literal, $hi:literal) => {
        $v.unwrap_or_else(|| $default).clamp($lo, $hi)
    };
    (@names $field:ident, env = $env:literal $(, $($rest:tt)*)?) => {
        (stringify!($field), stringify!($field), $env)
    };
}

options! {
    /// The web server: where it listens, who it trusts, how it stops and logs.
    http: HttpConfig {
        /// HTTP listen address.
        #[arg(env = "MOIM_LISTEN")]
        listen: SocketAddr = { SocketAddr::from(([127, 0, 0, 1], 8080)) };
        /// Public base URL (e.g. https://moim.example); `https` turns on Secure cookies.
        #[arg(env = "MOIM_PUBLIC_URL")]
        public_url: String = none;
        /// Behind a reverse proxy: take the client address from the last `X-Forwarded-For` entry.
        #[arg(env = "MOIM_TRUST_PROXY")]
        trust_proxy: bool = false;
        /// Login attempts allowed per IP per minute (burst).
        #[arg(env = "MOIM_LOGIN_RATE_PER_MIN")]
        login_rate_per_min: u32 = 10, in 1..=100_000;
        /// Threads running connections (default: one per CPU core).
        #[arg(env = "MOIM_WORKER_THREADS")]
        worker_threads: usize = none;
        /// Grace period for shutdown, in seconds: the longest from SIGTERM to exit.
        #[arg(env = "MOIM_SHUTDOWN_GRACE_S")]
        shutdown_grace_s: u64 = 10, in 1..=3600;
        /// Seconds after SIGTERM during which `/readyz` says 503 and everything is still served,
        /// so load balancers stop sending new work before clients are asked to move.
        #[arg(env = "MOIM_DRAIN_DELAY_S")]
        drain_delay_s: u64 = 0, in 0..=3600;
        /// WebSocket clients are told to reconnect at random moments over this many seconds
        /// (after the drain delay; at most half the grace period), so they do not all arrive
        /// elsewhere at once.
        #[arg(env = "MOIM_DRAIN_JITTER_S")]
        drain_jitter_s: f64 = 1.0;
        /// Log format: `pretty` or `json`.
        #[arg(env = "MOIM_LOG_FORMAT")]
        log_format: LogFormat = { LogFormat::Pretty };
    }
    /// Rooms and chat: pacing, history, slow clients.
    chat: ChatConfig {
        /// Chat rate limit: burst size per user per room (0 disables the limit).
        #[arg(env = "MOIM_CHAT_RATE_BURST")]
        chat_rate_burst: u32 = 5;
        /// Chat rate limit: messages per second refilled.
        #[arg(env = "MOIM_CHAT_RATE_PER_S")]
        chat_rate_per_s: f64 = 1.0;
        /// Messages in the welcome frame without `since`.
        #[arg(env = "MOIM_HISTORY_LIMIT")]
        history_limit: usize = 100, in 1..=1000;
        /// Messages replayed with `since` before `truncated` is set.
        #[arg(env = "MOIM_RESUME_LIMIT")]
        resume_limit: usize = 1000, in 1..=10_000;
        /// Frames a connection may have waiting for a slow socket before it must resync.
        #[arg(env = "MOIM_ROOM_BUFFER")]
        room_buffer: usize = 256, in 16..=65_536;
        /// Watch together: longest the group waits for a member whose player stalls, ms.
        #[arg(env = "MOIM_PARTY_MAX_WAIT_MS")]
        party_max_wait_ms: u64 = 5000, in 0..=60_000;
        /// Watch together: how far ahead a play, pause or seek is scheduled, so every member
        /// applies it at the same instant, ms.
        #[arg(env = "MOIM_PARTY_LEAD_MS")]
        party_lead_ms: u64 = 150, in 0..=5000;
    }
    /// Live broadcasting: ingest, its limits, LL-HLS timing, the optional ladder.
    live: LiveConfig {
        /// RTMP ingest address (OBS publishes to rtmp://HOST:PORT/live/{stream key}).
        #[arg(env = "MOIM_RTMP_LISTEN")]
        rtmp_listen: SocketAddr = { SocketAddr::from(([127, 0, 0, 1], 1935)) };
        /// Host (and port) put in the RTMP URL shown to streamers; default: the HTTP host.
        #[arg(env = "MOIM_RTMP_PUBLIC_HOST")]
        rtmp_public_host: String = none;
        /// Broadcasts running at once.
        #[arg(env = "MOIM_MAX_BROADCASTS")]
        max_broadcasts: usize = 20, in 1..=10_000;
        /// Highest ingest bitrate, kbit/s, averaged over 5 s; a faster publisher is disconnected.
        #[arg(env = "MOIM_MAX_INGEST_KBPS")]
        max_ingest_kbps: u64 = 20_000, in 100..=1_000_000;
        /// Seconds a publisher may be gone and come back to the same broadcast.
        #[arg(env = "MOIM_RECONNECT_GRACE_S")]
        reconnect_grace_s: u64 = 10, in 0..=600;
        /// Seconds without data after which a publisher is considered gone.
        #[arg(env = "MOIM_INGEST_TIMEOUT_S")]
        ingest_timeout_s: u64 = 10, in 1..=600;
        /// LL-HLS part duration upper bound, milliseconds.
        #[arg(env = "MOIM_HLS_PART_MS")]
        hls_part_ms: u32 = 334, in 100..=2000;
        /// Minimum HLS segment duration, milliseconds (segments end at the next keyframe).
        #[arg(env = "MOIM_HLS_SEGMENT_MS")]
        hls_segment_ms: u32 = 1000, in 500..=10_000;
        /// Make lower renditions with ffmpeg (adaptive bitrate); off = pass the source through.
        #[arg(env = "MOIM_TRANSCODE")]
        transcode: bool = false;
        /// The ladder: `HEIGHT:KBPS,…`; steps at or above the source's height are skipped.
        #[arg(env = "MOIM_TRANSCODE_LADDER")]
        transcode_ladder: Ladder = { DEFAULT_LADDER.parse().expect("the default ladder parses") };
    }
    /// Real-time media (WebRTC): the SFU's UDP socket and its bounds.
    webrtc: WebrtcConfig {
        /// UDP address of the WebRTC media socket (one socket for every peer).
        #[arg(env = "MOIM_WEBRTC_LISTEN")]
        webrtc_listen: SocketAddr = { SocketAddr::from(([127, 0, 0, 1], 8189)) };
        /// Addresses put in answers as the media socket's, comma-separated IPs (the public
        /// address behind NAT); default: the listen address, or 127.0.0.1 when it is 0.0.0.0.
        #[arg(env = "MOIM_WEBRTC_ADVERTISE")]
        webrtc_advertise: String = none;
        /// TCP address for ICE-TCP (RFC 6544): answers also name it, at the advertised
        /// addresses, for clients whose network lets TCP out but not UDP. Off by default.
        #[arg(env = "MOIM_WEBRTC_TCP_LISTEN")]
        webrtc_tcp_listen: SocketAddr = none;
        /// Viewers watching one room's broadcast by WebRTC at once.
        #[arg(env = "MOIM_WEBRTC_MAX_VIEWERS_PER_ROOM")]
        webrtc_max_viewers_per_room: usize = 500, in 1..=100_000;
        /// WebRTC peers on this node at once.
        #[arg(env = "MOIM_WEBRTC_MAX_PEERS")]
        webrtc_max_peers: usize = 2000, in 1..=100_000;
        /// Media this node may forward to WebRTC viewers and voice members in all, Mbit/s:
        /// past it new ones are refused (viewers still have LL-HLS). Keep it below the uplink.
        #[arg(env = "MOIM_WEBRTC_MAX_FORWARD_MBPS")]
        webrtc_max_forward_mbps: u64 = 800, in 1..=400_000;
        /// STUN and TURN servers clients are told of, comma-separated URLs (`stun:host:port`,
        /// `turn:host:port?transport=tcp`, `turns:host:443`): a relay for clients whose network
        /// blocks UDP to the media socket. TURN servers need `webrtc_turn_secret`.
        #[arg(env = "MOIM_WEBRTC_ICE_SERVERS")]
        webrtc_ice_servers: String = none;
        /// The TURN server's shared secret (coturn's `static-auth-secret`): signed-in members
        /// and stream keys get credentials made from it that expire after `webrtc_turn_ttl_s`.
        #[arg(env = "MOIM_WEBRTC_TURN_SECRET", hide_env_values = true)]
        webrtc_turn_secret: Secret = none;
        /// Seconds the TURN credentials moim hands out last.
        #[arg(env = "MOIM_WEBRTC_TURN_TTL_S")]
        webrtc_turn_ttl_s: u64 = 86_400, in 60..=604_800;
    }
    /// The video library: turning uploads into playable videos.
    library: LibraryConfig {
        /// Videos processed at once on this node (default: half the CPU cores, at least one).
        #[arg(env = "MOIM_VIDEO_WORKERS")]
        video_workers: usize = none;
        /// Longest one video may take to process, seconds; then it fails, saying so.
        #[arg(env = "MOIM_VIDEO_TIMEOUT_S")]
        video_timeout_s: u64 = 14_400, in 1..=604_800;
        /// Seconds a worker's claim on a job lasts unrenewed: how soon another worker takes
        /// over the job of a node that died.
        #[arg(env = "MOIM_VIDEO_LEASE_S")]
        video_lease_s: u64 = 30, in 3..=3600;
        /// The ffmpeg program (transcoding, thumbnails); without it only H.264/AAC MP4 is taken.
        #[arg(env = "MOIM_FFMPEG")]
        ffmpeg: String = { "ffmpeg".to_string() };
        /// The ffprobe program (reading files that are not H.264/AAC MP4).
        #[arg(env = "MOIM_FFPROBE")]
        ffprobe: String = { "ffprobe".to_string() };
        /// Renditions transcoded uploads get, `HEIGHT:KBPS,…` (peak kbit/s); none above the source.
        #[arg(env = "MOIM_VIDEO_LADDER")]
        video_ladder: Ladder = { DEFAULT_VIDEO_LADDER.parse().expect("the default ladder parses") };
        /// Also give remuxed uploads (playable as they came) the ladder's rungs below their
        /// height, made with ffmpeg after they play; off = one rendition, no encoding at all.
        #[arg(env = "MOIM_VIDEO_REMUX_LADDER")]
        video_remux_ladder: bool = true;
    }
    /// Limits that keep one client (or a crowd) from exhausting the server; see
    /// docs/operations.md, "Limits and abuse".
    limits: LimitsConfig {
        /// Password hashes (argon2id, 19 MiB each) computed at once (default: one per CPU core).
        #[arg(env = "MOIM_PASSWORD_HASH_WORKERS")]
        password_hash_workers: usize = none;
        /// Longest wait for a hashing worker, milliseconds; then 503 with `Retry-After`.
        #[arg(env = "MOIM_PASSWORD_HASH_WAIT_MS")]
        password_hash_wait_ms: u64 = 2000, in 50..=60_000;
        /// Open connections in all (HTTP, WebSocket, RTMP); lowered to fit the open-file limit.
        #[arg(env = "MOIM_MAX_CONNECTIONS")]
        max_connections: usize = 100_000, in 16..=10_000_000;
        /// Open connections from one address (IPv6: one /64).
        #[arg(env = "MOIM_MAX_CONNECTIONS_PER_IP")]
        max_connections_per_ip: usize = 256, in 1..=1_000_000;
        /// Seconds a request body may take to arrive; then 408 and the connection closes.
        #[arg(env = "MOIM_BODY_TIMEOUT_S")]
        body_timeout_s: u64 = 30, in 1..=3600;
        /// RTMP connections one address may hold before publishing with a valid key.
        #[arg(env = "MOIM_RTMP_UNAUTHENTICATED_PER_IP")]
        rtmp_unauthenticated_per_ip: usize = 8, in 1..=10_000;
        /// Resumes with `since` one address may ask for per minute (burst); more get the recent history.
        #[arg(env = "MOIM_REPLAYS_PER_MIN")]
        replays_per_min: u32 = 30, in 1..=100_000;
        /// Most KiB of chat history one welcome frame carries; older messages are left out.
        #[arg(env = "MOIM_MAX_WELCOME_KIB")]
        max_welcome_kib: usize = 256, in 16..=65_536;
        /// Largest photo, MiB (bigger ones get 413 `image_too_large` before they are read).
        #[arg(env = "MOIM_MAX_IMAGE_MIB")]
        max_image_mib: usize = 25, in 1..=1024;
        /// Largest photo in megapixels, from its header (bigger ones are refused undecoded).
        #[arg(env = "MOIM_MAX_IMAGE_MEGAPIXELS")]
        max_image_megapixels: u64 = 40, in 1..=1000;
        /// Photos processed at once (default: one per CPU core); up to 8 more per worker wait.
        #[arg(env = "MOIM_IMAGE_WORKERS")]
        image_workers: usize = none;
        /// Largest file one upload may be, MiB.
        #[arg(env = "MOIM_MAX_UPLOAD_MIB")]
        max_upload_mib: u64 = 4096, in 1..=1_048_576;
        /// Seconds an unfinished upload is kept; then it and its bytes are deleted.
        #[arg(env = "MOIM_UPLOAD_EXPIRY_S")]
        upload_expiry_s: u64 = 86_400, in 1..=2_592_000;
        /// Seconds from RTMP connect to an accepted publish; then the connection closes.
        #[arg(env = "MOIM_RTMP_HANDSHAKE_TIMEOUT_S")]
        rtmp_handshake_timeout_s: u64 = 10, in 1..=600;
    }
    /// Where data lives.
    /// Review drafts by a language model behind an OpenAI-compatible chat-completions
    /// endpoint (llama.cpp's server, vLLM, Ollama, OpenAI, …); off unless a base URL is given.
    ai: AiConfig {
        /// The endpoint's base URL, e.g. `http://127.0.0.1:8080/v1` (`/chat/completions` is added).
        #[arg(env = "MOIM_AI_BASE_URL")]
        ai_base_url: String = none;
        /// The model name sent with each request.
        #[arg(env = "MOIM_AI_MODEL")]
        ai_model: String = { "default".to_string() };
        /// A file holding the API key (sent as `Authorization: Bearer`); none: no key.
        #[arg(env = "MOIM_AI_API_KEY_FILE")]
        ai_api_key_file: PathBuf = none;
        /// The model reads pictures: a draft's photos go with it as data URLs.
        #[arg(env = "MOIM_AI_VISION")]
        ai_vision: bool = false;
        /// Longest a draft may take, seconds (and longest silence between two pieces of it).
        #[arg(env = "MOIM_AI_TIMEOUT_S")]
        ai_timeout_s: u64 = 60, in 1..=600;
        /// Drafts one member may ask for per hour.
        #[arg(env = "MOIM_AI_DRAFTS_PER_HOUR")]
        ai_drafts_per_hour: u32 = 20, in 1..=10_000;
    }
    /// The map (a place's pin, the feed's "near" filter): where its tiles come from.
    map: MapConfig {
        /// Tile URL template with `{z}`, `{x}`, `{y}` (optionally `{s}` as the host's first
        /// label); a path (`/tiles/{z}/{x}/{y}.png`) for tiles on moim's own host; empty: no
        /// tiles (pins on a blank map).
        #[arg(env = "MOIM_MAP_TILE_URL")]
        map_tile_url: String = { DEFAULT_TILE_URL.to_string() };
        /// The tiles' attribution, shown on every map (plain text).
        #[arg(env = "MOIM_MAP_ATTRIBUTION")]
        map_attribution: String = { "© OpenStreetMap contributors".to_string() };
        /// Highest zoom level the tile server has.
        #[arg(env = "MOIM_MAP_MAX_ZOOM")]
        map_max_zoom: u8 = 19, in 1..=22;
        /// Where a map opens when nothing else decides it, `LAT,LNG`.
        #[arg(env = "MOIM_MAP_CENTER")]
        map_center: String = { "37.5665,126.9780".to_string() };
        /// Zoom level a map opens at.
        #[arg(env = "MOIM_MAP_ZOOM")]
        map_zoom: u8 = 12, in 1..=22;
    }
    storage: StorageConfig {
        /// Directory for the SQLite database and blobs.
        #[arg(env = "MOIM_DATA_DIR")]
        data_dir: PathBuf = { PathBuf::from("./moim-data") };
        /// `sqlite://…` or `postgres://…`; default: SQLite file in the data dir.
        #[arg(env = "MOIM_DATABASE_URL", hide_env_values = true)]
        database_url: Secret = none;
        /// Where blobs (videos, uploads, photos) are kept: `local` (under the data dir) or
        /// `s3://bucket[/prefix]?endpoint=http(s)://host:port[&region=R]`.
        #[arg(env = "MOIM_BLOBS")]
        blobs: String = { "local".to_string() };
        /// The S3 access key id (else `AWS_ACCESS_KEY_ID`).
        #[arg(env = "MOIM_S3_ACCESS_KEY_ID")]
        s3_access_key_id: String = none;
        /// A file holding the S3 secret access key (else `AWS_SECRET_ACCESS_KEY`); never logged.
        #[arg(env = "MOIM_S3_SECRET_ACCESS_KEY_FILE")]
        s3_secret_access_key_file: PathBuf = none;
        /// `redis://[:password@]host:port[/db]`: the nodes of one site hear each other through
        /// this Redis; none: one node.
        #[arg(env = "MOIM_REDIS_URL", hide_env_values = true)]
        redis_url: Secret = none;
        /// Storage plan of members an admin gave no plan (by name); none: only `max_upload_mib`.
        #[arg(env = "MOIM_DEFAULT_PLAN")]
        default_plan: String = none;
    }
}

/// OpenStreetMap's own tile servers: fine for a small community, under their usage policy
/// (<https://operations.osmfoundation.org/policies/tiles/>); a busy site runs or rents its own.
pub const DEFAULT_TILE_URL: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

/// Default ladder for transcoded uploads: height:kbit/s.
pub const DEFAULT_VIDEO_LADDER: &str = "1080:5000,720:2800,480:1400,360:800";

/// Default transcoding ladder: height:kbit/s.
pub const DEFAULT_LADDER: &str = "720:2800,480:1400,360:800";

impl Config {
    /// Merges file, environment (already folded into `args` by clap) and flags, and checks
    /// what the types cannot.
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
        let mut file = file;
        let mut providers = std::mem::take(&mut file.oidc);
        let env: Vec<(String, String)> = std::env::vars().collect();
        provider_overrides(&mut providers, &env, &args.oidc)?;
        let mut config = merge(args, file);
        config.oidc = providers
            .into_iter()
            .map(|(id, table)| {
                let f: OidcFile = table
                    .try_into()
                    .with_context(|| format!("the sign-in provider [oidc.{id}]"))?;
                OidcProvider::from_file(id, f, &|name| std::env::var(name).ok())
            })
            .collect::<anyhow::Result<_>>()?;
        let rate = config.chat.chat_rate_per_s;
        anyhow::ensure!(
            rate.is_finite() && rate >= 0.0,
            "chat_rate_per_s must be a non-negative number"
        );
        config.http.worker_threads = config.http.worker_threads.map(|n| n.clamp(1, 1024));
        if let Some(url) = &config.http.public_url {
            let authority = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
            anyhow::ensure!(
                authority.is_some_and(|a| !a.is_empty() && !a.contains('@')),
                "public URL must look like https://moim.example (or http://host:port), not `{url}`"
            );
        }
        config.map.check()?;
        let h = &config.http;
        anyhow::ensure!(
            h.drain_jitter_s.is_finite() && h.drain_jitter_s >= 0.0,
            "drain_jitter_s must be a non-negative number of seconds"
        );
        anyhow::ensure!(
            h.drain_delay() + h.drain_jitter() < h.shutdown_grace(),
            "drain_delay_s ({}) plus drain_jitter_s ({}) must be less than shutdown_grace_s ({}): \
             the drain would not fit in the grace period",
            h.drain_delay_s,
            h.drain_jitter().as_secs_f64(),
            h.shutdown_grace_s
        );
        if let Some(url) = &config.storage.database_url {
            let u = url.expose();
            anyhow::ensure!(
                u.starts_with("sqlite:")
                    || u.starts_with("postgres://")
                    || u.starts_with("postgresql://"),
                "database URL must start with sqlite: or postgres://"
            );
        }
        Ok(config)
    }
}

impl HttpConfig {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_s)
    }

    pub fn drain_delay(&self) -> Duration {
        Duration::from_secs(self.drain_delay_s)
    }

    /// The reconnect window: `drain_jitter_s`, at most half the grace period.
    pub fn drain_jitter(&self) -> Duration {
        Duration::from_secs_f64(
            self.drain_jitter_s
                .clamp(0.0, self.shutdown_grace_s as f64 / 2.0),
        )
    }

    /// True when cookies must carry `Secure` (served over TLS).
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

impl MapConfig {
    /// Refuses a tile URL a map cannot use or a page policy cannot name, and a bad centre.
    fn check(&self) -> anyhow::Result<()> {
        let url = &self.map_tile_url;
        if !url.is_empty() {
            anyhow::ensure!(
                ["{z}", "{x}"].iter().all(|p| url.contains(p))
                    && (url.contains("{y}") || url.contains("{-y}")),
                "map tile URL must hold {{z}}, {{x}} and {{y}} (or {{-y}}), not `{url}`"
            );
            let mut rest = url.as_str();
            while let Some(i) = rest.find('{') {
                let end = rest[i..].find('}').map_or(rest.len(), |j| i + j + 1);
                let known = ["{s}", "{z}", "{x}", "{y}", "{-y}", "{r}"];
                anyhow::ensure!(
                    known.contains(&&rest[i..end]),
                    "map tile URL may only hold {{s}}, {{z}}, {{x}}, {{y}}, {{-y}} and {{r}}, \
                     not `{}`",
                    &rest[i..end]
                );
                rest = &rest[end..];
            }
            anyhow::ensure!(
                !url.chars().any(|c| c.is_whitespace()
                    || c.is_control()
                    || matches!(c, ';' | ',' | '\'' | '"' | '\\' | '*')),
                "map tile URL may not hold spaces, quotes, commas, semicolons, backslashes or `*`: `{url}`"
            );
            let own_host = url.starts_with('/') && !url.starts_with("//");
            if !own_host {
                anyhow::ensure!(
                    self.tile_source().is_some(),
                    "map tile URL must be https://host[:port]/… (or http://, or a path on this \
                     host), with `{{s}}` only as the host's first label, not `{url}`"
                );
            }
        }
        anyhow::ensure!(
            self.center().is_some(),
            "map centre must be `LAT,LNG` in degrees, not `{}`",
            self.map_center
        );
        Ok(())
    }

    /// The tile server's origin as a page policy names it (`https://*.tile.example`), or None
    /// when the tiles come from moim's own host or there are none.
    pub fn tile_source(&self) -> Option<String> {
        let url = &self.map_tile_url;
        let (scheme, rest) = url.split_once("://")?;
        if scheme != "https" && scheme != "http" {
            return None;
        }
        let authority = rest.split('/').next()?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let (wild, name) = match host.strip_prefix("{s}.") {
            Some(h) => ("*.", h),
            None => ("", host),
        };
        // A hostname (IPv6 literals cannot be named in a page policy), and a numeric port.
        let fine = !name.is_empty()
            && name
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            && port.is_none_or(|p| {
                !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
            });
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        fine.then(|| format!("{scheme}://{wild}{name}{port}"))
    }

    /// The tile URL template, None when there are no tiles.
    pub fn tile_url(&self) -> Option<&str> {
        (!self.map_tile_url.is_empty()).then_some(self.map_tile_url.as_str())
    }

    /// The opening centre, `(lat, lng)`.
    pub fn center(&self) -> Option<(f64, f64)> {
        let (lat, lng) = self.map_center.split_once(',')?;
        let (lat, lng) = (
            lat.trim().parse::<f64>().ok()?,
            lng.trim().parse::<f64>().ok()?,
        );
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng)).then_some((lat, lng))
    }
}

impl LimitsConfig {
    /// Hashing workers: the configured number, else one per core.
    pub fn password_hash_workers(&self) -> usize {
        self.password_hash_workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
            .clamp(1, 256)
    }

    /// Photos processed at once: the configured number, else one per core.
    pub fn image_workers(&self) -> usize {
        self.image_workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
            .clamp(1, 256)
    }

    pub fn password_hash_wait(&self) -> Duration {
        Duration::from_millis(self.password_hash_wait_ms)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_s)
    }

    pub fn rtmp_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.rtmp_handshake_timeout_s)
    }
}

impl LibraryConfig {
    /// Processing workers: the configured number, else half the cores (at least one), since
    /// one transcode keeps more than one core busy.
    pub fn video_workers(&self) -> usize {
        self.video_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) / 2)
            .clamp(1, 64)
    }

    pub fn video_timeout(&self) -> Duration {
        Duration::from_secs(self.video_timeout_s)
    }

    pub fn video_lease(&self) -> Duration {
        Duration::from_secs(self.video_lease_s)
    }
}

impl LiveConfig {
    pub fn reconnect_grace(&self) -> Duration {
        Duration::from_secs(self.reconnect_grace_s)
    }

    pub fn ingest_timeout(&self) -> Duration {
        Duration::from_secs(self.ingest_timeout_s)
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

/// What kind of sign-in provider a `[oidc.<id>]` table is: three presets and any OpenID
/// Connect provider by its issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Google,
    Kakao,
    /// OAuth 2.0 only: its user comes from its profile API.
    Naver,
    Oidc,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Google => "google",
            ProviderKind::Kakao => "kakao",
            ProviderKind::Naver => "naver",
            ProviderKind::Oidc => "oidc",
        }
    }
}

/// The keys of an `[oidc.<id>]` table, longest first (as variable-name suffixes, `CLIENT_ID`
/// must not be taken for the end of `…_CLIENT_SECRET_FILE`).
const PROVIDER_KEYS: [&str; 10] = [
    "authorization_endpoint",
    "client_secret_file",
    "userinfo_endpoint",
    "token_endpoint",
    "display_name",
    "trust_email",
    "client_id",
    "issuer",
    "scopes",
    "kind",
];

/// Lays `MOIM_OIDC_<ID>_<KEY>` variables, then `--oidc ID.KEY=VALUE` flags, over the file's
/// `[oidc.<id>]` tables (a provider may be set up by variables alone). `<ID>` in a variable is
/// the id upper-cased with `-` as `_`. `MOIM_OIDC_<ID>_CLIENT_SECRET` is the secret itself and
/// is read where the secret is (never into a table).
fn provider_overrides(
    tables: &mut std::collections::BTreeMap<String, toml::Table>,
    env: &[(String, String)],
    flags: &[String],
) -> anyhow::Result<()> {
    let mut set = |id: &str, key: &str, value: &str, what: &str| -> anyhow::Result<()> {
        let value = match key {
            "trust_email" => toml::Value::Boolean(match value.trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                other => anyhow::bail!("{what}: trust_email is true or false, not `{other}`"),
            }),
            "scopes" => toml::Value::Array(
                value
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
            _ => toml::Value::String(value.to_string()),
        };
        tables
            .entry(id.to_string())
            .or_default()
            .insert(key.to_string(), value);
        Ok(())
    };
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("MOIM_OIDC_"))
        .collect();
    vars.sort();
    for (name, value) in vars {
        let rest = &name["MOIM_OIDC_".len()..];
        let Some(key) = PROVIDER_KEYS.iter().find(|k| {
            rest.len() > k.len() + 1
                && rest.ends_with(&k.to_ascii_uppercase())
                && rest.as_bytes()[rest.len() - k.len() - 1] == b'_'
        }) else {
            continue; // `…_CLIENT_SECRET`, or not a provider's setting
        };
        let id = rest[..rest.len() - key.len() - 1]
            .to_ascii_lowercase()
            .replace('_', "-");
        set(&id, key, value, name)?;
    }
    for flag in flags {
        let (path, value) = flag
            .split_once('=')
            .with_context(|| format!("--oidc {flag}: expected ID.KEY=VALUE"))?;
        let (id, key) = path
            .split_once('.')
            .with_context(|| format!("--oidc {flag}: expected ID.KEY=VALUE"))?;
        anyhow::ensure!(
            PROVIDER_KEYS.contains(&key),
            "--oidc {flag}: `{key}` is not a provider setting (one of {})",
            PROVIDER_KEYS.join(", ")
        );
        set(id, key, value, &format!("--oidc {flag}"))?;
    }
    Ok(())
}

/// A `[oidc.<id>]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcFile {
    kind: String,
    issuer: Option<String>,
    client_id: String,
    client_secret_file: Option<PathBuf>,
    display_name: Option<String>,
    scopes: Option<Vec<String>>,
    #[serde(default)]
    trust_email: bool,
    /// OAuth 2.0 endpoints, for a provider without discovery (Naver's by default).
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
}

/// A sign-in provider, checked.
#[derive(Debug, Clone)]
pub struct OidcProvider {
    /// 1–32 of `a-z0-9-`: in the callback path `/auth/{id}/callback`.
    pub id: String,
    pub kind: ProviderKind,
    /// Where discovery starts (`{issuer}/.well-known/openid-configuration`); `None` for Naver.
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    pub display_name: String,
    pub scopes: Vec<String>,
    /// Link to a local account by a verified e-mail address the provider vouches for.
    pub trust_email: bool,
    /// OAuth 2.0 endpoints (Naver's, unless given).
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
}

/// A URL a provider answers at: https, or http on a loopback host (a test or a local provider).
fn provider_url(what: &str, url: &str) -> anyhow::Result<String> {
    let ok = match url.strip_prefix("https://") {
        Some(rest) => !rest.is_empty(),
        None => url.strip_prefix("http://").is_some_and(|rest| {
            let host = rest.split(['/', ':']).next().unwrap_or("");
            host == "localhost" || host.starts_with("127.") || rest.starts_with("[::1]")
        }),
    };
    anyhow::ensure!(
        ok && !url.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{what} must be an https:// URL (http:// only on a loopback address), not `{url}`"
    );
    Ok(url.trim_end_matches('/').to_string())
}

impl OidcProvider {
    /// Checks a table and finds its client secret: `client_secret_file`, else the variable
    /// `MOIM_OIDC_<ID>_CLIENT_SECRET` (`env` looks variables up).
    pub fn from_file(
        id: String,
        f: OidcFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<OidcProvider> {
        anyhow::ensure!(
            (1..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "a sign-in provider's id (the name in [oidc.<id>]) is 1 to 32 of a-z, 0-9 and -, not `{id}`"
        );
        let kind = match f.kind.as_str() {
            "google" => ProviderKind::Google,
            "kakao" => ProviderKind::Kakao,
            "naver" => ProviderKind::Naver,
            "oidc" => ProviderKind::Oidc,
            other => anyhow::bail!(
                "[oidc.{id}] kind must be google, kakao, naver or oidc, not `{other}`"
            ),
        };
        let issuer = match (kind, f.issuer.as_deref()) {
            (ProviderKind::Oidc, None) => {
                anyhow::bail!("[oidc.{id}] needs an issuer (where its discovery document is)")
            }
            (ProviderKind::Naver, Some(_)) => {
                anyhow::bail!("[oidc.{id}] is Naver, which has no issuer: OAuth 2.0 only")
            }
            // Exactly as written: the discovery document must name the same issuer, trailing
            // slash and all (some providers' issuers end in one).
            (_, Some(i)) => {
                provider_url(&format!("[oidc.{id}] issuer"), i)?;
                Some(i.trim().to_string())
            }
            (ProviderKind::Google, None) => Some("https://accounts.google.com".into()),
            (ProviderKind::Kakao, None) => Some("https://kauth.kakao.com".into()),
            (ProviderKind::Naver, None) => None,
        };
        anyhow::ensure!(
            !f.client_id.trim().is_empty(),
            "[oidc.{id}] needs its client_id"
        );
        let var = format!(
            "MOIM_OIDC_{}_CLIENT_SECRET",
            id.to_ascii_uppercase().replace('-', "_")
        );
        let secret = match &f.client_secret_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| {
                    format!("[oidc.{id}] reading client_secret_file {}", path.display())
                })?
                .trim()
                .to_string(),
            None => env(&var).map(|s| s.trim().to_string()).unwrap_or_default(),
        };
        anyhow::ensure!(
            !secret.is_empty(),
            "[oidc.{id}] needs its client secret: client_secret_file, or the variable {var}"
        );
        let endpoint =
            |what: &str, given: &Option<String>, naver: &str| -> anyhow::Result<Option<String>> {
                match (given, kind) {
                    (Some(u), _) => Ok(Some(provider_url(&format!("[oidc.{id}] {what}"), u)?)),
                    (None, ProviderKind::Naver) => Ok(Some(naver.to_string())),
                    (None, _) => Ok(None),
                }
            };
        let scopes = f.scopes.unwrap_or_else(|| {
            match kind {
                ProviderKind::Google | ProviderKind::Oidc => vec!["openid", "profile", "email"],
                ProviderKind::Kakao => vec!["openid", "profile_nickname"],
                ProviderKind::Naver => vec![],
            }
            .into_iter()
            .map(String::from)
            .collect()
        });
        let display_name = match f.display_name {
            Some(n) if !n.trim().is_empty() => n.trim().to_string(),
            _ => match kind {
                ProviderKind::Google => "Google".into(),
                ProviderKind::Kakao => "Kakao".into(),
                ProviderKind::Naver => "Naver".into(),
                ProviderKind::Oidc => id.clone(),
            },
        };
        Ok(OidcProvider {
            authorization_endpoint: endpoint(
                "authorization_endpoint",
                &f.authorization_endpoint,
                "https://nid.naver.com/oauth2.0/authorize",
            )?,
            token_endpoint: endpoint(
                "token_endpoint",
                &f.token_endpoint,
                "https://nid.naver.com/oauth2.0/token",
            )?,
            userinfo_endpoint: endpoint(
                "userinfo_endpoint",
                &f.userinfo_endpoint,
                "https://openapi.naver.com/v1/nid/me",
            )?,
            id,
            kind,
            issuer,
            client_id: f.client_id.trim().to_string(),
            client_secret: Secret::new(secret),
            display_name,
            scopes,
            trust_email: f.trust_email,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_providers_come_from_the_file_variables_and_flags() {
        let mut tables: std::collections::BTreeMap<String, toml::Table> =
            toml::from_str("[google]\nkind = \"google\"\nclient_id = \"from-file\"\n").unwrap();
        let env = [
            ("MOIM_OIDC_GOOGLE_CLIENT_ID", "from-env"),
            ("MOIM_OIDC_GOOGLE_CLIENT_SECRET", "the secret itself"),
            ("MOIM_OIDC_MY_IDP_KIND", "oidc"),
            ("MOIM_OIDC_MY_IDP_ISSUER", "https://sso.example"),
            ("MOIM_OIDC_MY_IDP_CLIENT_SECRET_FILE", "/run/secret"),
            ("MOIM_OIDC_MY_IDP_SCOPES", "openid,profile email"),
            ("MOIM_OIDC_MY_IDP_TRUST_EMAIL", "true"),
            ("MOIM_OTHER", "x"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let flags = ["my-idp.client_id=from-flag".to_string()];
        provider_overrides(&mut tables, &env, &flags).unwrap();
        assert_eq!(tables["google"]["client_id"].as_str(), Some("from-env"));
        assert!(!tables["google"].contains_key("client_secret"));
        let idp = &tables["my-idp"];
        assert_eq!(idp["client_id"].as_str(), Some("from-flag"));
        assert_eq!(idp["client_secret_file"].as_str(), Some("/run/secret"));
        assert_eq!(idp["trust_email"].as_bool(), Some(true));
        assert_eq!(idp["scopes"].as_array().map(Vec::len), Some(3));
        let f: OidcFile = idp.clone().try_into().unwrap();
        assert_eq!(f.issuer.as_deref(), Some("https://sso.example"));
        for bad in ["x", "x.client_id", "x.secret=1"] {
            assert!(
                provider_overrides(&mut tables, &[], &[bad.to_string()]).is_err(),
                "{bad}"
            );
        }
        let bad_bool = [("MOIM_OIDC_X_TRUST_EMAIL".to_string(), "maybe".to_string())];
        assert!(provider_overrides(&mut tables, &bad_bool, &[]).is_err());
    }

    #[test]
    fn sign_in_providers_are_checked_and_their_secrets_kept_out_of_sight() {
        let secret = |name: &str, value: &str| {
            let p = std::env::temp_dir().join(format!(
                "moim-secret-{name}-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ));
            std::fs::write(&p, format!("{value}\n")).unwrap();
            p.display().to_string()
        };
        let files = [
            secret("g", "g-secret-hunter2"),
            secret("k", "kc-secret"),
            secret("n", "n-secret"),
        ];
        let [g, k, n] = &files;
        let path = file(&format!(
            "[oidc.google]\nkind = \"google\"\nclient_id = \"g-id\"\nclient_secret_file = \"{g}\"\n\n\
             [oidc.keycloak]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:9000/realms/x/\"\n\
             client_id = \"kc\"\ndisplay_name = \"Our Keycloak\"\nclient_secret_file = \"{k}\"\n\n\
             [oidc.naver]\nkind = \"naver\"\nclient_id = \"n-id\"\nclient_secret_file = \"{n}\"\n",
        ));
        let cfg = path.to_str().unwrap();
        let c = Config::load(&args(&["--config", cfg])).unwrap();
        let ids: Vec<&str> = c.oidc.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["google", "keycloak", "naver"]);
        let g = &c.oidc[0];
        assert_eq!(g.issuer.as_deref(), Some("https://accounts.google.com"));
        assert_eq!(g.client_secret.expose(), "g-secret-hunter2");
        assert_eq!(g.scopes, ["openid", "profile", "email"]);
        assert!(!g.trust_email);
        let kc = &c.oidc[1];
        assert_eq!(
            kc.issuer.as_deref(),
            Some("http://127.0.0.1:9000/realms/x/")
        );
        assert_eq!(kc.display_name, "Our Keycloak");
        let n = &c.oidc[2];
        assert_eq!(n.issuer, None);
        assert_eq!(
            n.userinfo_endpoint.as_deref(),
            Some("https://openapi.naver.com/v1/nid/me")
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        std::fs::remove_file(path).unwrap();
        for p in &files {
            std::fs::remove_file(p).unwrap();
        }
        // The variable, when there is no file.
        let env =
            |name: &str| (name == "MOIM_OIDC_MY_IDP_CLIENT_SECRET").then(|| " s3cret ".to_string());
        let p = OidcProvider::from_file(
            "my-idp".into(),
            toml::from_str("kind = \"kakao\"\nclient_id = \"k\"").unwrap(),
            &env,
        )
        .unwrap();
        assert_eq!(p.client_secret.expose(), "s3cret");
        assert_eq!(p.issuer.as_deref(), Some("https://kauth.kakao.com"));

        let none = |_: &str| None;
        let table = |text: &str| -> OidcFile { toml::from_str(text).unwrap() };
        for (id, text, why) in [
            ("Bad_Id", "kind = \"google\"\nclient_id = \"x\"", "id"),
            ("x", "kind = \"facebook\"\nclient_id = \"x\"", "kind"),
            ("x", "kind = \"oidc\"\nclient_id = \"x\"", "issuer"),
            (
                "x",
                "kind = \"oidc\"\nissuer = \"http://idp.example\"\nclient_id = \"x\"",
                "https",
            ),
            (
                "x",
                "kind = \"naver\"\nissuer = \"https://nid.naver.com\"\nclient_id = \"x\"",
                "OAuth 2.0",
            ),
            ("x", "kind = \"google\"\nclient_id = \" \"", "client_id"),
            (
                "x",
                "kind = \"google\"\nclient_id = \"x\"",
                "MOIM_OIDC_X_CLIENT_SECRET",
            ),
        ] {
            let err = OidcProvider::from_file(id.into(), table(text), &none).unwrap_err();
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
        assert!(
            toml::from_str::<OidcFile>("kind = \"google\"\nclient_id = \"x\"\nsecret = \"s\"")
                .is_err()
        );
    }

    fn args(list: &[&str]) -> ServeArgs {
        let mut argv = vec!["moim"];
        argv.extend_from_slice(list);
        Cli::try_parse_from(argv).expect("flags parse").serve
    }

    fn file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "moim-config-{}-{:08x}.toml",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let path = file("listen = \"0.0.0.0:9000\"\nchat_rate_burst = 8\nhistory_limit = 5000\n");
        let cfg = path.to_str().unwrap();
        let c = Config::load(&args(&["--config", cfg, "--chat-rate-burst", "3"])).unwrap();
        assert_eq!(
            c.http.listen,
            "0.0.0.0:9000".parse().unwrap(),
            "from the file"
        );
        assert_eq!(c.chat.chat_rate_burst, 3, "the flag wins");
        assert_eq!(c.chat.history_limit, 1000, "clamped to its range");
        assert_eq!(c.live.hls_part_ms, 334, "default");
        assert_eq!(c.live.transcode_ladder.len(), 3);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        let path = file("chat_rate_burst = 8\nno_such_option = 1\n");
        let err = Config::load(&args(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(format!("{err:#}").contains("no_such_option"), "{err:#}");
        std::fs::remove_file(path).unwrap();
        let bad_ladder = Cli::try_parse_from(["moim", "--transcode-ladder", "721:800"]);
        assert!(bad_ladder.is_err());
        let bad_log = Cli::try_parse_from(["moim", "--log-format", "xml"]);
        assert!(bad_log.unwrap_err().to_string().contains("pretty"));
        let err = Config::load(&args(&["--chat-rate-per-s", "NaN"])).unwrap_err();
        assert!(err.to_string().contains("chat_rate_per_s"));
        // The drain must fit in the grace period; the jitter is held to half of it.
        let err = Config::load(&args(&["--drain-delay-s", "10"])).unwrap_err();
        assert!(err.to_string().contains("drain_delay_s (10)"), "{err}");
        let c = Config::load(&args(&["--shutdown-grace-s", "2", "--drain-jitter-s", "5"])).unwrap();
        assert_eq!(c.http.drain_jitter(), std::time::Duration::from_secs(1));
        let c = Config::load(&args(&["--shutdown-grace-s", "30", "--drain-delay-s", "5"])).unwrap();
        assert_eq!(c.http.drain_delay(), std::time::Duration::from_secs(5));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Config::load(&args(&[
            "--database-url",
            "postgres://moim:hunter2-secret@db.example/moim",
        ]))
        .unwrap();
        assert_eq!(
            c.storage.database_url.as_ref().unwrap().expose(),
            "postgres://moim:hunter2-secret@db.example/moim"
        );
        let shown = format!(
            "{c:?} {:?} {:?}",
            args(&["--database-url", "postgres://x:hunter2-secret@h/d"]),
            args(&["--redis-url", "redis://:hunter2-secret@h:6379"])
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn every_option_is_documented() {
        let docs = include_str!("../docs/configuration.md");
        for (key, flag, env) in OPTIONS {
            let flag = format!("`--{}", flag.replace('_', "-"));
            for needle in [flag.as_str(), env, &format!("`{key}`")] {
                assert!(
                    docs.contains(needle),
                    "docs/configuration.md lacks {needle}"
                );
            }
        }
        assert!(OPTIONS.len() >= 24);
    }

    #[test]
    fn a_public_url_must_be_one() {
        for bad in [
            "moim.example",
            "ftp://moim.example",
            "https://",
            "https://u@moim.example",
        ] {
            let err = Config::load(&args(&["--public-url", bad])).unwrap_err();
            assert!(err.to_string().contains("public URL"), "{bad}: {err}");
        }
        for ok in [
            "https://moim.example",
            "http://127.0.0.1:8080/",
            "https://moim.example/app",
        ] {
            assert!(Config::load(&args(&["--public-url", ok])).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_tile_url_names_a_source_the_page_policy_can_allow() {
        let map = |url: &str| Config::load(&args(&["--map-tile-url", url])).map(|c| c.map);
        let osm = Config::load(&args(&[])).unwrap().map;
        assert_eq!(
            osm.tile_source().as_deref(),
            Some("https://tile.openstreetmap.org")
        );
        assert_eq!(osm.center(), Some((37.5665, 126.978)));
        let sub = map("https://{s}.tiles.example:8443/{z}/{x}/{y}{r}.png").unwrap();
        assert_eq!(
            sub.tile_source().as_deref(),
            Some("https://*.tiles.example:8443")
        );
        let own = map("/tiles/{z}/{x}/{y}.png").unwrap();
        assert_eq!(
            (own.tile_source(), own.tile_url()),
            (None, Some("/tiles/{z}/{x}/{y}.png"))
        );
        let tms = map("https://tiles.example/{z}/{x}/{-y}.png").unwrap();
        assert_eq!(tms.tile_source().as_deref(), Some("https://tiles.example"));
        let none = map("").unwrap();
        assert_eq!((none.tile_source(), none.tile_url()), (None, None));
        for bad in [
            "https://tiles.example/{z}/{x}.png",
            "https://tiles.example; script-src *;/{z}/{x}/{y}.png",
            "https://a.{s}.example/{z}/{x}/{y}.png",
            "https://u@tiles.example/{z}/{x}/{y}.png",
            "ftp://tiles.example/{z}/{x}/{y}.png",
            "javascript:{z}{x}{y}",
            "//tiles.example/{z}/{x}/{y}.png",
            "/\\tiles.example/{z}/{x}/{y}.png",
            "https://[::1]:8443/{z}/{x}/{y}.png",
            "https://:8443/{z}/{x}/{y}.png",
            "https://tiles.example:80:90/{z}/{x}/{y}.png",
            "https://*.tiles.example/{z}/{x}/{y}.png",
            "https://tiles.example/{z}/{x}/{y}.png?key={apikey}",
        ] {
            let err = map(bad).unwrap_err();
            assert!(err.to_string().contains("map tile URL"), "{bad}: {err}");
        }
        let err = Config::load(&args(&["--map-center", "91,0"])).unwrap_err();
        assert!(err.to_string().contains("map centre"), "{err}");
    }

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
