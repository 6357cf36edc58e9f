//! WHIP and WHEP over HTTP against the real server, with real UDP on loopback: a publisher and
//! viewers made of str0m peers in the test (the same WebRTC library the server uses, speaking
//! the same wire protocol as a browser), their offers sent as RFC 9725 says, media flowing
//! through moim's SFU, and every refusal the contract names.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::json;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::helpers::{eventually, spawn_app, Backend, TestApp};

backend_tests!(
    a_browser_style_publisher_reaches_whep_viewers_through_moim,
    whip_and_whep_refuse_what_the_contract_says
);

/// With the media socket on every address and the address to use advertised (as behind NAT),
/// peers still connect: the datagrams' destination is the advertised candidate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_on_every_address_with_an_advertised_one_connects() {
    let app = crate::helpers::spawn_with(
        Backend::Sqlite,
        &[
            "--webrtc-listen",
            "0.0.0.0:0",
            "--webrtc-advertise",
            "127.0.0.1",
        ],
    )
    .await;
    publish_and_watch(&app).await;
}

/// With an ICE-TCP listener, answers name a passive TCP candidate; a connection sending a frame
/// out of bounds (RFC 4571 length 0 or above 4 KiB) is closed, and frames no peer claims are
/// dropped without ending anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_is_offered_and_bad_frames_close_only_their_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app =
        crate::helpers::spawn_with(Backend::Sqlite, &["--webrtc-tcp-listen", "127.0.0.1:0"]).await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let (_, offer) = Peer::new(false, false);
    let (s, _, answer) = post_sdp(&app, "/api/v1/rooms/stage/whep", &offer, None, None).await;
    assert_eq!(s, 201, "{answer}");
    let tcp = answer
        .lines()
        .find(|l| {
            l.starts_with("a=candidate:") && l.contains(" tcp ") && l.contains("tcptype passive")
        })
        .unwrap_or_else(|| panic!("no passive TCP candidate in {answer}"));
    let port: u16 = tcp.split(' ').nth(5).unwrap().parse().unwrap();
    // Frames no peer claims: dropped, the connection stays.
    let mut ok = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    ok.write_all(&[0, 4, 1, 2, 3, 4]).await.unwrap();
    for bad in [vec![0u8, 0], vec![0xff, 0xff, 1, 2, 3]] {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        c.write_all(&bad).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("closed within 10 s")
            .unwrap_or(0);
        assert_eq!(n, 0, "a bad frame closes its connection: {bad:?}");
    }
    ok.write_all(&[0, 2, 9, 9]).await.unwrap();
    let mut buf = [0u8; 16];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), ok.read(&mut buf))
            .await
            .is_err(),
        "the good connection is still open and quiet"
    );
    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}

/// With STUN and TURN servers configured, pages get them from `/webrtc/ice-servers` and WHIP and
/// WHEP clients in `Link` headers: TURN credentials (coturn's REST scheme, checked here by
/// recomputing the HMAC) only for a signed-in member or a stream key, never for an anonymous
/// viewer; without servers, neither says anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_servers_reach_pages_and_whip_clients_with_turn_only_for_known_ones() {
    use base64::Engine as _;
    use hmac::Mac as _;
    let app = crate::helpers::spawn_with_env(
        Backend::Sqlite,
        &[
            "--webrtc-ice-servers",
            "stun:stun.moim.test:3478,turn:turn.moim.test:3478?transport=tcp",
            "--webrtc-turn-ttl-s",
            "600",
        ],
        &[("MOIM_WEBRTC_TURN_SECRET", "a-shared-secret")],
    )
    .await;
    let checks_out = |username: &str, credential: &str| {
        let mut mac =
            hmac::Hmac::<sha1::Sha1>::new_from_slice(b"a-shared-secret").expect("any key");
        mac.update(username.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()) == credential
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Anonymous: STUN only.
    let anon: serde_json::Value = reqwest::get(app.url("/api/v1/webrtc/ice-servers"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        anon["ice_servers"],
        json!([{"urls": ["stun:stun.moim.test:3478"]}]),
        "{anon}"
    );
    // A member: TURN too, named after them, expiring in the configured time.
    let owner = app.signup("streamer").await;
    let (s, v) = owner.client.get("/api/v1/webrtc/ice-servers").await;
    assert_eq!(s, 200, "{v}");
    let turn = &v["ice_servers"][1];
    assert_eq!(
        turn["urls"],
        json!(["turn:turn.moim.test:3478?transport=tcp"])
    );
    let username = turn["username"].as_str().unwrap();
    let (expiry, who) = username.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(expiry >= now + 590 && expiry <= now + 610, "{username}");
    assert!(who.starts_with('u'), "{username}");
    assert!(
        checks_out(username, turn["credential"].as_str().unwrap()),
        "{v}"
    );

    // WHIP: Link headers with TURN credentials.
    app.room(&owner, "stage").await;
    let key = stream_key(&app, &owner, "stage").await;
    let (_, offer) = Peer::new(true, false);
    let (s, h, body) = post_sdp(&app, "/api/v1/rooms/stage/whip", &offer, Some(&key), None).await;
    assert_eq!(s, 201, "{body}");
    let links: Vec<&str> = h
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[0], "<stun:stun.moim.test:3478>; rel=\"ice-server\"");
    let turn_link = links[1];
    assert!(
        turn_link.starts_with(
            "<turn:turn.moim.test:3478?transport=tcp>; rel=\"ice-server\"; username=\""
        ),
        "{turn_link}"
    );
    let field = |name: &str| {
        let at = turn_link.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        turn_link[at..].split('"').next().unwrap().to_string()
    };
    assert!(field("username").ends_with(":room-stage"), "{turn_link}");
    assert!(
        checks_out(&field("username"), &field("credential")),
        "{turn_link}"
    );
    assert_eq!(field("credential-type"), "password");
    // WHEP, anonymous: STUN only.
    let (_, view) = Peer::new(false, false);
    let (s, h, body) = post_sdp(&app, "/api/v1/rooms/stage/whep", &view, None, None).await;
    assert_eq!(s, 201, "{body}");
    let links: Vec<_> = h.get_all("link").iter().collect();
    assert_eq!(links.len(), 1, "{links:?}");

    // Without servers: an empty list, and no Link header.
    let bare = spawn_app(Backend::Sqlite).await;
    let v: serde_json::Value = reqwest::get(bare.url("/api/v1/webrtc/ice-servers"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ice_servers"], json!([]));
}

/// A browser broadcast goes through the same pipeline as an RTMP one: real H.264 (x264) and
/// Opus (libopus) made by ffmpeg, sent by a str0m publisher over WHIP, come out as the room's
/// broadcast: LIVE on the room's socket, LL-HLS with both tracks, and a recording that ffmpeg
/// decodes without an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_broadcast_is_live_in_hls_and_kept_as_a_video() {
    if !crate::live::have_ffmpeg() {
        return;
    }
    let app = spawn_app(Backend::Sqlite).await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let key = stream_key(&app, &owner, "stage").await;
    let (video, audio) = encoded_media();
    let mut ws = app.ws(None, "stage", None).await;
    ws.welcome().await;

    let (mut publisher, offer) = Peer::new(true, false);
    let (s, h, answer) = post_sdp(&app, "/api/v1/rooms/stage/whip", &offer, Some(&key), None).await;
    assert_eq!(s, 201, "{answer}");
    let location = header(&h, "location").to_string();
    publisher.accept(&answer);
    // The publisher streams in real time on its own thread until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let streaming = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            pump_until(&mut [&mut publisher], 10, |ps| ps[0].connected);
            let start = Instant::now();
            let (mut v, mut a) = (0usize, 0usize);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(start.elapsed() < Duration::from_secs(40), "never stopped");
                let ms = start.elapsed().as_millis() as usize;
                // Loops over the clip, RTP time running on.
                while v * 1000 / 30 <= ms {
                    let au = video[v % video.len()].clone();
                    publisher.send_h264(v as u64, au);
                    v += 1;
                }
                while a * 20 <= ms {
                    let packet = audio[a % audio.len()].clone();
                    publisher.send(MediaKind::Audio, a as u64, packet);
                    a += 1;
                }
                publisher.pump();
            }
            (publisher, start.elapsed().as_secs_f64())
        })
    };
    let started = crate::live::expect_live_frame(&mut ws, "started").await;
    assert_eq!(started["hls_url"], "/live/stage/index.m3u8", "{started}");
    assert_eq!(crate::live::live_state(&app, "stage").await["live"], true);
    // One publisher per room, whichever way: an RTMP encoder with the same key is refused.
    let (_, rtmp_url) = crate::live::stream_key(&app, &owner, "stage").await;
    let mut encoder = crate::live::publish(&rtmp_url, 5);
    let refused = tokio::task::spawn_blocking(move || encoder.wait().unwrap())
        .await
        .unwrap();
    assert!(!refused.success(), "the RTMP publish was refused");
    // The multivariant playlist names both codecs as they came: H.264 and Opus.
    let index = eventually(20, || async {
        let (st, text, _) = crate::live::get_text(&app, "/live/stage/index.m3u8").await;
        (st == 200 && text.contains("opus")).then_some(text)
    })
    .await;
    assert!(index.contains("avc1.42"), "{index}");
    let media = index
        .lines()
        .find(|l| l.ends_with(".m3u8") && !l.starts_with('#'))
        .expect("a media playlist")
        .to_string();
    let base = format!("/live/stage/{}", media.trim_start_matches("/live/stage/"));
    let playlist = eventually(20, || async {
        let (_, text, _) = crate::live::get_text(&app, &base).await;
        (text.matches("#EXTINF").count() >= 2).then_some(text)
    })
    .await;
    assert!(playlist.contains("#EXT-X-PART:"), "{playlist}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (_publisher, streamed) = tokio::task::spawn_blocking(move || streaming.join().unwrap())
        .await
        .unwrap();
    // WHIP DELETE ends the broadcast at once: the playlist closes, the recording is kept.
    assert_eq!(delete_with(&app, &location, &key).await, 200);
    crate::live::expect_live_frame(&mut ws, "ended").await;
    let video = eventually(30, || async {
        let (_, body) = owner.client.get("/api/v1/videos").await;
        let v = body["videos"][0].clone();
        (v["status"] == "ready").then_some(v)
    })
    .await;
    let dur = video["duration_s"].as_f64().unwrap();
    // From the first keyframe to the last frame, give or take the segment being cut.
    assert!(
        dur > streamed - 1.5 && dur < streamed + 0.5,
        "a recording of {dur} s for {streamed:.1} s of streaming"
    );
    let id = video["id"].as_str().unwrap();
    let vod = app.url(&format!("/videos/{id}/index.m3u8"));
    assert_eq!(crate::live::decode_errors(&vod), "");
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&vod)
        .output()
        .unwrap();
    let codecs = String::from_utf8_lossy(&probe.stdout);
    assert!(
        codecs.contains("h264") && codecs.contains("opus"),
        "the recording's streams: {codecs}"
    );
}

/// While an RTMP encoder is live, a WHIP offer with the room's key is refused (409) and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_live_from_rtmp_refuses_a_whip_publisher() {
    if !crate::live::have_ffmpeg() {
        return;
    }
    let app = spawn_app(Backend::Sqlite).await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let (key, url) = crate::live::stream_key(&app, &owner, "stage").await;
    let mut ws = app.ws(None, "stage", None).await;
    ws.welcome().await;
    let mut encoder = crate::live::publish(&url, 20);
    crate::live::expect_live_frame(&mut ws, "started").await;
    let (_, offer) = Peer::new(true, false);
    let (s, _, body) = post_sdp(&app, "/api/v1/rooms/stage/whip", &offer, Some(&key), None).await;
    assert_eq!(s, 409, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "already_publishing");
    assert!(body["message"].as_str().unwrap().contains("RTMP"), "{body}");
    encoder.kill().unwrap();
    let _ = encoder.wait();
}

/// Voice in a room over HTTP and the room socket: who may join, members on their lines hearing
/// each other through moim, mute by the member and by a moderator, removal, and a ban taking a
/// member out of voice at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_chat_joins_hears_mutes_and_bans_as_the_contract_says() {
    let app = spawn_app(Backend::Sqlite).await;
    let owner = app.signup("host").await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    app.room(&owner, "talk").await;
    let mut ws = app.ws(None, "talk", None).await;
    assert_eq!(ws.welcome().await["voice"], json!([]));
    let post = |user: Option<&crate::helpers::User>, sdp: String, ct: &str| {
        let mut req = reqwest::Client::new()
            .post(app.url("/api/v1/rooms/talk/voice"))
            .header("content-type", ct.to_string())
            .header("origin", app.base.clone())
            .body(sdp);
        if let Some(u) = user {
            req = req.header("cookie", u.cookie.clone());
        }
        async move {
            let r = req.send().await.unwrap();
            let st = r.status().as_u16();
            let loc = header(r.headers(), "location").to_string();
            (st, loc, r.text().await.unwrap())
        }
    };
    let (mut a, offer_a, _) = Peer::voice();
    assert_eq!(post(None, offer_a.clone(), "application/sdp").await.0, 401);
    assert_eq!(
        post(Some(&alice), offer_a.clone(), "text/plain").await.0,
        415
    );
    let (st, _, body) = post(Some(&alice), "v=0\r\nnonsense".into(), "application/sdp").await;
    assert_eq!(st, 400, "{body}");
    let (st, a_url, answer) = post(Some(&alice), offer_a, "application/sdp").await;
    assert_eq!(st, 201, "{answer}");
    assert!(a_url.starts_with("/api/v1/voice/"), "{a_url}");
    a.accept(&answer);
    let (mut b, offer_b, b_recv) = Peer::voice();
    let (st, b_url, answer) = post(Some(&bob), offer_b, "application/sdp").await;
    assert_eq!(st, 201, "{answer}");
    b.accept(&answer);

    // Both connect; alice speaks; bob hears her on the receiving line of her slot.
    let (a, b) = tokio::task::spawn_blocking(move || {
        let (mut a, mut b) = (a, b);
        pump_until(&mut [&mut a, &mut b], 10, |ps| {
            ps.iter().all(|p| p.connected)
        });
        for n in 0..10u64 {
            a.send(MediaKind::Audio, n, format!("alice {n}").into_bytes());
            for _ in 0..10 {
                a.pump();
                b.pump();
            }
        }
        pump_until(&mut [&mut a, &mut b], 10, |ps| ps[1].got_on.len() >= 10);
        (a, b)
    })
    .await
    .unwrap();
    let members = loop {
        let f = next_of(&mut ws, "voice.members").await;
        if f["members"].as_array().unwrap().len() == 2 {
            break f["members"].clone();
        }
    };
    assert_eq!(members[0]["user"], "alice");
    assert_eq!(members[0]["line"], 0);
    assert_eq!(members[1]["user"], "bob");
    assert_eq!(members[1]["muted"], false);
    let line_a = members[0]["line"].as_u64().unwrap() as usize;
    assert!(
        b.got_on.iter().all(|(mid, _)| *mid == b_recv[line_a]),
        "alice is heard on line {line_a}"
    );
    assert_eq!(b.got_on[0].1, b"alice 0");
    // An ICE restart (the network changed): a new offer to the session, answered in place.
    let mut a = a;
    let mut api = a.rtc.sdp_api();
    api.ice_restart(true);
    let (offer, pending) = api.apply().expect("an offer");
    let r = reqwest::Client::new()
        .patch(app.url(&a_url))
        .header("origin", app.base.clone())
        .header("content-type", "application/sdp")
        .body(offer.to_sdp_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(r.headers(), "content-type"), "application/sdp");
    let answer = SdpAnswer::from_sdp_string(&r.text().await.unwrap()).unwrap();
    a.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    drop(a);

    // Alice mutes herself: the room is told.
    let patch = |url: &str, body: serde_json::Value| {
        let req = reqwest::Client::new()
            .patch(app.url(url))
            .header("origin", app.base.clone())
            .json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(patch(&a_url, json!({"muted": true})).await, 204);
    assert_eq!(patch(&a_url, json!({"muted": true, "loud": 1})).await, 422);
    // Nothing to change is refused; a camera needs a session offered with video m-lines (the
    // browser's camera path is in e2e/voice.mjs).
    assert_eq!(patch(&a_url, json!({})).await, 400);
    assert_eq!(patch(&a_url, json!({"camera": true})).await, 422);
    assert_eq!(patch(&a_url, json!({"camera": false})).await, 200);
    assert_eq!(
        patch(
            "/api/v1/voice/00000000000000000000000000000000",
            json!({"muted": true})
        )
        .await,
        404
    );
    loop {
        let f = next_of(&mut ws, "voice.members").await;
        if f["members"][0]["muted"] == true {
            break;
        }
    }
    // Only moderators mute or remove others.
    let (st, _) = bob
        .client
        .post(
            "/api/v1/rooms/talk/voice/moderate",
            json!({"username": "alice", "action": "unmute"}),
        )
        .await;
    assert_eq!(st, 403);
    let (st, body) = owner
        .client
        .post(
            "/api/v1/rooms/talk/voice/moderate",
            json!({"username": "bob", "action": "mute"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["sessions"], 1);
    // A moderator's mute holds: bob unmuting himself changes nothing.
    assert_eq!(patch(&b_url, json!({"muted": false})).await, 204);
    loop {
        let f = next_of(&mut ws, "voice.members").await;
        let m = f["members"].as_array().unwrap().clone();
        if let Some(b) = m.iter().find(|m| m["user"] == "bob") {
            if b["held"] == true {
                assert_eq!(b["muted"], true, "{b}");
                break;
            }
        }
    }
    // The owner, moderators and admins are not muted or removed by a moderator.
    let (st, _) = owner
        .client
        .post(
            "/api/v1/rooms/talk/voice/moderate",
            json!({"username": "host", "action": "mute"}),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = owner
        .client
        .post(
            "/api/v1/rooms/talk/voice/moderate",
            json!({"username": "carol", "action": "remove"}),
        )
        .await;
    assert_eq!(st, 404);
    // A ban takes bob out of voice at once, and keeps him out.
    let (st, body) = owner
        .client
        .post("/api/v1/rooms/talk/bans", json!({"username": "bob"}))
        .await;
    assert_eq!(st, 201, "{body}");
    loop {
        let f = next_of(&mut ws, "voice.members").await;
        let m = f["members"].as_array().unwrap().clone();
        if m.len() == 1 {
            assert_eq!(m[0]["user"], "alice");
            break;
        }
    }
    let (_, again, _) = Peer::voice();
    assert_eq!(post(Some(&bob), again, "application/sdp").await.0, 403);
    drop(b);
    // A session someone else ended says so (410: the page does not rejoin); one lost to the
    // network or left is just not there (404: the page may join again).
    let said = |url: &str| {
        let req = reqwest::Client::new()
            .patch(app.url(url))
            .header("origin", app.base.clone())
            .json(&json!({"muted": false}));
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (st, body) = said(&b_url).await;
    assert_eq!(st, 410, "{body}");
    assert!(body.contains("voice_removed"), "{body}");
    // Alice joins again from elsewhere: that session replaces the first.
    let (_, offer_a2, _) = Peer::voice();
    let (st, a2_url, body) = post(Some(&alice), offer_a2, "application/sdp").await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = said(&a_url).await;
    assert_eq!(st, 410, "{body}");
    assert!(body.contains("voice_replaced"), "{body}");
    // A page joining again by itself names the session it had: one that was replaced (or
    // removed) stays ended; a malformed name is refused.
    let rejoin = |previous: String| {
        let (_, offer, _) = Peer::voice();
        let req = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/rooms/talk/voice?previous={previous}")))
            .header("content-type", "application/sdp")
            .header("origin", app.base.clone())
            .header("cookie", alice.cookie.clone())
            .body(offer);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let old_id = a_url.rsplit('/').next().unwrap().to_string();
    let (st, body) = rejoin(old_id).await;
    assert_eq!(st, 410, "{body}");
    assert!(body.contains("voice_replaced"), "{body}");
    let (st, body) = rejoin("nope".into()).await;
    assert_eq!(st, 400, "{body}");
    // Alice leaves: nobody is in voice.
    let del = reqwest::Client::new()
        .delete(app.url(&a2_url))
        .header("origin", app.base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 200);
    loop {
        let f = next_of(&mut ws, "voice.members").await;
        if f["members"] == json!([]) {
            break;
        }
    }
}

/// Two seconds of real media, made by ffmpeg: H.264 access units (Annex B, baseline, no
/// B-frames, a keyframe each second, as a browser's encoder makes when asked) and 20 ms Opus
/// packets (read out of the Ogg pages).
fn encoded_media() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dir = std::env::temp_dir().join(format!("moim-test-rtc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (h264, ogg) = (dir.join("v.h264"), dir.join("a.ogg"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=30",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-profile:v",
        "baseline",
        "-bf",
        "0",
        "-g",
        "30",
        "-x264-params",
        "aud=1",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "h264",
        h264.to_str().unwrap(),
    ]);
    run(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "2",
        "-c:a",
        "libopus",
        "-frame_duration",
        "20",
        "-ac",
        "2",
        ogg.to_str().unwrap(),
    ]);
    // Access units begin at each access unit delimiter (NAL type 9).
    let bytes = std::fs::read(&h264).unwrap();
    let mut starts = Vec::new();
    for i in 0..bytes.len().saturating_sub(4) {
        if bytes[i..i + 4] == [0, 0, 0, 1] && bytes[i + 4] & 0x1f == 9 {
            starts.push(i);
        }
    }
    starts.push(bytes.len());
    let video: Vec<Vec<u8>> = starts
        .windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .collect();
    assert!(video.len() >= 50, "{} access units", video.len());
    // Ogg: pages of "OggS", a segment table, then packets laced in 255-byte pieces.
    let ogg = std::fs::read(&ogg).unwrap();
    let (mut packets, mut current, mut at) = (Vec::new(), Vec::new(), 0);
    while at + 27 <= ogg.len() && &ogg[at..at + 4] == b"OggS" {
        let segments = ogg[at + 26] as usize;
        let table = &ogg[at + 27..at + 27 + segments];
        let mut body = at + 27 + segments;
        for &len in table {
            current.extend_from_slice(&ogg[body..body + len as usize]);
            body += len as usize;
            if len < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        at = body;
    }
    // The first two packets are the OpusHead and OpusTags headers.
    let audio: Vec<Vec<u8>> = packets.into_iter().skip(2).collect();
    assert!(audio.len() >= 90, "{} Opus packets", audio.len());
    let _ = std::fs::remove_dir_all(&dir);
    (video, audio)
}

/// A WebRTC peer in the test with its own UDP socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    audio: Mid,
    video: Mid,
    connected: bool,
    got_audio: Vec<Vec<u8>>,
    got_video: usize,
    /// Every frame received, with its m-line.
    got_on: Vec<(Mid, Vec<u8>)>,
    pending: Option<SdpPendingOffer>,
}

impl Peer {
    /// A publisher (sendonly) or viewer (recvonly) with audio and video, and its offer.
    fn new(send: bool, video_vp9_only: bool) -> (Peer, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let mut rtc = if video_vp9_only {
            Rtc::builder()
                .clear_codecs()
                .enable_opus(true, false)
                .enable_vp9(true)
        } else {
            Rtc::builder()
        }
        .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let dir = if send {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        };
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, dir, None, None, None);
        let video = api.add_media(MediaKind::Video, dir, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        (
            Peer {
                rtc,
                socket,
                audio,
                video,
                connected: false,
                got_audio: Vec::new(),
                got_video: 0,
                got_on: Vec::new(),
                pending: Some(pending),
            },
            offer.to_sdp_string(),
        )
    }

    /// A voice member: its microphone, then eight receiving audio lines (their mids).
    fn voice() -> (Peer, String, Vec<Mid>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mic = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let recv: Vec<Mid> = (0..8)
            .map(|_| api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None))
            .collect();
        let (offer, pending) = api.apply().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        let peer = Peer {
            rtc,
            socket,
            audio: mic,
            video: mic,
            connected: false,
            got_audio: Vec::new(),
            got_video: 0,
            got_on: Vec::new(),
            pending: Some(pending),
        };
        (peer, offer.to_sdp_string(), recv)
    }

    fn accept(&mut self, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("an SDP answer");
        let pending = self.pending.take().unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Sends what str0m wants sent and takes in what arrived (waiting at most 2 ms for it).
    fn pump(&mut self) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    self.socket.send_to(&t.contents, t.destination).unwrap();
                }
                Output::Event(e) => match e {
                    Event::Connected => self.connected = true,
                    Event::MediaData(d) if d.mid != self.audio && d.mid != self.video => {
                        self.got_on.push((d.mid, d.data.to_vec()))
                    }
                    Event::MediaData(d) if d.mid == self.audio => {
                        self.got_audio.push(d.data.to_vec())
                    }
                    Event::MediaData(d) if d.mid == self.video => self.got_video += 1,
                    _ => {}
                },
            }
        }
        let mut buf = [0u8; 2048];
        let local = self.socket.local_addr().unwrap();
        match self.socket.recv_from(&mut buf) {
            Ok((n, source)) => {
                let input = Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: local,
                        contents: buf[..n].try_into().unwrap(),
                    },
                );
                self.rtc.handle_input(input).unwrap();
            }
            Err(_) => self
                .rtc
                .handle_input(Input::Timeout(Instant::now()))
                .unwrap(),
        }
    }

    /// Sends one H.264 access unit (Annex B) as frame `n` at 30 fps.
    fn send_h264(&mut self, n: u64, data: Vec<u8>) {
        let w = self.rtc.writer(self.video).expect("a sending m-line");
        let pt = w
            .payload_params()
            .find(|p| {
                p.spec().codec == str0m::format::Codec::H264
                    && p.spec().format.packetization_mode == Some(1)
            })
            .expect("H.264 negotiated")
            .pt();
        let time = MediaTime::new(n * 3000, Frequency::NINETY_KHZ);
        w.write(pt, Instant::now(), time, data).unwrap();
    }

    fn send(&mut self, kind: MediaKind, n: u64, data: Vec<u8>) {
        let mid = if kind == MediaKind::Audio {
            self.audio
        } else {
            self.video
        };
        let w = self.rtc.writer(mid).expect("a sending m-line");
        let pt = w
            .payload_params()
            .find(|p| {
                let c = format!("{:?}", p.spec().codec).to_ascii_lowercase();
                c.contains("opus") || c.contains("vp8") || c.contains("h264")
            })
            .expect("a negotiated codec")
            .pt();
        let time = if kind == MediaKind::Audio {
            MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ)
        } else {
            MediaTime::new(n * 3000, Frequency::NINETY_KHZ)
        };
        w.write(pt, Instant::now(), time, data).unwrap();
    }
}

/// Runs the peers until `done` holds, for at most `secs` seconds.
fn pump_until(peers: &mut [&mut Peer], secs: u64, mut done: impl FnMut(&[&mut Peer]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(peers) {
        assert!(Instant::now() < deadline, "not reached within {secs} s");
        for p in peers.iter_mut() {
            p.pump();
        }
    }
}

async fn post_sdp(
    app: &TestApp,
    path: &str,
    sdp: &str,
    key: Option<&str>,
    cookie: Option<&str>,
) -> (u16, HeaderMap, String) {
    let mut req = reqwest::Client::new()
        .post(app.url(path))
        .header("content-type", "application/sdp")
        .body(sdp.to_string());
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    if let Some(c) = cookie {
        req = req.header("cookie", c).header("origin", &app.base);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

async fn stream_key(app: &TestApp, owner: &crate::helpers::User, slug: &str) -> String {
    let (s, k) = owner
        .client
        .get(&format!("/api/v1/rooms/{slug}/stream-key"))
        .await;
    assert_eq!(s, 200, "{k}");
    assert!(app.base.starts_with("http"));
    k["stream_key"].as_str().unwrap().to_string()
}

/// A PATCH of a trickle fragment to a session (with the stream key when given): its status.
async fn patch_frag(app: &TestApp, session: &str, key: Option<&str>, frag: &str) -> u16 {
    let mut req = reqwest::Client::new()
        .patch(app.url(session))
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body(frag.to_string());
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    req.send().await.unwrap().status().as_u16()
}

/// A DELETE of a session with the stream key: its status.
async fn delete_with(app: &TestApp, session: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .delete(app.url(session))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The next frame of `ty` (viewer counts and the like may come first).
async fn next_of(ws: &mut crate::helpers::Ws, ty: &str) -> serde_json::Value {
    loop {
        let v = ws.next().await;
        if v["type"] == ty {
            return v;
        }
    }
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn a_browser_style_publisher_reaches_whep_viewers_through_moim(backend: Backend) {
    let app = spawn_app(backend).await;
    publish_and_watch(&app).await;
}

async fn publish_and_watch(app: &TestApp) {
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    let key = stream_key(app, &owner, "stage").await;

    let (mut publisher, offer) = Peer::new(true, false);
    let (s, h, answer) = post_sdp(app, "/api/v1/rooms/stage/whip", &offer, Some(&key), None).await;
    assert_eq!(s, 201, "{answer}");
    assert_eq!(header(&h, "content-type"), "application/sdp");
    let location = header(&h, "location").to_string();
    assert!(
        location.starts_with("/api/v1/whip/"),
        "relative Location: {location}"
    );
    assert!(!header(&h, "etag").is_empty());
    // The answer names the media socket on loopback as a host candidate; moim is ICE-lite.
    assert!(
        answer.contains("a=candidate:") && answer.contains("127.0.0.1"),
        "{answer}"
    );
    assert!(answer.contains("a=ice-lite"), "{answer}");
    publisher.accept(&answer);
    // The room's sockets hear when the publisher connects (and a welcome says so later).
    let mut ws = app.ws(None, "stage", None).await;
    assert_eq!(ws.welcome().await["realtime"], false);

    let mut viewers = Vec::new();
    for _ in 0..2 {
        let (mut v, offer) = Peer::new(false, false);
        let (s, h, answer) = post_sdp(app, "/api/v1/rooms/stage/whep", &offer, None, None).await;
        assert_eq!(s, 201, "{answer}");
        assert!(header(&h, "location").starts_with("/api/v1/whep/"));
        v.accept(&answer);
        viewers.push(v);
    }

    let (_publisher, viewers) = tokio::task::spawn_blocking(move || {
        let mut publisher = publisher;
        let mut viewers = viewers;
        let (a, b) = viewers.split_at_mut(1);
        let mut all = vec![&mut publisher, &mut a[0], &mut b[0]];
        pump_until(&mut all, 10, |ps| ps.iter().all(|p| p.connected));
        // 50 Opus frames 20 ms apart, a video frame every 100 ms, until both viewers have
        // every audio frame.
        let start = Instant::now();
        let mut sent = 0u64;
        let deadline = start + Duration::from_secs(15);
        while all[1].got_audio.len() < 50 || all[2].got_audio.len() < 50 {
            assert!(
                Instant::now() < deadline,
                "viewers got {} and {} of 50 frames",
                all[1].got_audio.len(),
                all[2].got_audio.len()
            );
            let due = (start.elapsed().as_millis() as u64 / 20).min(50);
            while sent < due {
                all[0].send(MediaKind::Audio, sent, format!("opus {sent}").into_bytes());
                if sent.is_multiple_of(5) {
                    all[0].send(MediaKind::Video, sent, vec![sent as u8; 2500]);
                }
                sent += 1;
            }
            for p in all.iter_mut() {
                p.pump();
            }
        }
        drop(all);
        (publisher, viewers)
    })
    .await
    .unwrap();
    let frame = next_of(&mut ws, "realtime").await;
    assert_eq!(frame["publishing"], true, "{frame}");
    let mut later = app.ws(None, "stage", None).await;
    assert_eq!(later.welcome().await["realtime"], true);
    assert_eq!(delete_with(app, &location, &key).await, 200);
    let frame = next_of(&mut ws, "realtime").await;
    assert_eq!(frame["publishing"], false, "{frame}");
    let expected: Vec<Vec<u8>> = (0..50).map(|n| format!("opus {n}").into_bytes()).collect();
    for v in &viewers {
        assert_eq!(
            v.got_audio[..50],
            expected[..],
            "every frame, in order, unchanged"
        );
        assert!(v.got_video >= 5, "video frames forwarded: {}", v.got_video);
    }
}

async fn whip_and_whep_refuse_what_the_contract_says(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.signup("streamer").await;
    app.room(&owner, "stage").await;
    app.room(&owner, "other").await;
    let key = stream_key(&app, &owner, "stage").await;
    let other_key = stream_key(&app, &owner, "other").await;
    let (_, offer) = Peer::new(true, false);

    // The key: missing, wrong, another room's.
    for k in [None, Some("nope"), Some(other_key.as_str())] {
        let (s, _, body) = post_sdp(&app, "/api/v1/rooms/stage/whip", &offer, k, None).await;
        assert_eq!(s, 401, "{k:?}: {body}");
        assert!(body.contains("invalid_stream_key"), "{body}");
    }
    // Not SDP.
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/rooms/stage/whip"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    // Broken SDP, and a publisher offering VP9 video only.
    let (s, _, body) = post_sdp(
        &app,
        "/api/v1/rooms/stage/whip",
        "v=0\r\nnonsense",
        Some(&key),
        None,
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("invalid_sdp"), "{body}");
    let (_, vp9) = Peer::new(true, true);
    let (s, _, body) = post_sdp(&app, "/api/v1/rooms/stage/whip", &vp9, Some(&key), None).await;
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("VP9") && body.contains("H.264"), "{body}");

    // One publisher; a second is refused.
    let (s, h, answer) = post_sdp(&app, "/api/v1/rooms/stage/whip", &offer, Some(&key), None).await;
    assert_eq!(s, 201);
    let session = header(&h, "location").to_string();
    let (_, offer2) = Peer::new(true, false);
    let (s, _, body) = post_sdp(&app, "/api/v1/rooms/stage/whip", &offer2, Some(&key), None).await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("already_publishing"));

    // OPTIONS says what is taken.
    let resp = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            app.url("/api/v1/rooms/stage/whip"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(header(resp.headers(), "accept-post"), "application/sdp");

    // Trickled candidates: taken (ICE-lite learns addresses from the checks). A real trickle
    // fragment names the session's own ufrag; one with new credentials is an ICE restart.
    let ufrag = offer
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .to_string();
    let frag = format!(
        "a=ice-ufrag:{ufrag}\r\na=ice-pwd:whatever\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
         a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
    );
    assert_eq!(patch_frag(&app, &session, Some(&key), &frag).await, 204);
    let restart = "a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\n";
    assert_eq!(
        patch_frag(&app, &session, Some(&key), restart).await,
        428,
        "an ICE restart comes with If-Match (RFC 9725)"
    );
    let restarted = reqwest::Client::new()
        .patch(app.url(&session))
        .header("content-type", "application/trickle-ice-sdpfrag")
        .header("if-match", "*")
        .header("authorization", format!("Bearer {key}"))
        .body(restart)
        .send()
        .await
        .unwrap();
    assert_eq!(restarted.status().as_u16(), 200);
    assert_eq!(
        header(restarted.headers(), "content-type"),
        "application/trickle-ice-sdpfrag"
    );
    assert!(!header(restarted.headers(), "etag").is_empty());
    let frag = restarted.text().await.unwrap();
    let new_ufrag = frag
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("moim's new ufrag");
    assert!(
        frag.contains("a=ice-pwd:") && !answer.contains(&format!("a=ice-ufrag:{new_ufrag}\r")),
        "new credentials: {frag}"
    );
    // The session now has the client's new ufrag: a fragment with it is plain trickle.
    let again = "a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\n";
    assert_eq!(patch_frag(&app, &session, Some(&key), again).await, 204);

    // Ending it takes the room's key; then it is gone, and a new publisher may come.
    assert_eq!(delete_with(&app, &session, &other_key).await, 401);
    assert_eq!(delete_with(&app, &session, &key).await, 200);
    assert_eq!(delete_with(&app, &session, &key).await, 404);
    assert_eq!(delete_with(&app, "/api/v1/whip/not-an-id", &key).await, 404);
    crate::helpers::eventually(5, || async {
        let (_, o) = Peer::new(true, false);
        let (s, _, _) = post_sdp(&app, "/api/v1/rooms/stage/whip", &o, Some(&key), None).await;
        (s == 201).then_some(())
    })
    .await;

    // A new stream key ends the publisher on the old one: the new key may publish at once.
    let (s, rotated) = owner
        .client
        .post("/api/v1/rooms/stage/stream-key", json!({}))
        .await;
    assert_eq!(s, 201, "{rotated}");
    let new_key = rotated["stream_key"].as_str().unwrap().to_string();
    let (_, o) = Peer::new(true, false);
    let (s, _, _) = post_sdp(&app, "/api/v1/rooms/stage/whip", &o, Some(&key), None).await;
    assert_eq!(s, 401, "the old key is refused");
    crate::helpers::eventually(5, || async {
        let (_, o) = Peer::new(true, false);
        let (s, _, _) = post_sdp(&app, "/api/v1/rooms/stage/whip", &o, Some(&new_key), None).await;
        (s == 201).then_some(())
    })
    .await;
    // A viewer's session ends with its room.
    let (_, v) = Peer::new(false, false);
    let (s, h, _) = post_sdp(&app, "/api/v1/rooms/stage/whep", &v, None, None).await;
    assert_eq!(s, 201);
    let viewer = header(&h, "location").to_string();
    let end = "a=end-of-candidates\r\n";
    assert_eq!(
        patch_frag(&app, &viewer, None, end).await,
        204,
        "the viewer's session is there"
    );
    let (s, _) = owner.client.delete("/api/v1/rooms/stage").await;
    assert_eq!(s, 204);
    // (a PATCH only looks the session up: 204 while it lives, 404 once it is gone)
    crate::helpers::eventually(5, || async {
        (patch_frag(&app, &viewer, None, end).await == 404).then_some(())
    })
    .await;

    // WHEP: a private room's broadcast is for members only.
    let (s, _) = owner
        .client
        .patch("/api/v1/rooms/other", json!({"visibility": "private"}))
        .await;
    assert_eq!(s, 200);
    let (_, view) = Peer::new(false, false);
    let (s, _, _) = post_sdp(&app, "/api/v1/rooms/other/whep", &view, None, None).await;
    assert_eq!(s, 404);
    let (s, _, body) = post_sdp(
        &app,
        "/api/v1/rooms/other/whep",
        &view,
        None,
        Some(&owner.cookie),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    // A private room cannot broadcast.
    let (s, _, _) = post_sdp(
        &app,
        "/api/v1/rooms/other/whip",
        &offer,
        Some(&other_key),
        None,
    )
    .await;
    assert_eq!(s, 403);
    // An unknown room.
    let (s, _, _) = post_sdp(&app, "/api/v1/rooms/nowhere/whep", &view, None, None).await;
    assert_eq!(s, 404);
}
