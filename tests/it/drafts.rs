//! AI review drafts: streamed through moim from a real small model served locally (llama.cpp's
//! server with SmolLM2-135M, started by .ci/run and found at `MOIM_TEST_LLM_URL`), and the
//! quirks of real servers reproduced by a small server here: pictures refused with a 500,
//! `finish_reason` empty, no `usage`, an error mid-stream, an answer that stops short, a
//! server that stalls. Nothing is ever stored.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{json, Value};

use crate::helpers::{require_all, spawn_app, spawn_with, Backend, TestApp, User};

/// How the stand-in server answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Quirk {
    /// Refuses requests with pictures (500), streams text-only ones with empty finish reasons.
    RefusesPictures,
    /// Streams two pieces, then an error object.
    FailsMidway,
    /// Streams a piece and closes without a finish reason or `[DONE]`.
    StopsShort,
    /// Sends headers and one piece, then nothing.
    Stalls,
}

#[derive(Clone)]
struct Fake {
    quirk: Quirk,
    /// Bodies received.
    seen: Arc<Mutex<Vec<Value>>>,
}

fn chunk(text: &str, finish: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":text},"finish_reason":finish}]})
    )
}

async fn completions(
    State(fake): State<Fake>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let v: Value = serde_json::from_slice(&body).unwrap();
    fake.seen.lock().unwrap().push(v.clone());
    let has_picture = v["messages"][1]["content"].is_array();
    let sse = |parts: Vec<String>, stall: bool| {
        let stream = futures_util::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>));
        let body = if stall {
            axum::body::Body::from_stream(futures_util::StreamExt::chain(
                stream,
                futures_util::stream::pending(),
            ))
        } else {
            axum::body::Body::from_stream(stream)
        };
        ([("content-type", "text/event-stream")], body).into_response()
    };
    match fake.quirk {
        Quirk::RefusesPictures if has_picture => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error":{"message":"image input is not supported"}})),
        )
            .into_response(),
        Quirk::RefusesPictures => sse(
            vec![
                ": ping\n\n".into(),
                chunk("조용한 ", json!("")),
                chunk("카페였어요.", Value::Null),
                chunk("", json!("stop")),
                "data: [DONE]\n\n".into(),
            ],
            false,
        ),
        Quirk::FailsMidway => sse(
            vec![
                chunk("The latte ", Value::Null),
                chunk("was ", Value::Null),
                format!(
                    "data: {}\n\n",
                    json!({"error":{"message":"the model ran out of memory"}})
                ),
            ],
            false,
        ),
        Quirk::StopsShort => sse(vec![chunk("It was", Value::Null)], false),
        Quirk::Stalls => sse(vec![chunk("Well", Value::Null)], true),
    }
}

/// Starts the stand-in on loopback; returns its base URL and what it saw.
pub(crate) async fn fake_server(quirk: Quirk) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(Fake {
            quirk,
            seen: seen.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

/// Posts a draft request and reads the whole event stream: (status, events).
async fn draft(app: &TestApp, user: &User, body: Value) -> (u16, Vec<Value>) {
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/ai/review-draft"))
        .header("cookie", &user.cookie)
        .header("origin", app.url(""))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    if status != 200 {
        return (
            status,
            vec![serde_json::from_str(&text).unwrap_or(Value::String(text))],
        );
    }
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let events = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (status, events)
}

fn text_of(events: &[Value]) -> String {
    events.iter().filter_map(|e| e["delta"].as_str()).collect()
}

async fn posts_count(app: &TestApp) -> String {
    app.sql_rows("SELECT COUNT(*) FROM posts").await.join("")
}

async fn a_place(user: &User) -> String {
    let (s, b) = user
        .client
        .post(
            "/api/v1/posts",
            json!({"kind":"place","title":"망원 카페","body":"","place":{"name":"망원 카페","category":"cafe","address":"서울 마포구"}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["post"]["id"].as_str().unwrap().to_string()
}

async fn a_photo(user: &User) -> String {
    let mut pixels = Vec::new();
    for i in 0..64 * 48 {
        pixels.extend_from_slice(&[(i % 255) as u8, 120, 80]);
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 85)
        .encode(&pixels, 64, 48, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let (s, b) = user
        .client
        .post_bytes("/api/v1/images", "image/jpeg", jpeg)
        .await;
    assert_eq!(s, 201, "{b}");
    b["image"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_are_off_until_a_model_is_configured() {
    let app = spawn_app(Backend::Sqlite).await;
    let mina = app.signup("mina").await;
    let (_, ai) = mina.client.get("/api/v1/ai").await;
    assert_eq!(ai["review_drafts"], false);
    let (s, events) = draft(&app, &mina, json!({"place":{"name":"x","category":"cafe"}})).await;
    assert_eq!(
        (s, events[0]["error"].as_str()),
        (404, Some("ai_disabled")),
        "{events:?}"
    );
    let (s, _) = draft(
        &app,
        &mina,
        json!({"place":{"name":"x","category":"cafe"}, "extra": 1}),
    )
    .await;
    assert_eq!(s, 422, "unknown fields are refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirks_of_real_servers_are_tolerated() {
    // Pictures refused: asked again without them; empty finish reasons and no usage are fine.
    let (url, seen) = fake_server(Quirk::RefusesPictures).await;
    let app = spawn_with(
        Backend::Sqlite,
        &[
            "--ai-base-url",
            &url,
            "--ai-vision",
            "true",
            "--ai-model",
            "tiny",
        ],
    )
    .await;
    let mina = app.signup("mina").await;
    let (_, ai) = mina.client.get("/api/v1/ai").await;
    assert_eq!(
        (ai["review_drafts"].as_bool(), ai["vision"].as_bool()),
        (Some(true), Some(true))
    );
    let place = a_place(&mina).await;
    let photo = a_photo(&mina).await;
    let before = posts_count(&app).await;
    let (s, events) = draft(
        &app,
        &mina,
        json!({"place_id": place, "menu":["라떼","스콘"], "image_ids":[photo], "notes":"창가 자리가 좋았음"}),
    )
    .await;
    assert_eq!(s, 200, "{events:?}");
    assert_eq!(text_of(&events), "조용한 카페였어요.");
    assert_eq!(events.last().unwrap(), &json!({"done": true}));
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "asked again without the picture");
    let with = &bodies[0]["messages"][1]["content"];
    assert!(
        with[1]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,/9j/"),
        "{with}"
    );
    let prompt = bodies[1]["messages"][1]["content"].as_str().unwrap();
    for fact in ["망원 카페", "라떼", "스콘", "창가 자리가 좋았음", "Korean"] {
        assert!(prompt.contains(fact), "the prompt gives {fact}: {prompt}");
    }
    let system = bodies[1]["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Do not invent"), "{system}");
    assert_eq!(bodies[1]["model"], "tiny");
    assert_eq!(bodies[1]["stream"], true);
    // Nothing was stored.
    assert_eq!(posts_count(&app).await, before);
    // Bad input.
    let (s, e) = draft(&app, &mina, json!({"menu":["x"]})).await;
    assert_eq!((s, e[0]["error"].as_str()), (400, Some("invalid_place")));
    let (s, _) = draft(&app, &mina, json!({"place_id":"999999"})).await;
    assert_eq!(s, 404);
    let (s, e) = draft(
        &app,
        &mina,
        json!({"place_id": place, "menu": vec!["x"; 21]}),
    )
    .await;
    assert_eq!((s, e[0]["error"].as_str()), (400, Some("invalid_menu")));
    let (s, _) = app
        .anon()
        .post("/api/v1/ai/review-draft", json!({"place_id": place}))
        .await;
    assert_eq!(s, 401);

    for (quirk, want) in [
        (Quirk::FailsMidway, "out of memory"),
        (Quirk::StopsShort, "ended before it was finished"),
        (Quirk::Stalls, "too long"),
    ] {
        let (url, _) = fake_server(quirk).await;
        let app = spawn_with(
            Backend::Sqlite,
            &["--ai-base-url", &url, "--ai-timeout-s", "2"],
        )
        .await;
        let mina = app.signup("mina").await;
        let (s, events) = draft(
            &app,
            &mina,
            json!({"place":{"name":"Cafe Mapo","category":"cafe"}}),
        )
        .await;
        assert_eq!(s, 200, "{quirk:?}: {events:?}");
        let last = events.last().unwrap();
        assert_eq!(last["error"], "ai_failed", "{quirk:?}: {events:?}");
        assert!(
            last["message"].as_str().unwrap().contains(want),
            "{quirk:?}: {last}"
        );
        assert!(!events.iter().any(|e| e["done"] == true), "{quirk:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_are_rate_limited_per_member() {
    let (url, _) = fake_server(Quirk::RefusesPictures).await;
    let app = spawn_with(
        Backend::Sqlite,
        &["--ai-base-url", &url, "--ai-drafts-per-hour", "1"],
    )
    .await;
    let mina = app.signup("mina").await;
    let joon = app.signup("joon").await;
    let body = json!({"place":{"name":"Cafe","category":"cafe"}});
    let (s, _) = draft(&app, &mina, body.clone()).await;
    assert_eq!(s, 200);
    let (s, e) = draft(&app, &mina, body.clone()).await;
    assert_eq!((s, e[0]["error"].as_str()), (429, Some("rate_limited")));
    let (s, _) = draft(&app, &joon, body).await;
    assert_eq!(s, 200, "another member has their own allowance");
}

/// A real small model (SmolLM2-135M-Instruct under llama.cpp's OpenAI-compatible server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_small_model_streams_a_draft() {
    let Ok(url) = std::env::var("MOIM_TEST_LLM_URL") else {
        assert!(
            !require_all(),
            "MOIM_TEST_LLM_URL is not set but MOIM_REQUIRE_ALL=1: the local model server is required"
        );
        eprintln!(
            "SKIPPED (language model): set MOIM_TEST_LLM_URL to a local OpenAI-compatible server"
        );
        return;
    };
    let app = spawn_with(
        Backend::Sqlite,
        &["--ai-base-url", &url, "--ai-timeout-s", "300"],
    )
    .await;
    let mina = app.signup("mina").await;
    let place = a_place(&mina).await;
    let before = posts_count(&app).await;
    let (s, events) = draft(
        &app,
        &mina,
        json!({"place_id": place, "menu":["latte","scone"], "notes":"quiet, sunny window seat", "lang":"en"}),
    )
    .await;
    assert_eq!(s, 200, "{events:?}");
    assert_eq!(events.last().unwrap(), &json!({"done": true}), "{events:?}");
    let text = text_of(&events);
    assert!(
        events.iter().filter(|e| e["delta"].is_string()).count() > 3,
        "it streams in pieces: {events:?}"
    );
    assert!(
        text.split_whitespace().count() >= 5,
        "some words arrive: {text:?}"
    );
    println!("DRAFT: {text}");
    assert_eq!(posts_count(&app).await, before, "nothing is stored");
}
