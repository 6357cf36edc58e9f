//! The domain layer, between the HTTP edge and storage: one module per capability. Each
//! operation checks the [`policy`], writes to storage in one transaction, and publishes what it
//! changed on the [`events`] path; subscribers (the rooms hub, live) react. Owns no HTTP types
//! and no sockets: handlers map [`Error`] to responses, and nothing here touches the hub.

pub mod accounts;
pub mod community;
pub mod drafts;
pub mod events;
pub mod images;
pub mod invites;
pub mod parties;
pub mod party;
pub mod pins;
pub mod plans;
pub mod policy;
pub mod polls;
pub mod rank;
pub mod rooms;
pub mod search;
pub mod settings;
pub mod shares;
pub mod streams;
pub mod tally;
pub mod text;
pub mod uploads;
pub mod videos;

use std::collections::HashSet;

use crate::storage::DbError;
use crate::views::LiveView;

/// Why a domain operation did not happen. The HTTP edge maps each to its status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is wrong; `code` is a snake_case reason.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The caller must sign in first.
    #[error("login required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Bigger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// Bigger than allowed, with a reason of its own (413).
    #[error("{message}")]
    Oversized { code: &'static str, message: String },
    /// Not a kind of content moim takes (415).
    #[error("{message}")]
    Unsupported { code: &'static str, message: String },
    /// Well-formed but wrong: each named field says what is wrong with it (422).
    #[error("{message}")]
    Unprocessable {
        message: String,
        fields: Vec<(&'static str, String)>,
    },
    /// Over what the caller's plan allows.
    #[error("{0}")]
    QuotaExceeded(String),
    /// It existed and is over (an expired, used-up or revoked share link).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// This needs a password (`code` says whether one was given and was wrong).
    #[error("{message}")]
    PasswordRequired { code: &'static str, message: String },
    /// Not offered on this server (404 with its own code).
    #[error("{message}")]
    Disabled { code: &'static str, message: String },
    /// A service moim relies on failed (502).
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    /// The caller is going too fast; come back after `retry_after_s` (429).
    #[error("too many requests")]
    RateLimited { retry_after_s: u64 },
    /// A bounded resource is saturated; come back after `retry_after_s`.
    #[error("{message}")]
    Busy { message: String, retry_after_s: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(what: &str) -> Error {
        Error::NotFound(format!("{what} not found"))
    }
    pub fn forbidden() -> Error {
        Error::Forbidden("you are not allowed to do that".into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What this node knows about a room right now, beyond the database: who is watching and
/// whether it is live. The rooms hub answers it.
pub trait Presence: Send + Sync {
    /// Distinct viewers: connected to the room, plus those watching only its stream.
    fn viewers(&self, room_id: i64, slug: &str) -> usize;
    /// The room's broadcast while one runs.
    fn live(&self, slug: &str) -> Option<LiveView>;
}

/// A room's chat as the domain needs it; the rooms hub answers it.
pub trait RoomChat: Send + Sync {
    /// `text` with the site's blocked terms masked, as chat messages are.
    fn mask(&self, text: &str) -> String;
    /// Writes a line the server wrote (`kind` says about what) in a room's chat under
    /// `author`, in order with the room's messages; false when the chat writer is full or
    /// stopping.
    fn notice(&self, room_id: i64, author: (i64, String), text: String, kind: &'static str)
        -> bool;
}

/// The broadcasts running on this node, as the rooms hub needs them. `live` answers it.
pub trait Streams: Send + Sync {
    /// The room's broadcast while one runs.
    fn status(&self, slug: &str) -> Option<LiveView>;
    /// Viewers of the room's stream that are not among `connected()` (client hashes of the
    /// room's sockets, see `live::client_hash`), asked only while the room is live.
    fn stream_only_viewers(&self, slug: &str, connected: &dyn Fn() -> HashSet<u64>) -> usize;
}
