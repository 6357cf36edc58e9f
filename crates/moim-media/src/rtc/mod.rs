//! A WebRTC publisher's media into the segmenter: the frames an SFU reassembled from RTP (H.264
//! access units in Annex B form, Opus packets) with their RTP times, turned into what the
//! segmenter takes from RTMP (an AVC configuration and AVCC-framed frames, an audio
//! configuration and packets, millisecond timestamps).
//!
//! Timing: each track's RTP clock starts at a random value and runs at its own rate (90 kHz
//! video, 48 kHz Opus). A track is anchored at the moment its first frame arrived, measured from
//! the feed's first frame of any track, and follows its RTP clock from there; the two tracks are
//! therefore in step to within the difference of their network paths (the same socket: a few
//! milliseconds), without waiting for the RTCP sender reports that would say it exactly.
//!
//! Parameter sets: RTP carries the SPS and PPS in-band before keyframes, so the configuration
//! is built from them, and a change (the browser lowering its resolution) becomes a new
//! configuration, which the segmenter turns into a discontinuity. The parameter sets and access
//! unit delimiters are taken out of the frames; every other unit is passed on untouched.
//!
//! Input is untrusted: a frame that is not Annex B or whose parameter sets do not parse is an
//! [`RtcError`] and changes nothing.

use bytes::{BufMut, Bytes, BytesMut};

use crate::avc::{annexb_nalus, AvcConfig, AvcError};
use crate::opus::OpusConfig;
use crate::segmenter::Segmenter;

/// Why a frame was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcError {
    #[error("an H.264 frame with no NAL unit in it")]
    NoNalUnits,
    #[error("bad H.264 parameter sets: {0}")]
    ParameterSets(#[from] AvcError),
}

/// One track's mapping from its RTP clock to the feed's milliseconds.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    rtp: u64,
    hz: u64,
    ms: u64,
}

impl Anchor {
    fn ms(&self, rtp: u64) -> u64 {
        // Frames reordered before the anchor (rare: the first frames of a track) count as at it.
        self.ms + rtp.saturating_sub(self.rtp) * 1000 / self.hz.max(1)
    }
}

/// Feeds one WebRTC publisher's frames to a segmenter.
#[derive(Debug, Default)]
pub struct RtcFeed {
    video: Option<Anchor>,
    audio: Option<Anchor>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    /// The publisher sends audio: its configuration is set before the first frame of either
    /// track, so audio arriving a moment after video does not start a second init segment.
    has_audio: bool,
    audio_set: bool,
    /// The publisher sends video: audio waits for its parameter sets, or the stream would
    /// start audio-only and break for a new init segment a moment later.
    has_video: bool,
}

/// NAL unit types taken out of frames: SPS, PPS, access unit delimiter, filler.
const OUT_OF_BAND: [u8; 4] = [7, 8, 9, 12];

impl RtcFeed {
    /// A feed for a publisher that sends audio, video, or both.
    pub fn new(has_audio: bool, has_video: bool) -> Self {
        Self {
            has_audio,
            has_video,
            ..Self::default()
        }
    }

    /// The publisher's video cannot be packaged (not H.264): the stream is audio-only, and
    /// audio stops waiting for parameter sets that will not come.
    pub fn without_video(&mut self) {
        self.has_video = false;
    }

    fn set_audio(&mut self, seg: &mut Segmenter) {
        if !self.audio_set {
            seg.set_audio_config(OpusConfig::webrtc());
            self.audio_set = true;
        }
    }

    /// An H.264 access unit: `rtp_time` at 90 kHz (extended, not wrapping), `arrived_ms` since
    /// the feed's first frame, `wall_ms` the wall clock for the playlist.
    pub fn video(
        &mut self,
        seg: &mut Segmenter,
        rtp_time: u64,
        arrived_ms: u64,
        annexb: &[u8],
        wall_ms: i64,
    ) -> Result<(), RtcError> {
        let mut avcc = BytesMut::with_capacity(annexb.len() + 16);
        let (mut keyframe, mut any) = (false, false);
        let (mut sps, mut pps) = (None, None);
        for nal in annexb_nalus(annexb) {
            any = true;
            let kind = nal[0] & 0x1f;
            match kind {
                7 => sps = Some(nal),
                8 => pps = Some(nal),
                5 => keyframe = true,
                _ => {}
            }
            if !OUT_OF_BAND.contains(&kind) {
                avcc.put_u32(nal.len() as u32);
                avcc.put_slice(nal);
            }
        }
        if !any {
            return Err(RtcError::NoNalUnits);
        }
        if self.has_audio {
            self.set_audio(seg);
        }
        let changed = sps.is_some_and(|s| self.sps.as_deref() != Some(s))
            || pps.is_some_and(|p| self.pps.as_deref() != Some(p));
        if changed {
            let sps = sps.or(self.sps.as_deref()).unwrap_or_default();
            let pps = pps.or(self.pps.as_deref()).unwrap_or_default();
            if !sps.is_empty() && !pps.is_empty() {
                let cfg = AvcConfig::from_parameter_sets(sps, pps)?;
                self.sps = Some(sps.to_vec());
                self.pps = Some(pps.to_vec());
                seg.set_video_config(cfg);
            } else {
                // Half a pair: keep it until the other half comes.
                if !sps.is_empty() {
                    self.sps = Some(sps.to_vec());
                }
                if !pps.is_empty() {
                    self.pps = Some(pps.to_vec());
                }
            }
        }
        if avcc.is_empty() {
            return Ok(()); // parameter sets only
        }
        let anchor = *self.video.get_or_insert(Anchor {
            rtp: rtp_time,
            hz: 90_000,
            ms: arrived_ms,
        });
        // WebRTC H.264 has no B-frames: presentation order is decode order.
        seg.push_video(anchor.ms(rtp_time), 0, keyframe, avcc.freeze(), wall_ms);
        Ok(())
    }

    /// An Opus packet: `rtp_time` at 48 kHz.
    pub fn audio(
        &mut self,
        seg: &mut Segmenter,
        rtp_time: u64,
        arrived_ms: u64,
        packet: &[u8],
        wall_ms: i64,
    ) {
        if self.has_video && self.sps.is_none() {
            return;
        }
        self.set_audio(seg);
        let anchor = *self.audio.get_or_insert(Anchor {
            rtp: rtp_time,
            hz: 48_000,
            ms: arrived_ms,
        });
        seg.push_audio(anchor.ms(rtp_time), Bytes::copy_from_slice(packet), wall_ms);
    }
}

#[cfg(test)]
mod tests;

/// Feeds a feed and segmenter what a fuzzer made (the `rtc_feed` target and its corpus test
/// read bytes alike): records of a flags byte (bit 0: audio, else video; the rest: milliseconds
/// since the previous record, 127 meaning a jump of 2³² RTP ticks), a length byte and that many
/// bytes of frame. Panics on what must not happen: a playlist that does not render.
#[doc(hidden)]
pub fn replay(data: &[u8]) {
    let mut seg = Segmenter::new(crate::segmenter::Config::default());
    let mut feed = RtcFeed::new(true, true);
    let (mut video, mut audio, mut ms) = (0u64, 0u64, 0u64);
    let mut rest = data;
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (frame, next) = tail.split_at(n);
        rest = next;
        let step = u64::from(flags >> 1);
        let (v, a) = if step == 127 {
            (1 << 32, 1 << 32)
        } else {
            (step * 90, step * 48)
        };
        video = video.wrapping_add(v);
        audio = audio.wrapping_add(a);
        ms += step;
        if flags & 1 == 1 {
            feed.audio(&mut seg, audio, ms, frame, ms as i64);
        } else {
            let _ = feed.video(&mut seg, video, ms, frame, ms as i64);
        }
        while seg.poll_event().is_some() {}
    }
    assert!(seg.playlist(true).starts_with("#EXTM3U\n"));
    seg.finish();
    assert!(seg.playlist(false).ends_with("#EXT-X-ENDLIST\n"));
}
