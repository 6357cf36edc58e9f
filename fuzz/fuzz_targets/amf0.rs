//! AMF0 arrives in every RTMP command and data message from an encoder: any bytes must decode or
//! be refused, never panic, and what decodes must survive a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moim_media::amf0;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf0::decode_all(data) {
        let mut out = Vec::new();
        amf0::encode(&values, &mut out);
        let again = amf0::decode_all(&out).expect("our own encoding decodes");
        // NaN != NaN, so compare the encodings instead of the values.
        let mut out2 = Vec::new();
        amf0::encode(&again, &mut out2);
        assert_eq!(out, out2);
    }
});
