//! AAC decoder configuration: the `AudioSpecificConfig` of ISO 14496-3 §1.6.2.1.
//!
//! It arrives in the FLV AAC sequence header and goes verbatim into the `esds` box; we read
//! only the object type, sampling rate and channel count, which the `mp4a` sample entry, the
//! audio track timescale and the RFC 6381 codec string need.
//!
//! Channel configuration 0 (layout given by a program config element) is refused rather than
//! guessed: no RTMP encoder we target sends it, and a wrong guess would play as silence or noise.

use bytes::Bytes;

/// Why an `AudioSpecificConfig` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AacError {
    /// The config ended before the channel configuration.
    #[error("truncated AudioSpecificConfig")]
    Truncated,
    /// A reserved sampling frequency index (13 or 14), or an explicit rate of 0.
    #[error("invalid AAC sampling frequency index {0}")]
    SampleRate(u8),
    /// Channel configuration 0 (program config element) or a reserved value.
    #[error("unsupported AAC channel configuration {0} (1-7 are accepted)")]
    ChannelConfig(u8),
}

/// A parsed `AudioSpecificConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type: 2 for AAC-LC, 5 for HE-AAC (SBR), 29 for HE-AACv2 (PS).
    pub object_type: u8,
    /// Sampling rate of the AAC core in Hz; also the audio track's timescale.
    ///
    /// For explicitly signalled HE-AAC this is the core rate (half the output rate), which keeps
    /// one frame at 1024 ticks.
    pub sample_rate: u32,
    /// Output channel count.
    pub channels: u8,
    /// The config exactly as received, for the `esds` box.
    pub raw: Bytes,
}

/// Rates by `samplingFrequencyIndex`; 13 and 14 are reserved, 15 means "explicit".
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

impl AacConfig {
    /// Parses an `AudioSpecificConfig` (the payload of an FLV AAC sequence header).
    pub fn parse(asc: &Bytes) -> Result<Self, AacError> {
        let mut b = Bits { data: asc, bit: 0 };
        let mut object_type = b.bits(5)? as u8;
        if object_type == 31 {
            // Escape: 32 + a 6-bit extension, so at most 95 and still a u8.
            object_type = 32 + b.bits(6)? as u8;
        }
        let index = b.bits(4)? as u8;
        let sample_rate = match index {
            15 => b.bits(24)?,
            i => *SAMPLE_RATES
                .get(usize::from(i))
                .ok_or(AacError::SampleRate(i))?,
        };
        if sample_rate == 0 {
            return Err(AacError::SampleRate(index));
        }
        let config = b.bits(4)? as u8;
        let channels = match config {
            1..=6 => config,
            7 => 8,
            other => return Err(AacError::ChannelConfig(other)),
        };
        // The rest (GASpecificConfig, SBR/PS extension) matters to the decoder only, which gets
        // the raw bytes.
        Ok(Self {
            object_type,
            sample_rate,
            channels,
            raw: asc.clone(),
        })
    }

    /// The RFC 6381 `CODECS` value, e.g. `mp4a.40.2` for AAC-LC.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// PCM samples per AAC frame at [`Self::sample_rate`], i.e. one frame's duration in the
    /// audio track's timescale. The 960-sample variant is not produced by RTMP encoders.
    pub fn samples_per_frame(&self) -> u32 {
        1024
    }
}

/// MSB-first bit reader; the config is a few bytes, so simplicity wins over speed.
struct Bits<'a> {
    data: &'a [u8],
    bit: usize,
}

impl Bits<'_> {
    fn bits(&mut self, n: usize) -> Result<u32, AacError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.data.get(self.bit / 8).ok_or(AacError::Truncated)?;
            v = (v << 1) | u32::from(byte >> (7 - self.bit % 8) & 1);
            self.bit += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<AacConfig, AacError> {
        AacConfig::parse(&Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn lc_44k_stereo_from_ffmpeg() {
        // ffmpeg's native AAC encoder appends an explicit "no SBR" sync extension (0x2b7).
        let c = parse(&[0x12, 0x10, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44_100, 2));
        assert_eq!(c.codec_string(), "mp4a.40.2");
        assert_eq!(c.samples_per_frame(), 1024);
        assert_eq!(&c.raw[..], [0x12, 0x10, 0x56, 0xe5, 0x00]);
    }

    #[test]
    fn lc_48k_mono() {
        let c = parse(&[0x11, 0x88]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48_000, 1));
    }

    #[test]
    fn he_aac_keeps_core_rate() {
        // AOT 5, 24 kHz core, stereo, extension index 3 (48 kHz), underlying AOT 2.
        let c = parse(&[0x2b, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (5, 24_000, 2));
        assert_eq!(c.codec_string(), "mp4a.40.5");
    }

    #[test]
    fn explicit_frequency_and_object_type_escape() {
        // AOT 2, index 15, 24-bit rate 22_000, channel config 2:
        // 00010 1111 000000000101010111110000 0010
        let c = parse(&[0x17, 0x80, 0x2a, 0xf8, 0x10]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 22_000, 2));
        // AOT escape 31 + 6 bits (10 → 42), index 4 (44.1 kHz), config 1:
        // 11111 001010 0100 0001
        let c = parse(&[0xf9, 0x48, 0x20]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (42, 44_100, 1));
    }

    #[test]
    fn seven_means_eight_channels() {
        // AOT 2, 48 kHz, config 7.
        let c = parse(&[0x11, 0xb8]).unwrap();
        assert_eq!(c.channels, 8);
    }

    #[test]
    fn errors() {
        assert_eq!(parse(&[]), Err(AacError::Truncated));
        assert_eq!(parse(&[0x12]), Err(AacError::Truncated));
        // Explicit rate cut short.
        assert_eq!(parse(&[0x17, 0x80]), Err(AacError::Truncated));
        // Reserved index 13.
        assert_eq!(parse(&[0x16, 0x90]), Err(AacError::SampleRate(13)));
        // Explicit rate 0.
        assert_eq!(
            parse(&[0x17, 0x80, 0x00, 0x00, 0x00, 0x40]),
            Err(AacError::SampleRate(15))
        );
        // Channel config 0 (PCE) and reserved 8.
        assert_eq!(parse(&[0x12, 0x00]), Err(AacError::ChannelConfig(0)));
        assert_eq!(parse(&[0x12, 0x40]), Err(AacError::ChannelConfig(8)));
    }
}
