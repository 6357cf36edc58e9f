//! Planning together in a room: invite links into a private room, candidate pins, the map
//! relay (its pacing and its bound), polls of every mode and results setting, fifty voters at
//! once, closing by hand and by the clock, and what a late joiner's welcome carries.

use futures_util::future::join_all;

use serde_json::{json, Value};

use crate::helpers::{
    eventually, refused_count, spawn_app, spawn_with, Backend, TestApp, User, Ws,
};

backend_tests!(
    invite_links_let_friends_into_a_private_room_and_nobody_else,
    members_pin_places_and_see_where_the_others_look,
    polls_count_and_show_results_as_they_say,
    fifty_voters_at_once_are_counted_once_each,
    a_poll_closes_at_its_time_and_says_so_in_the_chat,
);

/// The next frame of type `ty`, skipping the others (chat, counts); an `error` fails unless
/// that is what is awaited.
async fn frame(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let f = ws.next().await;
        if f["type"] == ty {
            return f;
        }
        assert_ne!(f["type"], "error", "waiting for {ty}: {f}");
    }
}

/// An RFC 3339 time `ms` from now.
fn in_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(ms);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn invite(owner: &User, slug: &str, body: Value) -> Value {
    let (st, v) = owner
        .client
        .post(&format!("/api/v1/rooms/{slug}/invites"), body)
        .await;
    assert_eq!(st, 201, "{v}");
    v["invite"].clone()
}

async fn accept(who: &User, code: &str) -> (u16, Value) {
    who.client
        .post(&format!("/api/v1/invites/{code}/accept"), json!({}))
        .await
}

async fn invite_links_let_friends_into_a_private_room_and_nobody_else(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("owner").await;
    let mina = app.signup("mina").await;
    let joon = app.signup("joon").await;
    let sora = app.signup("sora").await;
    let (st, v) = owner
        .client
        .post(
            "/api/v1/rooms",
            json!({"slug": "dinner", "title": "Friday dinner", "visibility": "private"}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["room"]["visibility"], "private");
    let (st, v) = owner
        .client
        .post(
            "/api/v1/rooms",
            json!({"slug": "odd", "title": "x", "visibility": "secret"}),
        )
        .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_visibility")));

    // Before an invite the room does not exist for them: not listed, 404 everywhere.
    let (_, list) = mina.client.get("/api/v1/rooms").await;
    assert!(!list.to_string().contains("dinner"), "{list}");
    let (st, p) = owner
        .client
        .post(
            "/api/v1/rooms/dinner/polls",
            json!({"question": "Where?", "options": ["Ramen", "Tacos"]}),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let poll = p["poll"]["id"].as_str().unwrap().to_string();
    for path in [
        "/api/v1/rooms/dinner".to_string(),
        "/api/v1/rooms/dinner/messages".into(),
        "/api/v1/rooms/dinner/pins".into(),
        "/api/v1/rooms/dinner/polls".into(),
        format!("/api/v1/polls/{poll}"),
    ] {
        assert_eq!(mina.client.get(&path).await.0, 404, "{path}");
        assert_eq!(app.anon().get(&path).await.0, 404, "{path}");
    }
    let (st, _) = mina
        .client
        .put(
            &format!("/api/v1/polls/{poll}/vote"),
            json!({"choices": [0]}),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = mina
        .client
        .post(
            "/api/v1/rooms/dinner/pins",
            json!({"name": "x", "lat": 1.0, "lng": 1.0}),
        )
        .await;
    assert_eq!(st, 404);
    assert_eq!(app.ws_refused(Some(&mina), "dinner").await, 404);
    assert_eq!(app.ws_refused(None, "dinner").await, 404);
    // Only the owner makes invites.
    let (st, _) = mina
        .client
        .post("/api/v1/rooms/dinner/invites", json!({}))
        .await;
    assert_eq!(st, 404, "a non-member is told the room does not exist");

    // An invite for two.
    let inv = invite(
        &owner,
        "dinner",
        json!({"max_uses": 2, "expires_at": in_ms(3_600_000)}),
    )
    .await;
    let code = inv["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 16);
    assert!(inv["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/i/{code}")));
    assert_eq!(
        (inv["uses"].as_i64(), inv["max_uses"].as_i64()),
        (Some(0), Some(2))
    );
    // What it opens, for the page before accepting (anyone holding the link).
    let (st, v) = app.anon().get(&format!("/api/v1/invites/{code}")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["invite"]["room"]["title"], "Friday dinner");
    let (st, _) = app
        .anon()
        .post(&format!("/api/v1/invites/{code}/accept"), json!({}))
        .await;
    assert_eq!(st, 401);

    let (st, v) = accept(&mina, &code).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["room"]["slug"], "dinner");
    assert_eq!(mina.client.get("/api/v1/rooms/dinner").await.0, 200);
    let mut ws = app.ws(Some(&mina), "dinner", None).await;
    ws.welcome().await;
    ws.close().await;
    // Accepting again (or as the owner) is harmless and takes no use.
    assert_eq!(accept(&mina, &code).await.0, 200);
    assert_eq!(accept(&owner, &code).await.0, 200);
    let (_, list) = owner.client.get("/api/v1/rooms/dinner/invites").await;
    assert_eq!(list["invites"][0]["uses"], 1, "{list}");
    assert_eq!(accept(&joon, &code).await.0, 200);
    let (st, v) = accept(&sora, &code).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (410, Some("invite_used_up")),
        "{v}"
    );
    assert_eq!(sora.client.get("/api/v1/rooms/dinner").await.0, 404);
    let (st, v) = app.anon().get(&format!("/api/v1/invites/{code}")).await;
    assert_eq!((st, v["error"].as_str()), (410, Some("invite_used_up")));

    // Revoked: gone at once, and revoking again finds nothing.
    let other = invite(&owner, "dinner", json!({})).await;
    let other = other["code"].as_str().unwrap();
    assert_eq!(
        owner
            .client
            .delete(&format!("/api/v1/rooms/dinner/invites/{other}"))
            .await
            .0,
        204
    );
    let (st, v) = accept(&sora, other).await;
    assert_eq!((st, v["error"].as_str()), (410, Some("invite_revoked")));
    assert_eq!(
        owner
            .client
            .delete(&format!("/api/v1/rooms/dinner/invites/{other}"))
            .await
            .0,
        404
    );
    // Expired (its time moved into the past: no waiting).
    let late = invite(&owner, "dinner", json!({"expires_at": in_ms(60_000)})).await;
    let late = late["code"].as_str().unwrap();
    app.sql(&format!(
        "UPDATE room_invites SET expires_at = 1 WHERE code = '{late}'"
    ))
    .await;
    let (st, v) = accept(&sora, late).await;
    assert_eq!((st, v["error"].as_str()), (410, Some("invite_expired")));
    for (body, code) in [
        (json!({"expires_at": in_ms(-1000)}), "invalid_expiry"),
        (json!({"expires_at": "tomorrow"}), "invalid_expiry"),
        (json!({"max_uses": 0}), "invalid_max_uses"),
    ] {
        let (st, v) = owner
            .client
            .post("/api/v1/rooms/dinner/invites", body)
            .await;
        assert_eq!((st, v["error"].as_str()), (400, Some(code)), "{v}");
    }
    // A code that names nothing.
    let (st, v) = accept(&sora, "aaaaaaaaaaaaaaaa").await;
    assert_eq!((st, v["error"].as_str()), (404, Some("not_found")), "{v}");
    assert_eq!(accept(&sora, "../../etc").await.0, 404);

    // A public room made private: its sockets reconnect, and only its people get back in.
    app.room(&owner, "open").await;
    let mut outsider = app.ws(Some(&sora), "open", None).await;
    outsider.welcome().await;
    let (st, v) = owner
        .client
        .patch("/api/v1/rooms/open", json!({"visibility": "private"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["room"]["visibility"], "private");
    let (frames, close) = outsider.until_close().await;
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "reconnect" && f["reason"] == "private"),
        "{frames:?}"
    );
    assert_eq!(u16::from(close.unwrap().code), 4005);
    assert_eq!(app.ws_refused(Some(&sora), "open").await, 404);
    let mut ws = app.ws(Some(&owner), "open", None).await;
    ws.welcome().await;
}

/// A place post with a point, by `user`; its id.
async fn place(user: &User, name: &str) -> String {
    let (st, v) = user
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"place","title":name,"body":"",
                   "place":{"name":name,"category":"restaurant","lat":37.5665,"lng":126.978}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    v["post"]["id"].as_str().unwrap().to_string()
}

async fn members_pin_places_and_see_where_the_others_look(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("owner").await;
    let mina = app.signup("mina").await;
    let joon = app.signup("joon").await;
    app.room(&owner, "plan").await;
    let mut o = app.ws(Some(&owner), "plan", None).await;
    let w = o.welcome().await;
    assert_eq!(
        (w["pins"].clone(), w["views"].clone()),
        (json!([]), json!([]))
    );
    let mut m = app.ws(Some(&mina), "plan", None).await;
    m.welcome().await;
    let mut j = app.ws(Some(&joon), "plan", None).await;
    j.welcome().await;
    let mut anon = app.ws(None, "plan", None).await;
    anon.welcome().await;

    // A named point.
    m.send(json!({"type":"map.pin.add","name":"을지로 골목 <b>","lat":37.566,"lng":126.991}))
        .await;
    let pins = frame(&mut o, "map.pins").await["pins"].clone();
    assert_eq!(pins.as_array().unwrap().len(), 1);
    assert_eq!(pins[0]["name"], "을지로 골목 <b>");
    assert_eq!(pins[0]["user"]["username"], "mina");
    assert_eq!(pins[0]["place"], Value::Null);
    assert_eq!(
        (pins[0]["lat"].as_f64(), pins[0]["lng"].as_f64()),
        (Some(37.566), Some(126.991))
    );
    assert_eq!(frame(&mut anon, "map.pins").await["pins"], pins);
    frame(&mut m, "map.pins").await;
    frame(&mut j, "map.pins").await;
    // From a place post: its name and point, rating and category.
    let pid = place(&joon, "명동 칼국수").await;
    j.send(json!({"type":"map.pin.add","place_id":pid})).await;
    let pins = frame(&mut o, "map.pins").await["pins"].clone();
    assert_eq!(pins[1]["name"], "명동 칼국수");
    assert_eq!(pins[1]["place"]["id"], pid.as_str());
    assert_eq!(pins[1]["place"]["category"], "restaurant");
    assert_eq!(pins[1]["place"]["reviews"], 0);
    assert_eq!(pins[1]["lat"].as_f64(), Some(37.5665));
    frame(&mut m, "map.pins").await;
    frame(&mut j, "map.pins").await;
    // Refused, each with its reason; the connection stays.
    for (bad, code) in [
        (
            json!({"type":"map.pin.add","place_id":pid}),
            "already_pinned",
        ),
        (
            json!({"type":"map.pin.add","name":"  ","lat":1,"lng":1}),
            "invalid_name",
        ),
        (
            json!({"type":"map.pin.add","name":"x","lat":95,"lng":1}),
            "invalid_point",
        ),
        (json!({"type":"map.pin.add","name":"x"}), "invalid_point"),
        (
            json!({"type":"map.pin.add","place_id":"999999"}),
            "not_found",
        ),
        (
            json!({"type":"map.pin.remove","id":pins[0]["id"]}),
            "forbidden",
        ),
        (json!({"type":"map.pin.remove","id":"nope"}), "not_found"),
    ] {
        j.send(bad.clone()).await;
        let f = frame(&mut j, "error").await;
        assert_eq!(f["code"], code, "{bad}: {f}");
    }
    anon.send(json!({"type":"map.pin.add","name":"x","lat":1,"lng":1}))
        .await;
    assert_eq!(frame(&mut anon, "error").await["code"], "login_required");
    anon.send(json!({"type":"map.view","center":[37.5,127.0],"zoom":12,"bounds":[[37.4,126.9],[37.6,127.1]]}))
        .await;
    assert_eq!(frame(&mut anon, "error").await["code"], "login_required");
    j.send(json!({"type":"map.view","center":[91,0],"zoom":12,"bounds":[[0,0],[1,1]]}))
        .await;
    assert_eq!(frame(&mut j, "error").await["code"], "invalid_frame");
    // The owner (a moderator of the room) removes mina's pin; over HTTP too.
    o.send(json!({"type":"map.pin.remove","id":pins[0]["id"]}))
        .await;
    let left = frame(&mut m, "map.pins").await["pins"].clone();
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    let (st, v) = mina
        .client
        .post(
            "/api/v1/rooms/plan/pins",
            json!({"name":"Tacos","lat":37.55,"lng":126.92}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (_, list) = app.anon().get("/api/v1/rooms/plan/pins").await;
    assert_eq!(list["pins"].as_array().unwrap().len(), 2, "{list}");

    // Views are relayed to the others, rounded, with who is looking.
    m.send(
        json!({"type":"map.view","center":[37.56651234567,126.978],"zoom":13.123,
                  "bounds":[[37.5,126.9],[37.6,127.05]],"cursor":[37.57,126.98]}),
    )
    .await;
    let v = frame(&mut o, "map.view").await;
    assert_eq!(v["user"]["username"], "mina");
    assert_eq!(v["center"], json!([37.566512, 126.978]));
    assert_eq!(v["zoom"], json!(13.12));
    assert_eq!(v["cursor"], json!([37.57, 126.98]));
    assert_eq!(
        frame(&mut anon, "map.view").await["user"]["username"],
        "mina"
    );
    // A late joiner is welcomed with the pins and where everyone looks.
    let mut late = app.ws(Some(&joon), "plan", None).await;
    let w = late.welcome().await;
    assert_eq!(w["pins"].as_array().unwrap().len(), 2, "{w}");
    assert_eq!(w["views"][0]["user"]["username"], "mina", "{w}");
    assert_eq!(w["views"][0]["center"], json!([37.566512, 126.978]));

    // A burst: the connection's 10 a second are taken, the rest dropped; the member's views
    // go out at most every 100 ms, the latest one last.
    let (_, before) = app.anon().get("/metrics").await;
    let before = refused_count(before.as_str().unwrap(), "map_view_dropped");
    let started = std::time::Instant::now();
    for i in 0..40 {
        let lat = 37.0 + f64::from(i) / 100.0;
        j.send(json!({"type":"map.view","center":[lat,127.0],"zoom":12,
                      "bounds":[[lat - 0.1,126.9],[lat + 0.1,127.1]]}))
            .await;
    }
    // Ends the burst: once this pin is seen, every view it let through has been handled.
    j.send(json!({"type":"map.pin.add","name":"sentinel","lat":1,"lng":1}))
        .await;
    let burst_s = started.elapsed().as_secs_f64();
    let mut relayed = Vec::new();
    loop {
        let f = o.next().await;
        if f["type"] == "map.view" && f["user"]["username"] == "joon" {
            relayed.push(f["center"][0].as_f64().unwrap());
        }
        if f["type"] == "map.pins" && f["pins"].to_string().contains("sentinel") {
            break;
        }
    }
    let (_, after) = app.anon().get("/metrics").await;
    let dropped = refused_count(after.as_str().unwrap(), "map_view_dropped") - before;
    let allowed = 10 + (burst_s * 10.0).ceil() as u64;
    assert!(dropped >= 40 - allowed, "{dropped} dropped in {burst_s} s");
    // The latest view held back goes out within its 100 ms, unless it went already.
    let tenth = 37.09;
    if relayed.last().is_none_or(|l| *l < tenth) {
        let f = frame(&mut o, "map.view").await;
        assert_eq!(f["user"]["username"], "joon");
        relayed.push(f["center"][0].as_f64().unwrap());
    }
    assert_eq!(relayed[0], 37.0, "{relayed:?}");
    assert!(relayed.windows(2).all(|w| w[0] < w[1]), "{relayed:?}");
    assert!(*relayed.last().unwrap() >= tenth, "{relayed:?}");
    assert!(
        relayed.len() as u64 <= 2 + (burst_s * 10.0).ceil() as u64,
        "{relayed:?}"
    );

    // Leaving the room takes one off the map (for the others, at once).
    m.close().await;
    let gone = frame(&mut o, "map.left").await;
    assert_eq!(gone["user"]["username"], "mina");
    let mut again = app.ws(Some(&owner), "plan", None).await;
    let w = again.welcome().await;
    assert!(!w["views"].to_string().contains("mina"), "{}", w["views"]);
}

async fn create_poll(user: &User, slug: &str, body: Value) -> Value {
    let (st, v) = user
        .client
        .post(&format!("/api/v1/rooms/{slug}/polls"), body)
        .await;
    assert_eq!(st, 201, "{v}");
    v["poll"].clone()
}

async fn vote(user: &User, poll: &str, choices: Value) -> (u16, Value) {
    user.client
        .put(
            &format!("/api/v1/polls/{poll}/vote"),
            json!({ "choices": choices }),
        )
        .await
}

async fn get_poll(user: Option<&User>, app: &TestApp, poll: &str) -> Value {
    let c = user.map_or_else(|| app.anon(), |u| u.client.clone());
    let (st, v) = c.get(&format!("/api/v1/polls/{poll}")).await;
    assert_eq!(st, 200, "{v}");
    v["poll"].clone()
}

async fn polls_count_and_show_results_as_they_say(b: Backend) {
    let app = spawn_with(b, &["--login-rate-per-min", "1000"]).await;
    let owner = app.signup("owner").await;
    let mut people = Vec::new();
    for i in 0..5 {
        people.push(app.signup(&format!("p{i}")).await);
    }
    app.room(&owner, "polls").await;

    // Single choice, results always: live for everyone, changing a vote replaces it.
    let p = create_poll(
        &owner,
        "polls",
        json!({"question":"Dinner?","options":["Ramen","Tacos"]}),
    )
    .await;
    assert_eq!(
        (p["mode"].as_str(), p["results_shown"].as_str()),
        (Some("single"), Some("always"))
    );
    assert_eq!(
        p["results"],
        json!({"counts":[0,0],"voters":0,"winner":null,"ballots":[]})
    );
    let id = p["id"].as_str().unwrap().to_string();
    let (st, v) = vote(&people[0], &id, json!([1])).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["poll"]["my_choices"], json!([1]));
    assert_eq!(v["poll"]["results"]["counts"], json!([0, 1]));
    assert_eq!(v["poll"]["results"]["ballots"][0]["user"]["username"], "p0");
    let (_, v) = vote(&people[0], &id, json!([0])).await;
    assert_eq!(v["poll"]["results"]["counts"], json!([1, 0]));
    assert_eq!(v["poll"]["results"]["voters"], 1);
    for (bad, why) in [
        (json!([5]), "no option 5"),
        (json!([0, 1]), "single"),
        (json!([]), "empty"),
    ] {
        let (st, v) = vote(&people[1], &id, bad).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (400, Some("invalid_choices")),
            "{why}: {v}"
        );
    }
    let (st, _) = app
        .anon()
        .put(&format!("/api/v1/polls/{id}/vote"), json!({"choices":[0]}))
        .await;
    assert_eq!(st, 401);
    assert_eq!(
        get_poll(None, &app, &id).await["results"]["counts"],
        json!([1, 0])
    );
    assert_eq!(get_poll(None, &app, &id).await["my_choices"], Value::Null);
    // Taking a vote back.
    assert_eq!(
        people[0]
            .client
            .delete(&format!("/api/v1/polls/{id}/vote"))
            .await
            .0,
        204
    );
    assert_eq!(get_poll(None, &app, &id).await["results"]["voters"], 0);
    let (st, v) = owner
        .client
        .post(&format!("/api/v1/polls/{id}/close"), json!({}))
        .await;
    assert_eq!(
        (st, v["poll"]["closed"].as_bool()),
        (200, Some(true)),
        "{v}"
    );

    // Multiple choice.
    let p = create_poll(
        &people[2],
        "polls",
        json!({"question":"Which days?","options":["Fri","Sat","Sun"],"mode":"multiple"}),
    )
    .await;
    let mid = p["id"].as_str().unwrap().to_string();
    vote(&people[0], &mid, json!([0, 2])).await;
    vote(&people[1], &mid, json!([2])).await;
    let (st, v) = vote(&people[2], &mid, json!([1, 1])).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_choices")));
    let r = get_poll(None, &app, &mid).await["results"].clone();
    assert_eq!(
        (
            r["counts"].clone(),
            r["voters"].clone(),
            r["winner"].clone()
        ),
        (json!([1, 0, 2]), json!(2), json!(2))
    );

    // Ranked choice, public voters: the golden run-off (C wins in round 2 on B's transfer).
    let p = create_poll(
        &owner,
        "polls",
        json!({"question":"Where?","options":["A","B","C"],"mode":"ranked"}),
    )
    .await;
    let rid = p["id"].as_str().unwrap().to_string();
    for (who, ballot) in [
        (0, json!([0])),
        (1, json!([0])),
        (2, json!([1, 2])),
        (3, json!([2, 1])),
        (4, json!([2])),
    ] {
        let (st, v) = vote(&people[who], &rid, ballot).await;
        assert_eq!(st, 200, "{v}");
    }
    let r = get_poll(None, &app, &rid).await["results"].clone();
    assert_eq!(r["counts"], json!([2, 1, 2]), "{r}");
    assert_eq!(r["rounds"], json!([[2, 1, 2], [2, null, 3]]), "{r}");
    assert_eq!(r["winner"], 2);
    assert_eq!(r["ballots"].as_array().unwrap().len(), 5);

    // On vote, anonymous: hidden until one votes; nobody's ballot shown, ever.
    let mut watcher = app.ws(Some(&people[4]), "polls", None).await;
    watcher.welcome().await;
    let mut voter_ws = app.ws(Some(&people[3]), "polls", None).await;
    voter_ws.welcome().await;
    let p = create_poll(
        &owner,
        "polls",
        json!({"question":"Secret?","options":["Yes","No"],"anonymous":true,"results":"on_vote"}),
    )
    .await;
    let sid = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["results"], Value::Null, "the creator has not voted: {p}");
    let (_, v) = vote(&people[3], &sid, json!([0])).await;
    assert_eq!(v["poll"]["results"]["counts"], json!([1, 0]));
    assert!(v["poll"]["results"].get("ballots").is_none(), "{v}");
    assert_eq!(
        get_poll(Some(&people[4]), &app, &sid).await["results"],
        Value::Null
    );
    assert_eq!(get_poll(None, &app, &sid).await["results"], Value::Null);
    // Live: the voter's socket gets the count, the others' do not.
    let seen = loop {
        let f = frame(&mut voter_ws, "poll.update").await;
        if f["poll"]["id"] == sid.as_str() && !f["poll"]["results"].is_null() {
            break f;
        }
    };
    assert_eq!(seen["poll"]["results"]["voters"], 1);
    assert!(seen["poll"]["results"].get("ballots").is_none());
    // Everything the room was sent about it before this line reached the others hidden.
    voter_ws.say("voted").await;
    let mut updates = 0;
    loop {
        let f = watcher.next().await;
        if f["type"] == "message" && f["text"] == "voted" {
            break;
        }
        if f["type"] == "poll.update" && f["poll"]["id"] == sid.as_str() {
            assert_eq!(f["poll"]["results"], Value::Null, "{f}");
            updates += 1;
        }
    }
    assert!(updates >= 2, "made and voted in: {updates} updates");
    let (_, list) = app.anon().get("/api/v1/rooms/polls/polls").await;
    let secret = list["polls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == sid.as_str())
        .unwrap();
    assert_eq!(secret["results"], Value::Null, "{secret}");
    let mine = get_poll(Some(&people[3]), &app, &sid).await;
    assert!(mine["results"].get("ballots").is_none(), "{mine}");

    // On close: hidden from everyone, voters included, until it closes.
    let p = create_poll(
        &people[1],
        "polls",
        json!({"question":"Later?","options":["X","Y","Z"],"results":"on_close"}),
    )
    .await;
    let cid = p["id"].as_str().unwrap().to_string();
    let (_, v) = vote(&people[0], &cid, json!([2])).await;
    assert_eq!(v["poll"]["results"], Value::Null);
    assert_eq!(v["poll"]["my_choices"], json!([2]));
    // Only its creator or a moderator closes it.
    let (st, _) = people[2]
        .client
        .post(&format!("/api/v1/polls/{cid}/close"), json!({}))
        .await;
    assert_eq!(st, 403);
    let (st, v) = people[1]
        .client
        .post(&format!("/api/v1/polls/{cid}/close"), json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["poll"]["closed"], true);
    assert_eq!(v["poll"]["results"]["winner"], 2);
    assert_eq!(
        get_poll(None, &app, &cid).await["results"]["counts"],
        json!([0, 0, 1])
    );
    let (st, v) = vote(&people[2], &cid, json!([0])).await;
    assert_eq!((st, v["error"].as_str()), (409, Some("poll_closed")));
    // The chat says who won, as a line of its own kind.
    let last = eventually(10, || async {
        let (_, msgs) = app.anon().get("/api/v1/rooms/polls/messages").await;
        let last = msgs["messages"].as_array()?.last()?.clone();
        (last["kind"] == "poll").then_some(last)
    })
    .await;
    assert_eq!(last["text"], "📊 Later? → Z");

    // From the map's pins.
    for (name, lat) in [("Ramen", 37.5), ("Tacos", 37.6)] {
        let (st, v) = owner
            .client
            .post(
                "/api/v1/rooms/polls/pins",
                json!({"name": name, "lat": lat, "lng": 127.0}),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let p = create_poll(
        &owner,
        "polls",
        json!({"question":"Pick","from_pins":true,"mode":"ranked"}),
    )
    .await;
    assert_eq!(p["options"], json!(["Ramen", "Tacos"]));
    assert!(p["pins"][0].is_string() && p["pins"][1].is_string(), "{p}");

    // Bad polls, each with its reason.
    for (body, code) in [
        (
            json!({"question":"","options":["a","b"]}),
            "invalid_question",
        ),
        (
            json!({"question":"polls","options":["a"]}),
            "invalid_options",
        ),
        (
            json!({"question":"polls","options":["a","A"]}),
            "invalid_options",
        ),
        (json!({"question":"polls"}), "invalid_options"),
        (
            json!({"question":"polls","options":["a","b"],"from_pins":true}),
            "invalid_options",
        ),
        (
            json!({"question":"polls","options":["a","b"],"mode":"borda"}),
            "invalid_mode",
        ),
        (
            json!({"question":"polls","options":["a","b"],"results":"never"}),
            "invalid_results",
        ),
        (
            json!({"question":"polls","options":["a","b"],"closes_at":in_ms(-5000)}),
            "invalid_closes_at",
        ),
        (
            json!({"question":"polls","options":["a","b"],"closes_at":"soon"}),
            "invalid_closes_at",
        ),
    ] {
        let (st, v) = owner
            .client
            .post("/api/v1/rooms/polls/polls", body.clone())
            .await;
        assert_eq!((st, v["error"].as_str()), (400, Some(code)), "{body}: {v}");
    }
    let (st, v) = owner
        .client
        .post(
            "/api/v1/rooms/polls/polls",
            json!({"question":"polls","options":["a","b"],"extra":1}),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert!(v["message"].as_str().unwrap().contains("extra"), "{v}");
    // Blocked terms are masked in polls (and so in their chat line), as in chat.
    let (st, v) = owner
        .client
        .put(
            "/api/v1/admin/blocked-terms",
            json!({"terms": ["badword"], "allowed": []}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let masked = create_poll(
        &people[3],
        "polls",
        json!({"question":"badword dinner?","options":["badword","fine"]}),
    )
    .await;
    assert!(!masked.to_string().contains("badword"), "{masked}");
    let (st, v) = people[3]
        .client
        .post(
            &format!("/api/v1/polls/{}/close", masked["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let line = eventually(10, || async {
        let (_, msgs) = app.anon().get("/api/v1/rooms/polls/messages").await;
        let last = msgs["messages"].as_array()?.last()?.clone();
        (last["text"].as_str()?.contains("dinner")).then_some(last)
    })
    .await;
    assert!(!line.to_string().contains("badword"), "{line}");
    // A late joiner's welcome carries the newest polls as they see them.
    let mut late = app.ws(Some(&people[0]), "polls", None).await;
    let w = late.welcome().await;
    let polls = w["polls"].as_array().unwrap();
    assert_eq!(polls.len(), 5, "{w}");
    let later = polls.iter().find(|p| p["id"] == cid.as_str()).unwrap();
    assert_eq!(
        (later["closed"].clone(), later["my_choices"].clone()),
        (json!(true), json!([2]))
    );
}

async fn fifty_voters_at_once_are_counted_once_each(b: Backend) {
    let app = spawn_with(b, &["--login-rate-per-min", "1000"]).await;
    let owner = app.signup("owner").await;
    let mut voters = Vec::new();
    for i in 0..50 {
        voters.push(app.signup(&format!("v{i}")).await);
    }
    app.room(&owner, "crowd").await;
    let p = create_poll(
        &owner,
        "crowd",
        json!({"question":"Now?","options":["A","B","C"],"results":"always"}),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    // Everyone at once, and one of them six times more with changing minds.
    let mut all = Vec::new();
    for (i, v) in voters.iter().enumerate() {
        all.push((v, json!([i % 3])));
    }
    for k in 0..6 {
        all.push((&voters[0], json!([k % 3])));
    }
    let answers = join_all(all.iter().map(|(v, c)| vote(v, &id, c.clone()))).await;
    for (st, v) in &answers {
        assert_eq!(*st, 200, "{v}");
    }
    let r = get_poll(None, &app, &id).await["results"].clone();
    assert_eq!(r["voters"], 50, "{r}");
    let counts: Vec<u64> = r["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 50, "{r}");
    // Voters 1..49 are fixed: 16 or 17 per option; voter 0 is somewhere.
    let fixed = [16, 17, 16];
    for (i, c) in counts.iter().enumerate() {
        assert!(*c == fixed[i] || *c == fixed[i] + 1, "{counts:?}");
    }
    let rows = app
        .sql_rows(&format!(
            "SELECT COUNT(*) FROM poll_votes WHERE poll_id = {id}"
        ))
        .await;
    assert_eq!(rows, ["50"]);
}

async fn a_poll_closes_at_its_time_and_says_so_in_the_chat(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("owner").await;
    let mina = app.signup("mina").await;
    app.room(&owner, "timed").await;
    let mut ws = app.ws(Some(&mina), "timed", None).await;
    ws.welcome().await;
    let p = create_poll(
        &owner,
        "timed",
        json!({"question":"Quick?","options":["Yes","No"],"results":"on_close",
               "closes_at": in_ms(1500)}),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    assert!(p["closes_at"].is_string());
    let (st, _) = vote(&mina, &id, json!([0])).await;
    assert_eq!(st, 200);
    // The server closes it when its time comes: the room hears the result and the chat line
    // (in either order: the line goes through the chat writer).
    let (mut line, mut closed) = (None, None);
    while line.is_none() || closed.is_none() {
        let f = ws.next().await;
        assert_ne!(f["type"], "error", "{f}");
        if f["type"] == "message" {
            line = Some(f);
        } else if f["type"] == "poll.update" && f["poll"]["closed"] == true {
            closed = Some(f);
        }
    }
    let (line, closed) = (line.unwrap(), closed.unwrap());
    assert_eq!(line["kind"], "poll", "{line}");
    assert_eq!(line["text"], "📊 Quick? → Yes");
    assert_eq!(
        closed["poll"]["results"]["counts"],
        json!([1, 0]),
        "{closed}"
    );
    let (st, v) = vote(&mina, &id, json!([1])).await;
    assert_eq!((st, v["error"].as_str()), (409, Some("poll_closed")));

    // A poll whose time passed while nobody's closer saw it is closed by the first request.
    let p = create_poll(
        &owner,
        "timed",
        json!({"question":"Missed?","options":["Yes","No"],"closes_at": in_ms(3_600_000)}),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    app.sql(&format!("UPDATE polls SET closes_at = 2 WHERE id = {id}"))
        .await;
    let (st, v) = vote(&mina, &id, json!([1])).await;
    assert_eq!((st, v["error"].as_str()), (409, Some("poll_closed")), "{v}");
    let v = eventually(10, || async {
        let p = get_poll(Some(&mina), &app, &id).await;
        (p["closed"] == true).then_some(p)
    })
    .await;
    assert_eq!(v["results"]["voters"], 0);
    // Each closed poll's line is written once.
    eventually(10, || async {
        let rows = app
            .sql_rows("SELECT COUNT(*) FROM messages WHERE kind = 'poll'")
            .await;
        (rows == ["2"]).then_some(())
    })
    .await;
    let (_, msgs) = app.anon().get("/api/v1/rooms/timed/messages").await;
    let texts: Vec<&str> = msgs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["📊 Quick? → Yes", "📊 Missed? → —"]);
}

/// A room's map holds at most 100 members' views: the 101st is told the map is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_map_is_bounded() {
    let app = spawn_with(Backend::Sqlite, &["--login-rate-per-min", "1000"]).await;
    let owner = app.signup("owner").await;
    app.room(&owner, "busy").await;
    let mut users = Vec::new();
    for i in 0..101 {
        users.push(app.signup(&format!("m{i}")).await);
    }
    let view = json!({"type":"map.view","center":[37.5,127.0],"zoom":12,"bounds":[[37.4,126.9],[37.6,127.1]]});
    let mut sockets = Vec::new();
    for u in &users[..100] {
        let mut ws = app.ws(Some(u), "busy", None).await;
        ws.welcome().await;
        ws.send(view.clone()).await;
        sockets.push(ws);
    }
    let mut last = app.ws(Some(&users[100]), "busy", None).await;
    let w = last.welcome().await;
    // The hundred views reached the room before the welcome, or arrive after it.
    let name = |v: &Value| v["user"]["username"].as_str().unwrap().to_string();
    let mut seen: std::collections::HashSet<String> =
        w["views"].as_array().unwrap().iter().map(name).collect();
    while seen.len() < 100 {
        seen.insert(name(&frame(&mut last, "map.view").await));
    }
    last.send(view.clone()).await;
    assert_eq!(frame(&mut last, "error").await["code"], "map_full");
    // One leaves: there is room again.
    sockets.pop().unwrap().close().await;
    frame(&mut last, "map.left").await;
    last.send(view).await;
    let mine = frame(&mut last, "map.view").await;
    assert_eq!(mine["user"]["username"], "m100");
}
