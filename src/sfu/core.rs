//! The SFU's core, free of I/O and of the clock: WebRTC peers (str0m's sans-IO `Rtc`), which
//! room each is in and what it does there (publishes a broadcast by WHIP, watches one by WHEP),
//! and the forwarding between them. Datagrams and the time come in as arguments; datagrams to
//! send and the next deadline come out. The driver (`super::driver`) owns the one UDP socket;
//! the tests run peers against each other in one thread on a virtual clock.
//!
//! Media is forwarded as it arrives, frame by frame as str0m reassembles it from RTP (never
//! decoded): a publisher's audio to each viewer's audio, its video to their video, with the
//! payload type matched per viewer. Viewers' keyframe requests go to the publisher, at most one
//! every 300 ms; a viewer who just connected gets one at once so its picture starts (a second's
//! throttle made new viewers wait ~400 ms for their first frame).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpOffer;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use super::simulcast::{LayerId, Layers, View};

/// A peer's handle: random, so a WHIP/WHEP resource URL cannot be guessed.
pub type PeerId = String;

/// How long a peer may take from its offer to a working connection (ICE and DTLS).
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Keyframe requests to a publisher, at most one per this (viewers joining one after another
/// each get their picture within a frame or two of connecting).
const KEYFRAME_EVERY: Duration = Duration::from_millis(300);
/// A simulcast viewer's bandwidth estimate before its congestion feedback says more: enough for
/// a middle layer (browsers send about 150, 500 and 1,500–2,500 kbit/s), from which it moves up
/// within a second or two on a good link, rather than flooding a poor one with the top layer.
const START_ESTIMATE_KBPS: u64 = 1_000;
/// A viewer waiting for a layer's keyframe asks again after this long.
const SWITCH_ASK_EVERY: Duration = Duration::from_secs(1);

/// What a peer does in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends the room's broadcast (WHIP).
    Publisher,
    /// Watches it (WHEP).
    Viewer,
    /// Talks and listens in the room's voice chat: sends its microphone on its first audio
    /// m-line and hears the others on the rest.
    Voice,
}

/// Receiving lines of a voice client: a voice client offers one audio m-line to send and this
/// many to receive. Each member who has a line is heard on that line by everyone else (the
/// same line for all listeners); with more members than lines, the lines carry the ones who
/// spoke last (a quiet member gives its line to one who starts speaking). Members coming and
/// going, or taking a line, need no renegotiation.
pub const VOICE_LINES: usize = 8;
/// Members of one room's voice chat at most.
pub const VOICE_MEMBERS: usize = 64;
/// Cameras on at once in one room's voice chat: a voice client offers one video m-line to send
/// its camera on and this many to receive, one per camera tile. A member who turns its camera
/// on takes a free camera line, and everyone else sees it on that line.
pub const VOICE_CAMERAS: usize = 4;
/// A member whose audio level was at least this (dBov, RFC 6464) within [`SPEAKING_HOLD`] is
/// speaking.
const SPEAKING_DBOV: i8 = -50;
const SPEAKING_HOLD: Duration = Duration::from_millis(400);
/// A room's voice members are told at most this often (speaking flickers).
const VOICE_NEWS_EVERY: Duration = Duration::from_millis(250);

/// A member of a room's voice chat, as the room is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceMember {
    pub user_id: i64,
    pub user: String,
    /// The receiving line it is heard on, if it has one now.
    pub line: Option<usize>,
    /// Not heard: muted by itself or by a moderator.
    pub muted: bool,
    /// Muted by a moderator: only a moderator unmutes it (rejoining does not).
    pub held: bool,
    pub speaking: bool,
    /// The receiving video line its camera is seen on, while its camera is on.
    pub camera: Option<usize>,
}

struct Talker {
    user_id: i64,
    name: String,
    line: Option<usize>,
    muted: bool,
    /// Muted by a moderator.
    held: bool,
    speaking: bool,
    last_loud: Option<Instant>,
    /// Its camera's line, while on.
    camera: Option<usize>,
}

impl Talker {
    fn silent(&self) -> bool {
        self.muted || self.held
    }
}

/// Why an offer was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SfuError {
    #[error("the SDP offer could not be read: {0}")]
    BadSdp(String),
    /// The offer's media cannot be forwarded (`reason` says what is missing).
    #[error("{0}")]
    Unsupported(String),
    #[error("the room already has a publisher")]
    PublisherPresent,
    #[error("the room has as many viewers as it takes ({0})")]
    RoomFull(usize),
    #[error("the server has as many WebRTC peers as it takes ({0})")]
    ServerFull(usize),
    #[error("the room's voice chat has as many members as it takes ({0})")]
    VoiceFull(usize),
    #[error("the server forwards as much media as it may ({0} Mbit/s)")]
    ForwardFull(u64),
    #[error(
        "{0} cameras are on in this room's voice chat, as many as it shows: one must go off first"
    )]
    CamerasFull(usize),
    #[error("no such session")]
    NoSuchPeer,
    /// The media task is not answering (shutting down, or stuck).
    #[error("the media server is not available: {0}")]
    Unavailable(String),
}

/// How a voice session was ended by someone other than its client: its client is told so
/// (and does not rejoin), where a session lost to the network is simply gone (and rejoined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The member joined the voice chat again from elsewhere (another tab or device).
    Replaced,
    /// A moderator removed it, or a ban or timeout did.
    Removed,
}

/// Voice sessions remembered as [`Ending`]s, at most (the oldest are forgotten).
const ENDINGS_KEPT: usize = 1024;

/// Bounds on what the core takes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub viewers_per_room: usize,
    pub peers: usize,
    /// What a publisher or voice member may send, averaged over [`RATE_WINDOW`], kbit/s; one
    /// sending more is ended (as an RTMP encoder over `max_ingest_kbps` is).
    pub max_send_kbps: u64,
    /// What the node may forward in all, kbit/s (judged over the last [`EGRESS_WINDOW`]): past
    /// it, new viewers and voice members are refused (LL-HLS still serves viewers) and those
    /// connected keep what they have.
    pub max_forward_kbps: u64,
}

/// The window the node's forwarded bitrate is judged over.
pub const EGRESS_WINDOW: Duration = Duration::from_secs(1);

/// The window a sender's bitrate is judged over.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Peers that have not connected yet, at most (an offer costs a DTLS certificate and a slot
/// for the handshake deadline: a flood of offers that never connect cannot fill the node).
pub const MAX_PENDING: usize = 64;
/// A publisher heard from less than this ago is live: a second one is refused; one quiet for
/// longer is replaced by a new offer with the key.
const QUIET: Duration = Duration::from_secs(3);
/// A connected peer heard nothing from for this long is gone (ICE-lite sends no checks of its
/// own, so silence is how a vanished client shows; a live one sends RTCP and consent checks
/// every second or two).
pub const LOST: Duration = Duration::from_secs(8);
/// A viewer's own keyframe requests (after loss) reach the publisher at most this often.
const VIEWER_PLI_EVERY: Duration = Duration::from_secs(2);
/// A publisher that has sent no keyframe for this long is asked for one. Browsers send one only
/// when asked, and the broadcast's LL-HLS segments and recording start at keyframes (so do
/// viewers recovering from loss): this is their group of pictures, as an RTMP encoder's
/// two-second keyframe interval would be.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(2);

/// What happened to a peer that the rest of moim may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happening {
    /// ICE and DTLS are done. For a publisher, which kinds of media it offered.
    Connected {
        peer: PeerId,
        room: String,
        role: Role,
        audio: bool,
        video: bool,
    },
    /// The peer ended. `deliberate`: it was ended on purpose (its `DELETE`, or its room's
    /// sessions were ended), rather than lost (network, deadline, bad input, replaced).
    Gone {
        peer: PeerId,
        room: String,
        role: Role,
        deliberate: bool,
    },
    /// A frame of a publisher's broadcast as forwarded (for the broadcast's HLS and recording).
    Media(Tapped),
    /// A room's voice members changed (joined, left, muted, started or stopped speaking).
    Voice {
        room: String,
        members: Vec<VoiceMember>,
    },
}

/// The codec of a forwarded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Opus,
    H264,
    Vp8,
    Other,
}

/// One frame of a publisher's media, as str0m reassembled it: H.264 in Annex B form, Opus and
/// VP8 as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tapped {
    pub room: String,
    pub peer: PeerId,
    pub codec: Codec,
    /// RTP time, extended (it does not wrap), at `hz`.
    pub rtp_time: u64,
    pub hz: u32,
    /// When its last packet arrived.
    pub arrived: Instant,
    pub data: std::sync::Arc<[u8]>,
}

/// A datagram to send.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Over ICE-TCP (RFC 6544: framed on the client's TCP connection) rather than UDP.
    pub tcp: bool,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

struct Peer {
    id: PeerId,
    rtc: Rtc,
    room: String,
    role: Role,
    started: Instant,
    connected: bool,
    /// The peer's m-lines and their kinds (its offer's order).
    mids: Vec<(Mid, MediaKind)>,
    /// Whether its offer has audio, and video.
    offered: (bool, bool),
    /// Publisher: when a keyframe was last asked of it, and whether one is wanted as soon as
    /// the throttle allows (a viewer joined inside the window).
    last_keyframe_request: Option<Instant>,
    keyframe_wanted: bool,
    /// Viewer: when its own keyframe request (PLI/FIR) was last passed on.
    last_pli: Option<Instant>,
    /// Publisher: the layers of its video (simulcast encodings, or its one stream), the one
    /// given to the broadcast's HLS and recording (the top one, its timestamps continued
    /// across moves), and the layers a keyframe is wanted of.
    layers: Layers,
    tap: View,
    keyframe_layers: Vec<LayerId>,
    /// Viewer: its place in the publisher's layers (with a bandwidth estimate when the
    /// publisher sent simulcast as it joined).
    view: View,
    /// The client's ICE username fragment, from its offer (a PATCH with another is a restart).
    ufrag: String,
    /// WHIP/WHEP: the client's offer, which an ICE restart by trickle fragment is applied to
    /// (a voice client sends a whole new offer instead).
    offer_sdp: Option<String>,
    /// When a datagram last came from this peer.
    last_heard: Instant,
    /// Bytes received from it since `window_start`.
    window_bytes: u64,
    window_start: Instant,
    /// Publisher: when its forwarded video last had a keyframe (or it connected).
    last_keyframe: Option<Instant>,
    /// Ended on purpose (see [`Happening::Gone`]).
    deliberate: bool,
    /// A voice member: who, and its state.
    talker: Option<Talker>,
    /// When str0m wants to run next for this peer.
    due: Instant,
    /// Something came in or was written since it last ran: run it now.
    touched: bool,
}

/// The SFU's state.
pub struct Core {
    peers: Vec<Peer>,
    /// Rooms whose voice members changed since they were last told, and when they were.
    voice_changed: Vec<String>,
    voice_told: std::collections::HashMap<String, Instant>,
    /// Members a moderator muted, by room: kept while the room's voice chat has anyone in it,
    /// so leaving and joining again does not unmute.
    voice_held: std::collections::HashMap<String, std::collections::HashSet<i64>>,
    /// Host candidates put in every answer (the UDP socket's addresses as clients reach them).
    candidates: Vec<SocketAddr>,
    /// Passive TCP candidates (ICE-TCP), when a TCP listener is configured.
    tcp_candidates: Vec<SocketAddr>,
    limits: Limits,
    happenings: Vec<Happening>,
    /// Voice sessions ended by someone else, newest last.
    endings: std::collections::VecDeque<(PeerId, Ending)>,
    /// Bytes sent since `egress_start`, and the rate of the last whole window, kbit/s.
    egress_bytes: u64,
    egress_start: Option<Instant>,
    egress_kbps: u64,
    /// Viewers and voice members taken since the window began: their cost is not in the
    /// window's rate yet.
    admitted: u64,
}

impl Core {
    pub fn new(candidates: Vec<SocketAddr>, limits: Limits) -> Core {
        Core {
            peers: Vec::new(),
            voice_changed: Vec::new(),
            voice_told: std::collections::HashMap::new(),
            voice_held: std::collections::HashMap::new(),
            candidates,
            tcp_candidates: Vec::new(),
            limits,
            happenings: Vec::new(),
            endings: std::collections::VecDeque::new(),
            egress_bytes: 0,
            egress_start: None,
            egress_kbps: 0,
            admitted: 0,
        }
    }

    /// What the node forwarded over the last whole [`EGRESS_WINDOW`], kbit/s.
    pub fn forwarded_kbps(&self) -> u64 {
        self.egress_kbps
    }

    /// Whether one more receiver would take the node past `max_forward_kbps`: the last
    /// window's rate, plus, for each one taken since, what a receiver costs on average.
    fn forward_full(&self) -> bool {
        let receivers = self
            .peers
            .iter()
            .filter(|p| p.connected && matches!(p.role, Role::Viewer | Role::Voice))
            .count() as u64;
        let each = self.egress_kbps / receivers.max(1);
        self.egress_kbps + (self.admitted + 1) * each > self.limits.max_forward_kbps
            || self.egress_kbps >= self.limits.max_forward_kbps
    }

    fn count_egress(&mut self, now: Instant, bytes: u64) {
        let start = *self.egress_start.get_or_insert(now);
        let elapsed = now.duration_since(start);
        if elapsed >= EGRESS_WINDOW {
            // A window with nothing sent after it counts as nothing.
            self.egress_kbps = self.egress_bytes * 8 / elapsed.as_millis().max(1) as u64;
            self.egress_bytes = 0;
            self.egress_start = Some(now);
            self.admitted = 0;
        }
        self.egress_bytes += bytes;
    }

    /// Answers also offer these passive TCP candidates (ICE-TCP, RFC 6544), for clients whose
    /// network lets TCP out but not UDP.
    pub fn with_tcp(mut self, candidates: Vec<SocketAddr>) -> Core {
        self.tcp_candidates = candidates;
        self
    }

    /// How a voice session that is no more was ended, if someone else ended it.
    pub fn ending(&self, id: &str) -> Option<Ending> {
        self.endings.iter().find(|(i, _)| i == id).map(|(_, e)| *e)
    }

    fn ended_as(&mut self, id: &str, ending: Ending) {
        if self.endings.len() >= ENDINGS_KEPT {
            self.endings.pop_front();
        }
        self.endings.push_back((id.to_string(), ending));
    }

    /// Peers at the moment.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Whether `room` has a publisher (connected or connecting).
    pub fn has_publisher(&self, room: &str) -> bool {
        self.peers
            .iter()
            .any(|p| p.room == room && p.role == Role::Publisher)
    }

    /// Whether `room`'s publisher offered simulcast video.
    fn simulcast(&self, room: &str) -> bool {
        self.peers.iter().any(|p| {
            p.room == room
                && p.role == Role::Publisher
                && p.rtc.is_alive()
                && p.offer_sdp
                    .as_deref()
                    .is_some_and(|s| s.contains("a=simulcast:"))
        })
    }

    /// The layer a viewer is shown now (`Some(None)`: the one stream of a broadcast without
    /// simulcast; None: nothing yet), and its bandwidth estimate, kbit/s.
    pub fn viewer_layer(&self, id: &str) -> Option<(Option<LayerId>, Option<u64>)> {
        self.peers
            .iter()
            .find(|p| p.id == id && p.role == Role::Viewer)
            .map(|p| (p.view.layer, p.view.estimate_kbps))
    }

    /// Viewers of `room`.
    pub fn viewers(&self, room: &str) -> usize {
        self.peers
            .iter()
            .filter(|p| p.room == room && p.role == Role::Viewer)
            .count()
    }

    /// Takes an offer from a publisher (WHIP) or a viewer (WHEP): the peer's id and the SDP
    /// answer.
    pub fn offer(
        &mut self,
        now: Instant,
        room: &str,
        role: Role,
        sdp: &str,
    ) -> Result<(PeerId, String), SfuError> {
        self.offer_as(now, room, role, sdp, None)
    }

    /// A member joins the room's voice chat with `sdp` (one audio m-line to send, then up to
    /// [`VOICE_LINES`] to receive): its id, the answer, and its line if one was free. A second
    /// session of the same member replaces the first.
    pub fn offer_voice(
        &mut self,
        now: Instant,
        room: &str,
        user_id: i64,
        name: &str,
        sdp: &str,
    ) -> Result<(PeerId, String, Option<usize>), SfuError> {
        let talking = |p: &Peer| p.room == room && p.rtc.is_alive() && p.talker.is_some();
        let mut taken: Vec<usize> = Vec::new();
        let mut members = 0;
        let mut again = None;
        for p in self.peers.iter().filter(|p| talking(p)) {
            let t = p.talker.as_ref().expect("talking");
            if t.user_id == user_id {
                again = Some(p.id.clone());
            } else {
                members += 1;
                taken.extend(t.line);
            }
        }
        if members >= VOICE_MEMBERS {
            return Err(SfuError::VoiceFull(VOICE_MEMBERS));
        }
        let line = (0..VOICE_LINES).find(|s| !taken.contains(s));
        let held = self
            .voice_held
            .get(room)
            .is_some_and(|h| h.contains(&user_id));
        let talker = Talker {
            user_id,
            name: name.to_string(),
            line,
            held,
            muted: false,
            speaking: false,
            last_loud: None,
            camera: None,
        };
        let (id, answer) = self.offer_as(now, room, Role::Voice, sdp, Some(talker))?;
        if let Some(old) = again {
            self.remove(&old);
            self.ended_as(&old, Ending::Replaced);
        }
        Ok((id, answer, line))
    }

    fn offer_as(
        &mut self,
        now: Instant,
        room: &str,
        role: Role,
        sdp: &str,
        talker: Option<Talker>,
    ) -> Result<(PeerId, String), SfuError> {
        if self.peers.len() >= self.limits.peers {
            return Err(SfuError::ServerFull(self.limits.peers));
        }
        match role {
            Role::Publisher if self.has_publisher(room) => {
                // A publisher that has gone quiet (an encoder that lost its network and comes
                // back with a new offer, as OBS does) gives way; a live one keeps the room.
                let live = self.peers.iter().any(|p| {
                    p.room == room
                        && p.role == Role::Publisher
                        && p.rtc.is_alive()
                        && now.duration_since(p.last_heard.max(p.started)) < QUIET
                });
                if live {
                    return Err(SfuError::PublisherPresent);
                }
                // Lost, not ended: the broadcast continues with the new one.
                self.end_peers(room, Some(Role::Publisher), false);
            }
            Role::Viewer if self.viewers(room) >= self.limits.viewers_per_room => {
                return Err(SfuError::RoomFull(self.limits.viewers_per_room))
            }
            Role::Viewer | Role::Voice if self.forward_full() => {
                return Err(SfuError::ForwardFull(self.limits.max_forward_kbps / 1000))
            }
            _ => {}
        }
        let pending = self.peers.iter().filter(|p| !p.connected).count();
        if pending >= MAX_PENDING {
            return Err(SfuError::ServerFull(MAX_PENDING));
        }
        if sdp.len() > 64 * 1024 {
            return Err(SfuError::BadSdp("the offer is over 64 KiB".into()));
        }
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        check_media(sdp, role)?;
        let ufrag = ice_line(sdp, "ice-ufrag").unwrap_or_default();
        let offered = |kind: &str| {
            sdp.lines()
                .any(|l| l.strip_prefix("m=").is_some_and(|m| m.starts_with(kind)))
        };
        let offered = (offered("audio "), offered("video "));
        // H.264 ahead of VP8: of a publisher offering both, the answer takes H.264, which the
        // broadcast's LL-HLS and recording can carry as it is.
        // A viewer of a simulcast broadcast estimates its bandwidth (transport-wide congestion
        // control), which chooses its layer. Others do not: str0m paces what it sends to the
        // estimate, and a single stream has nothing to choose.
        let estimate = role == Role::Viewer && self.simulcast(room);
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_h264(true)
            .enable_vp8(true)
            .enable_bwe(estimate.then_some(Bitrate::kbps(START_ESTIMATE_KBPS)));
        // Transport-wide congestion feedback only where it is used: from moim to senders (their
        // own estimate, which sets their encoder's bitrate) and from viewers it estimates for.
        // Other viewers' feedback would cost a report to decrypt and apply every few tens of
        // milliseconds per viewer, for nothing.
        if role == Role::Viewer && !estimate {
            let mut exts = ExtensionMap::empty();
            for (id, e) in ExtensionMap::standard().iter() {
                if !matches!(e, Extension::TransportSequenceNumber) {
                    exts.set(id, e.clone());
                }
            }
            config = config.set_extension_map(exts);
        }
        let mut rtc = config.build(now);
        for addr in &self.candidates {
            if let Ok(c) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        for addr in &self.tcp_candidates {
            let c = Candidate::builder()
                .tcp()
                .host(*addr)
                .tcptype(str0m::net::TcpType::Passive)
                .build();
            if let Ok(c) = c {
                rtc.add_local_candidate(c);
            }
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let id = random_id();
        if matches!(role, Role::Viewer | Role::Voice) {
            self.admitted += 1;
        }
        self.peers.push(Peer {
            id: id.clone(),
            rtc,
            room: room.to_string(),
            role,
            started: now,
            connected: false,
            mids: Vec::new(),
            offered,
            last_keyframe_request: None,
            keyframe_wanted: false,
            last_pli: None,
            layers: Layers::new(),
            tap: View::default(),
            keyframe_layers: Vec::new(),
            view: View::new(estimate.then_some(START_ESTIMATE_KBPS)),
            ufrag,
            offer_sdp: (role != Role::Voice).then(|| sdp.to_string()),
            last_heard: now,
            window_bytes: 0,
            window_start: now,
            last_keyframe: None,
            deliberate: false,
            talker,
            due: now,
            touched: true,
        });
        Ok((id, answer.to_sdp_string()))
    }

    /// Ends a peer (a WHIP or WHEP `DELETE`); false when there is none by that id.
    pub fn remove(&mut self, id: &str) -> bool {
        match self.peers.iter_mut().find(|p| p.id == id) {
            Some(p) => {
                p.rtc.disconnect();
                p.deliberate = true;
                p.touched = true;
                true
            }
            None => false,
        }
    }

    /// Ends every peer of a room (the room is gone, or its broadcast ended), or only its
    /// publisher.
    pub fn remove_room(&mut self, room: &str, only: Option<Role>) -> usize {
        self.end_peers(room, only, true)
    }

    fn end_peers(&mut self, room: &str, only: Option<Role>, deliberate: bool) -> usize {
        let mut n = 0;
        for p in self
            .peers
            .iter_mut()
            .filter(|p| p.room == room && only.is_none_or(|r| r == p.role))
        {
            p.rtc.disconnect();
            p.deliberate = deliberate;
            p.touched = true;
            n += 1;
        }
        n
    }

    /// Mutes or unmutes a voice member's session (its audio is not forwarded while muted);
    /// false when there is no such voice session.
    pub fn mute(&mut self, id: &str, muted: bool) -> bool {
        let Some(p) = self
            .peers
            .iter_mut()
            .find(|p| p.id == id && p.rtc.is_alive())
        else {
            return false;
        };
        let Some(t) = p.talker.as_mut() else {
            return false;
        };
        if t.muted != muted {
            t.muted = muted;
            t.speaking = t.speaking && !t.silent();
            let room = p.room.clone();
            self.voice_news(&room);
        }
        true
    }

    /// Turns a voice member's camera on (it takes a free camera line, which everyone else
    /// receives it on) or off: its line, or None when off. A session whose offer had no video
    /// m-lines cannot send a camera; a room shows [`VOICE_CAMERAS`] at once.
    pub fn camera(&mut self, id: &str, on: bool) -> Result<Option<usize>, SfuError> {
        let i = self
            .peers
            .iter()
            .position(|p| p.id == id && p.rtc.is_alive() && p.talker.is_some())
            .ok_or(SfuError::NoSuchPeer)?;
        let room = self.peers[i].room.clone();
        let current = self.peers[i].talker.as_ref().and_then(|t| t.camera);
        let line = if !on {
            None
        } else if current.is_some() {
            return Ok(current);
        } else {
            if !self.peers[i].offered.1 {
                return Err(SfuError::Unsupported(
                    "this voice session was joined without video m-lines: join again to use a camera"
                        .into(),
                ));
            }
            let taken: Vec<usize> = self
                .peers
                .iter()
                .filter(|p| p.room == room && p.rtc.is_alive())
                .filter_map(|p| p.talker.as_ref()?.camera)
                .collect();
            let free = (0..VOICE_CAMERAS)
                .find(|l| !taken.contains(l))
                .ok_or(SfuError::CamerasFull(VOICE_CAMERAS))?;
            // Everyone's picture starts at a keyframe.
            self.peers[i].keyframe_wanted = true;
            self.peers[i].touched = true;
            Some(free)
        };
        if let Some(t) = self.peers[i].talker.as_mut() {
            t.camera = line;
        }
        if line != current {
            self.voice_news(&room);
        }
        Ok(line)
    }

    /// A moderator mutes (`true`) or unmutes a member of the room's voice chat by user: it
    /// holds across its sessions until a moderator lifts it.
    fn hold(&mut self, room: &str, user_id: i64, held: bool) {
        let set = self.voice_held.entry(room.to_string()).or_default();
        if held {
            set.insert(user_id);
        } else {
            set.remove(&user_id);
        }
        let mut changed = false;
        for p in self.peers.iter_mut().filter(|p| p.room == room) {
            if let Some(t) = p.talker.as_mut().filter(|t| t.user_id == user_id) {
                t.held = held;
                t.speaking = t.speaking && !t.silent();
                changed = true;
            }
        }
        if changed {
            self.voice_news(room);
        }
    }

    /// A moderator mutes (`Some(true)`), unmutes, or (`None`) removes a member of a room's voice
    /// chat, named as it signs in (any case): how many sessions that touched, connected or
    /// still connecting.
    pub fn moderate_voice(&mut self, room: &str, name: &str, mute: Option<bool>) -> usize {
        let found: Vec<(PeerId, i64)> = self
            .peers
            .iter()
            .filter(|p| p.room == room && p.rtc.is_alive())
            .filter_map(|p| {
                let t = p.talker.as_ref()?;
                t.name
                    .eq_ignore_ascii_case(name)
                    .then(|| (p.id.clone(), t.user_id))
            })
            .collect();
        for (id, user_id) in &found {
            match mute {
                Some(m) => self.hold(room, *user_id, m),
                None => {
                    self.remove(id);
                    self.ended_as(id, Ending::Removed);
                }
            }
        }
        found.len()
    }

    /// The room's voice members (connected): those with a line by line, then the others.
    pub fn voice_members(&self, room: &str) -> Vec<VoiceMember> {
        let mut members: Vec<VoiceMember> = self
            .peers
            .iter()
            .filter(|p| p.room == room && p.connected && p.rtc.is_alive())
            .filter_map(|p| p.talker.as_ref())
            .map(|t| VoiceMember {
                user_id: t.user_id,
                user: t.name.clone(),
                line: t.line,
                muted: t.silent(),
                held: t.held,
                speaking: t.speaking,
                camera: t.camera.filter(|_| !t.held),
            })
            .collect();
        members.sort_by_key(|m| (m.line.is_none(), m.line, m.user_id));
        members
    }

    fn voice_news(&mut self, room: &str) {
        if !self.voice_changed.iter().any(|r| r == room) {
            self.voice_changed.push(room.to_string());
        }
    }

    /// A new offer for an existing session (a client renegotiating, or restarting ICE after
    /// its network changed): the answer. The session keeps its id, room and role.
    pub fn renegotiate(&mut self, now: Instant, id: &str, sdp: &str) -> Result<String, SfuError> {
        let Some(p) = self
            .peers
            .iter_mut()
            .find(|p| p.id == id && p.rtc.is_alive())
        else {
            return Err(SfuError::NoSuchPeer);
        };
        if sdp.len() > 64 * 1024 {
            return Err(SfuError::BadSdp("the offer is over 64 KiB".into()));
        }
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        check_media(sdp, p.role)?;
        let answer = p
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        p.ufrag = ice_line(sdp, "ice-ufrag").unwrap_or_default();
        if p.offer_sdp.is_some() {
            p.offer_sdp = Some(sdp.to_string());
        }
        // Heard from now: the restart is how it speaks up again.
        p.last_heard = now;
        p.touched = true;
        Ok(answer.to_sdp_string())
    }

    /// An ICE restart by trickle fragment (RFC 9725 §4.3.2): the WHIP/WHEP session's offer
    /// with the client's new credentials. Returns moim's new `(ufrag, pwd)`.
    pub fn restart_ice(
        &mut self,
        now: Instant,
        id: &str,
        ufrag: &str,
        pwd: &str,
    ) -> Result<(String, String), SfuError> {
        let valid =
            |v: &str| !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| b.is_ascii_graphic());
        if !valid(ufrag) || !valid(pwd) {
            return Err(SfuError::BadSdp(
                "ice-ufrag and ice-pwd must be ICE characters".into(),
            ));
        }
        let Some(offer) = self
            .peers
            .iter()
            .find(|p| p.id == id && p.rtc.is_alive())
            .and_then(|p| p.offer_sdp.clone())
        else {
            return Err(SfuError::NoSuchPeer);
        };
        let offer: String = offer
            .lines()
            .map(|l| {
                let l = l.trim_end_matches('\r');
                if l.starts_with("a=ice-ufrag:") {
                    format!("a=ice-ufrag:{ufrag}\r\n")
                } else if l.starts_with("a=ice-pwd:") {
                    format!("a=ice-pwd:{pwd}\r\n")
                } else {
                    format!("{l}\r\n")
                }
            })
            .collect();
        let answer = self.renegotiate(now, id, &offer)?;
        match (ice_line(&answer, "ice-ufrag"), ice_line(&answer, "ice-pwd")) {
            (Some(u), Some(p)) => Ok((u, p)),
            _ => Err(SfuError::BadSdp("the answer has no ICE credentials".into())),
        }
    }

    /// The ICE username fragment a peer's client offered.
    pub fn ufrag(&self, id: &str) -> Option<&str> {
        self.peers
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.ufrag.as_str())
    }

    /// The room and role of a peer.
    pub fn peer(&self, id: &str) -> Option<(&str, Role)> {
        self.peers
            .iter()
            .find(|p| p.id == id)
            .map(|p| (p.room.as_str(), p.role))
    }

    /// A datagram arrived. Bytes no peer claims are dropped; a peer that cannot make sense of
    /// its own ends, the others go on.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
    ) {
        self.receive_on(now, Protocol::Udp, source, destination, bytes)
    }

    /// A packet that came framed on an ICE-TCP connection from `source` to `destination`.
    pub fn receive_tcp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
    ) {
        self.receive_on(now, Protocol::Tcp, source, destination, bytes)
    }

    fn receive_on(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
    ) {
        let Ok(contents) = bytes.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        if let Some(p) = self.peers.iter_mut().find(|p| p.rtc.accepts(&input)) {
            p.touched = true;
            p.last_heard = now;
            p.window_bytes += bytes.len() as u64;
            if now.duration_since(p.window_start) >= RATE_WINDOW {
                let kbps = p.window_bytes * 8
                    / now.duration_since(p.window_start).as_millis().max(1) as u64;
                if p.role != Role::Viewer && kbps > self.limits.max_send_kbps {
                    tracing::info!(peer = %short(&p.id), room = %p.room, kbps, limit = self.limits.max_send_kbps, "WebRTC peer ended: sending above the bitrate limit");
                    p.rtc.disconnect();
                    return;
                }
                p.window_bytes = 0;
                p.window_start = now;
            }
            if let Err(e) = p.rtc.handle_input(input) {
                tracing::info!(peer = %short(&p.id), room = %p.room, error = %e, "WebRTC peer ended: bad input");
                p.rtc.disconnect();
            }
        }
    }

    /// Runs the peers that are due, or got or were given something, up to `now`: the datagrams
    /// to send go to `out`; returns when the core wants to run next. Media and keyframe
    /// requests are forwarded here.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Datagram>) -> Instant {
        let already = out.len();
        let next = self.run_peers(now, out);
        let sent: usize = out[already..].iter().map(|d| d.contents.len()).sum();
        self.count_egress(now, sent as u64);
        next
    }

    fn run_peers(&mut self, now: Instant, out: &mut Vec<Datagram>) -> Instant {
        let mut media: Vec<(String, MediaKind, MediaData)> = Vec::new();
        let mut voice: Vec<(String, String, i64, MediaData)> = Vec::new();
        let mut voice_news: Vec<String> = Vec::new();
        // Keyframes wanted of rooms' publishers, by layer.
        let mut keyframes: Vec<(String, LayerId)> = Vec::new();
        // Rooms whose publisher's layers changed (viewers choose again), or whose publisher
        // is new (viewers start again from its keyframe).
        let mut rechoose: Vec<String> = Vec::new();
        let mut restarts: Vec<String> = Vec::new();
        // Layers a frame came after lost packets on: a keyframe is asked of those in use.
        let mut gaps: Vec<(String, LayerId)> = Vec::new();
        let mut cameras: Vec<(String, String, usize, MediaData)> = Vec::new();
        // Rooms whose cameras (one line's, or all) need a keyframe.
        let mut camera_keyframes: Vec<(String, Option<usize>)> = Vec::new();
        for p in &mut self.peers {
            if !p.rtc.is_alive() || !(p.touched || now >= p.due) {
                continue;
            }
            p.touched = false;
            if !p.connected && now.duration_since(p.started) > HANDSHAKE_DEADLINE {
                tracing::info!(peer = %short(&p.id), room = %p.room, "WebRTC peer ended: no connection within the deadline");
                p.rtc.disconnect();
                continue;
            }
            if p.connected && now.duration_since(p.last_heard) > LOST {
                tracing::info!(peer = %short(&p.id), room = %p.room, "WebRTC peer ended: nothing heard for {} s", LOST.as_secs());
                p.rtc.disconnect();
                continue;
            }
            if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                tracing::info!(peer = %short(&p.id), error = %e, "WebRTC peer ended");
                p.rtc.disconnect();
                continue;
            }
            loop {
                match p.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        p.due = t;
                        break;
                    }
                    Ok(Output::Transmit(t)) => out.push(Datagram {
                        tcp: t.proto == Protocol::Tcp,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    }),
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => {
                            p.connected = true;
                            if p.talker.is_some() {
                                voice_news.push(p.room.clone());
                            }
                            let (audio, video) = p.offered;
                            if p.role == Role::Publisher {
                                restarts.push(p.room.clone());
                                if video {
                                    p.last_keyframe = Some(now);
                                }
                            }
                            self.happenings.push(Happening::Connected {
                                peer: p.id.clone(),
                                room: p.room.clone(),
                                role: p.role,
                                audio,
                                video,
                            });
                            if p.role == Role::Viewer {
                                p.view.rechoose = true;
                            }
                            // A new member sees the cameras that are on from a keyframe.
                            if p.role == Role::Voice {
                                camera_keyframes.push((p.room.clone(), None));
                            }
                        }
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            p.rtc.disconnect();
                        }
                        Event::MediaAdded(m) => p.mids.push((m.mid, m.kind)),
                        Event::MediaData(data) if p.role == Role::Publisher => {
                            let Some(kind) =
                                p.mids.iter().find(|(m, _)| *m == data.mid).map(|(_, k)| *k)
                            else {
                                continue;
                            };
                            // One m-line per kind is forwarded (a viewer has one of each);
                            // of its simulcast layers each viewer gets one (`forward`).
                            let first = p.mids.iter().find(|(_, k)| *k == kind).map(|(m, _)| *m);
                            if first != Some(data.mid) {
                                continue;
                            }
                            let mut tap_time = Some(data.time.numer());
                            if kind == MediaKind::Video {
                                let keyframe = data.is_keyframe();
                                match p.layers.count(now, data.rid, data.data.len()) {
                                    None => continue, // a layer too many
                                    Some(true) => rechoose.push(p.room.clone()),
                                    Some(false) => {}
                                }
                                if !data.contiguous {
                                    gaps.push((p.room.clone(), data.rid));
                                }
                                // The broadcast's HLS and recording get one layer at a time:
                                // the one stream without simulcast; else the top layer once
                                // it has been the top for a window (for two, to move to
                                // another), or the top at once when the one they get stops.
                                // They move at the new layer's keyframe with the timestamps
                                // continued (a new resolution makes a new init segment).
                                let shown = p.tap.layer;
                                let steady = p
                                    .layers
                                    .steady_top(if shown.is_some() { 2 } else { 1 })
                                    .filter(|l| p.layers.is_live(*l));
                                let lost = shown
                                    .filter(|l| !p.layers.is_live(*l))
                                    .and_then(|_| p.layers.top(now));
                                if let Some(want) = lost.or(steady) {
                                    if p.tap.want != Some(want) {
                                        p.tap.want = Some(want);
                                        p.tap.asked = None;
                                    }
                                }
                                // Its keyframe is asked for, and again each second it waits.
                                if let Some(want) = p.tap.want.filter(|w| shown != Some(*w)) {
                                    if p.tap
                                        .asked
                                        .is_none_or(|t| now.duration_since(t) >= SWITCH_ASK_EVERY)
                                    {
                                        p.tap.asked = Some(now);
                                        keyframes.push((p.room.clone(), want));
                                    }
                                }
                                let (t, hz) = (data.time.numer(), data.time.denom());
                                tap_time = p.tap.admit(now, data.rid, keyframe, t, hz);
                                if tap_time.is_some() && keyframe {
                                    p.last_keyframe = Some(now);
                                }
                            }
                            let Some(rtp_time) = tap_time else {
                                media.push((p.room.clone(), kind, data));
                                continue;
                            };
                            self.happenings.push(Happening::Media(Tapped {
                                room: p.room.clone(),
                                peer: p.id.clone(),
                                codec: match data.params.spec().codec {
                                    str0m::format::Codec::Opus => Codec::Opus,
                                    str0m::format::Codec::H264 => Codec::H264,
                                    str0m::format::Codec::Vp8 => Codec::Vp8,
                                    _ => Codec::Other,
                                },
                                rtp_time,
                                hz: data.time.denom(),
                                arrived: data.network_time,
                                data: data.data.clone(),
                            }));
                            media.push((p.room.clone(), kind, data));
                        }
                        Event::MediaData(data) if p.role == Role::Voice => {
                            // Its first audio m-line is its microphone, its first video
                            // m-line its camera.
                            let first =
                                |kind| p.mids.iter().find(|(_, k)| *k == kind).map(|(m, _)| *m);
                            let (mic, cam) = (first(MediaKind::Audio), first(MediaKind::Video));
                            let Some(t) = p.talker.as_mut() else { continue };
                            if cam == Some(data.mid) {
                                // A moderator's mute hides the camera too.
                                if let Some(line) = t.camera.filter(|_| !t.held) {
                                    if !data.contiguous {
                                        p.keyframe_wanted = true;
                                    }
                                    cameras.push((p.room.clone(), p.id.clone(), line, data));
                                }
                                continue;
                            }
                            if mic != Some(data.mid) || t.silent() {
                                continue;
                            }
                            if data
                                .ext_vals
                                .audio_level
                                .is_some_and(|l| l >= SPEAKING_DBOV)
                            {
                                t.last_loud = Some(now);
                            }
                            voice.push((p.room.clone(), p.id.clone(), t.user_id, data));
                        }
                        Event::EgressBitrateEstimate(BweKind::Twcc {
                            estimate,
                            can_probe,
                        }) if p.role == Role::Viewer => {
                            let kbps = estimate.as_u64() / 1000;
                            // Moves of a fifth or more, for reading why a viewer's layer did
                            // (not) move.
                            if p.view
                                .estimate_kbps
                                .is_none_or(|e| kbps.abs_diff(e) * 5 >= e)
                            {
                                tracing::debug!(peer = %short(&p.id), kbps, can_probe, "WebRTC viewer's bandwidth estimate");
                            }
                            p.view.estimate_kbps = Some(kbps);
                            p.view.rechoose = true;
                        }
                        // A voice member's request for a camera line's keyframe goes to the
                        // member seen on it, throttled as a viewer's are.
                        Event::KeyframeRequest(req)
                            if p.role == Role::Voice
                                && p.last_pli
                                    .is_none_or(|t| now.duration_since(t) >= VIEWER_PLI_EVERY) =>
                        {
                            let line = p
                                .mids
                                .iter()
                                .filter(|(_, k)| *k == MediaKind::Video)
                                .position(|(m, _)| *m == req.mid)
                                .and_then(|n| n.checked_sub(1));
                            if let Some(line) = line {
                                p.last_pli = Some(now);
                                camera_keyframes.push((p.room.clone(), Some(line)));
                            }
                        }
                        // A viewer's own requests are throttled per viewer: one viewer
                        // cannot make the publisher send keyframes for everyone. They are
                        // for the layer it is shown (or waits for).
                        Event::KeyframeRequest(_)
                            if p.role == Role::Viewer
                                && p.last_pli
                                    .is_none_or(|t| now.duration_since(t) >= VIEWER_PLI_EVERY) =>
                        {
                            p.last_pli = Some(now);
                            if let Some(layer) = p.view.layer.or(p.view.want) {
                                keyframes.push((p.room.clone(), layer));
                            }
                        }
                        _ => {}
                    },
                    Err(e) => {
                        tracing::info!(peer = %short(&p.id), error = %e, "WebRTC peer ended");
                        p.rtc.disconnect();
                        break;
                    }
                }
            }
        }
        for room in restarts {
            for v in self.viewers_mut(&room) {
                v.view.restart();
            }
        }
        rechoose.dedup();
        for room in rechoose {
            for v in self.viewers_mut(&room) {
                v.view.rechoose = true;
            }
        }
        for (room, layer) in gaps {
            let used = self.peers.iter().any(|p| {
                p.room == room
                    && match p.role {
                        Role::Publisher => p.tap.layer == Some(layer) || p.tap.want == Some(layer),
                        Role::Viewer => p.view.layer == Some(layer) || p.view.want == Some(layer),
                        Role::Voice => false,
                    }
            });
            if used {
                keyframes.push((room, layer));
            }
        }
        self.choose_layers(now, &mut keyframes);
        for (room, kind, data) in &media {
            self.forward(now, room, *kind, data);
        }
        for (room, from, user_id, data) in &voice {
            if let Some(line) = self.line_for(now, room, *user_id) {
                self.forward_voice(now, room, from, MediaKind::Audio, line, data);
            }
        }
        for (room, from, line, data) in &cameras {
            self.forward_voice(now, room, from, MediaKind::Video, *line, data);
        }
        for (room, line) in camera_keyframes {
            for p in self.peers.iter_mut().filter(|p| p.room == room) {
                let Some(cam) = p.talker.as_ref().and_then(|t| t.camera) else {
                    continue;
                };
                if line.is_none_or(|l| l == cam) {
                    p.keyframe_wanted = true;
                }
            }
        }
        // Speaking starts with a loud packet and ends a moment after the last one.
        for p in &mut self.peers {
            if let Some(t) = p.talker.as_mut() {
                let speaking = !t.silent()
                    && t.last_loud
                        .is_some_and(|l| now.duration_since(l) < SPEAKING_HOLD);
                if speaking != t.speaking {
                    t.speaking = speaking;
                    voice_news.push(p.room.clone());
                }
            }
        }
        for room in voice_news {
            self.voice_news(&room);
        }
        // Requests held back by the throttle go out once it allows; a publisher that has sent
        // no keyframe for an interval is asked for one.
        for p in &self.peers {
            let overdue = p
                .last_keyframe
                .is_some_and(|t| now.duration_since(t) >= KEYFRAME_INTERVAL);
            if p.role == Role::Publisher
                && (p.keyframe_wanted || overdue)
                && p.last_keyframe_request
                    .is_none_or(|t| now.duration_since(t) >= KEYFRAME_EVERY)
            {
                // The layers asked for before, or the one the broadcast's HLS gets.
                let layer = match p.keyframe_layers.first() {
                    Some(l) if p.keyframe_wanted => *l,
                    _ => p.tap.want.or_else(|| p.layers.top(now)).unwrap_or(None),
                };
                keyframes.push((p.room.clone(), layer));
            }
        }
        for p in self
            .peers
            .iter_mut()
            .filter(|p| p.keyframe_wanted && p.connected && p.role == Role::Voice)
        {
            if p.talker.as_ref().is_some_and(|t| t.camera.is_some()) {
                request_keyframe(p, now, None);
            } else {
                p.keyframe_wanted = false;
                p.keyframe_layers.clear();
            }
        }
        // Per room, the layers asked for go out together.
        let mut asked: Vec<(String, Vec<LayerId>)> = Vec::new();
        for (room, layer) in keyframes {
            match asked.iter_mut().find(|(r, _)| *r == room) {
                Some((_, layers)) if layers.contains(&layer) => {}
                Some((_, layers)) => layers.push(layer),
                None => asked.push((room, vec![layer])),
            }
        }
        for (room, layers) in asked {
            self.ask_keyframe(now, &room, &layers);
        }
        // What was written goes out at once, not at the next deadline.
        for p in self
            .peers
            .iter_mut()
            .filter(|p| p.touched && p.rtc.is_alive())
        {
            p.touched = false;
            loop {
                match p.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => out.push(Datagram {
                        tcp: t.proto == Protocol::Tcp,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    }),
                    Ok(Output::Timeout(t)) => {
                        p.due = t;
                        break;
                    }
                    Ok(Output::Event(_)) => {}
                    Err(_) => {
                        p.rtc.disconnect();
                        break;
                    }
                }
            }
        }
        self.sweep();
        self.tell_voice(now);
        let voice_due = self
            .voice_changed
            .iter()
            .filter_map(|r| self.voice_told.get(r).map(|t| *t + VOICE_NEWS_EVERY))
            .min();
        let speaking_due = self
            .peers
            .iter()
            .filter_map(|p| p.talker.as_ref())
            .filter(|t| t.speaking)
            .filter_map(|t| t.last_loud.map(|l| l + SPEAKING_HOLD))
            .min();
        self.peers
            .iter()
            .map(|p| {
                let due = match (p.keyframe_wanted, p.last_keyframe_request) {
                    (true, Some(t)) => p.due.min(t + KEYFRAME_EVERY),
                    _ => p.due,
                };
                match (p.role, p.last_keyframe) {
                    // Asked again no sooner than the throttle allows.
                    (Role::Publisher, Some(k)) => {
                        let next = (k + KEYFRAME_INTERVAL)
                            .max(p.last_keyframe_request.map_or(k, |t| t + KEYFRAME_EVERY));
                        due.min(next)
                    }
                    _ => due,
                }
            })
            .chain(voice_due)
            .chain(speaking_due)
            .min()
            .unwrap_or(now + Duration::from_millis(500))
            .max(now)
            .min(now + Duration::from_millis(500))
    }

    /// Tells rooms whose voice members changed, each at most once a [`VOICE_NEWS_EVERY`].
    fn tell_voice(&mut self, now: Instant) {
        let due: Vec<String> = self
            .voice_changed
            .iter()
            .filter(|r| {
                self.voice_told
                    .get(*r)
                    .is_none_or(|t| now.duration_since(*t) >= VOICE_NEWS_EVERY)
            })
            .cloned()
            .collect();
        for room in due {
            self.voice_changed.retain(|r| *r != room);
            let members = self.voice_members(&room);
            let anyone = self
                .peers
                .iter()
                .any(|p| p.room == room && p.talker.is_some() && p.rtc.is_alive());
            if !anyone {
                self.voice_held.remove(&room);
            }
            if members.is_empty() {
                self.voice_told.remove(&room);
            } else {
                self.voice_told.insert(room.clone(), now);
            }
            self.happenings.push(Happening::Voice { room, members });
        }
    }

    /// The line a voice member is heard on: its own, or, when it is speaking and has none, a
    /// free one or the line of the member quiet the longest (not speaking now). None while
    /// every line carries someone speaking.
    fn line_for(&mut self, now: Instant, room: &str, user_id: i64) -> Option<usize> {
        let in_room = |p: &Peer| p.room == room && p.rtc.is_alive() && p.talker.is_some();
        let speaking = |t: &Talker| {
            t.last_loud
                .is_some_and(|l| now.duration_since(l) < SPEAKING_HOLD)
        };
        let me = self
            .peers
            .iter()
            .position(|p| in_room(p) && p.talker.as_ref().is_some_and(|t| t.user_id == user_id))?;
        let t = self.peers[me].talker.as_ref().expect("a talker");
        if t.line.is_some() {
            return t.line;
        }
        if !speaking(t) {
            return None; // silence from a member without a line is not worth a line
        }
        let mut used = Vec::new();
        // The line whose member has been quiet the longest: (line, peer index, last loud).
        let mut idle: Option<(usize, usize, Option<Instant>)> = None;
        for (i, p) in self.peers.iter().enumerate().filter(|(_, p)| in_room(p)) {
            let o = p.talker.as_ref().expect("a talker");
            let Some(line) = o.line else { continue };
            used.push(line);
            if !speaking(o) && idle.is_none_or(|(_, _, q)| o.last_loud < q) {
                idle = Some((line, i, o.last_loud));
            }
        }
        let line = match (0..VOICE_LINES).find(|l| !used.contains(l)) {
            Some(free) => free,
            None => {
                let (line, i, _) = idle?;
                self.peers[i].talker.as_mut().expect("a talker").line = None;
                line
            }
        };
        self.peers[me].talker.as_mut().expect("a talker").line = Some(line);
        self.voice_news(room);
        Some(line)
    }

    /// A voice member's microphone (audio) or camera (video) to every other member of the
    /// room, on their `line`-th receiving m-line of that kind (the first of each kind is the
    /// member's own sending one).
    fn forward_voice(
        &mut self,
        now: Instant,
        room: &str,
        from: &str,
        kind: MediaKind,
        line: usize,
        data: &MediaData,
    ) {
        for v in self.peers.iter_mut().filter(|p| {
            p.room == room && p.talker.is_some() && p.id != from && p.connected && p.rtc.is_alive()
        }) {
            let Some(mid) = v
                .mids
                .iter()
                .filter(|(_, k)| *k == kind)
                .nth(1 + line)
                .map(|(m, _)| *m)
            else {
                continue;
            };
            write_frame(v, mid, now, data.time, data);
        }
    }

    /// What happened since the last call (connections made, peers gone).
    pub fn happenings(&mut self) -> Vec<Happening> {
        std::mem::take(&mut self.happenings)
    }

    fn forward(&mut self, now: Instant, room: &str, kind: MediaKind, data: &MediaData) {
        for v in self
            .peers
            .iter_mut()
            .filter(|p| p.room == room && p.role == Role::Viewer && p.connected && p.rtc.is_alive())
        {
            let Some(mid) = v.mids.iter().find(|(_, k)| *k == kind).map(|(m, _)| *m) else {
                continue;
            };
            let time = match kind {
                MediaKind::Audio => data.time,
                // The viewer's layer only, on its own timeline.
                MediaKind::Video => {
                    let (t, hz) = (data.time.numer(), data.time.denom());
                    let Some(t) = v.view.admit(now, data.rid, data.is_keyframe(), t, hz) else {
                        continue;
                    };
                    MediaTime::new(t, data.time.frequency())
                }
            };
            write_frame(v, mid, now, time, data);
        }
    }

    fn viewers_mut<'a>(&'a mut self, room: &'a str) -> impl Iterator<Item = &'a mut Peer> + 'a {
        self.peers
            .iter_mut()
            .filter(move |p| p.room == room && p.role == Role::Viewer)
    }

    /// Chooses the layer of each viewer whose estimate or publisher's layers changed. A
    /// viewer not shown the layer chosen for it needs that layer's keyframe (asked for when
    /// the choice is made, and again every [`SWITCH_ASK_EVERY`] while it waits).
    fn choose_layers(&mut self, now: Instant, keyframes: &mut Vec<(String, LayerId)>) {
        if !self.peers.iter().any(|p| p.view.rechoose) {
            return;
        }
        // Each room's publisher, its layers in order and its top layer's rate.
        let publishers: std::collections::HashMap<String, (usize, Vec<LayerId>, u64)> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.role == Role::Publisher && p.rtc.is_alive())
            .map(|(i, p)| {
                let ranked = p.layers.ranked(now);
                (p.room.clone(), (i, ranked, p.layers.top_kbps(now)))
            })
            .collect();
        for i in 0..self.peers.len() {
            if !std::mem::take(&mut self.peers[i].view.rechoose) || !self.peers[i].connected {
                continue;
            }
            let Some((pi, ranked, top)) = publishers.get(&self.peers[i].room) else {
                continue;
            };
            let (pi, top) = (*pi, *top);
            let (layers, v) = (&self.peers[pi].layers, &self.peers[i].view);
            let Some(want) = layers.choose(now, v.estimate_kbps, v.layer, v.last_down) else {
                // No video seen yet: a keyframe is asked for, for when it comes.
                if layers.is_empty() && v.asked.is_none() {
                    let v = &mut self.peers[i];
                    v.view.asked = Some(now);
                    keyframes.push((v.room.clone(), None));
                }
                continue;
            };
            let v = &mut self.peers[i];
            let changed = v.view.want != Some(want);
            if changed {
                tracing::debug!(peer = %short(&v.id), room = %v.room, layer = ?want, estimate_kbps = ?v.view.estimate_kbps, "WebRTC viewer's simulcast layer chosen");
            }
            let waits = v
                .view
                .set_want(now, want, |l| ranked.iter().position(|r| *r == l));
            if waits
                && (changed
                    || v.view
                        .asked
                        .is_none_or(|t| now.duration_since(t) >= SWITCH_ASK_EVERY))
            {
                v.view.asked = Some(now);
                keyframes.push((v.room.clone(), want));
            }
            // The estimator probes up to the desired bitrate: the top layer and audio, with
            // some room, so a viewer whose link allows it finds out.
            if v.view.estimate_kbps.is_some() && top > 0 {
                let desired = top * 120 / 100 + 100;
                if desired.abs_diff(v.view.desired_kbps) * 10 > v.view.desired_kbps {
                    v.view.desired_kbps = desired;
                    v.rtc.bwe().set_desired_bitrate(Bitrate::kbps(desired));
                    v.touched = true;
                }
            }
        }
    }

    /// Asks the room's publisher for a keyframe of each of `layers` (together), at most once a
    /// [`KEYFRAME_EVERY`].
    fn ask_keyframe(&mut self, now: Instant, room: &str, layers: &[LayerId]) {
        if let Some(p) = self
            .peers
            .iter_mut()
            .find(|p| p.room == room && p.role == Role::Publisher && p.connected)
        {
            // Only layers it sends (a replaced publisher's rids may not be among them): one it
            // has no stream for would be retried for ever.
            for l in layers {
                if !p.keyframe_layers.contains(l) && (p.layers.is_empty() || p.layers.has(*l)) {
                    p.keyframe_layers.push(*l);
                }
            }
            if let Some(first) = p.keyframe_layers.first().copied() {
                request_keyframe(p, now, first);
            }
        }
    }

    /// Drops peers that ended, saying so.
    fn sweep(&mut self) {
        let happenings = &mut self.happenings;
        let changed = &mut self.voice_changed;
        self.peers.retain(|p| {
            let alive = p.rtc.is_alive();
            if !alive && p.talker.is_some() && p.connected && !changed.contains(&p.room) {
                changed.push(p.room.clone());
            }
            if !alive {
                happenings.push(Happening::Gone {
                    peer: p.id.clone(),
                    room: p.room.clone(),
                    role: p.role,
                    deliberate: p.deliberate,
                });
            }
            alive
        });
    }
}

/// The offer carries media moim can forward: for a publisher, Opus audio and H.264 or VP8
/// video (at least one of the two); for a viewer, any of them. Read from the SDP's
/// `m=` and `a=rtpmap` lines, so the reason can be said.
fn check_media(sdp: &str, role: Role) -> Result<(), SfuError> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("m=") {
            let kind = rest.split(' ').next().unwrap_or("").to_string();
            sections.push((kind, Vec::new()));
        } else if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            if let (Some(s), Some(codec)) = (sections.last_mut(), rest.split(' ').nth(1)) {
                let name = codec.split('/').next().unwrap_or("").to_ascii_uppercase();
                s.1.push(name);
            }
        }
    }
    let media: Vec<_> = sections
        .iter()
        .filter(|(k, _)| k == "audio" || k == "video")
        .collect();
    if media.is_empty() {
        return Err(SfuError::Unsupported(
            "the offer has no audio or video".into(),
        ));
    }
    if role == Role::Voice && !media.iter().any(|(k, _)| k == "audio") {
        return Err(SfuError::Unsupported(
            "a voice offer sends and receives audio: it has no audio".into(),
        ));
    }
    if role != Role::Viewer {
        for (kind, codecs) in &media {
            let ok = match kind.as_str() {
                "audio" => codecs.iter().any(|c| c == "OPUS"),
                _ => codecs.iter().any(|c| c == "H264" || c == "VP8"),
            };
            if !ok {
                return Err(SfuError::Unsupported(format!(
                    "the {kind} is offered as {}: moim takes Opus audio and H.264 or VP8 video",
                    if codecs.is_empty() {
                        "nothing".to_string()
                    } else {
                        codecs.join(", ")
                    }
                )));
            }
        }
    }
    Ok(())
}

/// Asks a sender (a publisher, a voice member's camera) for a keyframe of `layer` on its first
/// video m-line, at most once a [`KEYFRAME_EVERY`]; layers asked for inside the window are
/// remembered and asked for together when the window ends.
fn request_keyframe(p: &mut Peer, now: Instant, layer: LayerId) {
    if !p.keyframe_layers.contains(&layer) {
        p.keyframe_layers.push(layer);
    }
    if p.last_keyframe_request
        .is_some_and(|t| now.duration_since(t) < KEYFRAME_EVERY)
    {
        p.keyframe_wanted = true;
        return;
    }
    let Some(mid) = p
        .mids
        .iter()
        .find(|(_, k)| *k == MediaKind::Video)
        .map(|(m, _)| *m)
    else {
        return;
    };
    // Counted as asked even if str0m cannot send it yet (no video received, so no SSRC to
    // name): the throttle holds, and it is tried again once the throttle allows.
    p.last_keyframe_request = Some(now);
    let mut sent = false;
    if let Some(mut w) = p.rtc.writer(mid) {
        p.keyframe_layers
            .retain(|l| match w.request_keyframe(*l, KeyframeRequestKind::Pli) {
                Ok(()) => {
                    sent = true;
                    false
                }
                Err(_) => true,
            });
    }
    p.keyframe_wanted = !p.keyframe_layers.is_empty();
    p.touched |= sent;
}

/// Writes a forwarded frame to a listener's m-line, with the payload type it negotiated for
/// that codec (none: skipped); a listener that cannot take it ends.
fn write_frame(v: &mut Peer, mid: Mid, now: Instant, time: MediaTime, data: &MediaData) {
    let Some(writer) = v.rtc.writer(mid) else {
        return;
    };
    let Some(pt) = writer.match_params(data.params) else {
        return;
    };
    if let Err(e) = writer.write(pt, now, time, data.data.clone()) {
        tracing::info!(peer = %short(&v.id), error = %e, "WebRTC listener ended: could not write");
        v.rtc.disconnect();
    }
    v.touched = true;
}

/// The value of the first `a={name}:` line.
fn ice_line(sdp: &str, name: &str) -> Option<String> {
    sdp.lines().find_map(|l| {
        l.trim_end_matches('\r')
            .strip_prefix("a=")?
            .strip_prefix(name)?
            .strip_prefix(':')
            .map(str::to_string)
    })
}

fn random_id() -> PeerId {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The first characters of an id, for the log (the id is a capability).
fn short(id: &str) -> &str {
    &id[..id.len().min(6)]
}

/// Feeds the core what a fuzzer made (the `webrtc_offer` target and its corpus test read bytes
/// alike): the first byte splits the rest into an offer, tried as publisher and viewer, and
/// datagrams of 1 + (byte % 200) bytes from one address, 7 ms apart. Panics on what must not
/// happen: an error without a reason, more peers than the two offers.
#[doc(hidden)]
pub fn replay(data: &[u8]) {
    let now = Instant::now();
    let mut core = Core::new(
        vec!["127.0.0.1:5000".parse().expect("an address")],
        Limits {
            viewers_per_room: 4,
            peers: 8,
            max_send_kbps: 20_000,
            max_forward_kbps: 1_000_000,
        },
    );
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize * rest.len()) / 255;
    let (offer, mut datagrams) = rest.split_at(at.min(rest.len()));
    let offer = String::from_utf8_lossy(offer);
    for role in [Role::Publisher, Role::Viewer] {
        if let Err(e) = core.offer(now, "room", role, &offer) {
            assert!(!e.to_string().is_empty());
        }
    }
    let source = "127.0.0.9:9000".parse().expect("an address");
    let destination = "127.0.0.1:5000".parse().expect("an address");
    let mut out = Vec::new();
    let mut t = now;
    while let Some((&len, tail)) = datagrams.split_first() {
        let n = (len as usize % 200 + 1).min(tail.len());
        let (d, next) = tail.split_at(n);
        core.receive(t, source, destination, d);
        t += Duration::from_millis(7);
        core.poll(t, &mut out);
        datagrams = next;
    }
    assert!(core.len() <= 2);
}

#[cfg(test)]
mod tests;
