//! Watch together over the room socket: who may command, the state after each command, late
//! joiners, buffering and its wait, the queue, a broadcast taking over, and private videos
//! seen through the room.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_with, Backend, TestApp, User, Ws};
use crate::live::{have_ffmpeg, publish, stream_key};

backend_tests!(
    controllers_command_the_party_and_everyone_follows,
    a_stalled_member_holds_the_group_at_most_the_wait,
    the_queue_plays_on_and_a_broadcast_pauses_the_party,
    a_private_video_is_seen_through_the_room_only_while_the_party_holds_it,
);

/// A ready video staged straight in the database (the socket needs only its row).
async fn staged(app: &TestApp, owner: &User, id: &str, seconds: u32, visibility: &str) {
    app.sql(&format!(
        "INSERT INTO videos (public_id, owner_id, title, source, status, duration_ms, \
         visibility, created_at, updated_at) VALUES ('{id}', {}, 'Film {id}', 'upload', \
         'ready', {}, '{visibility}', 1, 1)",
        owner.id,
        seconds * 1000
    ))
    .await;
}

/// The next `party.state` frame, skipping chat and viewer counts.
async fn state(ws: &mut Ws) -> Value {
    loop {
        let f = ws.next().await;
        if f["type"] == "party.state" {
            return f;
        }
        assert_ne!(f["type"], "error", "{f}");
    }
}

/// The first `party.state` frame with revision `rev` (skipping older ones).
async fn at_rev(ws: &mut Ws, rev: &Value) -> Value {
    loop {
        let s = state(ws).await;
        if &s["rev"] == rev {
            return s;
        }
        assert!(s["rev"].as_u64() < rev.as_u64(), "{s} is past {rev}");
    }
}

/// The next `error` frame's code (skipping states others' commands made before it).
async fn refused(ws: &mut Ws) -> String {
    loop {
        let f = ws.next().await;
        if f["type"] == "error" {
            return f["code"].as_str().unwrap().to_string();
        }
    }
}

/// The server's clock, asked over the socket.
async fn server_ms(ws: &mut Ws) -> f64 {
    ws.send(json!({"type": "time.ping", "t0": 1})).await;
    loop {
        let f = ws.next().await;
        if f["type"] == "time.pong" {
            return f["server_ms"].as_f64().unwrap();
        }
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

async fn controllers_command_the_party_and_everyone_follows(b: Backend) {
    let app = spawn_app(b).await;
    app.signup("admin").await; // the first account is the site's admin
    let own = app.signup("own").await;
    let mina = app.signup("mina").await;
    let jun = app.signup("jun").await;
    app.room(&own, "cinema").await;
    staged(&app, &own, "film1", 600, "public").await;
    staged(&app, &mina, "minas", 600, "private").await;
    staged(&app, &own, "pending", 600, "public").await;
    app.sql("UPDATE videos SET status = 'processing' WHERE public_id = 'pending'")
        .await;

    let mut o = app.ws(Some(&own), "cinema", None).await;
    assert_eq!(o.welcome().await["party"], Value::Null, "no party yet");
    let mut m = app.ws(Some(&mina), "cinema", None).await;
    m.welcome().await;
    let mut anon = app.ws(None, "cinema", None).await;
    anon.welcome().await;

    // Only controllers command; guests take no part.
    m.send(json!({"type": "party.load", "video_id": "film1"}))
        .await;
    assert_eq!(refused(&mut m).await, "forbidden");
    anon.send(json!({"type": "party.play"})).await;
    assert_eq!(refused(&mut anon).await, "login_required");
    // Nothing to play yet; someone else's private video and an unready one cannot be loaded.
    o.send(json!({"type": "party.play"})).await;
    assert_eq!(refused(&mut o).await, "no_video");
    o.send(json!({"type": "party.load", "video_id": "minas"}))
        .await;
    assert_eq!(refused(&mut o).await, "not_found");
    o.send(json!({"type": "party.load", "video_id": "pending"}))
        .await;
    assert_eq!(refused(&mut o).await, "video_not_ready");

    o.send(json!({"type": "party.load", "video_id": "film1"}))
        .await;
    let loaded = state(&mut o).await;
    for ws in [&mut m, &mut anon] {
        assert_eq!(state(ws).await, loaded, "everyone gets the same state");
    }
    assert_eq!(loaded["video"]["id"], "film1");
    assert_eq!(loaded["video"]["title"], "Film film1");
    assert_eq!(loaded["video"]["hls_url"], "/videos/film1/index.m3u8");
    assert_eq!(loaded["video"]["duration_s"], 600.0);
    assert_eq!(loaded["playing"], false);
    assert_eq!(loaded["host"]["username"], "own");
    assert_eq!(loaded["mode"], "host");
    assert_eq!(loaded["change"]["action"], "load");
    assert_eq!(loaded["change"]["by"]["username"], "own");

    // Play is scheduled a little ahead of the moment it is asked for.
    let before = server_ms(&mut o).await;
    o.send(json!({"type": "party.play"})).await;
    let playing = state(&mut o).await;
    assert_eq!(playing["playing"], true);
    assert_eq!(playing["position_s"], 0.0);
    let at = f(&playing["at_server_ms"]);
    assert!(
        at >= before + 150.0 - 1.0,
        "scheduled ahead: {at} vs {before}"
    );
    assert!(playing["rev"].as_u64() > loaded["rev"].as_u64());
    assert_eq!(at_rev(&mut m, &playing["rev"]).await, playing);

    o.send(json!({"type": "party.seek", "position_s": 120}))
        .await;
    let sought = state(&mut o).await;
    assert_eq!(sought["position_s"], 120.0);
    assert_eq!(sought["playing"], true);
    assert_eq!(sought["change"]["action"], "seek");
    o.send(json!({"type": "party.rate", "rate": 1.5})).await;
    let rated = state(&mut o).await;
    assert_eq!(rated["rate"], 1.5);
    o.send(json!({"type": "party.rate", "rate": 9})).await;
    assert_eq!(refused(&mut o).await, "invalid_command");
    o.send(json!({"type": "party.seek", "position_s": -3}))
        .await;
    assert_eq!(refused(&mut o).await, "invalid_command");

    // A late joiner's welcome carries the state as it is.
    let mut j = app.ws(Some(&jun), "cinema", None).await;
    let welcome = j.welcome().await;
    assert_eq!(welcome["party"]["rev"], rated["rev"]);
    assert_eq!(welcome["party"]["position_s"], rated["position_s"]);
    assert_eq!(welcome["party"]["at_server_ms"], rated["at_server_ms"]);
    // The REST mirror says the same and lists who is in.
    let (st, body) = jun.client.get("/api/v1/rooms/cinema/party").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["party"]["rev"], rated["rev"]);
    let names: Vec<&str> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["jun", "mina", "own"]);
    let (st, _) = app.anon().get("/api/v1/rooms/nowhere/party").await;
    assert_eq!(st, 404);

    o.send(json!({"type": "party.pause"})).await;
    let paused = state(&mut o).await;
    assert_eq!(paused["playing"], false);
    assert!(f(&paused["position_s"]) >= 120.0);
    assert_eq!(paused["change"]["action"], "pause");
    for ws in [&mut m, &mut anon, &mut j] {
        // Each gets every state in order.
        at_rev(ws, &paused["rev"]).await;
    }

    // Control modes: everyone, then selected members.
    j.send(json!({"type": "party.play"})).await;
    assert_eq!(refused(&mut j).await, "forbidden");
    m.send(json!({"type": "party.mode", "mode": "everyone"}))
        .await;
    assert_eq!(
        refused(&mut m).await,
        "forbidden",
        "the owner sets the mode"
    );
    o.send(json!({"type": "party.mode", "mode": "everyone"}))
        .await;
    assert_eq!(state(&mut j).await["mode"], "everyone");
    // A member timed out in the room gives no commands meanwhile.
    let (st, body) = own
        .client
        .post(
            "/api/v1/rooms/cinema/timeouts",
            json!({"username": "jun", "duration_s": 60}),
        )
        .await;
    assert!(st == 200 || st == 201, "{st} {body}");
    j.send(json!({"type": "party.play"})).await;
    assert_eq!(refused(&mut j).await, "timed_out");
    let (st, body) = own.client.delete("/api/v1/rooms/cinema/timeouts/jun").await;
    assert!(st == 200 || st == 204, "{st} {body}");
    j.send(json!({"type": "party.play"})).await;
    let s = state(&mut j).await;
    assert_eq!(
        (&s["playing"], &s["change"]["by"]["username"]),
        (&json!(true), &json!("jun"))
    );
    o.send(json!({"type": "party.mode", "mode": "selected", "selected": [mina.id]}))
        .await;
    let s = state(&mut j).await;
    assert_eq!(s["mode"], "selected");
    let named: Vec<&str> = s["controllers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["username"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["own", "mina"]);
    j.send(json!({"type": "party.pause"})).await;
    assert_eq!(refused(&mut j).await, "forbidden");
    m.send(json!({"type": "party.pause"})).await;
    assert_eq!(state(&mut j).await["playing"], false);
    o.send(json!({"type": "party.mode", "mode": "selected", "selected": ["999999"]}))
        .await;
    assert_eq!(refused(&mut o).await, "invalid_command");

    // The host role is handed over, and on.
    o.send(json!({"type": "party.mode", "mode": "host"})).await;
    assert_eq!(state(&mut j).await["mode"], "host");
    o.send(json!({"type": "party.host", "user_id": jun.id}))
        .await;
    assert_eq!(state(&mut j).await["host"]["username"], "jun");
    j.send(json!({"type": "party.seek", "position_s": 30}))
        .await;
    assert_eq!(state(&mut j).await["position_s"], 30.0);
    j.send(json!({"type": "party.host", "user_id": mina.id}))
        .await;
    assert_eq!(state(&mut j).await["host"]["username"], "mina");
    j.send(json!({"type": "party.play"})).await;
    assert_eq!(refused(&mut j).await, "forbidden");

    // The video is deleted: the party closes it.
    let (st, body) = own.client.delete("/api/v1/videos/film1").await;
    assert_eq!(st, 204, "{body}");
    let s = state(&mut j).await;
    assert_eq!(s["video"], Value::Null);
    let (_, body) = jun.client.get("/api/v1/rooms/cinema/party").await;
    assert_eq!(body["party"]["video"], Value::Null);
    assert_eq!(
        body["party"]["host"]["username"], "mina",
        "still shown: it has a host of its own"
    );
}

async fn a_stalled_member_holds_the_group_at_most_the_wait(b: Backend) {
    let app = spawn_with(b, &["--party-max-wait-ms", "700", "--party-lead-ms", "50"]).await;
    let own = app.signup("own").await;
    let mina = app.signup("mina").await;
    app.room(&own, "cinema").await;
    staged(&app, &own, "film1", 600, "unlisted").await;
    let mut o = app.ws(Some(&own), "cinema", None).await;
    o.welcome().await;
    let mut m = app.ws(Some(&mina), "cinema", None).await;
    m.welcome().await;
    let jun = app.signup("jun").await;
    let mut j = app.ws(Some(&jun), "cinema", None).await;
    j.welcome().await;
    o.send(json!({"type": "party.load", "video_id": "film1"}))
        .await;
    let loaded = state(&mut o).await;
    at_rev(&mut m, &loaded["rev"]).await;

    // The ready check shows who is ready; it never holds the start.
    m.send(json!({"type": "party.ready", "ready": true})).await;
    let s = state(&mut o).await;
    assert_eq!(s["ready"][0]["username"], "mina");
    o.send(json!({"type": "party.play"})).await;
    let s = state(&mut o).await;
    assert_eq!(s["playing"], true);
    assert_eq!(s["ready"][0]["username"], "mina", "still ready");
    at_rev(&mut m, &s["rev"]).await;

    // Mina stalls: the group holds, and goes on once she plays again.
    m.send(json!({"type": "party.buffering", "state": true}))
        .await;
    let held = state(&mut o).await;
    assert_eq!(held["waiting_for"][0]["username"], "mina");
    assert_eq!(held["change"]["action"], "waiting");
    m.send(json!({"type": "party.buffering", "state": false}))
        .await;
    let freed = state(&mut o).await;
    assert_eq!(freed["waiting_for"], json!([]));
    assert_eq!(freed["change"]["action"], "resumed");
    assert_eq!(
        freed["position_s"], held["position_s"],
        "on from where it froze"
    );

    // Stalling again so soon, she does not hold the group again (or a player that stalls
    // over and over would keep everyone frozen).
    m.send(json!({"type": "party.buffering", "state": true}))
        .await;
    m.send(json!({"type": "party.buffering", "state": false}))
        .await;
    // Jun stalls and stays stalled: after the wait the group goes on without him.
    j.send(json!({"type": "party.buffering", "state": true}))
        .await;
    let held = state(&mut o).await;
    assert_eq!(
        held["waiting_for"][0]["username"], "jun",
        "mina's second stall held nothing"
    );
    let freed = state(&mut o).await;
    assert_eq!(freed["waiting_for"], json!([]));
    assert_eq!(freed["change"]["action"], "resumed");
    assert!(f(&freed["at_server_ms"]) >= f(&held["at_server_ms"]) + 700.0);
    assert_eq!(freed["playing"], true);

    // Reports are taken (and measured) without a word back.
    m.send(
        json!({"type": "party.report", "position_s": 1.0, "at_server_ms": freed["at_server_ms"]}),
    )
    .await;
    m.send(json!({"type": "ping"})).await;
    loop {
        let f = m.next().await;
        assert_ne!(f["type"], "error", "{f}");
        if f["type"] == "pong" {
            break;
        }
    }
    // Party frames are paced per connection (each may reach everyone in the room).
    for i in 0..40 {
        j.send(json!({"type": "party.ready", "ready": i % 2 == 0}))
            .await;
    }
    loop {
        let f = j.next().await;
        if f["type"] == "error" {
            assert_eq!(f["code"], "rate_limited", "{f}");
            assert!(f["retry_after_ms"].as_u64().is_some());
            break;
        }
    }
    let metrics = app.anon().text("/metrics").await;
    assert!(
        metrics.contains("moim_party_drift_seconds_count 1"),
        "{metrics}"
    );
}

async fn the_queue_plays_on_and_a_broadcast_pauses_the_party(b: Backend) {
    let app = spawn_with(b, &["--party-lead-ms", "0", "--reconnect-grace-s", "1"]).await;
    let own = app.signup("own").await;
    app.room(&own, "cinema").await;
    staged(&app, &own, "short1", 1, "public").await;
    staged(&app, &own, "second", 600, "public").await;
    staged(&app, &own, "long", 600, "public").await;
    let mut o = app.ws(Some(&own), "cinema", None).await;
    o.welcome().await;
    o.send(json!({"type": "party.queue", "video_ids": ["second", "long"]}))
        .await;
    let s = state(&mut o).await;
    assert_eq!(s["queue"].as_array().unwrap().len(), 2);
    assert_eq!(s["video"], Value::Null);
    o.send(json!({"type": "party.queue", "video_ids": ["second", "nope"]}))
        .await;
    assert_eq!(refused(&mut o).await, "not_found");
    o.send(json!({"type": "party.load", "video_id": "short1"}))
        .await;
    state(&mut o).await;
    o.send(json!({"type": "party.play"})).await;
    assert_eq!(state(&mut o).await["playing"], true);
    // At the end of the first the next starts by itself.
    let next = state(&mut o).await;
    assert_eq!(next["change"]["action"], "advanced");
    assert_eq!(next["video"]["id"], "second");
    assert_eq!(next["playing"], true);
    assert_eq!(next["queue"][0]["id"], "long");
    // A controller skips ahead.
    o.send(json!({"type": "party.next"})).await;
    let s = state(&mut o).await;
    assert_eq!(s["video"]["id"], "long");
    assert_eq!(s["queue"], json!([]));

    if !have_ffmpeg() {
        return;
    }
    // A broadcast starts: the party pauses and may not play until it ends.
    let (_key, url) = stream_key(&app, &own, "cinema").await;
    let mut ffmpeg = publish(&url, 3);
    let s = loop {
        let f = o.next().await;
        if f["type"] == "party.state" {
            break f;
        }
    };
    assert_eq!(s["live"], true);
    assert_eq!(s["playing"], false);
    assert_eq!(s["change"]["action"], "interrupted");
    o.send(json!({"type": "party.play"})).await;
    assert_eq!(refused(&mut o).await, "live");
    o.send(json!({"type": "party.next"})).await;
    assert_eq!(refused(&mut o).await, "live");
    let _ = ffmpeg.wait();
    let s = state(&mut o).await;
    assert_eq!(s["live"], false);
    o.send(json!({"type": "party.play"})).await;
    assert_eq!(state(&mut o).await["playing"], true);
}

async fn a_private_video_is_seen_through_the_room_only_while_the_party_holds_it(b: Backend) {
    let app = spawn_app(b).await;
    app.signup("admin").await; // the first account is the site's admin
    let own = app.signup("own").await;
    let mina = app.signup("mina").await;
    app.room(&own, "cinema").await;
    staged(&app, &own, "secret", 60, "private").await;
    // Its files, as processing leaves them.
    let playlist = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init0.mp4\"\n#EXTINF:4,\ns0.m4s\n#EXT-X-ENDLIST\n";
    let store = app.store();
    for (name, body) in [
        ("index.m3u8", playlist.as_bytes()),
        ("init0.mp4", b"init".as_slice()),
        ("s0.m4s", b"segment".as_slice()),
    ] {
        store
            .put(
                &format!("videos/secret/{name}"),
                moim::storage::blobs::once(body.to_vec()),
            )
            .await
            .unwrap();
    }
    assert_eq!(app.anon().status("/videos/secret/index.m3u8").await, 404);
    assert_eq!(mina.client.status("/videos/secret/index.m3u8").await, 404);
    assert_eq!(
        mina.client.status("/party/cinema/secret/index.m3u8").await,
        404,
        "not before the party holds it"
    );

    let mut o = app.ws(Some(&own), "cinema", None).await;
    o.welcome().await;
    o.send(json!({"type": "party.load", "video_id": "secret"}))
        .await;
    let s = state(&mut o).await;
    assert_eq!(s["video"]["hls_url"], "/party/cinema/secret/index.m3u8");
    assert_eq!(
        mina.client.text("/party/cinema/secret/index.m3u8").await,
        playlist
    );
    // The playlist's relative names resolve under the room's address.
    assert_eq!(
        &app.anon().bytes("/party/cinema/secret/s0.m4s").await[..],
        b"segment"
    );
    assert_eq!(
        app.anon().status("/party/cinema/secret/original").await,
        404
    );
    assert_eq!(
        app.anon()
            .status("/party/cinema/secret/360p/index.m3u8")
            .await,
        404
    );
    // Not through another room, nor by its own address.
    app.room(&mina, "other").await;
    assert_eq!(
        mina.client.status("/party/other/secret/index.m3u8").await,
        404
    );
    assert_eq!(mina.client.status("/videos/secret/index.m3u8").await, 404);
    // A public video loaded by its address is not served through the room, and once its
    // owner makes it private the party lets it go.
    staged(&app, &own, "open", 60, "public").await;
    o.send(json!({"type": "party.queue", "video_ids": ["open"]}))
        .await;
    let s = state(&mut o).await;
    assert_eq!(s["queue"][0]["hls_url"], "/videos/open/index.m3u8");
    assert_eq!(
        app.anon().status("/party/cinema/open/index.m3u8").await,
        404
    );
    let (st, body) = own
        .client
        .patch("/api/v1/videos/open", json!({"visibility": "private"}))
        .await;
    assert_eq!(st, 200, "{body}");
    let s = state(&mut o).await;
    assert_eq!(s["queue"], json!([]));
    // Closed: gone from the room.
    o.send(json!({"type": "party.stop"})).await;
    assert_eq!(state(&mut o).await["video"], Value::Null);
    assert_eq!(
        mina.client.status("/party/cinema/secret/index.m3u8").await,
        404
    );
}
