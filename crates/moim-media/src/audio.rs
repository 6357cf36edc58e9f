//! The audio track's codec, whichever the publisher sent: AAC from RTMP encoders and stored
//! files, Opus from WebRTC publishers. Both are carried into CMAF as they came.

use crate::aac::AacConfig;
use crate::opus::{self, OpusConfig};

/// An audio track's decoder configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioConfig {
    Aac(AacConfig),
    Opus(OpusConfig),
}

impl AudioConfig {
    /// The track's timescale: the AAC core rate, or Opus's fixed 48 kHz.
    pub fn sample_rate(&self) -> u32 {
        match self {
            AudioConfig::Aac(a) => a.sample_rate,
            AudioConfig::Opus(_) => opus::SAMPLE_RATE,
        }
    }

    pub fn channels(&self) -> u8 {
        match self {
            AudioConfig::Aac(a) => a.channels,
            AudioConfig::Opus(o) => o.channels,
        }
    }

    /// The RFC 6381 `CODECS` value (`mp4a.40.2`, `opus`).
    pub fn codec_string(&self) -> String {
        match self {
            AudioConfig::Aac(a) => a.codec_string(),
            AudioConfig::Opus(o) => o.codec_string(),
        }
    }

    /// Samples `frame` plays, in the track's timescale; `None` for a malformed Opus packet.
    pub fn frame_samples(&self, frame: &[u8]) -> Option<u32> {
        match self {
            AudioConfig::Aac(a) => Some(a.samples_per_frame()),
            AudioConfig::Opus(_) => opus::packet_samples(frame).ok(),
        }
    }
}

impl From<AacConfig> for AudioConfig {
    fn from(c: AacConfig) -> Self {
        AudioConfig::Aac(c)
    }
}

impl From<OpusConfig> for AudioConfig {
    fn from(c: OpusConfig) -> Self {
        AudioConfig::Opus(c)
    }
}
