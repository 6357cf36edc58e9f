//! Session tests against a scripted publisher that chunks like ffmpeg and OBS do. The server's
//! replies are parsed back with the session's own chunk reader and AMF0 decoder.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::chunk::ChunkReader;
use super::handshake::PACKET_LEN;
use super::message::*;
use super::*;
use crate::amf0::Value;

mod control;
mod errors;

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn n(number: f64) -> Value {
    Value::Number(number)
}

fn obj(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn amf(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    amf0::encode(values, &mut out);
    out
}

/// The publisher side of the chunk stream, with control over every header type.
struct Publisher {
    chunk_size: usize,
    /// Per chunk stream: the extended timestamp of its last fmt 0/1/2 header, if it had one.
    extended: HashMap<u32, Option<u32>>,
}

impl Publisher {
    fn new() -> Self {
        Publisher {
            chunk_size: 128,
            extended: HashMap::new(),
        }
    }

    /// The chunks of one message. `ts` is absolute for fmt 0, a delta for fmt 1 and 2, and
    /// unused for fmt 3 (which repeats the previous delta).
    fn chunks(
        &mut self,
        csid: u32,
        fmt: u8,
        ts: u32,
        type_id: u8,
        sid: u32,
        payload: &[u8],
    ) -> Vec<Vec<u8>> {
        let mut first = basic_header(fmt, csid);
        if fmt < 3 {
            first.extend_from_slice(&ts.min(0xFF_FFFF).to_be_bytes()[1..]);
            if fmt < 2 {
                first.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
                first.push(type_id);
            }
            if fmt == 0 {
                first.extend_from_slice(&sid.to_le_bytes());
            }
            self.extended.insert(csid, (ts >= 0xFF_FFFF).then_some(ts));
        }
        let extended = self.extended.get(&csid).copied().flatten();
        let mut pieces = payload.chunks(self.chunk_size);
        if let Some(ext) = extended {
            first.extend_from_slice(&ext.to_be_bytes());
        }
        first.extend_from_slice(pieces.next().unwrap_or_default());
        let mut chunks = vec![first];
        for piece in pieces {
            let mut chunk = basic_header(3, csid);
            if let Some(ext) = extended {
                chunk.extend_from_slice(&ext.to_be_bytes());
            }
            chunk.extend_from_slice(piece);
            chunks.push(chunk);
        }
        chunks
    }

    fn message(
        &mut self,
        csid: u32,
        fmt: u8,
        ts: u32,
        type_id: u8,
        sid: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        self.chunks(csid, fmt, ts, type_id, sid, payload).concat()
    }

    fn command(&mut self, csid: u32, sid: u32, values: &[Value]) -> Vec<u8> {
        self.message(csid, 0, 0, COMMAND_AMF0, sid, &amf(values))
    }

    /// Set Chunk Size on csid 2; later messages use the new size.
    fn set_chunk_size(&mut self, size: u32) -> Vec<u8> {
        let bytes = self.message(2, 0, 0, SET_CHUNK_SIZE, 0, &size.to_be_bytes());
        self.chunk_size = size as usize;
        bytes
    }
}

fn basic_header(fmt: u8, csid: u32) -> Vec<u8> {
    let fmt = fmt << 6;
    match csid {
        2..=63 => vec![fmt | csid as u8],
        64..=319 => vec![fmt, (csid - 64) as u8],
        _ => {
            let id = (csid - 64) as u16;
            vec![fmt | 1, id as u8, (id >> 8) as u8]
        }
    }
}

fn c0c1() -> Vec<u8> {
    let mut bytes = vec![3];
    bytes.extend((0..PACKET_LEN).map(|i| (i * 7 + 1) as u8));
    bytes
}

fn c2() -> Vec<u8> {
    vec![0xAB; PACKET_LEN]
}

fn connect(p: &mut Publisher) -> Vec<u8> {
    p.command(
        3,
        0,
        &[
            s("connect"),
            n(1.0),
            obj(&[
                ("app", s("live")),
                ("type", s("nonprivate")),
                ("flashVer", s("FMLE/3.0 (compatible; Lavf61.7.100)")),
                ("tcUrl", s("rtmp://127.0.0.1:1935/live")),
            ]),
        ],
    )
}

/// A session that has completed the handshake and `connect`, with its output drained.
fn connected(config: SessionConfig) -> (ServerSession, Publisher) {
    let mut session = ServerSession::new(config);
    let mut p = Publisher::new();
    session.feed(&c0c1()).unwrap();
    session.feed(&c2()).unwrap();
    session.feed(&connect(&mut p)).unwrap();
    session.take_output();
    assert!(matches!(
        session.poll_event(),
        Some(Event::Connected { .. })
    ));
    (session, p)
}

/// Connected, published as stream key "key" and accepted.
fn publishing() -> (ServerSession, Publisher) {
    let (mut session, mut p) = connected(SessionConfig::default());
    let publish = p.command(8, 1, &[s("publish"), n(5.0), Value::Null, s("key")]);
    session.feed(&publish).unwrap();
    assert!(matches!(session.poll_event(), Some(Event::Publish { .. })));
    session.accept_publish();
    session.take_output();
    (session, p)
}

/// Parses the server's output (after the handshake) back into messages.
fn replies(bytes: &[u8]) -> Vec<Message> {
    let mut reader = ChunkReader::new(1 << 20);
    let mut buf = BytesMut::from(bytes);
    let mut messages = Vec::new();
    while let Some(message) = reader.read(&mut buf).unwrap() {
        if message.type_id == SET_CHUNK_SIZE {
            reader
                .set_chunk_size(read_u32(&message.payload).unwrap())
                .unwrap();
        }
        messages.push(message);
    }
    assert!(buf.is_empty(), "output ends on a message boundary");
    messages
}

fn values(message: &Message) -> Vec<Value> {
    assert_eq!(message.type_id, COMMAND_AMF0);
    amf0::decode_all(&message.payload).unwrap()
}

fn status_code(message: &Message) -> (String, String) {
    let values = values(message);
    assert_eq!(values[0].as_str(), Some("onStatus"));
    let info = &values[3];
    let field = |k| info.get(k).and_then(Value::as_str).unwrap().to_owned();
    (field("level"), field("code"))
}

#[derive(Clone, Copy, Debug)]
enum Split {
    Whole,
    Bytes,
    Random(u32),
}

/// Feeds every stage with the given split, accepting the publish between stages as a real
/// server would; returns the events and all output.
fn run(stages: &[Vec<u8>], split: Split) -> (Vec<Event>, Vec<u8>) {
    let mut session = ServerSession::new(SessionConfig::default());
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut rng = match split {
        Split::Random(seed) => seed,
        _ => 1,
    };
    for stage in stages {
        let mut rest = &stage[..];
        while !rest.is_empty() {
            let take = match split {
                Split::Whole => rest.len(),
                Split::Bytes => 1,
                Split::Random(_) => {
                    rng ^= rng << 13;
                    rng ^= rng >> 17;
                    rng ^= rng << 5;
                    1 + (rng as usize % 3000)
                }
            }
            .min(rest.len());
            session.feed(&rest[..take]).unwrap();
            rest = &rest[take..];
            output.extend(session.take_output());
            while let Some(event) = session.poll_event() {
                if matches!(event, Event::Publish { .. }) {
                    session.accept_publish();
                    output.extend(session.take_output());
                }
                events.push(event);
            }
        }
    }
    (events, output)
}

/// The whole publish of an ffmpeg-like client, in stages that each wait for the server.
fn ffmpeg_like_stages() -> (Vec<Vec<u8>>, Vec<Event>) {
    let mut p = Publisher::new();
    let mut expected = Vec::new();

    let mut setup = c2();
    setup.extend(connect(&mut p));
    expected.push(Event::Connected {
        app: "live".into(),
        tc_url: Some("rtmp://127.0.0.1:1935/live".into()),
    });
    setup.extend(p.set_chunk_size(4096));
    // Type 1 headers on the command chunk stream, as the message length changes.
    let release = amf(&[s("releaseStream"), n(2.0), Value::Null, s("key")]);
    setup.extend(p.message(3, 1, 0, COMMAND_AMF0, 0, &release));
    let fc_publish = amf(&[s("FCPublish"), n(3.0), Value::Null, s("key")]);
    setup.extend(p.message(3, 1, 0, COMMAND_AMF0, 0, &fc_publish));
    setup.extend(p.command(3, 0, &[s("createStream"), n(4.0), Value::Null]));

    let publish = p.command(
        8,
        1,
        &[
            s("publish"),
            n(5.0),
            Value::Null,
            s("key123?token=abc"),
            s("live"),
        ],
    );
    expected.push(Event::Publish {
        app: "live".into(),
        stream_key: "key123".into(),
        publish_type: "live".into(),
    });

    let mut media = Vec::new();
    let meta = Value::EcmaArray(vec![
        ("width".into(), n(1280.0)),
        ("height".into(), n(720.0)),
        ("encoder".into(), s("Lavf61.7.100")),
    ]);
    media.extend(p.message(
        8,
        0,
        0,
        DATA_AMF0,
        1,
        &amf(&[s("@setDataFrame"), s("onMetaData"), meta.clone()]),
    ));
    expected.push(Event::Metadata(vec![s("onMetaData"), meta]));

    let audio_config = Bytes::from_static(&[0xAF, 0x00, 0x12, 0x10]);
    media.extend(p.message(4, 0, 0, AUDIO, 1, &audio_config));
    expected.push(Event::Audio {
        timestamp: 0,
        data: audio_config,
    });
    let video_config = Bytes::from(vec![0x17; 40]);
    media.extend(p.message(6, 0, 0, VIDEO, 1, &video_config));
    expected.push(Event::Video {
        timestamp: 0,
        data: video_config,
    });

    // A 10 kB frame whose three chunks interleave with two audio messages: one with a type 1
    // header, one with a type 3 header that repeats the delta.
    let frame: Bytes = (0..10_000u32).map(|i| i as u8).collect();
    let audio = Bytes::from(vec![0xAF; 200]);
    let video_chunks = p.chunks(6, 1, 33, VIDEO, 1, &frame);
    assert_eq!(video_chunks.len(), 3);
    media.extend_from_slice(&video_chunks[0]);
    media.extend(p.message(4, 1, 23, AUDIO, 1, &audio));
    media.extend_from_slice(&video_chunks[1]);
    media.extend(p.message(4, 3, 0, AUDIO, 1, &audio));
    media.extend_from_slice(&video_chunks[2]);
    // Same length, new delta: a type 2 header.
    media.extend(p.message(4, 2, 24, AUDIO, 1, &audio));
    for (ts, is_video) in [(23, false), (46, false), (33, true), (70, false)] {
        expected.push(if is_video {
            Event::Video {
                timestamp: ts,
                data: frame.clone(),
            }
        } else {
            Event::Audio {
                timestamp: ts,
                data: audio.clone(),
            }
        });
    }

    // Extended timestamps, repeated on every continuation chunk. A type 3 header starting a
    // new message after a type 0 adds the type 0 timestamp again (spec 5.3.1.2.4).
    let big = frame.slice(..9000);
    media.extend(p.message(6, 0, 0x0100_0000, VIDEO, 1, &big));
    media.extend(p.message(6, 3, 0, VIDEO, 1, &big));
    media.extend(p.message(6, 1, 40, VIDEO, 1, &big));
    for ts in [0x0100_0000, 0x0200_0000, 0x0200_0028] {
        expected.push(Event::Video {
            timestamp: ts,
            data: big.clone(),
        });
    }

    // Across the 32-bit wrap, in steps of less than 2^31.
    let small = Bytes::from_static(&[0x27, 0x01, 0, 0, 0]);
    for ts in [0x7FFF_0000u32, 0xF000_0000, 0xFFFF_FFF0] {
        media.extend(p.message(6, 0, ts, VIDEO, 1, &small));
        expected.push(Event::Video {
            timestamp: u64::from(ts),
            data: small.clone(),
        });
    }
    media.extend(p.message(6, 2, 0x20, VIDEO, 1, &small));
    expected.push(Event::Video {
        timestamp: 0x1_0000_0010,
        data: small.clone(),
    });

    let mut teardown = p.command(3, 0, &[s("FCUnpublish"), n(6.0), Value::Null, s("key")]);
    teardown.extend(p.command(3, 0, &[s("deleteStream"), n(7.0), Value::Null, n(1.0)]));
    expected.push(Event::Unpublish);

    (vec![c0c1(), setup, publish, media, teardown], expected)
}

#[test]
fn ffmpeg_like_publish_in_any_split() {
    let (stages, expected) = ffmpeg_like_stages();
    let (events, output) = run(&stages, Split::Whole);
    assert_eq!(events, expected);

    // S0, S1 (no digest: zero version field), S2 echoing C1.
    assert_eq!(output[0], 3);
    assert_eq!(&output[5..9], &[0, 0, 0, 0]);
    assert_eq!(&output[1 + PACKET_LEN..1 + 2 * PACKET_LEN], &stages[0][1..]);

    let messages = replies(&output[1 + 2 * PACKET_LEN..]);
    let types: Vec<u8> = messages.iter().map(|m| m.type_id).collect();
    assert_eq!(
        types,
        [
            WINDOW_ACK_SIZE,
            SET_PEER_BANDWIDTH,
            SET_CHUNK_SIZE,
            COMMAND_AMF0,
            COMMAND_AMF0,
            COMMAND_AMF0,
            COMMAND_AMF0,
            USER_CONTROL,
            COMMAND_AMF0,
            COMMAND_AMF0,
        ]
    );
    assert_eq!(read_u32(&messages[0].payload), Some(2_500_000));
    assert_eq!(&messages[1].payload[..], &[0, 0x26, 0x25, 0xA0, 2]);
    assert_eq!(read_u32(&messages[2].payload), Some(4096));

    let connect = values(&messages[3]);
    assert_eq!(connect[0].as_str(), Some("_result"));
    assert_eq!(connect[1].as_f64(), Some(1.0));
    assert_eq!(
        connect[3].get("code").and_then(Value::as_str),
        Some("NetConnection.Connect.Success")
    );
    for (message, txn) in messages[4..6].iter().zip([2.0, 3.0]) {
        assert_eq!(values(message)[..2], [s("_result"), n(txn)]);
    }
    assert_eq!(
        values(&messages[6]),
        [s("_result"), n(4.0), Value::Null, n(1.0)]
    );
    assert_eq!(&messages[7].payload[..], &[0, 0, 0, 0, 0, 1]);
    assert_eq!(messages[8].stream_id, 1);
    assert_eq!(
        status_code(&messages[8]),
        ("status".into(), "NetStream.Publish.Start".into())
    );
    assert_eq!(status_code(&messages[9]).1, "NetStream.Unpublish.Success");

    for split in [Split::Bytes, Split::Random(7), Split::Random(0xDEAD)] {
        let (events_again, output_again) = run(&stages, split);
        assert_eq!(events_again, expected, "{split:?}");
        assert_eq!(output_again, output, "{split:?}");
    }
}

/// Everything ffmpeg 5.1 sent after the handshake, up to and including `publish`, captured from
/// `ffmpeg … -f flv rtmp://127.0.0.1:45371/live/secretkey?foo=bar`.
const FFMPEG_CAPTURE: [&str; 10] = [
    "0300000000008c1400000000020007636f6e6e656374003ff0000000000000030003617070020004",
    "6c69766500047479706502000a6e6f6e707269766174650008666c617368566572020024464d4c45",
    "2f332e302028636f6d70617469626c653b204c61766635392e32372e313030290005746355726c02",
    "001b72746d703a2f2f3132372e302e302e313a34c3353337312f6c69766500000902000000000004",
    "0100000000000010004300000000002e1402000d72656c6561736553747265616d00400000000000",
    "0000050200117365637265746b65793f666f6f3d6261724300000000002a1402000946435075626c",
    "697368004008000000000000050200117365637265746b65793f666f6f3d62617243000000000019",
    "1402000c63726561746553747265616d004010000000000000050800000000002f14010000000200",
    "077075626c697368004014000000000000050200117365637265746b65793f666f6f3d6261720200",
    "046c697665",
];

#[test]
fn real_ffmpeg_capture() {
    let hex = FFMPEG_CAPTURE.concat();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let (events, output) = run(&[c0c1(), c2(), bytes], Split::Whole);
    assert_eq!(
        events,
        [
            Event::Connected {
                app: "live".into(),
                tc_url: Some("rtmp://127.0.0.1:45371/live".into()),
            },
            Event::Publish {
                app: "live".into(),
                stream_key: "secretkey".into(),
                publish_type: "live".into(),
            },
        ]
    );
    let messages = replies(&output[1 + 2 * PACKET_LEN..]);
    assert_eq!(
        status_code(messages.last().unwrap()).1,
        "NetStream.Publish.Start"
    );
}
