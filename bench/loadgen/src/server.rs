//! Starting and stopping the servers under test, reading their CPU time and memory from /proc,
//! and preparing moim (account, API token, rooms) over its HTTP API.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::json;

/// Which server is under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Moim,
    SocketIo,
    Ws,
    /// Bun's built-in WebSocket pub/sub (uWebSockets underneath), `peers/bun.mjs`.
    Bun,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Moim => "moim",
            Kind::SocketIo => "socket.io",
            Kind::Ws => "ws",
            Kind::Bun => "bun",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "moim" => Some(Kind::Moim),
            "socketio" | "socket.io" | "sio" => Some(Kind::SocketIo),
            "ws" => Some(Kind::Ws),
            "bun" | "uws" => Some(Kind::Bun),
            _ => None,
        }
    }
}

/// How to start each server.
#[derive(Clone, Debug)]
pub struct Launch {
    pub moim_bin: PathBuf,
    pub moim_args: Vec<String>,
    pub node: String,
    /// The `bun` executable (by default the one npm installed in `peers/node_modules`).
    pub bun: PathBuf,
    pub peers_dir: PathBuf,
    /// `ulimit -n` given to the server's shell before `exec`.
    pub nofile: u64,
}

/// A running server (its process id is the shell's, which `exec`s the server).
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    pub pid: u32,
    child: Child,
    pub dir: PathBuf,
}

impl Server {
    /// Starts `kind` on a free loopback port and waits for its ready line.
    pub async fn start(kind: Kind, launch: &Launch, dir: &Path) -> anyhow::Result<Server> {
        std::fs::create_dir_all(dir)?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        // The shell raises the descriptor limit, then becomes the server (same pid).
        let script = format!(
            "ulimit -n {n} 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec \"$0\" \"$@\"",
            n = launch.nofile
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        match kind {
            Kind::Moim => {
                cmd.arg(&launch.moim_bin)
                    .arg("serve")
                    .arg("--listen")
                    .arg("127.0.0.1:0")
                    .arg("--data-dir")
                    .arg(dir.join("data"))
                    .arg("--chat-rate-burst")
                    .arg("0")
                    .arg("--login-rate-per-min")
                    .arg("1000")
                    // Every simulated client connects from 127.0.0.1.
                    .arg("--max-connections-per-ip")
                    .arg("1000000")
                    .arg("--shutdown-grace-s")
                    .arg("2")
                    .args(&launch.moim_args)
                    .env_remove("MOIM_DATABASE_URL")
                    .env("MOIM_WEBRTC_LISTEN", "127.0.0.1:0")
                    .env_remove("MOIM_CONFIG")
                    .env("RUST_LOG", "warn")
                    // No ./moim.toml from wherever the benchmark was started.
                    .current_dir(dir);
            }
            Kind::SocketIo | Kind::Ws | Kind::Bun => {
                let (runtime, file) = match kind {
                    Kind::SocketIo => (Path::new(&launch.node), "socketio.mjs"),
                    Kind::Ws => (Path::new(&launch.node), "ws.mjs"),
                    _ => (launch.bun.as_path(), "bun.mjs"),
                };
                cmd.arg(runtime)
                    .arg(launch.peers_dir.join(file))
                    .arg("0")
                    .current_dir(&launch.peers_dir)
                    .env("NODE_ENV", "production");
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", kind.name()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the server never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let mut server = Server {
            kind,
            port: 0,
            pid,
            child,
            dir: dir.to_path_buf(),
        };
        let line = match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(l)) => l,
            _ => {
                server.stop().await;
                bail!(
                    "{} did not start within 60 s; {}",
                    kind.name(),
                    server.log_tail()
                );
            }
        };
        let line = line.trim();
        let port = match kind {
            Kind::Moim => line
                .strip_prefix("moim listening on http://")
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| p.parse().ok()),
            _ => line.strip_prefix("listening ").and_then(|p| p.parse().ok()),
        };
        match port {
            Some(p) => server.port = p,
            None => {
                server.stop().await;
                bail!(
                    "{}: unexpected first line {line:?}; {}",
                    kind.name(),
                    server.log_tail()
                );
            }
        }
        Ok(server)
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("server log tail:\n{}", tail.join("\n"))
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after 10 s; always reaps the process.
    pub async fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        // SAFETY: plain syscall on our own child's pid.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User + system CPU time of a process (all its threads), in microseconds.
pub fn cpu_us(pid: u32) -> Option<u64> {
    cpu_split_us(pid).map(|(user, sys)| user + sys)
}

/// User and system (kernel) CPU time of a process (all its threads), in microseconds.
pub fn cpu_split_us(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some((utime * 1_000_000 / hz, stime * 1_000_000 / hz))
}

/// CPU time of every thread of a process, nanoseconds, from `/proc/PID/task/*/schedstat`:
/// finer than `/proc/PID/stat`'s clock ticks, which matters for processes using a few percent.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            total += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(total)
}

/// A `/proc/PID/status` field in kB (VmRSS, VmHWM, …).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Busy CPU time of the whole machine (all cores, every process), in microseconds.
pub fn machine_busy_us() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(busy * 1_000_000 / hz)
}

pub fn self_pid() -> u32 {
    std::process::id()
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit on a stack struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        let want = lim.rlim_max.min(1_048_576);
        if lim.rlim_cur < want {
            let new = libc::rlimit {
                rlim_cur: want,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &new) == 0 {
                return want;
            }
        }
        lim.rlim_cur
    }
}

/// The `moim_session=…` pair a sign-up or log-in answer sets, ready for a `Cookie` header.
pub fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("moim_session="))
        .map(|v| v.split(';').next().unwrap_or(v).to_string())
}

/// An account with an API token on a fresh moim, plus helpers to create rooms.
pub struct MoimSetup {
    http: reqwest::Client,
    base: String,
    pub token: String,
}

impl MoimSetup {
    pub async fn new(port: u16) -> anyhow::Result<MoimSetup> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let base = format!("http://127.0.0.1:{port}/api/v1");
        let resp = http
            .post(format!("{base}/auth/signup"))
            .json(&json!({"username": "bench", "password": "bench-password-1"}))
            .send()
            .await?;
        let status = resp.status();
        let cookie = session_cookie(&resp);
        let body = resp.text().await.unwrap_or_default();
        let cookie = match (status.as_u16(), cookie) {
            (201, Some(c)) => c,
            _ => bail!("moim signup answered {status}: {body}"),
        };
        let resp = http
            .post(format!("{base}/me/tokens"))
            .header("cookie", cookie)
            .json(&json!({"name": "bench"}))
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let token = body["token"]
            .as_str()
            .ok_or_else(|| anyhow!("moim token creation answered {status}: {body}"))?
            .to_string();
        Ok(MoimSetup { http, base, token })
    }

    pub async fn create_room(&self, slug: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/rooms", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"slug": slug, "title": format!("bench {slug}")}))
            .send()
            .await?;
        let status = resp.status();
        if status.as_u16() != 201 {
            let body = resp.text().await.unwrap_or_default();
            bail!("creating room {slug}: {status}: {body}");
        }
        Ok(())
    }
}
