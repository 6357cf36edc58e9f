//! RTMP message type ids and the payloads of the control messages we send.

use bytes::Bytes;

pub(crate) const SET_CHUNK_SIZE: u8 = 1;
pub(crate) const ABORT: u8 = 2;
pub(crate) const ACKNOWLEDGEMENT: u8 = 3;
pub(crate) const USER_CONTROL: u8 = 4;
pub(crate) const WINDOW_ACK_SIZE: u8 = 5;
pub(crate) const SET_PEER_BANDWIDTH: u8 = 6;
pub(crate) const AUDIO: u8 = 8;
pub(crate) const VIDEO: u8 = 9;
pub(crate) const DATA_AMF3: u8 = 15;
pub(crate) const COMMAND_AMF3: u8 = 17;
pub(crate) const DATA_AMF0: u8 = 18;
pub(crate) const COMMAND_AMF0: u8 = 20;
pub(crate) const AGGREGATE: u8 = 22;

/// User Control event types.
pub(crate) const USER_STREAM_BEGIN: u16 = 0;
pub(crate) const USER_PING_REQUEST: u16 = 6;
pub(crate) const USER_PING_RESPONSE: u16 = 7;

/// Chunk stream for protocol control messages, fixed by the spec.
pub(crate) const CSID_CONTROL: u8 = 2;
/// Chunk stream for NetConnection commands (message stream 0).
pub(crate) const CSID_COMMAND: u8 = 3;
/// Chunk stream for NetStream commands (`onStatus` on the publishing stream).
pub(crate) const CSID_STREAM: u8 = 5;

/// A reassembled message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    pub type_id: u8,
    pub stream_id: u32,
    /// Milliseconds, 32-bit as on the wire (wraps after ~49 days).
    pub timestamp: u32,
    pub payload: Bytes,
}

/// A big-endian u32 payload: Set Chunk Size, Acknowledgement, Window Acknowledgement Size.
pub(crate) fn u32_payload(value: u32) -> [u8; 4] {
    value.to_be_bytes()
}

/// Set Peer Bandwidth with limit type 2 (dynamic), as servers conventionally send.
pub(crate) fn peer_bandwidth_payload(window: u32) -> [u8; 5] {
    let w = window.to_be_bytes();
    [w[0], w[1], w[2], w[3], 2]
}

/// A User Control event with a 4-byte argument (stream id or ping timestamp).
pub(crate) fn user_control_payload(event: u16, arg: u32) -> [u8; 6] {
    let e = event.to_be_bytes();
    let a = arg.to_be_bytes();
    [e[0], e[1], a[0], a[1], a[2], a[3]]
}

/// Reads the big-endian u32 that starts a control message payload.
pub(crate) fn read_u32(payload: &[u8]) -> Option<u32> {
    let bytes = payload.get(..4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}
