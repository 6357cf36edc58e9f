//! Uploaded pictures are untrusted: the header reader must refuse garbage with an error, never
//! panic, and never say a picture has a side of zero pixels.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = moim_media::image::read_header(data) {
        assert!(h.width > 0 && h.height > 0);
        assert!(h.pixels() <= u64::from(u32::MAX) * u64::from(u32::MAX));
    }
});
