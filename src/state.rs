//! The state every handler and task shares: one pointer to the services, stores and limits that
//! `app` wires together at start-up. Owns no behaviour.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::limiter::KeyedLimiter;
use crate::config::Config;
use crate::domain::accounts::Accounts;
use crate::domain::events::Broker;
use crate::domain::plans::Plans;
use crate::domain::rooms::Rooms;
use crate::domain::settings::Settings;
use crate::domain::uploads::Uploads;
use crate::domain::videos::Videos;
use crate::limits::ConnLimits;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::realtime::Hub;
use crate::storage::blobs::Blobs;
use crate::storage::Db;

/// State shared by every handler and task: one pointer, so the clone axum makes for every
/// extractor and middleware is a single reference-count bump (a struct of a dozen `Arc`s cost
/// ~8 % of a busy HLS server in atomic increments and decrements).
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points at.
pub struct Shared {
    pub db: Db,
    /// The domain layer's services.
    pub accounts: Accounts,
    pub rooms: Rooms,
    pub settings: Settings,
    pub videos: Videos,
    pub uploads: Uploads,
    pub plans: Plans,
    /// The event path every domain operation publishes on.
    pub broker: Arc<dyn Broker>,
    /// Recordings (and later uploads and photos).
    pub blobs: Arc<dyn Blobs>,
    pub hub: Hub,
    /// Members' own event streams (`/me/events`).
    pub inboxes: Arc<crate::realtime::inbox::Inboxes>,
    pub shares: crate::domain::shares::Shares,
    /// Community posts, comments, places and rankings.
    pub community: crate::domain::community::Community,
    /// Members' photos.
    pub images: crate::domain::images::Images,
    /// Review drafts by a language model (off unless configured).
    pub drafts: crate::domain::drafts::Drafts,
    /// Watch parties held on this node.
    pub parties: crate::domain::parties::Parties,
    /// Planning together in a room: invite links, map pins, polls.
    pub invites: crate::domain::invites::Invites,
    pub pins: crate::domain::pins::Pins,
    pub polls: crate::domain::polls::Polls,
    pub config: Arc<Config>,
    /// Sign-in providers, and the key that signs what their flow keeps in cookies.
    pub signin: crate::signin::Providers,
    /// The WebRTC SFU (WHIP in, WHEP out).
    pub sfu: crate::sfu::Sfu,
    /// STUN and TURN servers given to WebRTC clients.
    pub ice_servers: crate::sfu::ice::IceServers,
    /// WHIP and WHEP offers per client address (an IPv6 one by its /64).
    pub webrtc_offers_by_ip: Arc<KeyedLimiter<IpAddr>>,
    pub sealer: crate::signin::Sealer,
    /// The site requests are checked against (Host, Origin).
    pub site: crate::auth::origin::Site,
    pub metrics: Arc<Metrics>,
    pub login_by_ip: Arc<KeyedLimiter<IpAddr>>,
    pub login_by_account: Arc<KeyedLimiter<String>>,
    pub signup_by_ip: Arc<KeyedLimiter<IpAddr>>,
    /// WebSocket resumes (`since`) per client address (an IPv6 one by its /64).
    pub replays_by_ip: Arc<KeyedLimiter<IpAddr>>,
    /// Open TCP connections (HTTP, WebSocket, RTMP), per peer address and in total.
    pub connections: Arc<ConnLimits>,
    /// WebSockets per client address behind a trusted proxy (whose own connections
    /// `connections` counts only in the total).
    pub proxied_sockets: Arc<ConnLimits>,
    /// True from the shutdown signal on: `/readyz` answers 503.
    pub draining: Arc<AtomicBool>,
    /// Cancelled at shutdown; long-lived connections watch it.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket sessions, which axum's graceful shutdown does not see.
    pub sessions: TaskTracker,
    /// Broadcasts running now.
    pub live: Live,
    /// The RTMP port actually bound (shown in ingest URLs).
    pub rtmp_port: u16,
}
