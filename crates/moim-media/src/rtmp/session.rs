//! [`ServerSession`]: messages in, replies and [`Event`]s out.
//!
//! This layer owns the command sequence of a publisher (`connect`, `releaseStream`, `FCPublish`,
//! `createStream`, `publish`, media, `FCUnpublish`/`deleteStream`) and the protocol control
//! messages; the chunk framing below it is [`super::chunk`].

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::chunk::{ChunkReader, ChunkWriter};
use super::handshake::Handshake;
use super::message::*;
use super::{Event, RtmpError, SessionConfig, MAX_CHUNK_SIZE};
use crate::amf0::{self, Value};

/// The smallest acknowledgement window we honour from a peer, so a window of 1 byte cannot make
/// us write an acknowledgement per byte received.
const MIN_PEER_WINDOW: u32 = 4096;
/// Peer bandwidth announced when acknowledgements are disabled (`window_ack_size == 0`).
const DEFAULT_PEER_BANDWIDTH: u32 = 2_500_000;

/// Where the one publish a session allows stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PublishState {
    Idle,
    /// [`Event::Publish`] emitted; waiting for accept/reject.
    Pending {
        stream_id: u32,
    },
    Publishing {
        stream_id: u32,
    },
    Rejected,
    /// [`Event::Unpublish`] emitted.
    Ended,
}

/// Extends 32-bit message timestamps to 64 bits. Audio and video share one timeline, and
/// each step is taken as a signed 32-bit difference, so small backward jumps between the two
/// stay backward instead of looking like a wrap.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    last: Option<(u32, u64)>,
}

impl Timeline {
    pub(super) fn extend(&mut self, ts: u32) -> u64 {
        let extended = match self.last {
            None => u64::from(ts),
            Some((last32, last64)) => {
                last64.saturating_add_signed(i64::from(ts.wrapping_sub(last32) as i32))
            }
        };
        self.last = Some((ts, extended));
        extended
    }
}

/// The server side of one RTMP connection that publishes (at most) one stream.
///
/// Sans-IO: feed it the bytes read from the socket, write out what [`take_output`] returns, and
/// handle [`poll_event`] until it returns `None`. Never panics on any input.
///
/// [`take_output`]: ServerSession::take_output
/// [`poll_event`]: ServerSession::poll_event
pub struct ServerSession {
    config: SessionConfig,
    handshake: Handshake,
    /// Received bytes not consumed yet: at most a partial handshake packet or chunk header,
    /// since payload bytes move straight into the message being assembled.
    input: BytesMut,
    output: Vec<u8>,
    events: VecDeque<Event>,
    reader: ChunkReader,
    writer: ChunkWriter,
    failed: bool,
    /// The application name, once connected.
    app: Option<String>,
    publish: PublishState,
    next_stream_id: u32,
    timeline: Timeline,
    bytes_in: u64,
    bytes_acked: u64,
    peer_window: Option<u32>,
}

impl ServerSession {
    /// A session waiting for the client's handshake.
    pub fn new(config: SessionConfig) -> Self {
        ServerSession {
            reader: ChunkReader::new(config.max_message_bytes),
            config,
            handshake: Handshake::AwaitC0C1,
            input: BytesMut::new(),
            output: Vec::new(),
            events: VecDeque::new(),
            writer: ChunkWriter::new(),
            failed: false,
            app: None,
            publish: PublishState::Idle,
            next_stream_id: 1,
            timeline: Timeline::default(),
            bytes_in: 0,
            bytes_acked: 0,
            peer_window: None,
        }
    }

    /// Feed bytes read from the socket (any split, even 1 byte at a time). Err = protocol
    /// violation: the caller writes out [`take_output`](Self::take_output) (it may hold the
    /// reason, e.g. for a refused `play`) and closes the connection. Events produced before the
    /// violation are still queued.
    pub fn feed(&mut self, input: &[u8]) -> Result<(), RtmpError> {
        if self.failed {
            return Err(RtmpError::Closed);
        }
        let result = self.process(input);
        if result.is_err() {
            self.failed = true;
            self.input = BytesMut::new();
        }
        result
    }

    /// Bytes to write to the socket (handshake replies, command responses, acks). Empty when
    /// nothing to send.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Answer a pending [`Event::Publish`]: sends onStatus NetStream.Publish.Start, after which
    /// the client sends metadata and media. Does nothing if no publish is pending.
    pub fn accept_publish(&mut self) {
        let PublishState::Pending { stream_id } = self.publish else {
            return;
        };
        self.publish = PublishState::Publishing { stream_id };
        let begin = user_control_payload(USER_STREAM_BEGIN, stream_id);
        self.send_control(USER_CONTROL, &begin);
        self.send_status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            "Publishing started.",
        );
    }

    /// Refuse a pending [`Event::Publish`]: sends onStatus error NetStream.Publish.Denied with
    /// `description` (ffmpeg prints it; OBS reports a failed connection). The caller then
    /// writes the output and closes. Does nothing if no publish is pending.
    pub fn reject_publish(&mut self, description: &str) {
        let PublishState::Pending { stream_id } = self.publish else {
            return;
        };
        self.publish = PublishState::Rejected;
        self.send_status(stream_id, "error", "NetStream.Publish.Denied", description);
    }

    fn process(&mut self, input: &[u8]) -> Result<(), RtmpError> {
        self.bytes_in += input.len() as u64;
        self.input.extend_from_slice(input);
        if self.handshake != Handshake::Done {
            self.handshake.advance(&mut self.input, &mut self.output)?;
            if self.handshake != Handshake::Done {
                return Ok(());
            }
        }
        while let Some(message) = self.reader.read(&mut self.input)? {
            self.handle_message(message)?;
        }
        self.acknowledge();
        Ok(())
    }

    /// Sends one Acknowledgement once a window's worth of bytes has arrived since the last.
    fn acknowledge(&mut self) {
        let window = match self.peer_window {
            Some(w) => w.max(MIN_PEER_WINDOW),
            None => self.config.window_ack_size,
        };
        if window == 0 || self.bytes_in - self.bytes_acked < u64::from(window) {
            return;
        }
        self.bytes_acked = self.bytes_in;
        // The sequence number is the byte count modulo 2^32, as the spec has it wrap.
        self.send_control(ACKNOWLEDGEMENT, &u32_payload(self.bytes_in as u32));
    }

    fn handle_message(&mut self, message: Message) -> Result<(), RtmpError> {
        let payload = &message.payload;
        match message.type_id {
            SET_CHUNK_SIZE => {
                let size = read_u32(payload).ok_or(RtmpError::Protocol("short Set Chunk Size"))?;
                self.reader.set_chunk_size(size)?;
            }
            ABORT => {
                if let Some(csid) = read_u32(payload) {
                    self.reader.abort(csid);
                }
            }
            WINDOW_ACK_SIZE => {
                if let Some(window) = read_u32(payload) {
                    self.peer_window = Some(window);
                }
            }
            USER_CONTROL => self.user_control(payload),
            AUDIO | VIDEO => self.media(message)?,
            AGGREGATE => self.aggregate(&message)?,
            DATA_AMF0 => self.data(payload),
            DATA_AMF3 => self.data(skip_amf3_marker(payload)),
            COMMAND_AMF0 => self.command(payload, message.stream_id)?,
            COMMAND_AMF3 => self.command(skip_amf3_marker(payload), message.stream_id)?,
            // Acknowledgement, Set Peer Bandwidth, shared objects and unknown types: nothing a
            // publish needs from them.
            _ => {}
        }
        Ok(())
    }

    fn user_control(&mut self, payload: &[u8]) {
        if payload.len() >= 6 && u16::from_be_bytes([payload[0], payload[1]]) == USER_PING_REQUEST {
            let ts = read_u32(&payload[2..]).unwrap_or(0);
            self.send_control(USER_CONTROL, &user_control_payload(USER_PING_RESPONSE, ts));
        }
    }

    fn media(&mut self, message: Message) -> Result<(), RtmpError> {
        // An empty tag carries nothing, and dropping it keeps a stream of one-byte headers from
        // turning into an event per input byte.
        if self.media_allowed()? && !message.payload.is_empty() {
            let timestamp = self.timeline.extend(message.timestamp);
            self.push_media(message.type_id, timestamp, message.payload);
        }
        Ok(())
    }

    /// Whether media may be delivered now; late packets after unpublishing are dropped.
    fn media_allowed(&self) -> Result<bool, RtmpError> {
        match self.publish {
            PublishState::Publishing { .. } => Ok(true),
            PublishState::Ended => Ok(false),
            _ => Err(RtmpError::MediaBeforePublish),
        }
    }

    fn push_media(&mut self, type_id: u8, timestamp: u64, data: Bytes) {
        self.events.push_back(if type_id == AUDIO {
            Event::Audio { timestamp, data }
        } else {
            Event::Video { timestamp, data }
        });
    }

    /// Splits an aggregate message (FLV tags back to back, each followed by a 4-byte back
    /// pointer). Tag timestamps count from the first tag's, rebased on the message timestamp.
    fn aggregate(&mut self, message: &Message) -> Result<(), RtmpError> {
        if !self.media_allowed()? {
            return Ok(());
        }
        let payload = &message.payload;
        let mut pos = 0;
        let mut first_ts = None;
        while payload.len() - pos >= 11 {
            let tag = &payload[pos..];
            let size = u32::from_be_bytes([0, tag[1], tag[2], tag[3]]) as usize;
            let ts = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
            let end = pos + 11 + size;
            if end > payload.len() {
                return Err(RtmpError::Protocol("truncated aggregate message"));
            }
            let base = *first_ts.get_or_insert(ts);
            if tag[0] == AUDIO || tag[0] == VIDEO {
                let ts32 = message.timestamp.wrapping_add(ts.wrapping_sub(base));
                let timestamp = self.timeline.extend(ts32);
                self.push_media(tag[0], timestamp, payload.slice(pos + 11..end));
            }
            pos = (end + 4).min(payload.len());
        }
        Ok(())
    }

    /// A data message. Metadata is optional, so one that does not decode is dropped rather than
    /// ending a stream that is otherwise fine.
    fn data(&mut self, payload: &[u8]) {
        if !matches!(self.publish, PublishState::Publishing { .. }) {
            return;
        }
        let Ok(mut values) = amf0::decode_all(payload) else {
            return;
        };
        if values.first().and_then(Value::as_str) == Some("@setDataFrame") {
            values.remove(0);
        }
        if !values.is_empty() {
            self.events.push_back(Event::Metadata(values));
        }
    }

    fn command(&mut self, payload: &[u8], stream_id: u32) -> Result<(), RtmpError> {
        let values = amf0::decode_all(payload)?;
        let Some(name) = values.first().and_then(Value::as_str) else {
            return Err(RtmpError::Protocol(
                "command message without a command name",
            ));
        };
        let txn = values.get(1).and_then(Value::as_f64).unwrap_or(0.0);
        let args = values.get(3..).unwrap_or_default();
        match name {
            "connect" => self.connect(txn, values.get(2)),
            "releaseStream" | "FCPublish" => {
                self.require_connected()?;
                self.send_result(txn, Value::Undefined);
                Ok(())
            }
            "createStream" => {
                self.require_connected()?;
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.saturating_add(1);
                self.send_result(txn, Value::Number(f64::from(id)));
                Ok(())
            }
            "publish" => self.publish(stream_id, args),
            "FCUnpublish" | "deleteStream" | "closeStream" => {
                self.unpublish();
                Ok(())
            }
            "play" | "play2" => {
                self.send_status(
                    stream_id,
                    "error",
                    "NetStream.Play.Failed",
                    "This server only accepts publishing.",
                );
                Err(RtmpError::PlayRefused)
            }
            // Replies to calls we never make; answering them would only confuse.
            "_result" | "_error" | "onStatus" => Ok(()),
            _ => {
                // A call we do not know still gets an answer, or the client may wait forever.
                if txn > 0.0 && self.app.is_some() {
                    self.send_result(txn, Value::Undefined);
                }
                Ok(())
            }
        }
    }

    fn require_connected(&self) -> Result<(), RtmpError> {
        match self.app {
            Some(_) => Ok(()),
            None => Err(RtmpError::Protocol("command before connect")),
        }
    }

    fn connect(&mut self, txn: f64, object: Option<&Value>) -> Result<(), RtmpError> {
        if self.app.is_some() {
            return Err(RtmpError::Protocol("second connect on one connection"));
        }
        let field = |key| {
            object
                .and_then(|o| o.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let app = field("app").unwrap_or_default();
        let tc_url = field("tcUrl");

        let window = self.config.window_ack_size;
        if window > 0 {
            self.send_control(WINDOW_ACK_SIZE, &u32_payload(window));
        }
        let bandwidth = if window > 0 {
            window
        } else {
            DEFAULT_PEER_BANDWIDTH
        };
        self.send_control(SET_PEER_BANDWIDTH, &peer_bandwidth_payload(bandwidth));
        let chunk_size = self.config.out_chunk_size.clamp(1, MAX_CHUNK_SIZE);
        self.send_control(SET_CHUNK_SIZE, &u32_payload(chunk_size));
        self.writer.set_chunk_size(chunk_size);

        let properties = Value::Object(vec![
            ("fmsVer".into(), Value::String("FMS/3,0,1,123".into())),
            ("capabilities".into(), Value::Number(31.0)),
        ]);
        let mut info = status_object(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
        );
        if let Value::Object(props) = &mut info {
            // AMF0 whatever the client offered: we do not decode AMF3.
            props.push(("objectEncoding".into(), Value::Number(0.0)));
        }
        self.send_command(
            CSID_COMMAND,
            0,
            &[
                Value::String("_result".into()),
                Value::Number(txn),
                properties,
                info,
            ],
        );
        self.app = Some(app.clone());
        self.events.push_back(Event::Connected { app, tc_url });
        Ok(())
    }

    fn publish(&mut self, stream_id: u32, args: &[Value]) -> Result<(), RtmpError> {
        let Some(app) = self.app.clone() else {
            return Err(RtmpError::Protocol("publish before connect"));
        };
        if self.publish != PublishState::Idle {
            return Err(RtmpError::Protocol("second publish on one connection"));
        }
        let name = args.first().and_then(Value::as_str).unwrap_or_default();
        // OBS and ffmpeg pass URL-style parameters after the key; they are not part of it.
        let stream_key = name.split('?').next().unwrap_or_default().to_owned();
        let publish_type = args
            .get(1)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .unwrap_or("live")
            .to_owned();
        self.publish = PublishState::Pending { stream_id };
        self.events.push_back(Event::Publish {
            app,
            stream_key,
            publish_type,
        });
        Ok(())
    }

    fn unpublish(&mut self) {
        match self.publish {
            PublishState::Publishing { stream_id } => {
                self.send_status(
                    stream_id,
                    "status",
                    "NetStream.Unpublish.Success",
                    "Stopped publishing.",
                );
            }
            PublishState::Pending { .. } => {}
            _ => return,
        }
        self.publish = PublishState::Ended;
        self.events.push_back(Event::Unpublish);
    }

    fn send_control(&mut self, type_id: u8, payload: &[u8]) {
        self.writer
            .write(&mut self.output, CSID_CONTROL, type_id, 0, 0, payload);
    }

    fn send_command(&mut self, csid: u8, stream_id: u32, values: &[Value]) {
        let mut payload = Vec::new();
        amf0::encode(values, &mut payload);
        self.writer
            .write(&mut self.output, csid, COMMAND_AMF0, stream_id, 0, &payload);
    }

    fn send_result(&mut self, txn: f64, value: Value) {
        self.send_command(
            CSID_COMMAND,
            0,
            &[
                Value::String("_result".into()),
                Value::Number(txn),
                Value::Null,
                value,
            ],
        );
    }

    fn send_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.send_command(
            CSID_STREAM,
            stream_id,
            &[
                Value::String("onStatus".into()),
                Value::Number(0.0),
                Value::Null,
                status_object(level, code, description),
            ],
        );
    }
}

fn status_object(level: &str, code: &str, description: &str) -> Value {
    Value::Object(vec![
        ("level".into(), Value::String(level.into())),
        ("code".into(), Value::String(code.into())),
        ("description".into(), Value::String(description.into())),
    ])
}

/// AMF3 command and data messages start with a format byte of 0 followed by plain AMF0, as
/// long as no value switches to AMF3 (which the decoder then refuses).
fn skip_amf3_marker(payload: &[u8]) -> &[u8] {
    payload.strip_prefix(&[0]).unwrap_or(payload)
}
