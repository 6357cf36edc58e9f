//! Browser tests: the real UI in Debian's Chromium, driven by Playwright (e2e/*.mjs).

use std::process::Command;

use crate::helpers::{require_all, spawn_app, spawn_with, Backend};

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Chromium's path and the e2e folder with its packages installed, or None (skipped; a failure
/// under `MOIM_REQUIRE_ALL=1`).
fn browser_setup(needs_ffmpeg: bool) -> Option<(String, String)> {
    let chromium = std::env::var("MOIM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let root = crate::helpers::manifest_dir();
    let e2e = format!("{}/e2e", root.display());
    let ffmpeg_ok = !needs_ffmpeg || have("ffmpeg", "-version");
    if !std::path::Path::new(&chromium).exists() || !have("node", "--version") || !ffmpeg_ok {
        assert!(
            !require_all(),
            "Chromium ({chromium}), node and ffmpeg are required (MOIM_REQUIRE_ALL=1)"
        );
        eprintln!("SKIPPED (browser): install chromium, node and ffmpeg to run the browser tests");
        return None;
    }
    crate::helpers::npm_ci(&e2e);
    Some((chromium, e2e))
}

fn screenshots_dir() -> String {
    let shots = format!(
        "{}/target/screenshots",
        crate::helpers::manifest_dir().display()
    );
    std::fs::create_dir_all(&shots).unwrap();
    shots
}

/// The UI's pure logic (the watch party's clock and correction rule) under node's own test
/// runner: e2e/unit/*.test.mjs.
#[test]
fn ui_logic_passes_its_unit_tests() {
    if !have("node", "--version") {
        assert!(!require_all(), "node is required (MOIM_REQUIRE_ALL=1)");
        eprintln!("SKIPPED (ui logic): install node to run the UI's unit tests");
        return;
    }
    let root = crate::helpers::manifest_dir();
    let out = Command::new("node")
        .args(["--test", "e2e/unit/"])
        .current_dir(&root)
        .output()
        .expect("run node --test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Something ran, and nothing was skipped.
    assert!(
        text.contains("# fail 0") && !text.contains("# pass 0"),
        "{text}"
    );
    assert!(text.contains("# skipped 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_plays_in_chromium() {
    let Some((chromium, e2e)) = browser_setup(true) else {
        return;
    };
    // With a one-step ladder, so the quality picker has something to pick.
    let app = spawn_with(
        Backend::Sqlite,
        &["--transcode", "true", "--transcode-ladder", "240:400"],
    )
    .await;
    let shots = screenshots_dir();
    let status = tokio::process::Command::new("node")
        .arg(format!("{e2e}/live.mjs"))
        .env("MOIM_URL", &app.base)
        .env("MOIM_CHROMIUM", &chromium)
        .env("MOIM_SCREENSHOTS", &shots)
        .status()
        .await
        .expect("start node");
    assert!(
        status.success(),
        "live browser script failed: {status:?}; screenshots in {shots}; server log in {}",
        app.data_dir.join("server.log").display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_chat_reload_and_recover_from_restart() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    let mut app = spawn_app(Backend::Sqlite).await;
    let shots = screenshots_dir();
    let ctl = app.data_dir.join("restart.ctl");
    let script = format!("{e2e}/chat.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .env("MOIM_URL", &app.base)
        .env("MOIM_CHROMIUM", &chromium)
        .env("MOIM_SCREENSHOTS", &shots)
        .env("MOIM_RESTART_FILE", &ctl)
        .spawn()
        .expect("start node");
    // The script asks for a server restart by creating the control file; we restart on the same
    // port (the page must reconnect by itself) and write the answer back.
    let mut restarted = false;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st.unwrap(),
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                if !restarted && ctl.exists() {
                    app.restart_same_port().await;
                    std::fs::write(&ctl, "restarted").unwrap();
                    restarted = true;
                }
            }
        }
    };
    assert!(
        status.success(),
        "browser script failed: {status:?}; screenshots in {shots}"
    );
    assert!(restarted, "the script never asked for a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_is_uploaded_played_and_shared_in_chromium() {
    let Some((chromium, e2e)) = browser_setup(true) else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    // Twelve seconds of H.264/AAC with a keyframe every second: remuxed, three segments.
    let clip = app.data_dir.join("clip.mp4");
    make_clip(&clip, 12, "640x360");
    let shots = screenshots_dir();
    let status = tokio::process::Command::new("node")
        .arg(format!("{e2e}/library.mjs"))
        .env("MOIM_URL", &app.base)
        .env("MOIM_CHROMIUM", &chromium)
        .env("MOIM_SCREENSHOTS", &shots)
        .env("MOIM_VIDEO_FILE", &clip)
        .status()
        .await
        .expect("start node");
    assert!(
        status.success(),
        "library browser script failed: {status:?}; screenshots in {shots}; server log in {}",
        app.data_dir.join("server.log").display()
    );
}

/// Makes `seconds` of H.264/AAC test pattern and tone at `size`, a keyframe every second.
fn make_clip(path: &std::path::Path, seconds: u32, size: &str) {
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=30"))
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:sample_rate=48000",
            "-t",
        ])
        .arg(seconds.to_string())
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "64k"])
        .arg(path)
        .status()
        .expect("run ffmpeg");
    assert!(made.success(), "ffmpeg made {}", path.display());
}

/// Four browsers watch one video together, one of them 100 ms away each way; the script
/// measures how far apart they are (e2e/party.mjs) and prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_browsers_watch_together_in_sync() {
    let Some((chromium, e2e)) = browser_setup(true) else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    let clip = app.data_dir.join("film.mp4");
    make_clip(&clip, 150, "320x240");
    let shots = screenshots_dir();
    let out = tokio::process::Command::new("node")
        .arg(format!("{e2e}/party.mjs"))
        .env("MOIM_URL", &app.base)
        .env("MOIM_CHROMIUM", &chromium)
        .env("MOIM_SCREENSHOTS", &shots)
        .env("MOIM_VIDEO_FILE", &clip)
        .env("MOIM_PARTY_STEADY_S", "60")
        // Beside the suite's other heavy tests on two cores the players starve now and then:
        // "together" means in sync at all here; the benchmark measures to 0.1 s alone.
        .env("MOIM_PARTY_CONVERGED_S", "0.5")
        .output()
        .await
        .expect("start node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(
        out.status.success(),
        "party browser script failed: {:?}; screenshots in {shots}; server log in {}\n{}",
        out.status,
        app.data_dir.join("server.log").display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PARTY-FIGURES {"),
        "the script reports its figures"
    );
}

/// A photo for the browser test: a `w`×`h` JPEG of soft bands in `rgb`'s hue.
fn photo(path: &std::path::Path, w: u16, h: u16, rgb: [u8; 3]) {
    let mut pixels = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let shade = 0.55 + 0.45 * (((x / 40 + y / 60) % 5) as f32 / 4.0);
            pixels.extend(rgb.iter().map(|c| (*c as f32 * shade) as u8));
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    std::fs::write(path, out).unwrap();
}

/// The community in the browser: a place with photos, a review, a listing, and a second member
/// who finds, likes, comments and contacts the seller, then the two chat (e2e/community.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_post_places_with_photos_and_chat_with_a_seller() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    // The real local model when there is one (CI starts it), else the stand-in server.
    let llm = match std::env::var("MOIM_TEST_LLM_URL") {
        Ok(url) => url,
        Err(_) => {
            crate::drafts::fake_server(crate::drafts::Quirk::RefusesPictures)
                .await
                .0
        }
    };
    let (tiles, tiles_served) = tile_server().await;
    let app = spawn_with(
        Backend::Sqlite,
        &[
            "--ai-base-url",
            &llm,
            "--ai-timeout-s",
            "120",
            "--map-tile-url",
            &tiles,
            "--map-attribution",
            "moim test tiles <b>bold</b>",
        ],
    )
    .await;
    let paths: Vec<std::path::PathBuf> = [
        (1600, 1200, [200, 120, 60]),
        (1200, 1600, [60, 140, 200]),
        (1000, 750, [90, 170, 90]),
    ]
    .iter()
    .enumerate()
    .map(|(i, (w, h, rgb))| {
        let p = app.data_dir.join(format!("photo{i}.jpg"));
        photo(&p, *w, *h, *rgb);
        p
    })
    .collect();
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let photos = list.join(",");
    run_script(
        &e2e,
        "community.mjs",
        &app,
        &chromium,
        &[("MOIM_PHOTOS", photos.as_str())],
        "COMMUNITY-OK",
    )
    .await;
    let served = tiles_served.load(std::sync::atomic::Ordering::SeqCst);
    assert!(served > 0, "the maps drew the operator's tiles");
}

/// Three friends plan a dinner from one invite link: each other's viewports on the map (its
/// tiles from a local tile server), pins, a ranked poll with its live count and its winner
/// (e2e/plan.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_friends_plan_a_dinner_from_one_link() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    let (tiles, tiles_served) = tile_server().await;
    let app = spawn_with(
        Backend::Sqlite,
        &[
            "--map-tile-url",
            &tiles,
            "--map-attribution",
            "moim test tiles",
            "--map-center",
            "37.5665,126.978",
        ],
    )
    .await;
    run_script(&e2e, "plan.mjs", &app, &chromium, &[], "PLAN-OK").await;
    assert!(tiles_served.load(std::sync::atomic::Ordering::SeqCst) > 0);
}

/// A member signs up with a provider in Chromium: the "Continue with …" buttons, the provider's
/// login and consent pages (oidc-provider on loopback), the username step, settings
/// (e2e/signin.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_signs_up_with_a_provider_in_the_browser() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    let Some(mut idp) = crate::signin::start_idp() else {
        return;
    };
    let app = crate::signin::spawn_for_browser(&mut idp).await;
    run_script(&e2e, "signin.mjs", &app, &chromium, &[], "SIGNIN-OK").await;
    let rows = app
        .sql_rows("SELECT provider FROM user_identities ORDER BY linked_at")
        .await;
    assert_eq!(rows, vec!["test".to_string(), "test".to_string()]);
}

/// A broadcast from Chromium by WHIP (fake camera and microphone), watched by two Chromium
/// pages by WHEP through moim's SFU: both decode the picture and get the sound (e2e/webrtc.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_publishes_by_whip_and_two_chromiums_watch_by_whep() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    let key = stage_key(&app).await;
    run_script(
        &e2e,
        "webrtc.mjs",
        &app,
        &chromium,
        &[("MOIM_SLUG", "stage"), ("MOIM_STREAM_KEY", &key)],
        "WEBRTC-OK",
    )
    .await;
}

/// A broadcast sent as three simulcast layers, watched by two Chromium pages: the one behind a
/// link narrower than the full layer (a relay in the script) is shown a smaller layer than the
/// one on a fast link, and moves up to the full picture when its link opens
/// (e2e/webrtc-simulcast.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_viewer_is_shown_the_simulcast_layer_its_link_carries() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    // moim's socket on 127.0.0.1; the relay on 127.0.0.2 at the same port, named in the slow
    // viewer's answer instead of moim's.
    let port = free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let app = spawn_with(Backend::Sqlite, &["--webrtc-listen", &listen]).await;
    let key = stage_key(&app).await;
    run_script(
        &e2e,
        "webrtc-simulcast.mjs",
        &app,
        &chromium,
        &[
            ("MOIM_SLUG", "stage"),
            ("MOIM_STREAM_KEY", &key),
            ("MOIM_MEDIA", &listen),
            ("MOIM_RELAY_LISTEN", &format!("127.0.0.2:{port}")),
        ],
        "WEBRTC-SIMULCAST-OK",
    )
    .await;
}

/// Three members talk in a room's voice chat (fake microphones): each hears the others, mute
/// silences one for the rest, the owner removes one (e2e/voice.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_talk_in_a_rooms_voice_chat() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    run_script(&e2e, "voice.mjs", &app, &chromium, &[], "VOICE-OK").await;
}

/// A TURN server on loopback (Debian's coturn, with the REST-API shared secret moim mints
/// credentials from), ended when dropped. None (skipped; a failure under `MOIM_REQUIRE_ALL=1`)
/// without `turnserver`.
struct Turn {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TURN_SECRET: &str = "turn-shared-secret-for-the-tests";

fn start_turn() -> Option<Turn> {
    let bin = std::env::var("MOIM_TURNSERVER").unwrap_or_else(|_| "turnserver".into());
    if Command::new(&bin).arg("--version").output().is_err() {
        assert!(
            !require_all(),
            "coturn's turnserver is required (MOIM_REQUIRE_ALL=1): Debian package coturn"
        );
        eprintln!("SKIPPED (TURN): install coturn to run the TURN relay test");
        return None;
    }
    let port = crate::helpers::free_tcp_port();
    let log = std::env::temp_dir().join(format!("moim-turn-{}-{port}.log", std::process::id()));
    let child = Command::new(&bin)
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
        .arg(format!("--listening-port={port}"))
        .args([
            "--use-auth-secret",
            &format!("--static-auth-secret={TURN_SECRET}"),
            "--realm=moim.test",
            // moim's media socket is on loopback here; coturn refuses loopback peers otherwise.
            "--allow-loopback-peers",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--fingerprint",
            "--simple-log",
        ])
        .arg(format!("--log-file={}", log.display()))
        .arg(format!("--pidfile={}", log.with_extension("pid").display()))
        .arg(format!("--db={}", log.with_extension("db").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start turnserver");
    let mut turn = Turn { child, port, log };
    // Ready when it takes TCP connections.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            turn.child.try_wait().unwrap().is_none(),
            "turnserver exited; its log is {}",
            turn.log.display()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "turnserver did not listen within 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    turn.port = port;
    Some(turn)
}

/// Two members whose browsers use relayed candidates only (as behind a firewall that lets out
/// nothing but TCP to the TURN server) talk in a room's voice chat through the TURN server moim names, over TCP
/// (e2e/voice-turn.mjs): the credentials moim minted are the ones coturn takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_behind_a_udp_blocking_firewall_talk_through_a_turn_relay() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    let Some(turn) = start_turn() else {
        return;
    };
    let servers = format!("turn:127.0.0.1:{}?transport=tcp", turn.port);
    let app = crate::helpers::spawn_with_env(
        Backend::Sqlite,
        &["--webrtc-ice-servers", &servers],
        &[("MOIM_WEBRTC_TURN_SECRET", TURN_SECRET)],
    )
    .await;
    run_script(
        &e2e,
        "voice-turn.mjs",
        &app,
        &chromium,
        &[],
        "VOICE-TURN-OK",
    )
    .await;
    drop(turn);
}

/// Two members talk over ICE-TCP when UDP cannot reach moim: its UDP candidate is advertised
/// at 127.0.0.3, where nothing takes UDP, and its TCP listener is there (e2e/voice-tcp.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_talk_over_ice_tcp_when_udp_does_not_get_through() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    let app = spawn_with(
        Backend::Sqlite,
        &[
            "--webrtc-listen",
            "127.0.0.1:0",
            "--webrtc-advertise",
            "127.0.0.3",
            "--webrtc-tcp-listen",
            "127.0.0.3:0",
        ],
    )
    .await;
    run_script(&e2e, "voice-tcp.mjs", &app, &chromium, &[], "VOICE-TCP-OK").await;
}

/// Two members in voice lose the network for 2 s and then for 12 s (their media through a UDP
/// relay in the script that drops everything, their pages offline): both come back by
/// themselves each time and hear each other again (e2e/voice-drop.mjs), which prints how long
/// that took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_comes_back_by_itself_after_the_network_drops() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    // moim's socket on 127.0.0.1, the relay on 127.0.0.2 at the same port: moim advertises the
    // relay, so every datagram goes through it.
    let port = free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let app = spawn_with(
        Backend::Sqlite,
        &[
            "--webrtc-listen",
            &listen,
            "--webrtc-advertise",
            "127.0.0.2",
        ],
    )
    .await;
    run_script(
        &e2e,
        "voice-drop.mjs",
        &app,
        &chromium,
        &[
            ("MOIM_RELAY_LISTEN", &format!("127.0.0.2:{port}")),
            ("MOIM_RELAY_TARGET", &listen),
        ],
        "VOICE-DROP-OK",
    )
    .await;
}

/// The owner goes live from the room page (fake camera) and a viewer on the room page watches
/// in real time; stopping takes the viewer back to offline (e2e/webrtc-room.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_goes_live_from_the_room_page_and_a_viewer_watches_in_real_time() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    run_script(
        &e2e,
        "webrtc-room.mjs",
        &app,
        &chromium,
        &[],
        "WEBRTC-ROOM-OK",
    )
    .await;
}

/// Glass-to-glass through the SFU, measured from a clock drawn into the publisher's canvas and
/// read back from the viewer's frames, next to a direct connection (e2e/webrtc-g2g.mjs, short;
/// the figures are `moim-bench webrtc`'s). No timing is asserted: only that it measures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glass_to_glass_is_measured_through_the_sfu() {
    let Some((chromium, e2e)) = browser_setup(false) else {
        return;
    };
    let app = crate::helpers::spawn_with(Backend::Sqlite, &["--login-rate-per-min", "1000"]).await;
    run_script(
        &e2e,
        "webrtc-g2g.mjs",
        &app,
        &chromium,
        &[("MOIM_G2G_S", "3"), ("MOIM_FIRST_FRAMES", "2")],
        "WEBRTC-FIGURES",
    )
    .await;
}

/// Runs `e2e/{script}` against `app` (screenshots to the usual folder) and checks it exited
/// well and printed `marker`; says where the screenshots and the server log are when not.
/// A streamer's room `stage` on `app`, and its stream key.
async fn stage_key(app: &crate::helpers::TestApp) -> String {
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let (s, k) = owner.client.get("/api/v1/rooms/stage/stream-key").await;
    assert_eq!(s, 200);
    k["stream_key"].as_str().unwrap().to_string()
}

/// A UDP port free on 127.0.0.1 now (for moim's media socket, with a relay at the same port
/// on another loopback address).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn run_script(
    e2e: &str,
    script: &str,
    app: &crate::helpers::TestApp,
    chromium: &str,
    env: &[(&str, &str)],
    marker: &str,
) {
    let shots = screenshots_dir();
    let out = tokio::process::Command::new("node")
        .arg(format!("{e2e}/{script}"))
        .env("MOIM_URL", &app.base)
        .env("MOIM_CHROMIUM", chromium)
        .env("MOIM_SCREENSHOTS", &shots)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("start node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !(out.status.success() && stdout.contains(marker)) {
        // The server's log goes with the test's data directory: its end is shown here.
        let log = std::fs::read_to_string(app.data_dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(80).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{script} failed: {:?}; screenshots in {shots}\n{}\n--- the end of the server's log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            tail.join("\n")
        );
    }
}

/// A tile server on loopback: every `/{z}/{x}/{y}.png` is the same grid picture. Returns its
/// URL template and the count of tiles served.
async fn tile_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut grid = image::RgbImage::from_pixel(256, 256, image::Rgb([214, 226, 206]));
    for i in 0..256 {
        for j in [0, 128] {
            grid.put_pixel(i, j, image::Rgb([160, 170, 150]));
            grid.put_pixel(j, i, image::Rgb([160, 170, 150]));
        }
    }
    let mut png = Vec::new();
    grid.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let png = axum::body::Bytes::from(png);
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let app = axum::Router::new().route(
        "/{z}/{x}/{file}",
        axum::routing::get(move || {
            count.fetch_add(1, Ordering::SeqCst);
            let png = png.clone();
            async move { ([("content-type", "image/png")], png) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/{{z}}/{{x}}/{{y}}.png"), served)
}
