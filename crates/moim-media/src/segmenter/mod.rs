//! Cuts a live stream's samples into LL-HLS parts and keyframe-aligned segments, and keeps the
//! live window in memory.
//!
//! The caller feeds codec configurations and timestamped frames (FLV timing: milliseconds,
//! decode order) with the wall-clock time they arrived; the segmenter owns no clock. Video
//! decides where parts and segments end: a part closes as soon as the next frame would push it
//! past the part target, and a segment closes at the first keyframe after the segment target, so
//! every segment starts with a keyframe. Audio is packed into whichever part is being cut when
//! it arrives (each track has its own `tfdt`, so the tracks need not be cut at the same instant).
//! An audio-only stream is cut by audio time instead.
//!
//! What it does not do: read sockets, serve HTTP or write recordings. It reports each finished
//! part and segment through [`Segmenter::poll_event`]; the server wakes blocked playlist requests
//! and the recorder on those.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::audio::AudioConfig;
use crate::avc::AvcConfig;
use crate::fmp4::{self, Sample, VIDEO_TIMESCALE};
use crate::playlist::{MediaPlaylist, PartRef, SegmentRef};

/// Samples of one track in a part, whatever the timestamps say (memory bound).
const MAX_PART_SAMPLES: usize = 300;
/// Bytes in a part, whatever the timestamps say.
const MAX_PART_BYTES: usize = 8 << 20;
/// Parts in a segment: past a quarter of this a keyframe ends the segment even if timestamps
/// say it is short; at this many it ends regardless.
const MAX_PARTS: usize = 240;
/// Bytes in a segment, whatever the timestamps say (with the window's 8 segments, this bounds a
/// broadcast's memory).
const MAX_SEGMENT_BYTES: usize = 32 << 20;

/// Tuning for one broadcast's segmenter.
#[derive(Debug, Clone)]
pub struct Config {
    /// Upper bound of a part's duration (`PART-TARGET`), milliseconds.
    pub part_target_ms: u32,
    /// A segment ends at the first keyframe at least this long after it began, milliseconds.
    pub segment_target_ms: u32,
    /// Whole segments kept in memory and listed in the playlist.
    pub window_segments: usize,
    /// Newest segments whose parts are kept and listed (older ones are listed whole).
    pub part_segments: usize,
    /// A gap or backwards step in timestamps larger than this is a discontinuity, milliseconds.
    pub max_gap_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            part_target_ms: 334,
            segment_target_ms: 1000,
            window_segments: 8,
            part_segments: 3,
            max_gap_ms: 5000,
        }
    }
}

/// What happened since the last poll.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new init segment (first media, or codec configuration changed).
    Init { epoch: u32 },
    /// Part `index` of segment `msn` is available.
    Part { msn: u64, index: u32 },
    /// Segment `msn` is complete: `data` is its whole body (all its parts, in order).
    Segment {
        msn: u64,
        duration_ms: f64,
        init_epoch: u32,
        discontinuity: bool,
        data: Bytes,
    },
}

struct Part {
    duration: f64,
    independent: bool,
    data: Bytes,
}

struct Segment {
    msn: u64,
    discontinuity: bool,
    init_epoch: u32,
    pdt_ms: i64,
    parts: Vec<Part>,
    /// The whole body once the segment is complete (dropped parts are still in here).
    data: Option<Bytes>,
    duration: f64,
}

/// One video frame waiting for the next one to know its duration.
struct PendingVideo {
    dts: u64,
    cts: i32,
    keyframe: bool,
    data: Bytes,
    wall_ms: i64,
}

/// The part being cut.
#[derive(Default)]
struct OpenPart {
    video: Vec<Sample>,
    audio: Vec<Sample>,
    /// Duration in the cutting track's timescale.
    ticks: u64,
    independent: bool,
    wall_ms: Option<i64>,
}

/// The live window of one rendition.
pub struct Segmenter {
    cfg: Config,
    video_cfg: Option<AvcConfig>,
    audio_cfg: Option<AudioConfig>,
    /// Init segments by epoch; only the newest few are kept.
    inits: VecDeque<(u32, Bytes)>,
    epoch: Option<u32>,
    next_epoch: u32,
    started: bool,
    pending_video: Option<PendingVideo>,
    last_video_duration: u32,
    last_video_dts: Option<u64>,
    /// Audio timeline: next expected dts in the audio timescale.
    next_audio_dts: Option<u64>,
    last_audio_ms: Option<u64>,
    part: OpenPart,
    /// Segment being cut (always present once started).
    open: Option<Segment>,
    window: VecDeque<Segment>,
    next_msn: u64,
    fragment_seq: u32,
    discontinuity_pending: bool,
    /// Discontinuities that scrolled out of the window.
    discontinuity_sequence: u64,
    max_segment_ms: f64,
    ended: bool,
    events: VecDeque<Event>,
}

impl Segmenter {
    /// An empty window waiting for codec configuration and media.
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            video_cfg: None,
            audio_cfg: None,
            inits: VecDeque::new(),
            epoch: None,
            next_epoch: 0,
            started: false,
            pending_video: None,
            last_video_duration: 3000,
            last_video_dts: None,
            next_audio_dts: None,
            last_audio_ms: None,
            part: OpenPart::default(),
            open: None,
            window: VecDeque::new(),
            next_msn: 0,
            fragment_seq: 1,
            discontinuity_pending: false,
            discontinuity_sequence: 0,
            max_segment_ms: 0.0,
            ended: false,
            events: VecDeque::new(),
        }
    }

    /// The video codec configuration (AVC sequence header). A change mid-stream starts a new
    /// init segment after a discontinuity.
    pub fn set_video_config(&mut self, cfg: AvcConfig) {
        if self.video_cfg.as_ref().map(|c| &c.raw) == Some(&cfg.raw) {
            return;
        }
        self.video_cfg = Some(cfg);
        if self.started {
            self.break_stream();
        }
    }

    /// The audio codec configuration (an AAC sequence header, or Opus).
    pub fn set_audio_config(&mut self, cfg: impl Into<AudioConfig>) {
        let cfg = cfg.into();
        if self.audio_cfg.as_ref() == Some(&cfg) {
            return;
        }
        self.audio_cfg = Some(cfg);
        if self.started {
            // A track appearing or changing needs a new init segment.
            self.break_stream();
        }
    }

    /// The codecs of the current init segment, RFC 6381 (`avc1.64001f,mp4a.40.2`).
    pub fn codecs(&self) -> String {
        let mut c = Vec::new();
        if let Some(v) = &self.video_cfg {
            c.push(v.codec_string());
        }
        if let Some(a) = &self.audio_cfg {
            c.push(a.codec_string());
        }
        c.join(",")
    }

    /// Video resolution, when known.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        self.video_cfg.as_ref().map(|v| (v.width, v.height))
    }

    /// One video frame in decode order: FLV timestamp (dts, ms) and composition time (pts − dts, ms).
    pub fn push_video(
        &mut self,
        dts_ms: u64,
        cts_ms: i32,
        keyframe: bool,
        data: Bytes,
        wall_ms: i64,
    ) {
        if self.ended || self.video_cfg.is_none() || data.is_empty() {
            return;
        }
        let dts = dts_ms.saturating_mul(u64::from(VIDEO_TIMESCALE) / 1000);
        if let Some(last) = self.last_video_dts {
            let backwards = dts < last;
            let gap = dts.saturating_sub(last) > self.cfg.max_gap_ms * 90;
            if backwards || gap {
                self.break_stream();
            }
        }
        if !self.started {
            if !keyframe {
                return; // a broadcast starts at a keyframe
            }
            self.start(wall_ms);
        }
        self.last_video_dts = Some(dts);
        let frame = PendingVideo {
            dts,
            cts: cts_ms.saturating_mul(90),
            keyframe,
            data,
            wall_ms,
        };
        if let Some(prev) = self.pending_video.replace(frame) {
            let duration = u32::try_from(dts - prev.dts).unwrap_or(u32::MAX);
            // Two frames with one timestamp happen (ms rounding); give it a sliver, not zero.
            let duration = duration.max(1);
            self.last_video_duration = duration;
            self.add_video(prev, duration);
        }
    }

    /// One raw AAC frame or Opus packet; `dts_ms` is its timestamp (FLV's, or the RTP time in
    /// milliseconds). A malformed Opus packet, whose duration cannot be known, is dropped.
    pub fn push_audio(&mut self, dts_ms: u64, data: Bytes, wall_ms: i64) {
        if self.ended || data.is_empty() {
            return;
        }
        let Some(acfg) = &self.audio_cfg else { return };
        let rate = u64::from(acfg.sample_rate().max(1));
        let Some(frame) = acfg.frame_samples(&data) else {
            return;
        };
        let frame = u64::from(frame);
        if let Some(last) = self.last_audio_ms {
            if dts_ms + self.cfg.max_gap_ms < last || dts_ms > last + self.cfg.max_gap_ms {
                self.break_stream();
            }
        }
        self.last_audio_ms = Some(dts_ms);
        if !self.started {
            // Audio-only streams start at once; otherwise audio waits for the first keyframe.
            if self.video_cfg.is_some() {
                return;
            }
            self.start(wall_ms);
        }
        // Count samples rather than trusting millisecond timestamps, but follow the
        // timestamps when they drift more than two frames (encoder hiccup, dropped frames).
        let from_ts = dts_ms.saturating_mul(rate) / 1000;
        let dts = match self.next_audio_dts {
            Some(next) if from_ts <= next + 2 * frame => next,
            Some(next) => {
                // Audio went missing: stretch the previous frame over the hole so the part's
                // samples stay contiguous (a `trun` has no gaps).
                if let Some(prev) = self.part.audio.last_mut() {
                    prev.duration = u32::try_from(from_ts - prev.dts).unwrap_or(u32::MAX);
                }
                debug_assert!(from_ts > next);
                from_ts
            }
            None => from_ts,
        };
        self.next_audio_dts = Some(dts + frame);
        let sample = Sample {
            dts,
            duration: frame as u32,
            cts_offset: 0,
            keyframe: true,
            data,
        };
        if self.part.wall_ms.is_none() {
            self.part.wall_ms = Some(wall_ms);
        }
        self.part.audio.push(sample);
        if self.video_cfg.is_some() && self.part_too_big() {
            // Video stopped but audio goes on: do not let the part, or the segment, grow
            // without end.
            self.close_part(true);
            if self.segment_full() {
                self.close_segment();
                self.open_segment(wall_ms);
            }
        }
        if self.video_cfg.is_none() {
            // Audio-only: audio decides the cuts; every part is independent.
            self.part.independent = true;
            self.part.ticks += frame;
            let part_ticks = u64::from(self.cfg.part_target_ms) * rate / 1000;
            if self.part.ticks + frame > part_ticks || self.part_too_big() || self.segment_full() {
                let seg_ms = self.open_duration_ms() + ticks_ms(self.part.ticks, rate);
                self.close_part(false);
                // Audio can be cut anywhere: end the segment at the part nearest the target.
                let half_part = f64::from(self.cfg.part_target_ms) / 2.0;
                if seg_ms + half_part >= f64::from(self.cfg.segment_target_ms) {
                    self.close_segment();
                    self.open_segment(wall_ms);
                }
            }
        }
    }

    /// The publisher went away and may come back: close what is open, so the next media starts a
    /// new segment after `EXT-X-DISCONTINUITY`.
    pub fn break_stream(&mut self) {
        self.flush_pending_video();
        self.close_part(true);
        self.close_segment();
        self.started = false;
        self.last_video_dts = None;
        self.last_audio_ms = None;
        self.next_audio_dts = None;
        if self.next_msn > 0 {
            self.discontinuity_pending = true;
        }
    }

    /// The broadcast is over: flush everything and mark the playlist ended.
    pub fn finish(&mut self) {
        if self.ended {
            return;
        }
        self.break_stream();
        self.ended = true;
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The init segment of an epoch, if still kept.
    pub fn init(&self, epoch: u32) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|(e, _)| *e == epoch)
            .map(|(_, b)| b.clone())
    }

    /// A whole segment in the window.
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        self.window
            .iter()
            .find(|s| s.msn == msn)
            .and_then(|s| s.data.clone())
    }

    /// One part, of a complete segment in the window or of the open segment.
    pub fn part(&self, msn: u64, index: u32) -> Option<Bytes> {
        let seg = self
            .open
            .iter()
            .chain(self.window.iter().rev())
            .find(|s| s.msn == msn)?;
        seg.parts
            .get(index as usize)
            .filter(|p| !p.data.is_empty())
            .map(|p| p.data.clone())
    }

    /// Whether part `(msn, index)` exists or the playlist has moved past it: what a blocking
    /// playlist reload waits for. `index: None` waits for the whole segment.
    pub fn has(&self, msn: u64, index: Option<u32>) -> bool {
        if self.ended {
            return true;
        }
        let done_before = self.window.back().map(|s| s.msn + 1).unwrap_or(0);
        if msn < done_before {
            // A part past the end of the newest complete segment (hinted before a keyframe
            // closed the segment early) means the first part of the next one (RFC 8216bis).
            if let (Some(i), Some(last)) = (index, self.window.back()) {
                if msn == last.msn && i as usize >= last.parts.len() {
                    return self.has(msn + 1, Some(0));
                }
            }
            return true;
        }
        match (index, &self.open) {
            (Some(i), Some(open)) if open.msn == msn => (i as usize) < open.parts.len(),
            (_, Some(open)) => msn < open.msn,
            _ => false,
        }
    }

    /// The newest part `(msn, index)` produced, if any.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        if let Some(open) = &self.open {
            if !open.parts.is_empty() {
                return Some((open.msn, open.parts.len() as u32 - 1));
            }
        }
        self.window
            .back()
            .map(|s| (s.msn, s.parts.len().max(1) as u32 - 1))
    }

    /// The next MSN the segmenter will produce (used to judge "too far ahead" requests).
    pub fn next_msn(&self) -> u64 {
        self.open.as_ref().map_or(self.next_msn, |s| s.msn)
    }

    /// Average bits per second over the complete segments in the window (0 before the first).
    pub fn bitrate_bps(&self) -> u64 {
        let (bytes, secs) = self.window.iter().fold((0usize, 0.0f64), |(b, d), s| {
            (b + s.data.as_ref().map_or(0, |x| x.len()), d + s.duration)
        });
        if secs <= 0.0 {
            0
        } else {
            (bytes as f64 * 8.0 / secs) as u64
        }
    }

    /// `EXT-X-TARGETDURATION`: the longest segment so far (at least the segment target), whole
    /// seconds.
    pub fn target_duration(&self) -> u32 {
        (self.max_segment_ms / 1000.0)
            .max(f64::from(self.cfg.segment_target_ms) / 1000.0)
            .round()
            .max(1.0) as u32
    }

    /// Whether there is anything to play yet.
    pub fn has_media(&self) -> bool {
        !self.window.is_empty() || self.open.as_ref().is_some_and(|s| !s.parts.is_empty())
    }

    /// The media playlist: LL-HLS when `low_latency`, else whole segments only.
    pub fn playlist(&self, low_latency: bool) -> String {
        let keep_parts_from = self
            .window
            .len()
            .saturating_sub(self.cfg.part_segments.saturating_sub(1));
        let parts: Vec<Vec<PartRef>> = self
            .window
            .iter()
            .chain(self.open.iter())
            .map(|s| {
                s.parts
                    .iter()
                    .map(|p| PartRef {
                        duration: p.duration,
                        independent: p.independent,
                    })
                    .collect()
            })
            .collect();
        let mut segs: Vec<SegmentRef<'_>> = Vec::with_capacity(parts.len());
        for (i, s) in self.window.iter().chain(self.open.iter()).enumerate() {
            let open = i >= self.window.len();
            if open && (!low_latency || s.parts.is_empty()) {
                continue;
            }
            segs.push(SegmentRef {
                msn: s.msn,
                duration: if open {
                    s.parts.iter().map(|p| p.duration).sum()
                } else {
                    s.duration
                },
                discontinuity: s.discontinuity,
                init_epoch: s.init_epoch,
                program_date_time_ms: s.pdt_ms,
                parts: if i >= keep_parts_from { &parts[i] } else { &[] },
                open,
            });
        }
        let preload_hint = if self.ended {
            None
        } else {
            match &self.open {
                Some(open) => Some((open.msn, open.parts.len() as u32)),
                None => Some((self.next_msn, 0)),
            }
        };
        let target = self.target_duration();
        MediaPlaylist {
            target_duration: target,
            part_target: low_latency.then(|| f64::from(self.cfg.part_target_ms) / 1000.0),
            media_sequence: segs.first().map_or(self.next_msn, |s| s.msn),
            discontinuity_sequence: self.discontinuity_sequence,
            segments: &segs,
            preload_hint,
            ended: self.ended,
            vod: false,
        }
        .render()
    }

    fn start(&mut self, wall_ms: i64) {
        self.started = true;
        let init = fmp4::init_segment(self.video_cfg.as_ref(), self.audio_cfg.as_ref());
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        self.epoch = Some(epoch);
        self.inits.push_back((epoch, Bytes::from(init)));
        while self.inits.len() > 4 {
            self.inits.pop_front();
        }
        self.events.push_back(Event::Init { epoch });
        self.open_segment(wall_ms);
    }

    fn open_segment(&mut self, wall_ms: i64) {
        let msn = self.next_msn;
        self.next_msn += 1;
        self.open = Some(Segment {
            msn,
            discontinuity: std::mem::take(&mut self.discontinuity_pending),
            init_epoch: self.epoch.unwrap_or(0),
            pdt_ms: wall_ms,
            parts: Vec::new(),
            data: None,
            duration: 0.0,
        });
    }

    fn open_duration_ms(&self) -> f64 {
        self.open.as_ref().map_or(0.0, |s| {
            s.parts.iter().map(|p| p.duration).sum::<f64>() * 1000.0
        })
    }

    /// Place one video frame whose duration is now known.
    fn add_video(&mut self, frame: PendingVideo, duration: u32) {
        let ms = |t: u64| ticks_ms(t, u64::from(VIDEO_TIMESCALE));
        let parts = self.open.as_ref().map_or(0, |s| s.parts.len());
        // A segment ends at a keyframe once long enough; without usable timestamps, once it has
        // many parts; without keyframes at all, at a hard cap (then it starts mid-GOP).
        if (frame.keyframe && parts >= MAX_PARTS / 4) || self.segment_full() {
            self.close_part(false);
            self.close_segment();
            self.open_segment(frame.wall_ms);
        } else if frame.keyframe {
            let seg_ms = self.open_duration_ms() + ms(self.part.ticks);
            if seg_ms >= f64::from(self.cfg.segment_target_ms) {
                self.close_part(false);
                self.close_segment();
                self.open_segment(frame.wall_ms);
            }
        }
        if self.open.is_none() {
            return;
        }
        if self.part.video.is_empty() {
            self.part.independent = frame.keyframe;
            self.part.wall_ms.get_or_insert(frame.wall_ms);
        }
        self.part.ticks += u64::from(duration);
        self.part.video.push(Sample {
            dts: frame.dts,
            duration,
            cts_offset: frame.cts,
            keyframe: frame.keyframe,
            data: frame.data,
        });
        // Close now if the next frame (assumed as long as this one) would not fit, or if
        // timestamps that barely move have let the part grow too big.
        let part_ticks = u64::from(self.cfg.part_target_ms) * 90;
        if self.part.ticks + u64::from(duration) > part_ticks || self.part_too_big() {
            self.close_part(false);
        }
    }

    /// Whether the open segment may take no more parts.
    fn segment_full(&self) -> bool {
        self.open.as_ref().is_some_and(|s| {
            s.parts.len() >= MAX_PARTS
                || s.parts.iter().map(|p| p.data.len()).sum::<usize>() >= MAX_SEGMENT_BYTES
        })
    }

    /// Whether the open part holds more than any sane part would.
    fn part_too_big(&self) -> bool {
        let bytes: usize = self
            .part
            .video
            .iter()
            .chain(&self.part.audio)
            .map(|s| s.data.len())
            .sum();
        self.part.video.len() >= MAX_PART_SAMPLES
            || self.part.audio.len() >= MAX_PART_SAMPLES
            || bytes >= MAX_PART_BYTES
    }

    fn flush_pending_video(&mut self) {
        if let Some(frame) = self.pending_video.take() {
            let d = self.last_video_duration;
            self.add_video(frame, d);
        }
    }

    /// Emits the open part. In a stream with video, audio that arrived after the last video
    /// frame waits for the next part (a part's duration is its video's), unless `flush`.
    fn close_part(&mut self, flush: bool) {
        if self.part.video.is_empty()
            && (self.part.audio.is_empty() || (self.video_cfg.is_some() && !flush))
        {
            return;
        }
        let part = std::mem::take(&mut self.part);
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let duration = if part.video.is_empty() {
            let rate = self.audio_cfg.as_ref().map_or(48_000, |a| a.sample_rate());
            let ticks: u64 = part.audio.iter().map(|s| u64::from(s.duration)).sum();
            ticks as f64 / f64::from(rate.max(1))
        } else {
            part.ticks as f64 / f64::from(VIDEO_TIMESCALE)
        };
        let data = fmp4::fragment(self.fragment_seq, &part.video, &part.audio);
        self.fragment_seq = self.fragment_seq.wrapping_add(1);
        let independent = part.independent || (part.video.is_empty() && self.video_cfg.is_none());
        open.parts.push(Part {
            duration,
            independent,
            data: Bytes::from(data),
        });
        self.events.push_back(Event::Part {
            msn: open.msn,
            index: open.parts.len() as u32 - 1,
        });
    }

    fn close_segment(&mut self) {
        let Some(mut seg) = self.open.take() else {
            return;
        };
        if seg.parts.is_empty() {
            // Nothing was cut: reuse its number for the next segment.
            self.next_msn = seg.msn;
            self.discontinuity_pending |= seg.discontinuity;
            return;
        }
        seg.duration = seg.parts.iter().map(|p| p.duration).sum();
        self.max_segment_ms = self.max_segment_ms.max(seg.duration * 1000.0);
        let mut body = BytesMut::with_capacity(seg.parts.iter().map(|p| p.data.len()).sum());
        for p in &seg.parts {
            body.extend_from_slice(&p.data);
        }
        let data = body.freeze();
        seg.data = Some(data.clone());
        self.events.push_back(Event::Segment {
            msn: seg.msn,
            duration_ms: seg.duration * 1000.0,
            init_epoch: seg.init_epoch,
            discontinuity: seg.discontinuity,
            data,
        });
        self.window.push_back(seg);
        while self.window.len() > self.cfg.window_segments.max(1) {
            if let Some(old) = self.window.pop_front() {
                if old.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
        // Parts of segments that left the part window are only listed as whole segments.
        let keep = self.cfg.part_segments.max(1);
        let n = self.window.len();
        for s in self.window.iter_mut().take(n.saturating_sub(keep)) {
            s.parts.iter_mut().for_each(|p| p.data = Bytes::new());
        }
    }
}

fn ticks_ms(ticks: u64, rate: u64) -> f64 {
    ticks as f64 * 1000.0 / rate.max(1) as f64
}

#[cfg(test)]
mod tests;
