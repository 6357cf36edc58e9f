//! Chat across nodes: scenario A (one room, 1,000 clients, 100 messages a second) on one moim
//! node, then with the same clients dealt round three nodes of one site (one PostgreSQL
//! database, Redis between them), in one run. Prints publish → receive latency for both and
//! the difference, CPU per delivery for the nodes together and per node, and Redis's CPU.
//!
//! Needs a PostgreSQL the benchmark may create databases in and a Redis, both on loopback
//! (`--postgres-url`, `--redis-url`, or `MOIM_BENCH_POSTGRES_URL` / `MOIM_BENCH_REDIS_URL`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;

use crate::report::RunResult;
use crate::server::{Kind, Launch, Server};
use crate::Opts;

#[derive(Args, Clone, Debug)]
pub struct ClusterOpts {
    /// An admin URL of the PostgreSQL to use (each run gets a fresh database in it).
    #[arg(long, env = "MOIM_BENCH_POSTGRES_URL")]
    postgres_url: String,
    /// The Redis the nodes share.
    #[arg(long, env = "MOIM_BENCH_REDIS_URL")]
    redis_url: String,
    /// Nodes in the second run.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The chat benchmark's options (scenario A's are used).
    #[command(flatten)]
    chat: Opts,
}

/// A fresh database in the PostgreSQL of `admin` (via `psql`); its URL.
fn fresh_database(admin: &str, name: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("psql")
        .arg(admin)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("DROP DATABASE IF EXISTS {name}"))
        .arg("-c")
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .context("running psql (Debian: postgresql-client)")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    Ok(format!("{base}/{name}"))
}

/// The Redis server's process id (it runs on this machine), to read its CPU time.
fn redis_pid(url: &str) -> anyhow::Result<u32> {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url, "INFO", "server"])
        .output()
        .context("running redis-cli")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("process_id:")?.trim().parse().ok())
        .context("redis-cli INFO server gave no process_id (is Redis on this machine?)")
}

impl ClusterOpts {
    pub fn moim_bin(&self) -> Option<&std::path::Path> {
        self.chat.moim_bin.as_deref()
    }
}

pub async fn run(o: ClusterOpts, moim_bin: PathBuf, nofile: u64) -> anyhow::Result<()> {
    let mut chat = o.chat.clone();
    chat.scenarios = "a".into();
    let s = crate::scenarios(&chat)?.remove(0);
    if (s.clients() as u64) + 64 > nofile {
        bail!(
            "{} connections need a higher RLIMIT_NOFILE ({nofile})",
            s.clients()
        );
    }
    let redis = redis_pid(&o.redis_url)?;
    let work = std::env::temp_dir().join(format!("moim-bench-cluster-{}", std::process::id()));
    eprintln!("moim-bench cluster: {}", s.describe(chat.msg_bytes));
    let mut results: Vec<(usize, RunResult)> = Vec::new();
    for nodes in [1, o.nodes.max(2)] {
        let db = fresh_database(
            &o.postgres_url,
            &format!("moim_bench_{}_{nodes}", std::process::id()),
        )?;
        let mut args = vec![
            "--database-url".to_string(),
            db,
            "--rtmp-listen".to_string(),
            "127.0.0.1:0".to_string(),
        ];
        if nodes > 1 {
            args.extend(["--redis-url".to_string(), o.redis_url.clone()]);
        }
        args.extend(chat.moim_arg.iter().cloned());
        let launch = Launch {
            moim_bin: moim_bin.clone(),
            moim_args: args,
            node: chat.node.clone(),
            bun: PathBuf::new(),
            peers_dir: PathBuf::new(),
            nofile: nofile.min(65_536),
        };
        eprintln!("\n== {nodes} node(s) ==");
        let mut servers = Vec::new();
        for i in 0..nodes {
            servers.push(
                Server::start(Kind::Moim, &launch, &work.join(format!("{nodes}-{i}"))).await?,
            );
        }
        // The nodes hear each other before the clients come.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let watched = if nodes > 1 {
            vec![("redis".to_string(), redis)]
        } else {
            Vec::new()
        };
        let started = Instant::now();
        let r = crate::drive(&mut servers, &watched, &s, &chat).await;
        for srv in &mut servers {
            srv.stop().await;
        }
        let r = r?;
        eprintln!(
            "   {} deliveries, p50 {} us, p99 {} us, lost {}, reordered {} ({:.0} s)",
            r.delivered,
            r.p50_us,
            r.p99_us,
            r.lost,
            r.reordered,
            started.elapsed().as_secs_f64()
        );
        results.push((nodes, r));
    }
    let _ = std::fs::remove_dir_all(&work);

    println!("\n{}", s.describe(chat.msg_bytes));
    println!(
        "| nodes | delivered | lost | reordered | p50 | p99 | max | moim CPU per delivery | CPU by process (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (n, r) in &results {
        let by: Vec<String> = r
            .cpu_by_process
            .iter()
            .map(|(l, us)| format!("{l} {:.0}", *us as f64 / 1000.0))
            .collect();
        println!(
            "| {n} | {} of {} | {} | {} | {:.2} ms | {:.2} ms | {:.1} ms | {:.2} µs | {} |",
            r.delivered,
            r.expected,
            r.lost,
            r.reordered,
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.max_us as f64 / 1000.0,
            r.cpu_us_per_delivery,
            by.join(", ")
        );
    }
    if let [(_, one), (n, many)] = &results[..] {
        let redis_us = many
            .cpu_by_process
            .iter()
            .find(|(l, _)| l == "redis")
            .map_or(0, |(_, c)| *c);
        println!(
            "\np99 on {n} nodes minus p99 on one: {:+.2} ms (goal: within 2 ms); p50 {:+.2} ms; \
             CPU per delivery {:.2}x one node's ({:.2} µs of it Redis's)",
            (many.p99_us as f64 - one.p99_us as f64) / 1000.0,
            (many.p50_us as f64 - one.p50_us as f64) / 1000.0,
            many.cpu_us_per_delivery / one.cpu_us_per_delivery,
            redis_us as f64 / many.delivered.max(1) as f64,
        );
    }
    Ok(())
}
