//! Stored MP4 (and QuickTime) files, read for remuxing: where the movie index (`moov`) is, what
//! it says, and where and when every sample is.
//!
//! The `moov` is parsed by Mozilla's `mp4parse` (the parser Firefox ships, fuzzed there). This
//! module walks only the top-level box headers to find it ([`Scanner`]), checks what mp4parse
//! returns against the file's length and our limits ([`Movie::parse`]), and turns it into
//! samples on one millisecond timeline for the [`Segmenter`] ([`Remux`]). It reads nothing
//! itself: the caller hands it the bytes it asks for, so the file may live in any blob store and
//! the parsing stays fuzzable.

use std::io::Cursor;

use bytes::Bytes;
use mp4parse::unstable::{create_sample_table, CheckedInteger};
use mp4parse::{AudioCodecSpecific, CodecType, SampleEntry, TrackType, VideoCodecSpecific};

use crate::aac::AacConfig;
use crate::avc::AvcConfig;
use crate::segmenter::{self, Event, Segmenter};

/// Largest `moov` read into memory (a two-hour 60 fps film needs a few MiB).
pub const MAX_MOOV_BYTES: u64 = 64 << 20;
/// Most samples in one track (about 37 hours at 30 fps).
pub const MAX_SAMPLES: usize = 4_000_000;
/// Top-level boxes walked before giving up on finding the `moov`.
const MAX_TOP_BOXES: u32 = 4096;
/// Bytes [`Scanner`] asks for at each box: a 64-bit box header.
pub const HEADER_BYTES: u64 = 16;

/// Why a file cannot be remuxed here. The messages are shown to the member who uploaded it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp4Error {
    #[error("this is not an MP4 or QuickTime file")]
    NotMp4,
    #[error("the file is cut short")]
    Truncated,
    #[error("the file has no movie index (moov box); it may be cut short")]
    NoMoov,
    #[error("the movie index is too large ({0} bytes)")]
    MoovTooLarge(u64),
    #[error("the file is a fragmented MP4")]
    Fragmented,
    #[error("the movie index is damaged ({0})")]
    Damaged(String),
    #[error("a track has more than {MAX_SAMPLES} samples")]
    TooManySamples,
}

/// Walks the top-level boxes of a file of known length until it finds the `moov`.
///
/// ```text
/// let mut s = Scanner::new(len);
/// while let Some((at, n)) = s.want() { match s.feed(&read(at, n))? { Some(moov) => …, None => {} } }
/// ```
#[derive(Debug)]
pub struct Scanner {
    len: u64,
    at: u64,
    boxes: u32,
}

/// Where the `moov` box is: its first byte and its size, header included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoovAt {
    pub start: u64,
    pub size: u64,
}

impl Scanner {
    pub fn new(len: u64) -> Scanner {
        Scanner {
            len,
            at: 0,
            boxes: 0,
        }
    }

    /// The bytes to read next: offset and length (a box header, or fewer at the end).
    pub fn want(&self) -> (u64, usize) {
        (
            self.at,
            HEADER_BYTES.min(self.len - self.at.min(self.len)) as usize,
        )
    }

    /// Takes the bytes [`want`](Self::want) asked for: `Some` once the `moov` is found, `None`
    /// when the next box must be read.
    pub fn feed(&mut self, head: &[u8]) -> Result<Option<MoovAt>, Mp4Error> {
        let first = self.boxes == 0;
        self.boxes += 1;
        if self.at >= self.len || head.len() < 8 {
            return Err(if first {
                Mp4Error::NotMp4
            } else {
                Mp4Error::NoMoov
            });
        }
        if self.boxes > MAX_TOP_BOXES {
            return Err(Mp4Error::Damaged("too many top-level boxes".into()));
        }
        let size32 = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = [head[4], head[5], head[6], head[7]];
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Err(if first {
                Mp4Error::NotMp4
            } else {
                Mp4Error::Damaged("a box has no readable type".into())
            });
        }
        // Files start with `ftyp`; old QuickTime files with one of these.
        if first
            && !matches!(
                &kind,
                b"ftyp" | b"moov" | b"mdat" | b"free" | b"skip" | b"wide" | b"pnot"
            )
        {
            return Err(Mp4Error::NotMp4);
        }
        let (header, size) = match size32 {
            0 => (8, self.len - self.at),
            1 => {
                if head.len() < 16 {
                    return Err(Mp4Error::Truncated);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&head[8..16]);
                (16, u64::from_be_bytes(b))
            }
            n => (8, n),
        };
        if size < header {
            return Err(if first {
                Mp4Error::NotMp4
            } else {
                Mp4Error::Damaged("a box is smaller than its header".into())
            });
        }
        let end = self.at.checked_add(size).ok_or(Mp4Error::Truncated)?;
        match &kind {
            b"moov" => {
                if end > self.len {
                    return Err(Mp4Error::Truncated);
                }
                if size > MAX_MOOV_BYTES {
                    return Err(Mp4Error::MoovTooLarge(size));
                }
                return Ok(Some(MoovAt {
                    start: self.at,
                    size,
                }));
            }
            b"moof" => return Err(Mp4Error::Fragmented),
            _ => {}
        }
        if end >= self.len {
            // The last box, and no moov before it: either it is missing, or the file was cut
            // inside the media data.
            return Err(if end > self.len {
                Mp4Error::Truncated
            } else {
                Mp4Error::NoMoov
            });
        }
        self.at = end;
        Ok(None)
    }
}

/// What kind of track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
}

/// A track's coding, as far as remuxing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    H264,
    Aac,
    /// Anything else, by name (`HEVC or another codec`, `VP9`, `Opus`, …), for messages.
    Other(&'static str),
}

impl Codec {
    pub fn name(&self) -> &'static str {
        match self {
            Codec::H264 => "H.264",
            Codec::Aac => "AAC",
            Codec::Other(n) => n,
        }
    }
}

/// One sample: where it is in the file and when it is decoded and shown (track ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRef {
    pub offset: u64,
    pub size: u32,
    pub dts: i64,
    /// Composition offset: presentation time minus decode time.
    pub cts: i32,
    pub sync: bool,
}

/// One audio or video track.
#[derive(Debug, Clone)]
pub struct Track {
    pub kind: Kind,
    pub codec: Codec,
    /// Ticks per second.
    pub timescale: u32,
    /// Ticks of media the edit list skips at the start (B-frame delay, AAC priming).
    pub skip: i64,
    pub width: u32,
    pub height: u32,
    /// The track header turns or mirrors the picture (phones record upright this way).
    pub transformed: bool,
    /// The decoder configuration: `avcC` for H.264, the `AudioSpecificConfig` for AAC.
    pub config: Bytes,
    pub samples: Vec<SampleRef>,
}

impl Track {
    /// Milliseconds from the first sample's decode time to the end of the last.
    pub fn duration_ms(&self) -> u64 {
        let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) else {
            return 0;
        };
        // The last sample lasts as long as the one before it.
        let step = match self.samples.len() {
            0 | 1 => 0,
            n => last.dts - self.samples[n - 2].dts,
        };
        let ticks = (last.dts - first.dts + step).max(0) as u128;
        (ticks * 1000 / u128::from(self.timescale.max(1))) as u64
    }
}

/// What a movie index says.
#[derive(Debug, Clone)]
pub struct Movie {
    pub tracks: Vec<Track>,
}

impl Movie {
    /// Parses a `moov` box (header included), as [`Scanner`] found it in a file of `file_len`
    /// bytes: every sample must lie inside the file.
    pub fn parse(moov: &[u8], file_len: u64) -> Result<Movie, Mp4Error> {
        let ctx = mp4parse::read_mp4(&mut Cursor::new(moov)).map_err(|e| match e {
            mp4parse::Error::MoovMissing => Mp4Error::NoMoov,
            mp4parse::Error::UnexpectedEOF => Mp4Error::Damaged("it ends early".into()),
            mp4parse::Error::OutOfMemory => Mp4Error::TooManySamples,
            e => Mp4Error::Damaged(short(&format!("{e:?}"))),
        })?;
        if ctx.mvex.is_some() {
            return Err(Mp4Error::Fragmented);
        }
        let mut tracks = Vec::new();
        for t in ctx.tracks.iter() {
            let kind = match t.track_type {
                TrackType::Video => Kind::Video,
                TrackType::Audio => Kind::Audio,
                _ => continue,
            };
            let Some(entry) = t.stsd.as_ref().and_then(|s| s.descriptions.first()) else {
                continue;
            };
            let (codec, config, width, height) = match entry {
                SampleEntry::Video(v) => match (&v.codec_type, &v.codec_specific) {
                    (CodecType::H264, VideoCodecSpecific::AVCConfig(c)) => (
                        Codec::H264,
                        Bytes::copy_from_slice(c),
                        u32::from(v.width),
                        u32::from(v.height),
                    ),
                    (c, _) => (
                        Codec::Other(codec_name(*c)),
                        Bytes::new(),
                        u32::from(v.width),
                        u32::from(v.height),
                    ),
                },
                SampleEntry::Audio(a) => match (&a.codec_type, &a.codec_specific) {
                    (CodecType::AAC, AudioCodecSpecific::ES_Descriptor(es))
                        if !es.decoder_specific_data.is_empty() =>
                    {
                        (
                            Codec::Aac,
                            Bytes::copy_from_slice(&es.decoder_specific_data),
                            0,
                            0,
                        )
                    }
                    (c, _) => (Codec::Other(codec_name(*c)), Bytes::new(), 0, 0),
                },
                SampleEntry::Unknown => (
                    Codec::Other(match kind {
                        Kind::Video => "HEVC or another codec",
                        Kind::Audio => "an unknown audio codec",
                    }),
                    Bytes::new(),
                    0,
                    0,
                ),
            };
            let timescale = t.timescale.map_or(0, |s| s.0);
            let Ok(timescale) = u32::try_from(timescale) else {
                return Err(Mp4Error::Damaged("a track's timescale is too large".into()));
            };
            if timescale == 0 {
                return Err(Mp4Error::Damaged("a track has no timescale".into()));
            }
            let transformed = t.tkhd.as_ref().is_some_and(|h| {
                let m = &h.matrix;
                (m.a, m.b, m.c, m.d) != (0x10000, 0, 0, 0x10000)
            });
            let samples = samples_of(t, file_len)?;
            if samples.is_empty() {
                continue;
            }
            let skip = t
                .media_time
                .map_or(0, |m| i64::try_from(m.0).unwrap_or(i64::MAX));
            tracks.push(Track {
                kind,
                codec,
                timescale,
                skip,
                width,
                height,
                transformed,
                config,
                samples,
            });
        }
        Ok(Movie { tracks })
    }

    /// The first video track.
    pub fn video(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.kind == Kind::Video)
    }

    /// The first audio track.
    pub fn audio(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.kind == Kind::Audio)
    }

    /// The longest track's length.
    pub fn duration_ms(&self) -> u64 {
        self.tracks
            .iter()
            .map(Track::duration_ms)
            .max()
            .unwrap_or(0)
    }
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

fn codec_name(c: CodecType) -> &'static str {
    match c {
        CodecType::H264 => "H.264 without its configuration",
        CodecType::AAC => "AAC without its configuration",
        CodecType::MP3 => "MP3",
        CodecType::FLAC => "FLAC",
        CodecType::Opus => "Opus",
        CodecType::MP4V => "MPEG-4 Part 2",
        CodecType::AV1 => "AV1",
        CodecType::VP9 => "VP9",
        CodecType::VP8 => "VP8",
        CodecType::EncryptedVideo | CodecType::EncryptedAudio => "encrypted media",
        CodecType::LPCM => "PCM",
        CodecType::ALAC => "ALAC",
        CodecType::H263 => "H.263",
        _ => "an unknown codec",
    }
}

/// A track's samples from its tables, each checked to lie inside the file.
fn samples_of(t: &mp4parse::Track, file_len: u64) -> Result<Vec<SampleRef>, Mp4Error> {
    let (Some(stsz), Some(stsc), Some(stco)) = (&t.stsz, &t.stsc, &t.stco) else {
        return Ok(Vec::new());
    };
    if t.stts.is_none() {
        return Ok(Vec::new());
    }
    // Count the samples the chunk tables promise before mp4parse builds the table (it reserves
    // that many entries): a few bytes of `stsc` may promise billions.
    let chunks = stco.offsets.len() as u64;
    let mut promised = 0u64;
    for (i, e) in stsc.samples.iter().enumerate() {
        let next = stsc
            .samples
            .get(i + 1)
            .map_or(chunks + 1, |n| u64::from(n.first_chunk));
        let span = next.saturating_sub(u64::from(e.first_chunk));
        promised = promised.saturating_add(span.saturating_mul(u64::from(e.samples_per_chunk)));
    }
    if promised > MAX_SAMPLES as u64 || stsz.sample_sizes.len() > MAX_SAMPLES {
        return Err(Mp4Error::TooManySamples);
    }
    if stsz.sample_size > 0 && promised.saturating_mul(u64::from(stsz.sample_size)) > file_len {
        return Err(Mp4Error::Truncated);
    }
    let table = create_sample_table(t, CheckedInteger(0))
        .ok_or_else(|| Mp4Error::Damaged("its sample tables do not add up".into()))?;
    if table.len() > MAX_SAMPLES {
        return Err(Mp4Error::TooManySamples);
    }
    let mut out = Vec::with_capacity(table.len());
    for s in table.iter() {
        let (start, end) = (s.start_offset.0, s.end_offset.0);
        if end > file_len {
            return Err(Mp4Error::Truncated);
        }
        let size = u32::try_from(end.saturating_sub(start))
            .map_err(|_| Mp4Error::Damaged("a sample is larger than 4 GiB".into()))?;
        let cts = i32::try_from(s.start_composition.0 - s.start_decode.0)
            .map_err(|_| Mp4Error::Damaged("a composition offset is out of range".into()))?;
        out.push(SampleRef {
            offset: start,
            size,
            dts: s.start_decode.0,
            cts,
            sync: s.sync,
        });
    }
    Ok(out)
}

/// Segmenter settings for a stored video: few, long fragments (no low-latency parts needed),
/// segments of at least four seconds ending at a keyframe, nothing taken for a discontinuity.
pub fn vod_segmenter_config() -> segmenter::Config {
    segmenter::Config {
        part_target_ms: 2000,
        segment_target_ms: 4000,
        window_segments: 2,
        part_segments: 1,
        max_gap_ms: 3_600_000,
    }
}

/// Turns an H.264 (+ AAC) movie's samples into CMAF segments.
///
/// The caller walks [`Remux::order`], reads each sample's bytes and [`push`](Remux::push)es them,
/// draining [`poll_event`](Remux::poll_event) as it goes, then calls [`finish`](Remux::finish)
/// and drains once more.
pub struct Remux {
    seg: Segmenter,
    video: Option<Timing>,
    audio: Option<Timing>,
}

/// How one track's ticks map onto the shared millisecond timeline.
#[derive(Debug, Clone, Copy)]
struct Timing {
    timescale: i128,
    skip: i128,
    /// Milliseconds added to every track so no time is negative.
    base_ms: i128,
}

impl Timing {
    fn ms(&self, dts: i64) -> u64 {
        let v = (i128::from(dts) - self.skip) * 1000 / self.timescale + self.base_ms;
        v.clamp(0, i128::from(u32::MAX) * 1000) as u64
    }
}

/// Why a movie cannot be remuxed as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemuxError {
    #[error("the file has no video track")]
    NoVideo,
    #[error("the video is {0}, not H.264")]
    Video(&'static str),
    #[error("the audio is {0}, not AAC")]
    Audio(&'static str),
    #[error("the video's configuration is damaged ({0})")]
    VideoConfig(String),
    #[error("the audio's configuration is damaged ({0})")]
    AudioConfig(String),
}

impl Remux {
    /// A remuxer for `movie`, or why its tracks need transcoding.
    pub fn new(movie: &Movie) -> Result<Remux, RemuxError> {
        let video = movie.video().ok_or(RemuxError::NoVideo)?;
        if video.codec != Codec::H264 {
            return Err(RemuxError::Video(video.codec.name()));
        }
        let audio = movie.audio();
        if let Some(a) = audio {
            if a.codec != Codec::Aac {
                return Err(RemuxError::Audio(a.codec.name()));
            }
        }
        let vcfg =
            AvcConfig::parse(&video.config).map_err(|e| RemuxError::VideoConfig(e.to_string()))?;
        let acfg = audio
            .map(|a| {
                AacConfig::parse(&a.config).map_err(|e| RemuxError::AudioConfig(e.to_string()))
            })
            .transpose()?;
        let start_ms = |t: &Track| {
            let first = t.samples.first().map_or(0, |s| s.dts);
            (i128::from(first) - i128::from(t.skip)) * 1000 / i128::from(t.timescale)
        };
        let earliest = std::iter::once(video)
            .chain(audio)
            .map(start_ms)
            .min()
            .unwrap_or(0);
        let base_ms = (-earliest).max(0);
        let timing = |t: &Track| Timing {
            timescale: i128::from(t.timescale),
            skip: i128::from(t.skip),
            base_ms,
        };
        let mut seg = Segmenter::new(vod_segmenter_config());
        seg.set_video_config(vcfg);
        if let Some(a) = acfg {
            seg.set_audio_config(a);
        }
        Ok(Remux {
            seg,
            video: Some(timing(video)),
            audio: audio.map(timing),
        })
    }

    /// The order to push samples in: both tracks merged by decode time.
    pub fn order<'m>(&self, movie: &'m Movie) -> Order<'m> {
        Order {
            video: movie.video().map_or(&[][..], |t| &t.samples[..]),
            audio: if self.audio.is_some() {
                movie.audio().map_or(&[][..], |t| &t.samples[..])
            } else {
                &[]
            },
            vt: self.video,
            at: self.audio,
            vi: 0,
            ai: 0,
        }
    }

    /// One sample's bytes.
    pub fn push(&mut self, kind: Kind, sample: &SampleRef, data: Bytes) {
        match (kind, self.video, self.audio) {
            (Kind::Video, Some(t), _) => {
                let dts = t.ms(sample.dts);
                let cts = (i128::from(sample.cts) * 1000 / t.timescale)
                    .clamp(i128::from(i32::MIN), i128::from(i32::MAX))
                    as i32;
                self.seg.push_video(dts, cts, sample.sync, data, dts as i64);
            }
            (Kind::Audio, _, Some(t)) => {
                let dts = t.ms(sample.dts);
                self.seg.push_audio(dts, data, dts as i64);
            }
            _ => {}
        }
    }

    /// No more samples: the last segment is closed.
    pub fn finish(&mut self) {
        self.seg.finish();
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.seg.poll_event()
    }

    /// The init segment of an epoch (after its [`Event::Init`]).
    pub fn init(&self, epoch: u32) -> Option<Bytes> {
        self.seg.init(epoch)
    }

    /// RFC 6381 codecs of the output.
    pub fn codecs(&self) -> String {
        self.seg.codecs()
    }

    /// Picture size from the sequence parameter set.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        self.seg.resolution()
    }
}

/// Samples of both tracks in decode order: `(kind, index into the track's samples)`.
pub struct Order<'m> {
    video: &'m [SampleRef],
    audio: &'m [SampleRef],
    vt: Option<Timing>,
    at: Option<Timing>,
    vi: usize,
    ai: usize,
}

impl Iterator for Order<'_> {
    type Item = (Kind, SampleRef);

    fn next(&mut self) -> Option<(Kind, SampleRef)> {
        let v = self.video.get(self.vi).zip(self.vt);
        let a = self.audio.get(self.ai).zip(self.at);
        let take_video = match (v, a) {
            (Some((vs, vt)), Some((as_, at))) => vt.ms(vs.dts) <= at.ms(as_.dts),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if take_video {
            self.vi += 1;
            Some((Kind::Video, *v?.0))
        } else {
            self.ai += 1;
            Some((Kind::Audio, *a?.0))
        }
    }
}

/// Runs the whole pipeline on a file held in memory (the fuzz target, the tests): finds and
/// parses the movie and remuxes it, returning the movie and everything the segmenter reported.
pub fn remux_in_memory(file: &[u8]) -> Result<(Movie, Vec<Event>), String> {
    let len = file.len() as u64;
    let mut scan = Scanner::new(len);
    let moov = loop {
        let (at, n) = scan.want();
        let head = &file[at as usize..at as usize + n];
        if let Some(m) = scan.feed(head).map_err(|e| e.to_string())? {
            break m;
        }
    };
    let body = &file[moov.start as usize..(moov.start + moov.size) as usize];
    let movie = Movie::parse(body, len).map_err(|e| e.to_string())?;
    let mut remux = Remux::new(&movie).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    let order: Vec<_> = remux.order(&movie).collect();
    for (kind, s) in order {
        let data =
            Bytes::copy_from_slice(&file[s.offset as usize..s.offset as usize + s.size as usize]);
        remux.push(kind, &s, data);
        while let Some(e) = remux.poll_event() {
            events.push(e);
        }
    }
    remux.finish();
    while let Some(e) = remux.poll_event() {
        events.push(e);
    }
    Ok((movie, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        let path = format!("{}/../../fuzz/corpus/mp4/{name}", crate::source_dir());
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Segment durations (ms) and the init segments' count of a remuxed seed.
    fn remuxed(name: &str) -> (Movie, Vec<f64>, usize) {
        let (movie, events) =
            remux_in_memory(&seed(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut durations = Vec::new();
        let mut inits = 0;
        for e in events {
            match e {
                Event::Init { .. } => inits += 1,
                Event::Segment {
                    duration_ms, data, ..
                } => {
                    assert_eq!(
                        &data[4..8],
                        b"moof",
                        "{name}: a segment starts with a fragment"
                    );
                    durations.push(duration_ms);
                }
                Event::Part { .. } => {}
            }
        }
        (movie, durations, inits)
    }

    #[test]
    fn h264_aac_files_remux_into_segments_of_about_four_seconds() {
        // The same nine seconds as MP4 with the index at the end, at the start, and as QuickTime.
        for name in ["h264-aac.mp4", "h264-aac-faststart.mp4", "h264-aac.mov"] {
            let (movie, durations, inits) = remuxed(name);
            let v = movie.video().unwrap();
            assert_eq!(
                (v.codec.clone(), v.width, v.height),
                (Codec::H264, 96, 64),
                "{name}"
            );
            assert_eq!(movie.audio().unwrap().codec, Codec::Aac, "{name}");
            assert_eq!(inits, 1, "{name}");
            // Keyframes every second: cuts at 4 s, 8 s, and the rest.
            assert_eq!(durations.len(), 3, "{name}: {durations:?}");
            for d in &durations[..2] {
                assert!((3900.0..=4100.0).contains(d), "{name}: {durations:?}");
            }
            let total: f64 = durations.iter().sum();
            assert!((8800.0..=9200.0).contains(&total), "{name}: {total}");
            assert!((8900..=9200).contains(&movie.duration_ms()), "{name}");
        }
    }

    #[test]
    fn b_frames_keep_their_composition_offsets_and_the_edit_list_delay() {
        let (movie, durations, _) = remuxed("bframes-noaudio.mp4");
        let v = movie.video().unwrap();
        assert!(movie.audio().is_none());
        assert!(v.samples.iter().any(|s| s.cts > 0), "B-frames reorder");
        assert!(v.skip > 0, "the edit list skips the reorder delay");
        assert!(v.samples[0].sync);
        // Shorter than a segment: one segment, the whole three seconds.
        assert_eq!(durations.len(), 1);
        assert!((2900.0..=3100.0).contains(&durations[0]), "{durations:?}");
    }

    #[test]
    fn broken_and_foreign_files_are_named() {
        let err = |name: &str| remux_in_memory(&seed(name)).unwrap_err();
        assert_eq!(err("fragmented.mp4"), Mp4Error::Fragmented.to_string());
        assert_eq!(
            err("truncated-faststart.mp4"),
            Mp4Error::Truncated.to_string()
        );
        assert_eq!(
            err("truncated-moov-at-end.mp4"),
            Mp4Error::Truncated.to_string()
        );
        assert_eq!(err("text.mp4"), Mp4Error::NotMp4.to_string());
        assert_eq!(err("zip.mp4"), Mp4Error::NotMp4.to_string());
        assert_eq!(err("zero-size-box"), Mp4Error::NotMp4.to_string());
        assert_eq!(err("huge-size"), Mp4Error::Truncated.to_string());
        assert_eq!(err("empty-moov"), RemuxError::NoVideo.to_string());
        // A `stsc` promising two billion samples a chunk is refused before anything is built.
        assert_eq!(err("huge-stsc.mp4"), Mp4Error::TooManySamples.to_string());
        assert_eq!(
            remux_in_memory(&[]).unwrap_err(),
            Mp4Error::NotMp4.to_string()
        );
    }

    #[test]
    fn the_scanner_walks_headers_only() {
        let file = seed("h264-aac.mp4");
        let mut scan = Scanner::new(file.len() as u64);
        let mut reads = 0;
        let moov = loop {
            let (at, n) = scan.want();
            assert!(n as u64 <= HEADER_BYTES);
            reads += 1;
            if let Some(m) = scan.feed(&file[at as usize..at as usize + n]).unwrap() {
                break m;
            }
        };
        // ftyp, free, mdat, then the moov at the end.
        assert_eq!(reads, 4);
        assert_eq!(moov.start + moov.size, file.len() as u64);
        assert_eq!(
            &file[moov.start as usize + 4..moov.start as usize + 8],
            b"moov"
        );
    }
}
