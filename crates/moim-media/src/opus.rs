//! Opus in CMAF: the decoder configuration of the `Opus` sample entry (`dOps`, "Encapsulation of
//! Opus in ISO Base Media File Format" §4.3.2) and how long a packet plays, read from its
//! table-of-contents byte (RFC 6716 §3.1).
//!
//! A WebRTC publisher's audio is Opus; it is carried into LL-HLS and recordings as it came,
//! never decoded, so each packet's duration must be read from the packet itself (WebRTC sends
//! 20 ms packets by default, but 10 to 120 ms are legal and a sender may change mid-stream).
//! Packets are untrusted bytes: anything RFC 6716 calls malformed is an [`OpusError`].

/// Opus always runs its timeline at 48 kHz, whatever the input rate (RFC 7845 §4).
pub const SAMPLE_RATE: u32 = 48_000;

/// Longest packet RFC 6716 allows: 120 ms.
const MAX_PACKET_SAMPLES: u32 = 5_760;

/// Why a packet's duration could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpusError {
    #[error("an empty Opus packet")]
    Empty,
    #[error("an Opus code 3 packet without its frame count byte")]
    NoFrameCount,
    #[error("an Opus packet of {0} frames (1 or more, at most 120 ms in all)")]
    FrameCount(u32),
}

/// The `dOps` configuration of an Opus track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusConfig {
    /// Output channels: 1 or 2 (mapping family 0).
    pub channels: u8,
    /// Samples (at 48 kHz) to drop at the start of decoding.
    pub pre_skip: u16,
    /// The sender's input rate, informational.
    pub input_rate: u32,
}

impl OpusConfig {
    /// A WebRTC stream's: `opus/48000/2` (RFC 7587 always signals two channels; a mono sender
    /// decodes to both). Cut in mid-stream, so nothing is skipped.
    pub fn webrtc() -> Self {
        Self {
            channels: 2,
            pre_skip: 0,
            input_rate: SAMPLE_RATE,
        }
    }

    /// The RFC 6381 `CODECS` value.
    pub fn codec_string(&self) -> String {
        "opus".into()
    }

    /// The `dOps` box body (big-endian, version 0, channel mapping family 0).
    pub fn dops(&self) -> [u8; 11] {
        let mut b = [0u8; 11];
        b[1] = self.channels;
        b[2..4].copy_from_slice(&self.pre_skip.to_be_bytes());
        b[4..8].copy_from_slice(&self.input_rate.to_be_bytes());
        // Output gain 0 dB (b[8..10]) and mapping family 0 (b[10]).
        b
    }
}

/// How many 48 kHz samples `packet` plays, from its TOC byte and, for code 3, its frame count.
pub fn packet_samples(packet: &[u8]) -> Result<u32, OpusError> {
    let (&toc, rest) = packet.split_first().ok_or(OpusError::Empty)?;
    let config = toc >> 3;
    // Frame sizes in 48 kHz samples (RFC 6716 Table 2): SILK-only 10/20/40/60 ms, hybrid
    // 10/20 ms, CELT-only 2.5/5/10/20 ms.
    let per_frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0b11 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(rest.first().ok_or(OpusError::NoFrameCount)? & 0x3f),
    };
    let total = per_frame * frames;
    if frames == 0 || total > MAX_PACKET_SAMPLES {
        return Err(OpusError::FrameCount(frames));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_the_toc() {
        // config 31 (CELT FB 20 ms), code 0: what WebRTC sends.
        assert_eq!(packet_samples(&[0xf8, 1, 2]), Ok(960));
        // config 1 (SILK NB 20 ms), code 1: two frames.
        assert_eq!(packet_samples(&[0x09]), Ok(1920));
        // config 3 (SILK NB 60 ms), code 3 with two frames: 120 ms, the most allowed.
        assert_eq!(packet_samples(&[0x1b, 0x02]), Ok(5760));
        // config 16 (CELT NB 2.5 ms), code 3 with 48 frames: 120 ms.
        assert_eq!(packet_samples(&[0x83, 48]), Ok(5760));
        // config 13 (hybrid SWB 20 ms), code 2.
        assert_eq!(packet_samples(&[0x6a]), Ok(1920));
    }

    #[test]
    fn malformed_packets_are_refused() {
        assert_eq!(packet_samples(&[]), Err(OpusError::Empty));
        assert_eq!(packet_samples(&[0x03]), Err(OpusError::NoFrameCount));
        assert_eq!(packet_samples(&[0x03, 0]), Err(OpusError::FrameCount(0)));
        // 60 ms × 3 = 180 ms: over the limit.
        assert_eq!(packet_samples(&[0x1b, 3]), Err(OpusError::FrameCount(3)));
    }

    #[test]
    fn dops_is_version_zero_family_zero() {
        let d = OpusConfig {
            channels: 2,
            pre_skip: 312,
            input_rate: 48_000,
        }
        .dops();
        assert_eq!(d, [0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]);
    }
}
