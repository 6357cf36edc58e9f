//! Resumable uploads over tus 1.0.0, driven by a small tus client written here: pieces,
//! a connection cut mid-piece, a server restart, checksums, termination, expiry and refusals.

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::helpers::{eventually, spawn_app, spawn_with, Backend, TestApp, User};

backend_tests!(
    a_file_arrives_in_pieces_and_survives_cuts_and_restarts,
    uploads_refuse_what_they_must,
    unfinished_uploads_expire_and_free_their_bytes,
    plans_limit_what_members_upload,
    the_default_plan_applies_to_members_without_one,
);

/// The tus client: one signed-in user's requests.
#[derive(Clone)]
pub(crate) struct Tus {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub(crate) fn offset(&self) -> i64 {
        self.header("upload-offset")
            .unwrap_or_else(|| panic!("no Upload-Offset ({} {})", self.status, self.body))
            .parse()
            .unwrap()
    }
}

impl Tus {
    pub(crate) fn new(app: &TestApp, user: &User) -> Tus {
        Tus {
            http: reqwest::Client::new(),
            base: app.url(""),
            cookie: user.cookie.clone(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req
            .header("cookie", &self.cookie)
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn create(&self, length: usize, meta: &[(&str, &str)]) -> Answer {
        let metadata: Vec<String> = meta
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} {}",
                    base64::engine::general_purpose::STANDARD.encode(v)
                )
            })
            .collect();
        self.send(
            self.http
                .post(format!("{}/api/v1/uploads", self.base))
                .header("upload-length", length.to_string())
                .header("upload-metadata", metadata.join(",")),
        )
        .await
    }

    pub(crate) async fn head(&self, location: &str) -> Answer {
        self.send(self.http.head(format!("{}{location}", self.base)))
            .await
    }

    pub(crate) async fn patch(
        &self,
        location: &str,
        offset: i64,
        piece: &[u8],
        sha256: bool,
    ) -> Answer {
        let mut req = self
            .http
            .patch(format!("{}{location}", self.base))
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(piece.to_vec());
        if sha256 {
            let digest = Sha256::digest(piece);
            req = req.header(
                "upload-checksum",
                format!(
                    "sha256 {}",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                ),
            );
        }
        self.send(req).await
    }

    pub(crate) async fn delete(&self, location: &str) -> Answer {
        self.send(self.http.delete(format!("{}{location}", self.base)))
            .await
    }

    /// Uploads `data` as `filename` in pieces of `piece` bytes; returns the last answer (with
    /// `Moim-Video-Id`) and the upload's location.
    pub(crate) async fn upload(
        &self,
        data: &[u8],
        filename: &str,
        piece: usize,
    ) -> (Answer, String) {
        let created = self.create(data.len(), &[("filename", filename)]).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let location = created.header("location").unwrap().to_string();
        let mut offset = 0;
        loop {
            let end = (offset + piece).min(data.len());
            let a = self
                .patch(&location, offset as i64, &data[offset..end], false)
                .await;
            assert_eq!(a.status, 204, "{}", a.body);
            offset = a.offset() as usize;
            if offset == data.len() {
                return (a, location);
            }
        }
    }
}

/// A file of `n` bytes that differ along its length.
fn file(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// The bytes stored for an upload: its pieces in key order.
async fn stored(app: &TestApp, location: &str) -> Vec<u8> {
    let id = location.rsplit('/').next().unwrap();
    let store = app.store();
    let mut out = Vec::new();
    for key in store.list(&format!("uploads/{id}/")).await.unwrap() {
        out.extend_from_slice(&store.get(&key, None).await.unwrap().bytes().await.unwrap());
    }
    out
}

/// Sends a PATCH announcing `piece` but only `send` bytes of it, then drops the connection,
/// as a laptop closing mid-upload does.
async fn cut_patch(
    app: &TestApp,
    user: &User,
    location: &str,
    offset: i64,
    piece: &[u8],
    send: usize,
) {
    let mut conn = tokio::net::TcpStream::connect(&app.host).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n\
         Content-Length: {}\r\n\r\n",
        app.host,
        user.cookie,
        piece.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&piece[..send]).await.unwrap();
    conn.flush().await.unwrap();
    drop(conn);
}

async fn a_file_arrives_in_pieces_and_survives_cuts_and_restarts(b: Backend) {
    let mut app = spawn_app(b).await;
    let user = app.signup("uploader").await;
    let tus = Tus::new(&app, &user);
    let options = tus
        .send(tus.http.request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/uploads", tus.base),
        ))
        .await;
    assert_eq!(options.status, 204);
    assert_eq!(options.header("tus-version"), Some("1.0.0"));
    let extensions = options.header("tus-extension").unwrap();
    for ext in ["creation", "termination", "checksum"] {
        assert!(extensions.contains(ext), "{extensions}");
    }
    assert!(
        options
            .header("tus-max-size")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );

    let data = file(1_000_000);
    let created = tus
        .create(
            data.len(),
            &[
                ("filename", "../../secret/clip.mp4"),
                ("title", "Holiday\u{200B}"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("tus-resumable"), Some("1.0.0"));
    let location = created.header("location").unwrap().to_string();
    assert!(location.starts_with("/api/v1/uploads/"), "{location}");
    assert_eq!(tus.head(&location).await.offset(), 0);

    // A first piece.
    let first = tus.patch(&location, 0, &data[..250_000], false).await;
    assert_eq!(first.status, 204, "{}", first.body);
    assert_eq!(first.offset(), 250_000);

    // The laptop closes mid-piece: what arrived is kept, and the client resumes from there.
    cut_patch(
        &app,
        &user,
        &location,
        250_000,
        &data[250_000..500_000],
        100_000,
    )
    .await;
    let resumed_at = eventually(10, || {
        let (tus, location) = (&tus, &location);
        async move {
            let at = tus.head(location).await.offset();
            (at > 250_000).then_some(at)
        }
    })
    .await;
    assert!(resumed_at <= 350_000, "{resumed_at}");

    // The server restarts; the upload is still there, at the same offset.
    app.restart().await;
    let tus = Tus {
        base: app.url(""),
        ..tus
    };
    assert_eq!(tus.head(&location).await.offset(), resumed_at);

    // (The local store only: an S3 store acknowledges what it has made durable.)
    let resumed_at = if app.blobs.is_none() {
        // Pieces acknowledged just before a power loss may not have reached the disk (pieces
        // are synced when the file is whole). Staged while the server is down: of three new
        // pieces, the middle one's file is cut short. At start the upload goes back to the last
        // whole piece before it; that piece stays, the ones from the broken one on go.
        let id = location.rsplit('/').next().unwrap();
        let dir = app.data_dir.join("blobs/uploads").join(id);
        let before: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let mut at = resumed_at as usize;
        for _ in 0..3 {
            let piece = tus
                .patch(&location, at as i64, &data[at..at + 50_000], false)
                .await;
            assert_eq!(piece.offset() as usize, at + 50_000);
            at += 50_000;
        }
        app.kill9();
        let mut new: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !before.contains(p))
            .collect();
        new.sort();
        assert_eq!(new.len(), 3);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&new[1])
            .unwrap()
            .set_len(20_000)
            .unwrap();
        app.restart().await;
        let tus = Tus {
            base: app.url(""),
            ..tus.clone()
        };
        assert_eq!(tus.head(&location).await.offset(), resumed_at + 50_000);
        assert!(
            new[0].exists(),
            "the whole piece before the broken one stays"
        );
        assert!(
            !new[1].exists() && !new[2].exists(),
            "the broken piece and the next go"
        );
        resumed_at + 50_000
    } else {
        resumed_at
    };
    let tus = Tus {
        base: app.url(""),
        ..tus
    };

    // The rest, in checksummed pieces.
    let mut at = resumed_at;
    while (at as usize) < data.len() {
        let end = (at as usize + 300_000).min(data.len());
        if end == data.len() {
            // Before the last piece (after it, the file moves into its video).
            assert_eq!(
                stored(&app, &location).await,
                &data[..at as usize],
                "the stored bytes are the sent ones"
            );
        }
        let answer = tus
            .patch(&location, at, &data[at as usize..end], true)
            .await;
        assert_eq!(answer.status, 204, "{}", answer.body);
        at = answer.offset();
        assert_eq!(at as usize, end);
    }
    let done = tus.head(&location).await;
    assert_eq!(done.offset(), data.len() as i64);
    assert_eq!(done.header("upload-length"), Some("1000000"));
    // It became a video (which fails: these bytes are no video).
    let video = done
        .header("moim-video-id")
        .expect("a finished upload names its video");
    let client = crate::helpers::Client::with_cookie(&app.url(""), &user.cookie);
    let (s, body) = client.get(&format!("/api/v1/videos/{video}")).await;
    assert_eq!(s, 200, "{body}");
    // Nothing more fits.
    let extra = tus.patch(&location, at, b"more", false).await;
    assert_eq!(
        (extra.status, extra.body["error"].as_str()),
        (409, Some("upload_complete"))
    );
    // HEAD gives the metadata back, cleaned.
    let meta = done.header("upload-metadata").unwrap();
    let filename = meta
        .split(',')
        .find_map(|p| p.strip_prefix("filename "))
        .unwrap();
    let filename = base64::engine::general_purpose::STANDARD
        .decode(filename)
        .unwrap();
    assert_eq!(String::from_utf8(filename).unwrap(), "clip.mp4");
}

async fn uploads_refuse_what_they_must(b: Backend) {
    let app = spawn_with(b, &["--max-upload-mib", "1"]).await;
    let user = app.signup("careful").await;
    let other = app.signup("stranger").await;
    let tus = Tus::new(&app, &user);
    let theirs = Tus::new(&app, &other);

    // The version header is required.
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/uploads"))
        .header("cookie", &user.cookie)
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 412);
    assert_eq!(resp.headers()["tus-version"], "1.0.0");
    // Anonymous callers may not upload.
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/uploads"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers()["tus-resumable"], "1.0.0", "on every answer");
    // Too large for the limit, and said so with the limit.
    let big = tus.create(2 * 1024 * 1024, &[]).await;
    assert_eq!(big.status, 413, "{}", big.body);
    assert_eq!(big.body["error"], "too_large");
    assert_eq!(big.header("tus-max-size"), Some("1048576"));
    // Bad metadata.
    let bad = tus
        .send(
            tus.http
                .post(format!("{}/api/v1/uploads", tus.base))
                .header("upload-length", "10")
                .header("upload-metadata", "filename %%%"),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["error"].as_str()),
        (400, Some("invalid_metadata"))
    );

    let data = file(1000);
    let created = tus.create(data.len(), &[("filename", "a.mp4")]).await;
    let location = created.header("location").unwrap().to_string();
    // Wrong offset.
    let wrong = tus.patch(&location, 10, &data[10..20], false).await;
    assert_eq!(
        (wrong.status, wrong.body["error"].as_str()),
        (409, Some("offset_mismatch"))
    );
    // Wrong content type.
    let typed = tus
        .send(
            tus.http
                .patch(format!("{}{location}", tus.base))
                .header("content-type", "application/json")
                .header("upload-offset", "0")
                .body("{}"),
        )
        .await;
    assert_eq!(typed.status, 415);
    // A checksum that does not match: refused, nothing kept.
    let mismatch = tus
        .send(
            tus.http
                .patch(format!("{}{location}", tus.base))
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", "0")
                .header(
                    "upload-checksum",
                    format!(
                        "sha256 {}",
                        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"other"))
                    ),
                )
                .body(data[..100].to_vec()),
        )
        .await;
    assert_eq!(mismatch.status, 460, "{}", mismatch.body);
    assert_eq!(tus.head(&location).await.offset(), 0);
    assert!(stored(&app, &location).await.is_empty());
    // A piece longer than the upload.
    let long = tus.patch(&location, 0, &file(1500), false).await;
    assert_eq!(long.status, 413, "{}", long.body);
    assert_eq!(tus.head(&location).await.offset(), 0);
    // While one piece is arriving, a second one waits its turn (423). `Expect: 100-continue`
    // makes the server say when it has started reading the first.
    let mut first = tokio::net::TcpStream::connect(&app.host).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n\
         Content-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        app.host, user.cookie
    );
    first.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut first, &mut byte)
            .await
            .unwrap();
        interim.push(byte[0]);
    }
    let second = tus.patch(&location, 0, &data[..10], false).await;
    assert_eq!(
        (second.status, second.body["error"].as_str()),
        (423, Some("upload_busy"))
    );
    first.write_all(&data[..100]).await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::io::AsyncReadExt::read(&mut first, &mut answer)
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).contains("204"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
    assert_eq!(tus.head(&location).await.offset(), 100);
    // Someone else's upload does not exist for them.
    assert_eq!(theirs.head(&location).await.status, 404);
    assert_eq!(
        theirs.patch(&location, 0, &data[..10], false).await.status,
        404
    );
    assert_eq!(theirs.delete(&location).await.status, 404);
    // Termination frees the bytes.
    assert_eq!(
        tus.patch(&location, 100, &data[100..500], false)
            .await
            .status,
        204
    );
    assert_eq!(stored(&app, &location).await.len(), 500);
    assert_eq!(tus.delete(&location).await.status, 204);
    assert_eq!(tus.head(&location).await.status, 404);
    assert!(stored(&app, &location).await.is_empty());
    // At most 20 unfinished uploads at once.
    for _ in 0..20 {
        assert_eq!(tus.create(10, &[]).await.status, 201);
    }
    let many = tus.create(10, &[]).await;
    assert_eq!(
        (many.status, many.body["error"].as_str()),
        (409, Some("too_many_uploads"))
    );
}

async fn unfinished_uploads_expire_and_free_their_bytes(b: Backend) {
    let app = spawn_with(b, &["--upload-expiry-s", "1"]).await;
    let user = app.signup("forgetful").await;
    let tus = Tus::new(&app, &user);
    let created = tus.create(1000, &[]).await;
    let location = created.header("location").unwrap().to_string();
    assert_eq!(tus.patch(&location, 0, &file(400), false).await.status, 204);
    assert_eq!(stored(&app, &location).await.len(), 400);
    eventually(10, || {
        let (tus, location) = (&tus, &location);
        async move { (tus.head(location).await.status == 404).then_some(()) }
    })
    .await;
    assert!(
        stored(&app, &location).await.is_empty(),
        "its bytes are freed"
    );
}

async fn plans_limit_what_members_upload(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.signup("admin").await;
    let member = app.signup("member").await;
    let tus = Tus::new(&app, &member);
    let (status, usage) = member.client.get("/api/v1/me/usage").await;
    assert_eq!(status, 200);
    assert_eq!(usage["plan"], Value::Null);
    assert_eq!(
        (
            usage["used_bytes"].as_i64(),
            usage["videos"].as_i64(),
            usage["uploads_today"].as_i64()
        ),
        (Some(0), Some(0), Some(0))
    );

    let small = serde_json::json!({
        "name": "small", "storage_bytes": 1500, "max_file_bytes": 1000, "uploads_per_day": 3
    });
    let (status, body) = admin
        .client
        .post("/api/v1/admin/plans", small.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["plan"]["max_duration_s"], Value::Null);
    let (status, body) = admin
        .client
        .post("/api/v1/admin/plans", small.clone())
        .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("plan_exists")));
    let (status, body) = admin
        .client
        .post(
            "/api/v1/admin/plans",
            serde_json::json!({"name": "Big Plan!"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_plan"))
    );
    let (status, _) = member.client.post("/api/v1/admin/plans", small).await;
    assert_eq!(status, 403);
    let (_, list) = admin.client.get("/api/v1/admin/plans").await;
    assert_eq!(list["plans"].as_array().unwrap().len(), 1);

    let assign = |who: &str, plan: Value| {
        let admin = &admin;
        let path = format!("/api/v1/admin/users/{who}/plan");
        async move {
            admin
                .client
                .put(&path, serde_json::json!({ "plan": plan }))
                .await
        }
    };
    assert_eq!(assign("nobody", "small".into()).await.0, 404);
    assert_eq!(assign("member", "missing".into()).await.0, 404);
    assert_eq!(assign("member", "small".into()).await.0, 200);

    let big = tus.create(1200, &[]).await;
    assert_eq!(
        (big.status, big.body["error"].as_str()),
        (413, Some("too_large")),
        "{}",
        big.body
    );
    let first = tus.create(800, &[]).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let (_, usage) = member.client.get("/api/v1/me/usage").await;
    assert_eq!(usage["plan"]["name"], "small");
    assert_eq!(usage["used_bytes"], 800);
    assert_eq!(usage["uploads_today"], 1);
    let over = tus.create(800, &[]).await;
    assert_eq!(
        (over.status, over.body["error"].as_str()),
        (403, Some("quota_exceeded"))
    );
    assert!(
        over.body["message"]
            .as_str()
            .unwrap()
            .contains("700 of 1500"),
        "{}",
        over.body
    );
    assert_eq!(tus.create(600, &[]).await.status, 201);
    assert_eq!(tus.create(50, &[]).await.status, 201);
    let fourth = tus.create(10, &[]).await;
    assert_eq!(fourth.status, 403);
    assert!(
        fourth.body["message"]
            .as_str()
            .unwrap()
            .contains("3 uploads a day"),
        "{}",
        fourth.body
    );
    // Cancelling an upload gives its bytes back; lifting the limit lets more through.
    let location = first.header("location").unwrap().to_string();
    assert_eq!(tus.delete(&location).await.status, 204);
    let (_, usage) = member.client.get("/api/v1/me/usage").await;
    assert_eq!(usage["used_bytes"], 650);
    let (status, body) = admin
        .client
        .patch(
            "/api/v1/admin/plans/small",
            serde_json::json!({"uploads_per_day": null}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plan"]["uploads_per_day"], Value::Null);
    assert_eq!(body["plan"]["storage_bytes"], 1500, "untouched fields stay");
    assert_eq!(tus.create(10, &[]).await.status, 201);
    // Announcements sent at once cannot all fit in what is left.
    let left = 1500 - 660;
    // More than the pool has connections: none may wait on a second one.
    let racers: Vec<_> = (0..12)
        .map(|_| {
            let tus = Tus::new(&app, &member);
            tokio::spawn(async move { tus.create(left, &[]).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 403),
        "{statuses:?}"
    );
    // Back to the default (here: none).
    assert_eq!(assign("member", Value::Null).await.0, 200);
    let (_, usage) = member.client.get("/api/v1/me/usage").await;
    assert_eq!(usage["plan"], Value::Null);
}

async fn the_default_plan_applies_to_members_without_one(b: Backend) {
    let app = spawn_with(b, &["--default-plan", "starter"]).await;
    let admin = app.signup("admin").await;
    let member = app.signup("member").await;
    // Until the plan exists, nothing but the server's limit applies.
    let (_, usage) = member.client.get("/api/v1/me/usage").await;
    assert_eq!(usage["plan"], Value::Null);
    let (status, _) = admin
        .client
        .post(
            "/api/v1/admin/plans",
            serde_json::json!({"name": "starter", "max_file_bytes": 100}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, usage) = member.client.get("/api/v1/me/usage").await;
    assert_eq!(usage["plan"]["name"], "starter");
    let tus = Tus::new(&app, &member);
    assert_eq!(tus.create(101, &[]).await.status, 413);
    assert_eq!(tus.create(100, &[]).await.status, 201);
}
