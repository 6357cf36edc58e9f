//! Test harness: starts the real `moim` binary on a free port with a fresh data dir (and, for
//! PostgreSQL, a fresh database), and gives typed helpers for HTTP and WebSocket.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::header::{HeaderMap, HeaderValue, COOKIE};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Which database a test runs against.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// True when every real component must be present (CI): missing ones fail instead of skipping.
/// The package's folder, asked at run time: a test binary reused from another checkout of the
/// same sources (cargo's cache sees no change) must use this checkout's files.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

/// Installs e2e/'s packages once (tests that need them run in parallel) unless they are there.
pub fn npm_ci(e2e: &str) {
    static NPM: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = NPM.lock().unwrap_or_else(|e| e.into_inner());
    let installed = ["playwright-core", "oidc-provider"]
        .iter()
        .all(|p| std::path::Path::new(&format!("{e2e}/node_modules/{p}")).exists());
    if !installed {
        let st = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix", e2e])
            .status()
            .expect("run npm");
        assert!(st.success(), "npm ci in e2e/ failed");
    }
}

/// A blob store URL in the test S3 bucket (`MOIM_TEST_S3_URL`, `s3://bucket?endpoint=…`)
/// under a prefix of its own (named after `name`); None (skipped; a failure under
/// `MOIM_REQUIRE_ALL=1`) when unset. The keys are `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`.
pub fn s3_url(name: &str) -> Option<String> {
    let Ok(url) = std::env::var("MOIM_TEST_S3_URL") else {
        assert!(
            !require_all(),
            "MOIM_TEST_S3_URL is not set but MOIM_REQUIRE_ALL=1: the S3 store is required"
        );
        eprintln!("SKIPPED (S3): set MOIM_TEST_S3_URL to run this test against an S3 store");
        return None;
    };
    let (bucket, query) = url
        .split_once('?')
        .expect("MOIM_TEST_S3_URL has ?endpoint=");
    Some(format!(
        "{}/t{}-{}-{name}?{query}",
        bucket.trim_end_matches('/'),
        std::process::id(),
        unique()
    ))
}

pub fn require_all() -> bool {
    std::env::var("MOIM_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

impl Backend {
    /// PostgreSQL from `MOIM_TEST_POSTGRES_URL` (an admin URL; each test gets its own database).
    pub async fn postgres() -> Option<Backend> {
        let Ok(admin) = std::env::var("MOIM_TEST_POSTGRES_URL") else {
            assert!(
                !require_all(),
                "MOIM_TEST_POSTGRES_URL is not set but MOIM_REQUIRE_ALL=1: PostgreSQL is required"
            );
            eprintln!("SKIPPED (PostgreSQL): set MOIM_TEST_POSTGRES_URL to run this test against PostgreSQL");
            return None;
        };
        assert!(
            !require_all() || std::env::var("MOIM_TEST_REDIS_URL").is_ok(),
            "MOIM_TEST_REDIS_URL is not set but MOIM_REQUIRE_ALL=1: the PostgreSQL tests run with Redis"
        );
        let name = format!("moim_test_{}_{}", std::process::id(), unique());
        let opts: sqlx::postgres::PgConnectOptions = admin.parse().expect("valid postgres URL");
        let mut conn = sqlx::ConnectOptions::connect(&opts)
            .await
            .expect("connect to PostgreSQL admin database");
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Some(Backend::Postgres(format!("{base}/{name}")))
    }
}

fn unique() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A running server.
pub struct TestApp {
    pub base: String,
    pub host: String,
    pub data_dir: PathBuf,
    pub backend: Backend,
    /// Ingest base URL, `rtmp://127.0.0.1:PORT/live`.
    pub rtmp: String,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    listen: String,
    /// Open-file limits (soft, hard) to start the server under.
    nofile: Option<(u32, u32)>,
    /// `--blobs` (an S3 bucket under a prefix of this site's own) when not the local store:
    /// on PostgreSQL the suite keeps its blobs in the test S3 store when there is one.
    pub blobs: Option<String>,
    child: Option<Child>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(backend, &[]).await
}

/// Starts moim with extra flags (e.g. lower rate limits).
pub async fn spawn_with(backend: Backend, extra: &[&str]) -> TestApp {
    spawn_with_env(backend, extra, &[]).await
}

/// Starts moim with extra flags and environment variables.
pub async fn spawn_with_env(backend: Backend, extra: &[&str], env: &[(&str, &str)]) -> TestApp {
    let mut app = unstarted(backend, extra, env);
    app.start().await;
    app
}

fn unstarted(backend: Backend, extra: &[&str], env: &[(&str, &str)]) -> TestApp {
    let data_dir = std::env::temp_dir().join(format!(
        "moim-it-{}-{}-{}",
        std::process::id(),
        unique(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&data_dir).unwrap();
    let blobs = match &backend {
        Backend::Postgres(_) if !extra.contains(&"--blobs") => {
            std::env::var("MOIM_TEST_S3_URL").ok().and(s3_url("site"))
        }
        _ => None,
    };
    TestApp {
        blobs,
        base: String::new(),
        host: String::new(),
        data_dir,
        backend,
        rtmp: String::new(),
        extra: extra.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        listen: "127.0.0.1:0".into(),
        nofile: None,
        child: None,
    }
}

/// Starts moim (SQLite) under open-file limits `soft` and `hard`, as on a machine with the
/// common 1,024 default.
pub async fn spawn_with_nofile(extra: &[&str], soft: u32, hard: u32) -> TestApp {
    let mut app = unstarted(Backend::Sqlite, extra, &[]);
    app.nofile = Some((soft, hard));
    app.start().await;
    app
}

impl TestApp {
    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("server.log"))
            .unwrap();
        let mut cmd = match self.nofile {
            // The shell sets the limits, then becomes the server (same pid).
            Some((soft, hard)) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!(
                        "ulimit -S -n {soft} && ulimit -H -n {hard} && exec \"$0\" \"$@\""
                    ))
                    .arg(env!("CARGO_BIN_EXE_moim"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_moim")),
        };
        cmd.arg("serve")
            .arg("--listen")
            .arg(&self.listen)
            .arg("--rtmp-listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra)
            .env_remove("MOIM_DATABASE_URL")
            // Each test server its own WebRTC port (a test may still pass the flag).
            .env("MOIM_WEBRTC_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info,moim=debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if let Backend::Postgres(url) = &self.backend {
            cmd.arg("--database-url").arg(url);
            if let Some(blobs) = &self.blobs {
                cmd.arg("--blobs").arg(blobs);
            }
            // The many-node stack: on PostgreSQL the suite runs with the Redis broker too.
            if let Ok(redis) = std::env::var("MOIM_TEST_REDIS_URL") {
                if !self.extra.iter().any(|a| a == "--redis-url") {
                    cmd.arg("--redis-url").arg(redis);
                }
            }
        }
        let mut child = cmd.spawn().expect("start moim");
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).ok();
            let mut rtmp = String::new();
            reader.read_line(&mut rtmp).ok();
            // Keep draining so the server never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            (line, rtmp)
        });
        let (line, rtmp) = tokio::time::timeout(Duration::from_secs(60), line)
            .await
            .expect("moim did not start within 60 s")
            .unwrap();
        self.rtmp = rtmp
            .trim()
            .strip_prefix("moim rtmp on ")
            .unwrap_or_else(|| panic!("unexpected second line {rtmp:?}"))
            .to_string();
        let url = line
            .trim()
            .strip_prefix("moim listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; log: {}",
                    std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
                )
            })
            .to_string();
        self.host = url.trim_start_matches("http://").to_string();
        self.base = url;
        self.child = Some(child);
    }

    /// Kills the server hard (SIGKILL) — nothing gets a chance to flush.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Sends SIGTERM; returns the child so the caller can wait for its exit.
    pub fn sigterm(&mut self) -> Child {
        let c = self.child.take().expect("server running");
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
        c
    }

    /// Runs one SQL statement on the server's database (stop the server first when the
    /// statement must not race it). For tests that stage what no request can make.
    pub async fn sql(&self, statement: &str) -> u64 {
        sqlx::any::install_default_drivers();
        let url = match &self.backend {
            Backend::Postgres(url) => url.clone(),
            Backend::Sqlite => format!("sqlite://{}", self.data_dir.join("moim.db").display()),
        };
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("connect to the test database");
        sqlx::Executor::execute(&mut conn, statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"))
            .rows_affected()
    }

    /// The first column of each row a query gives, as text (for `EXPLAIN` and checks of
    /// stored values).
    pub async fn sql_rows(&self, query: &str) -> Vec<String> {
        sqlx::any::install_default_drivers();
        let url = match &self.backend {
            Backend::Postgres(url) => url.clone(),
            Backend::Sqlite => format!("sqlite://{}", self.data_dir.join("moim.db").display()),
        };
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("connect to the test database");
        let rows = sqlx::Executor::fetch_all(&mut conn, query)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        rows.iter()
            .map(|r| {
                use sqlx::Row;
                r.try_get::<String, _>(0)
                    .or_else(|_| r.try_get::<i64, _>(0).map(|n| n.to_string()))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Starts the server again on the same data dir and database (new port).
    pub async fn restart(&mut self) {
        self.kill9();
        self.start().await;
    }

    /// Restarts on the same address, so open pages can reconnect to it.
    pub async fn restart_same_port(&mut self) {
        self.listen = self.host.clone();
        self.restart().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// A field of the server's `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`, …).
    pub fn proc_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// An anonymous HTTP client.
    pub fn anon(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            cookie: None,
            bearer: None,
        }
    }

    /// Signs up a user and returns their logged-in client.
    pub async fn signup(&self, name: &str) -> User {
        let (status, body, cookie) = self
            .anon()
            .post_raw(
                "/api/v1/auth/signup",
                json!({"username": name, "password": "correct horse"}),
            )
            .await;
        assert_eq!(status, 201, "signup {name}: {body}");
        let cookie = cookie.expect("signup sets a session cookie");
        User {
            id: body["user"]["id"].as_str().unwrap().to_string(),
            client: Client::with_cookie(&self.base, &cookie),
            cookie,
        }
    }

    /// Creates a room owned by `owner`.
    pub async fn room(&self, owner: &User, slug: &str) {
        let (st, body) = owner
            .client
            .post(
                "/api/v1/rooms",
                json!({"slug": slug, "title": format!("Room {slug}")}),
            )
            .await;
        assert_eq!(st, 201, "{body}");
    }

    /// Opens a room WebSocket as `who` (cookie), anonymous when None.
    pub async fn ws(&self, who: Option<&User>, slug: &str, since: Option<i64>) -> Ws {
        let q = since.map(|s| format!("?since={s}")).unwrap_or_default();
        let url = format!("ws://{}/api/v1/rooms/{slug}/ws{q}", self.host);
        let mut req = url.into_client_request().unwrap();
        if let Some(u) = who {
            req.headers_mut()
                .insert("cookie", u.cookie.parse().unwrap());
        }
        req.headers_mut()
            .insert("origin", format!("http://{}", self.host).parse().unwrap());
        Ws::connect(req).await
    }
}

impl TestApp {
    /// Opens a room socket expecting the upgrade to be refused; returns the HTTP status.
    pub async fn ws_refused(&self, who: Option<&User>, slug: &str) -> u16 {
        let mut req = format!("ws://{}/api/v1/rooms/{slug}/ws", self.host)
            .into_client_request()
            .unwrap();
        if let Some(u) = who {
            req.headers_mut()
                .insert("cookie", u.cookie.parse().unwrap());
        }
        req.headers_mut()
            .insert("origin", format!("http://{}", self.host).parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Ok(_) => panic!("the socket to {slug} was accepted"),
            Err(e) => panic!("{e}"),
        }
    }

    /// Opens an anonymous room WebSocket whose TCP receive buffer is tiny, so that when it stops
    /// reading the server's writes to it block almost at once (a slow client).
    pub async fn ws_small_buffer(&self, slug: &str) -> Ws {
        let url = format!("ws://{}/api/v1/rooms/{slug}/ws", self.host);
        let req = url.into_client_request().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(self.host.parse().unwrap()).await.unwrap();
        let (stream, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
            .await
            .expect("ws handshake");
        Ws { stream }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A logged-in user.
pub struct User {
    pub id: String,
    pub cookie: String,
    pub client: Client,
}

/// HTTP client with optional cookie or bearer token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
    pub bearer: Option<String>,
}

impl Client {
    pub fn with_cookie(base: &str, cookie: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.to_string(),
            cookie: Some(cookie.to_string()),
            bearer: None,
        }
    }

    pub fn with_bearer(base: &str, token: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.to_string(),
            cookie: None,
            bearer: Some(token.to_string()),
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = &self.cookie {
            h.insert(COOKIE, HeaderValue::from_str(c).unwrap());
        }
        if let Some(t) = &self.bearer {
            h.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            );
        }
        h
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (s, v, _) = self.send_full(method, path, body, &[]).await;
        (s, v)
    }

    /// Sends a request with extra headers; returns status, JSON body (Null if none) and session cookie.
    pub async fn send_full(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> (u16, Value, Option<String>) {
        let (status, json, headers) = self.exchange(method, path, body, extra).await;
        let cookie = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("moim_session="))
            .map(|v| v.split(';').next().unwrap().to_string());
        (status, json, cookie)
    }

    /// Sends a request with extra headers; returns status, JSON body (Null if none) and the
    /// response headers.
    pub async fn exchange(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .headers(self.headers());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json, headers)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn post_raw(&self, path: &str, body: Value) -> (u16, Value, Option<String>) {
        self.send_full(reqwest::Method::POST, path, Some(body), &[])
            .await
    }
    /// POSTs raw bytes with a content type.
    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .headers(self.headers())
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    async fn fetch(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.base, path))
            .headers(self.headers())
            .send()
            .await
            .expect("request")
    }

    /// The status of a GET.
    pub async fn status(&self, path: &str) -> u16 {
        self.fetch(path).await.status().as_u16()
    }

    /// The body of a GET that must succeed.
    pub async fn bytes(&self, path: &str) -> bytes::Bytes {
        let resp = self.fetch(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.bytes().await.unwrap()
    }

    /// The text of a GET that must succeed.
    pub async fn text(&self, path: &str) -> String {
        String::from_utf8(self.bytes(path).await.to_vec()).expect("UTF-8")
    }
}

/// A room WebSocket client.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(req: tokio_tungstenite::tungstenite::handshake::client::Request) -> Ws {
        let (stream, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(req),
        )
        .await
        .expect("ws connect timed out")
        .expect("ws connect");
        Ws { stream }
    }

    /// Next frame as JSON (any type); panics on close or after 10 s.
    pub async fn next_any(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("no frame within 10 s")
                .expect("socket ended")
                .expect("socket error");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
                Message::Close(c) => panic!("socket closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// Next frame that is not a coalesced `viewers` update.
    pub async fn next(&mut self) -> Value {
        loop {
            let v = self.next_any().await;
            if v["type"] != "viewers" {
                return v;
            }
        }
    }

    /// Waits for the welcome frame.
    pub async fn welcome(&mut self) -> Value {
        let v = self.next().await;
        assert_eq!(v["type"], "welcome", "{v}");
        v
    }

    /// Waits for frames of `ty`, skipping viewers; panics on another type.
    pub async fn expect(&mut self, ty: &str) -> Value {
        let v = self.next().await;
        assert_eq!(v["type"], ty, "expected {ty}, got {v}");
        v
    }

    pub async fn send(&mut self, v: Value) {
        self.stream
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn say(&mut self, text: &str) {
        self.send(json!({"type": "send", "text": text})).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.to_string().into()))
            .await
            .expect("ws send");
    }

    /// Reads until the server closes; returns the frames seen (JSON) and the close frame.
    pub async fn until_close(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut frames = vec![];
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(15), self.stream.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "socket not closed within 15 s; {} frames, last {:?}",
                        frames.len(),
                        frames
                            .last()
                            .map(|f: &Value| (f["type"].clone(), f["seq"].clone()))
                    )
                });
            match msg {
                Some(Ok(Message::Text(t))) => {
                    frames.push(serde_json::from_str(t.as_str()).unwrap())
                }
                Some(Ok(Message::Close(c))) => return (frames, c),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (frames, None),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Polls `f` until it returns Some, for at most `secs` seconds (for state that settles
/// asynchronously, such as coalesced viewer counts).
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `moim_refused_total{reason}` in a `/metrics` text.
pub fn refused_count(metrics: &str, reason: &str) -> u64 {
    let prefix = format!("moim_refused_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
        .parse()
        .unwrap()
}

/// The integer `field` of every element of a JSON array (e.g. the seqs of `body["messages"]`).
pub fn ints(list: &Value, field: &str) -> Vec<i64> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|m| m[field].as_i64().expect("an integer field"))
        .collect()
}

/// The string `field` of every element of a JSON array.
pub fn strs(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|m| m[field].as_str().expect("a string field").to_string())
        .collect()
}

/// A loopback TCP port free at the moment of asking.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something listens on loopback `port` within 5 s (a server just started).
pub fn listening(port: u16) -> bool {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A Redis server of a test's own on loopback (so the test may stop and restart it), ended
/// when dropped. None (skipped; a failure under `MOIM_REQUIRE_ALL=1`) without `redis-server`.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl Redis {
    pub fn start() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                !require_all(),
                "redis-server is not installed but MOIM_REQUIRE_ALL=1: Redis is required"
            );
            eprintln!("SKIPPED (Redis): install redis-server to run this test");
            return None;
        }
        let port = free_tcp_port();
        let dir =
            std::env::temp_dir().join(format!("moim-it-redis-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Redis {
            child: None,
            port,
            dir,
        };
        r.resume();
        Some(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (nothing is kept: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, and waits until it answers.
    pub fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        assert!(
            listening(self.port),
            "redis-server did not listen on {}",
            self.port
        );
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestApp {
    /// Another node of the same site: same database and blob store, its own data dir and
    /// ports.
    pub async fn node(&self, extra: &[&str]) -> TestApp {
        let mut app = unstarted(self.backend.clone(), extra, &[]);
        app.blobs = self.blobs.clone();
        app.start().await;
        app
    }

    /// The site's blob store, as the server sees it (for tests that look at what is kept, or
    /// stage what no request can make).
    pub fn store(&self) -> std::sync::Arc<dyn moim::storage::blobs::Blobs> {
        use moim::storage::s3::{S3Blobs, S3Config};
        match &self.blobs {
            Some(url) => {
                let id = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default();
                let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default();
                std::sync::Arc::new(
                    S3Blobs::new(S3Config::parse(url, &id, &secret).unwrap()).unwrap(),
                )
            }
            None => std::sync::Arc::new(moim::storage::blobs::LocalBlobs::new(
                self.data_dir.join("blobs"),
            )),
        }
    }

    /// The keys the site keeps under `prefix`, relative to it, and their total size.
    pub async fn blob_keys(&self, prefix: &str) -> (Vec<String>, u64) {
        let store = self.store();
        let mut keys = Vec::new();
        let mut total = 0;
        for k in store.list(prefix).await.unwrap() {
            // The server may delete a blob between the listing and this look at it.
            match store.get(&k, None).await {
                Ok(b) => total += b.size,
                Err(moim::storage::blobs::BlobError::NotFound) => continue,
                Err(e) => panic!("reading blob {k}: {e}"),
            }
            keys.push(k);
        }
        let rel = keys
            .iter()
            .map(|k| k.strip_prefix(prefix).unwrap_or(k).to_string())
            .collect();
        (rel, total)
    }

    /// The value of one unlabelled metric on `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.anon().text("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }
}

impl TestApp {
    /// Stops the server with SIGTERM, waits for it to exit, and starts it again on the same
    /// address and database (a node of a rolling deploy). Returns how the old process ended.
    pub async fn graceful_restart(&mut self) -> std::process::ExitStatus {
        let mut child = self.sigterm();
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        self.listen = self.host.clone();
        self.start().await;
        status
    }

    /// Kills the server with SIGKILL and starts it again on the same address.
    pub async fn kill9_and_restart(&mut self) {
        self.kill9();
        self.listen = self.host.clone();
        self.start().await;
    }
}

/// HAProxy in front of some nodes, on loopback, ended when dropped: health checks on
/// `/readyz` every 250 ms (down after one failure, up after two successes), `retries 0` and
/// no redispatch (so neither can hide a failed request), the client address forwarded in
/// `X-Forwarded-For`, and a stats page for its counters. None (skipped; a failure under
/// `MOIM_REQUIRE_ALL=1`) without `haproxy`.
pub struct Haproxy {
    child: Child,
    pub port: u16,
    stats_port: u16,
    dir: PathBuf,
}

impl Haproxy {
    pub fn start(servers: &[&str]) -> Option<Haproxy> {
        if Command::new("haproxy").arg("-v").output().is_err() {
            assert!(
                !require_all(),
                "haproxy is not installed but MOIM_REQUIRE_ALL=1: HAProxy is required"
            );
            eprintln!("SKIPPED (HAProxy): install haproxy to run this test");
            return None;
        }
        let (port, stats_port) = (free_tcp_port(), free_tcp_port());
        let dir = std::env::temp_dir().join(format!(
            "moim-it-haproxy-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  \
             timeout server 60s\n  timeout tunnel 1h\n  retries 0\n  no option redispatch\n\
             frontend site\n  bind 127.0.0.1:{port}\n  option forwardfor\n  default_backend moim\n\
             backend moim\n  balance roundrobin\n  option httpchk GET /readyz\n  \
             http-check expect status 200\n  \
             default-server inter 250ms fastinter 250ms downinter 250ms fall 1 rise 2\n"
        );
        for (i, s) in servers.iter().enumerate() {
            cfg.push_str(&format!("  server n{} {s} check\n", i + 1));
        }
        cfg.push_str(&format!(
            "listen stats\n  bind 127.0.0.1:{stats_port}\n  stats enable\n  stats uri /stats\n"
        ));
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let mut child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("haproxy.log")).unwrap(),
            ))
            .spawn()
            .expect("start haproxy");
        if listening(stats_port) {
            return Some(Haproxy {
                child,
                port,
                stats_port,
                dir,
            });
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "haproxy did not start: {}",
            std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default()
        );
    }

    /// The stats CSV: one map per proxy/server line (`pxname`, `svname`, `status`, `wretr`, …).
    pub async fn stats(&self) -> Vec<std::collections::HashMap<String, String>> {
        let text = reqwest::get(format!("http://127.0.0.1:{}/stats;csv", self.stats_port))
            .await
            .expect("haproxy stats")
            .text()
            .await
            .unwrap();
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .map(str::to_string)
            .collect();
        lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                header
                    .iter()
                    .cloned()
                    .zip(l.split(',').map(str::to_string))
                    .collect()
            })
            .collect()
    }

    /// Whether every server of the backend is up.
    pub async fn all_up(&self) -> bool {
        let stats = self.stats().await;
        let servers: Vec<_> = stats
            .iter()
            .filter(|r| r["pxname"] == "moim" && r["svname"] != "BACKEND")
            .collect();
        !servers.is_empty() && servers.iter().all(|r| r["status"] == "UP")
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
