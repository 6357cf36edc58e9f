//! Sign-in through outside providers, walked over HTTP as a browser would: a real OpenID
//! Connect provider (`oidc-provider` from npm, e2e/oidc-provider.mjs) with its login and
//! consent pages, issuers beside it that misbehave on purpose, and a small server with Naver's
//! OAuth 2.0 endpoint shapes (Naver itself cannot be reached from a test).

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Json;
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::helpers::{require_all, spawn_with, Backend, TestApp};

backend_tests!(
    a_new_member_signs_up_with_a_provider_and_comes_back,
    the_callback_refuses_what_does_not_belong_to_this_sign_in,
    id_tokens_that_fail_their_checks_are_refused,
    naver_signs_in_through_its_profile_api,
    a_verified_address_links_only_where_the_operator_trusts_it,
);

const SECRET: &str = "moim-client-secret-do-not-log";

/// The provider process and its ports.
pub(crate) struct Idp {
    child: Child,
    port: u16,
    rogue: u16,
    stdin: Option<std::process::ChildStdin>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts e2e/oidc-provider.mjs, or None when node is missing (a failure under
/// `MOIM_REQUIRE_ALL=1`).
pub(crate) fn start_idp() -> Option<Idp> {
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(!require_all(), "node is required (MOIM_REQUIRE_ALL=1)");
        eprintln!("SKIPPED (sign-in): install node to run the sign-in tests");
        return None;
    }
    let root = crate::helpers::manifest_dir();
    let e2e = format!("{}/e2e", root.display());
    crate::helpers::npm_ci(&e2e);
    let log = std::fs::File::create(std::env::temp_dir().join(format!(
        "moim-oidc-provider-{}-{:?}.log",
        std::process::id(),
        std::thread::current().id()
    )))
    .unwrap();
    let mut child = Command::new("node")
        .arg("--no-warnings")
        .arg(format!("{e2e}/oidc-provider.mjs"))
        .args(["moim", SECRET])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the OpenID provider");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Keep reading, so the provider never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.first(), Some(&"ready"), "provider said {line:?}");
    Some(Idp {
        port: parts[1].parse().unwrap(),
        rogue: parts[2].parse().unwrap(),
        stdin: child.stdin.take(),
        child,
    })
}

/// A server with Naver's endpoint shapes: authorize (signs `naver-user` in at once), token
/// (`expires_in` a string; a used code answered with 200 and an `error`), profile
/// (`resultcode` "00", the person under `response`).
#[derive(Clone, Default)]
struct NaverFake {
    issued: Arc<std::sync::atomic::AtomicUsize>,
    codes: Arc<Mutex<Vec<String>>>,
    tokens: Arc<Mutex<Vec<String>>>,
}

async fn start_naver() -> u16 {
    let fake = NaverFake::default();
    let app = axum::Router::new()
        .route(
            "/oauth2.0/authorize",
            get(
                |State(f): State<NaverFake>, Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
                    assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"));
                    let code = format!("code-{}", f.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                    f.codes.lock().unwrap().push(code.clone());
                    let back = format!(
                        "{}?code={code}&state={}",
                        q["redirect_uri"],
                        q.get("state").cloned().unwrap_or_default()
                    );
                    Redirect::to(&back)
                },
            ),
        )
        .route(
            "/oauth2.0/token",
            post(
                |State(f): State<NaverFake>, Form(form): Form<std::collections::HashMap<String, String>>| async move {
                    let code = form.get("code").cloned().unwrap_or_default();
                    let known = {
                        let mut codes = f.codes.lock().unwrap();
                        let at = codes.iter().position(|c| *c == code);
                        at.map(|i| codes.remove(i)).is_some()
                    };
                    if form.get("state").is_none_or(|s| s.is_empty()) {
                        return Json(json!({"error": "invalid_request", "error_description": "no state"}));
                    }
                    if form.get("client_secret").map(String::as_str) != Some(SECRET) {
                        return Json(json!({"error": "invalid_client", "error_description": "bad secret"}));
                    }
                    if !known {
                        return Json(json!({"error": "invalid_request", "error_description": "no valid code"}));
                    }
                    let token = format!("naver-token-{code}");
                    f.tokens.lock().unwrap().push(token.clone());
                    Json(json!({"access_token": token, "refresh_token": "r", "token_type": "bearer", "expires_in": "3600"}))
                },
            ),
        )
        .route(
            "/v1/nid/me",
            get(|State(f): State<NaverFake>, headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let known = f
                    .tokens
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|t| auth == format!("Bearer {t}"));
                if !known {
                    return (
                        axum::http::StatusCode::UNAUTHORIZED,
                        Json(json!({"resultcode": "024", "message": "Authentication failed"})),
                    )
                        .into_response();
                }
                Json(json!({"resultcode": "00", "message": "success", "response": {
                    "id": "naver-32fa7", "nickname": "네이버 친구", "email": "friend@naver.example"}}))
                .into_response()
            }),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// moim with the test providers configured, and the provider told where moim is.
async fn spawn_configured(backend: Backend, idp: &mut Idp, naver: u16) -> TestApp {
    let dir = std::env::temp_dir().join(format!("moim-signin-{}-{}", std::process::id(), idp.port));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("client-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let secret = secret.display();
    let (p, r) = (idp.port, idp.rogue);
    let mut toml = format!(
        "[oidc.test]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{p}\"\nclient_id = \"moim\"\n\
         client_secret_file = \"{secret}\"\ndisplay_name = \"Test ID\"\ntrust_email = true\n\n\
         [oidc.test2]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{p}\"\nclient_id = \"moim\"\n\
         client_secret_file = \"{secret}\"\ntrust_email = true\n\n\
         [oidc.test3]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{p}\"\nclient_id = \"moim\"\n\
         client_secret_file = \"{secret}\"\n\n\
         [oidc.down]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:1\"\nclient_id = \"moim\"\n\
         client_secret_file = \"{secret}\"\n\n\
         [oidc.naver]\nkind = \"naver\"\nclient_id = \"moim\"\nclient_secret_file = \"{secret}\"\n\
         authorization_endpoint = \"http://127.0.0.1:{naver}/oauth2.0/authorize\"\n\
         token_endpoint = \"http://127.0.0.1:{naver}/oauth2.0/token\"\n\
         userinfo_endpoint = \"http://127.0.0.1:{naver}/v1/nid/me\"\n\n"
    );
    for mode in [
        "wrong-aud",
        "expired",
        "unknown-key",
        "rotate",
        "wrong-nonce",
        "wrong-iss",
        "broken-token",
        "old-iat",
        "future-iat",
    ] {
        toml.push_str(&format!(
            "[oidc.{mode}]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{r}/{mode}\"\n\
             client_id = \"moim\"\nclient_secret_file = \"{secret}\"\n\n"
        ));
    }
    let config = dir.join("moim.toml");
    std::fs::write(&config, toml).unwrap();
    let config = config.display().to_string();
    let app = spawn_with(
        backend,
        &["--config", &config, "--login-rate-per-min", "1000"],
    )
    .await;
    let stdin = idp.stdin.as_mut().unwrap();
    writeln!(stdin, "{}", app.base).unwrap();
    stdin.flush().unwrap();
    app
}

/// moim as the browser test sees it: Google, Kakao and Naver configured (shown, not used: they
/// cannot be reached from a test) and the community's own provider, the test's.
pub(crate) async fn spawn_for_browser(idp: &mut Idp) -> TestApp {
    let dir = std::env::temp_dir().join(format!(
        "moim-signin-ui-{}-{}",
        std::process::id(),
        idp.port
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("client-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let secret = secret.display();
    let p = idp.port;
    let mut toml = String::new();
    for kind in ["google", "kakao", "naver"] {
        toml.push_str(&format!(
            "[oidc.{kind}]\nkind = \"{kind}\"\nclient_id = \"moim\"\nclient_secret_file = \"{secret}\"\n\n"
        ));
    }
    toml.push_str(&format!(
        "[oidc.test]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{p}\"\nclient_id = \"moim\"\n\
         client_secret_file = \"{secret}\"\ndisplay_name = \"Community ID\"\n"
    ));
    let config = dir.join("moim.toml");
    std::fs::write(&config, toml).unwrap();
    let config = config.display().to_string();
    let app = spawn_with(Backend::Sqlite, &["--config", &config]).await;
    let stdin = idp.stdin.as_mut().unwrap();
    writeln!(stdin, "{}", app.base).unwrap();
    stdin.flush().unwrap();
    app
}

/// A browser: one cookie jar for moim and the provider (cookies do not care about ports, and
/// the names differ), redirects followed by hand.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    let loc = resp
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {} {}", resp.status(), resp.url()))
        .to_str()
        .unwrap();
    resp.url().join(loc).unwrap().to_string()
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// Starts signing in at moim's `start` URL and goes through the provider (logging in as
/// `login` and consenting when it asks) until it sends the browser back to moim: returns the
/// callback URL, not yet opened.
async fn through_provider(b: &reqwest::Client, app: &TestApp, start: &str, login: &str) -> String {
    through_provider_keeping_cookie(b, app, start, login)
        .await
        .0
}

/// As [`through_provider`], also returning the flow's cookie (`moim_signin=…`) moim set.
async fn through_provider_keeping_cookie(
    b: &reqwest::Client,
    app: &TestApp,
    start: &str,
    login: &str,
) -> (String, String) {
    let resp = b.get(app.url(start)).send().await.unwrap();
    let flow = set_cookies(&resp)
        .into_iter()
        .find(|c| c.starts_with("moim_signin="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_default();
    if resp.status() != 302 {
        let log = std::fs::read_to_string(app.data_dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        panic!("start answered {}; the log ends {tail:#?}", resp.status());
    }
    let mut url = location(&resp);
    for _ in 0..20 {
        if url.starts_with(&app.base) {
            return (url, flow);
        }
        let resp = b.get(&url).send().await.unwrap();
        if resp.status().is_redirection() {
            url = location(&resp);
            continue;
        }
        assert_eq!(resp.status(), 200, "at {url}");
        let page = resp.text().await.unwrap();
        let form: Vec<(&str, &str)> = if page.contains("name=\"login\"") {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else {
            vec![("prompt", "consent")]
        };
        let resp = b.post(&url).form(&form).send().await.unwrap();
        assert!(
            resp.status().is_redirection(),
            "{url} answered {}",
            resp.status()
        );
        url = location(&resp);
    }
    panic!("the provider never sent the browser back");
}

/// Opens the callback URL: (status, Location or the page's text, cookies set).
async fn open(b: &reqwest::Client, url: &str) -> (u16, String, Vec<String>) {
    let resp = b.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let cookies = set_cookies(&resp);
    let what = if resp.status().is_redirection() {
        location(&resp)
    } else {
        resp.text().await.unwrap()
    };
    (status, what, cookies)
}

async fn api(
    b: &reqwest::Client,
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = b
        .request(method.parse().unwrap(), app.url(&format!("/api/v1{path}")))
        .header("origin", &app.base);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn problem_of(page: &str) -> &str {
    page.split("data-problem=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("(no problem page)")
}

async fn a_new_member_signs_up_with_a_provider_and_comes_back(backend: Backend) {
    let Some(mut idp) = start_idp() else { return };
    let naver = start_naver().await;
    let app = spawn_configured(backend, &mut idp, naver).await;
    let b = browser();

    let (s, list) = api(&b, &app, "GET", "/auth/providers", None).await;
    assert_eq!(s, 200);
    let test = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "test")
        .expect("test provider listed")
        .clone();
    assert_eq!(test["name"], "Test ID");
    assert_eq!(test["start_url"], "/auth/test/start");

    // Off to the provider: code flow with PKCE S256, state and nonce, in a short-lived cookie.
    let resp = b
        .get(app.url("/auth/test/start?next=/r/somewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let to = reqwest::Url::parse(&location(&resp)).unwrap();
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(
        to.origin().ascii_serialization(),
        format!("http://127.0.0.1:{}", idp.port)
    );
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 16 && q["nonce"].len() >= 16);
    assert_eq!(
        q["redirect_uri"],
        format!("{}/auth/test/callback", app.base)
    );
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    let flow = set_cookies(&resp)
        .into_iter()
        .find(|c| c.starts_with("moim_signin="))
        .unwrap();
    assert!(
        flow.contains("HttpOnly") && flow.contains("SameSite=Lax") && flow.contains("Path=/auth"),
        "{flow}"
    );

    // Through the provider's login and consent, back to moim: a new identity goes to the
    // username step, the suggestion made from the provider's nickname.
    let (callback, flow_cookie) =
        through_provider_keeping_cookie(&b, &app, "/auth/test/start?next=/r/somewhere", "minji")
            .await;
    let (s, to, cookies) = open(&b, &callback).await;
    assert_eq!(s, 302, "{to}");
    assert_eq!(to, app.url("/welcome"));
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("moim_pending=") && c.contains("HttpOnly")));
    assert!(!cookies.iter().any(|c| c.starts_with("moim_session=")));
    let (s, pending) = api(&b, &app, "GET", "/auth/oidc/pending", None).await;
    assert_eq!(s, 200, "{pending}");
    assert_eq!(pending["provider"]["id"], "test");
    assert_eq!(pending["provider"]["name"], "Test ID");
    assert_eq!(pending["suggested_username"], "김민지");
    assert_eq!(pending["next"], "/r/somewhere");

    // The same answer from the provider cannot be used again: its cookie is cleared, and put
    // back (a replay from a copied cookie) the state is found spent.
    let (s, page, _) = open(&b, &callback).await;
    assert_eq!((s, problem_of(&page)), (400, "signin_expired"));
    let resp = browser()
        .get(&callback)
        .header("cookie", &flow_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(problem_of(&resp.text().await.unwrap()), "state_used");
    let _ = flow;

    // The username step: a bad name is refused with the reason; then the account.
    let (s, e) = api(
        &b,
        &app,
        "POST",
        "/auth/oidc/complete",
        Some(json!({"username": "a b"})),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_username")),
        "{e}"
    );
    let (s, e) = api(
        &b,
        &app,
        "POST",
        "/auth/oidc/complete",
        Some(json!({"username": "minji", "extra": 1})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    let (s, made) = api(
        &b,
        &app,
        "POST",
        "/auth/oidc/complete",
        Some(json!({"username": "김민지"})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["user"]["username"], "김민지");
    assert_eq!(made["next"], "/r/somewhere");
    let (s, me) = api(&b, &app, "GET", "/me", None).await;
    assert_eq!((s, me["user"]["username"].as_str()), (200, Some("김민지")));
    // The operator sees the redirect URLs to register; members do not.
    let admin = &b; // 김민지 made the first account: admin
    let (s, admin_list) = api(admin, &app, "GET", "/admin/sign-in-providers", None).await;
    assert_eq!(s, 200, "{admin_list}");
    let entry = admin_list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "test")
        .unwrap()
        .clone();
    assert_eq!(
        entry["redirect_url"],
        format!("{}/auth/test/callback", app.base)
    );
    assert!(!admin_list.to_string().contains(SECRET));
    let (s, _) = api(&browser(), &app, "GET", "/admin/sign-in-providers", None).await;
    assert_eq!(s, 401);

    // The pending identity is spent.
    let (s, e) = api(
        &b,
        &app,
        "POST",
        "/auth/oidc/complete",
        Some(json!({"username": "other"})),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (404, Some("no_pending_signin")));

    // Second sign-in, in a fresh browser: straight in, to `next`.
    let b2 = browser();
    let callback = through_provider(&b2, &app, "/auth/test/start?next=/videos", "minji").await;
    let (s, to, cookies) = open(&b2, &callback).await;
    assert_eq!((s, to.as_str()), (302, app.url("/videos").as_str()));
    assert!(cookies.iter().any(|c| c.starts_with("moim_session=")));
    let (_, me2) = api(&b2, &app, "GET", "/me", None).await;
    assert_eq!(me2["user"]["id"], me["user"]["id"]);

    // Settings: connected providers; the only way in cannot be disconnected until a password
    // is set.
    let (s, ids) = api(&b2, &app, "GET", "/me/identities", None).await;
    assert_eq!(s, 200);
    assert_eq!(ids["has_password"], false);
    assert_eq!(ids["identities"][0]["provider"], "test");
    assert!(ids["identities"][0]["linked_at"].is_string());
    let (s, e) = api(&b2, &app, "DELETE", "/me/identities/test", None).await;
    assert_eq!((s, e["error"].as_str()), (409, Some("last_login_method")));
    let (s, e) = api(
        &b2,
        &app,
        "PUT",
        "/me/password",
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_password")));
    // No password yet: no password opens the account, not even an empty one.
    for guess in ["", "anything at all"] {
        let (s, _) = app
            .anon()
            .post(
                "/api/v1/auth/login",
                json!({"username": "김민지", "password": guess}),
            )
            .await;
        assert_eq!(s, 401, "{guess:?}");
    }
    // A first password needs a fresh sign-in (a session stolen earlier cannot set one) and a
    // browser session, not an API token.
    let (_, token) = api(&b2, &app, "POST", "/me/tokens", Some(json!({"name": "t"}))).await;
    let by_token = crate::helpers::Client::with_bearer(&app.base, token["token"].as_str().unwrap());
    let (s, _) = by_token
        .put(
            "/api/v1/me/password",
            json!({"password": "a good long password"}),
        )
        .await;
    assert_eq!(s, 403);
    app.sql(&format!(
        "UPDATE sessions SET created_at = created_at - {} WHERE user_id = {}",
        11 * 60 * 1000,
        me["user"]["id"].as_str().unwrap()
    ))
    .await;
    let (s, e) = api(
        &b2,
        &app,
        "PUT",
        "/me/password",
        Some(json!({"password": "a good long password"})),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("sign in again"),
        "{e}"
    );
    let b2 = browser();
    let callback = through_provider(&b2, &app, "/auth/test/start", "minji").await;
    open(&b2, &callback).await;
    let (s, _) = api(
        &b2,
        &app,
        "PUT",
        "/me/password",
        Some(json!({"password": "a good long password"})),
    )
    .await;
    assert_eq!(s, 204);
    // Setting it ended the account's other sessions.
    let (s, _) = api(&b, &app, "GET", "/me", None).await;
    assert_eq!(s, 401, "the first browser's session ended");
    let (s, _) = api(&b2, &app, "GET", "/me", None).await;
    assert_eq!(s, 200, "this one goes on");
    // A wrong current password is refused.
    let (s, e) = api(
        &b2,
        &app,
        "PUT",
        "/me/password",
        Some(json!({"password": "another long one", "current_password": "wrong guess"})),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("wrong_password")));
    // Changing it now needs the current one.
    let (s, e) = api(
        &b2,
        &app,
        "PUT",
        "/me/password",
        Some(json!({"password": "another long one"})),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("current_password_required"))
    );
    let (s, _) = api(&b2, &app, "DELETE", "/me/identities/test", None).await;
    assert_eq!(s, 204);
    let (s, _) = api(&b2, &app, "DELETE", "/me/identities/test", None).await;
    assert_eq!(s, 404);
    let (s, _) = app
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({"username": "김민지", "password": "a good long password"}),
        )
        .await;
    assert_eq!(s, 200);

    // Connect it again from settings (a signed-in session): back to /settings.
    let (s, started) = api(&b2, &app, "POST", "/me/identities/test", None).await;
    assert_eq!(s, 200, "{started}");
    let start = started["start_url"].as_str().unwrap().to_string();
    assert!(start.starts_with("/auth/test/start?link="));
    let callback = through_provider(&b2, &app, &start, "minji").await;
    let (s, to, _) = open(&b2, &callback).await;
    assert_eq!((s, to.as_str()), (302, app.url("/settings").as_str()));
    let (_, ids) = api(&b2, &app, "GET", "/me/identities", None).await;
    assert_eq!(ids["identities"].as_array().unwrap().len(), 1);
    // The ticket is for this account only: another browser cannot use it.
    let (s, page, _) = open(&browser(), &app.url(&start)).await;
    assert_eq!((s, problem_of(&page)), (400, "sign_in_first"));

    // Someone else's identity cannot be connected to another account: a member with a
    // password connects `test`, and signs in there as minji, whose identity is taken.
    let b3 = browser();
    let (s, _) = api(
        &b3,
        &app,
        "POST",
        "/auth/signup",
        Some(json!({"username": "kimjun", "password": "kimjun's password"})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, started) = api(&b3, &app, "POST", "/me/identities/test", None).await;
    let start = started["start_url"].as_str().unwrap().to_string();
    let cb = through_provider(&b3, &app, &start, "minji").await;
    let (s, page, _) = open(&b3, &cb).await;
    assert_eq!((s, problem_of(&page)), (409, "identity_taken"), "{page}");
    let (_, ids) = api(&b3, &app, "GET", "/me/identities", None).await;
    assert_eq!(ids["identities"], json!([]));
    assert_eq!(ids["has_password"], true);
    // Its own identity there connects, and then the provider's sign-in goes to it.
    let b4 = browser();
    let (s, login) = api(
        &b4,
        &app,
        "POST",
        "/auth/login",
        Some(json!({"username": "kimjun", "password": "kimjun's password"})),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let (_, started) = api(&b4, &app, "POST", "/me/identities/test", None).await;
    let start = started["start_url"].as_str().unwrap().to_string();
    let cb = through_provider(&b4, &app, &start, "kim-jun").await;
    let (s, to, _) = open(&b4, &cb).await;
    assert_eq!((s, to.as_str()), (302, app.url("/settings").as_str()));
    let b5 = browser();
    let cb = through_provider(&b5, &app, "/auth/test/start", "kim-jun").await;
    open(&b5, &cb).await;
    let (_, me5) = api(&b5, &app, "GET", "/me", None).await;
    assert_eq!(me5["user"]["username"], "kimjun");

    // No secret, code or token in the log.
    let log = std::fs::read_to_string(app.data_dir.join("server.log")).unwrap();
    assert!(log.contains("signed in through a provider"));
    assert!(!log.contains(SECRET), "the client secret reached the log");
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    assert!(
        !log.contains(&code),
        "an authorization code reached the log"
    );
}

async fn the_callback_refuses_what_does_not_belong_to_this_sign_in(backend: Backend) {
    let Some(mut idp) = start_idp() else { return };
    let naver = start_naver().await;
    let app = spawn_configured(backend, &mut idp, naver).await;
    let b = browser();

    // A wrong state.
    let cb = through_provider(&b, &app, "/auth/test/start", "eve").await;
    let mut url = reqwest::Url::parse(&cb).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            (
                k.to_string(),
                if k == "state" {
                    "forged".to_string()
                } else {
                    v.to_string()
                },
            )
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let (s, page, _) = open(&b, url.as_str()).await;
    assert_eq!((s, problem_of(&page)), (400, "wrong_state"));
    assert!(
        page.contains("Try again") && page.contains("/#login"),
        "a way back: {page}"
    );

    // No state at all, and no flow cookie (another browser, or a link someone was sent).
    let cb = through_provider(&b, &app, "/auth/test/start", "eve").await;
    let (s, page, _) = open(&browser(), &cb).await;
    assert_eq!((s, problem_of(&page)), (400, "signin_expired"));
    let no_state: String = cb
        .split('&')
        .filter(|p| !p.starts_with("state="))
        .collect::<Vec<_>>()
        .join("&");
    let (s, page, cookies) = open(&b, &no_state).await;
    assert_eq!((s, problem_of(&page)), (400, "wrong_state"), "{page}");
    // An answer that is not this flow's leaves the flow under way alone (its cookie kept).
    assert!(
        !cookies.iter().any(|c| c.starts_with("moim_signin=")),
        "{cookies:?}"
    );
    let (s, to, _) = open(&b, &cb).await;
    assert_eq!((s, to.as_str()), (302, app.url("/welcome").as_str()));

    // A replayed code: sign in once, then bring the same code back with a fresh sign-in's
    // state. The provider refuses it (codes are single-use and bound to PKCE).
    let b = browser();
    let first = through_provider(&b, &app, "/auth/test/start", "eve").await;
    let (s, _, _) = open(&b, &first).await;
    assert_eq!(s, 302);
    let second = through_provider(&b, &app, "/auth/test/start", "eve").await;
    let code = |u: &str| {
        reqwest::Url::parse(u)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .to_string()
    };
    let replayed = second.replace(&code(&second), &code(&first));
    let (s, page, _) = open(&b, &replayed).await;
    assert_eq!((s, problem_of(&page)), (400, "provider_refused"), "{page}");

    // Cancelled at the provider: the provider's "abort" sends access_denied back.
    let b = browser();
    let resp = b.get(app.url("/auth/test/start")).send().await.unwrap();
    let mut url = location(&resp);
    let back = loop {
        let resp = b.get(&url).send().await.unwrap();
        if resp.status().is_redirection() {
            url = location(&resp);
            continue;
        }
        // The login page: abort from it.
        let abort = format!("{}/abort", url.trim_end_matches('/'));
        let resp = b.get(&abort).send().await.unwrap();
        let mut next = location(&resp);
        while !next.starts_with(&app.base) {
            next = location(&b.get(&next).send().await.unwrap());
        }
        break next;
    };
    assert!(back.contains("error=access_denied"), "{back}");
    let resp = b
        .get(&back)
        .header("accept-language", "ko-KR,ko;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let page = resp.text().await.unwrap();
    assert_eq!(problem_of(&page), "signin_cancelled");
    assert!(
        page.contains("lang=\"ko\"") && page.contains("로그인을 취소했습니다"),
        "{page}"
    );

    // A provider that cannot be reached: a page that says so, 502.
    let (s, page, _) = open(&browser(), &app.url("/auth/down/start")).await;
    assert_eq!((s, problem_of(&page)), (502, "provider_failed"));
    assert!(page.contains("could not be reached"));
    // An unknown provider.
    let (s, page, _) = open(&browser(), &app.url("/auth/nobody/start")).await;
    assert_eq!((s, problem_of(&page)), (404, "unknown_provider"));
    // `next` cannot lead off the site.
    let b = browser();
    let cb = through_provider(&b, &app, "/auth/test/start?next=//evil.example/x", "eve").await;
    let (s, to, _) = open(&b, &cb).await;
    assert_eq!((s, to.as_str()), (302, app.url("/welcome").as_str()));
    let (_, pending) = api(&b, &app, "GET", "/auth/oidc/pending", None).await;
    assert_eq!(pending["next"], "/");

    let metrics = app.anon().text("/metrics").await;
    assert!(
        crate::helpers::refused_count(&metrics, "signin_failed") >= 5,
        "{metrics}"
    );
}

async fn id_tokens_that_fail_their_checks_are_refused(backend: Backend) {
    let Some(mut idp) = start_idp() else { return };
    let naver = start_naver().await;
    let app = spawn_configured(backend, &mut idp, naver).await;
    for mode in [
        "wrong-aud",
        "expired",
        "unknown-key",
        "wrong-nonce",
        "wrong-iss",
        "broken-token",
        "old-iat",
        "future-iat",
    ] {
        let b = browser();
        let cb = through_provider(&b, &app, &format!("/auth/{mode}/start"), "x").await;
        let (s, page, cookies) = open(&b, &cb).await;
        assert_eq!(
            (s, problem_of(&page)),
            (502, "provider_failed"),
            "{mode}: {page}"
        );
        assert!(
            !cookies
                .iter()
                .any(|c| c.starts_with("moim_session=") || c.starts_with("moim_pending=")),
            "{mode}"
        );
    }
    let log = std::fs::read_to_string(app.data_dir.join("server.log")).unwrap();
    for expected in [
        "Invalid audiences",
        "Expired",
        "Invalid nonce",
        "Invalid issuer",
        "s ago",
        "s in the future",
    ] {
        assert!(log.contains(expected), "the log says why: {expected}");
    }
    assert!(!log.contains(SECRET), "the client secret reached the log");
    let refetched = |log: &str| log.matches("provider's signing keys fetched again").count();
    let before = refetched(&log);
    // A provider that rotated its keys: the first token is signed with the key discovery
    // fetched, the second with a new one: fetched again, and both sign-ins work.
    for round in 0..2 {
        let b = browser();
        let cb = through_provider(&b, &app, "/auth/rotate/start", "x").await;
        let (s, to, _) = open(&b, &cb).await;
        assert_eq!(
            (s, to.as_str()),
            (302, app.url("/welcome").as_str()),
            "round {round}: {to}"
        );
    }
    let log = std::fs::read_to_string(app.data_dir.join("server.log")).unwrap();
    assert_eq!(
        refetched(&log),
        before + 1,
        "the rotated key was fetched, once"
    );
}

async fn naver_signs_in_through_its_profile_api(backend: Backend) {
    let Some(mut idp) = start_idp() else { return };
    let naver = start_naver().await;
    let app = spawn_configured(backend, &mut idp, naver).await;
    let b = browser();
    let resp = b.get(app.url("/auth/naver/start")).send().await.unwrap();
    let to = reqwest::Url::parse(&location(&resp)).unwrap();
    assert_eq!(to.path(), "/oauth2.0/authorize");
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "moim");
    assert!(!q.contains_key("nonce"), "OAuth 2.0 only");
    let cb = through_provider(&b, &app, "/auth/naver/start", "-").await;
    let (s, to, _) = open(&b, &cb).await;
    assert_eq!((s, to.as_str()), (302, app.url("/welcome").as_str()));
    let (_, pending) = api(&b, &app, "GET", "/auth/oidc/pending", None).await;
    assert_eq!(pending["provider"]["name"], "Naver");
    assert_eq!(pending["suggested_username"], "네이버_친구");
    let (s, made) = api(
        &b,
        &app,
        "POST",
        "/auth/oidc/complete",
        Some(json!({"username": "네이버친구"})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    // Back again: the subject is the profile's id.
    let b2 = browser();
    let cb = through_provider(&b2, &app, "/auth/naver/start", "-").await;
    let (s, to, _) = open(&b2, &cb).await;
    assert_eq!((s, to.as_str()), (302, app.url("/").as_str()));
    let (_, me) = api(&b2, &app, "GET", "/me", None).await;
    assert_eq!(me["user"]["username"], "네이버친구");
    assert_eq!(
        app.sql_rows("SELECT subject FROM user_identities WHERE provider = 'naver'")
            .await,
        vec!["naver-32fa7".to_string()]
    );
    // Naver answers a used code with 200 and an error: refused, not a crash.
    let b3 = browser();
    let first = through_provider(&b3, &app, "/auth/naver/start", "-").await;
    open(&b3, &first).await;
    let second = through_provider(&b3, &app, "/auth/naver/start", "-").await;
    let code = |u: &str| {
        reqwest::Url::parse(u)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .to_string()
    };
    let (s, page, _) = open(&b3, &second.replace(&code(&second), &code(&first))).await;
    assert_eq!((s, problem_of(&page)), (400, "provider_refused"), "{page}");
}

async fn a_verified_address_links_only_where_the_operator_trusts_it(backend: Backend) {
    let Some(mut idp) = start_idp() else { return };
    let naver = start_naver().await;
    let app = spawn_configured(backend, &mut idp, naver).await;
    // alice@example.test (verified) through `test` (trusted): an account.
    let b = browser();
    let cb = through_provider(&b, &app, "/auth/test/start", "alice").await;
    open(&b, &cb).await;
    let (s, alice) = api(
        &b,
        &app,
        "POST",
        "/auth/oidc/complete",
        Some(json!({"username": "alice"})),
    )
    .await;
    assert_eq!(s, 201);
    // The same verified address through `test2`, also trusted: the same account, at once.
    let b2 = browser();
    let cb = through_provider(&b2, &app, "/auth/test2/start", "alice").await;
    let (s, to, _) = open(&b2, &cb).await;
    assert_eq!((s, to.as_str()), (302, app.url("/").as_str()));
    let (_, me) = api(&b2, &app, "GET", "/me", None).await;
    assert_eq!(me["user"]["id"], alice["user"]["id"]);
    // Through `test3`, which the operator does not trust for addresses: a new identity.
    let b3 = browser();
    let cb = through_provider(&b3, &app, "/auth/test3/start", "alice").await;
    let (s, to, _) = open(&b3, &cb).await;
    assert_eq!((s, to.as_str()), (302, app.url("/welcome").as_str()));
    // An address the provider did not verify links nowhere, even between trusted providers.
    let b4 = browser();
    let cb = through_provider(&b4, &app, "/auth/test/start", "unverified-bob").await;
    open(&b4, &cb).await;
    let (s, _) = api(
        &b4,
        &app,
        "POST",
        "/auth/oidc/complete",
        Some(json!({"username": "bob"})),
    )
    .await;
    assert_eq!(s, 201);
    // An identity at a provider the operator has since removed is no way in: it does not
    // count toward the last way, and it can be removed.
    let (_, bob) = api(&b4, &app, "GET", "/me", None).await;
    app.sql(&format!(
        "INSERT INTO user_identities (provider, subject, user_id, linked_at) VALUES ('gone', 'x', {}, 0)",
        bob["user"]["id"].as_str().unwrap()
    ))
    .await;
    let (_, ids) = api(&b4, &app, "GET", "/me/identities", None).await;
    assert_eq!(ids["identities"].as_array().unwrap().len(), 2);
    let (s, e) = api(&b4, &app, "DELETE", "/me/identities/test", None).await;
    assert_eq!((s, e["error"].as_str()), (409, Some("last_login_method")));
    let (s, _) = api(&b4, &app, "DELETE", "/me/identities/gone", None).await;
    assert_eq!(s, 204);
    let b5 = browser();
    let cb = through_provider(&b5, &app, "/auth/test2/start", "unverified-bob").await;
    let (s, to, _) = open(&b5, &cb).await;
    assert_eq!((s, to.as_str()), (302, app.url("/welcome").as_str()));
    // A taken username at the step: 409, and the step can be retried.
    let (s, e) = api(
        &b5,
        &app,
        "POST",
        "/auth/oidc/complete",
        Some(json!({"username": "ALICE"})),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (409, Some("username_taken")));
    let (s, _) = api(
        &b5,
        &app,
        "POST",
        "/auth/oidc/complete",
        Some(json!({"username": "bob2"})),
    )
    .await;
    assert_eq!(s, 201);
}

/// Starting sign-ins counts as logging in: past the address's allowance, a page says to wait
/// (before anything is asked of the provider).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_sign_ins_is_limited_per_address() {
    let dir = std::env::temp_dir().join(format!("moim-signin-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("moim.toml");
    std::fs::write(
        &config,
        "[oidc.down]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:1\"\nclient_id = \"moim\"\n",
    )
    .unwrap();
    let app = crate::helpers::spawn_with_env(
        Backend::Sqlite,
        &[
            "--config",
            config.to_str().unwrap(),
            "--login-rate-per-min",
            "3",
        ],
        &[("MOIM_OIDC_DOWN_CLIENT_SECRET", SECRET)],
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (s, page, _) = open(&browser(), &app.url("/auth/down/start")).await;
        seen.push((s, problem_of(&page).to_string()));
    }
    assert_eq!(seen[0], (502, "provider_failed".to_string()));
    assert_eq!(seen[4], (429, "rate_limited".to_string()), "{seen:?}");
    let metrics = app.anon().text("/metrics").await;
    assert!(crate::helpers::refused_count(&metrics, "login_rate_limited") >= 1);
}
