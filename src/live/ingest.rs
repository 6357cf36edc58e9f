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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::{Broadcast, Live};
use crate::storage::now_ms;

/// Time allowed from TCP connect to an accepted `publish`.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(10);
/// Window over which the ingest bitrate limit is judged.
const BITRATE_WINDOW: Duration = Duration::from_secs(5);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Accepts encoder connections until `live` stops.
pub async fn run_listener(live: Live, listener: TcpListener) {
    // Connections that have not (yet) published count too: bound them all.
    let slots = Arc::new(Semaphore::new(live.config().max_broadcasts * 2 + 8));
    let stop = live.stopping().clone();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "rtmp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "rtmp connection refused: too many connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let live2 = live.clone();
        live.tasks().spawn(async move {
            let conn_id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
            let mut conn = Conn {
                live: live2,
                id: conn_id,
                peer,
                broadcast: None,
            };
            match conn.run(stream).await {
                Ok(()) => tracing::info!(%peer, conn = conn_id, "rtmp connection closed"),
                Err(reason) => {
                    tracing::warn!(%peer, conn = conn_id, %reason, "rtmp connection dropped")
                }
            }
            if let Some(b) = conn.broadcast.take() {
                conn.live.detach(&b, conn_id);
            }
            drop(permit);
        });
    }
}

struct Conn {
    live: Live,
    id: u64,
    peer: SocketAddr,
    broadcast: Option<Arc<Broadcast>>,
}

impl Conn {
    /// Runs the connection; `Err` carries why it was dropped (for the log).
    async fn run(&mut self, mut stream: TcpStream) -> Result<(), String> {
        let timeout = self.live.config().ingest_timeout;
        let max_kbps = self.live.config().max_ingest_kbps;
        let max_bytes_per_window = max_kbps * 1000 / 8 * BITRATE_WINDOW.as_secs();
        let mut session = ServerSession::new(SessionConfig::default());
        let mut buf = vec![0u8; 64 * 1024];
        let opened = Instant::now();
        let mut window_start = Instant::now();
        let mut window_bytes = 0u64;
        let stop = self.live.stopping().clone();
        loop {
            let kick = self.broadcast.as_ref().map(|b| b.kick.clone());
            let read = tokio::select! {
                r = tokio::time::timeout(timeout, stream.read(&mut buf)) => r,
                _ = stop.cancelled() => return Ok(()),
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
            if self.broadcast.is_none() && opened.elapsed() > PUBLISH_DEADLINE {
                return Err("did not publish in time".into());
            }
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
                stream
                    .write_all(&out)
                    .await
                    .map_err(|e| format!("write: {e}"))?;
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
                // The key is a secret: it never appears in logs.
                match self.live.begin(&stream_key, self.id).await {
                    Ok(b) => {
                        session.accept_publish();
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
        let events = {
            let mut seg = b.seg.lock();
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
            drain(&mut seg)
        };
        publish(&self.live, &b, events).await;
        Ok(())
    }

    async fn on_audio(&mut self, ts: u64, data: Bytes) -> Result<(), String> {
        let Some(b) = self.broadcast.clone() else {
            return Ok(());
        };
        let tag = flv::parse_audio(&data).map_err(refuse_codec)?;
        let events = {
            let mut seg = b.seg.lock();
            match tag {
                AudioTag::AacSequenceHeader(asc) => {
                    let cfg = AacConfig::parse(&asc).map_err(|e| format!("bad AAC config: {e}"))?;
                    seg.set_audio_config(cfg);
                }
                AudioTag::AacRaw(frame) => seg.push_audio(ts, frame, now_ms()),
            }
            drain(&mut seg)
        };
        publish(&self.live, &b, events).await;
        Ok(())
    }
}

fn refuse_codec(e: FlvError) -> String {
    format!("refusing stream: {e}")
}

fn drain(seg: &mut moim_media::segmenter::Segmenter) -> Vec<moim_media::segmenter::Event> {
    std::iter::from_fn(|| seg.poll_event()).collect()
}

/// Wakes blocked HLS requests and hands finished segments to the recorder.
async fn publish(live: &Live, b: &Arc<Broadcast>, events: Vec<moim_media::segmenter::Event>) {
    if events.is_empty() {
        return;
    }
    let parts = events
        .iter()
        .filter(|e| matches!(e, moim_media::segmenter::Event::Part { .. }))
        .count();
    live.metrics()
        .hls_parts
        .fetch_add(parts as u64, Ordering::Relaxed);
    b.notify();
    b.record(live.tasks(), events).await;
}
