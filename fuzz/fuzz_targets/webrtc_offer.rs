//! What a WHIP or WHEP client sends the SFU: an SDP offer (any text) and then datagrams (any
//! bytes, STUN-, DTLS- or RTP-looking or not). An offer is taken or refused with a reason; no
//! datagram, however made, panics the core or ends a peer it does not belong to.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| moim::sfu::core::replay(data));
