//! The room WebSocket protocol: JSON text frames tagged by `"type"` (documented in docs/api.md).
//! Parsing client frames is the only place untrusted WebSocket bytes are interpreted; it is
//! bounded and fuzzed (`fuzz/fuzz_targets/ws_frame.rs`).

use serde::{Deserialize, Serialize};

use crate::views::{MessageView, PartyView, RoomView, UserView};

/// Largest client frame accepted, in bytes (a 500-char message is at most ~2 KB of JSON).
pub const MAX_CLIENT_FRAME: usize = 8 * 1024;

/// A frame from a client.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Send {
        text: String,
        #[serde(default)]
        nonce: Option<String>,
    },
    Ping,
    /// A clock probe (watch together): answered at once with the server's time, so the client
    /// can estimate its offset from the lowest round trip of its last few probes.
    #[serde(rename = "time.ping")]
    TimePing {
        /// The client's clock when it sent this, echoed back as it came.
        t0: f64,
    },
    /// Watch together (`domain::parties`): controllers load, play, pause, seek, set the rate,
    /// queue, skip and stop; the owner or host hands the host role on; the owner sets the
    /// control mode; every member reports ready, buffering and where its player is.
    #[serde(rename = "party.load")]
    PartyLoad {
        video_id: String,
    },
    #[serde(rename = "party.play")]
    PartyPlay,
    #[serde(rename = "party.pause")]
    PartyPause,
    #[serde(rename = "party.seek")]
    PartySeek {
        position_s: f64,
    },
    #[serde(rename = "party.rate")]
    PartyRate {
        rate: f64,
    },
    #[serde(rename = "party.queue")]
    PartyQueue {
        video_ids: Vec<String>,
    },
    #[serde(rename = "party.next")]
    PartyNext,
    #[serde(rename = "party.stop")]
    PartyStop,
    #[serde(rename = "party.host")]
    PartyHost {
        user_id: String,
    },
    #[serde(rename = "party.mode")]
    PartyMode {
        mode: PartyMode,
        #[serde(default)]
        selected: Vec<String>,
    },
    #[serde(rename = "party.ready")]
    PartyReady {
        ready: bool,
    },
    #[serde(rename = "party.buffering")]
    PartyBuffering {
        state: bool,
    },
    #[serde(rename = "party.report")]
    PartyReport {
        position_s: f64,
        at_server_ms: f64,
    },
}

/// Who may control a watch party besides its owner and host.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PartyMode {
    Host,
    Selected,
    Everyone,
}

/// Most videos one `party.queue` names, and most members one `party.mode` selects.
pub const MAX_PARTY_LIST: usize = 100;

/// Why a client frame was refused; the connection survives and gets an `error` frame.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    #[error("frame larger than {MAX_CLIENT_FRAME} bytes")]
    TooLarge,
    #[error("invalid frame: {0}")]
    Invalid(String),
    #[error("binary frames are not supported")]
    Binary,
}

impl ProtocolError {
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::TooLarge => "too_large",
            ProtocolError::Invalid(_) | ProtocolError::Binary => "invalid_frame",
        }
    }
}

/// Longest nonce echoed back.
const MAX_NONCE: usize = 64;

/// Parses one client text frame.
pub fn parse_client(text: &str) -> Result<ClientFrame, ProtocolError> {
    if text.len() > MAX_CLIENT_FRAME {
        return Err(ProtocolError::TooLarge);
    }
    let frame: ClientFrame =
        serde_json::from_str(text).map_err(|e| ProtocolError::Invalid(e.to_string()))?;
    if let ClientFrame::Send { nonce: Some(n), .. } = &frame {
        if n.len() > MAX_NONCE {
            return Err(ProtocolError::Invalid(format!(
                "nonce longer than {MAX_NONCE} bytes"
            )));
        }
    }
    let list = match &frame {
        ClientFrame::PartyQueue { video_ids: l } | ClientFrame::PartyMode { selected: l, .. } => {
            Some(l)
        }
        _ => None,
    };
    if list.is_some_and(|l| l.len() > MAX_PARTY_LIST) {
        return Err(ProtocolError::Invalid(format!(
            "a list holds at most {MAX_PARTY_LIST} items"
        )));
    }
    Ok(frame)
}

/// A frame to clients. Broadcast frames are serialised once and shared.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Welcome {
        room: &'a RoomView,
        you: Option<&'a UserView>,
        viewers: usize,
        history: &'a [MessageView],
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
        /// The room's watch party, when one has a video or a queue.
        party: Option<&'a PartyView>,
    },
    Message(&'a MessageView),
    Deleted {
        seq: i64,
    },
    /// The room's settings changed (title, slow mode).
    Room {
        room: &'a RoomView,
    },
    Viewers {
        count: usize,
    },
    /// A broadcast started or ended in the room.
    Live {
        state: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        hls_url: Option<&'a str>,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Reconnect {
        reason: &'a str,
    },
    Pong,
    /// The answer to `time.ping`: the client's `t0` and the server's clock (Unix ms, to the
    /// microsecond) when the probe was read.
    #[serde(rename = "time.pong")]
    TimePong {
        t0: f64,
        server_ms: f64,
    },
    /// The room's watch party changed.
    #[serde(rename = "party.state")]
    PartyState(&'a PartyView),
}

impl ServerFrame<'_> {
    /// JSON text of the frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server frames contain only serialisable data")
    }
}

/// Text of an `error` frame.
pub fn error_frame(code: &str, message: &str, retry_after_ms: Option<u64>) -> String {
    ServerFrame::Error {
        code,
        message,
        retry_after_ms,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_send_and_ping() {
        assert_eq!(
            parse_client(r#"{"type":"send","text":"hi","nonce":"n1"}"#).unwrap(),
            ClientFrame::Send {
                text: "hi".into(),
                nonce: Some("n1".into())
            }
        );
        assert_eq!(
            parse_client(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping
        );
        assert_eq!(
            parse_client(r#"{"type":"time.ping","t0":1234.5}"#).unwrap(),
            ClientFrame::TimePing { t0: 1234.5 }
        );
        assert_eq!(
            parse_client(r#"{"type":"party.mode","mode":"selected","selected":["4"]}"#).unwrap(),
            ClientFrame::PartyMode {
                mode: PartyMode::Selected,
                selected: vec!["4".into()]
            }
        );
        assert_eq!(
            parse_client(r#"{"type":"party.play"}"#).unwrap(),
            ClientFrame::PartyPlay
        );
        assert_eq!(
            parse_client(r#"{"type":"party.report","position_s":12.5,"at_server_ms":1.7e12}"#)
                .unwrap(),
            ClientFrame::PartyReport {
                position_s: 12.5,
                at_server_ms: 1.7e12
            }
        );
        let pong = ServerFrame::TimePong {
            t0: 1234.5,
            server_ms: 1.5e12,
        }
        .encode();
        assert_eq!(
            pong,
            r#"{"type":"time.pong","t0":1234.5,"server_ms":1500000000000.0}"#
        );
    }

    #[test]
    fn refuses_bad_frames() {
        for bad in [
            "",
            "null",
            "[]",
            r#"{"type":"nope"}"#,
            r#"{"type":"send"}"#,
            r#"{"type":"send","text":5}"#,
            r#"{"text":"no type"}"#,
            r#"{"type":"time.ping"}"#,
            r#"{"type":"time.ping","t0":"soon"}"#,
            r#"{"type":"time.ping","t0":1e999}"#,
            r#"{"type":"time_ping","t0":1}"#,
            r#"{"type":"party.seek"}"#,
            r#"{"type":"party.seek","position_s":"12:31"}"#,
            r#"{"type":"party.rate","rate":null}"#,
            r#"{"type":"party.mode","mode":"anyone"}"#,
            r#"{"type":"party.ready","ready":"yes"}"#,
            r#"{"type":"party.queue","video_ids":"abc"}"#,
            r#"{"type":"party.load","video_id":7}"#,
            "{\"type\":\"send\",\"text\":\"\\ud800\"}",
        ] {
            let err = parse_client(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_frame", "{bad}");
        }
        let long = format!(
            r#"{{"type":"send","text":"{}"}}"#,
            "a".repeat(MAX_CLIENT_FRAME)
        );
        assert_eq!(parse_client(&long).unwrap_err(), ProtocolError::TooLarge);
        let nonce = format!(
            r#"{{"type":"send","text":"x","nonce":"{}"}}"#,
            "n".repeat(65)
        );
        assert_eq!(parse_client(&nonce).unwrap_err().code(), "invalid_frame");
        let ids: Vec<String> = (0..=MAX_PARTY_LIST).map(|i| i.to_string()).collect();
        let queue = serde_json::json!({"type":"party.queue","video_ids":ids}).to_string();
        assert!(queue.len() < MAX_CLIENT_FRAME);
        assert_eq!(parse_client(&queue).unwrap_err().code(), "invalid_frame");
    }

    /// Every fuzz seed (and any crash the fuzzer saved there) parses or is refused cleanly.
    #[test]
    fn fuzz_corpus_never_panics() {
        let dir = source_dir!().join("fuzz/corpus/ws_frame");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus folder exists") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(s) = std::str::from_utf8(&bytes) {
                match parse_client(s) {
                    Ok(_) => {}
                    Err(e) => assert!(!e.code().is_empty()),
                }
            }
            seen += 1;
        }
        assert!(seen >= 10, "corpus has {seen} seeds");
    }

    #[test]
    fn error_frame_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&error_frame("slow_mode", "wait", Some(1500))).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "slow_mode");
        assert_eq!(v["retry_after_ms"], 1500);
    }
}
