//! Storage: the database (embedded SQLite by default, PostgreSQL by URL).
//!
//! One pool of sqlx's `Any` driver and one set of portable SQL (`$N` placeholders, `RETURNING`,
//! `ON CONFLICT`) serves both backends; each backend keeps its own migrations folder. Functions
//! here are plain async functions per aggregate with the SQL in view, taking an executor ([`Exec`])
//! so a domain operation can run several in one transaction. Byte objects live in [`blobs`].

pub mod blobs;
pub mod comments;
pub mod identities;
pub mod images;

pub mod jobs;
pub mod live;
pub mod messages;
pub mod planning;
pub mod plans;
pub mod posts;

pub mod rooms;
pub mod s3;
pub mod settings;
pub mod shares;
pub mod uploads;
pub mod users;
pub mod videos;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use sqlx::Error as DbError;

/// What a storage function runs its SQL on: the pool, a connection, or a transaction
/// (`&mut *tx`), so a domain operation can put several of them in one transaction.
pub trait Exec<'c>: sqlx::Executor<'c, Database = sqlx::Any> {}
impl<'c, T: sqlx::Executor<'c, Database = sqlx::Any>> Exec<'c> for T {}

/// Which SQL engine backs a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

impl Db {
    /// Connects (creating the SQLite file if needed) and runs migrations.
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let url = match url {
            Some(u) => u.to_string(),
            None => {
                let path = data_dir.join("moim.db");
                format!("sqlite://{}?mode=rwc", path.display())
            }
        };
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!("database URL must start with sqlite: or postgres://");
        };
        let opts = AnyConnectOptions::from_str(&url)
            .context("parsing database URL")?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let mut pool = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        pool = match backend {
            // WAL lets readers run beside the one writer; NORMAL sync keeps every commit across a
            // process crash (kill -9), which is the durability chat promises.
            Backend::Sqlite => pool.max_connections(8).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    // Checkpoints happen in the background (`checkpoint_loop`); this is only a
                    // safety net, so the chat writer's commits do not pay for them.
                    conn.execute("PRAGMA wal_autocheckpoint = 20000").await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool.max_connections(16),
        };
        let pool = pool
            .connect_with(opts)
            .await
            .context("connecting to the database")?;
        let db = Db { pool, backend };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.pool).await,
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await
            }
        }
        .context("running database migrations")
    }
}

impl Db {
    /// A transaction for work that writes, reading first or not. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a plain `BEGIN` that reads and then writes fails with
    /// `SQLITE_BUSY_SNAPSHOT` if another connection (the chat writer, say) committed in between,
    /// which `busy_timeout` does not retry; this way it waits its turn instead.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, DbError> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// SQLite only: moves the WAL into the database file every second, off the writer's path
    /// (a checkpoint syncs files and would otherwise stall whichever commit triggered it).
    pub async fn checkpoint_loop(self, stop: tokio_util::sync::CancellationToken) {
        if self.backend != Backend::Sqlite {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await
            {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    }
}

/// Text of an enum stored in a column, and back; unknown text is a decode error.
macro_rules! column_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
            pub(crate) fn parse(s: &str) -> Result<$ty, $crate::storage::DbError> {
                match s {
                    $($text => Ok($ty::$variant),)*
                    other => Err($crate::storage::DbError::Decode(
                        format!("unknown {} `{other}`", stringify!($ty)).into(),
                    )),
                }
            }
        }
    };
}

pub(crate) use column_enum;

/// True when `err` is a unique-constraint violation (both backends).
pub fn is_unique_violation(err: &DbError) -> bool {
    match err {
        DbError::Database(e) => {
            e.is_unique_violation() || e.code().is_some_and(|c| c == "23505" || c == "2067")
        }
        _ => false,
    }
}

/// Milliseconds since the Unix epoch.
/// Ids written into an `IN (…)` list: integers only, so nothing can be injected.
pub fn id_list(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 8);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 text for a unix-ms timestamp.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::rooms::SanctionKind;
    use super::users::Role;
    use super::videos::{VideoSource, VideoStatus};

    #[test]
    fn column_enums_round_trip_and_refuse_unknown_text() {
        for s in [
            VideoStatus::Processing,
            VideoStatus::Ready,
            VideoStatus::Failed,
        ] {
            assert_eq!(VideoStatus::parse(s.as_str()).unwrap(), s);
        }
        for s in [VideoSource::Live, VideoSource::Upload] {
            assert_eq!(VideoSource::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert_eq!(
            SanctionKind::parse("timeout").unwrap(),
            SanctionKind::Timeout
        );
        // No silent default: a value this version does not know is an error, with its name.
        let err = Role::parse("superuser").unwrap_err().to_string();
        assert!(err.contains("Role") && err.contains("superuser"), "{err}");
        assert!(VideoStatus::parse("Ready").is_err());
        assert!(SanctionKind::parse("").is_err());
    }
}
