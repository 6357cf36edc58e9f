//! RTMP ingest: the listener and one task per encoder connection.
//!
//! The task only moves bytes: socket → `moim_media::rtmp::ServerSession` → events → the
//! broadcast's segmenter, and the session's replies back to the socket. Anything malformed ends
//! this one connection with a log line; other streams and the server go on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moim_media::aac::AacConfig;
use moim_media::avc::AvcConfig;
use moim_media::flv::{self, AudioTag, FlvError, VideoTag};
use moim_media::rtmp::{Event, ServerSession, SessionConfig};
use moim_media::segmenter::Segmenter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::transcode::{Rung, INTERNAL_PREFIX};
use super::{Broadcast, Live};
use crate::limits::{note_refusal, ConnLimits, ConnPermit, LogGate, Refused};
use crate::metrics::Refusal;
use crate::storage::now_ms;

/// Window over which the ingest bitrate limit is judged.
const BITRATE_WINDOW: Duration = Duration::from_secs(5);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A new publisher connection's number (RTMP and WebRTC alike), unique in the process.
pub fn next_conn() -> u64 {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}

static REFUSAL_LOG: LogGate = LogGate::new(Duration::from_secs(10));

static DROP_LOG: LogGate = LogGate::new(Duration::from_secs(10));
static ACCEPT_LOG: LogGate = LogGate::new(Duration::from_secs(10));

/// What the RTMP listener enforces.
pub struct IngestLimits {
    /// Every TCP connection of the process (shared with HTTP).
    pub connections: Arc<ConnLimits>,
    /// Connections that have not published with a valid key yet, per address.
    pub unauthenticated: Arc<ConnLimits>,
    /// Time from connect to an accepted `publish`.
    pub handshake_timeout: Duration,
}

/// Accepts encoder connections until `live` stops. A connection costs a broadcast slot only
/// once a valid key publishes (`Live::begin` caps broadcasts); until then it is one of the few
/// unauthenticated connections its address may hold, for at most the handshake deadline.
pub async fn run_listener(live: Live, listener: TcpListener, limits: IngestLimits) {
    let stop = live.stopping().clone();
    // moim's own transcoder publishes its rungs from the address it connects to (loopback when
    // listening on all addresses): this machine is not held to the unauthenticated cap, or
    // broadcasts starting together could refuse their own rungs.
    let own = match listener.local_addr().map(|a| a.ip()) {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => std::net::Ipv4Addr::LOCALHOST.into(),
    };
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    live.metrics().refused(Refusal::AcceptFailed);
                    if let Some(held_back) = ACCEPT_LOG.pass(Instant::now()) {
                        tracing::warn!(error = %e, similar_not_logged = held_back, "rtmp accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let admitted = match limits.connections.admit(Some(peer.ip())) {
            Ok(p) => p,
            Err(why) => {
                let why = match why {
                    Refused::Total => Refusal::ConnectionsTotal,
                    Refused::PerAddress => Refusal::ConnectionsPerAddress,
                };
                note_refusal(live.metrics(), &REFUSAL_LOG, why, peer, "rtmp connection");
                continue;
            }
        };
        let counted = (peer.ip() != own).then(|| peer.ip());
        let Ok(pending) = limits.unauthenticated.admit(counted) else {
            note_refusal(
                live.metrics(),
                &REFUSAL_LOG,
                Refusal::RtmpUnauthenticated,
                peer,
                "rtmp connection",
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let live2 = live.clone();
        let handshake_timeout = limits.handshake_timeout;
        live.tasks().spawn(async move {
            let conn_id = next_conn();
            let mut conn = Conn {
                live: live2,
                id: conn_id,
                peer,
                broadcast: None,
                rung: None,
                flv_headers: Vec::new(),
                transcoder_tried: false,
                pending: Some(pending),
                handshake_timeout,
            };
            let result = conn.run(stream).await;
            let published = conn.pending.is_none();
            match result {
                Ok(()) if published => {
                    tracing::info!(%peer, conn = conn_id, "rtmp connection closed")
                }
                Err(reason) if published => {
                    tracing::warn!(%peer, conn = conn_id, %reason, "rtmp connection dropped")
                }
                // Connections that never published are a scanner's or an attacker's as often
                // as a misconfigured encoder's: a line now and then, not one each.
                Ok(()) => {}
                Err(reason) => {
                    if let Some(held_back) = DROP_LOG.pass(Instant::now()) {
                        tracing::warn!(
                            %peer,
                            conn = conn_id,
                            %reason,
                            similar_not_logged = held_back,
                            "rtmp connection dropped before publishing"
                        );
                    }
                }
            }
            if let Some(b) = conn.broadcast.take() {
                conn.live.detach(&b, conn_id).await;
            }
            drop(admitted);
        });
    }
}

struct Conn {
    live: Live,
    id: u64,
    peer: SocketAddr,
    broadcast: Option<Arc<Broadcast>>,
    /// Set when this connection is the transcoder publishing one rung.
    rung: Option<Arc<Rung>>,
    /// FLV stream header and latest sequence headers, replayed to a transcoder that starts.
    flv_headers: Vec<Bytes>,
    /// The transcoder was started (or tried) for this publisher.
    transcoder_tried: bool,
    /// This connection's place among its address's unauthenticated ones, until it publishes.
    pending: Option<ConnPermit>,
    handshake_timeout: Duration,
}

impl Conn {
    /// Runs the connection; `Err` carries why it was dropped (for the log).
    async fn run(&mut self, mut stream: TcpStream) -> Result<(), String> {
        let timeout = self.live.config().ingest_timeout();
        let max_kbps = self.live.config().max_ingest_kbps;
        let max_bytes_per_window = max_kbps * 1000 / 8 * BITRATE_WINDOW.as_secs();
        let mut session = ServerSession::new(SessionConfig::default());
        let mut buf = vec![0u8; 64 * 1024];
        let handshake_deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let mut window_start = Instant::now();
        let mut window_bytes = 0u64;
        let stop = self.live.stopping().clone();
        loop {
            let kick = self.broadcast.as_ref().map(|b| b.kick.clone());
            let read = tokio::select! {
                r = tokio::time::timeout(timeout, stream.read(&mut buf)) => r,
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(handshake_deadline), if self.pending.is_some() => {
                    self.live.metrics().refused(Refusal::RtmpHandshakeTimeout);
                    return Err(format!(
                        "did not publish within {} s",
                        self.handshake_timeout.as_secs()
                    ));
                }
                _ = async { match &kick { Some(k) => k.cancelled().await, None => std::future::pending().await } } => {
                    return Err("broadcast ended by the server".into());
                }
            };
            let n = match read {
                Err(_) => return Err(format!("no data for {} s", timeout.as_secs())),
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(n)) => n,
            };
            window_bytes += n as u64;
            self.live
                .metrics()
                .ingest_bytes
                .fetch_add(n as u64, Ordering::Relaxed);
            if window_start.elapsed() >= BITRATE_WINDOW {
                if window_bytes > max_bytes_per_window {
                    return Err(format!(
                        "ingest bitrate above the limit of {max_kbps} kbit/s"
                    ));
                }
                window_start = Instant::now();
                window_bytes = 0;
            }
            let fed = session.feed(&buf[..n]);
            let mut result = Ok(());
            while let Some(ev) = session.poll_event() {
                if let Err(e) = self.on_event(&mut session, ev).await {
                    result = Err(e);
                    break;
                }
            }
            let out = session.take_output();
            if !out.is_empty() {
                // A peer that stops reading must not hold this task (and its slot) forever.
                tokio::select! {
                    r = tokio::time::timeout(timeout, stream.write_all(&out)) => match r {
                        Ok(r) => r.map_err(|e| format!("write: {e}"))?,
                        Err(_) => return Err(format!("peer not reading for {} s", timeout.as_secs())),
                    },
                    _ = stop.cancelled() => return Ok(()),
                }
            }
            fed.map_err(|e| e.to_string())?;
            result?;
        }
    }

    async fn on_event(&mut self, session: &mut ServerSession, ev: Event) -> Result<(), String> {
        match ev {
            Event::Connected { app, .. } => {
                tracing::debug!(peer = %self.peer, %app, "rtmp connect");
                Ok(())
            }
            Event::Publish {
                app, stream_key, ..
            } => {
                if app != "live" {
                    session.reject_publish("the application must be `live`");
                    return Err(format!("publish to unknown application {app:?}"));
                }
                if self.broadcast.is_some() {
                    session.reject_publish("already publishing");
                    return Err("second publish on one connection".into());
                }
                if stream_key.starts_with(INTERNAL_PREFIX) {
                    let Some((b, rung)) = self.live.rung_for_key(&stream_key) else {
                        session.reject_publish("unknown stream key");
                        return Err("publish refused: unknown internal key".into());
                    };
                    session.accept_publish();
                    self.pending = None;
                    tracing::debug!(room = %b.slug, rung = %rung.name, "transcoder publishing");
                    self.broadcast = Some(b);
                    self.rung = Some(rung);
                    return Ok(());
                }
                // The key is a secret: it never appears in logs.
                match self.live.begin(&stream_key, self.id).await {
                    Ok(b) => {
                        session.accept_publish();
                        self.pending = None;
                        tracing::info!(peer = %self.peer, room = %b.slug, "publishing");
                        self.broadcast = Some(b);
                        Ok(())
                    }
                    Err(refusal) => {
                        session.reject_publish(&refusal.to_string());
                        Err(format!("publish refused: {refusal}"))
                    }
                }
            }
            Event::Metadata(_) => Ok(()),
            Event::Video { timestamp, data } => self.on_video(timestamp, data).await,
            Event::Audio { timestamp, data } => self.on_audio(timestamp, data).await,
            Event::Unpublish => {
                if self.rung.is_some() {
                    return Ok(()); // the transcoder stopping ends nothing
                }
                if let Some(b) = self.broadcast.take() {
                    // A deliberate stop ends the broadcast at once, without the grace period.
                    self.live.end(&b).await;
                }
                Ok(())
            }
        }
    }

    async fn on_video(&mut self, ts: u64, data: Bytes) -> Result<(), String> {
        let Some(b) = self.broadcast.clone() else {
            return Ok(());
        };
        let tag = flv::parse_video(&data).map_err(refuse_codec)?;
        let target = self.target(&b);
        if self.rung.is_none() {
            self.feed_transcoder(&b, flv::TAG_VIDEO, ts, &data, &tag);
        }
        // Held until the events reach the recorder, so `Live::end` cannot slip its final
        // flush and `Finish` in between (the recorder needs segments in order, before `Finish`).
        let _order = b.record_order.lock().await;
        let events = {
            let mut seg = target.lock();
            match tag {
                VideoTag::AvcSequenceHeader(rec) => {
                    let cfg = AvcConfig::parse(&rec).map_err(|e| format!("bad AVC config: {e}"))?;
                    seg.set_video_config(cfg);
                }
                VideoTag::AvcNalus {
                    keyframe,
                    composition_time_ms,
                    data,
                } => seg.push_video(ts, composition_time_ms, keyframe, data, now_ms()),
                VideoTag::AvcEndOfSequence | VideoTag::Other => {}
            }
            let events = drain(&mut seg);
            if !events.is_empty() {
                b.notify(); // under the lock: see `Broadcast::playlist`
            }
            events
        };
        self.publish(&b, events).await;
        Ok(())
    }

    async fn on_audio(&mut self, ts: u64, data: Bytes) -> Result<(), String> {
        let Some(b) = self.broadcast.clone() else {
            return Ok(());
        };
        let tag = flv::parse_audio(&data).map_err(refuse_codec)?;
        let target = self.target(&b);
        if self.rung.is_none() {
            if matches!(tag, AudioTag::AacSequenceHeader(_)) {
                self.keep_header(flv::TAG_AUDIO, ts, &data);
            } else if self.transcoder_tried {
                self.live
                    .feed_transcoder(&b, || flv_tag(flv::TAG_AUDIO, ts, &data));
            }
        }
        // Held until the events reach the recorder, so `Live::end` cannot slip its final
        // flush and `Finish` in between (the recorder needs segments in order, before `Finish`).
        let _order = b.record_order.lock().await;
        let events = {
            let mut seg = target.lock();
            match tag {
                AudioTag::AacSequenceHeader(asc) => {
                    let cfg = AacConfig::parse(&asc).map_err(|e| format!("bad AAC config: {e}"))?;
                    seg.set_audio_config(cfg);
                }
                AudioTag::AacRaw(frame) => seg.push_audio(ts, frame, now_ms()),
            }
            let events = drain(&mut seg);
            if !events.is_empty() {
                b.notify(); // under the lock: see `Broadcast::playlist`
            }
            events
        };
        self.publish(&b, events).await;
        Ok(())
    }

    /// The segmenter this connection feeds: the source's, or its rung's.
    fn target(&self, b: &Broadcast) -> Arc<parking_lot::Mutex<Segmenter>> {
        match &self.rung {
            Some(r) => r.seg.clone(),
            None => b.seg.clone(),
        }
    }

    fn keep_header(&mut self, tag_type: u8, ts: u64, body: &Bytes) {
        if self.flv_headers.is_empty() {
            self.flv_headers
                .push(Bytes::copy_from_slice(&flv::stream_header(true, true)));
        }
        let tag = flv_tag(tag_type, ts, body);
        // One header per type: a newer one replaces the older.
        self.flv_headers.retain(|h| h.first() != Some(&tag_type));
        self.flv_headers.push(tag);
    }

    /// Source video on its way to the transcoder: headers are kept, the first keyframe (with the
    /// resolution known) starts it, later frames are fed to it.
    fn feed_transcoder(
        &mut self,
        b: &Arc<Broadcast>,
        tag_type: u8,
        ts: u64,
        body: &Bytes,
        tag: &VideoTag,
    ) {
        if !self.live.config().transcode {
            return;
        }
        match tag {
            VideoTag::AvcSequenceHeader(_) => self.keep_header(tag_type, ts, body),
            VideoTag::AvcNalus { keyframe, .. } if !self.transcoder_tried => {
                let Some((_, height)) = b.seg.lock().resolution() else {
                    return;
                };
                if !*keyframe {
                    return;
                }
                self.transcoder_tried = true;
                let mut first = self.flv_headers.clone();
                first.push(flv_tag(tag_type, ts, body));
                self.live.start_transcoder(b, height, first);
            }
            _ if self.transcoder_tried => {
                self.live.feed_transcoder(b, || flv_tag(tag_type, ts, body));
            }
            _ => {}
        }
    }

    /// Wakes blocked HLS requests; hands the source's finished segments to the recorder.
    async fn publish(&self, b: &Arc<Broadcast>, events: Vec<moim_media::segmenter::Event>) {
        if events.is_empty() {
            return;
        }
        let parts = events
            .iter()
            .filter(|e| matches!(e, moim_media::segmenter::Event::Part { .. }))
            .count();
        self.live
            .metrics()
            .hls_parts
            .fetch_add(parts as u64, Ordering::Relaxed);
        if self.rung.is_none() {
            b.record(&self.live, events).await;
        }
    }
}

fn flv_tag(tag_type: u8, ts: u64, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(body.len() + 15);
    flv::write_tag(&mut out, tag_type, ts, body);
    Bytes::from(out)
}

fn refuse_codec(e: FlvError) -> String {
    format!("refusing stream: {e}")
}

fn drain(seg: &mut moim_media::segmenter::Segmenter) -> Vec<moim_media::segmenter::Event> {
    std::iter::from_fn(|| seg.poll_event()).collect()
}
