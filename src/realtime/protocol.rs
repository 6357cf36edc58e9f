//! The room WebSocket protocol: JSON text frames tagged by `"type"` (documented in docs/api.md).
//! Parsing client frames is the only place untrusted WebSocket bytes are interpreted; it is
//! bounded and fuzzed (`fuzz/fuzz_targets/ws_frame.rs`).

use serde::{Deserialize, Serialize};

use crate::views::{
    AuthorView, MapViewView, MessageView, PartyView, PinView, PollView, RoomView, UserView,
};

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
    /// Where this member looks on the room's map (relayed to the others, never stored).
    #[serde(rename = "map.view")]
    MapView {
        /// `[lat, lng]`.
        center: [f64; 2],
        zoom: f64,
        /// `[[south, west], [north, east]]`.
        bounds: [[f64; 2]; 2],
        #[serde(default)]
        cursor: Option<[f64; 2]>,
    },
    /// Drops a pin: a place post's, or a named point.
    #[serde(rename = "map.pin.add")]
    MapPinAdd {
        #[serde(default)]
        place_id: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        lat: Option<f64>,
        #[serde(default)]
        lng: Option<f64>,
    },
    #[serde(rename = "map.pin.remove")]
    MapPinRemove {
        id: String,
    },
}

/// Deepest map zoom a view may report.
pub const MAX_ZOOM: f64 = 24.0;

/// Checks a `map.view`'s numbers: finite, latitudes within ±90, longitudes within ±720 (a map
/// scrolled past the antimeridian reports them), zoom 0 to [`MAX_ZOOM`], south below north.
pub fn check_view(
    center: [f64; 2],
    zoom: f64,
    bounds: [[f64; 2]; 2],
    cursor: Option<[f64; 2]>,
) -> Result<(), ProtocolError> {
    let point = |p: [f64; 2]| {
        p[0].is_finite()
            && p[1].is_finite()
            && (-90.0..=90.0).contains(&p[0])
            && (-720.0..=720.0).contains(&p[1])
    };
    let ok = point(center)
        && point(bounds[0])
        && point(bounds[1])
        && bounds[0][0] <= bounds[1][0]
        && bounds[0][1] <= bounds[1][1]
        && cursor.is_none_or(point)
        && zoom.is_finite()
        && (0.0..=MAX_ZOOM).contains(&zoom);
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::Invalid(
            "map.view: latitudes are -90 to 90, longitudes -720 to 720, zoom 0 to 24, and \
             bounds go [[south, west], [north, east]]"
                .into(),
        ))
    }
}

/// Rounds a coordinate to 1e-6 degrees (about 10 cm): what is relayed.
pub fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
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
    if let ClientFrame::MapView {
        center,
        zoom,
        bounds,
        cursor,
    } = &frame
    {
        check_view(*center, *zoom, *bounds, *cursor)?;
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
        /// The pins on the room's map.
        pins: &'a [PinView],
        /// The room's newest polls, as this member sees them.
        polls: &'a [PollView],
        /// Where the others connected look on the room's map now.
        views: &'a [MapViewView],
        /// A WebRTC publisher sends the room's broadcast (watch it by WHEP).
        realtime: bool,
        /// Who is in the room's voice chat.
        voice: &'a [crate::views::VoiceMemberView],
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
    /// A member's view of the map (see [`ClientFrame::MapView`]).
    #[serde(rename = "map.view")]
    MapView(&'a MapViewView),
    /// The room's pins, all of them.
    #[serde(rename = "map.pins")]
    MapPins {
        pins: &'a [PinView],
    },
    /// A WebRTC publisher started or stopped sending the room's broadcast.
    Realtime {
        publishing: bool,
    },
    /// The room's voice chat members, all of them, whenever they change.
    #[serde(rename = "voice.members")]
    VoiceMembers {
        members: &'a [crate::views::VoiceMemberView],
    },
    /// A member left the map.
    #[serde(rename = "map.left")]
    MapLeft {
        user: &'a AuthorView,
    },
    /// A poll was created, voted in or closed (`results` as this connection may see them).
    #[serde(rename = "poll.update")]
    PollUpdate {
        poll: &'a PollView,
    },
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
        assert_eq!(
            parse_client(
                r#"{"type":"map.view","center":[37.5,127.0],"zoom":14,"bounds":[[37.4,126.9],[37.6,127.1]],"cursor":null}"#
            )
            .unwrap(),
            ClientFrame::MapView {
                center: [37.5, 127.0],
                zoom: 14.0,
                bounds: [[37.4, 126.9], [37.6, 127.1]],
                cursor: None
            }
        );
        assert_eq!(
            parse_client(r#"{"type":"map.pin.add","name":"Ramen","lat":37.5,"lng":127}"#).unwrap(),
            ClientFrame::MapPinAdd {
                place_id: None,
                name: Some("Ramen".into()),
                lat: Some(37.5),
                lng: Some(127.0)
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
            r#"{"type":"map.view","center":[91,0],"zoom":3,"bounds":[[0,0],[1,1]]}"#,
            r#"{"type":"map.view","center":[0,0],"zoom":25,"bounds":[[0,0],[1,1]]}"#,
            r#"{"type":"map.view","center":[0,0],"zoom":3,"bounds":[[1,0],[0,1]]}"#,
            r#"{"type":"map.view","center":[0,0],"zoom":3,"bounds":[[0,0],[1,1]],"cursor":[0,800]}"#,
            r#"{"type":"map.view","center":[0],"zoom":3,"bounds":[[0,0],[1,1]]}"#,
            r#"{"type":"map.view","center":[0,0,0],"zoom":3,"bounds":[[0,0],[1,1]]}"#,
            r#"{"type":"map.view","center":"here","zoom":3,"bounds":[[0,0],[1,1]]}"#,
            r#"{"type":"map.pin.remove","id":5}"#,
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
