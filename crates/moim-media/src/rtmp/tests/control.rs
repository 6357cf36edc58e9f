//! Control messages, less common commands and message types.

use super::*;

#[test]
fn unknown_commands_with_a_transaction_get_a_result() {
    let (mut session, mut p) = connected(SessionConfig::default());
    session
        .feed(&p.command(3, 0, &[s("_checkbw"), n(9.0), Value::Null]))
        .unwrap();
    session
        .feed(&p.command(3, 0, &[s("whatever"), n(0.0), Value::Null]))
        .unwrap();
    let messages = replies(&session.take_output());
    assert_eq!(messages.len(), 1);
    assert_eq!(values(&messages[0])[..2], [s("_result"), n(9.0)]);
}

#[test]
fn amf3_commands_with_amf0_bodies_are_understood() {
    let mut session = ServerSession::new(SessionConfig::default());
    session.feed(&c0c1()).unwrap();
    session.feed(&c2()).unwrap();
    let mut payload = vec![0];
    payload.extend(amf(&[s("connect"), n(1.0), obj(&[("app", s("a"))])]));
    let mut p = Publisher::new();
    session
        .feed(&p.message(3, 0, 0, COMMAND_AMF3, 0, &payload))
        .unwrap();
    assert_eq!(
        session.poll_event(),
        Some(Event::Connected {
            app: "a".into(),
            tc_url: None
        })
    );
}

#[test]
fn ping_requests_get_responses() {
    let (mut session, mut p) = connected(SessionConfig::default());
    let ping = [0, 6, 0, 0, 0x12, 0x34];
    session
        .feed(&p.message(2, 0, 0, USER_CONTROL, 0, &ping))
        .unwrap();
    let messages = replies(&session.take_output());
    assert_eq!(messages[0].type_id, USER_CONTROL);
    assert_eq!(&messages[0].payload[..], &[0, 7, 0, 0, 0x12, 0x34]);
}

#[test]
fn acknowledgements_follow_the_window() {
    let (mut session, mut p) = connected(SessionConfig {
        window_ack_size: 5000,
        ..Default::default()
    });
    // The handshake and connect already count towards the window.
    let ack = p.message(2, 0, 0, ACKNOWLEDGEMENT, 0, &[0, 0, 0, 1]);
    let mut total = 2 * PACKET_LEN as u64 + 1 + connect(&mut Publisher::new()).len() as u64;
    while total < 5000 {
        session.feed(&ack).unwrap();
        total += ack.len() as u64;
    }
    let messages = replies(&session.take_output());
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].type_id, ACKNOWLEDGEMENT);
    assert_eq!(read_u32(&messages[0].payload), Some(total as u32));

    // A peer's Window Acknowledgement Size takes over (but never below 4096 bytes).
    session
        .feed(&p.message(2, 0, 0, WINDOW_ACK_SIZE, 0, &[0, 0, 0, 1]))
        .unwrap();
    assert!(session.take_output().is_empty());
    let mut filler = Vec::new();
    for _ in 0..300 {
        filler.extend_from_slice(&ack);
    }
    session.feed(&filler).unwrap();
    assert_eq!(replies(&session.take_output()).len(), 1);
}

#[test]
fn abort_drops_a_partial_message() {
    let (mut session, mut p) = publishing();
    let chunks = p.chunks(6, 0, 0, VIDEO, 1, &[9; 300]);
    session.feed(&chunks[0]).unwrap();
    session
        .feed(&p.message(2, 0, 0, ABORT, 0, &6u32.to_be_bytes()))
        .unwrap();
    // The stream's header is remembered: a type 1 header starts a fresh message.
    session
        .feed(&p.message(6, 1, 10, VIDEO, 1, &[1, 2, 3]))
        .unwrap();
    assert_eq!(
        session.poll_event(),
        Some(Event::Video {
            timestamp: 10,
            data: Bytes::from_static(&[1, 2, 3])
        })
    );
    assert_eq!(session.poll_event(), None);
}

#[test]
fn long_chunk_stream_ids_and_empty_messages() {
    let (mut session, mut p) = publishing();
    // The empty audio message completes on its header alone and is dropped.
    session.feed(&p.message(300, 0, 5, AUDIO, 1, &[])).unwrap();
    session
        .feed(&p.message(65_599, 0, 6, VIDEO, 1, &[1]))
        .unwrap();
    assert!(matches!(
        session.poll_event(),
        Some(Event::Video { timestamp: 6, .. })
    ));
}

#[test]
fn aggregate_messages_are_split_into_tags() {
    let (mut session, mut p) = publishing();
    let mut payload = Vec::new();
    for (kind, ts, body) in [(VIDEO, 1000u32, &[7u8, 7][..]), (AUDIO, 1020, &[8][..])] {
        payload.push(kind);
        payload.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        payload.extend_from_slice(&ts.to_be_bytes()[1..]);
        payload.push((ts >> 24) as u8);
        payload.extend_from_slice(&[0, 0, 0]);
        payload.extend_from_slice(body);
        payload.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    session
        .feed(&p.message(6, 0, 500, AGGREGATE, 1, &payload))
        .unwrap();
    assert_eq!(
        session.poll_event(),
        Some(Event::Video {
            timestamp: 500,
            data: Bytes::from_static(&[7, 7])
        })
    );
    assert_eq!(
        session.poll_event(),
        Some(Event::Audio {
            timestamp: 520,
            data: Bytes::from_static(&[8])
        })
    );
}

#[test]
fn bad_metadata_is_dropped_not_fatal() {
    let (mut session, mut p) = publishing();
    session
        .feed(&p.message(8, 0, 0, DATA_AMF0, 1, &[0x10, 0, 1, b'x']))
        .unwrap();
    assert_eq!(session.poll_event(), None);
}

#[test]
fn backward_steps_stay_backward() {
    let mut timeline = session::Timeline::default();
    assert_eq!(timeline.extend(100), 100);
    assert_eq!(timeline.extend(90), 90);
    assert_eq!(
        timeline.extend(0xFFFF_FFFF),
        0,
        "a step back past zero saturates"
    );
    assert_eq!(timeline.extend(10), 11);
}

#[test]
fn handshake_and_chunks_may_share_a_buffer() {
    let mut p = Publisher::new();
    let mut bytes = c0c1();
    bytes.extend(c2());
    bytes.extend(connect(&mut p));
    let mut session = ServerSession::new(SessionConfig::default());
    session.feed(&bytes).unwrap();
    assert!(matches!(session.poll_event(), Some(Event::Connected { app, .. }) if app == "live"));
}
