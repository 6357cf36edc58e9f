//! Moderation: who may moderate, deletes, bans, timeouts, moderators.

use serde_json::json;

use crate::helpers::{eventually, spawn_app, strs, Backend};

backend_tests!(
    non_moderators_are_refused,
    moderators_delete_messages_for_everyone,
    bans_disconnect_and_keep_out,
    timeouts_silence_but_keep_reading,
);

async fn non_moderators_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let _admin = app.signup("admin").await;
    let owner = app.signup("owner").await;
    let rando = app.signup("rando").await;
    let victim = app.signup("victim").await;
    app.room(&owner, "guarded").await;
    let mut ws = app.ws(Some(&victim), "guarded", None).await;
    ws.welcome().await;
    ws.say("hello").await;
    let seq = ws.expect("message").await["seq"].as_i64().unwrap();
    let c = &rando.client;
    for (st, body) in [
        c.delete(&format!("/api/v1/rooms/guarded/messages/{seq}"))
            .await,
        c.post("/api/v1/rooms/guarded/bans", json!({"username": "victim"}))
            .await,
        c.post(
            "/api/v1/rooms/guarded/timeouts",
            json!({"username": "victim", "duration_s": 60}),
        )
        .await,
        c.post(
            "/api/v1/rooms/guarded/moderators",
            json!({"username": "rando"}),
        )
        .await,
        c.get("/api/v1/rooms/guarded/bans").await,
        c.delete("/api/v1/rooms/guarded/bans/victim").await,
    ] {
        assert_eq!(
            (st, body["error"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
    }
    assert_eq!(
        app.anon()
            .post("/api/v1/rooms/guarded/bans", json!({"username": "victim"}))
            .await
            .0,
        401
    );
    // Moderators may moderate but not appoint moderators; nobody may ban a moderator.
    let (st, _) = owner
        .client
        .post(
            "/api/v1/rooms/guarded/moderators",
            json!({"username": "rando"}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(
        c.post(
            "/api/v1/rooms/guarded/moderators",
            json!({"username": "victim"})
        )
        .await
        .0,
        403
    );
    let (st, body) = c
        .post("/api/v1/rooms/guarded/bans", json!({"username": "owner"}))
        .await;
    assert_eq!((st, body["error"].as_str()), (403, Some("forbidden")));
    let (st, body) = owner
        .client
        .post(
            "/api/v1/rooms/guarded/bans",
            json!({"username": "ghost-user"}),
        )
        .await;
    assert_eq!((st, body["error"].as_str()), (404, Some("not_found")));
    let (st, body) = owner
        .client
        .post(
            "/api/v1/rooms/guarded/bans",
            json!({"username": "victim", "duration_s": 0}),
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("invalid_duration"))
    );
}

async fn moderators_delete_messages_for_everyone(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("owner").await;
    let moder = app.signup("moder").await;
    let talker = app.signup("talker").await;
    app.room(&owner, "del").await;
    let (st, body) = owner
        .client
        .post("/api/v1/rooms/del/moderators", json!({"username": "moder"}))
        .await;
    assert_eq!(st, 201);
    assert_eq!(body["moderators"][0]["username"], "moder");
    let mut t = app.ws(Some(&talker), "del", None).await;
    let mut watcher = app.ws(None, "del", None).await;
    t.welcome().await;
    watcher.welcome().await;
    t.say("rude thing").await;
    t.say("nice thing").await;
    let seq = t.expect("message").await["seq"].as_i64().unwrap();
    t.expect("message").await;
    watcher.expect("message").await;
    watcher.expect("message").await;
    let (st, _) = moder
        .client
        .delete(&format!("/api/v1/rooms/del/messages/{seq}"))
        .await;
    assert_eq!(st, 204);
    for ws in [&mut t, &mut watcher] {
        let d = ws.expect("deleted").await;
        assert_eq!(d["seq"], seq);
    }
    assert_eq!(
        moder
            .client
            .delete(&format!("/api/v1/rooms/del/messages/{seq}"))
            .await
            .0,
        404
    );
    let (_, body) = app.anon().get("/api/v1/rooms/del/messages").await;
    let texts: Vec<String> = strs(&body["messages"], "text");
    assert_eq!(texts, ["nice thing"]);
    let mut late = app.ws(None, "del", None).await;
    assert_eq!(late.welcome().await["history"].as_array().unwrap().len(), 1);
    // Removing the moderator takes the power away.
    assert_eq!(
        owner
            .client
            .delete("/api/v1/rooms/del/moderators/moder")
            .await
            .0,
        204
    );
    t.say("again").await;
    let seq2 = t.expect("message").await["seq"].as_i64().unwrap();
    assert_eq!(
        moder
            .client
            .delete(&format!("/api/v1/rooms/del/messages/{seq2}"))
            .await
            .0,
        403
    );
}

async fn bans_disconnect_and_keep_out(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("owner").await;
    let troll = app.signup("troll").await;
    app.room(&owner, "banroom").await;
    let mut tw = app.ws(Some(&troll), "banroom", None).await;
    tw.welcome().await;
    let (st, body) = owner
        .client
        .post("/api/v1/rooms/banroom/bans", json!({"username": "troll"}))
        .await;
    assert_eq!(st, 201, "{body}");
    assert!(body["ban"]["expires_at"].is_null());
    let (frames, close) = tw.until_close().await;
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "error" && f["code"] == "banned"),
        "{frames:?}"
    );
    assert_eq!(u16::from(close.expect("close frame").code), 4003);
    // Rejoining is refused the same way.
    let mut again = app.ws(Some(&troll), "banroom", None).await;
    let (frames, close) = again.until_close().await;
    assert_eq!(frames[0]["code"], "banned");
    assert_eq!(u16::from(close.unwrap().code), 4003);
    let (_, list) = owner.client.get("/api/v1/rooms/banroom/bans").await;
    assert_eq!(list["bans"][0]["username"], "troll");
    assert_eq!(list["bans"][0]["kind"], "ban");
    // Lifting the ban lets them back.
    assert_eq!(
        owner
            .client
            .delete("/api/v1/rooms/banroom/bans/troll")
            .await
            .0,
        204
    );
    assert_eq!(
        owner
            .client
            .delete("/api/v1/rooms/banroom/bans/troll")
            .await
            .0,
        404
    );
    let mut back = app.ws(Some(&troll), "banroom", None).await;
    back.welcome().await;
    // A timed ban ends by itself.
    let (st, _) = owner
        .client
        .post(
            "/api/v1/rooms/banroom/bans",
            json!({"username": "troll", "duration_s": 1}),
        )
        .await;
    assert_eq!(st, 201);
    let (frames, _) = back.until_close().await;
    assert!(frames.iter().any(|f| f["code"] == "banned"));
    eventually(10, || async {
        let mut ws = app.ws(Some(&troll), "banroom", None).await;
        let f = ws.next().await;
        (f["type"] == "welcome").then_some(())
    })
    .await;
}

async fn timeouts_silence_but_keep_reading(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("owner").await;
    let loud = app.signup("loud").await;
    app.room(&owner, "quiet").await;
    let mut lw = app.ws(Some(&loud), "quiet", None).await;
    lw.welcome().await;
    let (st, body) = owner
        .client
        .post(
            "/api/v1/rooms/quiet/timeouts",
            json!({"username": "loud", "duration_s": 600}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    assert!(body["timeout"]["expires_at"].as_str().is_some());
    lw.say("can I talk?").await;
    let e = lw.expect("error").await;
    assert_eq!(e["code"], "timed_out");
    assert!(e["retry_after_ms"].as_u64().unwrap() > 500_000);
    // Still connected and reading.
    let mut ow = app.ws(Some(&owner), "quiet", None).await;
    ow.welcome().await;
    ow.say("you are still here").await;
    assert_eq!(lw.expect("message").await["text"], "you are still here");
    assert_eq!(
        owner
            .client
            .delete("/api/v1/rooms/quiet/timeouts/loud")
            .await
            .0,
        204
    );
    lw.say("thanks").await;
    assert_eq!(lw.expect("message").await["text"], "thanks");
    let (st, body) = owner
        .client
        .post("/api/v1/rooms/quiet/timeouts", json!({"username": "loud"}))
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("invalid_duration"))
    );
}
