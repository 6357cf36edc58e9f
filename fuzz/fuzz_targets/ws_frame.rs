//! Client WebSocket frames are the untrusted input of every chat connection: any bytes must
//! either parse or be refused with an error code, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moim::domain::text;
use moim::realtime::protocol::{self, parse_client, ClientFrame};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match parse_client(s) {
        Ok(ClientFrame::Send { text: t, nonce }) => {
            assert!(nonce.map_or(true, |n| n.len() <= 64));
            if let Ok(clean) = text::clean(&t) {
                let n = clean.chars().count();
                assert!((1..=text::MAX_CHARS).contains(&n));
                assert!(!clean.chars().any(char::is_control));
            }
        }
        Ok(ClientFrame::Ping) => {}
        // What parses is a finite number (JSON has no NaN or infinity), echoed back as is.
        Ok(ClientFrame::TimePing { t0 }) => assert!(t0.is_finite()),
        Ok(ClientFrame::PartySeek { position_s: x })
        | Ok(ClientFrame::PartyRate { rate: x })
        | Ok(ClientFrame::PartyReport { position_s: x, .. }) => assert!(x.is_finite()),
        Ok(ClientFrame::PartyQueue { video_ids: l })
        | Ok(ClientFrame::PartyMode { selected: l, .. }) => {
            assert!(l.len() <= protocol::MAX_PARTY_LIST)
        }
        Ok(_) => {}
        Err(e) => assert!(!e.code().is_empty()),
    }
});
