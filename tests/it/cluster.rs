//! Several nodes of one site: moim processes on one PostgreSQL database that hear each other
//! through Redis. Chat sent on any node reaches every socket on every node exactly once, in seq
//! order; moderation on one node holds on the others; a Redis outage leaves each node serving
//! its own sockets, and when Redis returns every socket gets what it missed.

use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_with, Backend, Haproxy, Redis, TestApp, User, Ws};

/// Two nodes on a fresh PostgreSQL database and a Redis of the test's own; None when either
/// is missing (a failure under `MOIM_REQUIRE_ALL=1`).
async fn two_nodes() -> Option<(Redis, TestApp, TestApp)> {
    let b = Backend::postgres().await?;
    let redis = Redis::start()?;
    let url = redis.url();
    // Members may send as fast as the test does.
    let flags = [
        "--redis-url",
        &url,
        "--chat-rate-burst",
        "1000",
        "--chat-rate-per-s",
        "1000",
    ];
    let n1 = spawn_with(b, &flags).await;
    let n2 = n1.node(&flags).await;
    for n in [&n1, &n2] {
        subscribed(n, 1.0).await;
    }
    Some((redis, n1, n2))
}

/// Waits until the node's Redis subscription is up (1) or down (0).
async fn subscribed(n: &TestApp, want: f64) {
    eventually(20, || async {
        (n.metric("moim_broker_up").await == want).then_some(())
    })
    .await;
}

/// Alice owns room `lobby` on node 1 and is in it there; Bob and Carol are in it on node 2.
/// Alice's account and the three welcomed sockets (Alice's, Bob's, Carol's).
async fn alice_bob_and_carol(n1: &TestApp, n2: &TestApp) -> (User, Ws, Ws, Ws) {
    let alice = n1.signup("alice").await;
    let bob = n2.signup("bob").await;
    let carol = n2.signup("carol").await;
    n1.room(&alice, "lobby").await;
    let mut wa = n1.ws(Some(&alice), "lobby", None).await;
    let mut wb = n2.ws(Some(&bob), "lobby", None).await;
    let mut wc = n2.ws(Some(&carol), "lobby", None).await;
    for ws in [&mut wa, &mut wb, &mut wc] {
        ws.welcome().await;
    }
    (alice, wa, wb, wc)
}

/// `owner` bans `who` from `lobby`.
async fn ban(owner: &User, who: &str) {
    let (st, body) = owner
        .client
        .post("/api/v1/rooms/lobby/bans", json!({"username": who}))
        .await;
    assert_eq!(st, 201, "{body}");
}

/// The socket is told it is banned and closed with 4003.
async fn closed_as_banned(ws: &mut Ws) {
    let (frames, close) = ws.until_close().await;
    assert!(frames.iter().any(|f| f["code"] == "banned"), "{frames:?}");
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4003));
}

/// The next `n` chat messages on a socket (other frames skipped), as (seq, text).
async fn messages(ws: &mut Ws, n: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        let f: Value = ws.next().await;
        if f["type"] == "message" {
            got.push((
                f["seq"].as_i64().unwrap(),
                f["text"].as_str().unwrap().to_string(),
            ));
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_moderation_reach_every_node() {
    let Some((_redis, n1, n2)) = two_nodes().await else {
        return;
    };
    // A session made on one node is good on the other (sessions live in the database).
    let alice = n1.signup("alice").await;
    let bob = n2.signup("bob").await;
    let carol = n1.signup("carol").await;
    n1.room(&alice, "lobby").await;
    let mut sockets = vec![
        n1.ws(Some(&alice), "lobby", None).await,
        n2.ws(Some(&bob), "lobby", None).await,
        n2.ws(None, "lobby", None).await,
        n1.ws(None, "lobby", None).await,
    ];
    for ws in &mut sockets {
        ws.welcome().await;
    }
    // Viewer counts are the site's: two viewers on each node (a member and the anonymous
    // address), shown as four on both.
    for n in [&n1, &n2] {
        eventually(20, || async {
            let (_, body) = n.anon().get("/api/v1/rooms/lobby").await;
            (body["room"]["viewers"] == 4).then_some(())
        })
        .await;
    }
    // Three senders on each node at once: both nodes' writers commit in turn, and a message
    // from the other node often arrives after a later one from this node (or its copy after a
    // backfill). Each socket must still see 1..=N once each, in order.
    const SENDERS: usize = 3;
    const EACH: usize = 30;
    const N: usize = 2 * SENDERS * EACH;
    let mut senders = Vec::new();
    for (node, who, tag) in [(&n1, &alice, "a"), (&n2, &bob, "b")] {
        for k in 0..SENDERS {
            let mut ws = node.ws(Some(who), "lobby", None).await;
            ws.welcome().await;
            senders.push(tokio::spawn(async move {
                for i in 0..EACH {
                    ws.say(&format!("{tag}{k}-{i}")).await;
                }
                ws
            }));
        }
    }
    let mut senders_ws = Vec::new();
    for s in senders {
        senders_ws.push(s.await.unwrap());
    }
    let mut seen = Vec::new();
    for ws in &mut sockets {
        let got = messages(ws, N).await;
        let seqs: Vec<i64> = got.iter().map(|m| m.0).collect();
        assert_eq!(seqs, (1..=N as i64).collect::<Vec<_>>(), "{got:?}");
        seen.push(got);
    }
    for s in &seen[1..] {
        assert_eq!(s, &seen[0], "every socket sees the same messages");
    }
    let texts: std::collections::HashSet<&str> = seen[0].iter().map(|m| m.1.as_str()).collect();
    assert_eq!(texts.len(), N, "every message once: {:?}", seen[0]);
    // Through Redis, not the database: each node heard the other's messages as events.
    for n in [&n1, &n2] {
        let heard = n.metric("moim_broker_received_total").await;
        let read = n.metric("moim_chat_backfilled_total").await;
        assert!(heard >= (N / 2) as f64, "{heard} events heard");
        assert!(
            read < (N / 4) as f64,
            "{read} messages read from the database"
        );
    }

    // A ban made on node 1 closes the banned member's socket on node 2, and a moderator's
    // delete there reaches sockets on node 2.
    let mut wc = n2.ws(Some(&carol), "lobby", None).await;
    wc.welcome().await;
    ban(&alice, "carol").await;
    closed_as_banned(&mut wc).await;
    let (st, body) = alice.client.delete("/api/v1/rooms/lobby/messages/3").await;
    assert_eq!(st, 204, "{body}");
    let f = loop {
        let f = sockets[1].next().await;
        if f["type"] == "deleted" {
            break f;
        }
    };
    assert_eq!(f["seq"], 3);
    // A message sent on node 2 still reaches node 1 after all that.
    sockets[1].say("still here").await;
    let got = messages(&mut sockets[0], 1).await;
    assert_eq!(got, [(N as i64 + 1, "still here".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_nothing() {
    let Some((mut redis, n1, n2)) = two_nodes().await else {
        return;
    };
    let (alice, mut wa, mut wb, mut wc) = alice_bob_and_carol(&n1, &n2).await;
    wa.say("before").await;
    for ws in [&mut wa, &mut wb, &mut wc] {
        assert_eq!(messages(ws, 1).await, [(1, "before".to_string())]);
    }

    redis.stop();
    for n in [&n1, &n2] {
        subscribed(n, 0.0).await;
    }
    // Each node goes on serving its own sockets.
    for i in 0..3 {
        wa.say(&format!("during {i}")).await;
    }
    let got = messages(&mut wa, 3).await;
    assert_eq!(got.iter().map(|m| m.0).collect::<Vec<_>>(), [2, 3, 4]);
    // A ban made meanwhile cannot reach node 2 yet.
    ban(&alice, "carol").await;

    redis.resume();
    for n in [&n1, &n2] {
        subscribed(n, 1.0).await;
    }
    // Node 2 catches up from the database: bob gets what he missed, in order, and carol's
    // socket is closed by the ban it did not hear of.
    let got = messages(&mut wb, 3).await;
    assert_eq!(
        got,
        (2..=4)
            .map(|s| (s, format!("during {}", s - 2)))
            .collect::<Vec<_>>()
    );
    closed_as_banned(&mut wc).await;
    assert!(n2.metric("moim_broker_reconnects_total").await >= 1.0);
    assert!(n2.metric("moim_chat_backfilled_total").await >= 3.0);
    // And the nodes hear each other again.
    wb.say("after").await;
    assert_eq!(messages(&mut wa, 1).await, [(5, "after".to_string())]);
    assert_eq!(messages(&mut wb, 1).await, [(5, "after".to_string())]);
}

/// Reads chat messages until one says `text`; the messages before it, as (seq, text).
async fn until_text(ws: &mut Ws, text: &str) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    loop {
        let m = messages(ws, 1).await.remove(0);
        let done = m.1 == text;
        got.push(m);
        if done {
            return got;
        }
    }
}

/// Pauses Redis's write commands (PUBLISH among them) for `ms`, as an overloaded or failing-over
/// Redis would: every node stays subscribed, but what they publish meanwhile times out and is
/// lost on the way.
fn pause_publishing(redis: &Redis, ms: u64) {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "CLIENT",
            "PAUSE",
            &ms.to_string(),
            "WRITE",
        ])
        .output()
        .expect("run redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn news_lost_on_the_way_are_caught_up() {
    let Some((redis, n1, n2)) = two_nodes().await else {
        return;
    };
    let (alice, mut wa, mut wb, mut wc) = alice_bob_and_carol(&n1, &n2).await;
    // A ban whose publish is lost (node 1 gives up on it after two tries of 2 s): node 2 sees
    // the gap in node 1's count when its next news gets through, and rereads the room.
    pause_publishing(&redis, 5_000);
    ban(&alice, "carol").await;
    closed_as_banned(&mut wc).await;
    // The last message of a quiet room, lost the same way: it still reaches node 2, from the
    // database, with nothing sent after it.
    pause_publishing(&redis, 5_000);
    wa.say("lost on the way").await;
    let on_1 = until_text(&mut wa, "lost on the way").await;
    assert_eq!(until_text(&mut wb, "lost on the way").await, on_1);
    // (It arrived from the database before node 1 even gave up on its publish.)
    eventually(15, || async {
        (n1.metric("moim_broker_publish_failed_total").await >= 2.0).then_some(())
    })
    .await;
    // Node 2 saw the gap in node 1's count once node 1's next news got through.
    eventually(15, || async {
        (n2.metric("moim_broker_missed_total").await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(
        n2.metric("moim_broker_up").await,
        1.0,
        "node 2 stayed subscribed"
    );
}

/// What one chat client of the rolling-deploy test saw.
#[derive(Default, Debug)]
struct Seen {
    /// The last seq it holds; everything up to it arrived once, in order.
    last: i64,
    /// Messages that came out of order, twice, or after a gap (each one a failure).
    wrong: Vec<String>,
    connects: usize,
    /// Connection attempts the balancer or a node refused (each one a failed request).
    refused: usize,
    /// From a socket's close to the next welcome, milliseconds.
    reconnect_ms: Vec<f64>,
    sent: usize,
}

/// A member's chat client behind the load balancer, from source address `ip`: sends a
/// message every 100 ms (until `quiet`), checks that seqs arrive as 1, 2, 3, … with nothing missing or twice,
/// and when its socket closes (a node draining, or killed) connects again with `since` — as
/// the web UI does — until `stop`.
async fn chat_client(
    lb: String,
    ip: std::net::Ipv4Addr,
    cookie: String,
    tag: String,
    quiet: tokio_util::sync::CancellationToken,
    stop: tokio_util::sync::CancellationToken,
    seen: std::sync::Arc<parking_lot::Mutex<Seen>>,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut closed_at: Option<std::time::Instant> = None;
    let mut n = 0;
    'outer: while !stop.is_cancelled() {
        let since = seen.lock().last;
        let mut req = format!("ws://{lb}/api/v1/rooms/lobby/ws?since={since}")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        req.headers_mut()
            .insert("origin", format!("http://{lb}").parse().unwrap());
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((ip, 0).into()).unwrap();
        let connected = async {
            let tcp = socket.connect(lb.parse().unwrap()).await.ok()?;
            tokio_tungstenite::client_async(req, tcp).await.ok()
        };
        let Some((mut ws, _)) = tokio::time::timeout(std::time::Duration::from_secs(5), connected)
            .await
            .ok()
            .flatten()
        else {
            seen.lock().refused += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break 'outer,
                _ = tick.tick(), if !quiet.is_cancelled() => {
                    n += 1;
                    let text = format!("{tag}-{n}");
                    if ws.send(Message::Text(json!({"type": "send", "text": text}).to_string().into())).await.is_ok() {
                        seen.lock().sent += 1;
                    }
                }
                msg = ws.next() => {
                    let Some(Ok(Message::Text(t))) = msg else {
                        if matches!(msg, Some(Ok(Message::Ping(_) | Message::Pong(_)))) { continue; }
                        break;
                    };
                    let f: Value = serde_json::from_str(t.as_str()).unwrap();
                    let mut s = seen.lock();
                    let take = |s: &mut Seen, m: &Value| {
                        let seq = m["seq"].as_i64().unwrap();
                        if seq != s.last + 1 {
                            s.wrong.push(format!("{tag}: seq {seq} after {}", s.last));
                        }
                        s.last = s.last.max(seq);
                    };
                    match f["type"].as_str() {
                        Some("welcome") => {
                            s.connects += 1;
                            if let Some(at) = closed_at.take() {
                                s.reconnect_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                            }
                            if f["truncated"] == true {
                                s.wrong.push(format!("{tag}: resume truncated"));
                            }
                            for m in f["history"].as_array().unwrap() {
                                take(&mut s, m);
                            }
                        }
                        Some("message") => take(&mut s, &f),
                        _ => {}
                    }
                }
            }
        }
        closed_at = Some(std::time::Instant::now());
    }
}

/// An HTTP client behind the load balancer: asks for the room every 10 ms and counts every
/// answer that is not a 200 (and every failed request) until `stop`.
async fn prober(
    lb: String,
    stop: tokio_util::sync::CancellationToken,
    counts: std::sync::Arc<parking_lot::Mutex<(u64, Vec<String>)>>,
) {
    let http = reqwest::Client::new();
    while !stop.is_cancelled() {
        let r = http
            .get(format!("http://{lb}/api/v1/rooms/lobby"))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await;
        let failure = match r {
            Ok(r) if r.status() == 200 => None,
            Ok(r) => Some(format!("status {}", r.status())),
            Err(e) => Some(format!("error {e}")),
        };
        {
            let mut c = counts.lock();
            c.0 += 1;
            c.1.extend(failure);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// HAProxy counters that would show a request failed or was retried, summed over the frontend
/// and backend lines.
async fn failure_counters(lb: &Haproxy) -> Vec<(String, u64)> {
    let stats = lb.stats().await;
    ["wretr", "wredis", "hrsp_5xx", "eresp", "econ"]
        .iter()
        .map(|k| {
            let sum = stats
                .iter()
                .filter(|r| r["svname"] == "FRONTEND" || r["svname"] == "BACKEND")
                .filter(|r| r["pxname"] != "stats")
                .filter_map(|r| r.get(*k)?.parse::<u64>().ok())
                .sum();
            (k.to_string(), sum)
        })
        .collect()
}

/// Three nodes behind HAProxy under chat and HTTP load: every node is restarted in turn
/// (SIGTERM, wait, start) with no failed request and no chat message lost, repeated or out of
/// order; then one node is killed with SIGKILL and Redis is restarted, and every client still
/// ends holding every message once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_haproxy_loses_nothing() {
    let Some(b) = Backend::postgres().await else {
        return;
    };
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let flags = [
        "--redis-url",
        &url,
        "--trust-proxy",
        "true",
        "--drain-delay-s",
        "1",
        "--drain-jitter-s",
        "0.5",
        "--shutdown-grace-s",
        "15",
        "--chat-rate-burst",
        "50",
        "--chat-rate-per-s",
        "20",
    ];
    let mut nodes = vec![spawn_with(b, &flags).await];
    for _ in 0..2 {
        let n = nodes[0].node(&flags).await;
        nodes.push(n);
    }
    let hosts: Vec<String> = nodes.iter().map(|n| n.host.clone()).collect();
    let Some(lb) = Haproxy::start(&hosts.iter().map(String::as_str).collect::<Vec<_>>()) else {
        return;
    };
    eventually(20, || async { lb.all_up().await.then_some(()) }).await;
    let lb_host = format!("127.0.0.1:{}", lb.port);
    let owner = nodes[0].signup("owner").await;
    nodes[0].room(&owner, "lobby").await;
    for n in &nodes {
        subscribed(n, 1.0).await;
    }

    let quiet = tokio_util::sync::CancellationToken::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut clients = Vec::new();
    for i in 0..6u8 {
        let member = nodes[i as usize % 3].signup(&format!("member{i}")).await;
        let seen = std::sync::Arc::new(parking_lot::Mutex::new(Seen::default()));
        let task = tokio::spawn(chat_client(
            lb_host.clone(),
            std::net::Ipv4Addr::new(127, 0, 1, 10 + i),
            member.cookie.clone(),
            format!("m{i}"),
            quiet.clone(),
            stop.clone(),
            seen.clone(),
        ));
        clients.push((seen, task));
    }
    let probes = std::sync::Arc::new(parking_lot::Mutex::new((0u64, Vec::new())));
    let probe_stop = tokio_util::sync::CancellationToken::new();
    let probe = tokio::spawn(prober(lb_host.clone(), probe_stop.clone(), probes.clone()));
    // Everyone connected and chatting before the deploy starts.
    eventually(20, || async {
        clients
            .iter()
            .all(|(s, _)| s.lock().connects >= 1 && s.lock().last >= 10)
            .then_some(())
    })
    .await;

    // The rolling deploy: each node in turn, the next once the balancer has it back.
    for n in nodes.iter_mut() {
        let status = n.graceful_restart().await;
        assert!(status.success(), "a drained node exits 0: {status:?}");
        subscribed(n, 1.0).await;
        eventually(20, || async { lb.all_up().await.then_some(()) }).await;
    }
    let (requests, failed) = {
        let p = probes.lock();
        (p.0, p.1.clone())
    };
    let counters = failure_counters(&lb).await;
    let reconnects_drain: Vec<f64> = clients
        .iter()
        .flat_map(|(s, _)| s.lock().reconnect_ms.clone())
        .collect();
    assert!(requests > 100, "the prober ran ({requests} requests)");
    assert_eq!(
        failed,
        Vec::<String>::new(),
        "no request failed during the rolling restart"
    );
    assert!(
        counters.iter().all(|(_, v)| *v == 0),
        "HAProxy saw no retry, redispatch, 5xx or error: {counters:?}"
    );
    for (s, _) in &clients {
        let s = s.lock();
        assert!(
            s.connects >= 2,
            "each client was moved at least once: {s:?}"
        );
        assert_eq!(
            s.refused, 0,
            "no socket was refused during the rolling restart"
        );
        assert!(s.wrong.is_empty(), "{:?}", s.wrong);
    }

    // A node dies without a word, then Redis restarts.
    nodes[1].kill9_and_restart().await;
    subscribed(&nodes[1], 1.0).await;
    eventually(20, || async { lb.all_up().await.then_some(()) }).await;
    let kill_reconnects: Vec<f64> = clients
        .iter()
        .flat_map(|(s, _)| s.lock().reconnect_ms.clone())
        .skip(reconnects_drain.len())
        .collect();
    redis.stop();
    for n in &nodes {
        subscribed(n, 0.0).await;
    }
    redis.resume();
    for n in &nodes {
        subscribed(n, 1.0).await;
    }
    probe_stop.cancel();
    probe.await.unwrap();
    // The clients stop sending; each must end holding every stored message (1..=K), once
    // each and in order.
    quiet.cancel();
    let k = eventually(20, || async {
        let k: i64 = nodes[0]
            .sql_rows("SELECT last_seq FROM rooms WHERE slug = 'lobby'")
            .await[0]
            .parse()
            .unwrap();
        clients.iter().all(|(s, _)| s.lock().last == k).then_some(k)
    })
    .await;
    stop.cancel();
    for (_, t) in clients.iter_mut() {
        t.await.unwrap();
    }
    let sent: usize = clients.iter().map(|(s, _)| s.lock().sent).sum();
    for (s, _) in &clients {
        let s = s.lock();
        assert!(s.wrong.is_empty(), "{:?}", s.wrong);
    }
    let all_failed = probes.lock().1.len();
    let refused: usize = clients.iter().map(|(s, _)| s.lock().refused).sum();
    println!(
        "deploy report: {requests} HTTP requests during the rolling restart, {} failed; \
         {all_failed} failed in all and {refused} socket connections refused (with the kill -9); {k} chat messages stored of {sent} sent, \
         each of 6 clients holds 1..={k} once each, in order; \
         reconnect after a drain p50 {:.0} ms p99 {:.0} ms ({} reconnects); after kill -9 p50 \
         {:.0} ms p99 {:.0} ms ({} reconnects); HAProxy {counters:?}",
        failed.len(),
        percentile(&reconnects_drain, 0.5),
        percentile(&reconnects_drain, 0.99),
        reconnects_drain.len(),
        percentile(&kill_reconnects, 0.5),
        percentile(&kill_reconnects, 0.99),
        kill_reconnects.len(),
    );
    assert!(k > 100, "chat went on throughout ({k} messages)");
}
