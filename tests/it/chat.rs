//! Chat over the room WebSocket: delivery, history, resume, errors, viewer counts, filtering.

use serde_json::json;

use crate::helpers::{ints, spawn_app, spawn_with, strs, Backend};

backend_tests!(
    messages_reach_every_client_in_order,
    welcome_carries_last_100_messages,
    resume_with_since_has_no_gaps_or_duplicates,
    send_errors,
    rate_limit_and_slow_mode,
    viewer_counts_deduplicate_users,
    blocked_terms_are_masked,
    bad_frames_keep_the_connection,
    slow_readers_are_told_to_resync,
);

async fn messages_reach_every_client_in_order(b: Backend) {
    let app = spawn_app(b).await;
    let a = app.signup("alice").await;
    let bob = app.signup("bob").await;
    app.room(&a, "lobby").await;
    let mut wa = app.ws(Some(&a), "lobby", None).await;
    let mut wb = app.ws(Some(&bob), "lobby", None).await;
    let mut anon = app.ws(None, "lobby", None).await;
    let w = wa.welcome().await;
    assert_eq!(w["you"]["username"], "alice");
    assert_eq!(w["room"]["slug"], "lobby");
    assert_eq!(w["history"], json!([]));
    wb.welcome().await;
    let w = anon.welcome().await;
    assert!(w["you"].is_null());

    wa.send(json!({"type": "send", "text": "안녕하세요 <b>hi</b>", "nonce": "n-1"}))
        .await;
    wb.say("hello from bob").await;
    wa.say("second from alice").await;
    let mut seen = vec![];
    for ws in [&mut wa, &mut wb, &mut anon] {
        let mut got = vec![];
        for _ in 0..3 {
            let m = ws.expect("message").await;
            got.push((
                m["seq"].as_i64().unwrap(),
                m["user"]["username"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap().to_string(),
            ));
        }
        seen.push(got);
    }
    // Everyone sees the same sequence, seqs 1..=3, and text is delivered verbatim (escaping is the UI's job).
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    assert_eq!(seen[0].iter().map(|m| m.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(seen[0].iter().any(|m| m.2 == "안녕하세요 <b>hi</b>"));
    // Alice's order is kept for her own two messages.
    let alice_msgs: Vec<&str> = seen[0]
        .iter()
        .filter(|m| m.1 == "alice")
        .map(|m| m.2.as_str())
        .collect();
    assert_eq!(alice_msgs, ["안녕하세요 <b>hi</b>", "second from alice"]);
}

async fn welcome_carries_last_100_messages(b: Backend) {
    let app = spawn_app(b).await;
    let a = app.signup("talker").await;
    app.room(&a, "long").await;
    let mut ws = app.ws(Some(&a), "long", None).await;
    ws.welcome().await;
    for i in 1..=105 {
        ws.say(&format!("line {i}")).await;
    }
    for _ in 1..=105 {
        ws.expect("message").await;
    }
    let mut late = app.ws(None, "long", None).await;
    let w = late.welcome().await;
    let h = w["history"].as_array().unwrap();
    assert_eq!(h.len(), 100);
    assert_eq!(h[0]["seq"], 6);
    assert_eq!(h[0]["text"], "line 6");
    assert_eq!(h[99]["seq"], 105);
    assert!(w.get("truncated").is_none());
}

async fn resume_with_since_has_no_gaps_or_duplicates(b: Backend) {
    let app = spawn_app(b).await;
    let a = app.signup("writer").await;
    app.room(&a, "resume").await;
    let mut writer = app.ws(Some(&a), "resume", None).await;
    writer.welcome().await;
    let mut reader = app.ws(None, "resume", None).await;
    reader.welcome().await;
    for i in 1..=3 {
        writer.say(&format!("before {i}")).await;
    }
    let mut last = 0;
    for _ in 0..3 {
        last = reader.expect("message").await["seq"].as_i64().unwrap();
        writer.expect("message").await;
    }
    reader.close().await;
    for i in 1..=4 {
        writer.say(&format!("while away {i}")).await;
    }
    for _ in 0..4 {
        writer.expect("message").await;
    }
    let mut back = app.ws(None, "resume", Some(last)).await;
    let w = back.welcome().await;
    let texts: Vec<String> = strs(&w["history"], "text");
    assert_eq!(
        texts,
        [
            "while away 1",
            "while away 2",
            "while away 3",
            "while away 4"
        ]
    );
    let seqs: Vec<i64> = ints(&w["history"], "seq");
    assert_eq!(seqs, [4, 5, 6, 7]);
    // Live messages continue right after, without repeating.
    writer.say("after").await;
    let m = back.expect("message").await;
    assert_eq!(
        (m["seq"].as_i64(), m["text"].as_str()),
        (Some(8), Some("after"))
    );

    // A resume beyond the limit keeps the newest messages and says so.
    let app2 = spawn_app(app.backend.clone()).await;
    drop(app);
    let a = app2.signup("bulk").await;
    app2.room(&a, "bulk").await;
    let mut w2 = app2.ws(Some(&a), "bulk", None).await;
    w2.welcome().await;
    for i in 1..=1003 {
        w2.say(&format!("b{i}")).await;
    }
    for _ in 1..=1003 {
        w2.expect("message").await;
    }
    let mut r = app2.ws(None, "bulk", Some(1)).await;
    let w = r.welcome().await;
    assert_eq!(w["truncated"], true);
    let h = w["history"].as_array().unwrap();
    assert_eq!(h.len(), 1000);
    assert_eq!(h[0]["seq"], 4);
    assert_eq!(h[999]["seq"], 1003);
}

async fn send_errors(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("owner").await;
    let u = app.signup("user").await;
    app.room(&owner, "errs").await;
    let mut anon = app.ws(None, "errs", None).await;
    anon.welcome().await;
    anon.say("let me in").await;
    let e = anon.expect("error").await;
    assert_eq!(e["code"], "login_required");
    let mut ws = app.ws(Some(&u), "errs", None).await;
    ws.welcome().await;
    ws.say("   \u{0}\u{7}  ").await;
    assert_eq!(ws.expect("error").await["code"], "empty");
    ws.say(&"가".repeat(501)).await;
    assert_eq!(ws.expect("error").await["code"], "too_long");
    ws.say(&"가".repeat(500)).await;
    assert_eq!(
        ws.expect("message").await["text"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        500
    );
    ws.say("tab\there\u{1b}[31m").await;
    assert_eq!(ws.expect("message").await["text"], "tab here[31m");
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    // The clock probe: its t0 comes back as sent, with the server's time when it was read,
    // which lies between this machine's clock before and after the round trip.
    let unix_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as f64
            / 1000.0
    };
    let before = unix_ms();
    ws.send(json!({"type": "time.ping", "t0": 987.25})).await;
    let pong = ws.expect("time.pong").await;
    let after = unix_ms();
    assert_eq!(pong["t0"], 987.25);
    let server = pong["server_ms"].as_f64().unwrap();
    assert!(
        (before..=after).contains(&server),
        "{before} ≤ {server} ≤ {after}"
    );
    ws.send(json!({"type": "time.ping"})).await;
    assert_eq!(ws.expect("error").await["code"], "invalid_frame");
}

async fn rate_limit_and_slow_mode(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("owner").await;
    let u = app.signup("spammer").await;
    app.room(&owner, "limits").await;
    let mut ws = app.ws(Some(&u), "limits", None).await;
    ws.welcome().await;
    // Default burst is 5: the sixth message in a row is refused.
    for i in 0..6 {
        ws.say(&format!("spam {i}")).await;
    }
    let mut codes = vec![];
    for _ in 0..6 {
        let f = ws.next().await;
        codes.push(if f["type"] == "error" {
            f["code"].as_str().unwrap().to_string()
        } else {
            "ok".into()
        });
    }
    assert_eq!(codes.iter().filter(|c| *c == "ok").count(), 5, "{codes:?}");
    assert_eq!(
        codes.iter().filter(|c| *c == "rate_limited").count(),
        1,
        "{codes:?}"
    );
    // Moderators (the owner) are exempt.
    let mut ow = app.ws(Some(&owner), "limits", None).await;
    ow.welcome().await;
    for i in 0..8 {
        ow.say(&format!("owner {i}")).await;
    }
    for _ in 0..8 {
        assert_eq!(ow.expect("message").await["user"]["username"], "owner");
    }
    // Slow mode: a second message within the interval is refused with slow_mode.
    let (st, _) = owner
        .client
        .patch("/api/v1/rooms/limits", json!({"slow_mode_s": 60}))
        .await;
    assert_eq!(st, 200);
    // Everyone in the room hears about the change.
    let r = ow.expect("room").await;
    assert_eq!(r["room"]["slow_mode_s"], 60);
    let v = app.signup("visitor").await;
    let mut vw = app.ws(Some(&v), "limits", None).await;
    vw.welcome().await;
    vw.say("first").await;
    assert_eq!(vw.expect("message").await["text"], "first");
    vw.say("second").await;
    let e = vw.expect("error").await;
    assert_eq!(e["code"], "slow_mode");
    assert!(e["retry_after_ms"].as_u64().unwrap() > 50_000);
}

async fn viewer_counts_deduplicate_users(b: Backend) {
    let app = spawn_app(b).await;
    let a = app.signup("watcher").await;
    app.room(&a, "count").await;
    let mut w1 = app.ws(Some(&a), "count", None).await;
    w1.welcome().await;
    let _w2 = app.ws(Some(&a), "count", None).await; // same user, second tab
    let _anon = app.ws(None, "count", None).await;
    // Counts are coalesced; wait for the one that reflects all three sockets (two viewers).
    loop {
        let f = w1.next_any().await;
        if f["type"] == "viewers" && f["count"] == 2 {
            break;
        }
    }
    let (_, body) = app.anon().get("/api/v1/rooms/count").await;
    assert_eq!(body["room"]["viewers"], 2);
}

async fn blocked_terms_are_masked(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.signup("admin").await;
    let member = app.signup("member").await;
    let (st, _) = member
        .client
        .put("/api/v1/admin/blocked-terms", json!({"terms": ["x"]}))
        .await;
    assert_eq!(st, 403);
    assert_eq!(
        member.client.get("/api/v1/admin/blocked-terms").await.0,
        403
    );
    let (st, body) = admin
        .client
        .put(
            "/api/v1/admin/blocked-terms",
            json!({"terms": ["시발", "fuck*", " ", "시발"]}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["terms"], json!(["시발", "fuck*"]));
    let (_, body) = admin.client.get("/api/v1/admin/blocked-terms").await;
    assert_eq!(body["terms"], json!(["시발", "fuck*"]));
    let (st, body) = admin
        .client
        .put(
            "/api/v1/admin/blocked-terms",
            json!({"terms": ["a".repeat(65)]}),
        )
        .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("term_too_long")));

    app.room(&admin, "clean").await;
    let mut ws = app.ws(Some(&member), "clean", None).await;
    ws.welcome().await;
    for (input, want) in [
        ("아 ㅅㅣㅂㅏㄹ 진짜", "아 ***** 진짜"),
        ("f.u.c.k you", "******* you"),
        ("시발점에서 만나요", "시발점에서 만나요"),
    ] {
        ws.say(input).await;
        let m = ws.expect("message").await;
        assert_eq!(m["text"], want, "{input}");
    }
    // The filter survives a restart (stored in the database).
    let mut app = app;
    app.restart().await;
    let mut ws = app.ws(Some(&member), "clean", None).await;
    ws.welcome().await;
    ws.say("씨발").await;
    assert_eq!(ws.expect("message").await["text"], "**");
}

async fn bad_frames_keep_the_connection(b: Backend) {
    // Also runs the server on a single worker thread, a supported configuration.
    let app = spawn_with(b, &["--worker-threads", "1"]).await;
    let u = app.signup("fuzzy").await;
    app.room(&u, "frames").await;
    let mut ws = app.ws(Some(&u), "frames", None).await;
    ws.welcome().await;
    for bad in [
        "not json",
        "{}",
        r#"{"type":"explode"}"#,
        r#"{"type":"send","text":7}"#,
        "[1,2]",
    ] {
        ws.send_raw(bad).await;
        let e = ws.expect("error").await;
        assert_eq!(e["code"], "invalid_frame", "{bad}");
    }
    ws.say("still here").await;
    assert_eq!(ws.expect("message").await["text"], "still here");
}

async fn slow_readers_are_told_to_resync(b: Backend) {
    // A tiny room buffer and big messages: a reader that stops reading falls behind quickly.
    // (The welcome may carry all it missed: the byte cap has a test of its own.)
    let app = spawn_with(
        b,
        &[
            "--room-buffer",
            "64",
            "--resume-limit",
            "10000",
            "--max-welcome-kib",
            "65536",
        ],
    )
    .await;
    let owner = app.signup("firehose").await;
    app.room(&owner, "lag").await;
    let mut fast = app.ws(Some(&owner), "lag", None).await;
    fast.welcome().await;
    let mut slow = app.ws_small_buffer("lag").await;
    slow.welcome().await;
    let big = "😀".repeat(490);
    let total = 4000;
    for chunk in 0..total / 32 {
        for i in 0..32 {
            fast.say(&format!("{}{big}", chunk * 32 + i)).await;
        }
        // The publisher keeps up with its own echoes (in steps smaller than the room buffer);
        // only `slow` stalls.
        for _ in 0..32 {
            fast.expect("message").await;
        }
    }
    let (frames, close) = slow.until_close().await;
    let seqs: Vec<i64> = frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| f["seq"].as_i64().unwrap())
        .collect();
    let last = frames.last().expect("frames before the close");
    assert_eq!(last["type"], "reconnect", "{last}");
    assert_eq!(last["reason"], "lagged");
    assert_eq!(u16::from(close.expect("close frame").code), 4001);
    assert!(
        seqs.len() < total as usize,
        "the slow reader should have fallen behind"
    );
    // What it got is gap-free from 1, and resuming fills in exactly the rest.
    assert!(seqs.iter().enumerate().all(|(i, s)| *s == i as i64 + 1));
    let got = seqs.len() as i64;
    eprintln!("slow reader got {got} of {total} before resync");
    let mut again = app.ws(None, "lag", Some(got)).await;
    let w = again.welcome().await;
    let rest: Vec<i64> = ints(&w["history"], "seq");
    assert_eq!(rest, ((got + 1)..=total).collect::<Vec<i64>>());
}
