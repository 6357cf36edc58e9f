//! The WebRTC SFU inside moim: broadcasts published by WHIP and watched by WHEP, forwarded
//! without decoding. [`core`] is sans-IO (str0m's `Rtc` per peer, on whatever clock it is
//! given); [`driver`] owns the one UDP socket and the real clock and takes commands from the
//! HTTP edge. Owns no routes or permissions (those are `http::webrtc`'s and `domain::policy`'s).

pub mod core;
pub mod driver;
pub mod ice;
pub mod simulcast;

pub use self::core::{
    Codec, Ending, Happening, Limits, PeerId, Role, SfuError, Tapped, VoiceMember, VOICE_CAMERAS,
    VOICE_LINES, VOICE_MEMBERS,
};
pub use driver::Sfu;
