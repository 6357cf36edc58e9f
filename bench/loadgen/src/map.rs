//! The shared map's relay: N signed-in members of one room each send `map.view` at a steady rate
//! (a page sends about 8 a second while the map moves), and every member receives everyone's.
//! moim checks, rounds, paces and relays each view through its event path (no database); the
//! peer is the plain `ws` relay (`bench/peers/ws.mjs`), which sends each frame as it came to the
//! room and checks nothing. Measured: views relayed per second, delivery latency, loss, and
//! server CPU per delivery, in one run, with the ratio.
//!
//! A view's send time rides in its centre's latitude (milliseconds modulo 89,000 s, as
//! degrees × 10⁶: moim rounds to 10⁻⁶°, so the time survives to the millisecond).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::hist::Histogram;
use crate::server::{cpu_us, Kind, Launch, Server};

#[derive(Args, Clone, Debug)]
pub struct MapOpts {
    /// moim binary; default: `cargo build --release -p moim`.
    #[arg(long)]
    pub moim_bin: Option<PathBuf>,
    /// Members in the room (moim relays at most 100 per room's map).
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// Views each member sends per second.
    #[arg(long, default_value_t = 8.0)]
    pub rate: f64,
    /// Seconds measured (after 3 s of warm-up).
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Node for the peer.
    #[arg(long, default_value = "node")]
    pub node: String,
}

/// Milliseconds since the Unix epoch, modulo what a latitude can carry.
const WRAP_MS: u64 = 89_000_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    measuring: std::sync::atomic::AtomicBool,
    hist: Mutex<Histogram>,
}

struct Outcome {
    sent: u64,
    received: u64,
    expected: u64,
    cpu_s: f64,
    p50: f64,
    p99: f64,
    seconds: f64,
}

fn view(t: u64) -> String {
    let lat = (t % WRAP_MS) as f64 / 1e6;
    json!({"type": "map.view", "center": [lat, 127.0], "zoom": 14,
           "bounds": [[lat - 0.5, 126.9], [(lat + 0.5).min(90.0), 127.1]], "cursor": null})
    .to_string()
}

/// The send time a relayed view carries, if `text` is one.
fn sent_at(text: &str) -> Option<u64> {
    if !text.contains("\"map.view\"") {
        return None;
    }
    let v: Value = serde_json::from_str(text).ok()?;
    Some((v["center"][0].as_f64()? * 1e6).round() as u64)
}

async fn member(
    url: String,
    cookie: Option<String>,
    origin: String,
    rate: f64,
    c: Arc<Counters>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut req = url.into_client_request()?;
    if let Some(cookie) = cookie {
        req.headers_mut().insert("cookie", cookie.parse()?);
    }
    req.headers_mut().insert("origin", origin.parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .context("connecting")?;
    let (mut tx, mut rx) = ws.split();
    let every = Duration::from_secs_f64(1.0 / rate);
    // Spread the members' sends over the interval.
    tokio::time::sleep(every.mul_f64(rand_fraction())).await;
    let mut tick = tokio::time::interval(every);
    let mut stop = stop;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                tx.send(Message::Text(view(now_ms()).into())).await?;
                if c.measuring.load(Ordering::Relaxed) {
                    c.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Some(at) = sent_at(t.as_str()) {
                        if c.measuring.load(Ordering::Relaxed) {
                            c.received.fetch_add(1, Ordering::Relaxed);
                            let now = now_ms() % WRAP_MS;
                            let ms = (now + WRAP_MS - at) % WRAP_MS;
                            c.hist.lock().unwrap().record(ms * 1000);
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => bail!("the socket ended"),
            }
        }
    }
    Ok(())
}

fn rand_fraction() -> f64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        % 1000) as f64
        / 1000.0
}

/// Signs up `n` members on moim and returns their session cookies.
async fn moim_members(port: u16, n: usize) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let mut cookies = Vec::with_capacity(n);
    for i in 0..n {
        let resp = http
            .post(format!("{base}/auth/signup"))
            .json(&json!({"username": format!("m{i}"), "password": "bench-password-1"}))
            .send()
            .await?;
        match crate::server::session_cookie(&resp) {
            Some(c) => cookies.push(c),
            None => bail!("signing up m{i}: {}", resp.status()),
        }
    }
    let resp = http
        .post(format!("{base}/rooms"))
        .header("cookie", &cookies[0])
        .header("origin", format!("http://127.0.0.1:{port}"))
        .json(&json!({"slug": "map-bench", "title": "map bench"}))
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        bail!("creating the room: {}", resp.status());
    }
    Ok(cookies)
}

async fn drive(
    kind: Kind,
    launch: &Launch,
    o: &MapOpts,
    dir: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let mut srv = Server::start(kind, launch, dir).await?;
    let port = srv.port;
    let origin = format!("http://127.0.0.1:{port}");
    let (url, cookies) = match kind {
        Kind::Moim => (
            format!("ws://127.0.0.1:{port}/api/v1/rooms/map-bench/ws"),
            moim_members(port, o.members)
                .await?
                .into_iter()
                .map(Some)
                .collect::<Vec<_>>(),
        ),
        _ => (
            format!("ws://127.0.0.1:{port}/?room=map-bench"),
            vec![None; o.members],
        ),
    };
    let c = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for cookie in cookies {
        tasks.push(tokio::spawn(member(
            url.clone(),
            cookie,
            origin.clone(),
            o.rate,
            c.clone(),
            stop_rx.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu0 = cpu_us(srv.pid).unwrap_or(0);
    let started = Instant::now();
    c.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    c.measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let cpu_s = (cpu_us(srv.pid).unwrap_or(0) - cpu0) as f64 / 1e6;
    let _ = stop_tx.send(true);
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            eprintln!("{}: a member failed: {e:#}", kind.name());
        }
    }
    srv.stop().await;
    let sent = c.sent.load(Ordering::Relaxed);
    let hist = c.hist.lock().unwrap();
    Ok(Outcome {
        sent,
        received: c.received.load(Ordering::Relaxed),
        expected: sent * o.members as u64,
        cpu_s,
        p50: hist.quantile(0.5) as f64 / 1000.0,
        p99: hist.quantile(0.99) as f64 / 1000.0,
        seconds,
    })
}

pub async fn run(o: MapOpts, launch: Launch) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("moim-bench-map-{}", std::process::id()));
    println!(
        "map relay: 1 room x {} members x {} views/s each, {} s measured",
        o.members, o.rate, o.seconds
    );
    let mut rows = Vec::new();
    for kind in [Kind::Moim, Kind::Ws] {
        let out = drive(kind, &launch, &o, &work.join(kind.name())).await?;
        let deliveries = out.received as f64;
        println!(
            "{:<6} views sent {:>7.0}/s  delivered {:>8.0}/s  loss {:>6.2} %  latency p50 {:>5.1} ms p99 {:>6.1} ms  CPU {:>5.2} s = {:>6.2} µs/delivery",
            kind.name(),
            out.sent as f64 / out.seconds,
            deliveries / out.seconds,
            100.0 * (1.0 - deliveries / out.expected.max(1) as f64),
            out.p50,
            out.p99,
            out.cpu_s,
            out.cpu_s * 1e6 / deliveries.max(1.0),
        );
        rows.push((kind, out));
    }
    if let [(_, m), (_, w)] = &rows[..] {
        let per = |x: &Outcome| x.cpu_s / (x.received as f64).max(1.0);
        println!(
            "moim / ws: CPU per delivery {:.2}x, delivered {:.2}x, p99 latency {:.2}x",
            per(m) / per(w),
            m.received as f64 / (w.received as f64).max(1.0),
            m.p99 / w.p99.max(0.001),
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
