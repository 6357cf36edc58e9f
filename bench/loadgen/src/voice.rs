//! Voice: many members in one room's voice chat, each a str0m client (the WebRTC library moim
//! itself uses) on its own UDP socket, sending a 20 ms Opus-sized packet every 20 ms with an
//! RFC 6464 audio level: a few speak loudly at a time (the speakers change every two seconds),
//! the rest send quiet packets as a microphone in a quiet room does. moim forwards the members
//! who hold its eight lines to everyone else. Prints moim's CPU over the measured window, the
//! packets forwarded per second, loss against what the lines should have carried, and CPU per
//! forwarded packet.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::{Candidate, Rtc};

use crate::live::servers::start_moim_with;
use crate::rtc_peer::UdpPeer;

/// Receiving lines a voice client offers (moim's `VOICE_LINES`).
const LINES: usize = 8;

#[derive(Args, Clone, Debug)]
pub struct VoiceOpts {
    /// moim binary; default: `cargo build --release -p moim`.
    #[arg(long)]
    pub moim_bin: Option<PathBuf>,
    /// Members in the room's voice chat.
    #[arg(long, default_value_t = 50)]
    pub members: usize,
    /// Members speaking loudly at any moment.
    #[arg(long, default_value_t = 3)]
    pub speakers: usize,
    /// Seconds measured (after everyone connected and 2 s of warm-up).
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Working directory (default: a new one under the temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

struct Member {
    peer: UdpPeer,
    mic: Mid,
}

impl Member {
    fn say(&mut self, n: u64, level: i8) -> anyhow::Result<()> {
        let w = self.peer.rtc.writer(self.mic).context("a microphone")?;
        let pt = w.payload_params().next().context("Opus")?.pt();
        let time = MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ);
        // 20 ms CELT frames of a typical voice bitrate (~24 kbit/s): 60 bytes.
        let mut packet = vec![0xf8u8];
        packet.resize(60, (n % 251) as u8);
        w.audio_level(level, level > -50)
            .write(pt, Instant::now(), time, packet)?;
        Ok(())
    }
}

pub async fn run(o: VoiceOpts, moim_bin: PathBuf) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("moim-bench-voice-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let srv = start_moim_with(&moim_bin, &dir, 0, &[]).await?;
    let http = srv.http.clone();
    let host = reqwest::Client::builder().cookie_store(true).build()?;
    signup(&host, &http, "voicehost").await?;
    host.post(format!("{http}/api/v1/rooms"))
        .header("origin", &http)
        .json(&json!({"slug": "voice", "title": "voice"}))
        .send()
        .await?
        .error_for_status()?;
    let mut members = Vec::new();
    for i in 0..o.members {
        let client = reqwest::Client::builder().cookie_store(true).build()?;
        signup(&client, &http, &format!("talker{i}")).await?;
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(socket.local_addr()?, "udp")?);
        let mut api = rtc.sdp_api();
        let mic = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        for _ in 0..LINES {
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let (offer, pending) = api.apply().context("an offer")?;
        let r = client
            .post(format!("{http}/api/v1/rooms/voice/voice"))
            .header("origin", &http)
            .header("content-type", "application/sdp")
            .body(offer.to_sdp_string())
            .send()
            .await?;
        if r.status().as_u16() != 201 {
            bail!("joining voice: {} {}", r.status(), r.text().await?);
        }
        let answer = SdpAnswer::from_sdp_string(&r.text().await?)?;
        rtc.sdp_api().accept_answer(pending, answer)?;
        members.push(Member {
            peer: UdpPeer::new(rtc, socket, None),
            mic,
        });
    }
    let pids = srv.pids.clone();
    let cpu_of = move || -> u64 {
        pids.iter()
            .filter_map(|p| crate::server::cpu_ns(*p))
            .sum::<u64>()
            / 1000
    };
    let (seconds, speakers) = (o.seconds, o.speakers);
    let figures = tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, f64, u64, u64)> {
        let mut buf = vec![0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(30);
        while !members.iter().all(|m| m.peer.connected) {
            if Instant::now() > deadline {
                let n = members.iter().filter(|m| m.peer.connected).count();
                bail!("{n} of {} members connected within 30 s", members.len());
            }
            for m in &mut members {
                m.peer.pump(&mut buf)?;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let start = Instant::now();
        let warm = start + Duration::from_secs(2);
        let end = warm + Duration::from_secs(seconds);
        let (mut cpu0, mut rx0, mut measured_from) = (0u64, 0u64, warm);
        let mut n = 0u64;
        let mut next = start;
        let mut sent_measured = 0u64;
        let mut warm_done = false;
        while Instant::now() < end {
            let now = Instant::now();
            if !warm_done && now >= warm {
                warm_done = true;
                cpu0 = cpu_of();
                rx0 = members.iter().map(|m| m.peer.frames).sum();
                measured_from = now;
            }
            if now >= next {
                // The speakers change every two seconds (100 packets).
                let first = (n / 100) as usize * speakers;
                let len = members.len();
                for (i, m) in members.iter_mut().enumerate() {
                    let loud = (i + len - first % len) % len < speakers;
                    m.say(n, if loud { -20 } else { -80 })?;
                }
                if warm_done {
                    sent_measured += members.len() as u64;
                }
                n += 1;
                next += Duration::from_millis(20);
            }
            for m in &mut members {
                m.peer.pump(&mut buf)?;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let secs = measured_from.elapsed().as_secs_f64();
        let cpu = (cpu_of() - cpu0) as f64 / 1e6;
        let rx: u64 = members.iter().map(|m| m.peer.frames).sum::<u64>() - rx0;
        Ok((secs, cpu, rx, sent_measured))
    })
    .await??;
    drop(srv);
    let (secs, cpu_s, rx, sent) = figures;
    // Each packet of a member holding a line reaches everyone else: lines × (members − 1)
    // per 20 ms at most (every line is held: there are more members than lines).
    let lines = LINES.min(o.members);
    let expected = (sent as f64 / o.members as f64) * lines as f64 * (o.members - 1) as f64;
    let pps = rx as f64 / secs;
    println!();
    println!(
        "voice: {} members, {} speaking at a time, {:.0} s measured",
        o.members, o.speakers, secs
    );
    println!("  moim CPU                 {:.3} cores", cpu_s / secs);
    println!("  forwarded packets        {pps:.0} /s");
    println!(
        "  delivered of the lines'  {:.2} % ({rx} of {expected:.0})",
        100.0 * rx as f64 / expected.max(1.0)
    );
    println!(
        "  CPU per forwarded packet {:.2} µs",
        cpu_s * 1e6 / (rx as f64).max(1.0)
    );
    println!("  goal: 50 members on at most 0.25 core");
    Ok(())
}

async fn signup(client: &reqwest::Client, http: &str, name: &str) -> anyhow::Result<()> {
    let r = client
        .post(format!("{http}/api/v1/auth/signup"))
        .header("origin", http)
        .json(&json!({"username": name, "password": "bench password"}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("signup {name}: {} {}", r.status(), r.text().await?);
    }
    Ok(())
}
