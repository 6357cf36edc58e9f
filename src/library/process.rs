//! Processing one uploaded video: keep the original, decide from a probe whether it can be
//! remuxed (H.264 with AAC or no audio, in MP4 or QuickTime: a pure-Rust probe, so this works
//! without ffmpeg) or must be transcoded (everything else, when ffmpeg is installed), write CMAF
//! HLS, and take a thumbnail and a storyboard from keyframes.
//!
//! A video's files are blobs under `videos/{public_id}/`: `original`, `index.m3u8` (a media
//! playlist for a remux; a multivariant one over `{height}p/index.m3u8` for a transcode),
//! `init{epoch}.mp4` and `s{n}.m4s` (per rendition), `thumbnail.jpg`, `storyboard.jpg` and
//! `storyboard.vtt`. Blobs are read in bounded windows and written one segment at a time:
//! nothing holds a whole file in memory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use moim_media::mp4::{self, Kind, Movie, Mp4Error, Remux, Scanner};
use moim_media::playlist::{self, Variant, VodSegment};
use moim_media::segmenter::Event as SegEvent;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::tools::{self, Storyboard};
use super::Library;
use crate::config::Step;
use crate::storage::blobs::{self, BlobError, Blobs};
use crate::storage::now_ms;
use crate::storage::videos::{self, Processed, Video};

/// Bytes read from the original at once, per track.
const WINDOW: u64 = 4 << 20;
/// Largest single sample accepted (a keyframe of 8K video is a few MiB).
const MAX_SAMPLE: u32 = 64 << 20;
/// Fraction of the progress bar the transcode takes (the rest: remuxing its output, pictures).
const TRANSCODE_SHARE: f64 = 0.85;

/// Why processing stopped.
pub enum Failure {
    /// The file cannot become a video; the words are for its owner.
    File(String),
    /// Storage or the database failed; the job is tried again.
    Server(anyhow::Error),
}

impl From<BlobError> for Failure {
    fn from(e: BlobError) -> Failure {
        Failure::Server(anyhow::Error::new(e))
    }
}

impl From<crate::storage::DbError> for Failure {
    fn from(e: crate::storage::DbError) -> Failure {
        Failure::Server(anyhow::Error::new(e))
    }
}

impl From<crate::domain::Error> for Failure {
    fn from(e: crate::domain::Error) -> Failure {
        Failure::Server(anyhow::anyhow!("{e}"))
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Server(anyhow::Error::new(e))
    }
}

fn refuse(why: impl Into<String>) -> Failure {
    Failure::File(why.into())
}

/// Makes the video playable; its pictures come after ([`pictures`]), so waiting for them does
/// not delay playback.
pub async fn run(lib: &Library, video: &Video) -> Result<(Processed, Later), Failure> {
    let inner = &lib.0;
    let dir = format!("videos/{}", video.public_id);
    let original_key = format!("{dir}/original");
    let size = keep_original(lib, video, &original_key).await?;
    let original = Source::Blob {
        blobs: inner.blobs.clone(),
        key: original_key.clone(),
        len: size,
    };
    let mut progress = Progress::new(lib, video);
    let mut out = Output {
        blobs: inner.blobs.clone(),
        dir: dir.clone(),
        bytes: size as i64,
    };
    let max_duration_s = inner
        .plans
        .plan_of_member(video.owner_id)
        .await?
        .and_then(|p| p.max_duration_s);
    let check_duration = |seconds: f64| match max_duration_s {
        Some(max) if seconds > max as f64 + 0.5 => Err(refuse(format!(
            "videos on your plan are at most {} long; this one is {}",
            clock(max as f64),
            clock(seconds)
        ))),
        _ => Ok(()),
    };

    let probe = probe_mp4(&original).await?;
    let ffmpeg = inner.tools.available();
    let remux = match &probe {
        Ok(movie) => Remux::new(movie).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    // A file cut short is refused whoever could read it: a video would silently end early.
    if let Err(e @ (Mp4Error::Truncated | Mp4Error::NoMoov)) = &probe {
        return Err(refuse(format!("{e}; upload the whole file")));
    }
    let turned = matches!(&probe, Ok(m) if m.video().is_some_and(|v| v.transformed));
    let mut done = Processed::default();
    let local_original: Option<LocalFile>;
    let mut remuxed = None;
    match (probe, remux) {
        (Ok(movie), Ok(remux)) if !(turned && ffmpeg) => {
            check_duration(movie.duration_ms() as f64 / 1000.0)?;
            let r = remux_to(
                &original,
                &movie,
                remux,
                &mut out,
                "",
                &mut progress,
                0.0,
                0.9,
            )
            .await?;
            done.duration_ms = r.duration_ms;
            (done.width, done.height) = (r.width, r.height);
            local_original = if ffmpeg {
                Some(LocalFile::of(lib, &original_key, &video.public_id).await?)
            } else {
                None
            };
            remuxed = Some(r);
        }
        (_, Err(why)) if !ffmpeg => {
            return Err(
                match sniff(&original.read(0, SNIFF_LEN as u64).await.unwrap_or_default()) {
                    Some(kind) => not_a_video(kind, false),
                    None => refuse(format!("{why}; {MP4_ONLY}")),
                },
            );
        }
        _ => {
            // What is plainly no video never reaches ffmpeg.
            let head = original.read(0, SNIFF_LEN as u64).await?;
            if let Some(kind) = sniff(&head).filter(|k| !is_container(k)) {
                return Err(not_a_video(kind, true));
            }
            let local = LocalFile::of(lib, &original_key, &video.public_id).await?;
            let info = inner
                .tools
                .probe(&local.path)
                .await
                .map_err(|why| match sniff(&head) {
                    Some(kind) => not_a_video(kind, true),
                    None => refuse(format!("this is not a video: {why}")),
                })?;
            check_duration(info.duration_s)?;
            let work = inner.work_dir.join(format!("{}-tx", video.public_id));
            let _ = tokio::fs::remove_dir_all(&work).await;
            tokio::fs::create_dir_all(&work).await?;
            let _clean = RemoveDir(work.clone());
            let rungs = tools::pick_rungs(&inner.cfg.video_ladder, info.height);
            let files = inner
                .tools
                .transcode(&local.path, &info, &rungs, &work, |f| {
                    progress.set(f * TRANSCODE_SHARE)
                })
                .await
                .map_err(refuse)?;
            let mut variants = Vec::new();
            let share = (0.95 - TRANSCODE_SHARE) / files.len() as f64;
            for (i, (file, rung)) in files.iter().zip(&rungs).enumerate() {
                let (src, movie, remux) = ffmpeg_rendition(file).await?;
                let from = TRANSCODE_SHARE + share * i as f64;
                let name = format!("{}p", rung.height);
                let r = remux_to(
                    &src,
                    &movie,
                    remux,
                    &mut out,
                    &format!("{name}/"),
                    &mut progress,
                    from,
                    from + share,
                )
                .await?;
                if i == 0 {
                    done.duration_ms = r.duration_ms;
                    (done.width, done.height) = (r.width, r.height);
                }
                variants.push((name, r));
            }
            let list: Vec<Variant<'_>> = variants
                .iter()
                .map(|(name, r)| Variant {
                    uri: &r.playlist,
                    bandwidth: r.peak_bps,
                    average_bandwidth: Some(r.average_bps),
                    codecs: &r.codecs,
                    resolution: Some((r.width as u32, r.height as u32)),
                    frame_rate: None,
                    name,
                })
                .collect();
            out.put("index.m3u8", playlist::multivariant(&list).into())
                .await?;
            local_original = Some(local);
        }
    }

    done.stored_bytes = out.bytes;
    let later = Later {
        local: local_original,
        out,
        seconds: done.duration_ms as f64 / 1000.0,
        remuxed,
    };
    Ok((done, later))
}

/// An MP4 ffmpeg wrote for one rung, read for the remuxer. It is ours, so a file it cannot
/// read is the server's failure, not the upload's.
async fn ffmpeg_rendition(file: &std::path::Path) -> Result<(Source, Movie, Remux), Failure> {
    let len = tokio::fs::metadata(file).await?.len();
    let src = Source::File {
        path: file.to_path_buf(),
        len,
    };
    let movie = probe_mp4(&src).await?.map_err(|e| {
        Failure::Server(anyhow::anyhow!("ffmpeg wrote an unreadable rendition: {e}"))
    })?;
    let remux = Remux::new(&movie)
        .map_err(|e| Failure::Server(anyhow::anyhow!("ffmpeg wrote an unusable rendition: {e}")))?;
    Ok((src, movie, remux))
}

/// What is left once the video plays: its pictures, and lower renditions of a remuxed one.
pub struct Later {
    local: Option<LocalFile>,
    out: Output,
    seconds: f64,
    /// The one rendition a remuxed video plays from.
    remuxed: Option<Rendition>,
}

impl Later {
    /// The bytes the video keeps now.
    pub fn stored_bytes(&self) -> i64 {
        self.out.bytes
    }
}

/// The thumbnail and the storyboard (keyframes only; nothing without ffmpeg): whether each was
/// made.
pub async fn pictures(lib: &Library, later: &mut Later) -> Result<(bool, bool), Failure> {
    let Later {
        local,
        out,
        seconds,
        ..
    } = later;
    let seconds = *seconds;
    let (mut thumb, mut board) = (false, false);
    if let Some(local) = &local {
        let at = (seconds / 4.0).min(30.0);
        if let Some(jpeg) = lib.0.tools.thumbnail(&local.path, at).await {
            out.put("thumbnail.jpg", jpeg.into()).await?;
            thumb = true;
        }
        if let Some(b) = lib.0.tools.storyboard(&local.path, seconds).await {
            out.put("storyboard.vtt", storyboard_vtt(&b, seconds).into())
                .await?;
            out.put("storyboard.jpg", b.jpeg.into()).await?;
            board = true;
        }
    }
    Ok((thumb, board))
}

/// Deletes rendition folders (`{name}/…`) of the video that its `index.m3u8` does not list:
/// what an attempt at [`lower_renditions`] that failed, timed out or crashed left behind (the
/// playlist that lists them is written last). Returns how many blobs went.
pub async fn drop_unlisted_renditions(lib: &Library, public_id: &str) -> Result<usize, Failure> {
    let dir = format!("videos/{public_id}/");
    let index = match lib.0.blobs.get(&format!("{dir}index.m3u8"), None).await {
        Ok(b) => String::from_utf8_lossy(&b.bytes().await?).into_owned(),
        Err(BlobError::NotFound) => String::new(),
        Err(e) => return Err(e.into()),
    };
    let listed = |prefix: &str| index.lines().any(|l| l.starts_with(prefix));
    let mut gone = 0;
    for key in lib.0.blobs.list(&dir).await? {
        let rest = &key[dir.len()..];
        let unlisted = match rest.split_once('/') {
            Some((folder, _)) => !listed(&format!("{folder}/")),
            // The source's copy, written just before the playlist that would list it.
            None => rest == SOURCE_PLAYLIST && !listed(SOURCE_PLAYLIST),
        };
        if unlisted {
            lib.0.blobs.delete(&key).await?;
            gone += 1;
        }
    }
    Ok(gone)
}

/// The bytes the video's blobs take, counted from the store.
pub async fn stored_bytes(lib: &Library, public_id: &str) -> Result<i64, Failure> {
    let mut total = 0;
    for key in lib.0.blobs.list(&format!("videos/{public_id}/")).await? {
        match lib.0.blobs.get(&key, Some(0..0)).await {
            Ok(b) => total += b.size as i64,
            Err(BlobError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(total)
}

/// The rendition a remuxed video played from, renamed when lower ones join it: the
/// multivariant playlist takes its name (`index.m3u8`, the video's `hls_url`).
const SOURCE_PLAYLIST: &str = "source.m3u8";

/// Gives a remuxed video the ladder's rungs below its height (one ffmpeg run, after it plays),
/// then turns `index.m3u8` into a multivariant playlist over the source and them. Whether it
/// did; nothing to do without ffmpeg, for a transcoded video, or below the lowest rung.
pub async fn lower_renditions(
    lib: &Library,
    video: &Video,
    later: &mut Later,
) -> Result<bool, Failure> {
    let inner = &lib.0;
    let (Some(local), Some(source)) = (&later.local, &later.remuxed) else {
        return Ok(false);
    };
    if !inner.cfg.video_remux_ladder {
        return Ok(false);
    }
    let mut rungs: Vec<Step> = inner
        .cfg
        .video_ladder
        .0
        .iter()
        .copied()
        .filter(|s| i64::from(s.height) < source.height)
        .collect();
    rungs.sort_by_key(|s| std::cmp::Reverse(s.height));
    rungs.dedup_by_key(|s| s.height);
    if rungs.is_empty() {
        return Ok(false);
    }
    let info = inner.tools.probe(&local.path).await.map_err(refuse)?;
    let work = inner.work_dir.join(format!("{}-rungs", video.public_id));
    let _ = tokio::fs::remove_dir_all(&work).await;
    tokio::fs::create_dir_all(&work).await?;
    let _clean = RemoveDir(work.clone());
    let files = inner
        .tools
        .transcode(&local.path, &info, &rungs, &work, |_| {})
        .await
        .map_err(refuse)?;
    let mut made = Vec::new();
    // Progress is not shown again: the video is ready and plays meanwhile.
    let mut quiet = Progress::silent(lib, video);
    for (file, rung) in files.iter().zip(&rungs) {
        let (src, movie, remux) = ffmpeg_rendition(file).await?;
        let name = format!("{}p", rung.height);
        let r = remux_to(
            &src,
            &movie,
            remux,
            &mut later.out,
            &format!("{name}/"),
            &mut quiet,
            0.0,
            1.0,
        )
        .await?;
        made.push((name, r));
    }
    // The source's playlist under its new name first, then the one that points at it.
    let source_list = inner
        .blobs
        .get(&format!("{}/{}", later.out.dir, source.playlist), None)
        .await?
        .bytes()
        .await?;
    later.out.put(SOURCE_PLAYLIST, source_list.clone()).await?;
    let mut list = vec![Variant {
        uri: SOURCE_PLAYLIST,
        bandwidth: source.peak_bps,
        average_bandwidth: Some(source.average_bps),
        codecs: &source.codecs,
        resolution: Some((source.width as u32, source.height as u32)),
        frame_rate: None,
        name: "source",
    }];
    list.extend(made.iter().map(|(name, r)| Variant {
        uri: &r.playlist,
        bandwidth: r.peak_bps,
        average_bandwidth: Some(r.average_bps),
        codecs: &r.codecs,
        resolution: Some((r.width as u32, r.height as u32)),
        frame_rate: None,
        name,
    }));
    let index = playlist::multivariant(&list);
    // It replaces the source's playlist, whose bytes now count under the new name.
    later.out.bytes -= source_list.len() as i64;
    later.out.put(&source.playlist, index.into()).await?;
    Ok(true)
}

/// Moves the finished upload into the video's `original` blob (once: a retry finds it there),
/// then lets the upload go. Returns the original's size.
async fn keep_original(lib: &Library, video: &Video, key: &str) -> Result<u64, Failure> {
    let inner = &lib.0;
    match inner.blobs.get(key, Some(0..0)).await {
        Ok(b) if b.size == video.original_bytes as u64 => {
            if let Some(id) = &video.upload_id {
                inner.uploads.discard(id).await?;
            }
            return Ok(b.size);
        }
        Ok(_) | Err(BlobError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    let upload_id = video.upload_id.as_deref().ok_or_else(|| {
        Failure::Server(anyhow::anyhow!("video {} has no upload", video.public_id))
    })?;
    let upload = inner
        .uploads
        .finished(upload_id)
        .await?
        .ok_or_else(|| refuse("the uploaded file is gone; upload it again"))?;
    let mut body = inner.uploads.read(&upload).await?;
    // What is plainly no video is refused before a byte of it is copied.
    let mut first = Vec::new();
    let mut head = Vec::with_capacity(SNIFF_LEN);
    while head.len() < SNIFF_LEN {
        let Some(chunk) = body.next().await else {
            break;
        };
        let chunk = chunk?;
        head.extend_from_slice(&chunk[..chunk.len().min(SNIFF_LEN - head.len())]);
        first.push(Ok(chunk));
    }
    if let Some(kind) = sniff(&head).filter(|k| !is_container(k)) {
        return Err(not_a_video(kind, inner.tools.available()));
    }
    let body = futures_util::stream::iter(first).chain(body).boxed();
    let size = inner.blobs.put(key, body).await?;
    if size != upload.length as u64 {
        return Err(Failure::Server(anyhow::anyhow!(
            "copied {size} of {} bytes of the upload",
            upload.length
        )));
    }
    inner.uploads.discard(upload_id).await?;
    Ok(size)
}

/// Where bytes are read from: a blob, or a file ffmpeg wrote.
enum Source {
    Blob {
        blobs: Arc<dyn Blobs>,
        key: String,
        len: u64,
    },
    File {
        path: PathBuf,
        len: u64,
    },
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::Blob { len, .. } | Source::File { len, .. } => *len,
        }
    }

    /// Up to `n` bytes at `at` (fewer at the end).
    async fn read(&self, at: u64, n: u64) -> Result<Bytes, Failure> {
        let end = at.saturating_add(n).min(self.len());
        if at >= end {
            return Ok(Bytes::new());
        }
        match self {
            Source::Blob { blobs, key, .. } => {
                Ok(blobs.get(key, Some(at..end)).await?.bytes().await?)
            }
            Source::File { path, .. } => {
                let mut f = tokio::fs::File::open(path).await?;
                f.seek(std::io::SeekFrom::Start(at)).await?;
                let mut buf = vec![0u8; (end - at) as usize];
                f.read_exact(&mut buf).await?;
                Ok(Bytes::from(buf))
            }
        }
    }
}

/// The movie index of an MP4/QuickTime source: the outer `Err` is storage failing, the inner
/// one what is wrong with the file.
async fn probe_mp4(src: &Source) -> Result<Result<Movie, Mp4Error>, Failure> {
    let mut scan = Scanner::new(src.len());
    let moov = loop {
        let (at, n) = scan.want();
        let head = src.read(at, n as u64).await?;
        match scan.feed(&head) {
            Ok(Some(m)) => break m,
            Ok(None) => {}
            Err(e) => return Ok(Err(e)),
        }
    };
    let body = src.read(moov.start, moov.size).await?;
    Ok(Movie::parse(&body, src.len()))
}

/// One track's read window over the source.
#[derive(Default)]
struct Window {
    start: u64,
    data: Bytes,
}

impl Window {
    async fn sample(&mut self, src: &Source, at: u64, size: u32) -> Result<Bytes, Failure> {
        let end = at + u64::from(size);
        if at < self.start || end > self.start + self.data.len() as u64 {
            self.data = src.read(at, WINDOW.max(u64::from(size))).await?;
            self.start = at;
            if (self.data.len() as u64) < u64::from(size) {
                return Err(refuse("the file is cut short; upload the whole file"));
            }
        }
        let from = (at - self.start) as usize;
        Ok(self.data.slice(from..from + size as usize))
    }
}

/// One rendition written.
struct Rendition {
    duration_ms: i64,
    width: i64,
    height: i64,
    peak_bps: u64,
    average_bps: u64,
    codecs: String,
    /// Its playlist, relative to the video's directory.
    playlist: String,
}

/// Remuxes `movie` from `src` into segments under `prefix` of the video's directory, moving
/// progress from `from` to `to`.
#[allow(clippy::too_many_arguments)]
async fn remux_to(
    src: &Source,
    movie: &Movie,
    mut remux: Remux,
    out: &mut Output,
    prefix: &str,
    progress: &mut Progress<'_>,
    from: f64,
    to: f64,
) -> Result<Rendition, Failure> {
    let total = movie
        .tracks
        .iter()
        .map(|t| t.samples.len())
        .sum::<usize>()
        .max(1);
    let (mut video_window, mut audio_window) = (Window::default(), Window::default());
    let mut segments: Vec<VodSegment> = Vec::new();
    let mut peak_bps = 0u64;
    let mut media_bytes = 0u64;
    let order: Vec<(Kind, mp4::SampleRef)> = remux.order(movie).collect();
    for (n, (kind, s)) in order.iter().enumerate() {
        if s.size > MAX_SAMPLE {
            return Err(refuse(
                "a frame in the file is impossibly large; it is damaged",
            ));
        }
        let window = match kind {
            Kind::Video => &mut video_window,
            Kind::Audio => &mut audio_window,
        };
        let data = window.sample(src, s.offset, s.size).await?;
        remux.push(*kind, s, data);
        write_events(
            &mut remux,
            out,
            prefix,
            &mut segments,
            &mut peak_bps,
            &mut media_bytes,
        )
        .await?;
        if n % 256 == 0 {
            progress.set(from + (to - from) * n as f64 / total as f64);
        }
    }
    remux.finish();
    write_events(
        &mut remux,
        out,
        prefix,
        &mut segments,
        &mut peak_bps,
        &mut media_bytes,
    )
    .await?;
    if segments.is_empty() {
        return Err(refuse("the file holds no playable video (no keyframe)"));
    }
    out.put(
        &format!("{prefix}index.m3u8"),
        playlist::vod(&segments).into(),
    )
    .await?;
    let duration_ms: f64 = segments.iter().map(|s| s.duration_ms).sum();
    let (w, h) = remux.resolution().unwrap_or((0, 0));
    Ok(Rendition {
        duration_ms: duration_ms.round() as i64,
        width: i64::from(w),
        height: i64::from(h),
        peak_bps,
        average_bps: (media_bytes as f64 * 8000.0 / duration_ms.max(1.0)) as u64,
        codecs: remux.codecs(),
        playlist: format!("{prefix}index.m3u8"),
    })
}

async fn write_events(
    remux: &mut Remux,
    out: &mut Output,
    prefix: &str,
    segments: &mut Vec<VodSegment>,
    peak_bps: &mut u64,
    media_bytes: &mut u64,
) -> Result<(), Failure> {
    while let Some(e) = remux.poll_event() {
        match e {
            SegEvent::Init { epoch } => {
                if let Some(init) = remux.init(epoch) {
                    out.put(&format!("{prefix}{}", playlist::init_uri(epoch)), init)
                        .await?;
                }
            }
            SegEvent::Segment {
                msn,
                duration_ms,
                init_epoch,
                discontinuity,
                data,
            } => {
                let bps = (data.len() as f64 * 8000.0 / duration_ms.max(1.0)) as u64;
                *peak_bps = (*peak_bps).max(bps);
                *media_bytes += data.len() as u64;
                out.put(&format!("{prefix}{}", playlist::segment_uri(msn)), data)
                    .await?;
                segments.push(VodSegment {
                    msn,
                    duration_ms,
                    init_epoch,
                    discontinuity,
                });
            }
            SegEvent::Part { .. } => {}
        }
    }
    Ok(())
}

/// Writes a video's files and counts their bytes.
struct Output {
    blobs: Arc<dyn Blobs>,
    dir: String,
    bytes: i64,
}

impl Output {
    async fn put(&mut self, name: &str, data: Bytes) -> Result<(), Failure> {
        let n = self
            .blobs
            .put(&format!("{}/{name}", self.dir), blobs::once(data))
            .await?;
        self.bytes += n as i64;
        Ok(())
    }
}

/// Progress written to the video (and told to its owner) now and then, not on every sample.
struct Progress<'a> {
    lib: &'a Library,
    video: &'a Video,
    shown: f64,
    at: Instant,
}

impl<'a> Progress<'a> {
    fn new(lib: &'a Library, video: &'a Video) -> Progress<'a> {
        Progress {
            lib,
            video,
            shown: 0.0,
            at: Instant::now(),
        }
    }

    /// Progress that is never shown (work on a video that is already ready).
    fn silent(lib: &'a Library, video: &'a Video) -> Progress<'a> {
        Progress {
            shown: f64::INFINITY,
            ..Progress::new(lib, video)
        }
    }

    /// Notes the fraction done; stored when it moved a percent and half a second passed.
    fn set(&mut self, fraction: f64) {
        if fraction < self.shown + 0.01 || self.at.elapsed().as_millis() < 500 {
            return;
        }
        self.shown = fraction;
        self.at = Instant::now();
        let lib = self.lib.clone();
        let (id, public_id) = (self.video.id, self.video.public_id.clone());
        let per_mille = (fraction * 1000.0) as i64;
        // Off the processing path: a slow database must not slow the remux.
        tokio::spawn(async move {
            if videos::set_progress(&lib.0.db.pool, id, per_mille.max(1), 0, now_ms())
                .await
                .is_ok()
            {
                lib.announce(&public_id).await;
            }
        });
    }
}

/// The original as a file ffmpeg can open: the blob itself when the store keeps files, else a
/// copy in the work directory, removed when dropped.
struct LocalFile {
    path: PathBuf,
    copy: bool,
}

impl LocalFile {
    async fn of(lib: &Library, key: &str, public_id: &str) -> Result<LocalFile, Failure> {
        let inner = &lib.0;
        if let Some(path) = inner.blobs.local_path(key) {
            return Ok(LocalFile { path, copy: false });
        }
        tokio::fs::create_dir_all(&inner.work_dir).await?;
        let path = inner.work_dir.join(format!("{public_id}-original"));
        let mut body = inner.blobs.get(key, None).await?.body;
        let mut f = tokio::fs::File::create(&path).await?;
        let file = LocalFile { path, copy: true };
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = body.next().await {
            f.write_all(&chunk?).await?;
        }
        f.flush().await?;
        Ok(file)
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if self.copy {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes a scratch directory when dropped.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes of a file [`sniff`] looks at.
const SNIFF_LEN: usize = 64;

/// What a server without ffmpeg tells the owner of a file it cannot take.
const MP4_ONLY: &str = "this server takes only H.264/AAC MP4 files (ffmpeg is not installed)";

/// The refusal of a file [`sniff`] recognised as `kind`.
fn not_a_video(kind: &str, ffmpeg: bool) -> Failure {
    if ffmpeg {
        refuse(format!("this is {kind}, not a video"))
    } else {
        refuse(format!("this is {kind}, not an MP4 video; {MP4_ONLY}"))
    }
}

/// What a file is, from its first bytes, when it is clearly something else than MP4.
fn sniff(head: &[u8]) -> Option<&'static str> {
    let starts = |p: &[u8]| head.starts_with(p);
    if starts(&[0x1a, 0x45, 0xdf, 0xa3]) {
        Some("a Matroska or WebM file")
    } else if starts(b"RIFF") && head.get(8..12) == Some(b"AVI ") {
        Some("an AVI file")
    } else if starts(b"PK\x03\x04") {
        Some("a zip archive")
    } else if starts(b"%PDF") {
        Some("a PDF document")
    } else if starts(&[0xff, 0xd8, 0xff]) || starts(b"\x89PNG") || starts(b"GIF8") {
        Some("a picture")
    } else if starts(b"ID3") || starts(b"OggS") || starts(b"fLaC") {
        Some("an audio file")
    } else if !head.is_empty()
        && std::str::from_utf8(head)
            .is_ok_and(|t| t.chars().all(|c| !c.is_control() || c.is_whitespace()))
    {
        Some("a text file")
    } else {
        None
    }
}

/// Whether a kind [`sniff`] names is a video container (ffmpeg's to read).
fn is_container(kind: &str) -> bool {
    matches!(kind, "a Matroska or WebM file" | "an AVI file")
}

/// WebVTT cues over the storyboard sprite: each names its tile by `#xywh=`.
fn storyboard_vtt(b: &Storyboard, duration_s: f64) -> String {
    let mut out = String::from("WEBVTT\n");
    for i in 0..b.count {
        let start = f64::from(i) * b.interval_s;
        if start >= duration_s && i > 0 {
            break;
        }
        let end = (start + b.interval_s).min(duration_s.max(start + 0.001));
        let (x, y) = (
            (i % b.columns) * b.tile_width,
            (i / b.columns) * b.tile_height,
        );
        out.push_str(&format!(
            "\n{} --> {}\nstoryboard.jpg#xywh={x},{y},{},{}\n",
            vtt_time(start),
            vtt_time(end),
            b.tile_width,
            b.tile_height
        ));
    }
    out
}

fn vtt_time(s: f64) -> String {
    let ms = (s * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// `1:02:03` or `2:03`.
fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_names_common_impostors() {
        assert_eq!(sniff(b"hello\nworld"), Some("a text file"));
        assert_eq!(sniff(b"PK\x03\x04\x14\x00"), Some("a zip archive"));
        assert_eq!(
            sniff(&[0x1a, 0x45, 0xdf, 0xa3, 1]),
            Some("a Matroska or WebM file")
        );
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI LIST"), Some("an AVI file"));
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypmp42"), None);
        assert_eq!(sniff(b""), None);
        assert!(is_container("an AVI file") && !is_container("a text file"));
    }

    #[test]
    fn storyboard_cues_walk_the_sprite() {
        let b = Storyboard {
            jpeg: vec![],
            interval_s: 2.0,
            count: 12,
            columns: 10,
            tile_width: 160,
            tile_height: 90,
        };
        let vtt = storyboard_vtt(&b, 23.0);
        assert!(vtt.starts_with(
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n"
        ));
        assert!(vtt.contains("00:00:18.000 --> 00:00:20.000\nstoryboard.jpg#xywh=1440,0,160,90\n"));
        assert!(vtt.contains("00:00:20.000 --> 00:00:22.000\nstoryboard.jpg#xywh=0,90,160,90\n"));
        assert!(vtt.ends_with("00:00:22.000 --> 00:00:23.000\nstoryboard.jpg#xywh=160,90,160,90\n"));
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(65.4), "1:05");
    }
}
