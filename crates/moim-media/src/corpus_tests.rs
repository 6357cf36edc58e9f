//! The fuzz seed corpora (`fuzz/corpus/*`), replayed as ordinary tests so every `cargo test` runs
//! the nasty cases without a fuzzer: none may panic.

use bytes::Bytes;

use crate::aac::AacConfig;
use crate::avc::AvcConfig;
use crate::rtmp::{Event, ServerSession, SessionConfig};
use crate::{amf0, flv};

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/../../fuzz/corpus/{name}", crate::source_dir());
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {dir}: {e}"))
        .map(|e| {
            let e = e.expect("readable entry");
            let data = std::fs::read(e.path()).expect("readable seed");
            (e.file_name().to_string_lossy().into_owned(), data)
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "corpus {name} has {} seeds", seeds.len());
    seeds
}

#[test]
fn amf0_seeds() {
    let mut decoded = 0;
    for (_, data) in corpus("amf0") {
        if let Ok(values) = amf0::decode_all(&data) {
            decoded += 1;
            let mut out = Vec::new();
            amf0::encode(&values, &mut out);
            assert!(amf0::decode_all(&out).is_ok());
        }
    }
    assert!(decoded >= 3, "the well-formed seeds decode");
}

#[test]
fn rtmp_session_seeds() {
    let mut published = 0;
    let mut failed = 0;
    for (name, data) in corpus("rtmp_session") {
        let split = usize::from(data[0] % 64) + 1;
        let mut session = ServerSession::new(SessionConfig::default());
        let mut media = 0;
        for chunk in data[1..].chunks(split) {
            let err = session.feed(chunk).is_err();
            while let Some(ev) = session.poll_event() {
                match ev {
                    Event::Publish { .. } => session.accept_publish(),
                    Event::Video { .. } | Event::Audio { .. } => media += 1,
                    _ => {}
                }
            }
            let _ = session.take_output();
            if err {
                failed += 1;
                break;
            }
        }
        if name.starts_with("ffmpeg_publish") {
            assert!(media > 0, "{name}: the captured publish carries media");
            published += 1;
        }
    }
    assert_eq!(published, 2);
    assert!(failed >= 4, "the malformed seeds are refused ({failed})");
}

#[test]
fn flv_tag_seeds() {
    for (_, data) in corpus("flv_tag") {
        let body = Bytes::from(data);
        if let Ok(flv::VideoTag::AvcSequenceHeader(rec)) = flv::parse_video(&body) {
            let _ = AvcConfig::parse(&rec);
        }
        if let Ok(flv::AudioTag::AacSequenceHeader(asc)) = flv::parse_audio(&body) {
            let _ = AacConfig::parse(&asc);
        }
    }
}

#[test]
fn segmenter_seeds() {
    use crate::segmenter::{Config, Segmenter};
    const AVCC: &[u8] = &[
        0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41,
        0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42,
        0xa4, 0x80, 0x01, 0x00, 0x05, 0x68, 0xcb, 0x83, 0xcb, 0x20,
    ];
    for (name, data) in corpus("segmenter") {
        let mut seg = Segmenter::new(Config::default());
        seg.set_video_config(AvcConfig::parse(&Bytes::from_static(AVCC)).expect("fixture"));
        seg.set_audio_config(
            AacConfig::parse(&Bytes::from_static(&[0x11, 0x90])).expect("fixture"),
        );
        let frame = Bytes::from_static(&[0, 0, 0, 1, 0x65]);
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
        seg.finish();
        assert!(seg.has_media(), "{name}: produced media");
        assert!(seg.playlist(true).ends_with("#EXT-X-ENDLIST\n"));
    }
}

#[test]
fn mp4_seeds() {
    let mut remuxed = 0;
    for (name, data) in corpus("mp4") {
        if crate::mp4::remux_in_memory(&data).is_ok() {
            remuxed += 1;
        }
        // Every prefix of a good file is refused cleanly or remuxes what it holds.
        if name.starts_with("h264-aac") {
            for cut in (0..data.len()).step_by(997) {
                let _ = crate::mp4::remux_in_memory(&data[..cut]);
            }
        }
    }
    assert!(remuxed >= 4, "the well-formed seeds remux");
}

#[test]
fn image_header_seeds() {
    let mut read = 0;
    for (name, data) in corpus("image_header") {
        if let Ok(h) = crate::image::read_header(&data) {
            assert!(h.width > 0 && h.height > 0, "{name}");
            read += 1;
        }
    }
    assert!(read >= 3, "the well-formed seeds are read");
}

#[test]
fn rtc_feed_seeds() {
    for (_, data) in corpus("rtc_feed") {
        crate::rtc::replay(&data);
    }
}
