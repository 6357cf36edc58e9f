//! Building and running the application: shared state, background tasks, and the shutdown
//! sequence (readiness off → WebSocket clients told to reconnect → HTTP drained → chat writes
//! flushed → exit), bounded by the grace period.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::limiter::KeyedLimiter;
use crate::config::Config;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::realtime::{self, ChatLimits, Hub};
use crate::storage::Db;

/// State shared by every handler and task: one pointer, so the clone axum makes for every
/// extractor and middleware is a single reference-count bump (a struct of a dozen `Arc`s cost
/// ~8 % of a busy HLS server in atomic increments and decrements).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points at.
pub struct Shared {
    pub db: Db,
    pub hub: Hub,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub login_by_ip: Arc<KeyedLimiter<IpAddr>>,
    pub login_by_account: Arc<KeyedLimiter<String>>,
    pub signup_by_ip: Arc<KeyedLimiter<IpAddr>>,
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

/// A built, bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    rtmp: TcpListener,
    state: AppState,
    writer_rx: tokio::sync::mpsc::Receiver<realtime::writer::Pending>,
}

impl Application {
    /// Connects storage, loads settings and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let db = Db::connect(config.database_url.as_deref(), &config.data_dir).await?;
        let metrics = Arc::new(Metrics::default());
        let limits = ChatLimits {
            burst: config.chat_rate_burst,
            per_s: config.chat_rate_per_s,
        };
        let (hub, writer_rx) = Hub::new(db.clone(), limits, config.room_buffer, metrics.clone());
        crate::http::admin::load_filter(&db, &hub)
            .await
            .context("loading blocked terms")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let rtmp = TcpListener::bind(config.rtmp_listen)
            .await
            .with_context(|| format!("binding RTMP {}", config.rtmp_listen))?;
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
        let live = Live::new(
            db.clone(),
            hub.clone(),
            config.clone(),
            metrics.clone(),
            rtmp.local_addr()?,
        );
        let per_min = config.login_rate_per_min.max(1);
        let state = AppState(Arc::new(Shared {
            db,
            hub,
            metrics,
            login_by_ip: Arc::new(KeyedLimiter::new(per_min, per_min as f64 / 60.0, 100_000)),
            login_by_account: Arc::new(KeyedLimiter::new(
                per_min.min(5),
                per_min.min(5) as f64 / 60.0,
                100_000,
            )),
            signup_by_ip: Arc::new(KeyedLimiter::new(per_min, per_min as f64 / 60.0, 100_000)),
            config,
            live,
            rtmp_port,
            draining: Arc::new(AtomicBool::new(false)),
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
        }));
        Ok(Application {
            listener,
            rtmp,
            state,
            writer_rx,
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
        } = self;
        let grace = state.config.shutdown_grace;
        let background = CancellationToken::new();
        let writer_stop = CancellationToken::new();
        let writer = tokio::spawn(realtime::writer::run(
            state.hub.clone(),
            writer_rx,
            writer_stop.clone(),
        ));
        let ticker = tokio::spawn(
            state
                .hub
                .clone()
                .run_viewer_ticker(Duration::from_secs(1), background.clone()),
        );

        let janitor = tokio::spawn(janitor(state.db.clone(), background.clone()));
        let checkpoints = tokio::spawn(state.db.clone().checkpoint_loop(background.clone()));

        let http_stop = CancellationToken::new();
        let router = crate::http::router(state.clone());
        let server = tokio::spawn(crate::http::serve::serve(
            listener,
            router,
            http_stop.clone(),
        ));

        let ingest = tokio::spawn(crate::live::ingest::run_listener(state.live.clone(), rtmp));
        let live_viewers = tokio::spawn(state.live.clone().run_viewer_ticker());

        signal.await;
        tracing::info!("shutting down: draining connections");
        state.draining.store(true, Ordering::SeqCst);
        state.shutdown.cancel();
        state.hub.restart_all();
        let drained = tokio::time::timeout(grace, async {
            // Readiness stays off for a moment so load balancers notice before the port closes.
            let min_drain = tokio::time::sleep(Duration::from_millis(
                (grace.as_millis() as u64 / 4).min(1000),
            ));
            state.sessions.close();
            // Broadcasts end cleanly (ENDLIST, recordings finished) while the database is up.
            state.live.shutdown().await;
            let _ = ingest.await;
            let _ = live_viewers.await;
            state.sessions.wait().await;
            min_drain.await;
            http_stop.cancel();
            let _ = server.await;
            writer_stop.cancel();
            let _ = writer.await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(?grace, "grace period over; exiting with work unfinished");
        }
        background.cancel();
        let _ = ticker.await;
        let _ = janitor.await;
        let _ = checkpoints.await;
        state.db.pool.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Removes expired sessions and sanctions now and then, so the tables do not grow forever.
async fn janitor(db: crate::storage::Db, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::storage::now_ms();
        let sessions = crate::storage::users::delete_expired_sessions(&db.pool, now).await;
        let sanctions = crate::storage::rooms::delete_expired_sanctions(&db.pool, now).await;
        match (sessions, sanctions) {
            (Ok(a), Ok(b)) if a + b > 0 => {
                tracing::debug!(sessions = a, sanctions = b, "expired rows removed")
            }
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "cleanup failed"),
            _ => {}
        }
    }
}
