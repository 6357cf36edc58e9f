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
use crate::avc::AvcConfig;
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
pub fn init_segment(video: Option<&AvcConfig>, audio: Option<&AacConfig>) -> Vec<u8> {
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
        if let Some(aac) = audio {
            trak(w, AUDIO_TRACK_ID, aac.sample_rate, Kind::Audio(aac));
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
    Audio(&'a AacConfig),
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
                            Kind::Audio(aac) => mp4a(w, aac),
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
mod tests {
    use super::*;

    const AVCC_720P: &[u8] = &[
        0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40,
        0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0,
        0xf1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8,
        0xf8, 0x00,
    ];
    const ASC_44K_STEREO: &[u8] = &[0x12, 0x10];

    fn avc() -> AvcConfig {
        AvcConfig::parse(&Bytes::from_static(AVCC_720P)).unwrap()
    }
    fn aac() -> AacConfig {
        AacConfig::parse(&Bytes::from_static(ASC_44K_STEREO)).unwrap()
    }

    /// A parsed box: its type, where it starts, its size and its children (for containers).
    #[derive(Debug)]
    struct Node {
        kind: String,
        start: usize,
        size: usize,
        children: Vec<Node>,
    }

    impl Node {
        /// Offset of the body (after size and type).
        fn body(&self) -> usize {
            self.start + 8
        }
    }

    fn be32(buf: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(buf[at..at + 4].try_into().unwrap())
    }

    fn be64(buf: &[u8], at: usize) -> u64 {
        u64::from_be_bytes(buf[at..at + 8].try_into().unwrap())
    }

    /// Parses boxes in `buf[start..end]`, asserting that their sizes tile the range exactly.
    fn parse(buf: &[u8], start: usize, end: usize) -> Vec<Node> {
        let mut nodes = Vec::new();
        let mut pos = start;
        while pos < end {
            assert!(end - pos >= 8, "box header cut at {pos}");
            let size = be32(buf, pos) as usize;
            assert!(
                size >= 8 && pos + size <= end,
                "box at {pos} overflows its parent"
            );
            let kind = String::from_utf8(buf[pos + 4..pos + 8].to_vec()).unwrap();
            // Bytes between the header and the first child, for boxes that have children.
            let children_at = match kind.as_str() {
                "moov" | "trak" | "mdia" | "minf" | "dinf" | "stbl" | "mvex" | "moof" | "traf" => {
                    Some(0)
                }
                "stsd" | "dref" => Some(8),
                "avc1" => Some(78),
                "mp4a" => Some(28),
                _ => None,
            };
            let children = children_at
                .map(|skip| parse(buf, pos + 8 + skip, pos + size))
                .unwrap_or_default();
            nodes.push(Node {
                kind,
                start: pos,
                size,
                children,
            });
            pos += size;
        }
        assert_eq!(pos, end);
        nodes
    }

    /// Renders the tree as `a b(c d)` for whole-structure assertions.
    fn outline(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| {
                if n.children.is_empty() {
                    n.kind.clone()
                } else {
                    format!("{}({})", n.kind, outline(&n.children))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// All nodes at a slash-separated path.
    fn find<'a>(nodes: &'a [Node], path: &str) -> Vec<&'a Node> {
        let (head, rest) = path.split_once('/').unwrap_or((path, ""));
        let here = nodes.iter().filter(|n| n.kind == head);
        if rest.is_empty() {
            here.collect()
        } else {
            here.flat_map(|n| find(&n.children, rest)).collect()
        }
    }

    const TRAK_VIDEO: &str = "trak(tkhd mdia(mdhd hdlr minf(vmhd dinf(dref(url )) \
                              stbl(stsd(avc1(avcC)) stts stsc stsz stco))))";
    const TRAK_AUDIO: &str = "trak(tkhd mdia(mdhd hdlr minf(smhd dinf(dref(url )) \
                              stbl(stsd(mp4a(esds)) stts stsc stsz stco))))";

    #[test]
    fn init_segment_with_both_tracks() {
        let (avc, aac) = (avc(), aac());
        let buf = init_segment(Some(&avc), Some(&aac));
        let tree = parse(&buf, 0, buf.len());
        let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            outline(&tree),
            squash(&format!(
                "ftyp moov(mvhd {TRAK_VIDEO} {TRAK_AUDIO} mvex(trex trex))"
            ))
        );

        let ftyp = &tree[0];
        assert_eq!(
            &buf[ftyp.body()..ftyp.start + ftyp.size],
            b"iso6\0\0\0\0iso6mp41"
        );

        let mvhd = find(&tree, "moov/mvhd")[0];
        assert_eq!(mvhd.size, 108);
        assert_eq!(be32(&buf, mvhd.body() + 12), MOVIE_TIMESCALE);
        assert_eq!(be32(&buf, mvhd.start + mvhd.size - 4), 3, "next_track_ID");

        let tkhd = find(&tree, "moov/trak/tkhd");
        assert_eq!(tkhd[0].size, 92);
        assert_eq!(
            be32(&buf, tkhd[0].body()) & 0xff_ffff,
            3,
            "enabled | in movie"
        );
        assert_eq!(be32(&buf, tkhd[0].body() + 12), VIDEO_TRACK_ID);
        assert_eq!(be32(&buf, tkhd[0].body() + 76), 1280 << 16);
        assert_eq!(be32(&buf, tkhd[0].body() + 80), 720 << 16);
        assert_eq!(be32(&buf, tkhd[1].body() + 12), AUDIO_TRACK_ID);
        assert_eq!(
            &buf[tkhd[1].body() + 36..tkhd[1].body() + 38],
            [1, 0],
            "volume"
        );

        let mdhd = find(&tree, "moov/trak/mdia/mdhd");
        assert_eq!(be32(&buf, mdhd[0].body() + 12), VIDEO_TIMESCALE);
        assert_eq!(be32(&buf, mdhd[1].body() + 12), 44_100);
        assert_eq!(&buf[mdhd[0].body() + 20..mdhd[0].body() + 22], [0x55, 0xc4]);

        let hdlr = find(&tree, "moov/trak/mdia/hdlr");
        assert_eq!(&buf[hdlr[0].body() + 8..hdlr[0].body() + 12], b"vide");
        assert_eq!(&buf[hdlr[1].body() + 8..hdlr[1].body() + 12], b"soun");

        let avc1 = find(&tree, "moov/trak/mdia/minf/stbl/stsd/avc1")[0];
        assert_eq!(avc1.size, 8 + 78 + 8 + AVCC_720P.len());
        assert_eq!(be32(&buf, avc1.body() + 24), (1280 << 16) | 720);
        let avcc = &avc1.children[0];
        assert_eq!(&buf[avcc.body()..avcc.start + avcc.size], AVCC_720P);

        let mp4a = find(&tree, "moov/trak/mdia/minf/stbl/stsd/mp4a")[0];
        assert_eq!(&buf[mp4a.body() + 16..mp4a.body() + 18], [0, 2], "channels");
        assert_eq!(be32(&buf, mp4a.body() + 24), 44_100 << 16);

        let trex = find(&tree, "moov/mvex/trex");
        assert_eq!(be32(&buf, trex[0].body() + 4), VIDEO_TRACK_ID);
        assert_eq!(be32(&buf, trex[1].body() + 4), AUDIO_TRACK_ID);
    }

    /// Reads a descriptor header at `at`: (tag, body start, body length).
    fn read_descriptor(buf: &[u8], at: usize) -> (u8, usize, usize) {
        let mut len = 0;
        let mut pos = at + 1;
        loop {
            let b = buf[pos];
            pos += 1;
            len = len << 7 | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                return (buf[at], pos, len);
            }
        }
    }

    #[test]
    fn esds_nests_the_audio_specific_config() {
        let aac = AacConfig::parse(&Bytes::from_static(&[0x12, 0x10, 0x56, 0xe5, 0x00])).unwrap();
        let buf = init_segment(None, Some(&aac));
        let tree = parse(&buf, 0, buf.len());
        let esds = find(&tree, "moov/trak/mdia/minf/stbl/stsd/mp4a/esds")[0];
        let end = esds.start + esds.size;

        let (tag, es_body, es_len) = read_descriptor(&buf, esds.body() + 4);
        assert_eq!((tag, es_body + es_len), (0x03, end));
        let (tag, dc_body, dc_len) = read_descriptor(&buf, es_body + 3);
        assert_eq!(tag, 0x04);
        assert_eq!(&buf[dc_body..dc_body + 2], [0x40, 0x15]);
        let (tag, dsi_body, dsi_len) = read_descriptor(&buf, dc_body + 13);
        assert_eq!(tag, 0x05);
        assert_eq!(&buf[dsi_body..dsi_body + dsi_len], &aac.raw[..]);
        assert_eq!(dsi_body + dsi_len, dc_body + dc_len);
        let (tag, sl_body, sl_len) = read_descriptor(&buf, dc_body + dc_len);
        assert_eq!((tag, buf[sl_body], sl_body + sl_len), (0x06, 0x02, end));
    }

    #[test]
    fn descriptor_sizes_use_seven_bit_groups() {
        for (len, header) in [
            (0usize, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x81, 0x00]),
            (200, vec![0x81, 0x48]),
            (16_384, vec![0x81, 0x80, 0x00]),
        ] {
            let mut w = Writer::with_capacity(len + 4);
            descriptor(&mut w, 0x05, &vec![0xaa; len]);
            assert_eq!(w.buf[0], 0x05);
            assert_eq!(&w.buf[1..1 + header.len()], &header[..], "length {len}");
            assert_eq!(w.buf.len(), 1 + header.len() + len);
        }
    }

    #[test]
    fn single_track_init_segments() {
        let buf = init_segment(None, Some(&aac()));
        let tree = parse(&buf, 0, buf.len());
        assert_eq!(
            outline(&tree),
            format!(
                "ftyp moov(mvhd {} mvex(trex))",
                TRAK_AUDIO.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        );
        assert!(buf[..tree[0].size].ends_with(b"cmfc"));
        let tkhd = find(&tree, "moov/trak/tkhd")[0];
        assert_eq!(be32(&buf, tkhd.body() + 12), AUDIO_TRACK_ID);
        let trex = find(&tree, "moov/mvex/trex")[0];
        assert_eq!(be32(&buf, trex.body() + 4), AUDIO_TRACK_ID);

        let buf = init_segment(Some(&avc()), None);
        let tree = parse(&buf, 0, buf.len());
        assert_eq!(find(&tree, "moov/trak").len(), 1);
        assert_eq!(
            be32(&buf, find(&tree, "moov/mvex/trex")[0].body() + 4),
            VIDEO_TRACK_ID
        );
    }

    fn sample(dts: u64, duration: u32, cts_offset: i32, keyframe: bool, data: &[u8]) -> Sample {
        Sample {
            dts,
            duration,
            cts_offset,
            keyframe,
            data: Bytes::copy_from_slice(data),
        }
    }

    /// A trun entry as read back: (duration, size, flags, cts offset).
    type Entry = (u32, u32, u32, i32);

    /// Reads a traf: (track id, tfdt, data offset, entries).
    fn read_traf(buf: &[u8], traf: &Node) -> (u32, u64, usize, Vec<Entry>) {
        let kinds: Vec<_> = traf.children.iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["tfhd", "tfdt", "trun"]);
        let (tfhd, tfdt, trun) = (&traf.children[0], &traf.children[1], &traf.children[2]);
        assert_eq!(be32(buf, tfhd.body()), TFHD_DEFAULT_BASE_IS_MOOF);
        assert_eq!(buf[tfdt.body()], 1, "tfdt version 1");
        assert_eq!(buf[trun.body()], 1, "trun version 1");
        let flags = be32(buf, trun.body()) & 0xff_ffff;
        let with_cts = flags & TRUN_CTS != 0;
        let count = be32(buf, trun.body() + 4) as usize;
        let data_offset = be32(buf, trun.body() + 8) as i32;
        let entry_len = if with_cts { 16 } else { 12 };
        assert_eq!(trun.size, 8 + 12 + count * entry_len);
        let entries = (0..count)
            .map(|i| {
                let at = trun.body() + 12 + i * entry_len;
                let cts = if with_cts {
                    be32(buf, at + 12) as i32
                } else {
                    0
                };
                (be32(buf, at), be32(buf, at + 4), be32(buf, at + 8), cts)
            })
            .collect();
        (
            be32(buf, tfhd.body() + 4),
            be64(buf, tfdt.body() + 4),
            usize::try_from(data_offset).unwrap(),
            entries,
        )
    }

    #[test]
    fn fragment_with_b_frames_and_audio() {
        // 30 fps at 90 kHz with B-frames: I P B in decode order, one offset negative as some
        // encoders produce after a timestamp shift.
        let video = [
            sample(900_000, 3000, 6000, true, &[0, 0, 0, 3, 0x65, 1, 2]),
            sample(903_000, 3000, 9000, false, &[0, 0, 0, 2, 0x41, 3]),
            sample(906_000, 3000, -3000, false, &[0, 0, 0, 2, 0x01, 4]),
        ];
        let audio = [
            sample(441_000, 1024, 0, false, &[0x21, 0x10, 0x05]),
            sample(442_024, 1024, 0, false, &[0x21, 0x10, 0x06, 0x07]),
        ];
        let buf = fragment(7, &video, &audio);
        let tree = parse(&buf, 0, buf.len());
        assert_eq!(
            outline(&tree),
            "moof(mfhd traf(tfhd tfdt trun) traf(tfhd tfdt trun)) mdat"
        );
        let (moof, mdat) = (&tree[0], &tree[1]);
        assert_eq!(be32(&buf, moof.children[0].body() + 4), 7, "sequence");
        assert_eq!(mdat.size, 8 + 7 + 6 + 6 + 3 + 4);

        let (id, tfdt, offset, entries) = read_traf(&buf, &moof.children[1]);
        assert_eq!((id, tfdt), (VIDEO_TRACK_ID, 900_000));
        assert_eq!(
            moof.start + offset,
            mdat.body(),
            "video data starts the mdat"
        );
        assert_eq!(
            entries,
            [
                (3000, 7, FLAGS_SYNC, 6000),
                (3000, 6, FLAGS_NON_SYNC, 9000),
                (3000, 6, FLAGS_NON_SYNC, -3000),
            ]
        );
        let mut at = moof.start + offset;
        for s in &video {
            assert_eq!(&buf[at..at + s.data.len()], &s.data[..]);
            at += s.data.len();
        }

        // Audio: every frame is sync whatever the caller said, and no cts column is written.
        let (id, tfdt, offset, entries) = read_traf(&buf, &moof.children[2]);
        assert_eq!((id, tfdt), (AUDIO_TRACK_ID, 441_000));
        assert_eq!(moof.start + offset, at, "audio follows video");
        assert_eq!(
            entries,
            [(1024, 3, FLAGS_SYNC, 0), (1024, 4, FLAGS_SYNC, 0)]
        );
        assert_eq!(&buf[at..at + 3], &audio[0].data[..]);
        assert_eq!(&buf[at + 3..], &audio[1].data[..]);
    }

    #[test]
    fn fragment_skips_empty_tracks() {
        let audio = [sample(0, 1024, 0, true, &[1, 2, 3])];
        let buf = fragment(1, &[], &audio);
        let tree = parse(&buf, 0, buf.len());
        assert_eq!(outline(&tree), "moof(mfhd traf(tfhd tfdt trun)) mdat");
        let (id, _, offset, _) = read_traf(&buf, &tree[0].children[1]);
        assert_eq!(id, AUDIO_TRACK_ID);
        assert_eq!(offset, tree[0].size + 8);
        assert_eq!(&buf[offset..], [1, 2, 3]);

        let video = [sample(1 << 40, 3000, 0, true, &[0, 0, 0, 1, 0x65])];
        let buf = fragment(2, &video, &[]);
        let tree = parse(&buf, 0, buf.len());
        let (id, tfdt, _, entries) = read_traf(&buf, &tree[0].children[1]);
        assert_eq!((id, tfdt), (VIDEO_TRACK_ID, 1 << 40), "64-bit decode time");
        assert_eq!(entries, [(3000, 5, FLAGS_SYNC, 0)]);
    }
}
