//! What a hostile client tries: bursts that exhaust memory, descriptors or slots. Each test
//! reproduces an attack that once worked and checks the limit that stops it.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_with, Backend};

/// Client addresses 127.0.0.{first}… , one per simulated machine.
fn addresses(first: u8, n: u8) -> Vec<IpAddr> {
    (0..n)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, first + i)))
        .collect()
}

/// One HTTP/1.1 request on a fresh connection from `src`, as an attacker's script sends it;
/// returns the status, the `Retry-After` header and the JSON body.
async fn raw_post(
    server: &str,
    src: IpAddr,
    path: &str,
    body: &serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(src, 0)).unwrap();
    let mut conn = socket.connect(server.parse().unwrap()).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {server}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a whole response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let retry = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after:")
            .map(|v| v.trim().to_string())
    });
    (
        status,
        retry,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
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
