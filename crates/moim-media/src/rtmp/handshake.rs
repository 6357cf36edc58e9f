//! The server half of the simple (digest-less) RTMP handshake.
//!
//! C0 and C1 are answered with S0, S1 and S2 at once; C2 is then swallowed unchecked. S1 carries
//! zeros where the Flash digest handshake puts its version, which tells OBS (librtmp) and ffmpeg
//! not to look for a digest; S2 echoes C1, which is what both compare it with.

use bytes::{Buf, BytesMut};

use super::RtmpError;

/// Size of C1, C2, S1 and S2.
pub(crate) const PACKET_LEN: usize = 1536;
const VERSION: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// Waiting for C0 and C1.
    AwaitC0C1,
    /// S0, S1 and S2 sent; waiting for C2.
    AwaitC2,
    /// Chunks follow.
    Done,
}

impl Handshake {
    /// Consumes what it can of the handshake from `buf`, appending replies to `out`. Leaves `buf`
    /// at the first chunk byte once done.
    pub(crate) fn advance(
        &mut self,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<(), RtmpError> {
        if *self == Handshake::AwaitC0C1 {
            // Refuse a wrong version as soon as its byte arrives, not after 1536 more.
            if let Some(&version) = buf.first() {
                if version != VERSION {
                    return Err(RtmpError::UnsupportedVersion(version));
                }
            }
            if buf.len() < 1 + PACKET_LEN {
                return Ok(());
            }
            let c1 = &buf[1..1 + PACKET_LEN];
            out.reserve(1 + 2 * PACKET_LEN);
            out.push(VERSION);
            // S1: time 0, zero "version" (no digest), then filler that need not be random: it
            // only has to come back in C2, which nobody checks.
            out.extend_from_slice(&[0; 8]);
            let mut state = seed(c1);
            for _ in 0..(PACKET_LEN - 8) / 4 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                out.extend_from_slice(&state.to_le_bytes());
            }
            out.extend_from_slice(c1);
            buf.advance(1 + PACKET_LEN);
            *self = Handshake::AwaitC2;
        }
        if *self == Handshake::AwaitC2 && buf.len() >= PACKET_LEN {
            buf.advance(PACKET_LEN);
            *self = Handshake::Done;
        }
        Ok(())
    }
}

/// A non-zero xorshift seed derived from C1, so sessions do not all send identical S1 bytes.
fn seed(c1: &[u8]) -> u32 {
    let hash = c1.iter().fold(0x811C_9DC5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash | 1
}
