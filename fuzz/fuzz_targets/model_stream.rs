//! A model server's event stream is read line by line: whatever the bytes, a line is one of the
//! known events and never a panic; an error's message stays short.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moim::ai::{parse_event, Event};

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        if let Event::Error(m) = parse_event(line) {
            assert!(m.chars().count() <= 300);
        }
    }
});
