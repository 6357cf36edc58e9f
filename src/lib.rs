//! moim: a self-hosted real-time video community server. This crate is the server; `main.rs`
//! only parses the command line and runs [`app::Application`].

/// The crate's source folder, for tests that read files next to the code (fuzz corpora). Asked
/// at run time: a test binary reused from another checkout of the same sources (cargo's cache
/// sees no change) must read this checkout's files, not the path it was compiled at.
#[cfg(test)]
macro_rules! source_dir {
    () => {
        std::path::PathBuf::from(
            std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
        )
    };
}

pub mod ai;
pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod http;
pub mod library;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod photos;
pub mod realtime;
pub mod sfu;
pub mod signin;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod views;
