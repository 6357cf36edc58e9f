//! A stored upload is untrusted: the top-level box walk, mp4parse's reading of the `moov`, the
//! sample tables checked against the file, and the remux into segments must refuse garbage with
//! an error, never panic, and never index outside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((movie, events)) = moim_media::mp4::remux_in_memory(data) {
        for t in &movie.tracks {
            for s in &t.samples {
                assert!(s.offset + u64::from(s.size) <= data.len() as u64);
            }
        }
        let _ = events.len();
    }
});
