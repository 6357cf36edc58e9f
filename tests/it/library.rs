//! The video library's processing, end to end: ffmpeg makes real files (H.264/AAC MP4, VP9/Opus
//! WebM, QuickTime, a truncated MP4, text and a zip), the tus client uploads them, and the test
//! waits for each video to become ready (then decodes what moim serves, frame by frame, with
//! ffprobe) or failed with a reason and nothing left behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_with, Backend, TestApp, User};
use crate::uploads::Tus;

backend_tests!(
    an_h264_mp4_is_remuxed_and_served_privately,
    a_remuxed_video_gains_the_lower_rungs_of_the_ladder,
    other_formats_are_transcoded_to_a_ladder,
    files_that_are_not_videos_fail_with_a_reason_and_leave_nothing,
    a_plan_limits_how_long_videos_may_be,
    processing_survives_crashes_and_stops_and_never_runs_forever,
    a_member_renames_shares_downloads_and_deletes_videos,
    share_links_admit_visitors_as_far_as_they_say,
);

/// A visitor without an account: keeps the cookies moim sets, like a browser.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookies: Vec<String>,
}

impl Visitor {
    fn new(app: &TestApp) -> Visitor {
        Visitor {
            http: reqwest::Client::new(),
            base: app.url(""),
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let mut req = req;
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookies.join("; "));
        }
        let resp = req.send().await.unwrap();
        for c in resp.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap().to_string();
            let name = pair.split('=').next().unwrap().to_string();
            self.cookies.retain(|k| !k.starts_with(&format!("{name}=")));
            self.cookies.push(pair);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn open(&mut self, code: &str) -> (u16, Value) {
        let url = format!("{}/api/v1/s/{code}", self.base);
        self.send(self.http.get(url)).await
    }

    async fn unlock(&mut self, code: &str, password: &str) -> (u16, Value) {
        let url = format!("{}/api/v1/s/{code}/unlock", self.base);
        self.send(self.http.post(url).json(&json!({ "password": password })))
            .await
    }

    async fn status(&mut self, path: &str) -> u16 {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(url)).await.0
    }
}

/// A member's `/me/events` stream, read event by event.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(app: &TestApp, user: &User) -> Events {
        let resp = reqwest::Client::new()
            .get(app.url("/api/v1/me/events"))
            .header("cookie", &user.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut e = Events {
            resp,
            buf: String::new(),
        };
        assert_eq!(e.next().await.0, "ready");
        e
    }

    /// The next event: its name and JSON data (keep-alive comments skipped).
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_string();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return (name, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("an event within 30 s")
                .unwrap()
                .expect("the stream stays open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

/// Test media made once per run with ffmpeg, or `None` (the test is skipped) without it.
fn fixtures() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        if !crate::live::have_ffmpeg() {
            return None;
        }
        // Made once per machine (the name changes with the recipe): into a scratch directory,
        // then renamed into place, so runs side by side never see half of them.
        let done = std::env::temp_dir().join("moim-test-media-v1");
        if done.join("complete").exists() {
            return Some(done);
        }
        let dir = std::env::temp_dir().join(format!("moim-test-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ff = |args: &str, out: &str| {
            let status = Command::new("ffmpeg")
                .args(["-v", "error", "-y"])
                .args(args.split_whitespace())
                .arg(dir.join(out))
                .status()
                .unwrap();
            assert!(status.success(), "ffmpeg {args} {out}");
        };
        let av = "-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine=frequency=300:sample_rate=48000 -t 10";
        // H.264/AAC, a keyframe every second: remuxed into segments of four seconds.
        ff(&format!("{av} -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -c:a aac -b:a 64k"), "h264.mp4");
        ff(&format!("-i {} -c copy", dir.join("h264.mp4").display()), "h264.mov");
        let av2 = "-f lavfi -i testsrc2=size=480x360:rate=24 -f lavfi -i sine=frequency=500:sample_rate=48000 -t 4";
        ff(&format!("{av2} -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 300k -c:a libopus -b:a 48k"), "vp9.webm");
        // A minute of MPEG-4 Part 2 in Matroska: cheap to make, some seconds to transcode.
        ff("-f lavfi -i testsrc2=size=640x360:rate=24 -f lavfi -i sine=frequency=200:sample_rate=48000 -t 60 -c:v mpeg4 -q:v 8 -c:a libopus -b:a 32k", "long.mkv");
        let mp4 = std::fs::read(dir.join("h264.mp4")).unwrap();
        std::fs::write(dir.join("truncated.mp4"), &mp4[..mp4.len() / 2]).unwrap();
        std::fs::write(dir.join("notes.mp4"), "these are my notes, not a video\n".repeat(40)).unwrap();
        std::fs::write(dir.join("archive.mp4"), b"PK\x03\x04\x14\x00\x00\x00\x08\x00 rest of a zip").unwrap();
        std::fs::write(dir.join("complete"), b"").unwrap();
        if std::fs::rename(&dir, &done).is_err() {
            // Another run got there first.
            let _ = std::fs::remove_dir_all(&dir);
        }
        Some(done)
    })
    .as_deref()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().unwrap().join(name)).unwrap()
}

/// Uploads `name` and returns the video's id (from `Moim-Video-Id`).
async fn upload(app: &TestApp, user: &User, name: &str) -> String {
    let tus = Tus::new(app, user);
    let data = fixture(name);
    // Three pieces, so the file is put together from several.
    let (last, location) = tus.upload(&data, name, data.len() / 3 + 1).await;
    let id = last
        .header("moim-video-id")
        .expect("the last piece names the video")
        .to_string();
    let head = tus.head(&location).await;
    assert_eq!(head.header("moim-video-id"), Some(id.as_str()));
    id
}

/// Waits for the video to leave `processing`.
async fn settled(user: &User, id: &str) -> Value {
    let c = user.client.clone();
    eventually(120, || async {
        let (s, body) = c.get(&format!("/api/v1/videos/{id}")).await;
        assert_eq!(s, 200, "{body}");
        (body["video"]["status"] != "processing").then(|| body["video"].clone())
    })
    .await
}

/// Fetches a media playlist and its files as `user`, puts init and segments together into
/// one file, and returns what ffprobe counts in it: (video frames, audio frames, seconds).
async fn decode(user: &User, playlist_url: &str) -> (u64, u64, f64) {
    let c = user.client.clone();
    let text = c.text(playlist_url).await;
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    let base = playlist_url.rsplit_once('/').unwrap().0;
    let mut whole = Vec::new();
    for line in text.lines() {
        let uri = if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            rest.trim_end_matches('"')
        } else if !line.starts_with('#') && !line.is_empty() {
            line
        } else {
            continue;
        };
        whole.extend_from_slice(&c.bytes(&format!("{base}/{uri}")).await);
    }
    let path = std::env::temp_dir().join(format!("moim-decode-{}.mp4", rand_name()));
    std::fs::write(&path, &whole).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-print_format",
            "json",
            "-show_streams",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let frames = |kind: &str| {
        v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["codec_type"] == kind)
            .map(|s| {
                s["nb_read_frames"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum::<u64>()
    };
    let seconds = v["streams"][0]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (frames("video"), frames("audio"), seconds)
}

fn rand_name() -> String {
    format!("{:x}", rand::random::<u64>())
}

/// The blobs kept for a video, relative to its folder.
async fn files_of(app: &TestApp, id: &str) -> Vec<String> {
    app.blob_keys(&format!("videos/{id}/")).await.0
}

/// The bytes of every blob the video keeps.
async fn kept_bytes(app: &TestApp, id: &str) -> u64 {
    app.blob_keys(&format!("videos/{id}/")).await.1
}

async fn a_remuxed_video_gains_the_lower_rungs_of_the_ladder(b: Backend) {
    if fixtures().is_none() {
        return;
    }
    // The 240-line clip is below 1080 and above 144: it gets a 144p rendition, no 1080p.
    let app = spawn_with(b, &["--video-ladder", "1080:5000,144:200"]).await;
    let mina = app.signup("mina").await;
    let id = upload(&app, &mina, "h264.mp4").await;
    let v = settled(&mina, &id).await;
    assert_eq!(v["status"], "ready", "{v}");
    let hls = v["hls_url"].as_str().unwrap().to_string();
    // Once the rendition is made, the playlist lists both, the source first; every file
    // the video keeps counts.
    let (index, v) = eventually(120, || async {
        let index = mina.client.clone().text(&hls).await;
        if !index.contains("#EXT-X-STREAM-INF") {
            return None;
        }
        let (_, body) = mina.client.get(&format!("/api/v1/videos/{id}")).await;
        let kept = kept_bytes(&app, &id).await;
        (body["video"]["size_bytes"].as_u64() == Some(kept)).then(|| (index, body["video"].clone()))
    })
    .await;
    let variants: Vec<&str> = index
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(variants, ["source.m3u8", "144p/index.m3u8"], "{index}");
    assert!(index.contains("RESOLUTION=320x240"), "{index}");
    assert!(index.contains("RESOLUTION=192x144"), "{index}");
    let files = files_of(&app, &id).await;
    assert!(!files.iter().any(|f| f.starts_with("1080p/")), "{files:?}");
    // Both play every frame: the source as it came, the new one re-encoded.
    let dir = hls.rsplit_once('/').unwrap().0;
    for list in variants {
        let (video_frames, _, _) = decode(&mina, &format!("{dir}/{list}")).await;
        assert_eq!(video_frames, 300, "{list}");
    }
    let (_, usage) = mina.client.clone().get("/api/v1/me/usage").await;
    assert_eq!(usage["used_bytes"], v["size_bytes"], "{usage}");
    assert_eq!(v["width"], 320, "the video's size is its source's");

    // An attempt cut short (staged: a rung folder the playlist does not list, and the job
    // still there): when the job is met again, that folder goes, the listed ones stay, and
    // the count follows what is kept.
    let mut app = app;
    app.kill9();
    let stray = format!("videos/{id}/96p/");
    app.store()
        .put(
            &format!("{stray}s0.m4s"),
            moim::storage::blobs::once(vec![7u8; 5000]),
        )
        .await
        .unwrap();
    app.sql(&format!(
        "INSERT INTO jobs (kind, subject, created_at) VALUES ('video.process', '{id}', 0)"
    ))
    .await;
    app.restart_same_port().await;
    eventually(60, || async {
        app.blob_keys(&stray).await.0.is_empty().then_some(())
    })
    .await;
    let files = files_of(&app, &id).await;
    assert!(files.contains(&"144p/index.m3u8".to_string()), "{files:?}");
    assert!(files.contains(&"source.m3u8".to_string()), "{files:?}");
    let kept = kept_bytes(&app, &id).await;
    let v = eventually(30, || async {
        let (_, body) = mina.client.get(&format!("/api/v1/videos/{id}")).await;
        (body["video"]["size_bytes"].as_u64() == Some(kept)).then(|| body["video"].clone())
    })
    .await;
    assert_eq!(v["status"], "ready");
}

/// Waits for every blob of the video to go.
async fn no_files_left(app: &TestApp, id: &str) {
    eventually(30, || async {
        files_of(app, id).await.is_empty().then_some(())
    })
    .await;
}

/// Blobs of unfinished uploads (a discarded upload leaves none).
async fn uploads_left(app: &TestApp) -> usize {
    app.blob_keys("uploads/").await.0.len()
}

async fn an_h264_mp4_is_remuxed_and_served_privately(b: Backend) {
    if fixtures().is_none() {
        return;
    }
    let app = spawn_with(b, &[]).await;
    let mina = app.signup("mina").await;
    let id = upload(&app, &mina, "h264.mp4").await;
    let v = settled(&mina, &id).await;
    assert_eq!(v["status"], "ready", "{v}");
    // It plays before its pictures are made; they follow.
    let v = eventually(60, || async {
        let (_, body) = mina.client.get(&format!("/api/v1/videos/{id}")).await;
        (!body["video"]["storyboard_url"].is_null()).then(|| body["video"].clone())
    })
    .await;
    assert_eq!(v["progress"], 1.0);
    assert_eq!(
        (v["width"].as_i64(), v["height"].as_i64()),
        (Some(320), Some(240))
    );
    let duration = v["duration_s"].as_f64().unwrap();
    assert!((9.8..=10.2).contains(&duration), "{v}");
    assert_eq!(v["visibility"], "private");
    assert_eq!(v["title"], "h264");

    // Remuxed, not re-encoded: three segments (4 s, 4 s, 2 s) of every frame, with the
    // original, a thumbnail and a storyboard beside them.
    let files = files_of(&app, &id).await;
    for f in [
        "index.m3u8",
        "init0.mp4",
        "s0.m4s",
        "s1.m4s",
        "s2.m4s",
        "original",
        "thumbnail.jpg",
        "storyboard.jpg",
        "storyboard.vtt",
    ] {
        assert!(files.contains(&f.to_string()), "{f} in {files:?}");
    }
    assert!(!files.contains(&"s3.m4s".to_string()), "{files:?}");
    let hls = v["hls_url"].as_str().unwrap();
    let (video_frames, audio_frames, _) = decode(&mina, hls).await;
    assert_eq!(video_frames, 300, "ten seconds at 30 fps");
    // 48 kHz AAC is 1024 samples a frame: ten seconds is about 469 frames.
    assert!((465..=472).contains(&audio_frames), "{audio_frames}");
    assert_eq!(
        mina.client.status(&format!("/videos/{id}/original")).await,
        404,
        "the original is not one of the files players fetch"
    );

    // The upload's pieces are gone; what is kept counts against the plan exactly.
    assert_eq!(uploads_left(&app).await, 0);
    let kept = kept_bytes(&app, &id).await;
    assert_eq!(v["size_bytes"].as_u64(), Some(kept));
    let (_, usage) = mina.client.clone().get("/api/v1/me/usage").await;
    assert_eq!(usage["used_bytes"].as_u64(), Some(kept), "{usage}");

    // Private: another member and a visitor see nothing, on every URL.
    let jun = app.signup("jun").await;
    for client in [jun.client.clone(), app.anon()] {
        let (s, _) = client.get(&format!("/api/v1/videos/{id}")).await;
        assert_eq!(s, 404);
        for f in [
            "index.m3u8",
            "init0.mp4",
            "s0.m4s",
            "thumbnail.jpg",
            "storyboard.vtt",
        ] {
            assert_eq!(
                client.status(&format!("/videos/{id}/{f}")).await,
                404,
                "{f}"
            );
        }
    }

    // Segments answer ranges and revalidation.
    let c = reqwest::Client::new();
    let seg = app.url(&format!("/videos/{id}/s1.m4s"));
    let whole = c
        .get(&seg)
        .header("cookie", &mina.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["cache-control"], "private, max-age=86400");
    let etag = whole.headers()["etag"].to_str().unwrap().to_string();
    let whole = whole.bytes().await.unwrap();
    let part = c
        .get(&seg)
        .header("cookie", &mina.cookie)
        .header("range", "bytes=8-15")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    let range = format!("bytes 8-15/{}", whole.len());
    assert_eq!(part.headers()["content-range"], range.as_str());
    assert_eq!(part.bytes().await.unwrap(), whole.slice(8..16));
    let again = c
        .get(&seg)
        .header("cookie", &mina.cookie)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // The cues walk a sprite of 160-pixel tiles.
    let vtt = mina
        .client
        .clone()
        .text(v["storyboard_url"].as_str().unwrap())
        .await;
    assert!(
        vtt.starts_with(
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nstoryboard.jpg#xywh=0,0,160,120\n"
        ),
        "{vtt}"
    );
}

async fn other_formats_are_transcoded_to_a_ladder(b: Backend) {
    if fixtures().is_none() {
        return;
    }
    let app = spawn_with(b, &["--video-ladder", "360:700,240:400,144:200"]).await;
    let mina = app.signup("mina").await;
    let id = upload(&app, &mina, "vp9.webm").await;
    let v = settled(&mina, &id).await;
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(
        (v["width"].as_i64(), v["height"].as_i64()),
        (Some(480), Some(360))
    );
    let master = mina
        .client
        .clone()
        .text(v["hls_url"].as_str().unwrap())
        .await;
    for rung in ["360p/index.m3u8", "240p/index.m3u8", "144p/index.m3u8"] {
        assert!(master.contains(rung), "{master}");
    }
    assert!(master.contains("RESOLUTION=480x360"), "{master}");
    assert!(master.contains("CODECS=\"avc1."), "{master}");
    for rung in ["360p", "240p", "144p"] {
        let (video_frames, audio_frames, _) =
            decode(&mina, &format!("/videos/{id}/{rung}/index.m3u8")).await;
        assert_eq!(video_frames, 96, "{rung}: four seconds at 24 fps");
        assert!(audio_frames > 180, "{rung}: {audio_frames}");
    }
    // QuickTime with H.264/AAC is remuxed, like MP4.
    let mov = upload(&app, &mina, "h264.mov").await;
    let v = settled(&mina, &mov).await;
    assert_eq!(v["status"], "ready", "{v}");
    assert!(files_of(&app, &mov).await.contains(&"s0.m4s".to_string()));
}

async fn files_that_are_not_videos_fail_with_a_reason_and_leave_nothing(b: Backend) {
    if fixtures().is_none() {
        return;
    }
    for ffmpeg in ["ffmpeg", "/nonexistent/ffmpeg"] {
        let app = spawn_with(b.clone(), &["--ffmpeg", ffmpeg]).await;
        // One database for both runs (on PostgreSQL): a member each.
        let mina = app
            .signup(if ffmpeg == "ffmpeg" { "mina" } else { "jun" })
            .await;
        let mut cases = vec![
            ("truncated.mp4", "the file is cut short"),
            ("notes.mp4", "this is a text file"),
            ("archive.mp4", "this is a zip archive"),
        ];
        if ffmpeg != "ffmpeg" {
            cases.push(("vp9.webm", "this is a Matroska or WebM file, not an MP4 video; this server takes only H.264/AAC MP4 files (ffmpeg is not installed)"));
        }
        for (name, reason) in cases {
            let id = upload(&app, &mina, name).await;
            let v = settled(&mina, &id).await;
            assert_eq!(v["status"], "failed", "{name}: {v}");
            let error = v["error"].as_str().unwrap();
            assert!(error.starts_with(reason), "{name}: {error}");
            no_files_left(&app, &id).await;
            assert_eq!(v["size_bytes"], 0);
        }
        eventually(30, || async {
            (uploads_left(&app).await == 0).then_some(())
        })
        .await;
        let (_, usage) = mina.client.clone().get("/api/v1/me/usage").await;
        assert_eq!(usage["used_bytes"], 0, "{usage}");
        // Without ffmpeg, H.264/AAC MP4 still becomes a video (with no pictures).
        if ffmpeg != "ffmpeg" {
            let id = upload(&app, &mina, "h264.mp4").await;
            let v = settled(&mina, &id).await;
            assert_eq!(v["status"], "ready", "{v}");
            assert_eq!(v["thumbnail_url"], Value::Null);
            assert_eq!(v["storyboard_url"], Value::Null);
            let (frames, _, _) = decode(&mina, v["hls_url"].as_str().unwrap()).await;
            assert_eq!(frames, 300);
        }
    }
}

async fn a_plan_limits_how_long_videos_may_be(b: Backend) {
    if fixtures().is_none() {
        return;
    }
    let app = spawn_with(b, &[]).await;
    let admin = app.signup("admin").await;
    let mina = app.signup("mina").await;
    let c = admin.client.clone();
    let (s, body) = c
        .post(
            "/api/v1/admin/plans",
            json!({"name": "short", "max_duration_s": 5}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, _) = c
        .put("/api/v1/admin/users/mina/plan", json!({"plan": "short"}))
        .await;
    assert_eq!(s, 200);
    let id = upload(&app, &mina, "h264.mp4").await;
    let v = settled(&mina, &id).await;
    assert_eq!(v["status"], "failed");
    assert_eq!(
        v["error"],
        "videos on your plan are at most 0:05 long; this one is 0:10"
    );
    no_files_left(&app, &id).await;
}

/// Waits until the video is processing and has moved (ffmpeg is at work).
async fn working(user: &User, id: &str) {
    let c = user.client.clone();
    eventually(60, || async {
        let (_, body) = c.get(&format!("/api/v1/videos/{id}")).await;
        let v = &body["video"];
        assert_eq!(v["status"], "processing", "it must still be at work: {v}");
        (v["progress"].as_f64().unwrap() > 0.0).then_some(())
    })
    .await
}

/// On several nodes (one PostgreSQL, one S3 store), a video whose node dies mid-transcode is
/// finished by another node once the dead node's lease runs out, into one result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_finishes_the_video_a_dead_node_was_making() {
    if fixtures().is_none() {
        return;
    }
    let Some(b) = Backend::postgres().await else {
        return;
    };
    let flags = ["--video-lease-s", "3", "--video-ladder", "144:200"];
    let mut first = spawn_with(b, &flags).await;
    if first.blobs.is_none() {
        assert!(
            !crate::helpers::require_all(),
            "the nodes need a shared blob store (MOIM_TEST_S3_URL)"
        );
        eprintln!("SKIPPED (S3): nodes share blobs through MOIM_TEST_S3_URL");
        return;
    }
    let mina = first.signup("mina").await;
    let id = upload(&first, &mina, "long.mkv").await;
    // The first node has the job (the second starts only now), then dies.
    working(&mina, &id).await;
    let second = first.node(&flags).await;
    first.kill9();
    let on_second = User {
        id: mina.id.clone(),
        cookie: mina.cookie.clone(),
        client: crate::helpers::Client::with_cookie(&second.base, &mina.cookie),
    };
    let v = settled(&on_second, &id).await;
    assert_eq!(v["status"], "ready", "{v}");
    // One result: once its jobs (the lower rungs come after it is ready) are done and gone,
    // what is kept is exactly what the video counts (a second, half-made set of files from
    // the dead node would show as more).
    eventually(120, || async {
        let jobs = second
            .sql_rows(&format!("SELECT COUNT(*) FROM jobs WHERE subject = '{id}'"))
            .await;
        (jobs == ["0"]).then_some(())
    })
    .await;
    assert!(!files_of(&second, &id).await.is_empty());
    let (_, body) = on_second.client.get(&format!("/api/v1/videos/{id}")).await;
    assert_eq!(body["video"]["status"], "ready", "{body}");
    assert_eq!(
        body["video"]["size_bytes"].as_u64(),
        Some(kept_bytes(&second, &id).await),
        "{body}"
    );
}

async fn processing_survives_crashes_and_stops_and_never_runs_forever(b: Backend) {
    if fixtures().is_none() {
        return;
    }
    let ladder = "144:200";
    // Killed mid-transcode: once the dead node's lease (3 s) runs out, the job is taken again.
    let mut app = spawn_with(
        b.clone(),
        &["--video-lease-s", "3", "--video-ladder", ladder],
    )
    .await;
    let mina = app.signup("mina").await;
    let id = upload(&app, &mina, "long.mkv").await;
    working(&mina, &id).await;
    app.restart_same_port().await;
    let v = settled(&mina, &id).await;
    assert_eq!(v["status"], "ready", "{v}");
    assert!(!app.data_dir.join("work").join(format!("{id}-tx")).exists());
    // On PostgreSQL the next servers share this database: this one (with other files) must
    // not take their jobs.
    drop(app);

    // Stopped with SIGTERM mid-transcode: the job is handed back at once, not left to a
    // lease of ten minutes.
    let mut app = spawn_with(
        b.clone(),
        &["--video-lease-s", "600", "--video-ladder", ladder],
    )
    .await;
    let jun = app.signup("jun").await;
    let id = upload(&app, &jun, "long.mkv").await;
    working(&jun, &id).await;
    let mut child = app.sigterm();
    assert!(child.wait().unwrap().success());
    app.restart_same_port().await;
    let v = settled(&jun, &id).await;
    assert_eq!(v["status"], "ready", "{v}");

    // A video left processing with no job (the start-up backstop): failed, files gone. Its
    // 144p rendition is made first, so nothing else is at work on it when it is staged.
    let id = upload(&app, &jun, "h264.mp4").await;
    let v = settled(&jun, &id).await;
    assert_eq!(v["status"], "ready", "{v}");
    let hls = v["hls_url"].as_str().unwrap().to_string();
    eventually(60, || async {
        let index = jun.client.clone().text(&hls).await;
        index.contains("#EXT-X-STREAM-INF").then_some(())
    })
    .await;
    assert!(!files_of(&app, &id).await.is_empty());
    app.kill9();
    let staged = app
        .sql(&format!(
            "UPDATE videos SET status = 'processing' WHERE public_id = '{id}'"
        ))
        .await;
    assert_eq!(staged, 1);
    app.sql(&format!("DELETE FROM jobs WHERE subject = '{id}'"))
        .await;
    app.restart_same_port().await;
    let (_, body) = jun.client.get(&format!("/api/v1/videos/{id}")).await;
    assert_eq!(body["video"]["status"], "failed", "{body}");
    assert_eq!(
        body["video"]["error"],
        "processing stopped; upload it again"
    );
    no_files_left(&app, &id).await;
    drop(app);

    // A video may not process for longer than the limit. Its transcoder reads the input at
    // its frame rate (ffmpeg's `-re`), so 60 s of video takes a minute on any machine.
    let slow = std::env::temp_dir().join(format!("moim-slow-ffmpeg-{}", std::process::id()));
    std::fs::write(&slow, "#!/bin/sh\nexec ffmpeg -re \"$@\"\n").unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let app = spawn_with(
        b,
        &[
            "--video-timeout-s",
            "2",
            "--video-ladder",
            ladder,
            "--ffmpeg",
            slow.to_str().unwrap(),
        ],
    )
    .await;
    let ara = app.signup("ara").await;
    let id = upload(&app, &ara, "long.mkv").await;
    let v = settled(&ara, &id).await;
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"], "processing took longer than 2 seconds");
    no_files_left(&app, &id).await;
    let _ = std::fs::remove_file(&slow);
}

async fn a_member_renames_shares_downloads_and_deletes_videos(b: Backend) {
    // A small H.264/AAC MP4 from the fuzz corpus: remuxed without ffmpeg, so this runs anywhere.
    let data =
        std::fs::read(crate::helpers::manifest_dir().join("fuzz/corpus/mp4/h264-aac.mp4")).unwrap();
    let app = spawn_with(
        b,
        &["--ffmpeg", "/nonexistent/ffmpeg", "--video-lease-s", "3"],
    )
    .await;
    let mina = app.signup("mina").await;
    let jun = app.signup("jun").await;
    assert_eq!(app.anon().status("/api/v1/me/events").await, 401);
    let mut events = Events::open(&app, &mina).await;
    let mut juns = Events::open(&app, &jun).await;

    // Her pages hear the video appear, move and become ready.
    let tus = Tus::new(&app, &mina);
    let (last, _) = tus.upload(&data, "여름.mp4", 20_000).await;
    let id = last.header("moim-video-id").unwrap().to_string();
    let (name, first) = events.next().await;
    assert_eq!(
        (name.as_str(), &first["video"]["id"]),
        ("video", &json!(id))
    );
    assert_eq!(first["video"]["status"], "processing");
    assert_eq!(first["video"]["title"], "여름");
    loop {
        let (name, e) = events.next().await;
        assert_eq!(name, "video");
        if e["video"]["status"] == "ready" {
            break;
        }
        assert_eq!(e["video"]["status"], "processing", "{e}");
    }
    let c = mina.client.clone();
    let (_, list) = c.get("/api/v1/videos").await;
    assert_eq!(list["videos"][0]["id"], json!(id));

    // Renamed (cleaned) and made unlisted: anyone with the address may watch.
    let path = format!("/api/v1/videos/{id}");
    let (s, v) = c
        .patch(
            &path,
            json!({"title": "  Summer\u{200B} trip ", "visibility": "unlisted"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["video"]["title"].as_str(),
            v["video"]["visibility"].as_str()
        ),
        (Some("Summer trip"), Some("unlisted"))
    );
    assert_eq!(events.next().await.1["video"]["title"], "Summer trip");
    let (s, _) = app.anon().get(&path).await;
    assert_eq!(s, 200);
    assert_eq!(
        app.anon().status(&format!("/videos/{id}/index.m3u8")).await,
        200
    );
    for (body, status, code) in [
        (json!({"visibility": "secret"}), 422, "invalid_json"),
        (json!({"title": "  \u{200B} "}), 400, "invalid_title"),
        (json!({"title": "x".repeat(201)}), 400, "invalid_title"),
        (json!({"owner": "jun"}), 422, "invalid_json"),
    ] {
        let (s, e) = c.patch(&path, body.clone()).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
    }
    // Her page lists public videos only, with her rooms.
    let (s, page) = app.anon().get("/api/v1/users/MINA").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["user"]["username"], "mina");
    assert_eq!(
        page["videos"],
        json!([]),
        "unlisted videos are listed nowhere"
    );
    app.room(&mina, "minas-room").await;
    let (s, _) = c.patch(&path, json!({"visibility": "public"})).await;
    assert_eq!(s, 200);
    assert_eq!(events.next().await.1["video"]["visibility"], "public");
    let (_, page) = app.anon().get("/api/v1/users/mina").await;
    assert_eq!(page["videos"][0]["id"], json!(id));
    assert_eq!(page["rooms"][0]["slug"], "minas-room");
    let (s, _) = app.anon().get("/api/v1/users/nobody").await;
    assert_eq!(s, 404);
    // Someone else may watch it but not change it.
    let (s, e) = jun.client.patch(&path, json!({"title": "mine now"})).await;
    assert_eq!((s, e["error"].as_str()), (403, Some("forbidden")), "{e}");
    let (s, _) = jun.client.delete(&path).await;
    assert_eq!(s, 403);
    assert_eq!(jun.client.status(&format!("{path}/original")).await, 403);
    // Private again: to him it does not exist.
    let (s, _) = c.patch(&path, json!({"visibility": "private"})).await;
    assert_eq!(s, 200);
    assert_eq!(events.next().await.1["video"]["visibility"], "private");
    let (s, _) = jun.client.patch(&path, json!({"title": "mine now"})).await;
    assert_eq!(s, 404);

    // The original, as uploaded, with its name, and in ranges.
    let resp = reqwest::Client::new()
        .get(app.url(&format!("{path}/original")))
        .header("cookie", &mina.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.ends_with("filename*=UTF-8''%EC%97%AC%EB%A6%84.mp4"),
        "{disposition}"
    );
    assert_eq!(resp.bytes().await.unwrap(), data);
    let part = reqwest::Client::new()
        .get(app.url(&format!("{path}/original")))
        .header("cookie", &mina.cookie)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), &data[100..200]);

    // Deleted: gone at once for everyone, its usage with it, and its files soon after.
    let (_, usage) = c.get("/api/v1/me/usage").await;
    assert!(usage["used_bytes"].as_u64().unwrap() > data.len() as u64);
    let (s, _) = c.delete(&path).await;
    assert_eq!(s, 204);
    let (name, gone) = events.next().await;
    assert_eq!((name.as_str(), &gone["id"]), ("video_deleted", &json!(id)));
    let (s, _) = c.get(&path).await;
    assert_eq!(s, 404);
    assert_eq!(c.status(&format!("/videos/{id}/index.m3u8")).await, 404);
    let (_, usage) = c.get("/api/v1/me/usage").await;
    assert_eq!(
        (usage["used_bytes"].as_u64(), usage["videos"].as_u64()),
        (Some(0), Some(0)),
        "{usage}"
    );
    no_files_left(&app, &id).await;
    // Jun's stream heard none of it: the first thing it carries is his own upload.
    let (last, _) = Tus::new(&app, &jun)
        .upload(&data, "jun.mp4", data.len())
        .await;
    let his = last.header("moim-video-id").unwrap().to_string();
    let (name, first) = juns.next().await;
    assert_eq!(
        (name.as_str(), &first["video"]["id"]),
        ("video", &json!(his))
    );
}

async fn share_links_admit_visitors_as_far_as_they_say(b: Backend) {
    let data =
        std::fs::read(crate::helpers::manifest_dir().join("fuzz/corpus/mp4/h264-aac.mp4")).unwrap();
    let app = spawn_with(b, &["--ffmpeg", "/nonexistent/ffmpeg"]).await;
    let mina = app.signup("mina").await;
    let jun = app.signup("jun").await;
    let mut ids = Vec::new();
    for name in ["one.mp4", "two.mp4"] {
        let (last, _) = Tus::new(&app, &mina).upload(&data, name, data.len()).await;
        let id = last.header("moim-video-id").unwrap().to_string();
        assert_eq!(settled(&mina, &id).await["status"], "ready");
        ids.push(id);
    }
    let (id, other) = (ids[0].clone(), ids[1].clone());
    let c = mina.client.clone();
    let shares = format!("/api/v1/videos/{id}/shares");
    let media = format!("/videos/{id}/index.m3u8");

    // A plain link: a visitor with it watches the private video; without it, nothing.
    let (s, body) = c.post(&shares, json!({})).await;
    assert_eq!(s, 201, "{body}");
    let code = body["share"]["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 8);
    assert_eq!(body["share"]["url"], format!("{}/s/{code}", app.url("")));
    assert_eq!(body["share"]["views"], 0);
    let mut ara = Visitor::new(&app);
    assert_eq!(ara.status(&media).await, 404);
    assert_eq!(ara.status(&format!("/s/{code}")).await, 200);
    let (s, opened) = ara.open(&code).await;
    assert_eq!(s, 200, "{opened}");
    assert_eq!(opened["video"]["id"], json!(id));
    assert_eq!(ara.status(&media).await, 200);
    assert_eq!(ara.status(&format!("/videos/{id}/s0.m4s")).await, 200);
    // The grant is for this video only.
    assert_eq!(
        ara.status(&format!("/videos/{other}/index.m3u8")).await,
        404
    );
    // Reopening with the grant counts nothing; a second visitor counts one more.
    assert_eq!(ara.open(&code).await.0, 200);
    let mut bo = Visitor::new(&app);
    assert_eq!(bo.open(&code).await.0, 200);
    let (_, list) = c.get(&shares).await;
    assert_eq!(list["shares"][0]["views"], 2, "{list}");
    assert_eq!(list["shares"][0]["state"], "active");
    // A forged grant opens nothing.
    let mut eve = Visitor::new(&app);
    let stolen = ara.cookies[0].clone();
    let (name, value) = stolen.split_once('=').unwrap();
    let (until, _) = value.split_once('.').unwrap();
    eve.cookies.push(format!("{name}={until}.AAAA"));
    assert_eq!(eve.status(&media).await, 404);
    let far = until.parse::<i64>().unwrap() + 86_400_000;
    let (_, mac) = value.split_once('.').unwrap();
    eve.cookies = vec![format!("{name}={far}.{mac}")];
    assert_eq!(eve.status(&media).await, 404, "a grant cannot be stretched");

    // Revoked: the page and the API say so, and the grant no longer opens the media.
    let (s, _) = jun.client.delete(&format!("{shares}/{code}")).await;
    assert_eq!(
        s, 404,
        "someone else's private video does not exist for him"
    );
    let (s, _) = c.delete(&format!("{shares}/{code}")).await;
    assert_eq!(s, 204);
    let (s, e) = bo.open(&code).await;
    assert_eq!((s, e["error"].as_str()), (410, Some("share_revoked")));
    assert_eq!(bo.status(&format!("/s/{code}")).await, 410);
    assert_eq!(ara.status(&media).await, 404);

    // At most one view: the second visitor is told it is used up; the first keeps watching.
    let (_, body) = c.post(&shares, json!({"max_views": 1})).await;
    let once = body["share"]["code"].as_str().unwrap().to_string();
    let mut first = Visitor::new(&app);
    assert_eq!(first.open(&once).await.0, 200);
    let mut second = Visitor::new(&app);
    let (s, e) = second.open(&once).await;
    assert_eq!((s, e["error"].as_str()), (410, Some("share_exhausted")));
    assert_eq!(second.status(&format!("/s/{once}")).await, 410);
    assert_eq!(first.status(&media).await, 200);
    assert_eq!(first.open(&once).await.0, 200, "a grant holder may reload");

    // A password: at least six characters; asked for, refused when wrong, then the link opens.
    let (s, e) = c.post(&shares, json!({"password": "1234"})).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_password")),
        "{e}"
    );
    assert_eq!(e["message"], "a link's password has at least 6 characters");
    let (_, body) = c
        .post(
            &shares,
            json!({"password": "open sesame", "slug": "Summer-Trip"}),
        )
        .await;
    assert_eq!(body["share"]["code"], "summer-trip", "{body}");
    assert_eq!(body["share"]["has_password"], true);
    let mut cho = Visitor::new(&app);
    assert_eq!(cho.status("/s/summer-trip").await, 401);
    let (s, e) = cho.open("summer-trip").await;
    assert_eq!((s, e["error"].as_str()), (401, Some("password_required")));
    let (s, e) = cho.unlock("summer-trip", "open sesame!").await;
    assert_eq!((s, e["error"].as_str()), (401, Some("wrong_password")));
    assert_eq!(cho.status(&media).await, 404);
    let (s, e) = cho.unlock("summer-trip", "open sesame").await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(cho.status(&media).await, 200);
    assert_eq!(cho.open("SUMMER-TRIP").await.0, 200, "codes ignore case");
    assert_eq!(cho.status("/s/summer-trip").await, 200);

    // Expiry: refused in the past; a link that runs out says so.
    let past = "2020-01-01T00:00:00Z";
    let (s, e) = c.post(&shares, json!({"expires_at": past})).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_expiry")));
    let soon = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, body) = c.post(&shares, json!({"expires_at": soon})).await;
    assert_eq!(s, 201, "{body}");
    let brief = body["share"]["code"].as_str().unwrap().to_string();
    eventually(10, || async {
        let (s, e) = Visitor::new(&app).open(&brief).await;
        (s == 410).then(|| assert_eq!(e["error"], "share_expired"))
    })
    .await;

    // Names and refusals.
    let (s, e) = c.post(&shares, json!({"slug": "summer-trip"})).await;
    assert_eq!((s, e["error"].as_str()), (409, Some("slug_taken")));
    for bad in [
        json!({"slug": "a b"}),
        json!({"max_views": 0}),
        json!({"expires_at": "soon"}),
    ] {
        let (s, _) = c.post(&shares, bad.clone()).await;
        assert_eq!(s, 400, "{bad}");
    }
    let (s, _) = Visitor::new(&app).open("no-such-link").await;
    assert_eq!(s, 404);
    assert_eq!(Visitor::new(&app).status("/s/no-such-link").await, 404);
    let (s, _) = jun.client.post(&shares, json!({})).await;
    assert_eq!(s, 404);
    let qr = reqwest::Client::new()
        .get(app.url(&format!("{shares}/summer-trip/qr.svg")))
        .header("cookie", &mina.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().contains("<svg"));
}
