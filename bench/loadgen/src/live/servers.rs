//! Starting moim and nginx-rtmp for the live benchmark, and reading their CPU and memory.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::server::{cpu_ns, status_kb};

const NGINX_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A server under test.
pub struct Srv {
    pub name: &'static str,
    child: Child,
    /// Processes whose CPU and memory count (nginx: master and workers).
    pub pids: Vec<u32>,
    pub http: String,
    pub rtmp: String,
    /// Stream name → playlist path on `http`.
    pub keys: Vec<String>,
    pub playlist: Box<dyn Fn(&str) -> String + Send + Sync>,
}

impl Drop for Srv {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Srv {
    pub fn cpu_us(&self) -> u64 {
        self.pids.iter().filter_map(|p| cpu_ns(*p)).sum::<u64>() / 1000
    }
    pub fn rss_kb(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|p| status_kb(*p, "VmRSS"))
            .sum()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub async fn start_moim(bin: &Path, dir: &Path, streams: usize) -> anyhow::Result<Srv> {
    start_moim_with(bin, dir, streams, &[]).await
}

/// [`start_moim`] with more flags.
pub async fn start_moim_with(
    bin: &Path,
    dir: &Path,
    streams: usize,
    extra: &[&str],
) -> anyhow::Result<Srv> {
    let data = dir.join("moim");
    std::fs::create_dir_all(&data)?;
    let log = std::fs::File::create(dir.join("moim.log"))?;
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rtmp-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--max-broadcasts", "50", "--shutdown-grace-s", "3"])
        .args(["--login-rate-per-min", "1000"])
        .env("MOIM_WEBRTC_LISTEN", "127.0.0.1:0")
        .args(extra)
        // Every simulated viewer connects from 127.0.0.1.
        .args(["--max-connections-per-ip", "1000000"])
        .env("RUST_LOG", "warn")
        .env_remove("MOIM_CONFIG")
        .current_dir(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting moim")?;
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let (mut l1, mut l2) = (String::new(), String::new());
    out.read_line(&mut l1)?;
    out.read_line(&mut l2)?;
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let http = l1
        .trim()
        .strip_prefix("moim listening on ")
        .context("moim's first line")?
        .to_string();
    let rtmp = l2
        .trim()
        .strip_prefix("moim rtmp on ")
        .context("moim's second line")?
        .trim_end_matches("/live")
        .to_string();
    // An owner, rooms and their keys.
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let r = client
        .post(format!("{http}/api/v1/auth/signup"))
        .json(&json!({"username": "bench", "password": "bench password"}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("moim signup: {}", r.status());
    }
    let mut keys = Vec::new();
    for i in 0..streams {
        let slug = format!("live-{i}");
        client
            .post(format!("{http}/api/v1/rooms"))
            .json(&json!({"slug": slug, "title": slug}))
            .send()
            .await?
            .error_for_status()?;
        // Passthrough, recording off: the same work nginx does (nginx records nothing either).
        client
            .patch(format!("{http}/api/v1/rooms/{slug}"))
            .json(&json!({"record_broadcasts": false}))
            .send()
            .await?
            .error_for_status()?;
        let k: serde_json::Value = client
            .get(format!("{http}/api/v1/rooms/{slug}/stream-key"))
            .send()
            .await?
            .json()
            .await?;
        keys.push(k["stream_key"].as_str().context("stream key")?.to_string());
    }
    let pid = child.id();
    Ok(Srv {
        name: "moim",
        child,
        pids: vec![pid],
        http: http.clone(),
        rtmp,
        keys,
        playlist: Box::new(|stream: &str| stream.to_string()),
    })
}

pub async fn start_nginx(dir: &Path, streams: usize) -> anyhow::Result<Srv> {
    if !Path::new(NGINX_MODULE).exists() {
        bail!("nginx's RTMP module is missing: apt-get install nginx-light libnginx-mod-rtmp");
    }
    let root = dir.join("nginx");
    let hls = root.join("hls");
    std::fs::create_dir_all(root.join("logs"))?;
    std::fs::create_dir_all(&hls)?;
    let (http_port, rtmp_port) = (free_port(), free_port());
    let conf = format!(
        r#"load_module {NGINX_MODULE};
daemon off;
master_process on;
worker_processes auto;
error_log {root}/logs/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 4096; }}
rtmp {{
  server {{
    listen 127.0.0.1:{rtmp_port};
    chunk_size 4096;
    application live {{
      live on;
      record off;
      hls on;
      hls_path {hls};
      hls_fragment 2s;
      hls_playlist_length 12s;
    }}
  }}
}}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path {root}/tmp;
  types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
  server {{
    listen 127.0.0.1:{http_port};
    location /hls/ {{
      alias {hls}/;
      add_header Cache-Control no-cache;
      add_header Access-Control-Allow-Origin *;
    }}
  }}
}}
"#,
        root = root.display(),
        hls = hls.display(),
    );
    let conf_path = root.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let log = std::fs::File::create(dir.join("nginx.log"))?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&root)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting nginx")?;
    // Wait for the worker, then collect master + workers.
    let master = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pids = vec![master];
    while Instant::now() < deadline {
        let kids = children_of(master);
        if !kids.is_empty() && std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok() {
            pids.extend(kids);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if pids.len() < 2 {
        bail!(
            "nginx did not start; see {}",
            dir.join("nginx.log").display()
        );
    }
    let keys = (0..streams).map(|i| format!("s{i}")).collect();
    Ok(Srv {
        name: "nginx-rtmp",
        child,
        pids,
        http: format!("http://127.0.0.1:{http_port}"),
        rtmp: format!("rtmp://127.0.0.1:{rtmp_port}"),
        keys,
        playlist: Box::new(|stream: &str| format!("/hls/{stream}.m3u8")),
    })
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Installs e2e/'s packages (Playwright) unless they are there: the browser-driven benchmarks
/// run its scripts.
pub fn ensure_e2e(e2e: &Path) -> anyhow::Result<()> {
    if !e2e.join("node_modules/playwright-core").exists() {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(e2e)
            .status()
            .context("running npm")?;
        anyhow::ensure!(st.success(), "npm ci in e2e/ failed");
    }
    Ok(())
}
