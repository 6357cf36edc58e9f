//! Box-level checks of the fMP4 writer, and its golden files.

use super::*;

const AVCC_720P: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50,
    0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83,
    0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00,
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
    let buf = init_segment(Some(&avc), Some(&aac.clone().into()));
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
    let buf = init_segment(None, Some(&aac.clone().into()));
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
    let buf = init_segment(None, Some(&aac().into()));
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

/// Golden files: an init segment and one fragment (a keyframe and a B-frame style negative
/// composition offset, two audio frames), byte for byte. They were checked with ffprobe and
/// ffprobe when made (`MOIM_BLESS=1 cargo test -p moim-media golden` rewrites them; see
/// tests/golden/README.md). A change to the writer must change them on purpose.
#[test]
fn golden_init_and_fragment() {
    let init = init_segment(Some(&avc()), Some(&aac().into()));
    let video = [
        Sample {
            dts: 90_000,
            duration: 3000,
            cts_offset: 6000,
            keyframe: true,
            data: Bytes::from_static(&[0, 0, 0, 3, 0x65, 0x88, 0x84]),
        },
        Sample {
            dts: 93_000,
            duration: 3000,
            cts_offset: -3000,
            keyframe: false,
            data: Bytes::from_static(&[0, 0, 0, 2, 0x41, 0x9a]),
        },
    ];
    let audio = [
        Sample {
            dts: 44_100,
            duration: 1024,
            cts_offset: 0,
            keyframe: true,
            data: Bytes::from_static(&[0x21, 0x10, 0x04]),
        },
        Sample {
            dts: 45_124,
            duration: 1024,
            cts_offset: 0,
            keyframe: true,
            data: Bytes::from_static(&[0x21, 0x10, 0x05]),
        },
    ];
    let frag = fragment(7, &video, &audio);
    let dir = format!("{}/tests/golden", crate::source_dir());
    for (name, got) in [("init.mp4", &init), ("fragment.m4s", &frag)] {
        let path = format!("{dir}/{name}");
        if std::env::var("MOIM_BLESS").is_ok() {
            std::fs::write(&path, got).unwrap();
        }
        let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(want == *got, "{name} differs from the golden file");
    }
}
