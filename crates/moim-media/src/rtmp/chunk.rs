//! The chunk stream layer: reassembling incoming chunks into messages and splitting outgoing
//! messages into chunks.
//!
//! Incoming payload bytes are copied once, straight from the input buffer into the message being
//! assembled, as soon as they arrive; only a chunk *header* is ever waited for in full (at most 18
//! bytes). So feeding one byte at a time costs no re-parsing, and a 4 MiB frame is never scanned
//! twice.

use std::collections::HashMap;

use bytes::{Buf, Bytes, BytesMut};

use super::message::Message;
use super::{RtmpError, MAX_CHUNK_SIZE, MAX_CHUNK_STREAMS, MAX_PARTIAL_MESSAGES};

/// Chunk size of both directions until a Set Chunk Size says otherwise.
pub(crate) const DEFAULT_CHUNK_SIZE: u32 = 128;
/// A 24-bit timestamp field with this value means "the real one follows in 4 bytes".
const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;
/// Largest buffer reserved up front for a message; beyond this it grows with the data.
const INITIAL_RESERVE: usize = 64 * 1024;

/// What one chunk stream remembers between headers, so later headers can omit it.
#[derive(Default)]
struct ChunkStream {
    timestamp: u32,
    /// The last timestamp field: a delta after fmt 1/2, the absolute value after fmt 0. A fmt 3
    /// header that starts a new message adds it again, as the spec prescribes.
    delta: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    /// The last fmt 0/1/2 header used the extended timestamp, so fmt 3 headers repeat it.
    extended: bool,
    /// Payload received so far of the message in progress.
    partial: Option<Vec<u8>>,
}

/// A parsed chunk header, not yet applied to its chunk stream.
struct Header {
    /// Bytes the header occupies on the wire.
    len: usize,
    fmt: u8,
    csid: u32,
    ts_field: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    extended: Option<u32>,
}

/// Reassembles messages from incoming chunks.
pub(crate) struct ChunkReader {
    chunk_size: usize,
    max_message: usize,
    streams: HashMap<u32, ChunkStream>,
    /// The chunk whose header has been read but whose payload is still arriving:
    /// (chunk stream id, payload bytes left in this chunk).
    current: Option<(u32, usize)>,
    partial_count: usize,
    /// Sum of the declared lengths of the messages in progress.
    partial_declared: usize,
}

impl ChunkReader {
    pub(crate) fn new(max_message: usize) -> Self {
        ChunkReader {
            chunk_size: DEFAULT_CHUNK_SIZE as usize,
            max_message,
            streams: HashMap::new(),
            current: None,
            partial_count: 0,
            partial_declared: 0,
        }
    }

    /// Applies a Set Chunk Size from the peer to the chunks that follow it.
    pub(crate) fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        if size == 0 || size & 0x8000_0000 != 0 {
            return Err(RtmpError::InvalidChunkSize(size));
        }
        if size > MAX_CHUNK_SIZE {
            return Err(RtmpError::ChunkTooLarge { size });
        }
        self.chunk_size = size as usize;
        Ok(())
    }

    /// Drops the message in progress on `csid` (Abort Message).
    pub(crate) fn abort(&mut self, csid: u32) {
        if let Some(stream) = self.streams.get_mut(&csid) {
            if stream.partial.take().is_some() {
                self.partial_count -= 1;
                self.partial_declared -= stream.length;
            }
        }
    }

    /// Consumes chunks from `buf` until a message completes or the buffer runs dry. Bytes of an
    /// incomplete header stay in `buf`; everything else is consumed.
    pub(crate) fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, RtmpError> {
        loop {
            if let Some((csid, left)) = self.current {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = left.min(buf.len());
                let stream = self
                    .streams
                    .get_mut(&csid)
                    .expect("a chunk in progress belongs to a known chunk stream");
                let payload = stream
                    .partial
                    .as_mut()
                    .expect("a chunk in progress belongs to a partial message");
                payload.extend_from_slice(&buf[..n]);
                buf.advance(n);
                if n < left {
                    self.current = Some((csid, left - n));
                    return Ok(None);
                }
                self.current = None;
                if payload.len() == stream.length {
                    let payload = stream.partial.take().unwrap_or_default();
                    self.partial_count -= 1;
                    self.partial_declared -= stream.length;
                    return Ok(Some(Message {
                        type_id: stream.type_id,
                        stream_id: stream.stream_id,
                        timestamp: stream.timestamp,
                        payload: Bytes::from(payload),
                    }));
                }
                continue;
            }
            let Some(header) = self.parse_header(buf)? else {
                return Ok(None);
            };
            buf.advance(header.len);
            if let Some(message) = self.start_chunk(&header)? {
                return Ok(Some(message));
            }
        }
    }

    /// Parses the header at the start of `buf` without consuming it; `None` if incomplete.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, RtmpError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3F {
            0 => match buf.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(None),
            },
            1 => match buf.get(1..3) {
                Some(b) => (64 + u32::from(b[0]) + 256 * u32::from(b[1]), 3),
                None => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let known = self.streams.get(&csid);
        if fmt != 0 && known.is_none() {
            return Err(RtmpError::UnknownChunkStream(csid));
        }
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(h) = buf.get(pos..pos + header_len) else {
            return Ok(None);
        };
        pos += header_len;
        let be24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]);
        let ts_field = if fmt < 3 { be24(h) } else { 0 };
        let (length, type_id) = if fmt < 2 {
            (be24(&h[3..]) as usize, h[6])
        } else {
            (0, 0)
        };
        let stream_id = if fmt == 0 {
            u32::from_le_bytes([h[7], h[8], h[9], h[10]])
        } else {
            0
        };
        let uses_extended = match known {
            Some(stream) if fmt == 3 => stream.extended,
            _ => ts_field == EXTENDED_TIMESTAMP,
        };
        let extended = if uses_extended {
            let Some(b) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        } else {
            None
        };
        Ok(Some(Header {
            len: pos,
            fmt,
            csid,
            ts_field,
            length,
            type_id,
            stream_id,
            extended,
        }))
    }

    /// Applies a header to its chunk stream. Returns a message at once if it is empty.
    fn start_chunk(&mut self, h: &Header) -> Result<Option<Message>, RtmpError> {
        if h.fmt < 2 && h.length > self.max_message {
            return Err(RtmpError::MessageTooLarge {
                size: h.length,
                max: self.max_message,
            });
        }
        if !self.streams.contains_key(&h.csid) && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(RtmpError::TooManyChunkStreams);
        }
        let chunk_size = self.chunk_size;
        let stream = self.streams.entry(h.csid).or_default();

        if let Some(partial) = &stream.partial {
            if h.fmt != 3 {
                return Err(RtmpError::Protocol(
                    "new message header before the previous message on its chunk stream ended",
                ));
            }
            // A continuation: its (possibly repeated extended) timestamp changes nothing.
            let left = (stream.length - partial.len()).min(chunk_size);
            self.current = Some((h.csid, left));
            return Ok(None);
        }

        let field = h.extended.unwrap_or(h.ts_field);
        match h.fmt {
            0 => {
                stream.timestamp = field;
                stream.delta = field;
                stream.stream_id = h.stream_id;
            }
            1 | 2 => {
                stream.delta = field;
                stream.timestamp = stream.timestamp.wrapping_add(field);
            }
            _ => {
                let delta = h.extended.unwrap_or(stream.delta);
                stream.timestamp = stream.timestamp.wrapping_add(delta);
            }
        }
        if h.fmt < 3 {
            stream.extended = h.extended.is_some();
        }
        if h.fmt < 2 {
            stream.length = h.length;
            stream.type_id = h.type_id;
        }

        if stream.length == 0 {
            return Ok(Some(Message {
                type_id: stream.type_id,
                stream_id: stream.stream_id,
                timestamp: stream.timestamp,
                payload: Bytes::new(),
            }));
        }
        if self.partial_count >= MAX_PARTIAL_MESSAGES {
            return Err(RtmpError::TooManyPartialMessages);
        }
        let declared = self.partial_declared + stream.length;
        if declared > self.max_message.saturating_mul(2) {
            return Err(RtmpError::MessageTooLarge {
                size: declared,
                max: self.max_message.saturating_mul(2),
            });
        }
        self.partial_count += 1;
        self.partial_declared = declared;
        stream.partial = Some(Vec::with_capacity(
            stream.length.min(chunk_size).min(INITIAL_RESERVE),
        ));
        self.current = Some((h.csid, stream.length.min(chunk_size)));
        Ok(None)
    }
}

/// Splits outgoing messages into chunks: a fmt 0 header, then fmt 3 continuations.
pub(crate) struct ChunkWriter {
    chunk_size: usize,
}

impl ChunkWriter {
    pub(crate) fn new() -> Self {
        ChunkWriter {
            chunk_size: DEFAULT_CHUNK_SIZE as usize,
        }
    }

    /// Switches the size for messages written from now on; the caller has already written the
    /// Set Chunk Size message that tells the peer.
    pub(crate) fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE) as usize;
    }

    /// Appends `payload` as one message on chunk stream `csid` (2..=63).
    pub(crate) fn write(
        &self,
        out: &mut Vec<u8>,
        csid: u8,
        type_id: u8,
        stream_id: u32,
        timestamp: u32,
        payload: &[u8],
    ) {
        debug_assert!((2..64).contains(&csid), "one-byte chunk stream ids only");
        debug_assert!(payload.len() <= 0xFF_FFFF, "our messages are small");
        let extended = timestamp >= EXTENDED_TIMESTAMP;
        let field = if extended {
            EXTENDED_TIMESTAMP
        } else {
            timestamp
        };
        out.push(csid);
        out.extend_from_slice(&field.to_be_bytes()[1..]);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        out.push(type_id);
        out.extend_from_slice(&stream_id.to_le_bytes());
        if extended {
            out.extend_from_slice(&timestamp.to_be_bytes());
        }
        for (i, chunk) in payload.chunks(self.chunk_size).enumerate() {
            if i > 0 {
                out.push(0xC0 | csid);
                if extended {
                    out.extend_from_slice(&timestamp.to_be_bytes());
                }
            }
            out.extend_from_slice(chunk);
        }
    }
}
