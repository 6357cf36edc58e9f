//! What a WHIP or WHEP client sends the SFU: an SDP offer (any text) and then datagrams (any
//! bytes, STUN-, DTLS- or RTP-looking or not). An offer is taken or refused with a reason; no
//! datagram, however made, panics the core or ends a peer it does not belong to.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use moim::sfu::core::{Core, Limits, Role};

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut core = Core::new(
        vec!["127.0.0.1:5000".parse().unwrap()],
        Limits {
            viewers_per_room: 4,
            peers: 8,
        },
    );
    // The first byte splits the input: an offer, then datagrams of 1 + (byte % 200) bytes.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize * rest.len()) / 255;
    let (offer, mut datagrams) = rest.split_at(at.min(rest.len()));
    let offer = String::from_utf8_lossy(offer);
    for role in [Role::Publisher, Role::Viewer] {
        if let Err(e) = core.offer(now, "room", role, &offer) {
            assert!(!e.to_string().is_empty());
        }
    }
    let source = "127.0.0.9:9000".parse().unwrap();
    let destination = "127.0.0.1:5000".parse().unwrap();
    let mut out = Vec::new();
    let mut t = now;
    while let Some((&len, tail)) = datagrams.split_first() {
        let n = (len as usize % 200 + 1).min(tail.len());
        let (d, next) = tail.split_at(n);
        core.receive(t, source, destination, d);
        t += Duration::from_millis(7);
        core.poll(t, &mut out);
        datagrams = next;
    }
    assert!(core.len() <= 2);
});
