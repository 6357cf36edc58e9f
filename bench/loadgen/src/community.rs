//! Community benchmark, on this machine, in one run.
//!
//! 1. Photos: a 12-megapixel JPEG (4000 × 3000) uploaded to moim, which makes the three served
//!    sizes (2560, 1280 and 320 px on the long side) with one image worker, the server pinned to
//!    one core; against `vipsthumbnail` (libvips) making the same three sizes, also on one core
//!    (`VIPS_CONCURRENCY=1`, pinned), three commands. Wall time per photo (median of the runs)
//!    and peak RSS (moim: the server process's high-water mark; libvips: the largest of its
//!    processes).
//! 2. Feed: 100,000 posts stored straight into the database (SQLite, and PostgreSQL when
//!    `--postgres-url` is given), then `wrk` on `GET /api/v1/posts?sort=hot` (the first page,
//!    and one kind), requests per second and p99; then the cost of a like (one transaction
//!    that also rewrites the hot key), sequential, mean and p99.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::json;

use crate::live::servers::{start_moim_with, Srv};
use crate::server::status_kb;

#[derive(clap::Args, Clone, Debug)]
pub struct CommunityOpts {
    /// moim binary; default: `cargo build --release -p moim`.
    #[arg(long)]
    pub moim_bin: Option<PathBuf>,
    /// Photos processed by each side (the median counts).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Posts in the feed database.
    #[arg(long, default_value_t = 100_000)]
    pub posts: usize,
    /// Likes timed one after another.
    #[arg(long, default_value_t = 1000)]
    pub likes: usize,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 10)]
    pub wrk_seconds: u32,
    /// A PostgreSQL admin URL (e.g. postgres://postgres@127.0.0.1:15432/postgres): the feed is
    /// measured there too, in a database of its own.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Where the files and servers live (default: a fresh directory under /tmp).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs a command to its end: (wall seconds, peak RSS in KiB of it and its children).
fn measured(cmd: &mut Command) -> anyhow::Result<(f64, u64)> {
    let t = Instant::now();
    let child = cmd.stdout(Stdio::null()).spawn().context("spawning")?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter; we wait for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    if r != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{cmd:?} failed (status {status})");
    }
    drop(child);
    Ok((secs, usage.ru_maxrss as u64))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Pins every thread of `pid` to CPU 0.
fn pin(pid: u32) -> anyhow::Result<()> {
    let st = Command::new("taskset")
        .args(["-a", "-pc", "0", &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset")?;
    if !st.success() {
        bail!("taskset failed");
    }
    Ok(())
}

async fn signed_in(http: &str, name: &str) -> anyhow::Result<reqwest::Client> {
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    client
        .post(format!("{http}/api/v1/auth/signup"))
        .header("origin", http)
        .json(&json!({"username": name, "password": "bench password"}))
        .send()
        .await?
        .error_for_status()?;
    Ok(client)
}

async fn photos(o: &CommunityOpts, bin: &Path, dir: &Path) -> anyhow::Result<()> {
    let photo = dir.join("photo-12mp.jpg");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=4000x3000:rate=1")
        .args(["-vf", "noise=alls=14:allf=t", "-frames:v", "1", "-q:v", "3"])
        .arg(&photo)
        .status()
        .context("running ffmpeg (apt-get install ffmpeg)")?;
    if !st.success() {
        bail!("ffmpeg could not make the test photo");
    }
    let data = std::fs::read(&photo)?;
    eprintln!("photo: 4000 × 3000 JPEG, {:.1} MB", data.len() as f64 / 1e6);

    // moim: one worker, the server on one core.
    let srv: Srv = start_moim_with(bin, &dir.join("photos"), 0, &["--image-workers", "1"]).await?;
    for p in &srv.pids {
        pin(*p)?;
    }
    let client = signed_in(&srv.http, "photographer").await?;
    let rss_before = status_kb(srv.pids[0], "VmHWM").unwrap_or(0);
    let mut moim_times = Vec::new();
    for _ in 0..o.runs {
        let t = Instant::now();
        let r = client
            .post(format!("{}/api/v1/images", srv.http))
            .header("origin", &srv.http)
            .header("content-type", "image/jpeg")
            .body(data.clone())
            .send()
            .await?;
        if r.status() != 201 {
            bail!("moim answered {} to the photo", r.status());
        }
        moim_times.push(t.elapsed().as_secs_f64());
    }
    let moim_peak = status_kb(srv.pids[0], "VmHWM").unwrap_or(0);
    drop(srv);

    // libvips: the same three sizes, three commands, one thread, one core.
    let mut vips_times = Vec::new();
    let mut vips_peak = 0;
    for run in 0..o.runs {
        let mut total = 0.0;
        for (name, size) in [("large", 2560), ("medium", 1280), ("thumb", 320)] {
            let out = dir.join(format!("vips-{run}-{name}.jpg[Q=82,strip]"));
            let (secs, rss) = measured(
                Command::new("taskset")
                    .args(["-c", "0", "vipsthumbnail"])
                    .arg(&photo)
                    .args(["-s", &format!("{size}x{size}"), "-o"])
                    .arg(&out)
                    .env("VIPS_CONCURRENCY", "1"),
            )
            .context("running vipsthumbnail (apt-get install libvips-tools)")?;
            total += secs;
            vips_peak = vips_peak.max(rss);
        }
        vips_times.push(total);
    }
    let (m, v) = (median(&mut moim_times), median(&mut vips_times));
    println!(
        "PHOTOS 12 MP JPEG → large/medium/thumb, one core, median of {}",
        o.runs
    );
    println!(
        "  moim  {:>7.0} ms per photo (upload on loopback included)   peak RSS {:>4} MB (process, {} MB before)",
        m * 1e3,
        moim_peak / 1024,
        rss_before / 1024
    );
    println!(
        "  vips  {:>7.0} ms per photo (three vipsthumbnail runs)      peak RSS {:>4} MB (largest run)",
        v * 1e3,
        vips_peak / 1024
    );
    println!("  ratio moim / vips: time {:.2}×", m / v);
    Ok(())
}

/// SQL that stores `n` posts by user 1: kinds in turn, likes 0–199, created over 60 days
/// before `now`, the hot key as moim writes it.
fn seed_sql(n: usize, now_ms: i64, postgres: bool) -> String {
    let series = if postgres {
        format!("SELECT g::bigint AS i FROM generate_series(1, {n}) g")
    } else {
        format!("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s")
    };
    let span = 60i64 * 24 * 3600 * 1000;
    let likes = "((i * 7919) % 200)";
    let created = format!("({now_ms} - ((i * 104729) % {span}))");
    let log = if postgres { "log" } else { "log10" };
    let greatest = if postgres { "GREATEST" } else { "MAX" };
    format!(
        "INSERT INTO posts (kind, author_id, title, body, tags, likes, hot, search_text, \
         created_at, updated_at, price, status) \
         SELECT CASE i % 4 WHEN 0 THEN 'talk' WHEN 1 THEN 'market' WHEN 2 THEN 'place' ELSE 'review' END, \
         1, 'post ' || i, 'a body of some length for post ' || i, '', {likes}, \
         CAST(ROUND(({log}({greatest}({likes}, 1)) + {created} / 1000.0 / 45000.0) * 1000000) AS BIGINT), \
         '', {created}, {created}, CASE i % 4 WHEN 1 THEN 1000 ELSE NULL END, \
         CASE i % 4 WHEN 1 THEN 'on_sale' ELSE NULL END FROM ({series}) AS seq;"
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn feed(o: &CommunityOpts, bin: &Path, dir: &Path, pg: Option<&str>) -> anyhow::Result<()> {
    let label = if pg.is_some() { "PostgreSQL" } else { "SQLite" };
    let mut extra: Vec<String> = Vec::new();
    let db_url = match pg {
        None => None,
        Some(admin) => {
            let name = format!("moim_bench_feed_{}", std::process::id());
            let st = Command::new("psql")
                .args([
                    admin,
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {name}"),
                    "-c",
                    &format!("CREATE DATABASE {name}"),
                ])
                .status()
                .context("running psql")?;
            if !st.success() {
                bail!("psql could not create the bench database");
            }
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
            Some(format!("{base}/{name}"))
        }
    };
    if let Some(u) = &db_url {
        extra.push("--database-url".into());
        extra.push(u.clone());
    }
    let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    let sub = dir.join(format!("feed-{}", label.to_lowercase()));
    let srv = start_moim_with(bin, &sub, 0, &extra_refs).await?;
    // Likes are paced per member (60 at once, then 2 a second): the timed likes come from
    // twenty members in turn, so the pace never holds them back.
    let mut likers = Vec::new();
    for i in 0..20 {
        likers.push(signed_in(&srv.http, &format!("reader{i}")).await?);
    }
    let t = Instant::now();
    let sql = seed_sql(o.posts, now_ms(), db_url.is_some());
    let st = match &db_url {
        Some(u) => Command::new("psql")
            .args([u.as_str(), "-q", "-c", &sql, "-c", "ANALYZE posts"])
            .status()
            .context("running psql")?,
        None => {
            use std::io::Write;
            let mut child = Command::new("sqlite3")
                .args(["-bail", "-cmd", ".timeout 10000"])
                .arg(sub.join("moim/moim.db"))
                .stdin(Stdio::piped())
                .spawn()
                .context("running sqlite3 (apt-get install sqlite3)")?;
            let mut stdin = child.stdin.take().expect("piped");
            stdin.write_all(format!("{sql}\nANALYZE;\n").as_bytes())?;
            drop(stdin);
            child.wait()?
        }
    };
    if !st.success() {
        bail!("storing the posts failed");
    }
    eprintln!(
        "{label}: {} posts stored in {:.1} s",
        o.posts,
        t.elapsed().as_secs_f64()
    );
    let hot = format!("{}/api/v1/posts?sort=hot", srv.http);
    let (rps, p99) = crate::library::wrk_with(&hot, o.wrk_seconds, None, 32)?;
    let (rps8, p99_8) = crate::library::wrk_with(&hot, o.wrk_seconds, None, 8)?;
    let kind = format!("{}/api/v1/posts?sort=hot&kind=market", srv.http);
    let (krps, kp99) = crate::library::wrk_with(&kind, o.wrk_seconds, None, 32)?;
    // Likes, one after another, on different posts.
    let mut times = Vec::with_capacity(o.likes);
    for i in 0..o.likes {
        let id = 1 + (i * 97) % o.posts;
        let t = Instant::now();
        likers[i % likers.len()]
            .put(format!("{}/api/v1/posts/{id}/like", srv.http))
            .header("origin", &srv.http)
            .send()
            .await?
            .error_for_status()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let like_p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    println!("FEED {label}, {} posts, 20 a page, wrk -t2", o.posts);
    println!("  sort=hot              -c32 {rps:>8.0} req/s   p99 {p99:>6.2} ms");
    println!("  sort=hot              -c8  {rps8:>8.0} req/s   p99 {p99_8:>6.2} ms");
    println!("  sort=hot&kind=market  -c32 {krps:>8.0} req/s   p99 {kp99:>6.2} ms");
    println!("  like (PUT, one transaction with the hot key)  mean {mean:.2} ms   p99 {like_p99:.2} ms   ({} sequential)", o.likes);
    drop(srv);
    if let (Some(admin), Some(u)) = (pg, &db_url) {
        let name = u.rsplit('/').next().unwrap_or_default();
        let _ = Command::new("psql")
            .args([
                admin,
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {name}"),
            ])
            .status();
    }
    Ok(())
}

pub async fn run(o: CommunityOpts, moim_bin: PathBuf) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("moim-bench-community-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    photos(&o, &moim_bin, &dir).await?;
    feed(&o, &moim_bin, &dir, None).await?;
    if let Some(pg) = o.postgres_url.clone() {
        feed(&o, &moim_bin, &dir, Some(&pg)).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
