//! moim's live media core, free of I/O.
//!
//! Every type here is driven by bytes in and bytes (or events) out; the server's tokio tasks own
//! the sockets and the clock. That keeps the parsers of untrusted bytes fuzzable and the
//! segmenter testable in simulated time.
//!
//! - [`amf0`]: AMF0 values (RTMP command and data messages).
//! - [`rtmp`]: the server side of RTMP: handshake, chunk stream, publish session.
//! - [`flv`], [`avc`], [`aac`]: FLV audio/video tag bodies and their codec configuration;
//!   [`opus`] and [`audio`]: Opus packets from WebRTC publishers, and the audio codec either way.
//! - [`rtc`]: a WebRTC publisher's depacketized frames (H.264 Annex B, Opus) into the segmenter.
//! - [`fmp4`]: CMAF / fragmented MP4 boxes (init segment, `moof` + `mdat` fragments).
//! - [`segmenter`]: cuts samples into LL-HLS parts and keyframe-aligned segments.
//! - [`playlist`]: LL-HLS media and multivariant playlists.
//! - [`mp4`]: stored MP4/QuickTime files (the `moov` via mp4parse) remuxed into CMAF segments.
//! - [`image`]: still pictures' format and size from their headers, before any decoding.

pub mod aac;
pub mod amf0;
pub mod audio;
pub mod avc;
pub mod flv;
pub mod fmp4;
pub mod image;
pub mod mp4;
pub mod opus;
pub mod playlist;
pub mod rtc;
pub mod rtmp;
pub mod segmenter;

#[cfg(test)]
mod corpus_tests;

/// The crate's source folder, for tests that read files next to the code (corpora, golden
/// files). Asked at run time: a test binary reused from another checkout of the same sources
/// (cargo's cache sees no change) must read this checkout's files.
#[cfg(test)]
fn source_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
}
