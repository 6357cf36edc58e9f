//! Rooms over HTTP: create, list, read, update, delete, message paging, permissions.

use serde_json::json;

use crate::helpers::{eventually, ints, spawn_app, strs, Backend};

backend_tests!(
    create_and_read_rooms,
    room_permissions,
    rooms_list_by_viewers_then_activity,
    message_paging,
    health_and_metrics,
    first_stream_key_is_one_key_under_concurrency,
);

async fn create_and_read_rooms(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signup("alice").await;
    let (st, body) = app
        .anon()
        .post("/api/v1/rooms", json!({"slug": "anon", "title": "x"}))
        .await;
    assert_eq!((st, body["error"].as_str()), (401, Some("login_required")));
    let (st, body) = alice
        .client
        .post(
            "/api/v1/rooms",
            json!({"slug": "movie-night", "title": "  영화의 밤 🎬 "}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["room"]["slug"], "movie-night");
    assert_eq!(body["room"]["title"], "영화의 밤 🎬");
    assert_eq!(body["room"]["owner"], "alice");
    assert_eq!(body["room"]["viewers"], 0);
    assert!(body["room"]["created_at"].as_str().unwrap().contains('T'));
    for (slug, code) in [
        ("ab", "invalid_slug"),
        ("Upper", "invalid_slug"),
        ("has space", "invalid_slug"),
        (&"a".repeat(49) as &str, "invalid_slug"),
    ] {
        let (st, body) = alice
            .client
            .post("/api/v1/rooms", json!({"slug": slug, "title": "t"}))
            .await;
        assert_eq!((st, body["error"].as_str()), (400, Some(code)), "{slug}");
    }
    let (st, body) = alice
        .client
        .post(
            "/api/v1/rooms",
            json!({"slug": "empty-title", "title": "  "}),
        )
        .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_title")));
    let (st, body) = alice
        .client
        .post(
            "/api/v1/rooms",
            json!({"slug": "movie-night", "title": "again"}),
        )
        .await;
    assert_eq!((st, body["error"].as_str()), (409, Some("slug_taken")));

    let (st, body) = app.anon().get("/api/v1/rooms/movie-night").await;
    assert_eq!(st, 200);
    assert_eq!(body["room"]["title"], "영화의 밤 🎬");
    assert_eq!(body["permissions"]["moderate"], false);
    let (_, body) = alice.client.get("/api/v1/rooms/movie-night").await;
    assert_eq!(body["permissions"]["manage"], true);
    let (st, body) = app.anon().get("/api/v1/rooms/nope").await;
    assert_eq!((st, body["error"].as_str()), (404, Some("not_found")));

    // Members own at most 50 rooms (alice is the admin, so a member tries).
    let bob = app.signup("bob").await;
    for i in 0..50 {
        let (st, _) = bob
            .client
            .post(
                "/api/v1/rooms",
                json!({"slug": format!("bob-{i}"), "title": "t"}),
            )
            .await;
        assert_eq!(st, 201);
    }
    let (st, body) = bob
        .client
        .post("/api/v1/rooms", json!({"slug": "bob-50", "title": "t"}))
        .await;
    assert_eq!((st, body["error"].as_str()), (409, Some("too_many_rooms")));
}

async fn room_permissions(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.signup("admin").await;
    let owner = app.signup("owner").await;
    let other = app.signup("other").await;
    app.room(&owner, "mine").await;
    let (st, body) = other
        .client
        .patch("/api/v1/rooms/mine", json!({"title": "hijacked"}))
        .await;
    assert_eq!((st, body["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(other.client.delete("/api/v1/rooms/mine").await.0, 403);
    assert_eq!(app.anon().delete("/api/v1/rooms/mine").await.0, 401);
    let (st, body) = owner
        .client
        .patch(
            "/api/v1/rooms/mine",
            json!({"title": "Renamed", "slow_mode_s": 5}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["room"]["title"], "Renamed");
    assert_eq!(body["room"]["slow_mode_s"], 5);
    let (st, body) = owner
        .client
        .patch("/api/v1/rooms/mine", json!({"slow_mode_s": -1}))
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("invalid_slow_mode"))
    );
    // Site admins manage every room.
    assert_eq!(
        admin
            .client
            .patch("/api/v1/rooms/mine", json!({"title": "Admin was here"}))
            .await
            .0,
        200
    );
    assert_eq!(owner.client.delete("/api/v1/rooms/mine").await.0, 204);
    assert_eq!(app.anon().get("/api/v1/rooms/mine").await.0, 404);
}

async fn rooms_list_by_viewers_then_activity(b: Backend) {
    let app = spawn_app(b).await;
    let u = app.signup("lister").await;
    for slug in ["quiet", "busy", "newest"] {
        app.room(&u, slug).await;
    }
    // "busy" gets two viewers; the others none, so newest activity decides between them.
    let mut a = app.ws(None, "busy", None).await;
    let mut c = app.ws(Some(&u), "busy", None).await;
    a.welcome().await;
    c.welcome().await;
    let (_, body) = app.anon().get("/api/v1/rooms").await;
    let slugs: Vec<String> = strs(&body["rooms"], "slug");
    assert_eq!(slugs, ["busy", "newest", "quiet"]);
    assert_eq!(body["rooms"][0]["viewers"], 2);
    // A message makes "quiet" the most recently active of the empty rooms.
    let mut q = app.ws(Some(&u), "quiet", None).await;
    q.welcome().await;
    q.say("hello").await;
    q.expect("message").await;
    q.close().await;
    eventually(10, || async {
        let (_, body) = app.anon().get("/api/v1/rooms").await;
        let slugs: Vec<String> = strs(&body["rooms"], "slug");
        (slugs == ["busy", "quiet", "newest"]).then_some(())
    })
    .await;
}

async fn message_paging(b: Backend) {
    let app = spawn_app(b).await;
    let u = app.signup("pager").await;
    app.room(&u, "paged").await;
    let mut ws = app.ws(Some(&u), "paged", None).await;
    ws.welcome().await;
    for i in 1..=12 {
        // The owner moderates, so the rate limit does not apply.
        ws.say(&format!("m{i}")).await;
    }
    for _ in 1..=12 {
        ws.expect("message").await;
    }
    let (_, body) = app.anon().get("/api/v1/rooms/paged/messages?limit=5").await;
    let seqs: Vec<i64> = ints(&body["messages"], "seq");
    assert_eq!(seqs, [8, 9, 10, 11, 12]);
    let (_, body) = app
        .anon()
        .get("/api/v1/rooms/paged/messages?before=8&limit=5")
        .await;
    let texts: Vec<String> = strs(&body["messages"], "text");
    assert_eq!(texts, ["m3", "m4", "m5", "m6", "m7"]);
    let (st, body) = app
        .anon()
        .get("/api/v1/rooms/paged/messages?limit=201")
        .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_limit")));
}

async fn health_and_metrics(b: Backend) {
    let app = spawn_app(b).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(app.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        http.get(app.url("/readyz")).send().await.unwrap().status(),
        200
    );
    let u = app.signup("metric").await;
    app.room(&u, "counted").await;
    let mut ws = app.ws(Some(&u), "counted", None).await;
    ws.welcome().await;
    ws.say("one").await;
    ws.expect("message").await;
    let needles = [
        "moim_ws_connections 1",
        "moim_rooms_active 1",
        "moim_chat_messages_in_total 1",
        "moim_chat_messages_out_total 1",
        "moim_chat_fanout_seconds_count 1",
        "moim_http_requests_total{route=\"/api/v1/rooms\",status=\"201\"} 1",
    ];
    // Counters are bumped right after the write the client saw, so allow them a moment.
    let http2 = http.clone();
    let url = app.url("/metrics");
    eventually(10, || {
        let (http, url) = (http2.clone(), url.clone());
        async move {
            let text = http.get(&url).send().await.ok()?.text().await.ok()?;
            needles.iter().all(|n| text.contains(n)).then_some(())
        }
    })
    .await;
    // The home page and assets are served.
    let home = http.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("/assets/app.js"));
    assert_eq!(
        http.get(app.url("/assets/app.js"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// The first stream key is made on first use; callers racing for it all get the same one (the
/// old read-then-upsert could hand two callers different keys, one of them already dead).
async fn first_stream_key_is_one_key_under_concurrency(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("streamer").await;
    for round in 0..5 {
        let slug = format!("keys-{round}");
        app.room(&owner, &slug).await;
        let path = format!("/api/v1/rooms/{slug}/stream-key");
        let calls = (0..8).map(|_| {
            let c = owner.client.clone();
            let path = path.clone();
            tokio::spawn(async move { c.get(&path).await })
        });
        let mut keys = std::collections::BTreeSet::new();
        for call in calls {
            let (st, body) = call.await.unwrap();
            assert_eq!(st, 200, "{body}");
            keys.insert(body["stream_key"].as_str().unwrap().to_string());
        }
        assert_eq!(keys.len(), 1, "round {round}: {keys:?}");
        let (_, again) = owner.client.get(&path).await;
        assert_eq!(
            again["stream_key"].as_str(),
            keys.first().map(|k| k.as_str())
        );
    }
}
