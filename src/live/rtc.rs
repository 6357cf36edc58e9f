//! WebRTC ingest: a WHIP publisher's broadcast through the same pipeline as an RTMP one. The SFU
//! forwards the publisher's frames to WebRTC viewers and hands a copy here; this turns them into
//! the room's broadcast (LIVE badge, LL-HLS, recording) as `ingest` does for RTMP.
//!
//! One dispatcher task takes the SFU's events in order and never waits on anything else; each
//! publisher gets its own task (begin the broadcast, feed its segmenter, hand segments to the
//! recorder, end or detach it), so one slow recording cannot hold up another room. Frames a
//! publisher's task cannot take in time are dropped, counted and logged, like a full socket.
//!
//! H.264 goes to CMAF as it came (its parameter sets become the init segment); Opus is kept as
//! Opus in fMP4 (no transcoding: browsers' players take it; see `docs/architecture.md`). VP8 video
//! cannot be packaged into HLS without re-encoding: such a broadcast reaches WebRTC viewers only,
//! with its audio in HLS, and a log line says so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moim_media::rtc::RtcFeed;
use tokio::sync::mpsc;

use super::{Broadcast, Live};
use crate::limits::LogGate;
use crate::storage::now_ms;

/// Frames queued for one publisher's task at most (a few seconds of media).
const QUEUE: usize = 512;

static DROP_LOG: LogGate = LogGate::new(Duration::from_secs(10));
static BAD_LOG: LogGate = LogGate::new(Duration::from_secs(10));

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    H264,
    Opus,
    /// A codec HLS cannot carry as is (its name, for the log).
    Other(&'static str),
}

/// What the SFU says about its publishers.
#[derive(Debug)]
pub enum RtcEvent {
    /// A WHIP publisher of `room` connected (its key was checked when it offered).
    Connected {
        room: String,
        peer: String,
        audio: bool,
        video: bool,
    },
    /// One of its frames.
    Frame {
        peer: String,
        kind: FrameKind,
        /// RTP time (extended) at the codec's clock: 90 kHz video, 48 kHz Opus.
        rtp_time: u64,
        arrived: Instant,
        data: Arc<[u8]>,
    },
    /// It ended: `deliberate` (its DELETE, the room's sessions ended) ends the broadcast now;
    /// otherwise it was lost and the broadcast waits the grace period for it.
    Gone { peer: String, deliberate: bool },
}

struct Frame {
    kind: FrameKind,
    rtp_time: u64,
    arrived: Instant,
    data: Arc<[u8]>,
}

struct Running {
    tx: mpsc::Sender<Frame>,
    deliberate: Arc<AtomicBool>,
}

/// Starts the dispatcher on the SFU's events. `end_peer` ends an SFU session (its broadcast
/// could not start, or was ended by moim).
pub fn start(
    live: Live,
    mut rx: mpsc::UnboundedReceiver<RtcEvent>,
    end_peer: Arc<dyn Fn(String) + Send + Sync>,
) {
    tokio::spawn(async move {
        let mut running: HashMap<String, Running> = HashMap::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                RtcEvent::Connected {
                    room,
                    peer,
                    audio,
                    video,
                } => {
                    let (ftx, frx) = mpsc::channel(QUEUE);
                    let deliberate = Arc::new(AtomicBool::new(false));
                    running.insert(
                        peer.clone(),
                        Running {
                            tx: ftx,
                            deliberate: deliberate.clone(),
                        },
                    );
                    let publisher = Publisher {
                        live: live.clone(),
                        room,
                        peer,
                        audio,
                        video,
                        deliberate,
                        end_peer: end_peer.clone(),
                    };
                    tokio::spawn(publisher.run(frx));
                }
                RtcEvent::Frame {
                    peer,
                    kind,
                    rtp_time,
                    arrived,
                    data,
                } => {
                    let Some(r) = running.get(&peer) else {
                        continue;
                    };
                    let frame = Frame {
                        kind,
                        rtp_time,
                        arrived,
                        data,
                    };
                    if r.tx.try_send(frame).is_err() {
                        live.metrics()
                            .webrtc_frames_dropped
                            .fetch_add(1, Ordering::Relaxed);
                        if let Some(held_back) = DROP_LOG.pass(Instant::now()) {
                            tracing::warn!(
                                similar_not_logged = held_back,
                                "a WebRTC broadcast frame was dropped: its recording and HLS are behind"
                            );
                        }
                    }
                }
                RtcEvent::Gone { peer, deliberate } => {
                    if let Some(r) = running.remove(&peer) {
                        r.deliberate.store(deliberate, Ordering::Release);
                    }
                }
            }
        }
    });
}

/// One publisher's task: its broadcast from connect to end.
struct Publisher {
    live: Live,
    room: String,
    peer: String,
    audio: bool,
    video: bool,
    deliberate: Arc<AtomicBool>,
    end_peer: Arc<dyn Fn(String) + Send + Sync>,
}

impl Publisher {
    async fn run(self, mut frames: mpsc::Receiver<Frame>) {
        let conn = super::ingest::next_conn();
        let b = match self.live.begin_room(&self.room, conn).await {
            Ok(b) => b,
            Err(refusal) => {
                tracing::info!(room = %self.room, %refusal, "WebRTC broadcast refused");
                (self.end_peer)(self.peer.clone());
                return;
            }
        };
        tracing::info!(room = %self.room, broadcast = %b.id, "publishing by WebRTC");
        let mut feed = RtcFeed::new(self.audio, self.video);
        let mut epoch: Option<Instant> = None;
        let mut said_codec = false;
        let kick = b.kick.clone();
        loop {
            let frame = tokio::select! {
                f = frames.recv() => f,
                _ = kick.cancelled() => {
                    // moim ended the broadcast (key rotated, room deleted, shutdown).
                    (self.end_peer)(self.peer.clone());
                    return;
                }
            };
            let Some(frame) = frame else { break };
            let start = *epoch.get_or_insert(frame.arrived);
            let at = frame.arrived.saturating_duration_since(start).as_millis() as u64;
            match frame.kind {
                FrameKind::H264 | FrameKind::Opus => {
                    self.feed(&b, &mut feed, &frame, at).await;
                }
                FrameKind::Other(codec) if !said_codec => {
                    said_codec = true;
                    feed.without_video();
                    tracing::info!(room = %self.room, codec, "this WebRTC broadcast's video reaches real-time viewers only: LL-HLS and recordings take H.264");
                }
                FrameKind::Other(_) => {}
            }
        }
        // The dispatcher let go: the session ended.
        if self.deliberate.load(Ordering::Acquire) {
            self.live.end(&b).await;
        } else {
            self.live.detach(&b, conn).await;
        }
    }

    async fn feed(&self, b: &Arc<Broadcast>, feed: &mut RtcFeed, frame: &Frame, at: u64) {
        // Held until the events reach the recorder, as in `ingest`.
        let _order = b.record_order.lock().await;
        let events = {
            let mut seg = b.seg.lock();
            let wall = now_ms();
            if frame.kind == FrameKind::H264 {
                if let Err(e) = feed.video(&mut seg, frame.rtp_time, at, &frame.data, wall) {
                    if let Some(held_back) = BAD_LOG.pass(Instant::now()) {
                        tracing::info!(room = %self.room, error = %e, similar_not_logged = held_back, "a WebRTC video frame was not taken into HLS");
                    }
                }
            } else {
                feed.audio(&mut seg, frame.rtp_time, at, &frame.data, wall);
            }
            let events: Vec<_> = std::iter::from_fn(|| seg.poll_event()).collect();
            if !events.is_empty() {
                b.notify(); // under the lock: see `Broadcast::playlist`
            }
            events
        };
        let parts = events
            .iter()
            .filter(|e| matches!(e, moim_media::segmenter::Event::Part { .. }))
            .count();
        self.live
            .metrics()
            .hls_parts
            .fetch_add(parts as u64, Ordering::Relaxed);
        b.record(&self.live, events).await;
    }
}
