//! The `moim` binary: parse flags, set up logging, run the server until SIGTERM or Ctrl-C.

use clap::Parser;
use moim::app::Application;
use moim::config::{Cli, Command, Config, LogFormat};

/// mimalloc rather than glibc's malloc: forwarding media allocates and frees a buffer per
/// packet, and with glibc that was a tenth of the SFU's time (`docs/benchmarks.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
    };
    let config = Config::load(&args)?;
    moim::telemetry::init(config.http.log_format == LogFormat::Json);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.http.worker_threads {
        runtime.worker_threads(n);
    }
    runtime.enable_all().build()?.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Listening for SIGTERM before anything starts: a signal that arrives while moim is still
    // starting must begin a graceful shutdown, not kill it by the default action.
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(not(unix))]
    let term = None::<()>;
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    let rtmp = app.rtmp_addr();
    tracing::info!(%addr, %rtmp, "moim is running: open http://{addr}");
    // A machine-readable line on stdout for scripts and tests that start moim on port 0.
    println!("moim listening on http://{addr}");
    println!("moim rtmp on rtmp://{rtmp}/live");
    app.run_until(shutdown_signal(term)).await
}

#[cfg(unix)]
type Term = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Term = Option<()>;

async fn shutdown_signal(term: Term) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async move {
        match term {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = async move {
        let _ = term;
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
