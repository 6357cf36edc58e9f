//! The whole RTMP server session (handshake, chunk stream, commands) fed untrusted bytes in
//! arbitrary splits: it must answer, emit events or fail with an error, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moim_media::rtmp::{Event, ServerSession, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let mut session = ServerSession::new(SessionConfig {
        max_message_bytes: 64 * 1024,
        ..SessionConfig::default()
    });
    // The first byte picks a split size, so one input also exercises partial reads.
    let (split, rest) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s % 64) + 1, rest),
        None => return,
    };
    for chunk in rest.chunks(split) {
        let failed = session.feed(chunk).is_err();
        while let Some(ev) = session.poll_event() {
            if let Event::Publish { .. } = ev {
                session.accept_publish();
            }
        }
        let _ = session.take_output();
        if failed {
            assert!(session.feed(b"x").is_err(), "a failed session stays failed");
            break;
        }
    }
});
