//! moim: a self-hosted real-time video community server. This crate is the server; `main.rs`
//! only parses the command line and runs [`app::Application`].

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod http;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod realtime;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod views;
