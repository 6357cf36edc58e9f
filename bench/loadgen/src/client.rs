//! The benchmark clients: one tokio task per WebSocket connection, speaking moim's JSON frames,
//! plain `ws` text (also what the Bun peer speaks), or a minimal socket.io 4 (engine.io v4)
//! client over a raw WebSocket.
//!
//! Every published message is a fixed-size text `~b<publisher>:<counter>:<micros>:xxxx…`
//! (`~w…` during warm-up), where `<micros>` is the send time since a base `Instant` shared by
//! the whole process; a receiver finds the marker in whatever frame wraps it, so all three
//! protocols are measured the same way.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::hist::Histogram;
use crate::server::Kind;

type Ws = WebSocketStream<TcpStream>;

/// Counters shared by every connection of one scenario run.
pub struct Shared {
    pub base: Instant,
    /// Measured messages received (all connections).
    pub delivered: AtomicU64,
    /// Σ over measured messages sent of the number of clients in the sender's room.
    pub expected: AtomicU64,
    pub published: AtomicU64,
    pub warm_delivered: AtomicU64,
    pub warm_expected: AtomicU64,
    pub warm_published: AtomicU64,
    /// A measured message that arrived with a counter not above the last one seen from its
    /// publisher on that connection (duplicate or out of order).
    pub reordered: AtomicU64,
    pub send_failures: AtomicU64,
    /// `error` frames from moim, `reconnect` frames, socket.io disconnect packets.
    pub server_errors: AtomicU64,
    pub disconnects: AtomicU64,
    pub connected: AtomicUsize,
    pub connect_failed: AtomicUsize,
    pub first_error: Mutex<Option<String>>,
    hists: Vec<Mutex<Histogram>>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            base: Instant::now(),
            delivered: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            published: AtomicU64::new(0),
            warm_delivered: AtomicU64::new(0),
            warm_expected: AtomicU64::new(0),
            warm_published: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            send_failures: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            connected: AtomicUsize::new(0),
            connect_failed: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            hists: (0..16).map(|_| Mutex::new(Histogram::default())).collect(),
        }
    }

    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    fn note_error(&self, e: String) {
        let mut first = self.first_error.lock().unwrap();
        if first.is_none() {
            *first = Some(e);
        }
    }

    /// All latencies recorded so far (µs).
    pub fn latency(&self) -> Histogram {
        let mut all = Histogram::default();
        for h in &self.hists {
            all.merge(&h.lock().unwrap());
        }
        all
    }
}

/// When publishers send: warm-up messages in `[warm_start, warm_end)`, measured ones in
/// `[start, end)`.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub warm_start: Instant,
    pub warm_end: Instant,
    pub start: Instant,
    pub end: Instant,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Control {
    pub schedule: Option<Schedule>,
    pub stop: bool,
}

/// What one connection is.
#[derive(Clone)]
pub struct ClientSpec {
    pub kind: Kind,
    pub port: u16,
    /// moim room slug, socket.io / ws room name.
    pub room: String,
    pub room_clients: u64,
    /// Bearer token for moim publishers.
    pub token: Option<String>,
    pub publisher: Option<PublisherSpec>,
    pub index: usize,
}

#[derive(Clone, Copy)]
pub struct PublisherSpec {
    pub id: u32,
    /// Time between two messages of this publisher.
    pub interval: Duration,
    /// Offset of this publisher's first message, so publishers interleave evenly.
    pub offset: Duration,
    pub msg_bytes: usize,
}

/// Connects (limited by `gate`, with retries), then runs the connection until told to stop.
pub async fn run(
    spec: ClientSpec,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    mut ctl: watch::Receiver<Control>,
) {
    let ws = {
        let _permit = gate.acquire().await.expect("gate never closes");
        let mut attempt = 0;
        loop {
            attempt += 1;
            match tokio::time::timeout(Duration::from_secs(20), connect(&spec)).await {
                Ok(Ok(ws)) => break Some(ws),
                Ok(Err(e)) if attempt >= 3 => {
                    shared.note_error(format!("connect: {e:#}"));
                    break None;
                }
                Err(_) if attempt >= 3 => {
                    shared.note_error("connect: timed out after 20 s".into());
                    break None;
                }
                _ => tokio::time::sleep(Duration::from_millis(200 * attempt)).await,
            }
            if ctl.borrow().stop {
                break None;
            }
        }
    };
    let Some(mut ws) = ws else {
        shared.connect_failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);

    let mut rx = Receiver {
        kind: spec.kind,
        shared: &shared,
        lat: Vec::with_capacity(LAT_BATCH),
        last: Vec::new(),
        hist: spec.index % shared.hists.len(),
    };
    let mut schedule: Option<Schedule> = None;
    let mut next: Option<Instant> = None;
    let mut counter: u64 = 0;
    let mut payload = String::new();
    loop {
        let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            changed = ctl.changed() => {
                if changed.is_err() { break; }
                let c = *ctl.borrow_and_update();
                if c.stop { break; }
                if let (Some(s), Some(p), None) = (c.schedule, spec.publisher, schedule) {
                    schedule = Some(s);
                    next = Some(s.warm_start + p.offset);
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    match rx.on_text(t.as_str()) {
                        Reply::None => {}
                        Reply::Send(s) => {
                            if ws.send(Message::Text(s.into())).await.is_err() {
                                shared.disconnects.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                        Reply::Closed => {
                            shared.disconnects.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    shared.disconnects.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
            },
            _ = tokio::time::sleep_until(wake.into()), if next.is_some() => {
                let (Some(s), Some(p), Some(at)) = (schedule, spec.publisher, next) else { continue };
                let measured = if at < s.warm_end {
                    next = Some(at + p.interval);
                    false
                } else if at < s.start {
                    // Quiet gap between warm-up and the measured window.
                    next = Some(s.start + p.offset);
                    continue;
                } else if at < s.end {
                    next = Some(at + p.interval);
                    true
                } else {
                    next = None;
                    continue;
                };
                counter += 1;
                build_payload(&mut payload, measured, p, counter, shared.now_us());
                let frame = wrap(spec.kind, &payload);
                if ws.send(Message::Text(frame.into())).await.is_err() {
                    shared.send_failures.fetch_add(1, Ordering::Relaxed);
                    shared.disconnects.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if measured {
                    shared.published.fetch_add(1, Ordering::Relaxed);
                    shared.expected.fetch_add(spec.room_clients, Ordering::Relaxed);
                } else {
                    shared.warm_published.fetch_add(1, Ordering::Relaxed);
                    shared.warm_expected.fetch_add(spec.room_clients, Ordering::Relaxed);
                }
            }
        }
    }
    rx.flush();
    // Wait for the stop signal before dropping the socket, so a connection that died early is
    // not mistaken for a clean end (and the socket count stays stable for RSS readings).
    while !ctl.borrow().stop {
        if ctl.changed().await.is_err() {
            break;
        }
    }
    drop(ws);
}

fn build_payload(buf: &mut String, measured: bool, p: PublisherSpec, counter: u64, now_us: u64) {
    use std::fmt::Write;
    buf.clear();
    let tag = if measured { "~b" } else { "~w" };
    let _ = write!(buf, "{tag}{}:{counter}:{now_us}:", p.id);
    while buf.len() < p.msg_bytes {
        buf.push('x');
    }
}

/// The frame a publisher sends for `payload` (which needs no JSON escaping).
fn wrap(kind: Kind, payload: &str) -> String {
    match kind {
        Kind::Moim => format!(r#"{{"type":"send","text":"{payload}"}}"#),
        Kind::Ws | Kind::Bun => format!(r#"{{"text":"{payload}"}}"#),
        Kind::SocketIo => format!(r#"42["msg","{payload}"]"#),
    }
}

const LAT_BATCH: usize = 256;

enum Reply {
    None,
    Send(String),
    Closed,
}

struct Receiver<'a> {
    kind: Kind,
    shared: &'a Shared,
    lat: Vec<u64>,
    /// (publisher, last counter) seen on this connection.
    last: Vec<(u32, u64)>,
    hist: usize,
}

impl Receiver<'_> {
    fn on_text(&mut self, t: &str) -> Reply {
        match self.kind {
            Kind::SocketIo => {
                if t == "2" {
                    return Reply::Send("3".into());
                }
                if t == "1" || t.starts_with("41") {
                    self.shared.server_errors.fetch_add(1, Ordering::Relaxed);
                    return Reply::Closed;
                }
            }
            Kind::Moim => {
                if t.starts_with(r#"{"type":"error""#) {
                    self.shared.server_errors.fetch_add(1, Ordering::Relaxed);
                    self.shared.note_error(format!("moim error frame: {t}"));
                    return Reply::None;
                }
                if t.starts_with(r#"{"type":"reconnect""#) {
                    self.shared.server_errors.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .note_error(format!("moim asked to reconnect: {t}"));
                    return Reply::None;
                }
            }
            Kind::Ws | Kind::Bun => {}
        }
        let Some(pos) = t.find('~') else {
            return Reply::None;
        };
        let rest = &t[pos + 1..];
        let measured = match rest.as_bytes().first() {
            Some(b'b') => true,
            Some(b'w') => false,
            _ => return Reply::None,
        };
        if !measured {
            self.shared.warm_delivered.fetch_add(1, Ordering::Relaxed);
            return Reply::None;
        }
        let now = self.shared.now_us();
        self.shared.delivered.fetch_add(1, Ordering::Relaxed);
        let mut fields = rest[1..].splitn(4, ':');
        let publisher: Option<u32> = fields.next().and_then(|f| f.parse().ok());
        let counter: Option<u64> = fields.next().and_then(|f| f.parse().ok());
        let sent: Option<u64> = fields.next().and_then(|f| f.parse().ok());
        if let (Some(p), Some(c)) = (publisher, counter) {
            match self.last.iter_mut().find(|(id, _)| *id == p) {
                Some((_, last)) => {
                    if c <= *last {
                        self.shared.reordered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        *last = c;
                    }
                }
                None => self.last.push((p, c)),
            }
        }
        if let Some(sent) = sent {
            self.lat.push(now.saturating_sub(sent));
            if self.lat.len() >= LAT_BATCH {
                self.flush();
            }
        }
        Reply::None
    }

    fn flush(&mut self) {
        if self.lat.is_empty() {
            return;
        }
        let mut h = self.shared.hists[self.hist].lock().unwrap();
        for v in self.lat.drain(..) {
            h.record(v);
        }
    }
}

fn ws_config() -> WebSocketConfig {
    // Small buffers: thousands of idle connections should not cost the load generator much.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

async fn open(url: &str, port: u16, bearer: Option<&str>) -> anyhow::Result<Ws> {
    let mut req = url.into_client_request()?;
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse()?);
    }
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .context("TCP connect")?;
    tcp.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, tcp, Some(ws_config()))
        .await
        .context("WebSocket handshake")?;
    Ok(ws)
}

/// Next text frame, answering socket.io pings on the way.
async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
            Some(Ok(Message::Close(c))) => bail!("closed by server: {c:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

/// Opens the connection and completes the protocol's join, so the client is in its room.
async fn connect(spec: &ClientSpec) -> anyhow::Result<Ws> {
    let port = spec.port;
    match spec.kind {
        Kind::Moim => {
            let url = format!("ws://127.0.0.1:{port}/api/v1/rooms/{}/ws", spec.room);
            let mut ws = open(&url, port, spec.token.as_deref()).await?;
            let first = next_text(&mut ws).await?;
            if !first.starts_with(r#"{"type":"welcome""#) {
                bail!("expected welcome, got {}", clip(&first));
            }
            Ok(ws)
        }
        // The Bun peer speaks the `ws` peer's protocol.
        Kind::Ws | Kind::Bun => {
            let url = format!("ws://127.0.0.1:{port}/?room={}", spec.room);
            open(&url, port, None).await
        }
        Kind::SocketIo => {
            let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
            let mut ws = open(&url, port, None).await?;
            // engine.io open packet: 0{"sid":…,"pingInterval":…}
            let open = next_text(&mut ws).await?;
            if !open.starts_with("0{") {
                bail!("expected engine.io open packet, got {}", clip(&open));
            }
            // socket.io CONNECT to the main namespace.
            ws.send(Message::Text("40".into())).await?;
            expect_packet(&mut ws, "40").await?;
            // EVENT with ack id 1: join the room; the ACK (`431[…]`) says it is done.
            ws.send(Message::Text(
                format!(r#"421["join","{}"]"#, spec.room).into(),
            ))
            .await?;
            expect_packet(&mut ws, "431").await?;
            Ok(ws)
        }
    }
}

async fn expect_packet(ws: &mut Ws, prefix: &str) -> anyhow::Result<()> {
    loop {
        let t = next_text(ws).await?;
        if t == "2" {
            ws.send(Message::Text("3".into())).await?;
            continue;
        }
        if t.starts_with(prefix) {
            return Ok(());
        }
        if t.starts_with("44") || t.starts_with("41") || t == "1" {
            return Err(anyhow!("socket.io refused: {}", clip(&t)));
        }
    }
}

fn clip(s: &str) -> &str {
    let mut end = s.len().min(200);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(kind: Kind, shared: &Shared) -> Receiver<'_> {
        Receiver {
            kind,
            shared,
            lat: vec![],
            last: vec![],
            hist: 0,
        }
    }

    #[test]
    fn payload_has_fixed_size_and_parses_in_every_wrapping() {
        let p = PublisherSpec {
            id: 7,
            interval: Duration::from_millis(10),
            offset: Duration::ZERO,
            msg_bytes: 100,
        };
        let mut payload = String::new();
        build_payload(&mut payload, true, p, 3, 0);
        assert_eq!(payload.len(), 100);
        assert!(payload.starts_with("~b7:3:0:x"));

        for kind in [Kind::Moim, Kind::Ws, Kind::SocketIo, Kind::Bun] {
            let shared = Shared::new();
            let mut rx = receiver(kind, &shared);
            let frame = match kind {
                // What moim broadcasts for a `send` frame.
                Kind::Moim => format!(
                    r#"{{"type":"message","seq":5,"user":{{"id":"1","username":"bench"}},"text":"{payload}","at":"2024-01-01T00:00:00Z"}}"#
                ),
                _ => wrap(kind, &payload),
            };
            assert!(matches!(rx.on_text(&frame), Reply::None));
            // The same message again counts as reordered; a warm-up one is counted apart.
            rx.on_text(&frame);
            let mut warm = String::new();
            build_payload(&mut warm, false, p, 1, 0);
            rx.on_text(&wrap(kind, &warm));
            rx.flush();
            assert_eq!(shared.delivered.load(Ordering::Relaxed), 2, "{kind:?}");
            assert_eq!(shared.reordered.load(Ordering::Relaxed), 1, "{kind:?}");
            assert_eq!(shared.warm_delivered.load(Ordering::Relaxed), 1, "{kind:?}");
            assert_eq!(shared.latency().count(), 2, "{kind:?}");
        }
    }

    #[test]
    fn protocol_frames_are_recognised() {
        let shared = Shared::new();
        let mut sio = receiver(Kind::SocketIo, &shared);
        assert!(matches!(sio.on_text("2"), Reply::Send(s) if s == "3"));
        assert!(matches!(sio.on_text("41"), Reply::Closed));
        let mut moim = receiver(Kind::Moim, &shared);
        assert!(matches!(
            moim.on_text(r#"{"type":"error","code":"rate_limited","message":"x"}"#),
            Reply::None
        ));
        assert!(matches!(
            moim.on_text(r#"{"type":"viewers","count":3}"#),
            Reply::None
        ));
        assert_eq!(shared.server_errors.load(Ordering::Relaxed), 2);
        assert_eq!(shared.delivered.load(Ordering::Relaxed), 0);
    }
}
