//! Sign-up, log-in, log-out, tokens, CSRF and request errors.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_with, Backend, Client};

backend_tests!(
    signup_login_logout,
    first_account_is_admin,
    simultaneous_first_sign_ups_make_one_admin,
    username_and_password_rules,
    login_failures_look_the_same,
    login_is_rate_limited,
    per_ip_limits_follow_a_trusted_proxy,
    api_tokens,
    cross_site_requests_are_refused,
    malformed_requests_get_json_errors,
);

async fn signup_login_logout(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signup("alice").await;
    let (st, me) = alice.client.get("/api/v1/me").await;
    assert_eq!(st, 200);
    assert_eq!(me["user"]["username"], "alice");
    assert_eq!(me["user"]["id"], alice.id);

    let anon = app.anon();
    assert_eq!(anon.get("/api/v1/me").await.0, 401);

    let (st, body) = alice.client.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(st, 204, "{body}");
    // The old cookie no longer works.
    let (st, body) = alice.client.get("/api/v1/me").await;
    assert_eq!(st, 401);
    assert_eq!(body["error"], "login_required");

    let (st, body, cookie) = anon
        .post_raw(
            "/api/v1/auth/login",
            json!({"username": "ALICE", "password": "correct horse"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["user"]["username"], "alice");
    let c = Client::with_cookie(&app.base, &cookie.unwrap());
    assert_eq!(c.get("/api/v1/me").await.0, 200);
}

async fn first_account_is_admin(b: Backend) {
    let app = spawn_app(b).await;
    let (_, first) = app.signup("first").await.client.get("/api/v1/me").await;
    let (_, second) = app.signup("second").await.client.get("/api/v1/me").await;
    assert_eq!(first["user"]["role"], "admin");
    assert_eq!(second["user"]["role"], "member");
}

async fn username_and_password_rules(b: Backend) {
    let app = spawn_app(b).await;
    let anon = app.anon();
    let signup = |u: &str, p: &str| {
        let anon = anon.clone();
        let body = json!({"username": u, "password": p});
        async move { anon.post("/api/v1/auth/signup", body).await }
    };
    for (u, p, code) in [
        ("a", "long enough", "invalid_username"),
        (&"x".repeat(33) as &str, "long enough", "invalid_username"),
        ("bad name", "long enough", "invalid_username"),
        ("semi;colon", "long enough", "invalid_username"),
        ("okname", "short", "invalid_password"),
        ("okname", &"p".repeat(129), "invalid_password"),
    ] {
        let (st, body) = signup(u, p).await;
        assert_eq!(st, 400, "{u}: {body}");
        assert_eq!(body["error"], code, "{u}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Two characters are enough: most Korean names are two or three syllables.
    let (st, body) = signup("준호", "long enough").await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["user"]["username"], "준호");
    // Unicode letters are allowed and normalised (NFC); names are unique case-insensitively.
    let (st, body) = signup("민수_kim", "비밀번호12345").await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["user"]["username"], "민수_kim");
    let (st, body) = signup("Jose\u{301}", "long enough").await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["user"]["username"], "Jos\u{e9}");
    let (st, body) = signup("jos\u{e9}", "long enough").await;
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["error"], "username_taken");
    let (st, _) = signup("민수_KIM", "long enough").await;
    assert_eq!(st, 409);
}

async fn login_failures_look_the_same(b: Backend) {
    let app = spawn_app(b).await;
    app.signup("bob").await;
    let anon = app.anon();
    let (st1, wrong_pw) = anon
        .post(
            "/api/v1/auth/login",
            json!({"username": "bob", "password": "wrong password"}),
        )
        .await;
    let (st2, no_user) = anon
        .post(
            "/api/v1/auth/login",
            json!({"username": "nobody", "password": "wrong password"}),
        )
        .await;
    assert_eq!((st1, st2), (401, 401));
    assert_eq!(wrong_pw, no_user);
    assert_eq!(wrong_pw["error"], "invalid_credentials");
}

async fn login_is_rate_limited(b: Backend) {
    let app = spawn_with(b, &["--login-rate-per-min", "3"]).await;
    let anon = app.anon();
    let mut statuses = vec![];
    for _ in 0..5 {
        let (st, body) = anon
            .post(
                "/api/v1/auth/login",
                json!({"username": "someone", "password": "wrong password"}),
            )
            .await;
        if st == 429 {
            assert_eq!(body["error"], "rate_limited");
        }
        statuses.push(st);
    }
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);
}

async fn per_ip_limits_follow_a_trusted_proxy(b: Backend) {
    let app = spawn_with(b, &["--login-rate-per-min", "2", "--trust-proxy", "true"]).await;
    let anon = app.anon();
    let attempt = |ip: &'static str, user: &'static str| {
        let anon = anon.clone();
        async move {
            let body = Some(json!({"username": user, "password": "wrong password"}));
            let (st, _, _) = anon
                .send_full(
                    reqwest::Method::POST,
                    "/api/v1/auth/login",
                    body,
                    &[("x-forwarded-for", &format!("203.0.113.9, {ip}"))],
                )
                .await;
            st
        }
    };
    assert_eq!(attempt("10.0.0.1", "u1").await, 401);
    assert_eq!(attempt("10.0.0.1", "u2").await, 401);
    assert_eq!(attempt("10.0.0.1", "u3").await, 429);
    // Another client behind the same proxy has its own budget.
    assert_eq!(attempt("10.0.0.2", "u4").await, 401);
    // One account attacked from many addresses is limited too.
    assert_eq!(attempt("10.0.1.1", "target").await, 401);
    assert_eq!(attempt("10.0.1.2", "target").await, 401);
    assert_eq!(attempt("10.0.1.3", "target").await, 429);
}

async fn api_tokens(b: Backend) {
    let app = spawn_app(b).await;
    let carol = app.signup("carol").await;
    let (st, body) = carol
        .client
        .post("/api/v1/me/tokens", json!({"name": "bot"}))
        .await;
    assert_eq!(st, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    let id = body["id"].as_str().unwrap().to_string();
    let bot = Client::with_bearer(&app.base, &token);
    let (st, me) = bot.get("/api/v1/me").await;
    assert_eq!((st, me["user"]["username"].as_str()), (200, Some("carol")));
    // Tokens work for state changes (no Origin needed) and on the WebSocket.
    let (st, _) = bot
        .post("/api/v1/rooms", json!({"slug": "bots", "title": "Bots"}))
        .await;
    assert_eq!(st, 201);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/api/v1/rooms/bots/ws", app.host),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut ws = crate::helpers::Ws::connect(req).await;
    let w = ws.welcome().await;
    assert_eq!(w["you"]["username"], "carol");
    ws.say("beep").await;
    let m = ws.expect("message").await;
    assert_eq!(m["user"]["username"], "carol");

    // A user's tokens are capped.
    for i in 1..50 {
        let (st, _) = carol
            .client
            .post("/api/v1/me/tokens", json!({"name": format!("t{i}")}))
            .await;
        assert_eq!(st, 201);
    }
    let (st, body) = carol
        .client
        .post("/api/v1/me/tokens", json!({"name": "one too many"}))
        .await;
    assert_eq!((st, body["error"].as_str()), (409, Some("too_many_tokens")));
    let (_, list) = carol.client.get("/api/v1/me/tokens").await;
    assert_eq!(list["tokens"][0]["name"], "bot");
    assert!(
        list["tokens"][0].get("token").is_none(),
        "secret never listed"
    );
    // Someone else cannot revoke it.
    let dave = app.signup("dave").await;
    assert_eq!(
        dave.client
            .delete(&format!("/api/v1/me/tokens/{id}"))
            .await
            .0,
        404
    );
    assert_eq!(
        carol
            .client
            .delete(&format!("/api/v1/me/tokens/{id}"))
            .await
            .0,
        204
    );
    let (st, body) = bot.get("/api/v1/me").await;
    assert_eq!(st, 401, "{body}");
}

async fn cross_site_requests_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let eve = app.signup("eve").await;
    let body = Some(json!({"slug": "csrf", "title": "x"}));
    let (st, err, _) = eve
        .client
        .send_full(
            reqwest::Method::POST,
            "/api/v1/rooms",
            body.clone(),
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(st, 403);
    assert_eq!(err["error"], "csrf_rejected");
    let (st, _, _) = eve
        .client
        .send_full(
            reqwest::Method::POST,
            "/api/v1/rooms",
            body.clone(),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(st, 403);
    let origin = format!("http://{}", app.host);
    let (st, _, _) = eve
        .client
        .send_full(
            reqwest::Method::POST,
            "/api/v1/rooms",
            body,
            &[("origin", &origin)],
        )
        .await;
    assert_eq!(st, 201);
    // A WebSocket handshake from a foreign page is refused too.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/api/v1/rooms/csrf/ws", app.host),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    req.headers_mut()
        .insert("cookie", eve.cookie.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("cross-site WebSocket accepted: {:?}", other.map(|_| ())),
    }
}

async fn malformed_requests_get_json_errors(b: Backend) {
    let app = spawn_app(b).await;
    let http = reqwest::Client::new();
    let resp = http
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "invalid_json");
    // The message says what was wrong, not the code again.
    assert_ne!(v["message"], v["error"], "{v}");
    assert!(v["message"].as_str().unwrap().len() > 20, "{v}");
    let resp = http
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body(vec![b'x'; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "too_large");
    let (st, v) = app.anon().get("/api/v1/nope").await;
    assert_eq!((st, v["error"].as_str()), (404, Some("not_found")));
    let (st, v) = app.anon().get("/api/v1/rooms/x/messages?limit=abc").await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_query")));
    assert!(v["message"].as_str().unwrap().contains("limit"), "{v}");
    let (st, v) = app
        .anon()
        .post(
            "/api/v1/auth/signup",
            json!({"username": "a", "password": "correct horse"}),
        )
        .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_username")));
    assert_eq!(v["message"], "username must be 2 to 32 characters");
    // A plain GET on the WebSocket endpoint is refused clearly.
    let u = app.signup("plain").await;
    app.room(&u, "plain").await;
    let (st, v) = app.anon().get("/api/v1/rooms/plain/ws").await;
    assert_eq!((st, v["error"].as_str()), (400, Some("websocket_required")));
    // The server is still fine.
    assert_eq!(app.anon().get("/healthz").await.0, 200);
}

/// Sign-ups racing on a fresh database: exactly one of them becomes admin, every time (on
/// PostgreSQL the old "no users yet?" check inside the insert let two or more win).
async fn simultaneous_first_sign_ups_make_one_admin(b: Backend) {
    for round in 0..4 {
        // A fresh database each round (for PostgreSQL, a new one).
        let b = match &b {
            Backend::Sqlite => Backend::Sqlite,
            Backend::Postgres(_) => Backend::postgres().await.expect("PostgreSQL is configured"),
        };
        let app = spawn_with(b, &["--login-rate-per-min", "1000"]).await;
        let signups = (0..12).map(|i| {
            let anon = app.anon();
            tokio::spawn(async move {
                let body = json!({"username": format!("racer{i}"), "password": "correct horse"});
                anon.post("/api/v1/auth/signup", body).await
            })
        });
        let mut roles = Vec::new();
        for s in signups {
            let (st, body) = s.await.unwrap();
            assert_eq!(st, 201, "round {round}: {body}");
            roles.push(body["user"]["role"].as_str().unwrap().to_string());
        }
        let admins = roles.iter().filter(|r| *r == "admin").count();
        assert_eq!(admins, 1, "round {round}: roles {roles:?}");
        // And a later account is a member.
        let late = app.signup("latecomer").await;
        let (_, me) = late.client.get("/api/v1/me").await;
        assert_eq!(me["user"]["role"], "member");
    }
}
