//! Protocol violations, limits and hostile input: each ends in an error, never a panic.

use super::*;

#[test]
fn wrong_version_is_refused_at_once() {
    let mut session = ServerSession::new(SessionConfig::default());
    assert_eq!(session.feed(&[6]), Err(RtmpError::UnsupportedVersion(6)));
    assert!(session.take_output().is_empty());
    assert_eq!(session.feed(&c0c1()), Err(RtmpError::Closed));
}

#[test]
fn fmt3_on_unknown_chunk_stream_is_an_error() {
    let mut session = ServerSession::new(SessionConfig::default());
    session.feed(&c0c1()).unwrap();
    session.feed(&c2()).unwrap();
    assert_eq!(session.feed(&[0xC7]), Err(RtmpError::UnknownChunkStream(7)));
    let (mut session, _) = connected(SessionConfig::default());
    assert_eq!(
        session.feed(&[0x40, 0x10]),
        Err(RtmpError::UnknownChunkStream(80))
    );
}

#[test]
fn oversized_messages_are_refused_from_the_header() {
    let (mut session, mut p) = connected(SessionConfig {
        max_message_bytes: 1000,
        ..Default::default()
    });
    let header = &p.message(6, 0, 0, VIDEO, 1, &[0; 1001])[..12];
    assert_eq!(
        session.feed(header),
        Err(RtmpError::MessageTooLarge {
            size: 1001,
            max: 1000
        })
    );

    // Several partial messages may not together hold more than twice the limit.
    let (mut session, mut p) = connected(SessionConfig {
        max_message_bytes: 1000,
        ..Default::default()
    });
    session
        .feed(&p.chunks(4, 0, 0, AUDIO, 1, &[0; 1000])[0])
        .unwrap();
    session
        .feed(&p.chunks(5, 0, 0, AUDIO, 1, &[0; 1000])[0])
        .unwrap();
    assert!(matches!(
        session.feed(&p.chunks(6, 0, 0, AUDIO, 1, &[0; 10])[0]),
        Err(RtmpError::MessageTooLarge { size: 2010, .. })
    ));
}

#[test]
fn partial_message_and_chunk_stream_counts_are_bounded() {
    let (mut session, mut p) = connected(SessionConfig::default());
    for csid in 10..10 + MAX_PARTIAL_MESSAGES as u32 {
        session
            .feed(&p.chunks(csid, 0, 0, AUDIO, 1, &[0; 500])[0])
            .unwrap();
    }
    assert_eq!(
        session.feed(&p.chunks(40, 0, 0, AUDIO, 1, &[0; 500])[0]),
        Err(RtmpError::TooManyPartialMessages)
    );

    // Complete (empty) messages on ever new chunk streams: only MAX_CHUNK_STREAMS may exist.
    let (mut session, mut p) = connected(SessionConfig::default());
    let mut result = Ok(());
    for csid in 100..100 + MAX_CHUNK_STREAMS as u32 {
        result = session.feed(&p.message(csid, 0, 0, ACKNOWLEDGEMENT, 0, &[]));
    }
    // csid 3 already carried connect, so the limit hits on the last one.
    assert_eq!(result, Err(RtmpError::TooManyChunkStreams));
}

#[test]
fn media_before_publish_is_an_error() {
    let (mut session, mut p) = connected(SessionConfig::default());
    assert_eq!(
        session.feed(&p.message(6, 0, 0, VIDEO, 1, &[0x17, 0])),
        Err(RtmpError::MediaBeforePublish)
    );

    // Also while the publish is still pending.
    let (mut session, mut p) = connected(SessionConfig::default());
    session
        .feed(&p.command(8, 1, &[s("publish"), n(5.0), Value::Null, s("k")]))
        .unwrap();
    assert_eq!(
        session.feed(&p.message(4, 0, 0, AUDIO, 1, &[0xAF])),
        Err(RtmpError::MediaBeforePublish)
    );
}

#[test]
fn rejected_publish_gets_an_error_status() {
    let (mut session, mut p) = connected(SessionConfig::default());
    session
        .feed(&p.command(8, 1, &[s("publish"), n(5.0), Value::Null, s("bad")]))
        .unwrap();
    assert!(
        session.take_output().is_empty(),
        "nothing before the decision"
    );
    let Some(Event::Publish { stream_key, .. }) = session.poll_event() else {
        panic!("expected a publish event");
    };
    assert_eq!(stream_key, "bad");
    session.reject_publish("Unknown stream key.");
    let messages = replies(&session.take_output());
    assert_eq!(messages.len(), 1);
    assert_eq!(
        status_code(&messages[0]),
        ("error".into(), "NetStream.Publish.Denied".into())
    );
    assert_eq!(
        values(&messages[0])[3].get("description"),
        Some(&s("Unknown stream key."))
    );
    // Accepting afterwards changes nothing.
    session.accept_publish();
    assert!(session.take_output().is_empty());
    assert_eq!(
        session.feed(&p.message(4, 0, 0, AUDIO, 1, &[0xAF])),
        Err(RtmpError::MediaBeforePublish)
    );
}

#[test]
fn second_publish_is_an_error() {
    let (mut session, mut p) = publishing();
    assert!(matches!(
        session.feed(&p.command(8, 1, &[s("publish"), n(6.0), Value::Null, s("again")])),
        Err(RtmpError::Protocol(_))
    ));
}

#[test]
fn play_is_refused_with_a_status() {
    let (mut session, mut p) = connected(SessionConfig::default());
    assert_eq!(
        session.feed(&p.command(8, 1, &[s("play"), n(4.0), Value::Null, s("key")])),
        Err(RtmpError::PlayRefused)
    );
    let messages = replies(&session.take_output());
    assert_eq!(status_code(&messages[0]).1, "NetStream.Play.Failed");
}

#[test]
fn commands_before_connect_are_errors() {
    let mut session = ServerSession::new(SessionConfig::default());
    session.feed(&c0c1()).unwrap();
    session.feed(&c2()).unwrap();
    let mut p = Publisher::new();
    assert!(matches!(
        session.feed(&p.command(3, 0, &[s("createStream"), n(2.0), Value::Null])),
        Err(RtmpError::Protocol(_))
    ));
}

#[test]
fn set_chunk_size_is_validated() {
    for (size, error) in [
        (0, RtmpError::InvalidChunkSize(0)),
        (0x8000_0000, RtmpError::InvalidChunkSize(0x8000_0000)),
        (
            MAX_CHUNK_SIZE + 1,
            RtmpError::ChunkTooLarge {
                size: MAX_CHUNK_SIZE + 1,
            },
        ),
    ] {
        let (mut session, mut p) = connected(SessionConfig::default());
        assert_eq!(
            session.feed(&p.message(2, 0, 0, SET_CHUNK_SIZE, 0, &size.to_be_bytes())),
            Err(error)
        );
    }
}

/// Garbage, and valid streams with bytes flipped, must end in Ok or Err, never a panic or a
/// hang: the pattern of the fuzz target.
#[test]
fn random_and_mutated_input_never_panics() {
    let (stages, _) = ffmpeg_like_stages();
    let valid: Vec<u8> = stages.concat();
    let mut rng = 0x1234_5678u32;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng
    };
    for round in 0..300 {
        let mut session = ServerSession::new(SessionConfig::default());
        let input: Vec<u8> = if round % 3 == 0 {
            let mut bytes = c0c1();
            bytes.extend(c2());
            bytes.extend((0..4000).map(|_| next() as u8));
            bytes
        } else {
            let mut bytes = valid.clone();
            for _ in 0..1 + next() % 8 {
                let at =
                    2 * PACKET_LEN + 1 + (next() as usize % (bytes.len() - 2 * PACKET_LEN - 1));
                bytes[at] = next() as u8;
            }
            bytes
        };
        let mut rest = &input[..];
        while !rest.is_empty() {
            let take = (1 + next() as usize % 700).min(rest.len());
            let result = session.feed(&rest[..take]);
            rest = &rest[take..];
            session.take_output();
            while let Some(event) = session.poll_event() {
                if matches!(event, Event::Publish { .. }) {
                    session.accept_publish();
                }
            }
            if result.is_err() {
                break;
            }
        }
    }
}
