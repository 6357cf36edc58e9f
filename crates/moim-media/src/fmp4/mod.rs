//! Fragmented MP4 (ISO 14496-12) writer for CMAF-style HLS: one init segment (`ftyp` + `moov`)
//! per stream configuration, then `moof` + `mdat` fragments, each of which can serve as an
//! LL-HLS part.
//!
//! Both tracks share one fragment: video samples first, then audio, in a single `mdat`. That
//! halves the number of HTTP objects a low-latency player fetches, at the price of not being a
//! strict single-track CMAF file; we therefore claim the `cmfc` brand only for single-track
//! streams. Timing is carried entirely by `tfdt` and per-sample durations, so no edit list is
//! written: presentation times are the publisher's own, shared by both tracks.
//!
//! Pure byte building: the caller decides when to cut fragments and where to send the bytes.

use crate::aac::AacConfig;
use crate::audio::AudioConfig;
use crate::avc::AvcConfig;
use crate::opus::OpusConfig;
use bytes::Bytes;

/// Track id of the H.264 track, whether or not audio is present.
pub const VIDEO_TRACK_ID: u32 = 1;
/// Track id of the AAC track, whether or not video is present.
pub const AUDIO_TRACK_ID: u32 = 2;
/// Timescale of the video track (the MPEG-TS clock, so HLS timestamps convert exactly).
/// The audio track's timescale is its sample rate.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Movie timescale in `mvhd`; only the (zero) movie duration is expressed in it.
const MOVIE_TIMESCALE: u32 = 1000;

/// One access unit (video) or AAC frame (audio) to place in a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time in the track's timescale.
    pub dts: u64,
    /// Time until the next sample's decode time, in the track's timescale.
    pub duration: u32,
    /// Presentation minus decode time, in the track's timescale; may be negative.
    pub cts_offset: i32,
    /// Whether the sample is a sync sample (an IDR picture). Audio is always treated as sync.
    pub keyframe: bool,
    /// Video: AVCC length-prefixed NAL units as received. Audio: one raw AAC frame.
    pub data: Bytes,
}

/// `sample_flags` of a sync sample: `sample_depends_on` = 2 (depends on no other sample).
const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, `sample_is_non_sync_sample` set.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// `tfhd` flag: sample data offsets are relative to the enclosing `moof`, as CMAF requires.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags saying which optional fields are present.
const TRUN_DATA_OFFSET: u32 = 0x0001;
const TRUN_DURATION: u32 = 0x0100;
const TRUN_SIZE: u32 = 0x0200;
const TRUN_FLAGS: u32 = 0x0400;
const TRUN_CTS: u32 = 0x0800;

/// Writes `ftyp` + `moov` for the tracks present.
///
/// Pass at least one config; with neither the result is a valid but trackless movie. The
/// config's raw bytes go verbatim into `avcC` / `esds`, so the decoder sees exactly what the
/// encoder sent.
pub fn init_segment(video: Option<&AvcConfig>, audio: Option<&AudioConfig>) -> Vec<u8> {
    let mut w = Writer::with_capacity(1024);
    w.bx(b"ftyp", |w| {
        w.fourcc(b"iso6"); // major brand: needs tfdt version 1 and default-base-is-moof
        w.u32(0);
        w.fourcc(b"iso6");
        w.fourcc(b"mp41");
        if video.is_some() != audio.is_some() {
            w.fourcc(b"cmfc");
        }
    });
    w.bx(b"moov", |w| {
        mvhd(w);
        if let Some(avc) = video {
            trak(w, VIDEO_TRACK_ID, VIDEO_TIMESCALE, Kind::Video(avc));
        }
        if let Some(a) = audio {
            trak(w, AUDIO_TRACK_ID, a.sample_rate(), Kind::Audio(a));
        }
        // No mehd: a live stream has no known fragment duration.
        w.bx(b"mvex", |w| {
            let ids = [video.map(|_| VIDEO_TRACK_ID), audio.map(|_| AUDIO_TRACK_ID)];
            for id in ids.into_iter().flatten() {
                w.full(b"trex", 0, 0, |w| {
                    w.u32(id);
                    w.u32(1); // sample description index
                    w.u32(0); // default duration, size, flags: every trun says its own
                    w.u32(0);
                    w.u32(0);
                });
            }
        });
    });
    w.buf
}

/// Writes one fragment: `moof` (with a `traf` per non-empty track) and one `mdat` holding the
/// video samples followed by the audio samples.
///
/// `sequence` is the `mfhd` sequence number: start at 1 and increase by one per fragment.
/// Each track's `tfdt` is its first sample's `dts`; samples must be in decode order.
///
/// # Panics
/// If the samples total more than 2 GiB, which `trun`'s 32-bit data offset cannot address;
/// fragments are a fraction of a second of media, so that is a caller bug.
pub fn fragment(sequence: u32, video: &[Sample], audio: &[Sample]) -> Vec<u8> {
    let tracks = [(VIDEO_TRACK_ID, video), (AUDIO_TRACK_ID, audio)];
    let payload: usize = tracks
        .iter()
        .flat_map(|(_, samples)| samples.iter())
        .map(|s| s.data.len())
        .sum();
    let mut w = Writer::with_capacity(256 + 16 * (video.len() + audio.len()) + payload);

    // Where each trun's data_offset field sits, and how much mdat payload precedes its samples;
    // the offsets can only be filled in once the moof's size is known.
    let mut offset_fields = Vec::with_capacity(2);
    w.bx(b"moof", |w| {
        w.full(b"mfhd", 0, 0, |w| w.u32(sequence));
        let mut before = 0;
        for (id, samples) in tracks {
            if samples.is_empty() {
                continue;
            }
            let field = traf(w, id, samples);
            offset_fields.push((field, before));
            before += samples.iter().map(|s| s.data.len()).sum::<usize>();
        }
    });

    const MDAT_HEADER: usize = 8;
    let data_start = w.buf.len() + MDAT_HEADER;
    for (field, before) in offset_fields {
        let offset = i32::try_from(data_start + before).expect("fragment payload under 2 GiB");
        w.buf[field..field + 4].copy_from_slice(&offset.to_be_bytes());
    }
    let mdat_size = u32::try_from(MDAT_HEADER + payload).expect("fragment payload under 2 GiB");
    w.u32(mdat_size);
    w.fourcc(b"mdat");
    for (_, samples) in tracks {
        for s in samples {
            w.bytes(&s.data);
        }
    }
    w.buf
}

/// Writes a `traf` and returns the position of its `trun` data offset, to be patched.
fn traf(w: &mut Writer, track_id: u32, samples: &[Sample]) -> usize {
    let audio = track_id == AUDIO_TRACK_ID;
    let mut offset_field = 0;
    w.bx(b"traf", |w| {
        w.full(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |w| w.u32(track_id));
        // Version 1: a 64-bit decode time, which 90 kHz overflows in 13 hours at 32 bits.
        w.full(b"tfdt", 1, 0, |w| w.u64(samples[0].dts));
        let with_cts = samples.iter().any(|s| s.cts_offset != 0);
        let mut flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS;
        if with_cts {
            flags |= TRUN_CTS;
        }
        // Version 1 makes the composition offsets signed, so a negative pts - dts survives.
        w.full(b"trun", 1, flags, |w| {
            w.u32(u32::try_from(samples.len()).expect("sample count fits in u32"));
            offset_field = w.buf.len();
            w.u32(0);
            for s in samples {
                w.u32(s.duration);
                w.u32(u32::try_from(s.data.len()).expect("sample under 4 GiB"));
                w.u32(if audio || s.keyframe {
                    FLAGS_SYNC
                } else {
                    FLAGS_NON_SYNC
                });
                if with_cts {
                    w.bytes(&s.cts_offset.to_be_bytes());
                }
            }
        });
    });
    offset_field
}

/// The media-specific half of a track.
enum Kind<'a> {
    Video(&'a AvcConfig),
    Audio(&'a AudioConfig),
}

const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn mvhd(w: &mut Writer) {
    w.full(b"mvhd", 0, 0, |w| {
        w.u32(0); // creation and modification time: unknown, and irrelevant to players
        w.u32(0);
        w.u32(MOVIE_TIMESCALE);
        w.u32(0); // duration: open-ended
        w.u32(0x0001_0000); // rate 1.0
        w.u16(0x0100); // volume 1.0
        w.zeros(2 + 8);
        for m in UNITY_MATRIX {
            w.u32(m);
        }
        w.zeros(24);
        w.u32(AUDIO_TRACK_ID + 1); // next_track_ID
    });
}

fn trak(w: &mut Writer, track_id: u32, timescale: u32, kind: Kind<'_>) {
    w.bx(b"trak", |w| {
        // Flags: track enabled, used in the presentation.
        w.full(b"tkhd", 0, 0x3, |w| {
            w.u32(0);
            w.u32(0);
            w.u32(track_id);
            w.u32(0);
            w.u32(0); // duration
            w.zeros(8);
            w.u16(0); // layer
            w.u16(0); // alternate group
            w.u16(if matches!(kind, Kind::Audio(_)) {
                0x0100
            } else {
                0
            });
            w.u16(0);
            for m in UNITY_MATRIX {
                w.u32(m);
            }
            let (width, height) = match kind {
                Kind::Video(avc) => (avc.width, avc.height),
                Kind::Audio(_) => (0, 0),
            };
            w.u32(width << 16); // 16.16 fixed point
            w.u32(height << 16);
        });
        w.bx(b"mdia", |w| {
            w.full(b"mdhd", 0, 0, |w| {
                w.u32(0);
                w.u32(0);
                w.u32(timescale);
                w.u32(0);
                w.u16(LANGUAGE_UND);
                w.u16(0);
            });
            let (handler, name): (&[u8; 4], &[u8]) = match kind {
                Kind::Video(_) => (b"vide", b"moim video\0"),
                Kind::Audio(_) => (b"soun", b"moim audio\0"),
            };
            w.full(b"hdlr", 0, 0, |w| {
                w.u32(0);
                w.fourcc(handler);
                w.zeros(12);
                w.bytes(name);
            });
            w.bx(b"minf", |w| {
                match kind {
                    // vmhd's flags must be 1 (a legacy QuickTime requirement kept by the spec).
                    Kind::Video(_) => w.full(b"vmhd", 0, 1, |w| w.zeros(8)),
                    Kind::Audio(_) => w.full(b"smhd", 0, 0, |w| w.zeros(4)),
                }
                w.bx(b"dinf", |w| {
                    w.full(b"dref", 0, 0, |w| {
                        w.u32(1);
                        // Flag 1: the media data is in this same file.
                        w.full(b"url ", 0, 1, |_| {});
                    });
                });
                w.bx(b"stbl", |w| {
                    w.full(b"stsd", 0, 0, |w| {
                        w.u32(1);
                        match kind {
                            Kind::Video(avc) => avc1(w, avc),
                            Kind::Audio(AudioConfig::Aac(aac)) => mp4a(w, aac),
                            Kind::Audio(AudioConfig::Opus(o)) => opus_entry(w, o),
                        }
                    });
                    // Fragmented: the sample tables live in each moof, these stay empty.
                    w.full(b"stts", 0, 0, |w| w.u32(0));
                    w.full(b"stsc", 0, 0, |w| w.u32(0));
                    w.full(b"stsz", 0, 0, |w| w.zeros(8));
                    w.full(b"stco", 0, 0, |w| w.u32(0));
                });
            });
        });
    });
}

/// ISO 639-2 "und", packed as three 5-bit letters offset by 0x60.
const LANGUAGE_UND: u16 =
    ((b'u' as u16 - 0x60) << 10) | ((b'n' as u16 - 0x60) << 5) | (b'd' as u16 - 0x60);

fn avc1(w: &mut Writer, avc: &AvcConfig) {
    w.bx(b"avc1", |w| {
        w.zeros(6);
        w.u16(1); // data_reference_index
        w.zeros(16);
        // Sample entry sizes are 16-bit; the SPS parser already bounds them well below that.
        w.u16(u16::try_from(avc.width).unwrap_or(u16::MAX));
        w.u16(u16::try_from(avc.height).unwrap_or(u16::MAX));
        w.u32(0x0048_0000); // 72 dpi
        w.u32(0x0048_0000);
        w.u32(0);
        w.u16(1); // frame_count
        w.zeros(32); // compressorname
        w.u16(0x0018); // depth: colour, no alpha
        w.u16(0xffff); // pre_defined = -1
        w.bx(b"avcC", |w| w.bytes(&avc.raw));
    });
}

fn mp4a(w: &mut Writer, aac: &AacConfig) {
    w.bx(b"mp4a", |w| {
        w.zeros(6);
        w.u16(1); // data_reference_index
        w.zeros(8);
        w.u16(u16::from(aac.channels));
        w.u16(16); // sample size
        w.zeros(4);
        // 16.16 fixed point; rates above 65535 do not fit and are written as 0, which decoders
        // ignore in favour of the AudioSpecificConfig.
        w.u32(if aac.sample_rate <= 0xffff {
            aac.sample_rate << 16
        } else {
            0
        });
        w.full(b"esds", 0, 0, |w| w.bytes(&es_descriptor(aac)));
    });
}

/// The `Opus` sample entry ("Encapsulation of Opus in ISO Base Media File Format" §4.3.1):
/// an AudioSampleEntry at 48 kHz with 16-bit samples, then `dOps`.
fn opus_entry(w: &mut Writer, o: &OpusConfig) {
    w.bx(b"Opus", |w| {
        w.zeros(6);
        w.u16(1); // data_reference_index
        w.zeros(8);
        w.u16(u16::from(o.channels));
        w.u16(16); // sample size
        w.zeros(4);
        w.u32(crate::opus::SAMPLE_RATE << 16);
        w.bx(b"dOps", |w| w.bytes(&o.dops()));
    });
}

/// ES_Descriptor (ISO 14496-1 §7.2.6.5) wrapping the AudioSpecificConfig.
fn es_descriptor(aac: &AacConfig) -> Vec<u8> {
    let mut decoder_config = Writer::with_capacity(32);
    decoder_config.u8(0x40); // objectTypeIndication: MPEG-4 Audio
    decoder_config.u8(0x05 << 2 | 1); // streamType audio, upStream 0, reserved 1
    decoder_config.bytes(&[0; 3]); // bufferSizeDB: unknown
    decoder_config.u32(0); // maxBitrate: unknown
    decoder_config.u32(0); // avgBitrate: variable
    descriptor(&mut decoder_config, 0x05, &aac.raw); // DecoderSpecificInfo

    let mut es = Writer::with_capacity(48);
    es.u16(0); // ES_ID: 0 inside an MP4 file (ISO 14496-14)
    es.u8(0); // no dependency, URL or OCR stream; priority 0
    descriptor(&mut es, 0x04, &decoder_config.buf); // DecoderConfigDescriptor
    descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor, predefined for MP4

    let mut out = Writer::with_capacity(64);
    descriptor(&mut out, 0x03, &es.buf);
    out.buf
}

/// Writes a descriptor: tag, then the body length in 7-bit groups (most significant first,
/// high bit set on all but the last), then the body.
fn descriptor(w: &mut Writer, tag: u8, body: &[u8]) {
    assert!(body.len() < 1 << 28, "descriptor sizes are at most 28 bits");
    w.u8(tag);
    let groups = (1..4).rev().filter(|&i| body.len() >> (7 * i) != 0).count() + 1;
    for i in (0..groups).rev() {
        let more = if i > 0 { 0x80 } else { 0 };
        w.u8((body.len() >> (7 * i)) as u8 & 0x7f | more);
    }
    w.bytes(body);
}

/// Big-endian byte buffer with nested boxes whose sizes are patched when they close.
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    /// Writes a box: size placeholder, type, whatever `body` writes, then the real size.
    fn bx(&mut self, kind: &[u8; 4], body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.u32(0);
        self.fourcc(kind);
        body(self);
        let size = u32::try_from(self.buf.len() - start).expect("boxes stay under 4 GiB");
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    /// Writes a full box: a box whose body starts with a version byte and 24 flag bits.
    fn full(&mut self, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Self)) {
        self.bx(kind, |w| {
            w.u32(u32::from(version) << 24 | flags & 0x00ff_ffff);
            body(w);
        });
    }

    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn fourcc(&mut self, v: &[u8; 4]) {
        self.buf.extend_from_slice(v);
    }
    fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
}

#[cfg(test)]
mod tests;
