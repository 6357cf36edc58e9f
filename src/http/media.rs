//! Media files over HTTP, shared by live windows and stored videos: the file names a client may
//! ask for (parsed strictly, so no path tricks reach storage) and the response shape.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// Content type of HLS playlists.
pub const PLAYLIST: &str = "application/vnd.apple.mpegurl";

/// A file name in a broadcast's or recording's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    Playlist,
    Init(u32),
    Segment(u64),
    Part(u64, u32),
    Thumbnail,
    /// A stored video's source rendition once lower ones were made beside it.
    SourcePlaylist,
    /// A stored video's storyboard sprite and its WebVTT cues.
    Storyboard,
    StoryboardCues,
}

pub fn parse_file(name: &str) -> Option<File> {
    if name == "index.m3u8" {
        return Some(File::Playlist);
    }
    match name {
        "thumbnail.jpg" => return Some(File::Thumbnail),
        "source.m3u8" => return Some(File::SourcePlaylist),
        "storyboard.jpg" => return Some(File::Storyboard),
        "storyboard.vtt" => return Some(File::StoryboardCues),
        _ => {}
    }
    fn num(s: &str) -> Option<&str> {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
    }
    if let Some(rest) = name
        .strip_prefix("init")
        .and_then(|r| r.strip_suffix(".mp4"))
    {
        return num(rest)?.parse().ok().map(File::Init);
    }
    if let Some(rest) = name.strip_prefix('s').and_then(|r| r.strip_suffix(".m4s")) {
        return num(rest)?.parse().ok().map(File::Segment);
    }
    if let Some(rest) = name.strip_prefix('p').and_then(|r| r.strip_suffix(".m4s")) {
        let (msn, idx) = rest.split_once('.')?;
        return Some(File::Part(num(msn)?.parse().ok()?, num(idx)?.parse().ok()?));
    }
    None
}

pub fn media(body: Bytes, content_type: &'static str, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        body,
    )
        .into_response()
}

/// A rendition's directory in a stored video: `720p`.
pub fn is_rendition(name: &str) -> bool {
    name.strip_suffix('p').is_some_and(|h| {
        (2..=4).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_digit()) && !h.starts_with('0')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(parse_file("index.m3u8"), Some(File::Playlist));
        assert_eq!(parse_file("init0.mp4"), Some(File::Init(0)));
        assert_eq!(parse_file("s12.m4s"), Some(File::Segment(12)));
        assert_eq!(parse_file("p12.3.m4s"), Some(File::Part(12, 3)));
        assert_eq!(parse_file("storyboard.vtt"), Some(File::StoryboardCues));
        assert_eq!(parse_file("source.m3u8"), Some(File::SourcePlaylist));
        assert!(is_rendition("720p") && is_rendition("1080p") && is_rendition("90p"));
        for bad in ["p", "0p", "720", "12345p", "72op", "../p", "720p/"] {
            assert!(!is_rendition(bad), "{bad}");
        }
        for bad in [
            "",
            "s.m4s",
            "s-1.m4s",
            "p1.m4s",
            "p1..m4s",
            "p1.2.3.m4s",
            "init.mp4",
            "../x",
            "s1.m4s/",
            "s99999999999999999999.m4s",
            "s+1.m4s",
            "index.m3u",
        ] {
            assert_eq!(parse_file(bad), None, "{bad}");
        }
    }
}
