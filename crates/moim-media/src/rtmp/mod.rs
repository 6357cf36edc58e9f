//! The server side of an RTMP publish session, as OBS and ffmpeg speak it, without I/O.
//!
//! [`ServerSession`] owns the handshake, the chunk stream (both directions), the protocol
//! control messages and the NetConnection/NetStream commands of a publisher. It owns no socket
//! and no clock: the caller reads the socket and hands the bytes to [`ServerSession::feed`],
//! writes [`ServerSession::take_output`] back, and acts on [`ServerSession::poll_event`]. Whether a
//! stream key is valid, and what happens to the audio/video tags, is the caller's business; so is
//! FLV tag parsing ([`crate::flv`]). Playback over RTMP is refused: this is an ingest server.
//!
//! A typical driver loop:
//!
//! ```no_run
//! # use moim_media::rtmp::{Event, ServerSession};
//! # fn read() -> Vec<u8> { Vec::new() }
//! # fn write(_: &[u8]) {}
//! let mut session = ServerSession::new(Default::default());
//! loop {
//!     let result = session.feed(&read());
//!     write(&session.take_output()); // also after an error: it may explain the refusal
//!     if result.is_err() {
//!         break;
//!     }
//!     while let Some(event) = session.poll_event() {
//!         match event {
//!             Event::Publish { .. } => {
//!                 session.accept_publish();
//!                 write(&session.take_output());
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//! ```

mod chunk;
mod handshake;
mod message;
mod session;
#[cfg(test)]
mod tests;

pub use session::ServerSession;

use bytes::Bytes;
use thiserror::Error;

use crate::amf0::{self, Amf0Error};

/// Largest chunk size we accept from a peer. The protocol allows 2^31-1, but a chunk is only a
/// framing unit and nobody needs more than a few KiB; 16 MiB keeps the spec's intent reachable.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Most chunk streams a peer may open. Publishers use about five (control, commands, audio,
/// video, data).
pub const MAX_CHUNK_STREAMS: usize = 64;
/// Most messages that may be half-received at once, across all chunk streams.
pub const MAX_PARTIAL_MESSAGES: usize = 8;

/// Limits and announced parameters of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Largest message (e.g. one video frame) accepted, in bytes. Half-received messages may
    /// together declare at most twice this.
    pub max_message_bytes: usize,
    /// Window Acknowledgement Size announced to the peer on `connect`; also how often we
    /// acknowledge received bytes unless the peer announces its own window. 0 disables our acks.
    pub window_ack_size: u32,
    /// Chunk size for what we send, announced with Set Chunk Size on `connect`.
    pub out_chunk_size: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_message_bytes: 4 * 1024 * 1024,
            window_ack_size: 2_500_000,
            out_chunk_size: 4096,
        }
    }
}

/// Something the caller must know or decide about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The peer sent `connect`; the session has already answered it with success.
    Connected {
        /// The application name (the first path segment of the RTMP URL).
        app: String,
        /// The full URL the client connected to, if it said so.
        tc_url: Option<String>,
    },
    /// The peer wants to publish. Nothing has been answered yet: call
    /// [`ServerSession::accept_publish`] or [`ServerSession::reject_publish`] before feeding more
    /// input, because a client that gets no answer sends no media.
    Publish {
        /// The application name given on `connect`.
        app: String,
        /// The stream name with any `?query` removed.
        stream_key: String,
        /// `live`, `record` or `append`; `live` when the client left it out.
        publish_type: String,
    },
    /// A data message (`@setDataFrame`, `onMetaData`, …) after publishing was accepted. The
    /// values are as sent, minus a leading `@setDataFrame`; normally
    /// `["onMetaData", EcmaArray]`. One that is not valid AMF0 is dropped, not an error.
    Metadata(Vec<amf0::Value>),
    /// A video message: an FLV video tag body, as is.
    Video {
        /// Milliseconds on the publisher's clock, extended to 64 bits across the 32-bit wrap.
        timestamp: u64,
        /// The tag body.
        data: Bytes,
    },
    /// An audio message: an FLV audio tag body, as is.
    Audio {
        /// Milliseconds on the same timeline as video.
        timestamp: u64,
        /// The tag body.
        data: Bytes,
    },
    /// The peer stopped publishing (`FCUnpublish`, `deleteStream` or `closeStream`). Sent once,
    /// and only after a [`Event::Publish`].
    Unpublish,
}

/// Why a session was ended. Every variant means the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtmpError {
    /// The first byte (C0) asked for a protocol version other than 3 (e.g. 6, encrypted RTMPE).
    #[error("unsupported RTMP version {0}")]
    UnsupportedVersion(u8),
    /// Set Chunk Size with 0 or the reserved high bit set.
    #[error("invalid chunk size {0}")]
    InvalidChunkSize(u32),
    /// Set Chunk Size above [`MAX_CHUNK_SIZE`].
    #[error("chunk size {size} above the limit of {MAX_CHUNK_SIZE}")]
    ChunkTooLarge {
        /// Requested size.
        size: u32,
    },
    /// A message header declared more than `max_message_bytes`, or the half-received messages
    /// together would exceed twice that.
    #[error("message of {size} bytes above the limit of {max}")]
    MessageTooLarge {
        /// Declared size.
        size: usize,
        /// The limit it broke.
        max: usize,
    },
    /// A chunk with header type 1, 2 or 3 on a chunk stream that never had a full header.
    #[error("chunk stream {0} used before its first full header")]
    UnknownChunkStream(u32),
    /// More than [`MAX_CHUNK_STREAMS`] chunk streams.
    #[error("more than {MAX_CHUNK_STREAMS} chunk streams")]
    TooManyChunkStreams,
    /// More than [`MAX_PARTIAL_MESSAGES`] messages half-received at once.
    #[error("more than {MAX_PARTIAL_MESSAGES} interleaved partial messages")]
    TooManyPartialMessages,
    /// A command message was not valid AMF0.
    #[error("bad AMF0 in command: {0}")]
    Amf(#[from] Amf0Error),
    /// Audio or video before publishing was accepted.
    #[error("media received before publishing was accepted")]
    MediaBeforePublish,
    /// The peer asked to play; the answer (NetStream.Play.Failed) is in the output.
    #[error("playback requested; this server only ingests")]
    PlayRefused,
    /// Some other violation of the protocol or of the command sequence.
    #[error("RTMP protocol violation: {0}")]
    Protocol(&'static str),
    /// Input fed after the session had already failed.
    #[error("session already failed")]
    Closed,
}
