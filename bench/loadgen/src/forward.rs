//! Forwarding cost: one WHIP publisher sending 1.5 Mbit/s of video (30 frames a second, ~5
//! packets each) and Opus audio, and 1, 50, 200 WHEP viewers, each a str0m client (the WebRTC
//! library moim uses: real DTLS-SRTP, RTCP and NACKs) on its own UDP socket, joining from their
//! own loopback addresses. For each count: moim's CPU while forwarding, the streams it forwards
//! per core, and the frames the viewers missed.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::{Candidate, Rtc};

use crate::live::servers::start_moim_with;
use crate::rtc_peer::UdpPeer;

#[derive(Args, Clone, Debug)]
pub struct ForwardOpts {
    /// moim binary; default: `cargo build --release -p moim`.
    #[arg(long)]
    pub moim_bin: Option<PathBuf>,
    /// Viewer counts to measure, comma-separated.
    #[arg(long, default_value = "1,50,200")]
    pub subscribers: String,
    /// Seconds measured per count (after everyone connected and 2 s of warm-up).
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Video bitrate of the publisher, kbit/s.
    #[arg(long, default_value_t = 1500)]
    pub kbps: u64,
    /// Working directory (default: a new one under the temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

struct Client {
    peer: UdpPeer,
    audio: Mid,
    video: Mid,
}

impl Client {
    /// A sendonly (publisher) or recvonly (viewer) client with audio and video, and its offer.
    fn new(
        ip: Ipv4Addr,
        send: bool,
    ) -> anyhow::Result<(Client, String, str0m::change::SdpPendingOffer)> {
        let socket = UdpSocket::bind((ip, 0))?;
        socket.set_nonblocking(true)?;
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(socket.local_addr()?, "udp")?);
        let dir = if send {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        };
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, dir, None, None, None);
        let video = api.add_media(MediaKind::Video, dir, None, None, None);
        let (offer, pending) = api.apply().context("an offer")?;
        let c = Client {
            peer: UdpPeer::new(rtc, socket, Some(video)),
            audio,
            video,
        };
        Ok((c, offer.to_sdp_string(), pending))
    }

    fn send(&mut self, kind: MediaKind, n: u64, data: Vec<u8>) -> anyhow::Result<()> {
        let mid = if kind == MediaKind::Audio {
            self.audio
        } else {
            self.video
        };
        let w = self.peer.rtc.writer(mid).context("a sending m-line")?;
        let pt = w.payload_params().next().context("a codec")?.pt();
        let time = if kind == MediaKind::Audio {
            MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ)
        } else {
            MediaTime::new(n * 3000, Frequency::NINETY_KHZ)
        };
        w.write(pt, Instant::now(), time, data)?;
        Ok(())
    }
}

/// Runs the clients until all are connected (at most 30 s).
fn connect(
    mut publisher: Client,
    mut viewers: Vec<Client>,
) -> anyhow::Result<(Client, Vec<Client>)> {
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(publisher.peer.connected && viewers.iter().all(|v| v.peer.connected)) {
        if Instant::now() > deadline {
            let c = viewers.iter().filter(|v| v.peer.connected).count();
            bail!("{c} of {} viewers connected within 30 s", viewers.len());
        }
        publisher.peer.pump(&mut buf)?;
        for v in &mut viewers {
            v.peer.pump(&mut buf)?;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((publisher, viewers))
}

/// Posts an offer from `ip` (its own address, so each viewer has its own offer allowance).
async fn post(
    http: &str,
    path: &str,
    ip: Ipv4Addr,
    key: Option<&str>,
    sdp: String,
) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .build()?;
    let mut req = client
        .post(format!("{http}{path}"))
        .header("content-type", "application/sdp")
        .body(sdp);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let r = req.send().await?;
    let st = r.status().as_u16();
    let body = r.text().await?;
    if st != 201 {
        bail!("{path}: {st} {body}");
    }
    Ok(body)
}

/// `--subscribers`: counts, comma-separated.
pub fn counts(list: &str) -> anyhow::Result<Vec<usize>> {
    list.split(',')
        .map(|s| s.trim().parse().context("--subscribers takes numbers"))
        .collect()
}

pub async fn run(o: ForwardOpts, moim_bin: PathBuf) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("moim-bench-forward-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let counts = counts(&o.subscribers)?;
    let mut rows = Vec::new();
    for &n in &counts {
        // A fresh server per count, so each is measured alone.
        let srv = start_moim_with(
            &moim_bin,
            &dir.join(format!("n{n}")),
            1,
            &["--webrtc-max-viewers-per-room", "1000"],
        )
        .await?;
        let http = srv.http.clone();
        let key = srv.keys[0].clone();
        let (mut publisher, offer, pending) = Client::new(Ipv4Addr::new(127, 0, 0, 1), true)?;
        let answer = post(
            &http,
            "/api/v1/rooms/live-0/whip",
            Ipv4Addr::new(127, 0, 0, 1),
            Some(&key),
            offer,
        )
        .await?;
        publisher
            .peer
            .rtc
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
        let mut viewers: Vec<Client> = Vec::new();
        // In batches, each connected before the next (moim takes 64 sessions connecting at once).
        for i in 0..n {
            let ip = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250) as u8 + 2);
            let (mut v, offer, pending) = Client::new(ip, false)?;
            let answer = post(&http, "/api/v1/rooms/live-0/whep", ip, None, offer).await?;
            v.peer
                .rtc
                .sdp_api()
                .accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
            viewers.push(v);
            if viewers.len().is_multiple_of(40) || i + 1 == n {
                let (p, vs) =
                    tokio::task::spawn_blocking(move || connect(publisher, viewers)).await??;
                publisher = p;
                viewers = vs;
            }
        }
        let pids = srv.pids.clone();
        let cpu_of = move || -> u64 {
            pids.iter()
                .filter_map(|p| crate::server::cpu_us(*p).map(|us| us * 1000))
                .sum::<u64>()
                / 1000
        };
        let (seconds, kbps) = (o.seconds, o.kbps);
        let row = tokio::task::spawn_blocking(move || -> anyhow::Result<(usize, f64, u64, u64)> {
            let mut buf = vec![0u8; 2048];
            let frame_bytes = (kbps * 1000 / 8 / 30) as usize;
            let start = Instant::now();
            let warm = start + Duration::from_secs(2);
            let end = warm + Duration::from_secs(seconds);
            let (mut cpu0, mut got0, mut sent) = (0u64, 0u64, 0u64);
            let mut measuring = false;
            let (mut video_n, mut audio_n) = (0u64, 0u64);
            while Instant::now() < end {
                let now = Instant::now();
                if !measuring && now >= warm {
                    measuring = true;
                    cpu0 = cpu_of();
                    got0 = viewers.iter().map(|v| v.peer.frames).sum();
                }
                let elapsed = now.duration_since(start).as_millis() as u64;
                while video_n * 1000 / 30 <= elapsed {
                    // A keyframe a second (VP8: bit 0 of the first byte clear), then deltas.
                    let mut frame = vec![(video_n % 251) as u8 | 1; frame_bytes];
                    if video_n % 30 == 0 {
                        frame[0] = 0x10;
                    }
                    publisher.send(MediaKind::Video, video_n, frame)?;
                    if measuring {
                        sent += 1;
                    }
                    video_n += 1;
                }
                while audio_n * 20 <= elapsed {
                    publisher.send(MediaKind::Audio, audio_n, vec![0xf8; 80])?;
                    audio_n += 1;
                }
                publisher.peer.pump(&mut buf)?;
                for v in &mut viewers {
                    v.peer.pump(&mut buf)?;
                }
                std::thread::sleep(Duration::from_micros(300));
            }
            // What is still in flight arrives.
            let settle = Instant::now() + Duration::from_millis(500);
            while Instant::now() < settle {
                publisher.peer.pump(&mut buf)?;
                for v in &mut viewers {
                    v.peer.pump(&mut buf)?;
                }
                std::thread::sleep(Duration::from_micros(300));
            }
            let cpu = cpu_of().saturating_sub(cpu0) as f64 / 1e6 / (seconds as f64 + 0.5);
            let got: u64 = viewers.iter().map(|v| v.peer.frames).sum::<u64>() - got0;
            Ok((viewers.len(), cpu, got, sent))
        })
        .await??;
        drop(srv);
        rows.push(row);
    }
    println!();
    println!(
        "forwarding: one {} kbit/s video + Opus publisher, {} s per count",
        o.kbps, o.seconds
    );
    println!(
        "{:>12} {:>10} {:>18} {:>16} {:>10}",
        "viewers", "moim CPU", "streams per core", "frames missed", "Mbit/s out"
    );
    for (n, cpu, got, sent) in rows {
        let expected = sent * n as u64;
        let missed = 100.0 * (1.0 - got as f64 / expected.max(1) as f64);
        println!(
            "{n:>12} {:>9.3}c {:>18.0} {:>15.2}% {:>10.1}",
            cpu,
            n as f64 / cpu.max(1e-9),
            missed.max(0.0),
            n as f64 * o.kbps as f64 / 1000.0
        );
    }
    println!("goal: at least 600 forwarded streams per core (mediasoup: about 500)");
    Ok(())
}
