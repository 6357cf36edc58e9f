//! Simulated-time tests of the segmenter: seconds of media fed in microseconds.

use super::*;
use crate::aac::AacConfig;

/// avcC of a 320×240 baseline stream made by x264.
const AVCC: &[u8] = &[
    0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb,
    0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    0x01, 0x00, 0x05, 0x68, 0xcb, 0x83, 0xcb, 0x20,
];
/// AudioSpecificConfig: AAC-LC, 48 kHz, stereo.
const ASC: &[u8] = &[0x11, 0x90];

fn video_cfg() -> AvcConfig {
    AvcConfig::parse(&Bytes::from_static(AVCC)).expect("fixture parses")
}

fn audio_cfg() -> AacConfig {
    AacConfig::parse(&Bytes::from_static(ASC)).expect("fixture parses")
}

fn frame(tag: u8) -> Bytes {
    Bytes::from(vec![0, 0, 0, 1, tag])
}

/// Feeds `seconds` of 30 fps video with a keyframe every `gop` frames (FLV ms timestamps,
/// alternating 33/34 ms like real encoders) and 48 kHz AAC, interleaved as RTMP delivers
/// them, starting at `t0_ms`. Returns every event.
fn feed(seg: &mut Segmenter, t0_ms: u64, seconds: u64, gop: u64, audio: bool) -> Vec<Event> {
    let frames = seconds * 30;
    let mut audio_t = 0.0f64;
    for i in 0..frames {
        let ts = t0_ms + i * 1000 / 30;
        while audio && audio_t <= (ts - t0_ms) as f64 {
            seg.push_audio(t0_ms + audio_t as u64, frame(0xa), ts as i64);
            audio_t += 1024.0 * 1000.0 / 48_000.0;
        }
        seg.push_video(ts, 0, i % gop == 0, frame(i as u8), ts as i64);
    }
    std::iter::from_fn(|| seg.poll_event()).collect()
}

fn parts_of(events: &[Event], msn: u64) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Part { msn: m, .. } if *m == msn))
        .count()
}

#[test]
fn nothing_before_the_first_keyframe() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(video_cfg());
    for i in 1..10 {
        seg.push_video(i * 33, 0, false, frame(1), 0);
    }
    assert!(seg.poll_event().is_none());
    assert!(!seg.has_media());
    seg.push_video(400, 0, true, frame(1), 0);
    assert_eq!(seg.poll_event(), Some(Event::Init { epoch: 0 }));
    assert!(seg.init(0).is_some());
}

#[test]
fn segments_start_on_keyframes_and_parts_fit_the_target() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(video_cfg());
    seg.set_audio_config(audio_cfg());
    let events = feed(&mut seg, 10_000, 10, 30, true);
    let segments: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Segment {
                msn, duration_ms, ..
            } => Some((*msn, *duration_ms)),
            _ => None,
        })
        .collect();
    // 10 s with a keyframe every second: nine complete one-second segments so far (the
    // tenth waits for the next keyframe).
    assert_eq!(segments.len(), 9, "{segments:?}");
    for (i, (msn, d)) in segments.iter().enumerate() {
        assert_eq!(*msn, i as u64);
        assert!((d - 1000.0).abs() < 2.0, "segment {msn} lasts {d} ms");
        // 30 frames of ~33.3 ms in parts of at most 334 ms: three parts of ten frames.
        assert_eq!(parts_of(&events, *msn), 3, "segment {msn}");
    }
    for s in &seg.window {
        assert!(s.parts[0].independent);
        assert!(s.parts[1..].iter().all(|p| !p.independent));
        assert!(s.parts.iter().all(|p| p.duration <= 0.334 + 1e-9));
    }
    let text = seg.playlist(true);
    assert!(text.contains("#EXT-X-TARGETDURATION:1\n"), "{text}");
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.334\n"));
    // The window keeps eight segments; parts are listed for the newest ones only.
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:1\n"), "{text}");
    assert!(!text.contains("p6.0.m4s"), "{text}");
    assert!(
        text.contains("p7.0.m4s") && text.contains("p9.0.m4s"),
        "{text}"
    );
    // Parts stay fetchable for one segment more than the playlist lists them.
    assert!(seg.part(6, 0).is_some());
    assert!(
        seg.part(5, 0).is_none(),
        "old parts are dropped from memory"
    );
    assert!(seg.segment(6).is_some());
    assert!(seg.segment(0).is_none(), "left the window");
    let hint = format!(
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p9.{}.m4s\"",
        seg.open.as_ref().map_or(0, |s| s.parts.len())
    );
    assert!(text.contains(&hint), "{text}");
}

#[test]
fn bitrate_is_bytes_over_time() {
    let mut seg = Segmenter::new(Config::default());
    assert_eq!(seg.bitrate_bps(), 0);
    seg.set_video_config(video_cfg());
    feed(&mut seg, 0, 3, 30, false);
    let bytes: usize = seg
        .window
        .iter()
        .map(|s| s.data.as_ref().unwrap().len())
        .sum();
    let secs: f64 = seg.window.iter().map(|s| s.duration).sum();
    assert_eq!(seg.bitrate_bps(), (bytes as f64 * 8.0 / secs) as u64);
    assert!(seg.bitrate_bps() > 0);
}

#[test]
fn segment_body_is_its_parts() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(video_cfg());
    let events = feed(&mut seg, 0, 3, 30, false);
    let body = seg.segment(1).expect("segment 1");
    let parts: Vec<u8> = (0..3)
        .flat_map(|i| seg.part(1, i).expect("part").to_vec())
        .collect();
    assert_eq!(body.to_vec(), parts);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Segment { msn: 1, data, .. } if *data == body)));
}

#[test]
fn long_gops_make_long_segments_and_raise_the_target() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(video_cfg());
    feed(&mut seg, 0, 9, 120, false);
    // Keyframes every 4 s: segments of 4 s, twelve parts each.
    assert_eq!(seg.window.len(), 2);
    assert!((seg.window[0].duration - 4.0).abs() < 0.01);
    assert_eq!(seg.window[0].parts.len(), 12);
    assert!(seg.playlist(true).contains("#EXT-X-TARGETDURATION:4\n"));
}

#[test]
fn blocking_reload_conditions() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(video_cfg());
    assert!(!seg.has(0, Some(0)));
    feed(&mut seg, 0, 2, 30, false);
    // Segment 0 complete, segment 1 open with some parts.
    assert!(seg.has(0, None));
    assert!(seg.has(0, Some(2)));
    let (msn, idx) = seg.last_part().expect("parts exist");
    assert_eq!(msn, 1);
    assert!(seg.has(1, Some(idx)));
    assert!(!seg.has(1, Some(idx + 1)));
    assert!(!seg.has(1, None));
    assert!(!seg.has(2, Some(0)));
    seg.finish();
    assert!(seg.has(7, Some(3)), "an ended stream blocks nobody");
    let text = seg.playlist(true);
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert!(!text.contains("PRELOAD-HINT"));
}

#[test]
fn a_hinted_part_cancelled_by_a_keyframe_waits_for_the_next_segment() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(video_cfg());
    // 30 fps: parts of exactly ten frames, so at a keyframe the open part is always empty and
    // the hint (segment 0, part 3) is never made.
    for i in 0..30u64 {
        seg.push_video(i * 1000 / 30, 0, i == 0, frame(1), 0);
    }
    let open = seg.open.as_ref().expect("open segment");
    assert_eq!((open.msn, open.parts.len()), (0, 2));
    assert!(seg
        .playlist(true)
        .contains("PRELOAD-HINT:TYPE=PART,URI=\"p0.2.m4s\""));
    seg.push_video(1000, 0, true, frame(1), 0); // closes part 2 and, next frame, segment 0
    seg.push_video(1033, 0, false, frame(1), 0);
    assert_eq!(seg.window.len(), 1);
    assert_eq!(seg.window[0].parts.len(), 3);
    assert!(seg.has(0, Some(2)));
    // Part (0, 3) never comes: it stands for (1, 0), which does not exist yet.
    assert!(!seg.has(0, Some(3)));
    assert!(!seg.has(1, Some(0)));
    for i in 2..12u64 {
        seg.push_video(1000 + i * 1000 / 30, 0, false, frame(1), 0);
    }
    assert!(seg.has(1, Some(0)));
    assert!(seg.has(0, Some(3)));
}

#[test]
fn timestamps_going_backwards_or_jumping_are_discontinuities() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(video_cfg());
    seg.set_audio_config(audio_cfg());
    feed(&mut seg, 50_000, 2, 30, true);
    // The encoder restarted its clock.
    feed(&mut seg, 0, 2, 30, true);
    // And then leapt an hour ahead.
    let events = feed(&mut seg, 3_600_000, 2, 30, true);
    let disc: Vec<u64> = seg
        .window
        .iter()
        .filter(|s| s.discontinuity)
        .map(|s| s.msn)
        .collect();
    assert_eq!(disc.len(), 2, "{disc:?}");
    let text = seg.playlist(true);
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 2, "{text}");
    // Same codecs, but each restart gets its own init segment epoch.
    assert!(text.contains("init2.mp4"), "{text}");
    assert!(events.iter().any(|e| matches!(e, Event::Init { epoch: 2 })));
    // Segments stay monotonic in MSN.
    let msns: Vec<u64> = seg.window.iter().map(|s| s.msn).collect();
    assert!(msns.windows(2).all(|w| w[1] == w[0] + 1), "{msns:?}");
}

#[test]
fn reconnect_continues_the_window_after_a_discontinuity() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(video_cfg());
    feed(&mut seg, 0, 3, 30, false);
    seg.break_stream();
    let before = seg.window.len();
    feed(&mut seg, 0, 3, 30, false);
    let after = &seg.window[before];
    assert!(after.discontinuity);
    assert_eq!(after.msn, seg.window[before - 1].msn + 1);
    assert!(seg.playlist(false).contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn discontinuity_sequence_counts_what_left_the_window() {
    let mut seg = Segmenter::new(Config {
        window_segments: 2,
        ..Config::default()
    });
    seg.set_video_config(video_cfg());
    feed(&mut seg, 0, 2, 30, false);
    seg.break_stream();
    feed(&mut seg, 0, 6, 30, false);
    let text = seg.playlist(false);
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
}

#[test]
fn audio_only_streams_are_cut_by_audio_time() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_audio_config(audio_cfg());
    for i in 0..300u64 {
        seg.push_audio(i * 1024 * 1000 / 48_000, frame(1), 0);
    }
    // 300 frames × 21.3 ms = 6.4 s: six one-second segments of independent parts.
    assert_eq!(seg.window.len(), 6);
    for s in &seg.window {
        assert!(s.parts.iter().all(|p| p.independent && p.duration <= 0.334));
        assert!((s.duration - 1.0).abs() < 0.05, "{}", s.duration);
    }
    assert_eq!(seg.codecs(), "mp4a.40.2");
}

#[test]
fn audio_holes_keep_part_samples_contiguous() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_audio_config(audio_cfg());
    seg.push_audio(0, frame(1), 0);
    seg.push_audio(21, frame(1), 0);
    // 200 ms of audio missing.
    seg.push_audio(250, frame(1), 0);
    let a = &seg.part.audio;
    assert_eq!(a.len(), 3);
    assert_eq!(a[1].dts + u64::from(a[1].duration), a[2].dts);
    assert_eq!(a[2].dts, 12_000);
}

#[test]
fn codec_change_starts_a_new_init() {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(video_cfg());
    feed(&mut seg, 0, 2, 30, false);
    seg.set_video_config(video_cfg()); // same bytes: nothing happens
    assert_eq!(seg.epoch, Some(0));
    seg.set_audio_config(audio_cfg()); // a track appears
    let events = feed(&mut seg, 2000, 2, 30, false);
    assert!(events.contains(&Event::Init { epoch: 1 }));
    assert_eq!(seg.codecs(), "avc1.42c00d,mp4a.40.2");
}

mod limits {
    use super::*;

    #[test]
    fn frozen_timestamps_cannot_grow_memory() {
        let mut seg = Segmenter::new(Config::default());
        seg.set_video_config(
            AvcConfig::parse(&Bytes::from_static(&[
                0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01,
                0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0,
                0xf1, 0x42, 0xa4, 0x80, 0x01, 0x00, 0x05, 0x68, 0xcb, 0x83, 0xcb, 0x20,
            ]))
            .expect("fixture"),
        );
        // 200,000 frames all stamped 1000 ms, a keyframe every 30.
        for i in 0..200_000u32 {
            seg.push_video(
                1000,
                0,
                i % 30 == 0,
                Bytes::from_static(&[0, 0, 0, 1, 0x65]),
                0,
            );
            while seg.poll_event().is_some() {}
        }
        assert!(seg.part.video.len() < MAX_PART_SAMPLES);
        assert!(seg
            .open
            .as_ref()
            .is_some_and(|s| s.parts.len() <= MAX_PARTS));
        assert!(seg.window.len() <= Config::default().window_segments);
        assert!(seg.has_media());
    }
}

mod audio_limits {
    use super::*;

    #[test]
    fn audio_after_video_stops_cannot_grow_a_segment_forever() {
        let mut seg = Segmenter::new(Config::default());
        seg.set_video_config(video_cfg());
        seg.set_audio_config(audio_cfg());
        seg.push_video(0, 0, true, frame(1), 0);
        seg.push_video(33, 0, false, frame(1), 0);
        // Video stops; six hours of audio follow (frames of 21.3 ms).
        for i in 0..1_000_000u64 {
            seg.push_audio(33 + i * 1024 * 1000 / 48_000, frame(1), 0);
            while seg.poll_event().is_some() {}
        }
        assert!(seg
            .open
            .as_ref()
            .is_some_and(|s| s.parts.len() <= MAX_PARTS));
        assert!(seg.window.len() <= Config::default().window_segments);
        assert!(seg.part.audio.len() < MAX_PART_SAMPLES);
    }
}
