//! Live broadcasting end to end: a real ffmpeg publishes over RTMP, the test reads the LL-HLS
//! output over HTTP, decodes it with ffprobe/ffmpeg, and watches the room's WebSocket.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{eventually, require_all, spawn_with, Backend, TestApp, User};

backend_tests!(
    broadcast_end_to_end,
    refused_publishers,
    publisher_reconnects_within_grace,
    stalled_publisher_ends_after_grace,
    limits_refuse_extra_broadcasts_and_fast_publishers,
    shutdown_ends_broadcasts_and_keeps_the_recording,
    librtmp_publisher_like_obs,
);

/// True if ffmpeg and ffprobe are installed; in CI (`MOIM_REQUIRE_ALL=1`) their absence fails.
pub(crate) fn have_ffmpeg() -> bool {
    let ok = ["ffmpeg", "ffprobe"].iter().all(|b| {
        Command::new(b)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(
            !require_all(),
            "ffmpeg/ffprobe missing but MOIM_REQUIRE_ALL=1"
        );
        eprintln!("SKIPPED (live): install ffmpeg to run the live broadcasting tests");
    }
    ok
}

/// An ffmpeg publishing a 320×240 test pattern with a 440 Hz tone for `seconds`, in real time,
/// one keyframe a second.
pub(crate) fn publish(url: &str, seconds: u32) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        ])
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg")
}

pub(crate) async fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ffmpeg did not exit within {secs} s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes again right after a publisher dropped. The server may not have seen the drop yet
/// (then it refuses: one publisher per room, and a refused encoder exits at once), so a refused
/// attempt is retried, a few times.
async fn republish(url: &str, secs: u32) -> Child {
    for _ in 0..5 {
        let mut p = publish(url, secs);
        let started = Instant::now();
        let refused = loop {
            match p.try_wait().unwrap() {
                Some(st) => break !st.success(),
                None if started.elapsed() > Duration::from_millis(1500) => break false,
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        if !refused {
            return p;
        }
    }
    panic!("the publisher was refused five times after its drop");
}

pub(crate) async fn stream_key(app: &TestApp, owner: &User, slug: &str) -> (String, String) {
    let (st, body) = owner
        .client
        .get(&format!("/api/v1/rooms/{slug}/stream-key"))
        .await;
    assert_eq!(st, 200, "{body}");
    let key = body["stream_key"].as_str().unwrap().to_string();
    let rtmp_url = body["rtmp_url"].as_str().unwrap().to_string();
    assert_eq!(
        rtmp_url, app.rtmp,
        "the URL shown to streamers is where moim listens"
    );
    let url = format!("{rtmp_url}/{key}");
    (key, url)
}

pub(crate) async fn get_text(
    app: &TestApp,
    path: &str,
) -> (u16, String, reqwest::header::HeaderMap) {
    let resp = reqwest::get(app.url(path)).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.text().await.unwrap(), headers)
}

pub(crate) async fn get_bytes(app: &TestApp, path: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::get(app.url(path)).await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// The media playlist path of a live room (from its multivariant playlist).
pub(crate) async fn media_playlist(app: &TestApp, slug: &str) -> String {
    let (st, text, headers) = get_text(app, &format!("/live/{slug}/index.m3u8")).await;
    assert_eq!(st, 200, "{text}");
    assert_eq!(headers["content-type"], "application/vnd.apple.mpegurl");
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    let inf = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .expect("a variant");
    assert!(
        inf.contains("CODECS=\"avc1.") && inf.contains(",mp4a.40.2\""),
        "{inf}"
    );
    let uri = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .expect("a variant URI");
    format!("/live/{slug}/{uri}")
}

/// Tag values of a playlist, e.g. `attr(&text, "#EXT-X-TARGETDURATION:")`.
pub(crate) fn attr<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect()
}

pub(crate) fn dir_of(path: &str) -> &str {
    &path[..path.rfind('/').unwrap()]
}

/// Runs ffprobe on a file and returns its streams as JSON.
pub(crate) fn ffprobe(path: &std::path::Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Decodes a file fully; returns ffmpeg's error output (empty when clean).
pub(crate) fn decode_errors(input: &str) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", input, "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) async fn live_state(app: &TestApp, slug: &str) -> Value {
    let (st, body) = app.anon().get(&format!("/api/v1/rooms/{slug}")).await;
    assert_eq!(st, 200);
    body["room"].clone()
}

pub(crate) async fn expect_live_frame(ws: &mut crate::helpers::Ws, state: &str) -> Value {
    loop {
        let f = ws.next_any().await;
        if f["type"] == "live" {
            assert_eq!(f["state"], state, "{f}");
            return f;
        }
    }
}

async fn broadcast_end_to_end(backend: Backend) {
    if !have_ffmpeg() {
        return;
    }
    let app = spawn_with(backend, &["--reconnect-grace-s", "2"]).await;
    let owner = app.signup("streamer").await;
    let other = app.signup("viewer").await;
    app.room(&owner, "stage").await;

    // Only the owner sees or rotates the key.
    let (st, _) = other.client.get("/api/v1/rooms/stage/stream-key").await;
    assert_eq!(st, 403);
    let (st, _) = other
        .client
        .post("/api/v1/rooms/stage/stream-key", Value::Null)
        .await;
    assert_eq!(st, 403);
    let (st, _) = app.anon().get("/api/v1/rooms/stage/stream-key").await;
    assert_eq!(st, 401);
    let (key, url) = stream_key(&app, &owner, "stage").await;
    assert!(key.len() >= 32);
    let (_, again) = owner.client.get("/api/v1/rooms/stage/stream-key").await;
    assert_eq!(
        again["stream_key"],
        key.as_str(),
        "the key is stable until rotated"
    );

    let mut ws = app.ws(None, "stage", None).await;
    let welcome = ws.welcome().await;
    assert_eq!(welcome["room"]["live"], false);
    let (st, _, _) = get_text(&app, "/live/stage/index.m3u8").await;
    assert_eq!(st, 404, "not live yet");

    let mut ffmpeg = publish(&url, 8);
    let started = expect_live_frame(&mut ws, "started").await;
    assert_eq!(started["hls_url"], "/live/stage/index.m3u8");
    let room = live_state(&app, "stage").await;
    assert_eq!(room["live"], true);
    assert_eq!(room["hls_url"], "/live/stage/index.m3u8");
    assert!(room["live_since"].is_string());
    let (_, list) = app.anon().get("/api/v1/rooms").await;
    assert_eq!(list["rooms"][0]["slug"], "stage", "live rooms come first");

    let playlist = media_playlist(&app, "stage").await;
    let (_, index, _) = get_text(&app, "/live/stage/index.m3u8").await;
    assert!(index.contains("RESOLUTION=320x240"), "{index}");
    let base = dir_of(&playlist).to_string();
    // Wait for two whole segments.
    let text = eventually(15, || async {
        let (_, text, _) = get_text(&app, &playlist).await;
        (attr(&text, "#EXTINF:").len() >= 2).then_some(text)
    })
    .await;
    assert_eq!(attr(&text, "#EXT-X-VERSION:"), ["9"]);
    assert_eq!(attr(&text, "#EXT-X-TARGETDURATION:"), ["1"], "{text}");
    let control = attr(&text, "#EXT-X-SERVER-CONTROL:")[0];
    assert!(control.contains("CAN-BLOCK-RELOAD=YES"), "{control}");
    assert!(control.contains("PART-HOLD-BACK="), "{control}");
    assert_eq!(attr(&text, "#EXT-X-PART-INF:"), ["PART-TARGET=0.334"]);
    assert_eq!(attr(&text, "#EXT-X-MAP:URI="), ["\"init0.mp4\""]);
    assert_eq!(attr(&text, "#EXT-X-PRELOAD-HINT:").len(), 1, "{text}");
    let parts = attr(&text, "#EXT-X-PART:");
    assert!(
        parts.iter().any(|p| p.contains("INDEPENDENT=YES")),
        "{text}"
    );
    for p in &parts {
        let d: f64 = p
            .strip_prefix("DURATION=")
            .and_then(|r| r.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            d > 0.0 && d <= 0.334,
            "part of {d} s exceeds PART-TARGET: {text}"
        );
    }
    for d in attr(&text, "#EXTINF:") {
        let d: f64 = d.trim_end_matches(',').parse().unwrap();
        assert!(
            (0.9..=1.1).contains(&d),
            "segment of {d} s with 1 s GOPs: {text}"
        );
    }
    assert!(!text.contains("#EXT-X-ENDLIST"));

    // Blocking reload: ask for the part after the hinted one; the answer lists it.
    let hint = attr(&text, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=")[0].trim_matches('"');
    let (msn, idx) = hint
        .strip_prefix('p')
        .and_then(|r| r.strip_suffix(".m4s"))
        .and_then(|r| r.split_once('.'))
        .unwrap();
    let (msn, idx): (u64, u32) = (msn.parse().unwrap(), idx.parse().unwrap());
    let (st, blocked, _) =
        get_text(&app, &format!("{playlist}?_HLS_msn={msn}&_HLS_part={idx}")).await;
    assert_eq!(st, 200, "{blocked}");
    assert!(
        blocked.contains(&format!("URI=\"p{msn}.{idx}.m4s\""))
            || blocked.contains(&format!("s{msn}.m4s")),
        "{blocked}"
    );
    let (st, body, _) = get_text(&app, &format!("{playlist}?_HLS_msn={}", msn + 10)).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("hls_msn_too_far"));
    let (st, _, _) = get_text(&app, &format!("{playlist}?_HLS_part=1")).await;
    assert_eq!(st, 400);

    // The hinted part is held until it exists, then served.
    let (_, text, _) = get_text(&app, &playlist).await;
    let hint = attr(&text, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=")[0].trim_matches('"');
    let (st, part) = get_bytes(&app, &format!("{base}/{hint}")).await;
    assert_eq!(st, 200);
    assert_eq!(&part[4..8], b"moof", "a part is a CMAF chunk");

    // Init + a whole segment decode as H.264 320×240 and AAC.
    let seg_uri = text.lines().rfind(|l| l.starts_with('s')).unwrap();
    let (st, init) = get_bytes(&app, &format!("{base}/init0.mp4")).await;
    assert_eq!(st, 200);
    let (st, seg) = get_bytes(&app, &format!("{base}/{seg_uri}")).await;
    assert_eq!(st, 200);
    let file = app.data_dir.join("probe.mp4");
    std::fs::write(&file, [init.clone(), seg].concat()).unwrap();
    let probe = ffprobe(&file);
    let streams = probe["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(320), Some(240))
    );
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(decode_errors(file.to_str().unwrap()), "");
    // Parts concatenated after the init decode too: the newest that starts with a keyframe,
    // from the playlist again (the oldest may have left the window meanwhile).
    let (_, text, _) = get_text(&app, &playlist).await;
    let first_part_uri = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .rfind(|l| l.contains("INDEPENDENT=YES"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .map(|r| r.split('"').next().unwrap().to_string())
        .unwrap();
    let (st, p) = get_bytes(&app, &format!("{base}/{first_part_uri}")).await;
    assert_eq!(st, 200);
    std::fs::write(&file, [init, p].concat()).unwrap();
    assert_eq!(decode_errors(file.to_str().unwrap()), "");

    // Viewers: the WebSocket viewer fetching HLS counts once; a player that only fetches HLS
    // (from another machine) counts too.
    assert_eq!(live_state(&app, "stage").await["viewers"], 1);
    let hls_only = reqwest::Client::builder()
        .user_agent("hls-only-player/1.0")
        .local_address("127.0.0.77".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let st = hls_only
        .get(app.url(&playlist))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 200);
    eventually(5, || async {
        (live_state(&app, "stage").await["viewers"] == 2).then_some(())
    })
    .await;

    // Metrics see the broadcast.
    let (_, metrics, _) = get_text(&app, "/metrics").await;
    assert!(metrics.contains("\nmoim_live_broadcasts 1\n"), "{metrics}");
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(counter("moim_ingest_bytes_total") > 10_000);
    assert!(counter("moim_hls_parts_total") >= 6);

    // A player without LL-HLS (ffmpeg's HLS reader) plays the same live playlist.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(app.url(&playlist))
        .args(["-t", "2", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Unknown files and other broadcasts' URLs are 404 with a JSON error.
    let (st, body) = app.anon().get("/live/stage/deadbeef/src/index.m3u8").await;
    assert_eq!(st, 404, "{body}");
    assert_eq!(body["error"], "not_found");
    let (st, _) = app.anon().get(&format!("{base}/../../x")).await;
    assert_eq!(st, 404);

    // ffmpeg stops after 8 s and unpublishes: the broadcast ends.
    let status = wait_exit(&mut ffmpeg, 30).await;
    assert!(status.success());
    expect_live_frame(&mut ws, "ended").await;
    let (_, text, _) = get_text(&app, &playlist).await;
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert_eq!(live_state(&app, "stage").await["live"], false);

    // The recording lands in the owner's library and plays.
    let video = eventually(30, || async {
        let (_, body) = owner.client.get("/api/v1/videos").await;
        let v = body["videos"][0].clone();
        (v["status"] == "ready").then_some(v)
    })
    .await;
    let (_, theirs) = other.client.get("/api/v1/videos").await;
    assert_eq!(
        theirs["videos"].as_array().unwrap().len(),
        0,
        "only the owner's own videos"
    );
    let dur = video["duration_s"].as_f64().unwrap();
    assert!(
        (6.0..=10.0).contains(&dur),
        "recording of {dur} s for an 8 s broadcast"
    );
    let id = video["id"].as_str().unwrap();
    // What it keeps on disk counts against the owner's storage, exactly.
    let on_disk: u64 = app.blob_keys(&format!("videos/{id}/")).await.1;
    assert!(on_disk > 0);
    assert_eq!(video["size_bytes"].as_u64(), Some(on_disk), "{video}");
    let (_, usage) = owner.client.get("/api/v1/me/usage").await;
    assert_eq!(usage["used_bytes"].as_u64(), Some(on_disk), "{usage}");
    let (st, one) = app.anon().get(&format!("/api/v1/videos/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(one["video"]["hls_url"], format!("/videos/{id}/index.m3u8"));
    let (st, vod, _) = get_text(&app, &format!("/videos/{id}/index.m3u8")).await;
    assert_eq!(st, 200);
    assert!(
        vod.contains("#EXT-X-PLAYLIST-TYPE:VOD") && vod.ends_with("#EXT-X-ENDLIST\n"),
        "{vod}"
    );
    assert_eq!(
        decode_errors(&app.url(&format!("/videos/{id}/index.m3u8"))),
        ""
    );
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(app.url(&format!("/videos/{id}/index.m3u8")))
        .output()
        .unwrap();
    let probed: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        (probed - dur).abs() < 1.0,
        "ffprobe says {probed} s, the API {dur} s"
    );
    let thumb = video["thumbnail_url"]
        .as_str()
        .expect("ffmpeg made a thumbnail");
    let (st, jpeg) = get_bytes(&app, thumb).await;
    assert_eq!(st, 200);
    assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    // Stored files answer byte ranges (players and downloads resume with them).
    let ranged = |range: &'static str| {
        let url = app.url(thumb);
        async move {
            let resp = reqwest::Client::new()
                .get(url)
                .header("range", range)
                .send()
                .await
                .unwrap();
            let st = resp.status().as_u16();
            let cr = resp
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap().to_string());
            (st, cr, resp.bytes().await.unwrap().to_vec())
        }
    };
    let (st, cr, head) = ranged("bytes=0-2").await;
    assert_eq!((st, head.as_slice()), (206, &jpeg[..3]));
    assert_eq!(cr.unwrap(), format!("bytes 0-2/{}", jpeg.len()));
    let (st, _, tail) = ranged("bytes=-4").await;
    assert_eq!((st, tail.as_slice()), (206, &jpeg[jpeg.len() - 4..]));
    let (st, cr, _) = ranged("bytes=999999999-").await;
    assert_eq!(st, 416);
    assert_eq!(cr.unwrap(), format!("bytes */{}", jpeg.len()));
    let (st, _) = app.anon().get("/api/v1/videos/nosuchvideo").await;
    assert_eq!(st, 404);
}

async fn refused_publishers(backend: Backend) {
    if !have_ffmpeg() {
        return;
    }
    let app = spawn_with(backend, &[]).await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let (key, url) = stream_key(&app, &owner, "stage").await;

    // A wrong key: ffmpeg fails, nothing goes live.
    let mut bad = publish(&format!("{}/live_wrong", app.rtmp), 5);
    assert!(!wait_exit(&mut bad, 20).await.success());
    assert_eq!(live_state(&app, "stage").await["live"], false);

    // Garbage on the RTMP port closes that connection only.
    let addr = app
        .rtmp
        .trim_start_matches("rtmp://")
        .trim_end_matches("/live");
    let mut junk = tokio::net::TcpStream::connect(addr).await.unwrap();
    junk.write_all(&[0x06; 4000]).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), junk.read(&mut buf))
        .await
        .expect("the server closes a garbage connection")
        .unwrap_or(0);
    assert_eq!(n, 0, "nothing is answered to a wrong RTMP version");

    // One publisher at a time per room.
    let mut first = publish(&url, 12);
    eventually(15, || async {
        (live_state(&app, "stage").await["live"] == true).then_some(())
    })
    .await;
    let mut second = publish(&url, 5);
    assert!(
        !wait_exit(&mut second, 20).await.success(),
        "a second publisher is refused"
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first publisher goes on"
    );
    assert_eq!(live_state(&app, "stage").await["live"], true);

    // Rotating the key ends the broadcast and retires the old key.
    let mut ws = app.ws(None, "stage", None).await;
    ws.welcome().await;
    let (st, body) = owner
        .client
        .post("/api/v1/rooms/stage/stream-key", Value::Null)
        .await;
    assert_eq!(st, 201, "{body}");
    assert_ne!(body["stream_key"], key.as_str());
    expect_live_frame(&mut ws, "ended").await;
    wait_exit(&mut first, 20).await;
    let mut old = publish(&url, 5);
    assert!(
        !wait_exit(&mut old, 20).await.success(),
        "the old key no longer works"
    );
    assert_eq!(live_state(&app, "stage").await["live"], false);
}

async fn publisher_reconnects_within_grace(backend: Backend) {
    if !have_ffmpeg() {
        return;
    }
    let app = spawn_with(backend, &["--reconnect-grace-s", "5"]).await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let (_, url) = stream_key(&app, &owner, "stage").await;
    let mut ws = app.ws(None, "stage", None).await;
    ws.welcome().await;

    let mut first = publish(&url, 30);
    expect_live_frame(&mut ws, "started").await;
    let playlist = media_playlist(&app, "stage").await;
    eventually(15, || async {
        let (_, text, _) = get_text(&app, &playlist).await;
        (attr(&text, "#EXTINF:").len() >= 2).then_some(())
    })
    .await;
    // The encoder dies without unpublishing (network blip) and comes back. The lifecycle's own
    // tests (src/live/lifecycle.rs) cover the timing in simulated time; this checks the wiring.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = republish(&url, 4).await;
    // Same broadcast (same playlist URL), with a discontinuity and a second init segment.
    let text = eventually(15, || async {
        let (st, text, _) = get_text(&app, &playlist).await;
        (st == 200 && text.contains("init1.mp4") && attr(&text, "#EXTINF:").len() >= 4)
            .then_some(text)
    })
    .await;
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    assert!(wait_exit(&mut second, 30).await.success());
    // Only now, after the deliberate stop, does the broadcast end; no `ended` came before.
    let f = expect_live_frame(&mut ws, "ended").await;
    assert_eq!(f["state"], "ended");
}

async fn stalled_publisher_ends_after_grace(backend: Backend) {
    if !have_ffmpeg() {
        return;
    }
    let app = spawn_with(
        backend,
        &["--reconnect-grace-s", "1", "--ingest-timeout-s", "2"],
    )
    .await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    // This room keeps no recordings.
    let (st, body) = owner
        .client
        .patch(
            "/api/v1/rooms/stage",
            serde_json::json!({"record_broadcasts": false}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["room"]["record_broadcasts"], false);
    let (_, url) = stream_key(&app, &owner, "stage").await;
    let mut ws = app.ws(None, "stage", None).await;
    ws.welcome().await;
    let mut ffmpeg = publish(&url, 60);
    expect_live_frame(&mut ws, "started").await;
    // Freeze the encoder: its TCP connection stays open but no data flows.
    let pid = ffmpeg.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    expect_live_frame(&mut ws, "ended").await;
    assert!(t.elapsed() < Duration::from_secs(20));
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    let _ = ffmpeg.wait();
    assert_eq!(live_state(&app, "stage").await["live"], false);
    let (_, videos) = owner.client.get("/api/v1/videos").await;
    assert_eq!(videos["videos"], serde_json::json!([]), "recording was off");
}

async fn limits_refuse_extra_broadcasts_and_fast_publishers(backend: Backend) {
    if !have_ffmpeg() {
        return;
    }
    let app = spawn_with(
        backend,
        &["--max-broadcasts", "1", "--max-ingest-kbps", "100"],
    )
    .await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "one").await;
    app.room(&owner, "two").await;
    let (_, url_one) = stream_key(&app, &owner, "one").await;
    let (_, url_two) = stream_key(&app, &owner, "two").await;
    // The test pattern runs at several hundred kbit/s, well over the limit: it is cut off once
    // the 5 s window closes.
    let mut fast = publish(&url_one, 30);
    eventually(15, || async {
        (live_state(&app, "one").await["live"] == true).then_some(())
    })
    .await;
    // One broadcast at a time on this server.
    let mut second = publish(&url_two, 5);
    assert!(
        !wait_exit(&mut second, 20).await.success(),
        "over max_broadcasts"
    );
    assert_eq!(live_state(&app, "two").await["live"], false);
    let st = wait_exit(&mut fast, 30).await;
    assert!(
        !st.success(),
        "the publisher over the bitrate limit is disconnected"
    );
    let log = std::fs::read_to_string(app.data_dir.join("server.log")).unwrap();
    assert!(
        log.contains("ingest bitrate above the limit"),
        "the reason is logged"
    );
    assert!(
        log.contains("too many broadcasts at once"),
        "the refusal is logged"
    );
    let key = url_one.rsplit('/').next().unwrap();
    assert!(!log.contains(key), "stream keys never reach the log");
}

async fn shutdown_ends_broadcasts_and_keeps_the_recording(backend: Backend) {
    if !have_ffmpeg() {
        return;
    }
    let mut app = spawn_with(backend, &[]).await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let (_, url) = stream_key(&app, &owner, "stage").await;
    let mut ffmpeg = publish(&url, 60);
    eventually(15, || async {
        (live_state(&app, "stage").await["live"] == true).then_some(())
    })
    .await;
    let playlist = media_playlist(&app, "stage").await;
    eventually(15, || async {
        let (_, text, _) = get_text(&app, &playlist).await;
        (attr(&text, "#EXTINF:").len() >= 3).then_some(())
    })
    .await;
    let mut server = app.sigterm();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = server.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "moim did not stop within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "clean exit: {status:?}");
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    // The recording was finished during shutdown, not left to be marked failed at start.
    app.restart_same_port().await;
    let (_, body) = owner.client.get("/api/v1/videos").await;
    let video = &body["videos"][0];
    assert_eq!(video["status"], "ready", "{body}");
    assert!(video["duration_s"].as_f64().unwrap() >= 3.0);
    let vod = app.url(video["hls_url"].as_str().unwrap());
    assert_eq!(decode_errors(&vod), "");
}

/// Builds the librtmp test publisher (tests/clients/librtmp_publish.c) into `dir`, or None when
/// librtmp's headers or a C compiler are missing (a failure under `MOIM_REQUIRE_ALL=1`).
fn librtmp_publisher(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let src = crate::helpers::manifest_dir().join("tests/clients/librtmp_publish.c");
    let bin = dir.join("librtmp_publish");
    let built = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(src)
        .arg("-lrtmp")
        .output()
        .is_ok_and(|o| o.status.success());
    if !built {
        assert!(
            !require_all(),
            "librtmp (Debian librtmp-dev) and cc are required (MOIM_REQUIRE_ALL=1)"
        );
        eprintln!("SKIPPED (librtmp): install librtmp-dev to run the librtmp publisher test");
        return None;
    }
    Some(bin)
}

async fn librtmp_publisher_like_obs(backend: Backend) {
    if !have_ffmpeg() {
        return;
    }
    let app = spawn_with(backend, &[]).await;
    let Some(publisher) = librtmp_publisher(&app.data_dir) else {
        return;
    };
    let clip = app.data_dir.join("clip.flv");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
        ])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=44100", "-t", "4"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-f", "flv"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(st.success());
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let (_, url) = stream_key(&app, &owner, "stage").await;
    let mut ws = app.ws(None, "stage", None).await;
    ws.welcome().await;

    let mut child = Command::new(&publisher)
        .arg(&url)
        .arg(&clip)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    expect_live_frame(&mut ws, "started").await;
    let playlist = media_playlist(&app, "stage").await;
    let text = eventually(15, || async {
        let (_, text, _) = get_text(&app, &playlist).await;
        (attr(&text, "#EXTINF:").len() >= 2).then_some(text)
    })
    .await;
    let base = dir_of(&playlist).to_string();
    let (_, init) = get_bytes(&app, &format!("{base}/init0.mp4")).await;
    let seg_uri = text.lines().rfind(|l| l.starts_with('s')).unwrap();
    let (_, seg) = get_bytes(&app, &format!("{base}/{seg_uri}")).await;
    let file = app.data_dir.join("librtmp.mp4");
    std::fs::write(&file, [init, seg].concat()).unwrap();
    assert_eq!(decode_errors(file.to_str().unwrap()), "");
    // librtmp closes with deleteStream: the broadcast ends at once and is recorded.
    assert!(
        wait_exit(&mut child, 30).await.success(),
        "librtmp sent every tag"
    );
    expect_live_frame(&mut ws, "ended").await;
    let video = eventually(30, || async {
        let (_, body) = owner.client.get("/api/v1/videos").await;
        let v = body["videos"][0].clone();
        (v["status"] == "ready").then_some(v)
    })
    .await;
    let dur = video["duration_s"].as_f64().unwrap();
    assert!((3.0..=5.0).contains(&dur), "{dur} s recorded of a 4 s clip");

    // And a wrong key is refused for librtmp too.
    let bad = Command::new(&publisher)
        .arg(format!("{}/live_wrong", app.rtmp))
        .arg(&clip)
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
