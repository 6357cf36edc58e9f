//! The segmenter takes the publisher's timestamps on trust: jumps, backwards steps, duplicates and
//! huge values must become discontinuities or be absorbed, never a panic, and the playlist must
//! stay renderable.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moim_media::aac::AacConfig;
use moim_media::avc::AvcConfig;
use moim_media::segmenter::{Config, Segmenter};

/// avcC of a 320×240 baseline stream; AudioSpecificConfig AAC-LC 48 kHz stereo.
const AVCC: &[u8] = &[
    0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb,
    0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    0x01, 0x00, 0x05, 0x68, 0xcb, 0x83, 0xcb, 0x20,
];
const ASC: &[u8] = &[0x11, 0x90];

fuzz_target!(|data: &[u8]| {
    let mut seg = Segmenter::new(Config::default());
    seg.set_video_config(AvcConfig::parse(&Bytes::from_static(AVCC)).unwrap());
    seg.set_audio_config(AacConfig::parse(&Bytes::from_static(ASC)).unwrap());
    let frame = Bytes::from_static(&[0, 0, 0, 1, 0x65]);
    // Each 6-byte record: kind, 4 bytes of timestamp, composition time.
    for rec in data.chunks_exact(6) {
        let ts = u64::from(u32::from_le_bytes([rec[1], rec[2], rec[3], rec[4]]));
        match rec[0] % 5 {
            0 => seg.push_video(ts, i32::from(rec[5] as i8), true, frame.clone(), 0),
            1 | 2 => seg.push_video(ts, i32::from(rec[5] as i8), false, frame.clone(), 0),
            3 => seg.push_audio(ts, frame.clone(), 0),
            _ => seg.break_stream(),
        }
        while seg.poll_event().is_some() {}
    }
    let text = seg.playlist(true);
    assert!(text.starts_with("#EXTM3U\n"));
    seg.finish();
    assert!(seg.playlist(false).ends_with("#EXT-X-ENDLIST\n"));
});
