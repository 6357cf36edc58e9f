//! Peers against the core in one thread on a virtual clock: str0m clients (the same library a
//! browser's peer connection speaks to) publish and watch through `Core`, datagrams carried by
//! hand between made-up addresses, time advanced a millisecond a step. No socket, no sleep.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::{
    Codec, Core, Datagram, Happening, Limits, Role, SfuError, Tapped, VOICE_CAMERAS, VOICE_LINES,
    VOICE_MEMBERS,
};

const SERVER: &str = "10.0.0.1:5000";

/// A client peer and what it saw.
struct Client {
    rtc: Rtc,
    addr: SocketAddr,
    audio: Option<Mid>,
    video: Option<Mid>,
    got: Vec<(MediaKind, Vec<u8>)>,
    /// What it received, by m-line.
    by_mid: Vec<(Mid, Vec<u8>)>,
    keyframe_requests: usize,
    /// The layers keyframes were asked of (a simulcast publisher's requests name one).
    keyframes_asked: Vec<Option<Rid>>,
    /// Video frames received.
    video_in: Vec<Seen>,
    connected: bool,
    /// Datagrams from this client are dropped while this says so.
    cut: bool,
    /// Its downlink, when it is a bottleneck.
    down: Option<Link>,
}

/// A bottleneck on the way to a client: `kbps`, and a router queue holding at most
/// [`Link::QUEUE`] of sending time (more is dropped, as a full router queue drops).
struct Link {
    kbps: u64,
    busy_until: Instant,
    queue: VecDeque<(Instant, Datagram)>,
    dropped: usize,
}

impl Link {
    const QUEUE: Duration = Duration::from_millis(150);

    fn new(now: Instant, kbps: u64) -> Link {
        Link {
            kbps,
            busy_until: now,
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    fn push(&mut self, now: Instant, d: Datagram) {
        let start = self.busy_until.max(now);
        if start.duration_since(now) > Link::QUEUE {
            self.dropped += 1;
            return;
        }
        let micros = (d.contents.len() as u64 + 28) * 8 * 1000 / self.kbps;
        self.busy_until = start + Duration::from_micros(micros);
        self.queue.push_back((self.busy_until, d));
    }

    fn due(&mut self, now: Instant) -> Vec<Datagram> {
        let mut out = Vec::new();
        while self.queue.front().is_some_and(|(t, _)| *t <= now) {
            out.push(self.queue.pop_front().unwrap().1);
        }
        out
    }
}

/// A video frame as a client received it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Byte 1 of the frame: the layer's rid, `q`, `h` or `f`, for a simulcast publisher's.
    layer: u8,
    keyframe: bool,
    /// It came after frames missing (lost on the client's link).
    gap: bool,
    rtp_time: u64,
    arrived: Instant,
}

/// The simulcast layers of [`Client::simulcast_publisher`], in its offer's order (which is not
/// their order by size): rid, kbit/s at 30 frames a second, and where its RTP clock starts
/// (each encoding has its own).
const LAYERS: [(&str, u64, u64); 3] = [
    ("f", 1_500, 3_000_000),
    ("q", 100, 0),
    ("h", 400, 1_000_000),
];

impl Client {
    /// A str0m peer taking Opus and VP8, with a host candidate at `addr`, before its m-lines.
    fn peer(now: Instant, addr: &str) -> (Rtc, SocketAddr) {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        (rtc, addr)
    }

    /// A client of `rtc` that sends on `audio` and `video`, having seen nothing yet.
    fn around(rtc: Rtc, addr: SocketAddr, audio: Option<Mid>, video: Option<Mid>) -> Client {
        Client {
            rtc,
            addr,
            audio,
            video,
            got: Vec::new(),
            by_mid: Vec::new(),
            keyframe_requests: 0,
            keyframes_asked: Vec::new(),
            video_in: Vec::new(),
            connected: false,
            cut: false,
            down: None,
        }
    }

    fn new(now: Instant, addr: &str, role: Role) -> (Client, String, SdpPendingOffer) {
        let (mut rtc, addr) = Client::peer(now, addr);
        let dir = match role {
            Role::Publisher => Direction::SendOnly,
            Role::Viewer => Direction::RecvOnly,
            Role::Voice => Direction::SendRecv,
        };
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, dir, None, None, None);
        let video = api.add_media(MediaKind::Video, dir, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        let client = Client::around(rtc, addr, Some(audio), Some(video));
        (client, offer.to_sdp_string(), pending)
    }

    /// A publisher whose video is three simulcast layers ([`LAYERS`]).
    fn simulcast_publisher(now: Instant, addr: &str) -> (Client, String, SdpPendingOffer) {
        let (mut rtc, addr) = Client::peer(now, addr);
        let mut simulcast = Simulcast::new();
        for (rid, _, _) in LAYERS {
            simulcast.add_send_layer(SimulcastLayer::new(rid));
        }
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let video = api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            None,
            None,
            Some(simulcast),
        );
        let (offer, pending) = api.apply().unwrap();
        let c = Client::around(rtc, addr, Some(audio), Some(video));
        (c, offer.to_sdp_string(), pending)
    }

    /// Writes frame `n` of each simulcast layer in `rids`: a keyframe where one was asked of
    /// the layer (or `n` is 0). Byte 0 is VP8's keyframe flag, byte 1 the rid.
    fn send_layers(&mut self, now: Instant, n: u64, rids: &str) {
        let mid = self.video.unwrap();
        for (name, kbps, base) in LAYERS.iter().filter(|(r, _, _)| rids.contains(r)) {
            let rid = Rid::from(*name);
            let asked = self.keyframes_asked.contains(&Some(rid));
            let key = n == 0 || asked;
            self.keyframes_asked.retain(|r| *r != Some(rid));
            let mut frame = vec![0x55u8; (*kbps * 1000 / 8 / 30) as usize];
            frame[0] = if key { 0x00 } else { 0x01 };
            frame[1] = name.as_bytes()[0];
            let writer = self.rtc.writer(mid).expect("a sending m-line").rid(rid);
            let pt = writer.payload_params().next().unwrap().pt();
            let time = MediaTime::new(base + n * 3000, Frequency::NINETY_KHZ);
            writer.write(pt, now, time, frame).unwrap();
        }
    }

    fn accept(&mut self, pending: SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Writes one frame of `kind`.
    fn send(&mut self, now: Instant, kind: MediaKind, n: u64, data: &[u8]) {
        let mid = match kind {
            MediaKind::Audio => self.audio.unwrap(),
            MediaKind::Video => self.video.unwrap(),
        };
        let writer = self.rtc.writer(mid).expect("a sending m-line");
        let pt = writer
            .payload_params()
            .next()
            .expect("a negotiated codec")
            .pt();
        let time = match kind {
            MediaKind::Audio => MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ),
            MediaKind::Video => MediaTime::new(n * 3000, Frequency::NINETY_KHZ),
        };
        writer.write(pt, now, time, data.to_vec()).unwrap();
    }
}

/// The clients, the core and the virtual clock.
struct Net {
    now: Instant,
    core: Core,
    clients: Vec<Client>,
    /// Drop one in n datagrams from clients to the server (0: none).
    drop_every: usize,
    /// The drop sequence's state.
    sent: u64,
}

impl Net {
    fn new() -> Net {
        let now = Instant::now();
        Net {
            now,
            core: Core::new(
                vec![SERVER.parse().unwrap()],
                Limits {
                    viewers_per_room: 4,
                    peers: 10,
                    max_send_kbps: 20_000,
                    max_forward_kbps: 1_000_000,
                },
            ),
            clients: Vec::new(),
            drop_every: 0,
            sent: 0,
        }
    }

    /// A client joins `room` as `role`: its offer goes to the core and the answer back.
    fn join(&mut self, room: &str, role: Role, addr: &str) -> Result<usize, SfuError> {
        let (mut c, offer, pending) = Client::new(self.now, addr, role);
        let (_, answer) = self.core.offer(self.now, room, role, &offer)?;
        c.accept(pending, &answer);
        self.clients.push(c);
        Ok(self.clients.len() - 1)
    }

    /// A simulcast publisher ([`Client::simulcast_publisher`]) joins `room`, its three
    /// layers allowed past the send limit: its client index.
    fn simulcast_publisher(&mut self, room: &str, addr: &str) -> usize {
        self.core.limits.max_send_kbps = 50_000;
        let (mut c, offer, pending) = Client::simulcast_publisher(self.now, addr);
        let (_, answer) = self
            .core
            .offer(self.now, room, Role::Publisher, &offer)
            .unwrap();
        c.accept(pending, &answer);
        self.clients.push(c);
        self.clients.len() - 1
    }

    /// Runs `ms` milliseconds of virtual time.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.now += Duration::from_millis(1);
            self.step();
        }
    }

    fn step(&mut self) {
        let now = self.now;
        let server: SocketAddr = SERVER.parse().unwrap();
        // Clients first: what they send reaches the core.
        let mut to_server: Vec<Datagram> = Vec::new();
        for c in &mut self.clients {
            if !c.rtc.is_alive() {
                continue;
            }
            c.rtc.handle_input(Input::Timeout(now)).unwrap();
            loop {
                match c.rtc.poll_output().unwrap() {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        if !c.cut {
                            to_server.push(Datagram {
                                tcp: false,
                                source: t.source,
                                destination: t.destination,
                                contents: t.contents.to_vec(),
                            })
                        }
                    }
                    Output::Event(e) => match e {
                        Event::Connected => c.connected = true,
                        Event::MediaData(d) => {
                            let kind = if Some(d.mid) == c.audio {
                                MediaKind::Audio
                            } else {
                                MediaKind::Video
                            };
                            if kind == MediaKind::Video && d.data.len() >= 2 {
                                c.video_in.push(Seen {
                                    layer: d.data[1],
                                    keyframe: d.is_keyframe(),
                                    gap: !d.contiguous,
                                    rtp_time: d.time.numer(),
                                    arrived: d.network_time,
                                });
                            }
                            c.got.push((kind, d.data.to_vec()));
                            c.by_mid.push((d.mid, d.data.to_vec()));
                        }
                        Event::KeyframeRequest(r) => {
                            c.keyframe_requests += 1;
                            c.keyframes_asked.push(r.rid);
                        }
                        _ => {}
                    },
                }
            }
        }
        for d in to_server {
            // One in `drop_every` at random (a fixed sequence): a strict every n-th can fall on
            // the same packet's every retransmission.
            self.sent = self
                .sent
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            if self.drop_every > 0 && (self.sent >> 33).is_multiple_of(self.drop_every as u64) {
                continue;
            }
            assert_eq!(d.destination, server);
            self.core.receive(now, d.source, d.destination, &d.contents);
        }
        let mut out = Vec::new();
        self.core.poll(now, &mut out);
        // Through the bottlenecks: what is due comes out, what is new joins the queue.
        let mut arrived = Vec::new();
        for c in &mut self.clients {
            if let Some(link) = c.down.as_mut() {
                arrived.extend(link.due(now));
            }
        }
        for d in out {
            match self.clients.iter_mut().find(|c| c.addr == d.destination) {
                Some(c) if c.down.is_some() => c.down.as_mut().unwrap().push(now, d),
                _ => arrived.push(d),
            }
        }
        for d in arrived {
            if let Some(c) = self.clients.iter_mut().find(|c| c.addr == d.destination) {
                if c.cut || !c.rtc.is_alive() {
                    continue;
                }
                let input = Input::Receive(
                    now,
                    Receive {
                        proto: Protocol::Udp,
                        source: d.source,
                        destination: d.destination,
                        contents: d.contents.as_slice().try_into().unwrap(),
                    },
                );
                c.rtc.handle_input(input).unwrap();
            }
        }
    }
}

#[test]
fn a_publishers_media_reaches_every_viewer_unchanged_and_in_order() {
    let mut net = Net::new();
    let p = net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    let v1 = net.join("room", Role::Viewer, "10.0.0.3:1000").unwrap();
    let v2 = net.join("room", Role::Viewer, "10.0.0.4:1000").unwrap();
    // A viewer of another room gets nothing of this one.
    let other = net
        .join("elsewhere", Role::Viewer, "10.0.0.5:1000")
        .unwrap();
    net.run(300);
    assert!(net.clients.iter().all(|c| c.connected), "ICE and DTLS done");
    let connected = net
        .core
        .happenings()
        .into_iter()
        .filter(|h| matches!(h, Happening::Connected { .. }))
        .count();
    assert_eq!(connected, 4);
    for n in 0..50u64 {
        let now = net.now;
        let frame = format!("opus frame {n}").into_bytes();
        net.clients[p].send(now, MediaKind::Audio, n, &frame);
        if n % 5 == 0 {
            let picture = vec![n as u8; 3000]; // several RTP packets
            net.clients[p].send(now, MediaKind::Video, n, &picture);
        }
        net.run(20);
    }
    net.run(200);
    for v in [v1, v2] {
        let audio: Vec<_> = net.clients[v]
            .got
            .iter()
            .filter(|(k, _)| *k == MediaKind::Audio)
            .map(|(_, d)| String::from_utf8(d.clone()).unwrap())
            .collect();
        let expected: Vec<String> = (0..50).map(|n| format!("opus frame {n}")).collect();
        assert_eq!(audio, expected, "viewer {v}");
        let video: Vec<_> = net.clients[v]
            .got
            .iter()
            .filter(|(k, _)| *k == MediaKind::Video)
            .collect();
        assert_eq!(video.len(), 10, "viewer {v}");
        assert!(video.iter().all(|(_, d)| d.len() == 3000));
    }
    assert!(net.clients[other].got.is_empty());
}

#[test]
fn lost_packets_are_asked_for_again_and_arrive() {
    let mut net = Net::new();
    let p = net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    let v = net.join("room", Role::Viewer, "10.0.0.3:1000").unwrap();
    net.run(300);
    // One datagram in seven from the clients is lost (media and feedback alike): NACKs ask
    // for the missing RTP again, RTX brings it.
    net.drop_every = 7;
    for n in 0..40u64 {
        let now = net.now;
        net.clients[p].send(now, MediaKind::Video, n, &vec![n as u8; 2400]);
        net.run(33);
    }
    net.drop_every = 0;
    net.run(1000);
    let frames: Vec<u8> = net.clients[v]
        .got
        .iter()
        .filter(|(k, _)| *k == MediaKind::Video)
        .map(|(_, d)| d[0])
        .collect();
    // Almost every frame made it, in order, none twice.
    assert!(
        frames.len() >= 36,
        "only {} of 40 frames arrived",
        frames.len()
    );
    assert!(frames.windows(2).all(|w| w[0] < w[1]), "{frames:?}");
}

#[test]
fn viewers_joining_ask_the_publisher_for_a_keyframe_at_most_every_300_ms() {
    let mut net = Net::new();
    let p = net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    net.run(300);
    assert_eq!(net.clients[p].keyframe_requests, 0);
    // Three viewers at once: their pictures start from one keyframe, asked for once.
    for addr in ["10.0.0.3:1000", "10.0.0.4:1000", "10.0.0.5:1000"] {
        net.join("room", Role::Viewer, addr).unwrap();
    }
    let mut waited = 0;
    while net.clients[p].keyframe_requests == 0 {
        net.run(1);
        waited += 1;
        assert!(waited < 1000, "no keyframe asked for");
    }
    net.run(5);
    assert!(net.clients.iter().all(|c| c.connected));
    assert_eq!(net.clients[p].keyframe_requests, 1, "one for the three");
    // One more joins inside the 300 ms: held back, then sent when the window opens.
    net.join("room", Role::Viewer, "10.0.0.6:1000").unwrap();
    net.run(150);
    assert_eq!(net.clients[p].keyframe_requests, 1, "held back");
    net.run(300);
    assert_eq!(net.clients[p].keyframe_requests, 2, "sent once allowed");
    // Nobody new: no more.
    net.run(1000);
    assert_eq!(net.clients[p].keyframe_requests, 2);
}

#[test]
fn the_core_refuses_what_it_cannot_take_and_says_why() {
    let mut net = Net::new();
    net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    assert_eq!(
        net.join("room", Role::Publisher, "10.0.0.3:1000")
            .unwrap_err(),
        SfuError::PublisherPresent
    );
    for i in 0..4 {
        net.join("room", Role::Viewer, &format!("10.0.1.{i}:1000"))
            .unwrap();
    }
    assert_eq!(
        net.join("room", Role::Viewer, "10.0.2.1:1000").unwrap_err(),
        SfuError::RoomFull(4)
    );
    // A publisher offering only VP9 video.
    let now = net.now;
    let mut rtc = Rtc::builder().clear_codecs().enable_vp9(true).build(now);
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, _) = api.apply().unwrap();
    match net
        .core
        .offer(now, "other", Role::Publisher, &offer.to_sdp_string())
    {
        Err(SfuError::Unsupported(why)) => assert!(why.contains("VP9"), "{why}"),
        other => panic!("{other:?}"),
    }
    for bad in [
        "",
        "v=0\r\n",
        "garbage\nm=audio 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\n",
    ] {
        assert!(
            net.core.offer(now, "x", Role::Viewer, bad).is_err(),
            "{bad:?}"
        );
    }
    let big = format!("v=0\r\n{}", "a=x\r\n".repeat(20_000));
    assert!(matches!(
        net.core.offer(now, "x", Role::Viewer, &big),
        Err(SfuError::BadSdp(_))
    ));
}

#[test]
fn a_publisher_gone_quiet_gives_way_to_a_new_offer_and_a_live_one_does_not() {
    let mut net = Net::new();
    let p = net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    let v = net.join("room", Role::Viewer, "10.0.0.3:1000").unwrap();
    net.run(500);
    assert_eq!(
        net.join("room", Role::Publisher, "10.0.0.4:1000")
            .unwrap_err(),
        SfuError::PublisherPresent,
        "a live publisher keeps the room"
    );
    // The encoder loses its network and comes back with a new offer (as OBS does).
    net.clients[p].cut = true;
    net.run(4000);
    let again = net.join("room", Role::Publisher, "10.0.0.5:1000").unwrap();
    net.run(500);
    assert!(net.clients[again].connected);
    let now = net.now;
    net.clients[again].send(now, MediaKind::Audio, 0, b"after the change");
    net.run(200);
    assert!(
        net.clients[v]
            .got
            .iter()
            .any(|(_, d)| d == b"after the change"),
        "the viewer stays and gets the new publisher"
    );
    assert_eq!(net.core.viewers("room"), 1);
}

#[test]
fn a_peer_that_never_connects_is_dropped_at_the_deadline() {
    let mut net = Net::new();
    let v = net.join("room", Role::Viewer, "10.0.0.3:1000").unwrap();
    net.clients[v].cut = true;
    net.run(9_000);
    assert_eq!(net.core.viewers("room"), 1);
    net.run(2_000);
    assert_eq!(net.core.viewers("room"), 0);
    let gone = net.core.happenings();
    assert!(
        gone.iter().any(|h| matches!(
            h,
            Happening::Gone {
                role: Role::Viewer,
                ..
            }
        )),
        "{gone:?}"
    );
}

#[test]
fn garbage_datagrams_end_nobody() {
    let mut net = Net::new();
    let p = net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    let v = net.join("room", Role::Viewer, "10.0.0.3:1000").unwrap();
    net.run(300);
    let server: SocketAddr = SERVER.parse().unwrap();
    let from_viewer = net.clients[v].addr;
    for junk in [
        &b""[..],
        &[0u8; 1][..],
        &[0x80, 0x60, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef][..], // RTP-looking
        &[0x00, 0x01, 0x00, 0x50, 0x21, 0x12, 0xa4, 0x42][..],       // a truncated STUN
        &[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 99][..],          // a DTLS-looking record
        &[0xff; 1500][..],
    ] {
        net.core.receive(net.now, from_viewer, server, junk);
        net.core
            .receive(net.now, "10.9.9.9:9".parse().unwrap(), server, junk);
    }
    let now = net.now;
    net.clients[p].send(now, MediaKind::Audio, 0, b"still here");
    net.run(200);
    assert!(net.clients[v].got.iter().any(|(_, d)| d == b"still here"));
    assert_eq!(net.core.len(), 2);
}

#[test]
fn removing_the_publisher_says_so_and_leaves_the_viewers() {
    let mut net = Net::new();
    net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    net.join("room", Role::Viewer, "10.0.0.3:1000").unwrap();
    net.run(300);
    net.core.happenings();
    assert_eq!(net.core.remove_room("room", Some(Role::Publisher)), 1);
    net.run(10);
    assert!(!net.core.has_publisher("room"));
    assert_eq!(net.core.viewers("room"), 1);
    let h = net.core.happenings();
    assert!(
        matches!(
            &h[..],
            [Happening::Gone {
                role: Role::Publisher,
                ..
            }]
        ),
        "{h:?}"
    );
    // A new publisher may come.
    net.join("room", Role::Publisher, "10.0.0.6:1000").unwrap();
}

/// The fuzz target's seeds (fuzz/corpus/webrtc_offer), as the target reads them: none panics.
#[test]
fn the_fuzz_corpus_neither_panics_nor_ends_the_core() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/webrtc_offer");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        super::replay(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 8);
}

/// Runs `ms` of 30 fps video from client `p`, which answers a keyframe request with a keyframe
/// on its next frame when `answers` (a VP8 frame whose first byte has bit 0 clear is one).
fn stream_video(net: &mut Net, p: usize, ms: u64, answers: bool) {
    let mut n = 0;
    let mut seen = net.clients[p].keyframe_requests;
    for t in 0..ms {
        if t % 33 == 0 {
            let asked = net.clients[p].keyframe_requests > seen;
            seen = net.clients[p].keyframe_requests;
            let frame: &[u8] = if asked && answers {
                &[0x00, 0x9d, 0x01, 0x2a]
            } else {
                &[0x01, 0x42, 0x42]
            };
            let now = net.now;
            net.clients[p].send(now, MediaKind::Video, n, frame);
            n += 1;
        }
        net.run(1);
    }
}

#[test]
fn a_publisher_is_asked_for_a_keyframe_every_interval() {
    let mut net = Net::new();
    let p = net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    let v = net.join("room", Role::Viewer, "10.0.0.3:1000").unwrap();
    net.run(300);
    assert!(net.clients[p].connected && net.clients[v].connected);
    let before = net.clients[p].keyframe_requests;
    // 9 s of answering with keyframes: one request per interval (2 s), give or take the first.
    stream_video(&mut net, p, 9_000, true);
    let asked = net.clients[p].keyframe_requests - before;
    assert!((4..=6).contains(&asked), "{asked} requests in 9 s");
    // One that does not answer is asked again, but no more often than the 300 ms throttle.
    let before = net.clients[p].keyframe_requests;
    stream_video(&mut net, p, 6_000, false);
    let asked = net.clients[p].keyframe_requests - before;
    assert!((8..=21).contains(&asked), "{asked} requests in 6 s");
}

#[test]
fn a_publishers_frames_are_tapped_with_their_codec_and_rtp_time() {
    let mut net = Net::new();
    let p = net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    net.run(300);
    let connected = net.core.happenings();
    assert!(
        connected.iter().any(|h| matches!(
            h,
            Happening::Connected {
                role: Role::Publisher,
                audio: true,
                video: true,
                ..
            }
        )),
        "{connected:?}"
    );
    for n in 0..3 {
        let now = net.now;
        net.clients[p].send(now, MediaKind::Audio, n, &[0xf8, n as u8 + 1]);
        net.clients[p].send(now, MediaKind::Video, n, &[0x01, n as u8 + 1]);
        net.run(20);
    }
    let taps: Vec<Tapped> = net
        .core
        .happenings()
        .into_iter()
        .filter_map(|h| match h {
            Happening::Media(t) => Some(t),
            _ => None,
        })
        .collect();
    let audio: Vec<_> = taps.iter().filter(|t| t.codec == Codec::Opus).collect();
    let video: Vec<_> = taps.iter().filter(|t| t.codec == Codec::Vp8).collect();
    assert_eq!((audio.len(), video.len()), (3, 3), "{taps:?}");
    assert_eq!(audio[2].rtp_time - audio[0].rtp_time, 2 * 960);
    assert_eq!((audio[0].hz, video[0].hz), (48_000, 90_000));
    assert_eq!(video[2].rtp_time - video[0].rtp_time, 2 * 3000);
    assert_eq!(&audio[1].data[..], &[0xf8, 2]);
    assert!(taps.iter().all(|t| t.room == "room"));
}

#[test]
fn gone_says_whether_the_peer_was_ended_or_lost() {
    let mut net = Net::new();
    let p = net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    net.run(300);
    let id = net.core.peers[0].id.clone();
    net.core.happenings();
    assert!(net.core.remove(&id));
    net.run(10);
    let h = net.core.happenings();
    assert!(
        matches!(
            &h[..],
            [Happening::Gone {
                deliberate: true,
                ..
            }]
        ),
        "{h:?}"
    );
    // A publisher whose network went away is lost: its broadcast may continue.
    let q = net.join("room", Role::Publisher, "10.0.0.4:1000").unwrap();
    net.run(300);
    assert!(net.clients[q].connected);
    net.core.happenings();
    net.clients[q].cut = true;
    net.run(12_000);
    let h = net.core.happenings();
    assert!(
        h.iter().any(|h| matches!(
            h,
            Happening::Gone {
                deliberate: false,
                ..
            }
        )),
        "{h:?}"
    );
    let _ = p;
}

/// A voice client: its microphone on the first audio m-line, `slots` receiving lines after.
fn voice_client(
    now: Instant,
    addr: &str,
    slots: usize,
) -> (Client, String, SdpPendingOffer, Vec<Mid>) {
    let (mut rtc, addr) = Client::peer(now, addr);
    let mut api = rtc.sdp_api();
    let mic = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let recv: Vec<Mid> = (0..slots)
        .map(|_| api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None))
        .collect();
    let (offer, pending) = api.apply().unwrap();
    let client = Client::around(rtc, addr, Some(mic), None);
    (client, offer.to_sdp_string(), pending, recv)
}

impl Net {
    /// A member joins the room's voice chat: its client index, receiving lines and line.
    fn talk(&mut self, room: &str, user: i64, addr: &str) -> (usize, Vec<Mid>, Option<usize>) {
        let (mut c, offer, pending, recv) = voice_client(self.now, addr, VOICE_LINES);
        let (_, answer, line) = self
            .core
            .offer_voice(self.now, room, user, &format!("user{user}"), &offer)
            .unwrap();
        c.accept(pending, &answer);
        self.clients.push(c);
        (self.clients.len() - 1, recv, line)
    }

    /// Client `i` says `words` at `level` dBov.
    fn say(&mut self, i: usize, n: u64, level: i8, words: &[u8]) {
        let now = self.now;
        let c = &mut self.clients[i];
        let mid = c.audio.unwrap();
        let w = c.rtc.writer(mid).expect("a microphone");
        let pt = w.payload_params().next().unwrap().pt();
        let time = MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ);
        w.audio_level(level, level > -50)
            .write(pt, now, time, words.to_vec())
            .unwrap();
    }

    fn heard(&self, i: usize) -> Vec<Vec<u8>> {
        self.clients[i].got.iter().map(|(_, d)| d.clone()).collect()
    }

    fn members(&self) -> Vec<(i64, Option<usize>, bool, bool)> {
        self.core
            .voice_members("room")
            .into_iter()
            .map(|m| (m.user_id, m.line, m.muted, m.speaking))
            .collect()
    }
}

#[test]
fn voice_members_hear_each_other_on_their_lines_and_muting_stops_it() {
    let mut net = Net::new();
    let a = net.talk("room", 1, "10.0.1.1:1000");
    let b = net.talk("room", 2, "10.0.1.2:1000");
    let c = net.talk("room", 3, "10.0.1.3:1000");
    assert_eq!(
        (a.2, b.2, c.2),
        (Some(0), Some(1), Some(2)),
        "lines in order of joining"
    );
    net.run(400);
    assert!([a.0, b.0, c.0].iter().all(|i| net.clients[*i].connected));
    let told = net.core.happenings();
    let last = told
        .iter()
        .rev()
        .find_map(|h| match h {
            Happening::Voice { members, .. } => Some(members.clone()),
            _ => None,
        })
        .expect("the room was told its members");
    assert_eq!(
        last.iter().map(|m| (m.user_id, m.line)).collect::<Vec<_>>(),
        vec![(1, Some(0)), (2, Some(1)), (3, Some(2))]
    );
    // Each speaks; the others hear it, on its line.
    for (n, who) in [a.0, b.0, c.0].into_iter().enumerate() {
        net.say(who, n as u64, -20, format!("from {n}").as_bytes());
        net.run(30);
    }
    assert_eq!(net.heard(a.0), vec![b"from 1".to_vec(), b"from 2".to_vec()]);
    assert_eq!(net.heard(b.0), vec![b"from 0".to_vec(), b"from 2".to_vec()]);
    assert_eq!(net.heard(c.0), vec![b"from 0".to_vec(), b"from 1".to_vec()]);
    // Loud packets make a member speaking, for a moment.
    assert!(net.members().iter().all(|m| m.3), "{:?}", net.members());
    net.run(600);
    assert!(net.members().iter().all(|m| !m.3), "{:?}", net.members());
    // B is muted (by itself or a moderator): nobody hears it, and the room is told.
    net.core.happenings();
    let b_id = net
        .core
        .peers
        .iter()
        .find(|p| p.talker.as_ref().is_some_and(|t| t.user_id == 2))
        .unwrap()
        .id
        .clone();
    assert!(net.core.mute(&b_id, true));
    net.say(b.0, 9, -20, b"muted words");
    net.run(300);
    assert!(!net.heard(a.0).contains(&b"muted words".to_vec()));
    let told = net.core.happenings();
    assert!(
        told.iter()
            .any(|h| matches!(h, Happening::Voice { members, .. }
        if members.iter().any(|m| m.user_id == 2 && m.muted))),
        "{told:?}"
    );
    // A moderator removes C: it is gone and the room hears of two members.
    assert_eq!(net.core.moderate_voice("room", "USER3", None), 1);
    net.run(300);
    assert_eq!(net.core.voice_members("room").len(), 2);
}

#[test]
fn with_more_members_than_lines_the_lines_carry_who_speaks() {
    let mut net = Net::new();
    net.core.limits.peers = 100;
    let joined: Vec<_> = (0..VOICE_LINES as i64 + 2)
        .map(|u| net.talk("room", u, &format!("10.0.2.{}:1000", u + 1)))
        .collect();
    let lines: Vec<_> = joined.iter().map(|j| j.2).collect();
    assert_eq!(
        lines[VOICE_LINES..],
        [None, None],
        "two members wait for a line"
    );
    net.run(500);
    // Member 7 spoke a while ago; the rest never did.
    net.say(joined[7].0, 0, -20, b"seven");
    net.run(1_000);
    // Member 8 starts speaking: it takes the line of one quiet longest (never spoke: 0).
    let (late, listener) = (joined[8].0, joined[3].0);
    for n in 0..5 {
        net.say(late, n, -25, format!("eight {n}").as_bytes());
        net.run(20);
    }
    let m = net.members();
    assert!(m.contains(&(8, Some(0), false, true)), "{m:?}");
    assert!(m.iter().any(|x| x.0 == 0 && x.1.is_none()), "{m:?}");
    assert!(m.iter().any(|x| x.0 == 7 && x.1 == Some(7)), "{m:?}");
    let on_line_0: Vec<_> = net.clients[listener]
        .got
        .iter()
        .map(|(_, d)| d.clone())
        .filter(|d| d.starts_with(b"eight"))
        .collect();
    assert_eq!(on_line_0.len(), 5, "heard from the first packet on");
    // Quiet packets from a member without a line take nothing.
    net.say(joined[9].0, 0, -90, b"breathing");
    net.run(50);
    assert!(net.members().iter().any(|x| x.0 == 9 && x.1.is_none()));
    assert!(!net.heard(listener).contains(&b"breathing".to_vec()));
}

#[test]
fn voice_news_is_coalesced_and_the_chat_has_a_size() {
    let mut net = Net::new();
    net.core.limits.peers = 100;
    for u in 0..VOICE_MEMBERS as i64 {
        let (mut c, offer, pending, _) = voice_client(
            net.now,
            &format!("10.0.{}.{}:1000", 3 + u / 200, 1 + u % 200),
            2,
        );
        let (_, answer, _) = net
            .core
            .offer_voice(net.now, "room", u, "u", &offer)
            .unwrap();
        c.accept(pending, &answer);
        net.clients.push(c);
        if u % 16 == 15 {
            net.run(300); // let them connect: at most 64 may be connecting at once
        }
    }
    let (_, offer, _, _) = voice_client(net.now, "10.0.9.1:1000", 2);
    assert_eq!(
        net.core
            .offer_voice(net.now, "room", 999, "late", &offer)
            .err(),
        Some(SfuError::VoiceFull(VOICE_MEMBERS))
    );
    // The same member again replaces its session (a reload), keeping the count.
    let (_, offer, _, _) = voice_client(net.now, "10.0.9.2:1000", 2);
    assert!(net
        .core
        .offer_voice(net.now, "room", 0, "u", &offer)
        .is_ok());
    net.core.happenings();
    net.run(2_000);
    // Many members connecting within milliseconds: the room is told a few times a second at
    // most, not once per change.
    let news = net
        .core
        .happenings()
        .iter()
        .filter(|h| matches!(h, Happening::Voice { .. }))
        .count();
    assert!((1..=8).contains(&news), "{news} voice updates in 2 s");
}

#[test]
fn a_member_whose_network_drops_for_a_few_seconds_is_heard_again_when_it_returns() {
    let mut net = Net::new();
    let a = net.talk("room", 1, "10.0.4.1:1000");
    let b = net.talk("room", 2, "10.0.4.2:1000");
    net.run(400);
    net.say(a.0, 0, -20, b"before");
    net.run(50);
    // Three seconds without a datagram either way from A (under the 8 s after which a peer is
    // gone): its session stays, and what it says afterwards arrives.
    net.clients[a.0].cut = true;
    net.run(3_000);
    net.clients[a.0].cut = false;
    net.run(200);
    for n in 1..4 {
        net.say(a.0, n, -20, format!("after {n}").as_bytes());
        net.run(30);
    }
    assert_eq!(net.core.voice_members("room").len(), 2);
    let heard = net.heard(b.0);
    assert!(heard.contains(&b"before".to_vec()), "{heard:?}");
    assert!(heard.contains(&b"after 3".to_vec()), "{heard:?}");
    // Gone for longer than that, it is out of voice, and the room is told.
    net.clients[a.0].cut = true;
    net.run(10_000);
    assert_eq!(net.core.voice_members("room").len(), 1);
}

#[test]
fn a_voice_member_restarts_ice_with_a_new_offer_and_is_heard_again() {
    let mut net = Net::new();
    let a = net.talk("room", 1, "10.0.5.1:1000");
    let b = net.talk("room", 2, "10.0.5.2:1000");
    net.run(400);
    let id = net
        .core
        .peers
        .iter()
        .find(|p| p.talker.as_ref().is_some_and(|t| t.user_id == 1))
        .unwrap()
        .id
        .clone();
    let old_ufrag = net.core.ufrag(&id).unwrap().to_string();
    // Its network went away for a moment; it restarts ICE, as a browser does.
    net.clients[a.0].cut = true;
    net.run(2_000);
    net.clients[a.0].cut = false;
    let mut api = net.clients[a.0].rtc.sdp_api();
    api.ice_restart(true);
    let (offer, pending) = api.apply().expect("an offer");
    let answer = net
        .core
        .renegotiate(net.now, &id, &offer.to_sdp_string())
        .unwrap();
    net.clients[a.0].accept(pending, &answer);
    assert_ne!(
        net.core.ufrag(&id).unwrap(),
        old_ufrag,
        "the new credentials"
    );
    net.run(500);
    for n in 0..3 {
        net.say(a.0, n, -20, format!("again {n}").as_bytes());
        net.run(30);
    }
    assert!(
        net.heard(b.0).contains(&b"again 2".to_vec()),
        "{:?}",
        net.heard(b.0)
    );
    assert_eq!(net.core.voice_members("room").len(), 2, "the same session");
    // A new offer for no such session, or an unreadable one, is refused.
    assert_eq!(
        net.core
            .renegotiate(net.now, "nope", &offer.to_sdp_string()),
        Err(SfuError::NoSuchPeer)
    );
    assert!(matches!(
        net.core.renegotiate(net.now, &id, "v=0"),
        Err(SfuError::BadSdp(_))
    ));
}

#[test]
fn a_whep_session_restarts_ice_from_a_trickle_fragment() {
    let mut net = Net::new();
    net.join("room", Role::Publisher, "10.0.6.1:1000").unwrap();
    net.join("room", Role::Viewer, "10.0.6.2:1000").unwrap();
    net.run(300);
    let id = net.core.peers[1].id.clone();
    let (ufrag, pwd) = net
        .core
        .restart_ice(net.now, &id, "newfrag1", "a-new-password-of-24-chars")
        .unwrap();
    assert_eq!(net.core.ufrag(&id), Some("newfrag1"));
    assert!(ufrag.len() >= 4 && pwd.len() >= 22, "{ufrag} {pwd}");
    assert!(matches!(
        net.core.restart_ice(net.now, &id, "", "x"),
        Err(SfuError::BadSdp(_))
    ));
    assert_eq!(
        net.core
            .restart_ice(net.now, "nope", "abcd", "0123456789012345678901"),
        Err(SfuError::NoSuchPeer)
    );
}

#[test]
fn a_moderators_mute_holds_against_the_member_and_across_a_rejoin() {
    let mut net = Net::new();
    let a = net.talk("room", 1, "10.0.7.1:1000");
    let b = net.talk("room", 2, "10.0.7.2:1000");
    net.run(400);
    assert_eq!(net.core.moderate_voice("room", "user1", Some(true)), 1);
    let a_id = |net: &Net| {
        net.core
            .peers
            .iter()
            .find(|p| p.rtc.is_alive() && p.talker.as_ref().is_some_and(|t| t.user_id == 1))
            .unwrap()
            .id
            .clone()
    };
    // Unmuting itself changes nothing while a moderator holds it.
    let id = a_id(&net);
    assert!(net.core.mute(&id, false));
    net.say(a.0, 0, -20, b"let me talk");
    net.run(50);
    assert!(!net.heard(b.0).contains(&b"let me talk".to_vec()));
    assert!(net.members().iter().any(|m| m.0 == 1 && m.2));
    // Nor does joining again.
    let again = net.talk("room", 1, "10.0.7.3:1000");
    net.run(400);
    assert!(net
        .core
        .voice_members("room")
        .iter()
        .any(|m| m.user_id == 1 && m.held && m.muted));
    net.say(again.0, 0, -20, b"still me");
    net.run(50);
    assert!(!net.heard(b.0).contains(&b"still me".to_vec()));
    // A moderator lifts it.
    assert_eq!(net.core.moderate_voice("room", "user1", Some(false)), 1);
    net.say(again.0, 1, -20, b"thank you");
    net.run(50);
    assert!(
        net.heard(b.0).contains(&b"thank you".to_vec()),
        "{:?}",
        net.heard(b.0)
    );
    // A session still connecting is found and removed too (a ban arriving mid-join).
    let (mut c, offer, pending, _) = voice_client(net.now, "10.0.7.4:1000", 2);
    let (_, answer, _) = net
        .core
        .offer_voice(net.now, "room", 5, "late", &offer)
        .unwrap();
    c.accept(pending, &answer);
    assert_eq!(net.core.moderate_voice("room", "late", None), 1);
}

#[test]
fn a_publisher_sending_above_the_bitrate_limit_is_ended() {
    let mut net = Net::new();
    net.core.limits.max_send_kbps = 500;
    let p = net.join("room", Role::Publisher, "10.0.8.1:1000").unwrap();
    net.join("room", Role::Viewer, "10.0.8.2:1000").unwrap();
    net.run(300);
    net.core.happenings();
    // About 1.6 Mbit/s: 6 KB frames 30 times a second, for more than the 5 s window.
    for n in 0..200u64 {
        let now = net.now;
        if !net.clients[p].rtc.is_alive() {
            break;
        }
        let mid = net.clients[p].video.unwrap();
        let _ = net.clients[p].rtc.writer(mid).map(|w| {
            let pt = w.payload_params().next().unwrap().pt();
            w.write(
                pt,
                now,
                MediaTime::new(n * 3000, Frequency::NINETY_KHZ),
                vec![1; 6000],
            )
        });
        net.run(33);
    }
    let gone = net.core.happenings();
    assert!(
        gone.iter().any(|h| matches!(
            h,
            Happening::Gone {
                role: Role::Publisher,
                ..
            }
        )),
        "{:?}",
        gone.iter()
            .filter(|h| !matches!(h, Happening::Media(_)))
            .collect::<Vec<_>>()
    );
    assert!(!net.core.has_publisher("room"));
    // Within the limit, nothing happens.
    let q = net.join("room", Role::Publisher, "10.0.8.3:1000").unwrap();
    net.run(300);
    for n in 0..200u64 {
        let now = net.now;
        net.clients[q].send(now, MediaKind::Audio, n, &[0xf8; 100]);
        net.run(20);
    }
    assert!(net.core.has_publisher("room"));
}

/// A voice client with a camera: its microphone and receiving audio lines, then its camera's
/// video m-line and one receiving video line per camera tile.
fn camera_client(now: Instant, addr: &str) -> (Client, String, SdpPendingOffer, Vec<Mid>) {
    let (mut rtc, addr) = Client::peer(now, addr);
    let mut api = rtc.sdp_api();
    let mic = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    for _ in 0..VOICE_LINES {
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    }
    let cam = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let tiles: Vec<Mid> = (0..VOICE_CAMERAS)
        .map(|_| api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None))
        .collect();
    let (offer, pending) = api.apply().unwrap();
    let client = Client::around(rtc, addr, Some(mic), Some(cam));
    (client, offer.to_sdp_string(), pending, tiles)
}

#[test]
fn voice_cameras_are_seen_by_the_others_on_their_lines_and_a_room_shows_four() {
    let mut net = Net::new();
    // (client index, session id, camera tiles)
    let mut members = Vec::new();
    for user in 1..=(VOICE_CAMERAS as i64 + 1) {
        let (mut c, offer, pending, tiles) = camera_client(net.now, &format!("10.0.5.{user}:1000"));
        let (id, answer, _) = net
            .core
            .offer_voice(net.now, "room", user, &format!("user{user}"), &offer)
            .unwrap();
        c.accept(pending, &answer);
        net.clients.push(c);
        members.push((net.clients.len() - 1, id, tiles));
    }
    net.run(400);
    assert!(members.iter().all(|(i, _, _)| net.clients[*i].connected));
    // Video sent before the camera is on goes nowhere.
    let (a, a_id, _) = members[0].clone();
    let now = net.now;
    net.clients[a].send(now, MediaKind::Video, 0, &[0x01, 0x11]);
    net.run(50);
    assert!(members[1..]
        .iter()
        .all(|(i, _, _)| net.clients[*i].by_mid.is_empty()));

    // A turns its camera on: camera line 0, the room is told, A is asked for a keyframe, and
    // everyone else gets A's frames on their first tile.
    assert_eq!(net.core.camera(&a_id, true), Ok(Some(0)));
    assert_eq!(
        net.core.camera(&a_id, true),
        Ok(Some(0)),
        "on again: same line"
    );
    let asked = net.clients[a].keyframe_requests;
    stream_video(&mut net, a, 300, true);
    assert!(
        net.clients[a].keyframe_requests > asked,
        "A is asked for a keyframe"
    );
    for (i, _, tiles) in &members[1..] {
        let got = &net.clients[*i].by_mid;
        assert!(!got.is_empty(), "member {i} sees A");
        assert!(got.iter().all(|(m, _)| *m == tiles[0]), "on tile 0 only");
    }
    assert!(
        net.clients[a].by_mid.is_empty(),
        "A does not get its own camera"
    );
    assert!(net
        .core
        .voice_members("room")
        .iter()
        .any(|m| m.user_id == 1 && m.camera == Some(0)));

    // Three more cameras take the other lines; a fifth is refused, saying why.
    for (n, (_, id, _)) in members[1..VOICE_CAMERAS].iter().enumerate() {
        assert_eq!(net.core.camera(id, true), Ok(Some(n + 1)));
    }
    let (e, e_id, _) = members[VOICE_CAMERAS].clone();
    assert_eq!(
        net.core.camera(&e_id, true),
        Err(SfuError::CamerasFull(VOICE_CAMERAS))
    );
    // A turns its camera off: its line goes to the next one, and A's frames stop.
    assert_eq!(net.core.camera(&a_id, false), Ok(None));
    assert_eq!(net.core.camera(&e_id, true), Ok(Some(0)));
    let before: Vec<usize> = members
        .iter()
        .map(|(i, _, _)| net.clients[*i].by_mid.len())
        .collect();
    let now = net.now;
    net.clients[a].send(now, MediaKind::Video, 99, &[0x01, 0x22]);
    net.run(50);
    for ((i, _, _), b) in members.iter().zip(&before) {
        assert!(
            !net.clients[*i].by_mid[*b..]
                .iter()
                .any(|(_, d)| d == &[0x01, 0x22]),
            "A's camera is off"
        );
    }
    // E's camera reaches A on tile 0.
    stream_video(&mut net, e, 200, true);
    let (_, _, a_tiles) = &members[0];
    assert!(net.clients[a].by_mid.iter().any(|(m, _)| *m == a_tiles[0]));

    // A session joined without video m-lines cannot send a camera.
    let (mut c, offer, pending, _) = voice_client(net.now, "10.0.5.99:1000", 2);
    let (id, answer, _) = net
        .core
        .offer_voice(net.now, "room", 99, "user99", &offer)
        .unwrap();
    c.accept(pending, &answer);
    net.clients.push(c);
    assert!(matches!(
        net.core.camera(&id, true),
        Err(SfuError::Unsupported(_))
    ));
    assert_eq!(net.core.camera("nobody", true), Err(SfuError::NoSuchPeer));
}

#[test]
fn past_the_nodes_forwarding_limit_new_viewers_and_members_are_refused() {
    let mut net = Net::new();
    net.core.limits.max_forward_kbps = 200;
    let p = net.join("room", Role::Publisher, "10.0.6.1:1000").unwrap();
    let v = net.join("room", Role::Viewer, "10.0.6.2:1000").unwrap();
    net.run(300);
    assert!(net.clients[p].connected && net.clients[v].connected);
    // ~30 frames a second of 1,200 bytes to one viewer: ~290 kbit/s forwarded.
    let frame = vec![0x01u8; 1200];
    for n in 0..90u64 {
        let now = net.now;
        net.clients[p].send(now, MediaKind::Video, n, &frame);
        net.run(33);
    }
    assert!(
        net.core.forwarded_kbps() > 200,
        "{} kbit/s",
        net.core.forwarded_kbps()
    );
    assert_eq!(
        net.join("room", Role::Viewer, "10.0.6.3:1000").err(),
        Some(SfuError::ForwardFull(0))
    );
    let (_, offer, _, _) = voice_client(net.now, "10.0.6.4:1000", 2);
    assert_eq!(
        net.core
            .offer_voice(net.now, "room", 7, "user7", &offer)
            .err(),
        Some(SfuError::ForwardFull(0))
    );
    // The viewer already watching keeps getting frames; a publisher is never refused by it.
    let got = net.clients[v].got.len();
    let now = net.now;
    net.clients[p].send(now, MediaKind::Video, 90, &frame);
    net.run(50);
    assert!(net.clients[v].got.len() > got);
    // Once the broadcast goes quiet, viewers are taken again.
    net.run(2_500);
    assert!(
        net.core.forwarded_kbps() < 200,
        "{}",
        net.core.forwarded_kbps()
    );
    assert!(net.join("room", Role::Viewer, "10.0.6.5:1000").is_ok());
}

#[test]
fn viewers_joining_in_one_window_are_counted_before_their_cost_shows() {
    let mut net = Net::new();
    net.core.limits.max_forward_kbps = 700;
    let p = net.join("room", Role::Publisher, "10.0.6.11:1000").unwrap();
    let v = net.join("room", Role::Viewer, "10.0.6.12:1000").unwrap();
    net.run(300);
    assert!(net.clients[p].connected && net.clients[v].connected);
    let frame = vec![0x01u8; 1200];
    for n in 0..90u64 {
        let now = net.now;
        net.clients[p].send(now, MediaKind::Video, n, &frame);
        net.run(33);
    }
    let one = net.core.forwarded_kbps();
    assert!((250..350).contains(&one), "{one} kbit/s for one viewer");
    // One more fits (~2 × 290 < 700); a third taken before the window shows the second's cost
    // would not (~3 × 290 > 700), though the measured rate alone (~290) says there is room.
    assert!(net.join("room", Role::Viewer, "10.0.6.13:1000").is_ok());
    assert_eq!(
        net.join("room", Role::Viewer, "10.0.6.14:1000").err(),
        Some(SfuError::ForwardFull(0))
    );
}

/// The layer a viewer was shown over its last `n` frames, if one only.
fn shown(c: &Client, n: usize) -> Option<u8> {
    let last: Vec<u8> = c.video_in.iter().rev().take(n).map(|s| s.layer).collect();
    (last.len() == n && last.iter().all(|l| *l == last[0])).then(|| last[0])
}

/// What a viewer (or the broadcast's HLS) was shown holds together as one stream: it starts at
/// a keyframe, moves to another layer only at one of that layer's keyframes (or where frames
/// were lost on its link, the keyframe among them), and its RTP time goes forward, across a
/// move by no more than the time between the frames, give or take a link's queue (each
/// layer's clock starts elsewhere: without the mapping a move would jump by up to 3,000,000
/// ticks). Returns the moves.
fn one_stream(v: &[Seen]) -> usize {
    assert!(v[0].keyframe, "the first frame shown is a keyframe");
    let mut moves = 0;
    for w in v.windows(2) {
        let step = w[1].rtp_time as i64 - w[0].rtp_time as i64;
        assert!(step > 0, "RTP time goes forward: {w:?}");
        if w[1].layer != w[0].layer {
            moves += 1;
            assert!(w[1].keyframe || w[1].gap, "a move at a keyframe: {w:?}");
            // (After frames lost, the time of those lost lies between.)
            let between = w[1].arrived.duration_since(w[0].arrived).as_micros() as i64 * 90 / 1000;
            assert!(
                w[1].gap || step <= between + 13_500,
                "a move steps by the time between: {w:?}"
            );
        }
    }
    moves
}

#[test]
fn each_viewer_gets_the_simulcast_layer_its_link_carries_and_moves_as_it_changes() {
    let mut net = Net::new();
    let p = net.simulcast_publisher("room", "10.0.0.2:1000");
    net.run(300);
    // Three layers flow before the viewers come.
    let mut n = 0;
    let mut stream = |net: &mut Net, ms: u64| {
        for _ in 0..ms / 33 {
            let now = net.now;
            net.clients[p].send_layers(now, n, "qhf");
            n += 1;
            net.run(33);
        }
    };
    stream(&mut net, 1500);
    // A viewer on a fast link, and one behind 700 kbit/s.
    let fast = net.join("room", Role::Viewer, "10.0.0.3:1000").unwrap();
    let slow = net.join("room", Role::Viewer, "10.0.0.4:1000").unwrap();
    net.clients[slow].down = Some(Link::new(net.now, 700));
    stream(&mut net, 12_000);
    let layer = |net: &Net, i: usize| shown(&net.clients[i], 30);
    let estimate = |net: &Net, peer: usize| {
        let (_, estimate) = net.core.viewer_layer(&net.core.peers[peer].id).unwrap();
        estimate.expect("a simulcast viewer estimates its bandwidth")
    };
    assert_eq!(
        layer(&net, fast),
        Some(b'f'),
        "the fast viewer gets the full layer"
    );
    assert_eq!(layer(&net, slow), Some(b'h'), "the slow one the half");
    let e = estimate(&net, 2);
    assert!(
        e < 700,
        "the slow viewer's estimate ({e} kbit/s) found its link"
    );
    // Its link opens up: it moves up.
    net.clients[slow].down.as_mut().unwrap().kbps = 20_000;
    stream(&mut net, 12_000);
    assert_eq!(layer(&net, slow), Some(b'f'), "up once its link allows");
    // The fast one's link narrows to 300 kbit/s: it moves down to the quarter.
    net.clients[fast].down = Some(Link::new(net.now, 300));
    stream(&mut net, 8_000);
    assert_eq!(layer(&net, fast), Some(b'q'), "down when its link narrows");
    let e = estimate(&net, 1);
    assert!(
        e < 300,
        "the fast viewer's estimate ({e} kbit/s) found its narrowed link"
    );
    for v in [fast, slow] {
        let moves = one_stream(&net.clients[v].video_in);
        assert!(moves >= 1, "viewer {v} moved");
    }
}

#[test]
fn the_broadcasts_hls_gets_the_top_layer_of_a_simulcast_publisher_as_it_comes_and_goes() {
    let mut net = Net::new();
    net.simulcast_publisher("room", "10.0.0.2:1000");
    net.run(300);
    // The quarter and the half at first; the full layer from 3 s (as a browser starts it once
    // its uplink estimate allows) until 8 s, then the half and the quarter again.
    for n in 0..390 {
        let now = net.now;
        let rids = if (90..240).contains(&n) { "qhf" } else { "qh" };
        net.clients[0].send_layers(now, n, rids);
        net.run(33);
    }
    let tapped: Vec<Tapped> = net
        .core
        .happenings()
        .into_iter()
        .filter_map(|h| match h {
            Happening::Media(t) if t.codec == Codec::Vp8 => Some(t),
            _ => None,
        })
        .collect();
    let seen: Vec<Seen> = tapped
        .iter()
        .map(|t| Seen {
            layer: t.data[1],
            keyframe: t.data[0] & 1 == 0,
            gap: false,
            rtp_time: t.rtp_time,
            arrived: t.arrived,
        })
        .collect();
    assert_eq!(one_stream(&seen), 2, "up to the full layer and back");
    let mut runs: Vec<(u8, usize)> = Vec::new();
    for s in &seen {
        match runs.last_mut() {
            Some((l, n)) if *l == s.layer => *n += 1,
            _ => runs.push((s.layer, 1)),
        }
    }
    let order: Vec<u8> = runs.iter().map(|(l, _)| *l).collect();
    assert_eq!(order, b"hfh".to_vec(), "{runs:?}");
    assert!(
        runs.iter().all(|(_, n)| *n > 40),
        "each for a while: {runs:?}"
    );
    // When the full layer stops, HLS is without video for the 1.5 s it takes to count as
    // stopped and the half layer's keyframe, not longer.
    let gap = seen
        .windows(2)
        .map(|w| w[1].arrived.duration_since(w[0].arrived))
        .max()
        .unwrap();
    assert!(gap < Duration::from_millis(1_900), "{gap:?} without video");
}

#[test]
fn a_viewer_goes_on_from_a_new_publisher_with_its_timestamps_continuing() {
    let mut net = Net::new();
    let a = net.join("room", Role::Publisher, "10.0.0.2:1000").unwrap();
    let v = net.join("room", Role::Viewer, "10.0.0.3:1000").unwrap();
    net.run(300);
    // Frames of `who`: a keyframe first; byte 1 says whose.
    let frame = |n: u64, who: u8| {
        let mut f = vec![0x55u8; 2000];
        f[0] = if n == 0 { 0x00 } else { 0x01 };
        f[1] = who;
        f
    };
    for n in 0..30u64 {
        let now = net.now;
        net.clients[a].send(now, MediaKind::Video, n, &frame(n, b'a'));
        net.run(33);
    }
    // The encoder's network goes; it comes back as a new offer (OBS reconnecting), whose RTP
    // clock starts elsewhere (Client::send puts frame n at n × 3,000 ticks).
    net.clients[a].cut = true;
    net.run(3500);
    let b = net.join("room", Role::Publisher, "10.0.0.5:1000").unwrap();
    net.run(300);
    for n in 0..30u64 {
        let now = net.now;
        net.clients[b].send(now, MediaKind::Video, 1_000_000 + n, &frame(n, b'b'));
        net.run(33);
    }
    net.run(200);
    let seen = &net.clients[v].video_in;
    assert!(
        seen.iter().filter(|s| s.layer == b'a').count() >= 29,
        "{seen:?}"
    );
    assert!(
        seen.iter().filter(|s| s.layer == b'b').count() >= 29,
        "{seen:?}"
    );
    assert_eq!(
        one_stream(seen),
        1,
        "one move: to the new publisher, its time following on"
    );
}

#[test]
fn only_senders_and_viewers_of_simulcast_are_asked_for_congestion_feedback() {
    let mut net = Net::new();
    let now = net.now;
    let twcc = "transport-wide-cc";
    // A single-stream broadcast: its publisher gets moim's feedback, its viewers send none.
    let (_, offer, _) = Client::new(now, "10.0.0.2:1000", Role::Publisher);
    let (_, answer) = net.core.offer(now, "one", Role::Publisher, &offer).unwrap();
    assert!(answer.contains(twcc), "{answer}");
    let (_, offer, _) = Client::new(now, "10.0.0.3:1000", Role::Viewer);
    let (_, answer) = net.core.offer(now, "one", Role::Viewer, &offer).unwrap();
    assert!(!answer.contains(twcc), "{answer}");
    // A simulcast broadcast: its viewers' feedback is what their layer is chosen from.
    let (_, offer, _) = Client::simulcast_publisher(now, "10.0.0.4:1000");
    net.core
        .offer(now, "many", Role::Publisher, &offer)
        .unwrap();
    let (_, offer, _) = Client::new(now, "10.0.0.5:1000", Role::Viewer);
    let (_, answer) = net.core.offer(now, "many", Role::Viewer, &offer).unwrap();
    assert!(answer.contains(twcc), "{answer}");
    // Voice members send too.
    let (_, offer, _) = Client::new(now, "10.0.0.6:1000", Role::Voice);
    let (_, answer, _) = net.core.offer_voice(now, "one", 7, "mina", &offer).unwrap();
    assert!(answer.contains(twcc), "{answer}");
}
