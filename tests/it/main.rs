//! Integration tests: the real server binary over HTTP and WebSocket, against SQLite and
//! PostgreSQL (each test runs once per backend), plus the browser suite.

mod helpers;

/// Declares each listed `async fn name(backend)` as one test per backend.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = $crate::helpers::Backend::postgres().await {
                        super::$name(b).await
                    }
                }
            )*
        }
    };
}

mod abuse;
mod accounts;
mod blobs;
mod browser;
mod chat;
mod cluster;
mod community;
mod deploy;
mod drafts;
mod layering;
mod library;
mod lifecycle;
mod live;
mod live_abr;
mod moderation;
mod party;
mod planning;
mod policy;
mod rooms;
mod schema;
mod signin;
mod storage;
mod uploads;
mod webrtc;
