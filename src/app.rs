//! Building and running the application: wiring the parts into [`AppState`], background
//! tasks, and the shutdown sequence (readiness off → WebSocket clients told to reconnect → HTTP drained → chat writes
//! flushed → exit), bounded by the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::hasher::Hasher;
use crate::auth::limiter::KeyedLimiter;
use crate::config::Config;
use crate::domain::accounts::Accounts;
use crate::domain::events::{Broker, LocalBroker};
use crate::domain::plans::Plans;
use crate::domain::rooms::Rooms;
use crate::domain::settings::Settings;
use crate::domain::uploads::{UploadLimits, Uploads};
use crate::domain::videos::Videos;
use crate::library::{Library, Tools};
use crate::limits::ConnLimits;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::realtime::{self, ChatLimits, Hub};
pub use crate::state::{AppState, Shared};
use crate::storage::blobs::{Blobs, LocalBlobs};
use crate::storage::Db;

/// A built, bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    rtmp: TcpListener,
    state: AppState,
    writer_rx: tokio::sync::mpsc::Receiver<realtime::writer::Pending>,
    /// The open-file soft limit in force (after raising it).
    open_file_limit: u64,
    library: Library,
    /// The event path to the other nodes, when there are any.
    cluster: Option<Arc<crate::cluster::RedisBroker>>,
}

impl Application {
    /// Connects storage, loads settings and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&config.storage.data_dir)
            .with_context(|| format!("creating data dir {}", config.storage.data_dir.display()))?;
        let db = Db::connect(
            config.storage.database_url.as_ref().map(|u| u.expose()),
            &config.storage.data_dir,
        )
        .await?;
        let shutdown = CancellationToken::new();
        // The event path: this node's subscribers (the hub, live, parties, the library, member
        // inboxes subscribe below), and through Redis the other nodes' when there are any.
        let events = LocalBroker::new();
        // This process among the site's nodes (a restart is a new node).
        let node = rand::random::<u64>();
        let (broker, broker_stats, cluster): (Arc<dyn Broker>, _, _) =
            match &config.storage.redis_url {
                Some(url) => {
                    let site = crate::storage::settings::put_if_absent(
                        &db.pool,
                        "site_id",
                        &crate::auth::random_secret(),
                    )
                    .await
                    .context("loading the site id")?;
                    let stats = Arc::new(crate::cluster::BrokerStats::default());
                    let b = crate::cluster::RedisBroker::start(
                        url.expose(),
                        &site[..16.min(site.len())],
                        node,
                        events.clone(),
                        stats.clone(),
                    )?;
                    (b.clone(), Some(stats), Some(b))
                }
                None => (events.clone(), None, None),
            };
        let metrics = Arc::new(Metrics::with_broker(broker_stats));
        let (connections, open_file_limit) = connection_limits(&config);
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding {}", config.http.listen))?;
        let rtmp = TcpListener::bind(config.live.rtmp_listen)
            .await
            .with_context(|| format!("binding RTMP {}", config.live.rtmp_listen))?;
        let rtmp_port = rtmp.local_addr()?.port();
        let failed = crate::storage::videos::fail_unfinished(&db.pool, crate::storage::now_ms())
            .await
            .context("marking interrupted recordings")?;
        if failed > 0 {
            tracing::warn!(
                videos = failed,
                "recordings interrupted by a crash were marked failed"
            );
        }
        let config = Arc::new(config);
        let blobs = open_blobs(&config.storage).context("opening the blob store")?;
        let plans = Plans::new(db.clone(), config.storage.default_plan.clone());
        let uploads = Uploads::new(
            db.clone(),
            plans.clone(),
            blobs.clone(),
            UploadLimits {
                max_bytes: config.limits.max_upload_mib * 1024 * 1024,
                expiry_ms: config.limits.upload_expiry_s as i64 * 1000,
            },
            broker.clone(),
        );
        let hasher = Hasher::new(
            config.limits.password_hash_workers(),
            config.limits.password_hash_wait(),
            metrics.clone(),
        );
        let shares = crate::domain::shares::Shares::new(db.clone(), hasher.clone())
            .await
            .context("loading the share-link key")?;
        let accounts = Accounts::new(db.clone(), hasher);
        let signin_key = crate::storage::settings::put_if_absent(
            &db.pool,
            "signin_signing_key",
            &crate::auth::random_secret(),
        )
        .await
        .context("loading the sign-in key")?;
        let sealer = crate::signin::Sealer::new(signin_key.into_bytes());
        let signin =
            crate::signin::Providers::new(&config.oidc).context("setting up sign-in providers")?;
        let advertise = match &config.webrtc.webrtc_advertise {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<std::net::IpAddr>()
                        .with_context(|| format!("webrtc_advertise: `{s}` is not an IP address"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let ice_servers = crate::sfu::ice::IceServers::new(
            config.webrtc.webrtc_ice_servers.as_deref(),
            config.webrtc.webrtc_turn_secret.clone(),
            config.webrtc.webrtc_turn_ttl_s,
        )
        .map_err(anyhow::Error::msg)?;
        // The SFU's publishers feed their rooms' broadcasts (made below, after the SFU): the
        // events wait in this channel until then, in order.
        let (rtc_tx, rtc_rx) = tokio::sync::mpsc::unbounded_channel::<crate::live::rtc::RtcEvent>();
        let sfu = crate::sfu::Sfu::start(
            config.webrtc.webrtc_listen,
            advertise,
            config.webrtc.webrtc_tcp_listen,
            crate::sfu::Limits {
                viewers_per_room: config.webrtc.webrtc_max_viewers_per_room,
                peers: config.webrtc.webrtc_max_peers,
                max_send_kbps: config.live.max_ingest_kbps,
                max_forward_kbps: config.webrtc.webrtc_max_forward_mbps * 1000,
            },
            shutdown.clone(),
            {
                // A publisher connecting or leaving is the room's news: through the event path,
                // in the order it happened (one consumer), so a quick connect and leave cannot
                // arrive swapped.
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(
                    String,
                    crate::domain::events::RoomEvent,
                )>();
                let (db, broker) = (db.clone(), broker.clone());
                tokio::spawn(async move {
                    use crate::domain::events::RoomEvent;
                    // Room ids by slug: voice news comes several times a second per room. An
                    // entry goes when the room's WebRTC news ends (a deleted room's sessions
                    // end with it), so a slug used again is looked up again.
                    let mut ids: std::collections::HashMap<String, i64> = Default::default();
                    while let Some((room, event)) = rx.recv().await {
                        let over = matches!(&event, RoomEvent::Realtime { publishing: false })
                            || matches!(&event, RoomEvent::Voice { members } if members.is_empty());
                        let cached = ids.get(&room).copied();
                        let found = match cached {
                            Some(id) => Ok(Some(id)),
                            None => crate::storage::rooms::get(&db.pool, &room)
                                .await
                                .map(|r| r.map(|r| r.id)),
                        };
                        if over {
                            ids.remove(&room);
                        } else if let Ok(Some(id)) = found {
                            if ids.len() >= 10_000 {
                                ids.clear();
                            }
                            ids.insert(room.clone(), id);
                        }
                        match found {
                            Ok(Some(id)) => {
                                broker
                                    .publish(crate::domain::events::Event::room(id, event))
                                    .await;
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, room, "announcing a WebRTC publisher failed")
                            }
                        }
                    }
                });
                move |h: crate::sfu::Happening| {
                    use crate::domain::events::RoomEvent;
                    use crate::live::rtc::{FrameKind, RtcEvent};
                    use crate::sfu::{Codec, Happening, Role};
                    let realtime = |publishing| RoomEvent::Realtime { publishing };
                    let (news, event) = match h {
                        Happening::Connected {
                            room,
                            peer,
                            role: Role::Publisher,
                            audio,
                            video,
                        } => (
                            Some((room.clone(), realtime(true))),
                            RtcEvent::Connected {
                                room,
                                peer,
                                audio,
                                video,
                            },
                        ),
                        Happening::Gone {
                            room,
                            peer,
                            role: Role::Publisher,
                            deliberate,
                        } => (
                            Some((room, realtime(false))),
                            RtcEvent::Gone { peer, deliberate },
                        ),
                        Happening::Voice { room, members } => {
                            let members = members
                                .into_iter()
                                .map(|m| crate::views::VoiceMemberView {
                                    user: m.user,
                                    user_id: m.user_id.to_string(),
                                    line: m.line,
                                    muted: m.muted,
                                    held: m.held,
                                    speaking: m.speaking,
                                    camera: m.camera.is_some(),
                                    camera_line: m.camera,
                                })
                                .collect();
                            let _ = tx.send((room, RoomEvent::Voice { members }));
                            return;
                        }
                        Happening::Media(t) => (
                            None,
                            RtcEvent::Frame {
                                peer: t.peer,
                                kind: match t.codec {
                                    Codec::H264 => FrameKind::H264,
                                    Codec::Opus => FrameKind::Opus,
                                    Codec::Vp8 => FrameKind::Other("VP8"),
                                    Codec::Other => FrameKind::Other("an unknown codec"),
                                },
                                rtp_time: t.rtp_time,
                                arrived: t.arrived,
                                data: t.data,
                            },
                        ),
                        h => {
                            tracing::debug!(?h, "WebRTC session");
                            return;
                        }
                    };
                    if let Some(news) = news {
                        let _ = tx.send(news);
                    }
                    let _ = rtc_tx.send(event);
                }
            },
        )
        .await
        .with_context(|| format!("binding WebRTC UDP {}", config.webrtc.webrtc_listen))?;
        tracing::info!(addr = %sfu.local, "WebRTC media socket");
        let filled = accounts
            .backfill_skeletons()
            .await
            .context("computing username skeletons")?;
        if filled > 0 {
            tracing::info!(accounts = filled, "username skeletons computed");
        }
        // The event path (the broker is made above, for the domain services): the hub and live
        // subscribe; domain operations, the chat writer and live publish.
        let live = Live::new(
            db.clone(),
            blobs.clone(),
            broker.clone(),
            Arc::new(config.live.clone()),
            metrics.clone(),
            rtmp.local_addr()?,
        );
        let limits = ChatLimits {
            burst: config.chat.chat_rate_burst,
            per_s: config.chat.chat_rate_per_s,
        };
        let (hub, writer_rx) = Hub::new(
            db.clone(),
            limits,
            config.chat.room_buffer,
            metrics.clone(),
            Arc::new(live.clone()),
            node,
        );
        let terms = crate::domain::settings::blocked_terms(&db)
            .await
            .context("loading blocked terms")?;
        hub.set_filter(moim_filter::Filter::with_default_allowlist(
            &terms.terms,
            &terms.allowed,
        ));
        events.subscribe(Arc::new(hub.clone()));
        events.subscribe(Arc::new(live.clone()));
        {
            let sfu = sfu.clone();
            crate::live::rtc::start(
                live.clone(),
                rtc_rx,
                Arc::new(move |peer: String| {
                    let sfu = sfu.clone();
                    tokio::spawn(async move { sfu.remove(&peer).await });
                }),
            );
        }
        // After the hub, so a broadcast's `live` frame goes out before the paused party.
        let parties = {
            let metrics = metrics.clone();
            crate::domain::parties::Parties::new(
                db.clone(),
                broker.clone(),
                Arc::new(live.clone()),
                crate::domain::party::PartyConfig {
                    lead_ms: config.chat.party_lead_ms as i64,
                    max_wait_ms: config.chat.party_max_wait_ms as i64,
                },
                Arc::new(move |drift: f64| {
                    metrics
                        .party_drift
                        .observe(std::time::Duration::from_secs_f64(drift.abs().min(1e6)))
                }),
            )
        };
        events.subscribe(Arc::new(parties.clone()));
        let tools = Tools::detect(&config.library.ffmpeg, &config.library.ffprobe).await;
        if !tools.available() {
            tracing::info!(
                "ffmpeg/ffprobe not found: uploads other than H.264/AAC MP4 are refused, and \
                 videos get no thumbnails"
            );
        }
        let library = Library::new(
            db.clone(),
            blobs.clone(),
            broker.clone(),
            uploads.clone(),
            plans.clone(),
            Arc::new(config.library.clone()),
            tools,
            config.storage.data_dir.join("work"),
        );
        events.subscribe(Arc::new(library.clone()));
        let inboxes = crate::realtime::inbox::Inboxes::new();
        events.subscribe(inboxes.clone());
        let cut = uploads
            .verify()
            .await
            .context("checking unfinished uploads")?;
        if cut > 0 {
            tracing::warn!(
                uploads = cut,
                "unfinished uploads were cut back to their whole pieces"
            );
        }
        let orphans = crate::domain::videos::fail_orphans(&db)
            .await
            .context("checking videos left processing")?;
        if orphans > 0 {
            tracing::warn!(
                videos = orphans,
                "videos with no processing job were marked failed"
            );
        }
        let per_min = config.http.login_rate_per_min;
        let rooms = Rooms::new(db.clone(), broker.clone(), Arc::new(hub.clone()));
        let community = crate::domain::community::Community::new(db.clone());
        let state = AppState(Arc::new(Shared {
            accounts,
            invites: crate::domain::invites::Invites::new(rooms.clone()),
            pins: crate::domain::pins::Pins::new(
                rooms.clone(),
                community.clone(),
                Arc::new(hub.clone()),
            ),
            polls: crate::domain::polls::Polls::new(rooms.clone(), Arc::new(hub.clone())),
            rooms,
            settings: Settings::new(db.clone(), broker.clone()),
            videos: Videos::new(
                db.clone(),
                broker.clone(),
                2 * config.library.video_lease().as_millis() as i64,
            ),
            uploads: uploads.clone(),
            plans: plans.clone(),
            broker,
            blobs: blobs.clone(),
            db: db.clone(),
            hub,
            inboxes,
            shares,
            parties,
            community,
            drafts: crate::domain::drafts::Drafts::new(
                db.clone(),
                blobs.clone(),
                crate::ai::OpenAi::from_config(&config.ai)
                    .context("setting up the AI endpoint")?
                    .map(|m| Arc::new(m) as Arc<dyn crate::domain::drafts::Model>),
                config.ai.ai_drafts_per_hour,
            ),
            images: crate::domain::images::Images::new(
                db.clone(),
                blobs.clone(),
                crate::photos::Photos::new(crate::photos::PhotoLimits {
                    max_bytes: config.limits.max_image_mib * 1024 * 1024,
                    max_pixels: config.limits.max_image_megapixels * 1_000_000,
                    workers: config.limits.image_workers(),
                    queue: config.limits.image_workers() * 8,
                }),
                plans.clone(),
            ),
            metrics,
            login_by_ip: Arc::new(KeyedLimiter::new(per_min, per_min as f64 / 60.0, 100_000)),
            login_by_account: Arc::new(KeyedLimiter::new(
                per_min.min(5),
                per_min.min(5) as f64 / 60.0,
                100_000,
            )),
            signup_by_ip: Arc::new(KeyedLimiter::new(per_min, per_min as f64 / 60.0, 100_000)),
            site: crate::auth::origin::Site::new(
                config.http.public_url.as_deref(),
                config.http.trust_proxy,
            ),
            replays_by_ip: {
                let n = config.limits.replays_per_min;
                Arc::new(KeyedLimiter::new(n, n as f64 / 60.0, 100_000))
            },
            proxied_sockets: ConnLimits::new(usize::MAX, config.limits.max_connections_per_ip),
            connections,
            signin,
            sealer,
            sfu,
            ice_servers,
            webrtc_offers_by_ip: Arc::new(KeyedLimiter::new(60, 1.0, 100_000)),
            config,
            live,
            rtmp_port,
            draining: Arc::new(AtomicBool::new(false)),
            shutdown,
            sessions: TaskTracker::new(),
        }));
        Ok(Application {
            listener,
            rtmp,
            state,
            writer_rx,
            open_file_limit,
            library,
            cluster,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Where encoders publish.
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serves until `signal` resolves, then shuts down gracefully.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            rtmp,
            state,
            writer_rx,
            open_file_limit,
            library,
            cluster,
        } = self;
        let grace = state.config.http.shutdown_grace();
        let background = CancellationToken::new();
        let writer_stop = CancellationToken::new();
        let writer = tokio::spawn(realtime::writer::run(
            state.hub.clone(),
            state.broker.clone(),
            writer_rx,
            writer_stop.clone(),
        ));
        let ticker = tokio::spawn(
            state.hub.clone().run_viewer_ticker(
                Duration::from_secs(1),
                state
                    .config
                    .storage
                    .redis_url
                    .is_some()
                    .then(|| state.broker.clone()),
                background.clone(),
            ),
        );

        let janitor = tokio::spawn(janitor(
            state.db.clone(),
            state.uploads.clone(),
            state.images.clone(),
            background.clone(),
        ));
        let checkpoints = tokio::spawn(state.db.clone().checkpoint_loop(background.clone()));
        let closer = tokio::spawn(state.polls.clone().run_closer(background.clone()));
        // Video processing stops first at shutdown: a job cut short goes back to the queue.
        let processing_stop = CancellationToken::new();
        let processing = library.spawn_workers(processing_stop.clone());

        let http_stop = CancellationToken::new();
        let router = crate::http::router(state.clone());
        let admission = crate::http::serve::Admission {
            limits: state.connections.clone(),
            metrics: state.metrics.clone(),
            trust_proxy: state.config.http.trust_proxy,
            body_timeout: state.config.limits.body_timeout(),
            refusals_in_flight: crate::limits::refusals_in_flight(open_file_limit),
        };
        let server = tokio::spawn(crate::http::serve::serve(
            listener,
            router,
            http_stop.clone(),
            admission,
        ));

        let ingest = tokio::spawn(crate::live::ingest::run_listener(
            state.live.clone(),
            rtmp,
            crate::live::ingest::IngestLimits {
                connections: state.connections.clone(),
                unauthenticated: ConnLimits::new(
                    usize::MAX,
                    state.config.limits.rtmp_unauthenticated_per_ip,
                ),
                handshake_timeout: state.config.limits.rtmp_handshake_timeout(),
            },
        ));
        let live_clock = tokio::spawn(state.live.clone().run_clock());

        signal.await;
        let began = tokio::time::Instant::now();
        state.draining.store(true, Ordering::SeqCst);
        processing_stop.cancel();
        // Readiness is off; everything else goes on for the drain delay, so load balancers
        // stop sending new work here before the clients that are here are asked to move.
        let delay = state.config.http.drain_delay();
        if !delay.is_zero() {
            tracing::info!(
                delay_s = delay.as_secs(),
                "shutting down: not ready, serving on for the drain delay"
            );
            tokio::time::sleep(delay).await;
        }
        tracing::info!("shutting down: draining connections");
        state.shutdown.cancel();
        state.hub.restart_all();
        // What shutdown is waiting for, for the log when the grace period cuts it short.
        let stage = parking_lot::Mutex::new("closing WebSocket sessions");
        let drained = tokio::time::timeout(grace.saturating_sub(began.elapsed()), async {
            // Readiness stays off for a moment so load balancers notice before the port closes.
            let min_drain = tokio::time::sleep(Duration::from_millis(
                (grace.as_millis() as u64 / 4).min(1000),
            ));
            state.sessions.close();
            // Broadcasts end cleanly (ENDLIST, recordings finished) while the database is up.
            *stage.lock() = "ending broadcasts";
            state.live.shutdown().await;
            let _ = ingest.await;
            let _ = live_clock.await;
            *stage.lock() = "closing WebSocket sessions";
            state.sessions.wait().await;
            min_drain.await;
            *stage.lock() = "finishing HTTP requests";
            http_stop.cancel();
            let _ = server.await;
            *stage.lock() = "writing the last chat messages";
            writer_stop.cancel();
            let _ = writer.await;
            // The other nodes heard this one up to here: what is queued for them goes out.
            if let Some(c) = &cluster {
                *stage.lock() = "telling the other nodes the last news";
                c.close().await;
            }
        })
        .await;
        let cut_short = drained.is_err().then(|| *stage.lock());
        if let Some(stage) = cut_short {
            tracing::error!(
                ?grace,
                stage,
                websocket_sessions = state.sessions.len(),
                broadcasts = state.live.running(),
                "grace period over: shutdown cut short"
            );
        }
        background.cancel();
        for worker in processing {
            let _ = worker.await;
        }
        let _ = ticker.await;
        let _ = janitor.await;
        let _ = checkpoints.await;
        let _ = closer.await;
        state.db.pool.close().await;
        if let Some(stage) = cut_short {
            anyhow::bail!(
                "shutdown cut short after the {} s grace period while {stage}",
                grace.as_secs()
            );
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The connection limits: the configured total, lowered to fit the open-file limit (raised to
/// its hard maximum first) with a reserve for everything else that needs a descriptor.
fn connection_limits(config: &Config) -> (Arc<ConnLimits>, u64) {
    let soft = crate::limits::raise_open_file_limit();
    let budget = soft.saturating_sub(crate::limits::reserved_descriptors(soft)) as usize;
    let total = config.limits.max_connections.min(budget.max(16));
    if total < config.limits.max_connections {
        tracing::info!(
            open_file_limit = soft,
            connections = total,
            "connections capped to fit the open-file limit; raise `ulimit -n` for more"
        );
    }
    (
        ConnLimits::new(total, config.limits.max_connections_per_ip),
        soft,
    )
}

/// The local blob store, `{data_dir}/blobs`. Recordings kept before blobs existed (in
/// `{data_dir}/videos`) are moved in once.
/// The blob store `--blobs` names: the local directory, or a bucket of an S3-compatible store.
fn open_blobs(cfg: &crate::config::StorageConfig) -> anyhow::Result<Arc<dyn Blobs>> {
    if cfg.blobs == "local" {
        return local_blobs(&cfg.data_dir);
    }
    let id = cfg
        .s3_access_key_id
        .clone()
        .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok())
        .unwrap_or_default();
    let secret = match &cfg.s3_secret_access_key_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the S3 secret key file {}", path.display()))?
            .trim()
            .to_string(),
        None => std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
    };
    let s3 = crate::storage::s3::S3Config::parse(&cfg.blobs, &id, &secret)
        .map_err(|e| anyhow::anyhow!("--blobs: {e}"))?;
    tracing::info!(
        endpoint = s3.endpoint,
        bucket = s3.bucket,
        prefix = s3.prefix,
        "blobs in S3"
    );
    Ok(Arc::new(crate::storage::s3::S3Blobs::new(s3)?))
}

fn local_blobs(data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn Blobs>> {
    let root = data_dir.join("blobs");
    let old = data_dir.join("videos");
    if old.is_dir() && !root.join("videos").exists() {
        std::fs::create_dir_all(&root)?;
        std::fs::rename(&old, root.join("videos"))
            .with_context(|| format!("moving {} into {}", old.display(), root.display()))?;
        tracing::info!("recordings moved into the blob store");
    }
    Ok(Arc::new(LocalBlobs::new(root)))
}

/// Removes expired sessions and sanctions now and then, so the tables do not grow forever.
async fn janitor(
    db: crate::storage::Db,
    uploads: Uploads,
    images: crate::domain::images::Images,
    stop: CancellationToken,
) {
    // Often enough that an expired upload's bytes do not linger long past their expiry.
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match uploads.expire().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "expired uploads removed"),
            Err(e) => tracing::warn!(error = %e, "removing expired uploads failed"),
        }
        match images.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(photos = n, "photos no post took were removed"),
            Err(e) => tracing::warn!(error = %e, "removing unused photos failed"),
        }
        let now = crate::storage::now_ms();
        let sessions = crate::storage::users::delete_expired_sessions(&db.pool, now).await;
        let sanctions = crate::storage::rooms::delete_expired_sanctions(&db.pool, now).await;
        let trust = crate::storage::users::delete_stale_trust(
            &db.pool,
            now - crate::domain::accounts::DEVICE_TRUST_MS,
        )
        .await;
        if let Err(e) = crate::storage::identities::delete_expired_states(&db.pool, now).await {
            tracing::warn!(error = %e, "forgetting spent sign-in states failed");
        }
        match (sessions, sanctions, trust) {
            (Ok(a), Ok(b), Ok(c)) if a + b + c > 0 => {
                tracing::debug!(
                    sessions = a,
                    sanctions = b,
                    sign_in_sources = c,
                    "expired rows removed"
                )
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                tracing::warn!(error = %e, "cleanup failed")
            }
            _ => {}
        }
    }
}
