//! FLV audio/video tag bodies and the codec configurations inside them (AVC decoder config with
//! its SPS, AAC AudioSpecificConfig) come straight from the publisher: parse or refuse, never panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moim_media::aac::AacConfig;
use moim_media::avc::AvcConfig;
use moim_media::flv::{self, AudioTag, VideoTag};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(VideoTag::AvcSequenceHeader(rec)) = flv::parse_video(&body) {
        if let Ok(cfg) = AvcConfig::parse(&rec) {
            let _ = cfg.codec_string();
        }
    }
    if let Ok(AudioTag::AacSequenceHeader(asc)) = flv::parse_audio(&body) {
        if let Ok(cfg) = AacConfig::parse(&asc) {
            assert!(cfg.sample_rate > 0);
        }
    }
    // The raw record parsers see bytes without the FLV header too.
    let _ = AvcConfig::parse(&body);
    let _ = AacConfig::parse(&body);
});
