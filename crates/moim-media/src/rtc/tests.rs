//! A WebRTC publisher's frames into the segmenter, in simulated time.

use super::*;
use crate::segmenter::{Config, Event};

/// SPS and PPS of a 320×240 baseline stream made by x264.
const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
/// The avcC record x264 wrote for those: the one built from them must be the same bytes.
const AVCC: &[u8] = &[
    0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb,
    0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    0x01, 0x00, 0x05, 0x68, 0xcb, 0x83, 0xcb, 0x20,
];

fn annexb(units: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for u in units {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(u);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn annexb_units_are_split_on_both_start_codes() {
    let data = [
        0xde, 0xad, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0, 0, 1, 0x65, 4, 0, 0,
    ];
    let units: Vec<&[u8]> = crate::avc::annexb_nalus(&data).collect();
    assert_eq!(
        units,
        vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4][..]],
        "junk before the first code, an empty unit and trailing zeros are dropped"
    );
    assert_eq!(crate::avc::annexb_nalus(&[1, 2, 3, 0, 0]).count(), 0);
    assert_eq!(crate::avc::annexb_nalus(&[0, 0, 1]).count(), 0);
}

#[test]
fn parameter_sets_make_the_record_an_encoder_would() {
    let cfg = AvcConfig::from_parameter_sets(SPS, PPS).expect("valid");
    assert_eq!(&cfg.raw[..], AVCC);
    assert_eq!((cfg.width, cfg.height), (320, 240));
    assert!(AvcConfig::from_parameter_sets(PPS, SPS).is_err(), "swapped");
    assert!(
        AvcConfig::from_parameter_sets(&SPS[..6], PPS).is_err(),
        "a truncated SPS"
    );
    // A High-profile SPS gets the 4:2:0 8-bit extension.
    let mut high = SPS.to_vec();
    high[1] = 100;
    if let Ok(c) = AvcConfig::from_parameter_sets(&high, PPS) {
        assert_eq!(&c.raw[c.raw.len() - 4..], &[0xfd, 0xf8, 0xf8, 0]);
    }
}

/// 30 fps video with a keyframe every `gop` frames and 20 ms Opus packets, each track on its
/// own random RTP base; audio arrives `audio_late_ms` after video starts.
fn feed(seconds: u64, gop: u64, audio_late_ms: u64) -> (Segmenter, Vec<Event>) {
    let mut seg = Segmenter::new(Config::default());
    let mut feed = RtcFeed::new(true, true);
    let (v0, a0) = (3_000_000_000u64, 17_000u64);
    let mut events = Vec::new();
    let mut audio_n = 0u64;
    for i in 0..seconds * 30 {
        let ms = i * 1000 / 30;
        while audio_late_ms + audio_n * 20 <= ms {
            let t = audio_late_ms + audio_n * 20;
            feed.audio(
                &mut seg,
                a0 + audio_n * 960,
                t,
                &[0xf8, 0xaa, 0xbb],
                t as i64,
            );
            audio_n += 1;
        }
        let frame = if i % gop == 0 {
            annexb(&[&[0x09, 0xf0], SPS, PPS, &[0x65, 0x88, 0x80 | i as u8]])
        } else {
            annexb(&[&[0x41, 0x9a, 0x80 | i as u8]])
        };
        feed.video(&mut seg, v0 + i * 3000, ms, &frame, ms as i64)
            .expect("a good frame");
        events.extend(std::iter::from_fn(|| seg.poll_event()));
    }
    (seg, events)
}

#[test]
fn frames_become_keyframe_aligned_segments_with_opus_audio() {
    let (seg, events) = feed(6, 60, 5);
    assert_eq!(events.first(), Some(&Event::Init { epoch: 0 }));
    let init = seg.init(0).expect("an init segment");
    assert!(contains(&init, b"avcC") && contains(&init, AVCC));
    assert!(contains(&init, b"Opus") && contains(&init, b"dOps"));
    assert_eq!(seg.codecs(), "avc1.42c00d,opus");
    let durations: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Segment { duration_ms, .. } => Some(*duration_ms),
            _ => None,
        })
        .collect();
    // Keyframes every 2 s on the 90 kHz clock: 2 s segments (the last one still open).
    assert_eq!(durations.len(), 2, "{durations:?}");
    for d in durations {
        assert!((d - 2000.0).abs() < 40.0, "segment of {d} ms");
    }
    // The parameter sets and delimiters went into the record, not the samples.
    let part = seg.part(0, 0).expect("the first part");
    assert!(!contains(&part, &SPS[..8]));
    assert!(
        contains(&part, &[0, 0, 0, 3, 0x65, 0x88, 0x80]),
        "AVCC-framed IDR"
    );
}

#[test]
fn a_new_resolution_is_a_new_init_segment() {
    let mut seg = Segmenter::new(Config::default());
    let mut feed = RtcFeed::new(false, true);
    let key = annexb(&[SPS, PPS, &[0x65, 1]]);
    feed.video(&mut seg, 0, 0, &key, 0).unwrap();
    feed.video(&mut seg, 3000, 33, &annexb(&[&[0x41, 2]]), 33)
        .unwrap();
    // The same parameter sets again change nothing.
    feed.video(&mut seg, 6000, 66, &key, 66).unwrap();
    let mut other = SPS.to_vec();
    other[3] = 0x1e; // another level: another configuration
    feed.video(
        &mut seg,
        9000,
        100,
        &annexb(&[&other, PPS, &[0x65, 3]]),
        100,
    )
    .unwrap();
    feed.video(&mut seg, 12000, 133, &annexb(&[&[0x41, 4]]), 133)
        .unwrap();
    let inits: Vec<_> = std::iter::from_fn(|| seg.poll_event())
        .filter(|e| matches!(e, Event::Init { .. }))
        .collect();
    assert_eq!(
        inits,
        vec![Event::Init { epoch: 0 }, Event::Init { epoch: 1 }]
    );
}

#[test]
fn bad_frames_are_refused_and_change_nothing() {
    let mut seg = Segmenter::new(Config::default());
    let mut feed = RtcFeed::new(false, true);
    assert_eq!(
        feed.video(&mut seg, 0, 0, &[1, 2, 3, 4], 0),
        Err(RtcError::NoNalUnits)
    );
    let bad_sps = annexb(&[&[0x67, 0x42], PPS, &[0x65, 1]]);
    assert!(matches!(
        feed.video(&mut seg, 0, 0, &bad_sps, 0),
        Err(RtcError::ParameterSets(_))
    ));
    // A keyframe before any parameter sets is dropped by the segmenter, not an error.
    feed.video(&mut seg, 0, 0, &annexb(&[&[0x65, 1]]), 0)
        .unwrap();
    // A malformed Opus packet is dropped.
    feed.audio(&mut seg, 0, 0, &[0x03], 0);
    assert!(seg.poll_event().is_none());
    assert!(!seg.has_media());
}

#[test]
fn audio_ahead_of_the_first_video_frame_waits_for_it() {
    let mut seg = Segmenter::new(Config::default());
    let mut feed = RtcFeed::new(true, true);
    for n in 0..5 {
        feed.audio(&mut seg, n * 960, n * 20, &[0xf8, 1], 0);
    }
    feed.video(&mut seg, 0, 100, &annexb(&[SPS, PPS, &[0x65, 1]]), 100)
        .unwrap();
    for n in 5..10 {
        feed.audio(&mut seg, n * 960, n * 20, &[0xf8, 1], 0);
    }
    feed.video(&mut seg, 3000, 133, &annexb(&[&[0x41, 2]]), 133)
        .unwrap();
    let inits: Vec<_> = std::iter::from_fn(|| seg.poll_event())
        .filter(|e| matches!(e, Event::Init { .. }))
        .collect();
    assert_eq!(
        inits,
        vec![Event::Init { epoch: 0 }],
        "one init, with both tracks"
    );
    assert_eq!(seg.codecs(), "avc1.42c00d,opus");
}

#[test]
fn a_broadcast_whose_video_cannot_be_packaged_is_audio_only() {
    let mut seg = Segmenter::new(Config::default());
    let mut feed = RtcFeed::new(true, true);
    feed.audio(&mut seg, 0, 0, &[0xf8, 1], 0);
    assert!(!seg.has_media(), "waiting for H.264 parameter sets");
    feed.without_video();
    for n in 1..40 {
        feed.audio(&mut seg, n * 960, n * 20, &[0xf8, 1], (n * 20) as i64);
    }
    assert!(seg.has_media());
    assert_eq!(seg.codecs(), "opus");
}
