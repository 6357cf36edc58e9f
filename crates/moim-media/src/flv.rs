//! FLV audio and video tag bodies, as carried by RTMP message types 8 (audio) and 9 (video).
//!
//! Only the bodies: no FLV file header and no tag header, because RTMP already supplies the
//! timestamp and length. We accept H.264 (AVC) video and AAC audio, the pair every RTMP encoder
//! (OBS, ffmpeg, hardware encoders) can send and every browser can play through HLS. Anything
//! else is refused with an error that names what was sent, so the publisher learns why.
//!
//! Parsing is zero-copy: payloads are slices of the input [`Bytes`]. [`write_tag`] goes the other
//! way, wrapping bodies back into an FLV stream for the transcoder.

use bytes::Bytes;

/// AVC in the legacy FLV `CodecID` field.
const CODEC_AVC: u8 = 7;
/// AAC in the FLV `SoundFormat` field.
const SOUND_AAC: u8 = 10;
/// Legacy frame type 5: "video info / command frame"; carries no picture.
const FRAME_COMMAND: u8 = 5;
/// Enhanced RTMP sets this bit of the first video byte to announce a FourCC header.
const EX_HEADER: u8 = 0x80;

/// Why a tag body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The body had no bytes at all.
    #[error("empty FLV tag body")]
    Empty,
    /// The body ended inside its header.
    #[error("truncated FLV tag body: header needs {needed} bytes, got {got}")]
    Truncated {
        /// Header length this tag kind requires.
        needed: usize,
        /// Bytes actually present.
        got: usize,
    },
    /// Legacy FLV video with a codec other than H.264.
    #[error("unsupported video codec id {0} (only H.264/AVC, id 7, is accepted)")]
    UnsupportedVideoCodec(u8),
    /// Enhanced RTMP video (HEVC, AV1, VP9 …), which we do not repackage.
    #[error(
        "enhanced RTMP video ({}) is not supported; configure the encoder for H.264",
        String::from_utf8_lossy(.fourcc)
    )]
    EnhancedRtmp {
        /// The FourCC the publisher announced, e.g. `hvc1` or `av01`.
        fourcc: [u8; 4],
    },
    /// Audio in a format other than AAC.
    #[error("unsupported audio format {0} (only AAC, format 10, is accepted)")]
    UnsupportedAudioFormat(u8),
    /// AAC tag whose `AACPacketType` is neither 0 (config) nor 1 (raw frame).
    #[error("unknown AAC packet type {0}")]
    UnknownAacPacketType(u8),
}

/// A parsed video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// The `AVCDecoderConfigurationRecord` (ISO 14496-15 `avcC` payload).
    AvcSequenceHeader(Bytes),
    /// One access unit.
    AvcNalus {
        /// FLV frame type 1 (or 4, a generated keyframe).
        keyframe: bool,
        /// Presentation minus decode time, in milliseconds (signed 24-bit in the tag).
        composition_time_ms: i32,
        /// NAL units, each prefixed by its length (AVCC framing, length size from the config).
        data: Bytes,
    },
    /// The publisher ended the sequence (usually just before unpublishing).
    AvcEndOfSequence,
    /// Something that carries no picture, e.g. a command frame or a future packet type; ignore it.
    Other,
}

/// A parsed audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag {
    /// The `AudioSpecificConfig` (ISO 14496-3).
    AacSequenceHeader(Bytes),
    /// One raw AAC frame (no ADTS header).
    AacRaw(Bytes),
}

/// Parses the body of an RTMP video message (FLV `VIDEODATA`).
pub fn parse_video(body: &Bytes) -> Result<VideoTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Empty)?;
    if first & EX_HEADER != 0 {
        // Enhanced RTMP: [ex:1 frame type:3 packet type:4] then a FourCC.
        let fourcc = body.get(1..5).ok_or(FlvError::Truncated {
            needed: 5,
            got: body.len(),
        })?;
        let fourcc = fourcc.try_into().expect("slice of length 4");
        return Err(FlvError::EnhancedRtmp { fourcc });
    }
    let frame_type = first >> 4;
    let codec = first & 0x0f;
    if codec != CODEC_AVC {
        return Err(FlvError::UnsupportedVideoCodec(codec));
    }
    if frame_type == FRAME_COMMAND {
        // A command frame has a one-byte payload, not the AVC header; checking it first keeps
        // a short, valid command frame from being reported as truncated.
        return Ok(VideoTag::Other);
    }
    // Codec byte, AVCPacketType, SI24 composition time.
    const HEADER: usize = 5;
    if body.len() < HEADER {
        return Err(FlvError::Truncated {
            needed: HEADER,
            got: body.len(),
        });
    }
    let payload = body.slice(HEADER..);
    Ok(match body[1] {
        0 => VideoTag::AvcSequenceHeader(payload),
        1 => VideoTag::AvcNalus {
            keyframe: frame_type == 1 || frame_type == 4,
            composition_time_ms: si24(body[2], body[3], body[4]),
            data: payload,
        },
        2 => VideoTag::AvcEndOfSequence,
        _ => VideoTag::Other,
    })
}

/// Parses the body of an RTMP audio message (FLV `AUDIODATA`).
pub fn parse_audio(body: &Bytes) -> Result<AudioTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Empty)?;
    // The rate/size/channel bits that follow the format are fixed for AAC and meaningless:
    // the AudioSpecificConfig is authoritative, so they are not even read.
    let format = first >> 4;
    if format != SOUND_AAC {
        return Err(FlvError::UnsupportedAudioFormat(format));
    }
    let packet_type = *body.get(1).ok_or(FlvError::Truncated {
        needed: 2,
        got: body.len(),
    })?;
    let payload = body.slice(2..);
    match packet_type {
        0 => Ok(AudioTag::AacSequenceHeader(payload)),
        1 => Ok(AudioTag::AacRaw(payload)),
        other => Err(FlvError::UnknownAacPacketType(other)),
    }
}

/// Sign-extends a big-endian 24-bit integer.
fn si24(b0: u8, b1: u8, b2: u8) -> i32 {
    // Put the 24 bits at the top of an i32 and shift back arithmetically.
    i32::from_be_bytes([b0, b1, b2, 0]) >> 8
}

/// FLV tag type of an audio tag.
pub const TAG_AUDIO: u8 = 8;
/// FLV tag type of a video tag.
pub const TAG_VIDEO: u8 = 9;

/// The 13 bytes that open an FLV stream (header plus the first, zero, previous-tag size), for
/// handing RTMP media to a tool that reads FLV (the transcoder).
pub fn stream_header(audio: bool, video: bool) -> [u8; 13] {
    let flags = (u8::from(audio) << 2) | u8::from(video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// One FLV tag around an RTMP message body, followed by its previous-tag size. Timestamps are
/// milliseconds; FLV keeps 32 bits of them.
pub fn write_tag(out: &mut Vec<u8>, tag_type: u8, timestamp_ms: u64, body: &[u8]) {
    let size = body.len().min(0xFF_FFFF) as u32;
    let ts = timestamp_ms as u32;
    out.push(tag_type);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
    out.extend_from_slice(&ts.to_be_bytes()[1..]);
    out.push((ts >> 24) as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&body[..size as usize]);
    out.extend_from_slice(&(11 + size).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[u8]) -> Bytes {
        Bytes::copy_from_slice(v)
    }

    #[test]
    fn avc_sequence_header() {
        let body = b(&[0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f]);
        assert_eq!(
            parse_video(&body).unwrap(),
            VideoTag::AvcSequenceHeader(b(&[0x01, 0x64, 0x00, 0x1f]))
        );
    }

    #[test]
    fn avc_keyframe_and_inter_frame() {
        let key = b(&[0x17, 0x01, 0x00, 0x00, 0x42, 0, 0, 0, 2, 0x65, 0x88]);
        assert_eq!(
            parse_video(&key).unwrap(),
            VideoTag::AvcNalus {
                keyframe: true,
                composition_time_ms: 0x42,
                data: b(&[0, 0, 0, 2, 0x65, 0x88]),
            }
        );
        let inter = b(&[0x27, 0x01, 0x00, 0x00, 0x00, 0, 0, 0, 1, 0x41]);
        match parse_video(&inter).unwrap() {
            VideoTag::AvcNalus { keyframe, .. } => assert!(!keyframe),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn composition_time_is_signed() {
        let body = b(&[0x27, 0x01, 0xff, 0xff, 0xdf]);
        match parse_video(&body).unwrap() {
            VideoTag::AvcNalus {
                composition_time_ms,
                data,
                ..
            } => {
                assert_eq!(composition_time_ms, -33);
                assert!(data.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(si24(0x7f, 0xff, 0xff), 0x7f_ffff);
        assert_eq!(si24(0x80, 0x00, 0x00), -0x80_0000);
    }

    #[test]
    fn payload_is_zero_copy() {
        let body = b(&[0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65]);
        let VideoTag::AvcNalus { data, .. } = parse_video(&body).unwrap() else {
            panic!("expected NALUs");
        };
        assert_eq!(data.as_ptr(), body[5..].as_ptr());
    }

    #[test]
    fn end_of_sequence_command_frame_and_unknown_packet_type() {
        assert_eq!(
            parse_video(&b(&[0x17, 0x02, 0, 0, 0])).unwrap(),
            VideoTag::AvcEndOfSequence
        );
        // Command frame: frame type 5 with a single payload byte.
        assert_eq!(parse_video(&b(&[0x57, 0x01])).unwrap(), VideoTag::Other);
        assert_eq!(
            parse_video(&b(&[0x17, 0x09, 0, 0, 0])).unwrap(),
            VideoTag::Other
        );
    }

    #[test]
    fn refuses_other_video_codecs() {
        // Sorenson H.263 (2), VP6 (4), and the legacy HEVC id some forks use (12).
        for codec in [2u8, 4, 12] {
            assert_eq!(
                parse_video(&b(&[0x10 | codec, 0, 0, 0, 0])),
                Err(FlvError::UnsupportedVideoCodec(codec))
            );
        }
    }

    #[test]
    fn refuses_enhanced_rtmp_with_its_fourcc() {
        // IsExHeader | keyframe | PacketTypeSequenceStart, then "hvc1".
        let body = b(&[0x90, b'h', b'v', b'c', b'1', 0x01]);
        let err = parse_video(&body).unwrap_err();
        assert_eq!(err, FlvError::EnhancedRtmp { fourcc: *b"hvc1" });
        assert!(err.to_string().contains("hvc1"), "{err}");
        assert_eq!(
            parse_video(&b(&[0x90, b'a', b'v'])),
            Err(FlvError::Truncated { needed: 5, got: 3 })
        );
    }

    #[test]
    fn truncated_and_empty_video() {
        assert_eq!(parse_video(&Bytes::new()), Err(FlvError::Empty));
        for len in 1..5 {
            let body = b(&[0x17, 0x01, 0, 0, 0][..len]);
            assert_eq!(
                parse_video(&body),
                Err(FlvError::Truncated {
                    needed: 5,
                    got: len
                })
            );
        }
    }

    #[test]
    fn aac_sequence_header_and_raw() {
        // 0xaf: AAC, 44 kHz, 16-bit, stereo (the fixed flags every encoder sends).
        assert_eq!(
            parse_audio(&b(&[0xaf, 0x00, 0x12, 0x10])).unwrap(),
            AudioTag::AacSequenceHeader(b(&[0x12, 0x10]))
        );
        assert_eq!(
            parse_audio(&b(&[0xaf, 0x01, 0x21, 0x10, 0x04])).unwrap(),
            AudioTag::AacRaw(b(&[0x21, 0x10, 0x04]))
        );
        // A header with no payload parses; the AAC config parser rejects it later.
        assert_eq!(
            parse_audio(&b(&[0xaf, 0x00])).unwrap(),
            AudioTag::AacSequenceHeader(Bytes::new())
        );
    }

    #[test]
    fn refuses_other_audio() {
        // MP3 (2), Speex (11), Enhanced RTMP audio ExHeader (9).
        for format in [2u8, 11, 9] {
            assert_eq!(
                parse_audio(&b(&[format << 4 | 0x0f, 0x00])),
                Err(FlvError::UnsupportedAudioFormat(format))
            );
        }
        assert_eq!(
            parse_audio(&b(&[0xaf, 0x02])),
            Err(FlvError::UnknownAacPacketType(2))
        );
    }

    #[test]
    fn truncated_and_empty_audio() {
        assert_eq!(parse_audio(&Bytes::new()), Err(FlvError::Empty));
        assert_eq!(
            parse_audio(&b(&[0xaf])),
            Err(FlvError::Truncated { needed: 2, got: 1 })
        );
    }

    #[test]
    fn writes_flv_tags() {
        assert_eq!(&stream_header(true, true)[..5], b"FLV\x01\x05");
        let mut out = Vec::new();
        write_tag(&mut out, TAG_VIDEO, 0x01_2345_6789, &[0xaa, 0xbb]);
        assert_eq!(
            out,
            [9, 0, 0, 2, 0x45, 0x67, 0x89, 0x23, 0, 0, 0, 0xaa, 0xbb, 0, 0, 0, 13]
        );
    }
}
