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
            let mut next: Option<(u64, u64)> = None;
            let mut fetched: HashMap<String, ()> = HashMap::new();
            while Instant::now() < end {
                let url = match next {
                    Some((m, p)) => format!("{base}{playlist}?_HLS_msn={m}&_HLS_part={p}"),
                    None => format!("{base}{playlist}"),
                };
                let t = Instant::now();
                let text = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                    _ => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let took = t.elapsed().as_micros() as u64;
                stats.requests.fetch_add(1, Ordering::Relaxed);
                if next.is_some() {
                    stats.blocking.lock().unwrap().record(took);
                } else {
                    stats.nonblocking.lock().unwrap().record(took);
                }
                // Fetch what is new (only the newest entry on the first pass, like a player
                // joining at the live edge).
                let list = entries(&text, moim);
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
                    fetched.insert(uri, ());
                }
                if fetched.len() > 64 {
                    fetched.clear(); // only "new since last time" matters
                    fetched.insert(String::new(), ());
                }
                if moim {
                    next = text
                        .lines()
                        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p"))
                        .and_then(|r| r.split(".m4s").next())
                        .and_then(|r| r.split_once('.'))
                        .and_then(|(m, p)| Some((m.parse().ok()?, p.parse().ok()?)));
                } else {
                    // hls.js reloads a live playlist about once per target duration; 1 s here.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
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
