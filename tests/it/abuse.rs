//! What a hostile client tries: bursts that exhaust memory, descriptors or slots. Each test
//! reproduces an attack that once worked and checks the limit that stops it.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    eventually, refused_count, spawn_app, spawn_with, spawn_with_nofile, Backend, TestApp,
};

backend_tests!(
    strangers_cannot_lock_the_owner_out,
    look_alike_and_invisible_usernames_are_refused,
    accounts_with_names_made_under_older_rules_keep_working,
    one_machine_cannot_inflate_a_viewer_count,
    invisible_text_is_refused_everywhere,
    nul_characters_are_refused_at_the_edge,
    resumes_from_the_start_are_bounded,
    the_csrf_check_cannot_be_sidestepped,
    a_rebound_dns_name_cannot_change_anything,
);

/// Client addresses 127.0.0.{first}… , one per simulated machine.
fn addresses(first: u8, n: u8) -> Vec<IpAddr> {
    (0..n)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, first + i)))
        .collect()
}

/// A TCP connection to `server` from `src`.
async fn connect_from(server: &str, src: IpAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(src, 0)).unwrap();
    socket.connect(server.parse().unwrap()).await.unwrap()
}

/// An anonymous room WebSocket from `src`, once the server has answered the upgrade.
async fn ws_from(
    app: &TestApp,
    src: IpAddr,
    slug: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    tokio_tungstenite::tungstenite::Error,
> {
    let tcp = connect_from(&app.host, src).await;
    let url = format!("ws://{}/api/v1/rooms/{slug}/ws", app.host);
    tokio_tungstenite::client_async(url, tcp)
        .await
        .map(|(ws, _)| ws)
}

/// A response read off a raw connection.
struct Raw {
    status: u16,
    /// Header lines, `name: value` as sent.
    head: Vec<String>,
    body: serde_json::Value,
}

impl Raw {
    /// Every value of header `name`.
    fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> + 'a {
        self.head.iter().filter_map(move |l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn retry_after(&self) -> Option<String> {
        self.headers("retry-after").next()
    }
}

/// Parses an HTTP/1.1 response; `None` when it is not whole.
fn parse_raw(response: &str) -> Option<Raw> {
    let (head, body) = response.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    Some(Raw {
        status,
        head: lines.map(str::to_string).collect(),
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string())),
    })
}

fn parse_response(response: &str) -> (u16, Option<String>, serde_json::Value) {
    let raw = parse_raw(response).unwrap_or_else(|| panic!("no whole response: {response:?}"));
    (raw.status, raw.retry_after(), raw.body)
}

/// Sends `GET /healthz` on `conn` and reads the answer to the end; `None` when the connection
/// was reset before a whole answer arrived (it panics when none comes within 10 s).
async fn try_answer_of(
    mut conn: tokio::net::TcpStream,
    server: &str,
) -> Option<(u16, Option<String>, serde_json::Value)> {
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
    let _ = conn.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut response),
    )
    .await
    .expect("the server answers within 10 s");
    parse_raw(&String::from_utf8_lossy(&response)).map(|r| (r.status, r.retry_after(), r.body))
}

/// As [`try_answer_of`], for a connection that must get a whole answer.
async fn answer_of(
    conn: tokio::net::TcpStream,
    server: &str,
) -> (u16, Option<String>, serde_json::Value) {
    try_answer_of(conn, server).await.expect("a whole answer")
}

/// One request written byte for byte on a fresh connection from `src` (so headers may be
/// malformed or repeated; `Host` only if given), with a JSON body if given, read to the end.
async fn raw_exchange(
    server: &str,
    src: IpAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: Option<&serde_json::Value>,
) -> Raw {
    let mut conn = connect_from(server, src).await;
    let mut request = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    request.extend_from_slice(
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    conn.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    parse_raw(&text).unwrap_or_else(|| panic!("no whole response: {text:?}"))
}

/// A JSON POST from `src`, as an attacker's script sends it; returns the status, the
/// `Retry-After` header and the body.
async fn raw_post(
    server: &str,
    src: IpAddr,
    path: &str,
    body: &serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let raw = raw_exchange(
        server,
        src,
        "POST",
        path,
        &[("Host", server.as_bytes())],
        Some(body),
    )
    .await;
    (raw.status, raw.retry_after(), raw.body)
}

/// Sends `per_address` log-ins for unknown names from each address, all at once; returns each
/// answer's status, `Retry-After` and body.
async fn login_burst(
    server: &str,
    sources: &[IpAddr],
    per_address: usize,
) -> Vec<(u16, Option<String>, serde_json::Value)> {
    let mut tasks = Vec::new();
    for (a, src) in sources.iter().enumerate() {
        for i in 0..per_address {
            let (server, src) = (server.to_string(), *src);
            tasks.push(tokio::spawn(async move {
                let body =
                    json!({"username": format!("nobody-{a}-{i}"), "password": "wrong password"});
                raw_post(&server, src, "/api/v1/auth/login", &body).await
            }));
        }
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Sixty simultaneous log-ins from ten addresses once took the server past a gigabyte (19 MiB
/// of argon2 memory each, all at once) and it never came back down. With two hashing workers
/// the peak may grow by about two buffers, whatever the burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_burst_keeps_memory_bounded() {
    let app = spawn_with(
        Backend::Sqlite,
        &[
            "--password-hash-workers",
            "2",
            "--password-hash-wait-ms",
            "60000",
        ],
    )
    .await;
    // One log-in first, so start-up allocations are not counted against the burst.
    let warm = login_burst(&app.host, &addresses(9, 1), 1).await;
    assert_eq!(warm[0].0, 401, "{:?}", warm[0]);
    let before = app.proc_kib("VmRSS");
    let answers = login_burst(&app.host, &addresses(10, 10), 6).await;
    for (status, _, body) in &answers {
        assert_eq!(
            *status, 401,
            "every attempt is answered, and wrongly: {body}"
        );
    }
    let peak = app.proc_kib("VmHWM");
    let after = app.proc_kib("VmRSS");
    let buffer_kib = 19 * 1024;
    // Two workers' buffers (kept for reuse), one more for slack in the allocator, plus 24 MiB
    // for sixty connections and their requests.
    let bound = before + 3 * buffer_kib + 24 * 1024;
    assert!(
        peak <= bound,
        "peak RSS {peak} KiB during the burst; before it {before} KiB, bound {bound} KiB"
    );
    assert!(
        after <= bound,
        "RSS {after} KiB after the burst; before it {before} KiB"
    );
}

/// When every worker stays busy for the whole wait, the caller gets 503 `busy` with
/// `Retry-After` rather than an ever longer queue; the server serves the next log-in normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_hashing_answers_503_with_retry_after() {
    let app = spawn_with(
        Backend::Sqlite,
        &[
            "--password-hash-workers",
            "1",
            "--password-hash-wait-ms",
            "50",
        ],
    )
    .await;
    let alice = app.signup("alice").await;
    drop(alice);
    // Thirty hashes cannot all start within 50 ms of each other on one worker.
    let answers = login_burst(&app.host, &addresses(20, 5), 6).await;
    let busy: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "no attempt was turned away: {answers:?}");
    for (status, retry, body) in &answers {
        match status {
            401 => assert_eq!(body["error"], "invalid_credentials"),
            503 => {
                assert_eq!(body["error"], "busy", "{body}");
                assert!(
                    body["message"].as_str().unwrap().contains("try again"),
                    "{body}"
                );
                let retry: u64 = retry.as_deref().expect("Retry-After").parse().unwrap();
                assert!(retry >= 1);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let (status, body) = app
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({"username": "alice", "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, metrics) = app.anon().get("/metrics").await;
    let text = metrics.as_str().unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("moim_refused_total{reason=\"password_hash_busy\"}"))
        .expect("refusal metric");
    let n: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(n, busy.len(), "{line}");
}

/// One address once opened 2,000 anonymous WebSockets, all accepted. Now the address's
/// connections stop at the cap with 429 `too_many_connections`; other addresses are served,
/// and the address gets its places back as it closes sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let app = spawn_with(Backend::Sqlite, &["--max-connections-per-ip", "20"]).await;
    let owner = app.signup("owner").await;
    app.room(&owner, "hall").await;
    let hog: IpAddr = "127.0.0.40".parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(ws_from(&app, hog, "hall").await.expect("under the cap"));
    }
    let (status, retry, body) = answer_of(connect_from(&app.host, hog).await, &app.host).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "too_many_connections", "{body}");
    assert!(body["message"].as_str().unwrap().contains("your address"));
    assert!(retry.is_some());
    assert!(
        ws_from(&app, hog, "hall").await.is_err(),
        "a 21st WebSocket"
    );
    // Someone else is unaffected.
    let other: IpAddr = "127.0.0.41".parse().unwrap();
    let (status, _, _) = answer_of(connect_from(&app.host, other).await, &app.host).await;
    assert_eq!(status, 200);
    // Closing five gives five places back.
    held.truncate(15);
    let host = app.host.clone();
    eventually(10, || {
        let host = host.clone();
        async move {
            let conn = connect_from(&host, hog).await;
            (answer_of(conn, &host).await.0 == 200).then_some(())
        }
    })
    .await;
    let (_, metrics) = app.anon().get("/metrics").await;
    assert!(refused_count(metrics.as_str().unwrap(), "connections_per_address") >= 2);
}

/// At the common 1,024 open-file limit (here 256, to need fewer sockets) the server once ran
/// out of descriptors: a newcomer's request got no answer and the log filled with "Too many
/// open files". Now the total stays inside the limit and the rest are told 503 `overloaded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_descriptor_limit_newcomers_are_told_to_come_back() {
    let app = spawn_with_nofile(&[], 256, 256).await;
    // 40 addresses × 6 idle connections: more than 256 descriptors' worth with what the
    // server itself holds.
    let mut held = Vec::new();
    for src in addresses(50, 40) {
        for _ in 0..6 {
            held.push(connect_from(&app.host, src).await);
        }
    }
    // A newcomer is answered, never left hanging. (Under a burst like this one the answer can
    // occasionally be lost to a reset, as a refused client's request may arrive after the
    // server has answered and closed; a client that tries again reads it.)
    let host = app.host.clone();
    let (status, retry, body) = eventually(10, || {
        let host = host.clone();
        async move {
            let conn = connect_from(&host, "127.0.0.99".parse().unwrap()).await;
            try_answer_of(conn, &host).await
        }
    })
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "overloaded", "{body}");
    assert!(retry.is_some());
    drop(held);
    let host = app.host.clone();
    eventually(10, || {
        let host = host.clone();
        async move {
            let conn = connect_from(&host, "127.0.0.99".parse().unwrap()).await;
            (answer_of(conn, &host).await.0 == 200).then_some(())
        }
    })
    .await;
    let log = std::fs::read_to_string(app.data_dir.join("server.log")).unwrap();
    let exhausted = log.matches("Too many open files").count();
    assert!(
        exhausted == 0,
        "{exhausted} lines about running out of descriptors:\n{log}"
    );
    let (_, metrics) = app.anon().get("/metrics").await;
    assert!(refused_count(metrics.as_str().unwrap(), "connections_total") >= 1);
}

/// moim raises its open-file soft limit to the hard limit at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_file_limit_is_raised_to_the_hard_limit() {
    // Below this machine's own hard limit, which a process may lower but not raise.
    let own = std::fs::read_to_string("/proc/self/limits").unwrap();
    let own_hard: u32 = own
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let hard = own_hard.min(4000);
    assert!(hard > 300, "the hard open-file limit here is only {hard}");
    let app = spawn_with_nofile(&[], 300, hard).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", app.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, [hard.to_string(), hard.to_string()], "{line}");
}

/// A request body trickled a byte at a time once held its connection for as long as the
/// sender liked. Now the body must arrive within `body_timeout_s`: 408 `body_timeout`, closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off() {
    let app = spawn_with(Backend::Sqlite, &["--body-timeout-s", "2"]).await;
    let mut conn = connect_from(&app.host, "127.0.0.60".parse().unwrap()).await;
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{",
        app.host
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (mut rx, mut tx) = conn.into_split();
    // The attacker's pace: a space every 200 ms, for up to 20 s (far longer than the limit).
    let trickle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        for _ in 0..100 {
            tick.tick().await;
            if tx.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut response = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        rx.read_to_string(&mut response),
    )
    .await
    .expect("the server cuts the body off")
    .ok();
    trickle.abort();
    let (status, _, body) = parse_response(&response);
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"], "body_timeout");
    assert!(body["message"].as_str().unwrap().contains("2 s"), "{body}");
    let (_, metrics) = app.anon().get("/metrics").await;
    assert_eq!(refused_count(metrics.as_str().unwrap(), "body_timeout"), 1);
}

/// The RTMP listener's `host:port`.
fn rtmp_addr(app: &TestApp) -> String {
    app.rtmp
        .trim_start_matches("rtmp://")
        .trim_end_matches("/live")
        .to_string()
}

/// True once the server has closed `conn` (EOF or reset), within `secs`.
async fn closed_within(conn: &mut tokio::net::TcpStream, secs: u64) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(std::time::Duration::from_secs(secs), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// 110 RTMP connections that never authenticated once took every encoder slot, and a real
/// publish was refused for as long as they were held. Now a connection costs a slot only once
/// a valid key publishes; before that it is one of the few its address may hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_rtmp_connections_cannot_block_publishing() {
    if !crate::live::have_ffmpeg() {
        return;
    }
    let app = spawn_with(Backend::Sqlite, &["--max-broadcasts", "1"]).await;
    let owner = app.signup("owner").await;
    app.room(&owner, "stage").await;
    let (_, url) = crate::live::stream_key(&app, &owner, "stage").await;
    let rtmp = rtmp_addr(&app);
    let mut squatters = Vec::new();
    for src in addresses(70, 15) {
        for _ in 0..3 {
            squatters.push(connect_from(&rtmp, src).await);
        }
    }
    let mut ffmpeg = crate::live::publish(&url, 30);
    let live = eventually(20, || {
        let app = &app;
        async move {
            let room = crate::live::live_state(app, "stage").await;
            (room["live"] == true).then_some(room)
        }
    })
    .await;
    assert_eq!(live["hls_url"], "/live/stage/index.m3u8");
    // One address may hold eight connections that have not published; the ninth is closed.
    let hog: IpAddr = "127.0.0.90".parse().unwrap();
    for _ in 0..8 {
        squatters.push(connect_from(&rtmp, hog).await);
    }
    let mut ninth = connect_from(&rtmp, hog).await;
    assert!(closed_within(&mut ninth, 5).await, "the ninth stayed open");
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let (_, metrics) = app.anon().get("/metrics").await;
    assert!(refused_count(metrics.as_str().unwrap(), "rtmp_unauthenticated") >= 1);
}

/// Refused RTMP connections once wrote a log line each (755,730 lines in 40 s). Now each is
/// counted in `moim_refused_total` and the log gets a line now and then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_rtmp_connections_are_counted_not_logged_each() {
    let app = spawn_with(Backend::Sqlite, &["--rtmp-unauthenticated-per-ip", "2"]).await;
    let rtmp = rtmp_addr(&app);
    let src: IpAddr = "127.0.0.95".parse().unwrap();
    let _held = (
        connect_from(&rtmp, src).await,
        connect_from(&rtmp, src).await,
    );
    for _ in 0..300 {
        let mut c = connect_from(&rtmp, src).await;
        assert!(closed_within(&mut c, 5).await);
    }
    let (_, metrics) = app.anon().get("/metrics").await;
    assert_eq!(
        refused_count(metrics.as_str().unwrap(), "rtmp_unauthenticated"),
        300
    );
    let log = std::fs::read_to_string(app.data_dir.join("server.log")).unwrap();
    let lines = log.lines().filter(|l| l.contains("refused")).count();
    assert!(lines <= 2, "{lines} log lines about refusals:\n{log}");
}

/// A connection that keeps sending a byte now and then but never publishes is closed at the
/// handshake deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtmp_handshake_has_a_deadline() {
    let app = spawn_with(Backend::Sqlite, &["--rtmp-handshake-timeout-s", "1"]).await;
    let rtmp = rtmp_addr(&app);
    let conn = connect_from(&rtmp, "127.0.0.96".parse().unwrap()).await;
    let (mut rx, mut tx) = conn.into_split();
    // C0 (version 3), then the 1536-byte C1 a byte at a time: never a complete handshake.
    let trickle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        let _ = tx.write_all(&[3]).await;
        for _ in 0..1536 {
            tick.tick().await;
            if tx.write_all(&[0]).await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    trickle.abort();
    assert!(closed.is_ok(), "still open after 10 s");
    let (_, metrics) = app.anon().get("/metrics").await;
    assert_eq!(
        refused_count(metrics.as_str().unwrap(), "rtmp_handshake_timeout"),
        1
    );
}

/// A log-in from `src`, with `cookie` sent if given; returns the status, every `Set-Cookie`
/// and the body.
async fn login_from(
    server: &str,
    src: IpAddr,
    username: &str,
    password: &str,
    cookie: Option<&str>,
) -> (u16, Vec<String>, serde_json::Value) {
    let body = json!({"username": username, "password": password});
    let mut headers: Vec<(&str, &[u8])> = vec![("Host", server.as_bytes())];
    if let Some(c) = cookie {
        headers.push(("Cookie", c.as_bytes()));
    }
    let raw = raw_exchange(
        server,
        src,
        "POST",
        "/api/v1/auth/login",
        &headers,
        Some(&body),
    )
    .await;
    let cookies = raw.headers("set-cookie").collect();
    (raw.status, cookies, raw.body)
}

/// Five wrong guesses from five addresses once locked the owner out of their own account,
/// even from a new address (429, renewed every 12 s). Now failures count per account only
/// from sources that never signed in to it, and only those sources are held back: the owner's
/// browser (its device cookie) and their usual address still get in.
async fn strangers_cannot_lock_the_owner_out(b: Backend) {
    let app = spawn_app(b).await;
    app.signup("mina").await;
    let home: IpAddr = "127.0.1.1".parse().unwrap();
    let (status, cookies, body) = login_from(&app.host, home, "mina", "correct horse", None).await;
    assert_eq!(status, 200, "{body}");
    let device = cookies
        .iter()
        .find(|c| c.starts_with("moim_device="))
        .expect("a device cookie on the first log-in from this browser");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/api/v1/auth"] {
        assert!(device.contains(attr), "{device}");
    }
    let device = device.split(';').next().unwrap().to_string();
    // Ten wrong guesses from five addresses: twice the account's allowance.
    for src in (1..=5).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 2, i))) {
        for _ in 0..2 {
            let (status, _, body) = login_from(&app.host, src, "mina", "guess", None).await;
            assert!(status == 401 || status == 429, "{status} {body}");
        }
    }
    // A stranger's sixth address is held back, even with the right password.
    let stranger: IpAddr = "127.0.2.200".parse().unwrap();
    let (status, _, body) = login_from(&app.host, stranger, "mina", "guess", None).await;
    assert_eq!(status, 429, "{body}");
    let (status, _, _) = login_from(&app.host, stranger, "mina", "correct horse", None).await;
    assert_eq!(status, 429);
    // The owner's browser gets in from an address it never used …
    let cafe: IpAddr = "127.0.3.1".parse().unwrap();
    let (status, cookies, body) =
        login_from(&app.host, cafe, "mina", "correct horse", Some(&device)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !cookies.iter().any(|c| c.starts_with("moim_device=")),
        "a known browser keeps its device cookie"
    );
    // … and the owner's usual address gets in without the cookie (a script, another browser).
    let (status, _, body) = login_from(&app.host, home, "mina", "correct horse", None).await;
    assert_eq!(status, 200, "{body}");
    // A wrong password from a trusted source is still just wrong, and does not lock anything.
    let (status, _, _) = login_from(&app.host, cafe, "mina", "typo", Some(&device)).await;
    assert_eq!(status, 401);
}

/// Next to `admin`, these were all accepted. Now each is refused, or taken because it looks
/// the same as `admin`; names people really use still work.
async fn look_alike_and_invisible_usernames_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    app.signup("admin").await;
    app.signup("rootadmin").await;
    let anon = app.anon();
    let signup = |name: &'static str| {
        let anon = &anon;
        async move {
            anon.post(
                "/api/v1/auth/signup",
                json!({"username": name, "password": "correct horse"}),
            )
            .await
        }
    };
    for (name, code) in [
        ("аdmin", "invalid_username"),
        ("rοotadmin", "invalid_username"),
        ("ｒｏｏｔａｄｍｉｎ", "username_taken"),
        ("𝐚𝐝𝐦𝐢𝐧", "username_taken"),
        ("ADMIN", "username_taken"),
        ("adrnin", "username_taken"),
        ("ㅤㅤㅤ", "invalid_username"),
        ("---", "invalid_username"),
        ("ad\u{200B}min", "invalid_username"),
    ] {
        let (status, body) = signup(name).await;
        assert_eq!(body["error"], code, "{name:?}: {body}");
        assert_eq!(status, if code == "username_taken" { 409 } else { 400 });
        let message = body["message"].as_str().unwrap();
        assert_ne!(message, code, "the message says what was wrong");
    }
    for name in ["준호", "mina_kim-2", "준호abc12", "Привет"] {
        let (status, body) = signup(name).await;
        assert_eq!(status, 201, "{name:?}: {body}");
    }
}

/// Accounts made before the look-alike rules keep logging in, by the name they always used,
/// and no new account can look like them.
async fn accounts_with_names_made_under_older_rules_keep_working(b: Backend) {
    let mut app = spawn_app(b.clone()).await;
    app.signup("first").await;
    app.signup("second").await;
    let (status, _) = app
        .anon()
        .post(
            "/api/v1/auth/signup",
            json!({"username": "third", "password": "another secret"}),
        )
        .await;
    assert_eq!(status, 201);
    app.kill9();
    // As older versions stored them: a Cyrillic look-alike and a fullwidth name, keyed by
    // their lowercase NFC form, without skeletons; and a plain `mina` that today's rules would
    // have refused next to the fullwidth one.
    let url = match &app.backend {
        Backend::Sqlite => None,
        Backend::Postgres(url) => Some(url.clone()),
    };
    let db = moim::storage::Db::connect(url.as_deref(), &app.data_dir)
        .await
        .unwrap();
    for (old, name) in [
        ("first", "аdmin"),
        ("second", "ＭＩＮＡ"),
        ("third", "mina"),
    ] {
        let key = name.to_lowercase();
        sqlx::query("UPDATE users SET username = $1, username_key = $2 WHERE username = $3")
            .bind(name)
            .bind(&key)
            .bind(old)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM username_skeletons")
        .execute(&db.pool)
        .await
        .unwrap();
    db.pool.close().await;
    app.restart().await;
    for (name, password, who) in [
        ("аdmin", "correct horse", "аdmin"),
        ("ＭＩＮＡ", "correct horse", "ＭＩＮＡ"),
        ("ｍｉｎａ", "correct horse", "ＭＩＮＡ"),
        // Both look-alikes keep their own passwords, even typed the same way.
        ("mina", "another secret", "mina"),
        ("ＭＩＮＡ", "another secret", "mina"),
    ] {
        let (status, body) = app
            .anon()
            .post(
                "/api/v1/auth/login",
                json!({"username": name, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "{name:?}: {body}");
        assert_eq!(body["user"]["username"], who, "{name:?} with {password:?}");
    }
    for name in ["admin", "Mina", "rnina"] {
        let (status, body) = app
            .anon()
            .post(
                "/api/v1/auth/signup",
                json!({"username": name, "password": "correct horse"}),
            )
            .await;
        assert_eq!(status, 409, "{name:?} looks like an older account: {body}");
    }
}

/// 2,000 idle anonymous sockets from one machine once read "2000 watching" and put the room
/// first. Anonymous viewers now count once per address; signed-in ones once per account.
async fn one_machine_cannot_inflate_a_viewer_count(b: Backend) {
    let app = spawn_app(b).await;
    let owner = app.signup("owner").await;
    app.room(&owner, "inflated").await;
    app.room(&owner, "popular").await;
    let bot: IpAddr = "127.0.0.110".parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(ws_from(&app, bot, "inflated").await.unwrap());
    }
    for src in addresses(111, 3) {
        held.push(ws_from(&app, src, "popular").await.unwrap());
    }
    // The signed-in owner on the bot's machine is a viewer of their own.
    let mut mine = app.ws(Some(&owner), "inflated", None).await;
    mine.welcome().await;
    let rooms = eventually(10, || {
        let app = &app;
        async move {
            let (_, body) = app.anon().get("/api/v1/rooms").await;
            let counts: Vec<(String, i64)> = body["rooms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["slug"].as_str().unwrap().to_string(),
                        r["viewers"].as_i64().unwrap(),
                    )
                })
                .collect();
            (counts.iter().any(|(s, n)| s == "inflated" && *n == 2)
                && counts.iter().any(|(s, n)| s == "popular" && *n == 3))
            .then_some(counts)
        }
    })
    .await;
    assert_eq!(rooms[0].0, "popular", "{rooms:?}");
}

/// Zero-width spaces, a BOM, Hangul fillers, direction marks and a letter under 499 combining
/// marks were all accepted, and a room was titled with zero-width spaces alone. The shared
/// sanitiser now strips what is invisible, refuses what has nothing visible left and cuts
/// stacks of marks short, in chat, titles, token names and blocked terms.
async fn invisible_text_is_refused_everywhere(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.signup("writer").await;
    let (status, body) = user
        .client
        .post(
            "/api/v1/rooms",
            json!({"slug": "ghost", "title": "\u{200B}\u{200B}\u{200B}"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_title");
    assert!(
        body["message"].as_str().unwrap().contains("visible"),
        "{body}"
    );
    let (status, body) = user
        .client
        .post(
            "/api/v1/rooms",
            json!({"slug": "plain", "title": "Movie\u{200B} night\u{FEFF}"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["room"]["title"], "Movie night");
    let (status, body) = user
        .client
        .post("/api/v1/me/tokens", json!({"name": "\u{3164}\u{200E}"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_name")),
        "{body}"
    );

    let mut ws = app.ws(Some(&user), "plain", None).await;
    ws.welcome().await;
    for invisible in [
        "\u{200B}\u{200B}",
        "\u{FEFF}",
        "\u{3164}\u{3164}\u{3164}",
        "\u{200E}\u{200F}\u{202E}",
    ] {
        ws.say(invisible).await;
        let err = ws.expect("error").await;
        assert_eq!(err["code"], "empty", "{invisible:?}: {err}");
    }
    let zalgo = format!("a{}", "\u{0301}".repeat(499));
    ws.say(&zalgo).await;
    let msg = ws.expect("message").await;
    let text = msg["text"].as_str().unwrap();
    assert_eq!(text.chars().count(), 5, "{text:?}");
    // Only what was stored is in the history.
    let (_, history) = app.anon().get("/api/v1/rooms/plain/messages").await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        1,
        "{history}"
    );
}

/// `/api/v1/rooms/ab%00cd` (and its sub-routes) and a token name holding `\u0000` were 500s
/// on PostgreSQL. NUL is now refused at the edge, the same on both backends.
async fn nul_characters_are_refused_at_the_edge(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.signup("nully").await;
    app.room(&user, "real").await;
    for path in [
        "/api/v1/rooms/ab%00cd",
        "/api/v1/rooms/ab%00cd/messages",
        "/api/v1/rooms/ab%00cd/moderators",
        "/api/v1/rooms/ab%00cd/bans",
        "/api/v1/rooms/ab%00cd/stream-key",
        "/api/v1/rooms/ab%00cd/ws",
        "/api/v1/videos/1%00",
        "/api/v1/rooms/real/messages?before=1%00",
        "/live/ab%00cd/index.m3u8",
    ] {
        let (status, body) = user.client.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("NUL"),
            "{path}: {body}"
        );
    }
    let (status, body) = user
        .client
        .post("/api/v1/me/tokens", json!({"name": "bad\u{0}name"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_json")),
        "{body}"
    );
    for (path, body) in [
        (
            "/api/v1/auth/login",
            json!({"username": "a\u{0}b", "password": "whatever1"}),
        ),
        (
            "/api/v1/auth/signup",
            json!({"username": "a\u{0}b", "password": "whatever1"}),
        ),
        ("/api/v1/rooms/real/bans", json!({"username": "x\u{0}"})),
        ("/api/v1/rooms", json!({"slug": "n\u{0}l", "title": "t"})),
    ] {
        let (status, answer) = user.client.post(path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
    }
    // A literal backslash-u in text is not a NUL.
    let (status, body) = user
        .client
        .post("/api/v1/me/tokens", json!({"name": "C:\\u0000 path"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "C:\\u0000 path");
}

/// Each tiny `?since=0` request once got a 579 KiB welcome (170 MiB and 2 s of CPU for 300
/// connections). A welcome now carries at most `max_welcome_kib` of history, and an address
/// resuming too often gets the recent history instead, both marked `truncated`.
async fn resumes_from_the_start_are_bounded(b: Backend) {
    let app = crate::helpers::spawn_with(
        b,
        &[
            "--chat-rate-burst",
            "0",
            "--max-welcome-kib",
            "256",
            "--replays-per-min",
            "5",
        ],
    )
    .await;
    let owner = app.signup("talker").await;
    app.room(&owner, "long").await;
    let mut w = app.ws(Some(&owner), "long", None).await;
    w.welcome().await;
    let text = "가".repeat(500);
    for _ in 0..300 {
        w.say(&text).await;
    }
    loop {
        if w.expect("message").await["seq"] == 300 {
            break;
        }
    }
    let replayer: IpAddr = "127.0.0.120".parse().unwrap();
    let mut sizes = Vec::new();
    for _ in 0..8 {
        let tcp = connect_from(&app.host, replayer).await;
        let url = format!("ws://{}/api/v1/rooms/long/ws?since=0", app.host);
        let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
        use futures_util::StreamExt;
        let frame = loop {
            match ws.next().await.unwrap().unwrap() {
                tokio_tungstenite::tungstenite::Message::Text(t) => break t.to_string(),
                _ => continue,
            }
        };
        let welcome: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(welcome["type"], "welcome");
        assert_eq!(
            welcome["truncated"], true,
            "300 messages never fit in 256 KiB"
        );
        let history = welcome["history"].as_array().unwrap();
        assert_eq!(
            history.last().unwrap()["seq"],
            300,
            "the newest are the ones kept"
        );
        sizes.push((frame.len(), history.len()));
    }
    for (bytes, _) in &sizes {
        assert!(
            *bytes <= 256 * 1024 + 2048,
            "a welcome of {bytes} bytes: {sizes:?}"
        );
    }
    // The first five resumes replay as much as fits (more than a fresh join's 100 messages);
    // the rest get the recent history, as a fresh join would.
    assert!(sizes[..5].iter().all(|(_, n)| *n > 100), "{sizes:?}");
    assert!(sizes[5..].iter().all(|(_, n)| *n == 100), "{sizes:?}");
    let (_, metrics) = app.anon().get("/metrics").await;
    assert_eq!(
        refused_count(metrics.as_str().unwrap(), "replay_rate_limited"),
        3
    );
    assert_eq!(
        refused_count(metrics.as_str().unwrap(), "welcome_truncated"),
        5
    );
}

/// [`raw_exchange`] from 127.0.0.1; returns the status and body.
async fn raw_request(
    server: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let raw = raw_exchange(
        server,
        "127.0.0.1".parse().unwrap(),
        method,
        path,
        headers,
        body,
    )
    .await;
    (raw.status, raw.body)
}

/// A malformed `Authorization: Bearer \xff` once skipped the CSRF check while the cookie still
/// signed the request in; the scheme of `Origin` was not compared; a second `Origin` header
/// was ignored. Now a bearer request skips the origin check only once its token has signed it
/// in, and the one `Origin` must match scheme, host and port.
async fn the_csrf_check_cannot_be_sidestepped(b: Backend) {
    let app = spawn_app(b).await;
    let eve = app.signup("eve").await;
    let host = app.host.as_bytes();
    let cookie = eve.cookie.as_bytes();
    let room = |slug: &str| json!({"slug": slug, "title": "x"});
    let https = format!("https://{}", app.host);
    let same = format!("http://{}", app.host);
    type Headers<'a> = &'a [(&'a str, &'a [u8])];
    let cases: [(Headers, &str); 5] = [
        (
            &[
                ("Authorization", b"Bearer \xff"),
                ("Origin", b"http://evil.example"),
            ],
            "bad bearer",
        ),
        (
            &[
                ("Authorization", b"Basic Zm9vOmJhcg=="),
                ("Origin", b"http://evil.example"),
            ],
            "not a bearer",
        ),
        (
            &[
                ("Authorization", b"Bearer moim_pat_nope"),
                ("Origin", b"http://evil.example"),
            ],
            "unknown token",
        ),
        (&[("Origin", https.as_bytes())], "other scheme"),
        (
            &[
                ("Origin", same.as_bytes()),
                ("Origin", b"http://evil.example"),
            ],
            "two origins",
        ),
    ];
    for (i, (extra, what)) in cases.iter().enumerate() {
        let mut headers: Vec<(&str, &[u8])> = vec![("Host", host), ("Cookie", cookie)];
        headers.extend_from_slice(extra);
        let (status, body) = raw_request(
            &app.host,
            "POST",
            "/api/v1/rooms",
            &headers,
            Some(&room(&format!("csrf-{i}"))),
        )
        .await;
        assert!(status == 401 || status == 403, "{what}: {status} {body}");
        assert_ne!(body["message"], body["error"], "{what}: {body}");
    }
    let (_, rooms) = app.anon().get("/api/v1/rooms").await;
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 0, "{rooms}");
    // A real token works from anywhere, with or without an Origin.
    let (_, token) = eve
        .client
        .post("/api/v1/me/tokens", json!({"name": "script"}))
        .await;
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    let (status, body) = raw_request(
        &app.host,
        "POST",
        "/api/v1/rooms",
        &[
            ("Host", host),
            ("Authorization", bearer.as_bytes()),
            ("Origin", b"http://evil.example"),
        ],
        Some(&room("scripted")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// With `Host: evil.example` and a matching `Origin`, a web page could once claim the admin
/// account of a fresh install on loopback. State changes now need a Host this site answers to:
/// the public URL's, or without one, an IP address or `localhost`.
async fn a_rebound_dns_name_cannot_change_anything(b: Backend) {
    let app = spawn_app(b.clone()).await;
    let evil = [
        ("Host", b"evil.example:8080" as &[u8]),
        ("Origin", b"http://evil.example:8080"),
    ];
    let credentials = json!({"username": "victim", "password": "correct horse"});
    let (status, body) = raw_request(
        &app.host,
        "POST",
        "/api/v1/auth/signup",
        &evil,
        Some(&credentials),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Host"), "{body}");
    let (status, _) = raw_request(
        &app.host,
        "GET",
        "/api/v1/rooms/x/ws",
        &[
            ("Host", b"evil.example:8080"),
            ("Origin", b"http://evil.example:8080"),
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Version", b"13"),
            ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        None,
    )
    .await;
    assert_eq!(status, 403);
    // Reading is not a state change: pages still load under any name.
    let (status, _) = raw_request(&app.host, "GET", "/api/v1/rooms", &evil, None).await;
    assert_eq!(status, 200);
    // Nobody became admin; the real first account still does.
    let (status, body) = app
        .anon()
        .post("/api/v1/auth/signup", credentials.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["role"], "admin");

    // With a public URL, its host is this site too, and a rebound name still is not. (On
    // PostgreSQL this server shares the database: other names.)
    let public = crate::helpers::spawn_with(b, &["--public-url", "http://moim.example"]).await;
    let signup = |name: &str| json!({"username": name, "password": "correct horse"});
    let (status, body) = raw_request(
        &public.host,
        "POST",
        "/api/v1/auth/signup",
        &[
            ("Host", b"moim.example"),
            ("Origin", b"http://moim.example"),
        ],
        Some(&signup("publicly")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = raw_request(
        &public.host,
        "POST",
        "/api/v1/auth/signup",
        &[
            ("Host", b"evil.example"),
            ("Origin", b"http://evil.example"),
        ],
        Some(&signup("rebound")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // An IP address cannot be rebound: scripts and health checks by address still work …
    let (status, body) = raw_request(
        &public.host,
        "POST",
        "/api/v1/auth/signup",
        &[("Host", public.host.as_bytes())],
        Some(&signup("by-address")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // … but a page at the public origin cannot post through the address.
    let (status, body) = raw_request(
        &public.host,
        "POST",
        "/api/v1/auth/signup",
        &[
            ("Host", public.host.as_bytes()),
            ("Origin", b"http://moim.example"),
        ],
        Some(&signup("crossed")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // A program signed in by its token may call by any name (a container's, say).
    let script = public.signup("scripter").await;
    let (_, token) = script
        .client
        .post("/api/v1/me/tokens", json!({"name": "deploy"}))
        .await;
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    let (status, body) = raw_request(
        &public.host,
        "POST",
        "/api/v1/rooms",
        &[
            ("Host", b"moim-app:8080"),
            ("Authorization", bearer.as_bytes()),
        ],
        Some(&json!({"slug": "by-token", "title": "t"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, metrics) = public.anon().get("/metrics").await;
    assert!(refused_count(metrics.as_str().unwrap(), "wrong_host") >= 1);
    assert!(refused_count(metrics.as_str().unwrap(), "cross_site") >= 1);
}

/// Guesses sent all at once once each passed the per-account check before any of them was
/// counted (each waits its turn to be hashed): a batch per refill instead of one guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_sent_at_once_cannot_outrun_the_lock_out() {
    let app = spawn_with(
        Backend::Sqlite,
        &[
            "--password-hash-workers",
            "1",
            "--password-hash-wait-ms",
            "60000",
        ],
    )
    .await;
    app.signup("target").await;
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let server = app.host.clone();
        tasks.push(tokio::spawn(async move {
            let src = IpAddr::V4(Ipv4Addr::new(127, 0, 4, i + 1));
            login_from(&server, src, "target", "guess", None).await.0
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let tried = statuses.iter().filter(|s| **s == 401).count();
    assert!(tried <= 5, "{tried} guesses were checked: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
}

/// A WebSocket frame over 8 KiB once got a TCP reset. Now the client reads an `error`
/// `too_large` and a close with code 1009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_answered_before_the_close() {
    let app = spawn_app(Backend::Sqlite).await;
    let user = app.signup("big").await;
    app.room(&user, "big").await;
    let mut ws = app.ws(Some(&user), "big", None).await;
    ws.welcome().await;
    let huge = json!({"type": "send", "text": "x".repeat(9 * 1024)}).to_string();
    ws.send_raw(&huge).await;
    let (frames, close) = ws.until_close().await;
    let err = frames
        .iter()
        .find(|f| f["type"] == "error")
        .unwrap_or_else(|| panic!("no error frame before the close: {frames:?}"));
    assert_eq!(err["code"], "too_large", "{err}");
    assert!(err["message"].as_str().unwrap().contains("8192"), "{err}");
    assert_eq!(u16::from(close.expect("a close frame").code), 1009);
}

/// The documented largest blocked-terms lists (2,000 entries of 64 characters, each list) did
/// not fit the 64 KiB body limit. That route now takes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_blocked_terms_lists_fit() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.signup("admin").await;
    let term = |i: usize| format!("{i:04}{}", "금".repeat(60));
    let terms: Vec<String> = (0..2000).map(term).collect();
    let allowed: Vec<String> = (2000..4000).map(term).collect();
    let (status, body) = admin
        .client
        .put(
            "/api/v1/admin/blocked-terms",
            json!({"terms": terms, "allowed": allowed}),
        )
        .await;
    assert_eq!(
        status,
        200,
        "{}",
        body.to_string().chars().take(300).collect::<String>()
    );
    assert_eq!(body["terms"].as_array().unwrap().len(), 2000);
    assert_eq!(body["allowed"].as_array().unwrap().len(), 2000);
    // Other routes keep the small limit.
    let (status, _) = admin
        .client
        .post(
            "/api/v1/rooms",
            json!({"slug": "big", "title": "x".repeat(100_000)}),
        )
        .await;
    assert_eq!(status, 413);
}

/// SIGTERM once exited 0 even when the grace period ran out with work unfinished. Now the exit
/// status says so, and the log says what was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_cut_short_exits_non_zero() {
    let mut app = spawn_with(Backend::Sqlite, &["--shutdown-grace-s", "1"]).await;
    // An upload still arriving when the server is told to stop. `Expect: 100-continue` makes
    // the server say when its handler starts reading the body: then it is surely in flight.
    let mut conn = connect_from(&app.host, "127.0.0.130".parse().unwrap()).await;
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n",
        app.host
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        conn.read_exact(&mut byte).await.unwrap();
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );
    conn.write_all(b"{").await.unwrap();
    let trickle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        for _ in 0..100 {
            tick.tick().await;
            if conn.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut child = app.sigterm();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    trickle.abort();
    assert!(!status.success(), "exit status {status:?}");
    let log = std::fs::read_to_string(app.data_dir.join("server.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("shutdown cut short"))
        .unwrap_or_else(|| panic!("no line about the cut:\n{log}"));
    assert!(line.contains("finishing HTTP requests"), "{line}");
}
