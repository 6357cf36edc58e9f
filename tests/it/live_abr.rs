//! Adaptive bitrate: the ffmpeg ladder, its failure, and moim without ffmpeg.

use std::process::Command;

use crate::helpers::{eventually, spawn_with, spawn_with_env, Backend, TestApp};
use crate::live::{
    attr, decode_errors, dir_of, ffprobe, get_bytes, get_text, have_ffmpeg, live_state,
    media_playlist, publish, stream_key, wait_exit,
};

backend_tests!(
    transcoded_ladder_and_its_failure,
    transcoding_without_ffmpeg_passes_through,
);

/// Variant lines of a multivariant playlist: (STREAM-INF attributes, URI).
async fn variants(app: &TestApp, slug: &str) -> Vec<(String, String)> {
    let (st, text, _) = get_text(app, &format!("/live/{slug}/index.m3u8")).await;
    assert_eq!(st, 200, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            l.strip_prefix("#EXT-X-STREAM-INF:")
                .map(|a| (a.to_string(), lines[i + 1].to_string()))
        })
        .collect()
}

async fn transcoded_ladder_and_its_failure(backend: Backend) {
    if !have_ffmpeg() {
        return;
    }
    let app = spawn_with(
        backend,
        &[
            "--transcode",
            "true",
            "--transcode-ladder",
            "480:900,120:150",
        ],
    )
    .await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let (_, url) = stream_key(&app, &owner, "stage").await;
    let mut ffmpeg = publish(&url, 30);

    // The source (320×240) and the one rung below it; 480p would be an upscale and is skipped.
    let list = eventually(25, || async {
        let (st, _, _) = get_text(&app, "/live/stage/index.m3u8").await;
        if st != 200 {
            return None;
        }
        let v = variants(&app, "stage").await;
        (v.len() == 2).then_some(v)
    })
    .await;
    assert!(list[0].0.contains("RESOLUTION=320x240") && list[0].0.contains("NAME=\"source\""));
    assert!(list[1].0.contains("RESOLUTION=160x120"), "{list:?}");
    assert!(list[1].0.contains("NAME=\"120p\""), "{list:?}");
    assert!(list.iter().all(|(a, _)| !a.contains("480")), "{list:?}");
    let rung = format!("/live/stage/{}", list[1].1);
    let rung_base = dir_of(&rung).to_string();

    // The rung decodes as 160×120 H.264 with audio, and its segments start on the source's
    // keyframes (both one second).
    let text = eventually(20, || async {
        let (_, text, _) = get_text(&app, &rung).await;
        (attr(&text, "#EXTINF:").len() >= 2).then_some(text)
    })
    .await;
    for d in attr(&text, "#EXTINF:") {
        let d: f64 = d.trim_end_matches(',').parse().unwrap();
        assert!((0.9..=1.1).contains(&d), "rung segment of {d} s: {text}");
    }
    let seg_uri = text.lines().rfind(|l| l.starts_with('s')).unwrap();
    let (_, init) = get_bytes(&app, &format!("{rung_base}/init0.mp4")).await;
    let (st, seg) = get_bytes(&app, &format!("{rung_base}/{seg_uri}")).await;
    assert_eq!(st, 200);
    let file = app.data_dir.join("rung.mp4");
    std::fs::write(&file, [init, seg].concat()).unwrap();
    let probe = ffprobe(&file);
    let video = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap()
        .clone();
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(160), Some(120))
    );
    assert_eq!(decode_errors(file.to_str().unwrap()), "");

    // The transcoder dies: the rung goes, the source goes on, the room stays live.
    let port = app
        .rtmp
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/live");
    let pattern = format!("rtmp://127.0.0.1:{port}/live/tx_");
    let st = Command::new("pkill")
        .args(["-KILL", "-f", &pattern])
        .status()
        .unwrap();
    assert!(st.success(), "the transcoder runs as an ffmpeg child");
    eventually(10, || async {
        (variants(&app, "stage").await.len() == 1).then_some(())
    })
    .await;
    let (st, _, _) = get_text(&app, &rung).await;
    assert_eq!(st, 404, "a failed rung is not served");
    let playlist = format!("/live/stage/{}", variants(&app, "stage").await[0].1);
    let before = attr(&get_text(&app, &playlist).await.1, "#EXTINF:").len();
    eventually(10, || async {
        let (_, text, _) = get_text(&app, &playlist).await;
        let media_seq: u64 = attr(&text, "#EXT-X-MEDIA-SEQUENCE:")[0].parse().unwrap();
        (media_seq as usize + attr(&text, "#EXTINF:").len() > before + 1).then_some(())
    })
    .await;
    assert_eq!(live_state(&app, "stage").await["live"], true);
    ffmpeg.kill().unwrap();
    ffmpeg.wait().unwrap();

    // A new broadcast starts a new transcoder; when the broadcast ends, its child is gone.
    let mut again = publish(&url, 3);
    eventually(25, || async {
        (variants(&app, "stage").await.len() == 2).then_some(())
    })
    .await;
    assert!(wait_exit(&mut again, 30).await.success());
    eventually(10, || async {
        let running = Command::new("pgrep")
            .args(["-f", &pattern])
            .output()
            .unwrap();
        (!running.status.success()).then_some(())
    })
    .await;
}

async fn transcoding_without_ffmpeg_passes_through(backend: Backend) {
    if !have_ffmpeg() {
        return;
    }
    // moim itself finds no ffmpeg (the publisher still uses the real one).
    let empty = std::env::temp_dir().join("moim-no-ffmpeg-here");
    std::fs::create_dir_all(&empty).unwrap();
    let path = empty.to_str().unwrap();
    let app = spawn_with_env(backend, &["--transcode", "true"], &[("PATH", path)]).await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let (_, url) = stream_key(&app, &owner, "stage").await;
    let mut ffmpeg = publish(&url, 4);
    eventually(15, || async {
        (live_state(&app, "stage").await["live"] == true).then_some(())
    })
    .await;
    let playlist = media_playlist(&app, "stage").await;
    eventually(15, || async {
        let (_, text, _) = get_text(&app, &playlist).await;
        (attr(&text, "#EXTINF:").len() >= 2).then_some(())
    })
    .await;
    assert_eq!(variants(&app, "stage").await.len(), 1, "source only");
    assert!(wait_exit(&mut ffmpeg, 30).await.success());
    // The recording still lands, without a thumbnail (that needs ffmpeg too).
    let video = eventually(30, || async {
        let (_, body) = owner.client.get("/api/v1/videos").await;
        let v = body["videos"][0].clone();
        (v["status"] == "ready").then_some(v)
    })
    .await;
    assert!(video["thumbnail_url"].is_null());
    assert_eq!(
        decode_errors(&app.url(video["hls_url"].as_str().unwrap())),
        ""
    );
}
