//! LL-HLS playlists (RFC 8216bis with Apple's low-latency extensions), rendered as text.
//!
//! This module only writes tags; which segments and parts exist is the
//! [`segmenter`](crate::segmenter)'s business. URIs are relative to the playlist, so one
//! rendering works wherever the server mounts it.

use std::fmt::Write;

/// One part of a segment, as the playlist lists it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartRef {
    /// Seconds.
    pub duration: f64,
    /// Starts with a keyframe (`INDEPENDENT=YES`).
    pub independent: bool,
}

/// One segment in the playlist window.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRef<'a> {
    pub msn: u64,
    /// Seconds; for the segment still being cut, the parts so far.
    pub duration: f64,
    /// `EXT-X-DISCONTINUITY` before this segment.
    pub discontinuity: bool,
    /// Which init segment (`EXT-X-MAP`) its fragments need.
    pub init_epoch: u32,
    /// Wall-clock time of its first sample, unix milliseconds (`EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time_ms: i64,
    /// Listed for the newest segments only (older parts are dropped from playlists and memory).
    pub parts: &'a [PartRef],
    /// Still being cut: only its parts are listed, not the segment itself.
    pub open: bool,
}

/// A live or finished media playlist.
#[derive(Debug, Clone)]
pub struct MediaPlaylist<'a> {
    pub target_duration: u32,
    /// Seconds; `None` renders a plain (non-low-latency) playlist.
    pub part_target: Option<f64>,
    /// MSN of the first segment listed.
    pub media_sequence: u64,
    /// Discontinuities that have left the window.
    pub discontinuity_sequence: u64,
    pub segments: &'a [SegmentRef<'a>],
    /// The next part the server will produce `(msn, index)`, for `EXT-X-PRELOAD-HINT`.
    pub preload_hint: Option<(u64, u32)>,
    /// `EXT-X-ENDLIST`: the broadcast ended.
    pub ended: bool,
    /// `EXT-X-PLAYLIST-TYPE:VOD` (recordings).
    pub vod: bool,
}

/// URI of the init segment for an epoch.
pub fn init_uri(epoch: u32) -> String {
    format!("init{epoch}.mp4")
}

/// URI of a whole segment.
pub fn segment_uri(msn: u64) -> String {
    format!("s{msn}.m4s")
}

/// URI of one part.
pub fn part_uri(msn: u64, index: u32) -> String {
    format!("p{msn}.{index}.m4s")
}

impl MediaPlaylist<'_> {
    /// The playlist text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256 + self.segments.len() * 160);
        out.push_str("#EXTM3U\n");
        // Version 9 for the LL-HLS tags; 7 is enough for fMP4 without them.
        let version = if self.part_target.is_some() { 9 } else { 7 };
        let _ = writeln!(out, "#EXT-X-VERSION:{version}");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        if let Some(part_target) = self.part_target {
            // Blocking reload and a hold-back of three parts, as Apple recommends.
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}",
                part_target * 3.0
            );
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={part_target:.3}");
        }
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        if self.vod {
            out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        let mut epoch = None;
        for seg in self.segments {
            if seg.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if epoch != Some(seg.init_epoch) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", init_uri(seg.init_epoch));
                epoch = Some(seg.init_epoch);
            }
            // A finished video keeps no wall clock: no date rather than 1970's.
            if !self.vod {
                let _ = writeln!(
                    out,
                    "#EXT-X-PROGRAM-DATE-TIME:{}",
                    iso8601_ms(seg.program_date_time_ms)
                );
            }
            if self.part_target.is_some() {
                for (i, part) in seg.parts.iter().enumerate() {
                    let _ = write!(
                        out,
                        "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
                        part.duration,
                        part_uri(seg.msn, i as u32)
                    );
                    if part.independent {
                        out.push_str(",INDEPENDENT=YES");
                    }
                    out.push('\n');
                }
            }
            if !seg.open {
                let _ = writeln!(out, "#EXTINF:{:.5},", seg.duration);
                let _ = writeln!(out, "{}", segment_uri(seg.msn));
            }
        }
        if self.part_target.is_some() && !self.ended {
            if let Some((msn, index)) = self.preload_hint {
                let _ = writeln!(
                    out,
                    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                    part_uri(msn, index)
                );
            }
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// One segment of a finished video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VodSegment {
    pub msn: u64,
    pub duration_ms: f64,
    pub init_epoch: u32,
    /// `EXT-X-DISCONTINUITY` before it (never before the first).
    pub discontinuity: bool,
}

/// The playlist of a finished video (a recording, an upload): every segment, then `ENDLIST`.
pub fn vod(segments: &[VodSegment]) -> String {
    let refs: Vec<SegmentRef<'_>> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| SegmentRef {
            msn: s.msn,
            duration: s.duration_ms / 1000.0,
            discontinuity: s.discontinuity && i > 0,
            init_epoch: s.init_epoch,
            program_date_time_ms: 0,
            parts: &[],
            open: false,
        })
        .collect();
    let max = segments.iter().map(|s| s.duration_ms).fold(0.0, f64::max);
    MediaPlaylist {
        target_duration: (max / 1000.0).round().max(1.0) as u32,
        part_target: None,
        media_sequence: segments.first().map_or(0, |s| s.msn),
        discontinuity_sequence: 0,
        segments: &refs,
        preload_hint: None,
        ended: true,
        vod: true,
    }
    .render()
}

/// One rendition in a multivariant playlist.
#[derive(Debug, Clone)]
pub struct Variant<'a> {
    /// Relative URI of its media playlist.
    pub uri: &'a str,
    /// Peak bits per second.
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: &'a str,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    /// Shown in quality pickers, e.g. `source` or `720p`.
    pub name: &'a str,
}

/// The multivariant playlist listing every rendition of a broadcast.
pub fn multivariant(variants: &[Variant<'_>]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth.max(1));
        if let Some(avg) = v.average_bandwidth {
            let _ = write!(out, ",AVERAGE-BANDWIDTH={avg}");
        }
        let _ = write!(out, ",CODECS=\"{}\"", v.codecs);
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(fps) = v.frame_rate {
            let _ = write!(out, ",FRAME-RATE={fps:.3}");
        }
        // NAME is not a standard STREAM-INF attribute; players ignore it, moim's picker reads it.
        let _ = writeln!(out, ",NAME=\"{}\"", v.name.replace('"', ""));
        let _ = writeln!(out, "{}", v.uri);
    }
    out
}

/// `2026-11-22T21:34:22.123Z` from unix milliseconds (proleptic Gregorian, UTC).
pub fn iso8601_ms(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's civil calendar algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_795_383_262_123), "2026-11-22T21:34:22.123Z");
        assert_eq!(iso8601_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    const P: PartRef = PartRef {
        duration: 0.334,
        independent: false,
    };
    const PI: PartRef = PartRef {
        duration: 0.333,
        independent: true,
    };

    /// The golden LL-HLS playlist: two whole segments (the older without its parts), one open
    /// segment with two parts, and the preload hint for the third.
    #[test]
    fn low_latency_golden() {
        let parts = [PI, P, P];
        let open = [PI, P];
        let segs = [
            SegmentRef {
                msn: 7,
                duration: 1.0,
                discontinuity: false,
                init_epoch: 0,
                program_date_time_ms: 1_795_383_262_000,
                parts: &[],
                open: false,
            },
            SegmentRef {
                msn: 8,
                duration: 1.001,
                discontinuity: true,
                init_epoch: 1,
                program_date_time_ms: 1_795_383_263_000,
                parts: &parts,
                open: false,
            },
            SegmentRef {
                msn: 9,
                duration: 0.667,
                discontinuity: false,
                init_epoch: 1,
                program_date_time_ms: 1_795_383_264_001,
                parts: &open,
                open: true,
            },
        ];
        let text = MediaPlaylist {
            target_duration: 1,
            part_target: Some(0.334),
            media_sequence: 7,
            discontinuity_sequence: 2,
            segments: &segs,
            preload_hint: Some((9, 2)),
            ended: false,
            vod: false,
        }
        .render();
        let golden = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002
#EXT-X-PART-INF:PART-TARGET=0.334
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T21:34:22.000Z
#EXTINF:1.00000,
s7.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T21:34:23.000Z
#EXT-X-PART:DURATION=0.33300,URI=\"p8.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33400,URI=\"p8.1.m4s\"
#EXT-X-PART:DURATION=0.33400,URI=\"p8.2.m4s\"
#EXTINF:1.00100,
s8.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T21:34:24.001Z
#EXT-X-PART:DURATION=0.33300,URI=\"p9.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33400,URI=\"p9.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p9.2.m4s\"
";
        assert_eq!(text, golden);
    }

    #[test]
    fn vod_has_no_parts_and_ends() {
        let parts = [PI];
        let segs = [SegmentRef {
            msn: 0,
            duration: 2.5,
            discontinuity: false,
            init_epoch: 0,
            program_date_time_ms: 0,
            parts: &parts,
            open: false,
        }];
        let text = MediaPlaylist {
            target_duration: 3,
            part_target: None,
            media_sequence: 0,
            discontinuity_sequence: 0,
            segments: &segs,
            preload_hint: Some((1, 0)),
            ended: true,
            vod: true,
        }
        .render();
        assert!(text.contains("#EXT-X-VERSION:7\n"));
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(!text.contains("EXT-X-PART"));
        assert!(!text.contains("PRELOAD-HINT"));
        assert!(!text.contains("SERVER-CONTROL"));
        assert!(text.ends_with("#EXTINF:2.50000,\ns0.m4s\n#EXT-X-ENDLIST\n"));
        assert!(!text.contains("DISCONTINUITY-SEQUENCE"));
    }

    #[test]
    fn multivariant_lists_renditions() {
        let text = multivariant(&[
            Variant {
                uri: "src/index.m3u8",
                bandwidth: 3_000_000,
                average_bandwidth: Some(2_500_000),
                codecs: "avc1.64001f,mp4a.40.2",
                resolution: Some((1280, 720)),
                frame_rate: Some(30.0),
                name: "source",
            },
            Variant {
                uri: "360p/index.m3u8",
                bandwidth: 0,
                average_bandwidth: None,
                codecs: "mp4a.40.2",
                resolution: None,
                frame_rate: None,
                name: "a\"udio",
            },
        ]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,NAME=\"source\"\n\
             src/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"mp4a.40.2\",NAME=\"audio\"\n\
             360p/index.m3u8\n"
        );
    }
}
