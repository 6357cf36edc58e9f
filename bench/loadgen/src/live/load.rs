//! Simulated viewers for the live benchmark: players following a stream, and a capacity run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::entries;
use super::servers::Srv;
use crate::hist::Histogram;

#[derive(Default)]
pub struct LoadStats {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub nonblocking: Mutex<Histogram>,
    pub blocking: Mutex<Histogram>,
}

#[derive(Default)]
struct Local {
    requests: u64,
    bytes: u64,
    errors: u64,
    nonblocking: Histogram,
    blocking: Histogram,
}

impl Local {
    fn merge_into(&self, stats: &LoadStats) {
        stats.requests.fetch_add(self.requests, Ordering::Relaxed);
        stats.bytes.fetch_add(self.bytes, Ordering::Relaxed);
        stats.errors.fetch_add(self.errors, Ordering::Relaxed);
        stats.nonblocking.lock().unwrap().merge(&self.nonblocking);
        stats.blocking.lock().unwrap().merge(&self.blocking);
    }
}

/// GET; the body's length, or None on failure.
async fn fetch(http: &reqwest::Client, url: &str) -> Option<Body> {
    match http.get(url).send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.ok().map(Body),
        _ => None,
    }
}

/// A response body.
struct Body(bytes::Bytes);

/// The part named by a playlist's preload hint, `(msn, part)`.
fn preload_hint(text: &str) -> Option<(u64, u64)> {
    let at = text.rfind("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p")?;
    let rest = &text[at + 36..];
    let (m, rest) = rest.split_once('.')?;
    let (p, _) = rest.split_once('.')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

/// An LL-HLS player: a blocking playlist request for the hinted part, then that part (which now
/// exists, so the request does not block), over and over.
async fn follow_ll_hls(
    http: &reqwest::Client,
    base: &str,
    playlist: &str,
    dir: &str,
    end: Instant,
    mine: &mut Local,
) {
    let mut next: Option<(u64, u64)> = None;
    while Instant::now() < end {
        let url = match next {
            Some((m, p)) => format!("{base}{playlist}?_HLS_msn={m}&_HLS_part={p}"),
            None => format!("{base}{playlist}"),
        };
        let t = Instant::now();
        let Some(body) = fetch(http, &url).await else {
            mine.errors += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            next = None;
            continue;
        };
        mine.requests += 1;
        let took = t.elapsed().as_micros() as u64;
        let text = String::from_utf8_lossy(&body.0);
        if let Some((m, p)) = next {
            mine.blocking.record(took);
            // A hinted part is not made when a keyframe ends its segment first; then the
            // playlist has moved on and so does the player.
            let uri = format!("p{m}.{p}.m4s");
            if !text.contains(uri.as_str()) {
                next = preload_hint(&text);
                continue;
            }
            let t = Instant::now();
            match fetch(http, &format!("{base}{dir}/{uri}")).await {
                Some(b) => {
                    mine.requests += 1;
                    mine.bytes += b.0.len() as u64;
                    mine.nonblocking.record(t.elapsed().as_micros() as u64);
                }
                None => mine.errors += 1,
            }
        } else {
            mine.nonblocking.record(took);
        }
        next = preload_hint(&text);
    }
}

/// A plain HLS player: the playlist every second, then any segment it has not fetched.
async fn follow_polling(
    http: &reqwest::Client,
    base: &str,
    playlist: &str,
    dir: &str,
    end: Instant,
    mine: &mut Local,
) {
    let mut fetched: HashMap<String, ()> = HashMap::new();
    while Instant::now() < end {
        let t = Instant::now();
        let Some(body) = fetch(http, &format!("{base}{playlist}")).await else {
            mine.errors += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        mine.requests += 1;
        mine.nonblocking.record(t.elapsed().as_micros() as u64);
        let text = String::from_utf8_lossy(&body.0);
        let list = entries(&text, false);
        // Joining: only the newest segment, like a player starting at the live edge.
        let fresh: Vec<String> = if fetched.is_empty() {
            list.last().map(|(u, _)| u.clone()).into_iter().collect()
        } else {
            list.into_iter()
                .map(|(u, _)| u)
                .filter(|u| !fetched.contains_key(u))
                .collect()
        };
        for uri in fresh {
            let t = Instant::now();
            match fetch(http, &format!("{base}{dir}/{uri}")).await {
                Some(b) => {
                    mine.requests += 1;
                    mine.bytes += b.0.len() as u64;
                    mine.nonblocking.record(t.elapsed().as_micros() as u64);
                }
                None => mine.errors += 1,
            }
            fetched.insert(uri, ());
        }
        // hls.js reloads a live playlist about once per target duration; 1 s here.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `viewers` players following the stream for `secs`: moim's LL-HLS loop or nginx's polling.
pub async fn delivery(srv: &Srv, playlist: &str, viewers: usize, secs: u64) -> Arc<LoadStats> {
    let stats = Arc::new(LoadStats::default());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(viewers)
        .build()
        .expect("http client");
    let end = Instant::now() + Duration::from_secs(secs);
    let moim = srv.name == "moim";
    let base = srv.http.clone();
    let playlist = playlist.to_string();
    let dir = playlist[..playlist.rfind('/').unwrap_or(0)].to_string();
    let mut tasks = Vec::new();
    for i in 0..viewers {
        let (http, stats, base, playlist, dir) = (
            http.clone(),
            stats.clone(),
            base.clone(),
            playlist.clone(),
            dir.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Spread the start over a second, as real viewers do not arrive in lockstep.
            tokio::time::sleep(Duration::from_millis((i as u64 * 1000) / viewers as u64)).await;
            // Per-viewer figures, merged at the end: a shared lock here would make the load
            // generator, not the server, the thing measured.
            let mut mine = Local::default();
            if moim {
                follow_ll_hls(&http, &base, &playlist, &dir, end, &mut mine).await;
            } else {
                follow_polling(&http, &base, &playlist, &dir, end, &mut mine).await;
            }
            mine.merge_into(&stats);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    stats
}

/// Back-to-back non-blocking requests from `clients` for `secs`: playlist, then (with `media`)
/// the newest part or segment.
pub async fn capacity(
    srv: &Srv,
    playlist: &str,
    clients: usize,
    secs: u64,
    media: bool,
) -> Arc<LoadStats> {
    let stats = Arc::new(LoadStats::default());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("http client");
    let end = Instant::now() + Duration::from_secs(secs);
    let moim = srv.name == "moim";
    let dir = playlist[..playlist.rfind('/').unwrap_or(0)].to_string();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, stats) = (http.clone(), stats.clone());
        let (pl, base, dir) = (
            format!("{}{playlist}", srv.http),
            srv.http.clone(),
            dir.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let t = Instant::now();
                let Ok(r) = http.get(&pl).send().await else {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let text = r.text().await.unwrap_or_default();
                stats
                    .nonblocking
                    .lock()
                    .unwrap()
                    .record(t.elapsed().as_micros() as u64);
                stats.requests.fetch_add(1, Ordering::Relaxed);
                stats.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                if !media {
                    continue;
                }
                let Some((uri, _)) = entries(&text, moim).pop() else {
                    continue;
                };
                let t = Instant::now();
                match http.get(format!("{base}{dir}/{uri}")).send().await {
                    Ok(r) if r.status().is_success() => {
                        let n = r.bytes().await.map(|b| b.len()).unwrap_or(0);
                        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        stats.requests.fetch_add(1, Ordering::Relaxed);
                        stats
                            .nonblocking
                            .lock()
                            .unwrap()
                            .record(t.elapsed().as_micros() as u64);
                    }
                    _ => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    stats
}
