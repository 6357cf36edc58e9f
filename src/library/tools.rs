//! The ffmpeg and ffprobe children: reading files moim cannot remux itself, transcoding them to
//! a ladder of H.264/AAC renditions, and pictures (a thumbnail, a storyboard sprite) taken from
//! keyframes only.
//!
//! Both programs are optional. Without them H.264/AAC MP4 is still remuxed and other files are
//! refused with a reason. Every child is killed when its future is dropped (timeout, shutdown)
//! and its output is bounded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::config::Step;

/// Largest JPEG taken from ffmpeg (a 10×10 sprite of 160-pixel tiles is far smaller).
const MAX_JPEG: u64 = 8 << 20;
/// ffprobe output read at most.
const MAX_PROBE_JSON: u64 = 1 << 20;
/// Longest a picture may take; it is best effort.
const PICTURE_TIMEOUT: Duration = Duration::from_secs(120);
/// Tiles in a storyboard, at most (10 × 10).
const MAX_TILES: u32 = 100;
/// What ffmpeg may read an upload as: files only (no network, no other protocols), and only
/// container formats a video comes in. Playlist and concat formats (HLS, ffconcat) could name
/// other files on this machine, and their contents would end up in the video.
const INPUT_LIMITS: [&str; 4] = [
    "-protocol_whitelist",
    "file",
    "-format_whitelist",
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,ogg,asf,dv",
];

/// Width of one storyboard tile, pixels.
pub const TILE_WIDTH: u32 = 160;

/// Where ffmpeg and ffprobe are, if installed.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    ffmpeg: Option<String>,
    ffprobe: Option<String>,
}

/// What ffprobe says of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    pub duration_s: f64,
    /// The picture as shown (after any rotation the file asks for).
    pub width: u32,
    pub height: u32,
    pub video_codec: String,
    pub has_audio: bool,
}

/// A sprite of pictures at a fixed interval, and how it is cut.
#[derive(Debug, Clone)]
pub struct Storyboard {
    pub jpeg: Vec<u8>,
    pub interval_s: f64,
    pub count: u32,
    pub columns: u32,
    pub tile_width: u32,
    pub tile_height: u32,
}

impl Tools {
    /// Looks for both programs (each must answer `-version`); either missing means neither.
    pub async fn detect(ffmpeg: &str, ffprobe: &str) -> Tools {
        async fn answers(program: &str) -> bool {
            let run = Command::new(program)
                .arg("-version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status();
            matches!(
                tokio::time::timeout(Duration::from_secs(10), run).await,
                Ok(Ok(s)) if s.success()
            )
        }
        if answers(ffmpeg).await && answers(ffprobe).await {
            Tools {
                ffmpeg: Some(ffmpeg.to_string()),
                ffprobe: Some(ffprobe.to_string()),
            }
        } else {
            Tools::default()
        }
    }

    /// Whether files other than H.264/AAC MP4 can be taken.
    pub fn available(&self) -> bool {
        self.ffmpeg.is_some() && self.ffprobe.is_some()
    }

    /// Reads a file's streams with ffprobe; `Err` says why it is not a video.
    pub async fn probe(&self, path: &Path) -> Result<Info, String> {
        let program = self.ffprobe.as_deref().ok_or("ffprobe is not installed")?;
        let mut child = Command::new(program)
            .args([
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_format",
                "-show_streams",
            ])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("ffprobe could not start: {e}"))?;
        let mut out = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = stdout.take(MAX_PROBE_JSON).read_to_end(&mut out).await;
        }
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("it is not a video file ffmpeg can read".into());
        }
        parse_probe(&out)
    }

    /// Transcodes `input` into one H.264/AAC MP4 per rung in `out_dir` (`r{height}.mp4`), in
    /// one ffmpeg run (one decode), keyframes every two seconds in every rung so their segments
    /// line up. `progress` hears the fraction done. `Err` carries ffmpeg's complaint.
    pub async fn transcode(
        &self,
        input: &Path,
        info: &Info,
        rungs: &[Step],
        out_dir: &Path,
        mut progress: impl FnMut(f64),
    ) -> Result<Vec<PathBuf>, String> {
        let program = self.ffmpeg.as_deref().ok_or("ffmpeg is not installed")?;
        let mut cmd = Command::new(program);
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
            .args(["-progress", "pipe:1", "-nostats"])
            .args(INPUT_LIMITS)
            .arg("-i")
            .arg(input);
        let n = rungs.len();
        let mut graph = if n == 1 {
            String::from("[0:v:0]null[s0];")
        } else {
            let outs: String = (0..n).map(|i| format!("[s{i}]")).collect();
            format!("[0:v:0]split={n}{outs};")
        };
        for (i, r) in rungs.iter().enumerate() {
            graph.push_str(&format!(
                "[s{i}]scale=-2:{h}:flags=bicubic,format=yuv420p[o{i}]{sep}",
                h = r.height,
                sep = if i + 1 < n { ";" } else { "" }
            ));
        }
        cmd.arg("-filter_complex").arg(graph);
        let mut outputs = Vec::new();
        for (i, r) in rungs.iter().enumerate() {
            let out = out_dir.join(format!("r{}.mp4", r.height));
            cmd.args(["-map", &format!("[o{i}]")]);
            if info.has_audio {
                cmd.args(["-map", "0:a:0"]);
            }
            cmd.args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"])
                .args(["-maxrate", &format!("{}k", r.kbps)])
                .args(["-bufsize", &format!("{}k", r.kbps * 2)])
                .args(["-profile:v", "high", "-sc_threshold", "0"])
                .args(["-force_key_frames", "expr:gte(t,n_forced*2)"])
                .args(["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000"])
                .args(["-f", "mp4"])
                .arg(&out);
            outputs.push(out);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("ffmpeg could not start: {e}"))?;
        let stderr = child.stderr.take();
        let complaint = tokio::spawn(async move {
            let mut text = Vec::new();
            if let Some(s) = stderr {
                let _ = s.take(64 * 1024).read_to_end(&mut text).await;
            }
            last_line(&text)
        });
        if let Some(stdout) = child.stdout.take() {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(us) = line.strip_prefix("out_time_us=") {
                    if let (Ok(us), true) = (us.trim().parse::<f64>(), info.duration_s > 0.0) {
                        progress((us / 1e6 / info.duration_s).clamp(0.0, 1.0));
                    }
                }
            }
        }
        let status = child.wait().await.map_err(|e| e.to_string())?;
        let complaint = complaint.await.unwrap_or_default();
        if !status.success() {
            return Err(if complaint.is_empty() {
                "ffmpeg could not transcode it".into()
            } else {
                format!("ffmpeg could not transcode it ({complaint})")
            });
        }
        Ok(outputs)
    }

    /// A 640-pixel-wide JPEG of the keyframe at or before `at_s`.
    pub async fn thumbnail(&self, input: &Path, at_s: f64) -> Option<Vec<u8>> {
        let program = self.ffmpeg.as_deref()?;
        let mut cmd = Command::new(program);
        cmd.args(["-v", "error", "-nostdin"])
            .args(["-ss", &format!("{at_s:.3}")])
            .args(INPUT_LIMITS)
            .args(["-skip_frame", "nokey", "-i"])
            .arg(input)
            .args(["-frames:v", "1", "-vf", "scale=640:-2", "-q:v", "4"])
            .args(["-f", "image2", "-c:v", "mjpeg", "pipe:1"]);
        jpeg_of(cmd).await
    }

    /// Pictures every few seconds (at most [`MAX_TILES`]), from keyframes only, in one sprite.
    pub async fn storyboard(&self, input: &Path, duration_s: f64) -> Option<Storyboard> {
        let program = self.ffmpeg.as_deref()?;
        if duration_s <= 0.0 {
            return None;
        }
        let interval_s = (duration_s / f64::from(MAX_TILES)).ceil().max(1.0);
        let count = ((duration_s / interval_s).ceil() as u32).clamp(1, MAX_TILES);
        let columns = count.min(10);
        let rows = count.div_ceil(columns);
        let mut cmd = Command::new(program);
        cmd.args(["-v", "error", "-nostdin"])
            .args(INPUT_LIMITS)
            .args(["-skip_frame", "nokey", "-i"])
            .arg(input)
            .args([
                "-vf",
                &format!("fps=1/{interval_s},scale={TILE_WIDTH}:-2,tile={columns}x{rows}"),
            ])
            .args(["-frames:v", "1", "-q:v", "5"])
            .args(["-f", "image2", "-c:v", "mjpeg", "pipe:1"]);
        let jpeg = jpeg_of(cmd).await?;
        let (w, h) = jpeg_size(&jpeg)?;
        Some(Storyboard {
            interval_s,
            count,
            columns,
            tile_width: w / columns,
            tile_height: h / rows,
            jpeg,
        })
    }
}

/// Runs a command that writes one JPEG to stdout.
async fn jpeg_of(mut cmd: Command) -> Option<Vec<u8>> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let work = async {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_JPEG + 1).read_to_end(&mut out).await;
        let ok = child.wait().await.ok()?.success();
        (ok && out.starts_with(&[0xff, 0xd8]) && out.len() as u64 <= MAX_JPEG).then_some(out)
    };
    tokio::time::timeout(PICTURE_TIMEOUT, work)
        .await
        .ok()
        .flatten()
}

/// The last non-empty line of a program's complaint, trimmed to a readable length.
fn last_line(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

/// The streams ffprobe listed: the first video stream's size (turned if the file says so), its
/// codec, whether there is audio, and the duration.
pub fn parse_probe(json: &[u8]) -> Result<Info, String> {
    let v: Value = serde_json::from_slice(json).map_err(|_| "ffprobe said nothing readable")?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| {
            s["codec_type"] == "video"
                // Cover art in audio files is a one-picture "video" stream.
                && s["disposition"]["attached_pic"].as_i64().unwrap_or(0) == 0
        })
        .ok_or("it has no video")?;
    let has_audio = streams.iter().any(|s| s["codec_type"] == "audio");
    let (mut w, mut h) = (
        video["width"].as_u64().unwrap_or(0) as u32,
        video["height"].as_u64().unwrap_or(0) as u32,
    );
    if w == 0 || h == 0 {
        return Err("its video has no picture size".into());
    }
    let rotation = video["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|d| d["rotation"].as_f64()))
        .or_else(|| {
            video["tags"]["rotate"]
                .as_str()
                .and_then(|r| r.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    if (rotation.abs() - 90.0).abs() < 1.0 || (rotation.abs() - 270.0).abs() < 1.0 {
        std::mem::swap(&mut w, &mut h);
    }
    let num = |x: &Value| {
        x.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .or_else(|| x.as_f64())
    };
    let duration_s = num(&v["format"]["duration"])
        .or_else(|| num(&video["duration"]))
        .filter(|d| d.is_finite() && *d > 0.0)
        .unwrap_or(0.0);
    Ok(Info {
        duration_s,
        width: w,
        height: h,
        video_codec: video["codec_name"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        has_audio,
    })
}

/// The rungs of `ladder` a source `height` pixels tall gets: every rung at or below it, or, for
/// a source smaller than the smallest rung, one rung at its own height (made even).
pub fn pick_rungs(ladder: &[Step], height: u32) -> Vec<Step> {
    let mut rungs: Vec<Step> = ladder
        .iter()
        .copied()
        .filter(|s| s.height <= height)
        .collect();
    if rungs.is_empty() {
        let kbps = ladder.iter().map(|s| s.kbps).min().unwrap_or(800);
        rungs.push(Step {
            height: (height.max(2) / 2) * 2,
            kbps,
        });
    }
    rungs.sort_by_key(|s| std::cmp::Reverse(s.height));
    rungs.dedup_by_key(|s| s.height);
    rungs
}

/// Width and height from a JPEG's start-of-frame marker.
pub fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 9 < jpeg.len() {
        if jpeg[i] != 0xff {
            return None;
        }
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        // SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            let h = u32::from(u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]));
            let w = u32::from(u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]));
            return (w > 0 && h > 0).then_some((w, h));
        }
        i += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_stop_at_the_source() {
        let ladder: Vec<Step> =
            crate::config::parse_ladder("1080:5000,720:2800,480:1400,360:800").unwrap();
        let heights = |h| {
            pick_rungs(&ladder, h)
                .iter()
                .map(|s| s.height)
                .collect::<Vec<_>>()
        };
        assert_eq!(heights(2160), [1080, 720, 480, 360]);
        assert_eq!(heights(720), [720, 480, 360]);
        assert_eq!(heights(500), [480, 360]);
        assert_eq!(heights(241), [240]);
        assert_eq!(pick_rungs(&ladder, 241)[0].kbps, 800);
    }

    #[test]
    fn probe_output_is_read_with_rotation_and_cover_art() {
        let json = br#"{"streams":[
            {"codec_type":"video","codec_name":"mjpeg","width":600,"height":600,"disposition":{"attached_pic":1}},
            {"codec_type":"video","codec_name":"hevc","width":1920,"height":1080,
             "side_data_list":[{"rotation":-90}],"disposition":{"attached_pic":0}},
            {"codec_type":"audio","codec_name":"aac"}],
            "format":{"duration":"12.500000"}}"#;
        let info = parse_probe(json).unwrap();
        assert_eq!(
            info,
            Info {
                duration_s: 12.5,
                width: 1080,
                height: 1920,
                video_codec: "hevc".into(),
                has_audio: true
            }
        );
        let audio_only = br#"{"streams":[{"codec_type":"audio"}],"format":{"duration":"3"}}"#;
        assert_eq!(parse_probe(audio_only).unwrap_err(), "it has no video");
        assert!(parse_probe(b"not json").is_err());
        assert!(parse_probe(br#"{"streams":[{"codec_type":"video"}]}"#).is_err());
    }

    #[test]
    fn jpeg_sizes_come_from_the_frame_header() {
        // SOI, an APP0 segment, then SOF0 for 320×180.
        let mut j = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00];
        j.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0xb4, 0x01, 0x40, 0x03]);
        j.extend_from_slice(&[0; 12]);
        assert_eq!(jpeg_size(&j), Some((320, 180)));
        assert_eq!(jpeg_size(&j[..12]), None);
        assert_eq!(jpeg_size(b"\xff\xd8garbage"), None);
    }

    #[test]
    fn complaints_are_one_clean_line() {
        assert_eq!(
            last_line(b"first\n\x1b[31mbad \x07thing\n\n"),
            "[31mbad thing"
        );
        assert_eq!(last_line(b""), "");
    }
}
