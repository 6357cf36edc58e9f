//! Server lifecycle: graceful shutdown and durability across kill -9 and restarts.

use std::time::Duration;

use crate::helpers::{spawn_app, spawn_with, Backend, Ws};

backend_tests!(graceful_shutdown, delivered_messages_survive_kill_9);

/// With a drain delay, a node that got SIGTERM says it is not ready but goes on serving
/// requests and chat until the delay ends; only then are its sockets asked to move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_delay_keeps_serving_while_not_ready() {
    let mut app = spawn_with(
        Backend::Sqlite,
        &["--drain-delay-s", "3", "--drain-jitter-s", "0.2"],
    )
    .await;
    let u = app.signup("stayer").await;
    app.room(&u, "drain").await;
    let mut ws = app.ws(Some(&u), "drain", None).await;
    ws.welcome().await;
    let http = reqwest::Client::new();
    let ready = app.url("/readyz");
    let child = app.sigterm();
    crate::helpers::eventually(10, || async {
        let r = http.get(&ready).send().await.ok()?;
        (r.status() == 503).then_some(())
    })
    .await;
    // Not ready, still serving: a page, a sign-up and a chat message all go through.
    let (st, _) = app.anon().get("/api/v1/rooms/drain").await;
    assert_eq!(st, 200);
    app.signup("latecomer").await;
    ws.say("still served").await;
    let m = ws.expect("message").await;
    assert_eq!(m["text"], "still served");
    moved_then_exited(ws, child).await;
}

async fn graceful_shutdown(b: Backend) {
    let mut app = spawn_app(b).await;
    let u = app.signup("stayer").await;
    app.room(&u, "drain").await;
    let mut ws = app.ws(Some(&u), "drain", None).await;
    ws.welcome().await;
    let http = reqwest::Client::new();
    let ready = app.url("/readyz");
    assert_eq!(http.get(&ready).send().await.unwrap().status(), 200);
    let child = app.sigterm();
    // Readiness turns off while connections drain.
    let mut saw_503 = false;
    for _ in 0..200 {
        match http.get(&ready).send().await {
            Ok(r) if r.status() == 503 => {
                let body = r.text().await.unwrap();
                assert_eq!(body, "draining");
                saw_503 = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(_) => break,
        }
    }
    assert!(saw_503, "/readyz never answered 503 while draining");
    moved_then_exited(ws, child).await;
}

/// The socket is told to reconnect and closed with 1012, and the server exits 0.
async fn moved_then_exited(mut ws: Ws, mut child: std::process::Child) {
    let (frames, close) = ws.until_close().await;
    assert!(
        frames.iter().any(|f| f["type"] == "reconnect"),
        "{frames:?}"
    );
    assert_eq!(u16::from(close.expect("close frame").code), 1012);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

async fn delivered_messages_survive_kill_9(b: Backend) {
    let mut app = spawn_app(b).await;
    let u = app.signup("durable").await;
    app.room(&u, "durable").await;
    let mut writer = app.ws(Some(&u), "durable", None).await;
    let mut reader = app.ws(None, "durable", None).await;
    writer.welcome().await;
    reader.welcome().await;
    for i in 0..50 {
        writer.say(&format!("keep {i}")).await;
    }
    let mut delivered = vec![];
    for _ in 0..50 {
        let m = reader.expect("message").await;
        delivered.push((
            m["seq"].as_i64().unwrap(),
            m["text"].as_str().unwrap().to_string(),
        ));
    }
    // Kill right after the last delivery: nothing is given a chance to flush.
    app.kill9();
    app.restart().await;
    let (_, body) = app
        .anon()
        .get("/api/v1/rooms/durable/messages?limit=200")
        .await;
    let stored: Vec<(i64, String)> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(stored, delivered);
    // Sequence numbers continue after the restart.
    let mut ws = app.ws(Some(&u), "durable", None).await;
    ws.welcome().await;
    ws.say("after restart").await;
    assert_eq!(ws.expect("message").await["seq"], 51);
}
