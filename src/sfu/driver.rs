//! The SFU's driver: one task owning the UDP socket and the core, fed commands by the HTTP
//! edge over a channel (offers, removals), datagrams by the socket, and deadlines by the clock.
//! All peers share the one socket; the core tells them apart by ICE credentials and address.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::core::{Core, Ending, Happening, Limits, PeerId, Role, SfuError, VoiceMember};

/// A voice member's session: its id, the SDP answer, and its line if it got one.
type Joined = (PeerId, String, Option<usize>);

enum Command {
    Offer {
        room: String,
        role: Role,
        sdp: String,
        reply: oneshot::Sender<Result<(PeerId, String), SfuError>>,
    },
    Remove {
        id: String,
        reply: oneshot::Sender<bool>,
    },
    RemoveRoom {
        room: String,
        only: Option<Role>,
    },
    Peer {
        id: String,
        reply: oneshot::Sender<Option<(String, Role)>>,
    },
    Counts {
        room: String,
        reply: oneshot::Sender<(bool, usize)>,
    },
    Ufrag {
        id: String,
        reply: oneshot::Sender<Option<String>>,
    },
    OfferVoice {
        room: String,
        user_id: i64,
        name: String,
        sdp: String,
        reply: oneshot::Sender<Result<Joined, SfuError>>,
    },
    Mute {
        id: String,
        muted: bool,
        reply: oneshot::Sender<bool>,
    },
    ModerateVoice {
        room: String,
        name: String,
        mute: Option<bool>,
        reply: oneshot::Sender<usize>,
    },
    VoiceMembers {
        room: String,
        reply: oneshot::Sender<Vec<VoiceMember>>,
    },
    Renegotiate {
        id: String,
        sdp: String,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    RestartIce {
        id: String,
        ufrag: String,
        pwd: String,
        reply: oneshot::Sender<Result<(String, String), SfuError>>,
    },
    Ending {
        id: String,
        reply: oneshot::Sender<Option<Ending>>,
    },
    Camera {
        id: String,
        on: bool,
        reply: oneshot::Sender<Result<Option<usize>, SfuError>>,
    },
}

/// What the ICE-TCP connections tell the media task.
enum TcpNews {
    /// A client connected from `from`; what goes to it is sent on `tx`.
    Open {
        from: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    },
    /// A framed packet (RFC 4571) from `from`.
    Packet {
        from: SocketAddr,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    Closed {
        from: SocketAddr,
    },
}

/// The longest framed packet taken on an ICE-TCP connection (STUN, DTLS and RTP packets are
/// under 1,500 bytes); a longer one ends the connection.
const MAX_TCP_PACKET: usize = 4096;
/// An ICE-TCP connection with nothing from its client for this long is closed (a live one
/// sends consent checks every few seconds).
const TCP_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads RFC 4571 frames (a 2-byte length, then the packet) off one connection to the media
/// task, and writes what the task sends back framed the same way. Ends on EOF, a bad frame,
/// idleness or shutdown.
async fn serve_tcp(
    stream: tokio::net::TcpStream,
    from: SocketAddr,
    to: SocketAddr,
    news: mpsc::Sender<TcpNews>,
    shutdown: CancellationToken,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    if news.send(TcpNews::Open { from, tx }).await.is_err() {
        return;
    }
    let writer = async move {
        while let Some(packet) = rx.recv().await {
            let mut framed = Vec::with_capacity(packet.len() + 2);
            framed.extend_from_slice(&(packet.len() as u16).to_be_bytes());
            framed.extend_from_slice(&packet);
            if wr.write_all(&framed).await.is_err() {
                break;
            }
        }
    };
    let reader = async {
        let mut len = [0u8; 2];
        loop {
            match tokio::time::timeout(TCP_IDLE, rd.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => break,
            }
            let n = u16::from_be_bytes(len) as usize;
            if n == 0 || n > MAX_TCP_PACKET {
                tracing::debug!(%from, n, "ICE-TCP connection closed: a frame out of bounds");
                break;
            }
            let mut bytes = vec![0u8; n];
            match tokio::time::timeout(TCP_IDLE, rd.read_exact(&mut bytes)).await {
                Ok(Ok(_)) => {}
                _ => break,
            }
            // A full queue drops the packet (as a full UDP buffer would).
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                news.try_send(TcpNews::Packet { from, to, bytes })
            {
                break;
            }
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
        _ = shutdown.cancelled() => {}
    }
    let _ = news.send(TcpNews::Closed { from }).await;
}

/// How long the HTTP edge waits for the media task before answering 503.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The SFU as the rest of moim uses it; cheap to clone.
#[derive(Clone)]
pub struct Sfu {
    tx: mpsc::Sender<Command>,
    /// The media socket's address.
    pub local: SocketAddr,
}

fn gone() -> SfuError {
    SfuError::Unavailable("it is shutting down or too busy to answer".into())
}

impl Sfu {
    /// Binds the media socket and starts the task; it ends when `shutdown` is cancelled.
    /// `advertise`: the addresses clients reach the socket at (its port is added).
    pub async fn start(
        listen: SocketAddr,
        advertise: Vec<IpAddr>,
        tcp_listen: Option<SocketAddr>,
        limits: Limits,
        shutdown: CancellationToken,
        on_happening: impl Fn(Happening) + Send + 'static,
    ) -> anyhow::Result<Sfu> {
        let socket = UdpSocket::bind(listen).await?;
        let local = socket.local_addr()?;
        let mut candidates: Vec<SocketAddr> = advertise
            .into_iter()
            .map(|ip| SocketAddr::new(ip, local.port()))
            .collect();
        if candidates.is_empty() {
            let ip = if local.ip().is_unspecified() {
                tracing::warn!("WebRTC media socket on all addresses without webrtc_advertise: answers name 127.0.0.1, which only this machine reaches");
                IpAddr::from([127, 0, 0, 1])
            } else {
                local.ip()
            };
            candidates.push(SocketAddr::new(ip, local.port()));
        }
        let (tx, mut rx) = mpsc::channel::<Command>(256);
        let mut core = Core::new(candidates.clone(), limits);
        // ICE-TCP: a listener whose connections each carry one client's packets.
        let (tcp_tx, mut tcp_rx) = mpsc::channel::<TcpNews>(4096);
        if let Some(at) = tcp_listen {
            let listener = tokio::net::TcpListener::bind(at).await?;
            let bound = listener.local_addr()?;
            let tcp_candidates: Vec<SocketAddr> = candidates
                .iter()
                .map(|c| SocketAddr::new(c.ip(), bound.port()))
                .collect();
            core = core.with_tcp(tcp_candidates.clone());
            let (shutdown, max) = (shutdown.clone(), limits.peers);
            let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            tokio::spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        a = listener.accept() => a,
                        _ = shutdown.cancelled() => break,
                    };
                    let Ok((stream, from)) = accepted else {
                        continue;
                    };
                    // At most one connection per possible peer.
                    if open.load(std::sync::atomic::Ordering::Relaxed) >= max {
                        continue;
                    }
                    // The candidate the client dialled, as the answer named it.
                    let to = tcp_candidates
                        .iter()
                        .find(|c| c.is_ipv4() == from.is_ipv4())
                        .copied()
                        .unwrap_or(bound);
                    let (news, shutdown, open) = (tcp_tx.clone(), shutdown.clone(), open.clone());
                    open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::spawn(async move {
                        serve_tcp(stream, from, to, news, shutdown).await;
                        open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    });
                }
            });
            tracing::info!(%bound, "WebRTC ICE-TCP listening");
        } else {
            drop(tcp_tx);
        }
        let mut tcp_conns: std::collections::HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> =
            std::collections::HashMap::new();
        let mut tcp_on = tcp_listen.is_some();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut out = Vec::new();
            let mut next = Instant::now();
            loop {
                let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(next));
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    cmd = rx.recv() => {
                        let Some(cmd) = cmd else { break };
                        let now = Instant::now();
                        match cmd {
                            Command::Offer { room, role, sdp, reply } => {
                                let _ = reply.send(core.offer(now, &room, role, &sdp));
                            }
                            Command::Remove { id, reply } => {
                                let _ = reply.send(core.remove(&id));
                            }
                            Command::RemoveRoom { room, only } => {
                                core.remove_room(&room, only);
                            }
                            Command::Peer { id, reply } => {
                                let _ = reply.send(core.peer(&id).map(|(r, role)| (r.to_string(), role)));
                            }
                            Command::Counts { room, reply } => {
                                let _ = reply.send((core.has_publisher(&room), core.viewers(&room)));
                            }
                            Command::Ufrag { id, reply } => {
                                let _ = reply.send(core.ufrag(&id).map(str::to_string));
                            }
                            Command::OfferVoice { room, user_id, name, sdp, reply } => {
                                let _ = reply.send(core.offer_voice(now, &room, user_id, &name, &sdp));
                            }
                            Command::Mute { id, muted, reply } => {
                                let _ = reply.send(core.mute(&id, muted));
                            }
                            Command::ModerateVoice { room, name, mute, reply } => {
                                let _ = reply.send(core.moderate_voice(&room, &name, mute));
                            }
                            Command::VoiceMembers { room, reply } => {
                                let _ = reply.send(core.voice_members(&room));
                            }
                            Command::Renegotiate { id, sdp, reply } => {
                                let _ = reply.send(core.renegotiate(now, &id, &sdp));
                            }
                            Command::RestartIce { id, ufrag, pwd, reply } => {
                                let _ = reply.send(core.restart_ice(now, &id, &ufrag, &pwd));
                            }
                            Command::Ending { id, reply } => {
                                let _ = reply.send(core.ending(&id));
                            }
                            Command::Camera { id, on, reply } => {
                                let _ = reply.send(core.camera(&id, on));
                            }
                        }
                    }
                    got = socket.recv_from(&mut buf) => match got {
                        // The address the client sent to, as the answers named it: on a socket
                        // bound to all addresses or behind NAT the bound one is not it, and ICE
                        // takes a check only for a candidate of its own.
                        Ok((n, source)) => {
                            let to = candidates
                                .iter()
                                .find(|c| c.is_ipv4() == source.is_ipv4())
                                .copied()
                                .unwrap_or(local);
                            core.receive(Instant::now(), source, to, &buf[..n])
                        }
                        Err(e) => tracing::debug!(error = %e, "WebRTC socket read failed"),
                    },
                    news = tcp_rx.recv(), if tcp_on => match news {
                        Some(TcpNews::Open { from, tx }) => { tcp_conns.insert(from, tx); }
                        Some(TcpNews::Packet { from, to, bytes }) => {
                            core.receive_tcp(Instant::now(), from, to, &bytes)
                        }
                        Some(TcpNews::Closed { from }) => { tcp_conns.remove(&from); }
                        None => tcp_on = false,
                    },
                    _ = sleep => {}
                }
                next = core.poll(Instant::now(), &mut out);
                // Never waits: a full send buffer drops the datagram (RTP is made for loss, and
                // NACK/RTX asks again) rather than stalling every peer.
                for d in out.drain(..) {
                    if d.tcp {
                        if let Some(conn) = tcp_conns.get(&d.destination) {
                            let _ = conn.try_send(d.contents);
                        }
                        continue;
                    }
                    if let Err(e) = socket.try_send_to(&d.contents, d.destination) {
                        tracing::debug!(error = %e, to = %d.destination, "WebRTC send dropped");
                    }
                }
                for h in core.happenings() {
                    on_happening(h);
                }
            }
            tracing::debug!("WebRTC media task ended");
        });
        Ok(Sfu { tx, local })
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        tokio::time::timeout(ASK_TIMEOUT, async {
            self.tx.send(make(reply)).await.ok()?;
            rx.await.ok()
        })
        .await
        .ok()
        .flatten()
    }

    /// Takes a publisher's (WHIP) or viewer's (WHEP) offer: the session's id and the answer.
    pub async fn offer(
        &self,
        room: &str,
        role: Role,
        sdp: String,
    ) -> Result<(PeerId, String), SfuError> {
        self.ask(|reply| Command::Offer {
            room: room.to_string(),
            role,
            sdp,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(gone()))
    }

    /// Ends a session; false when there is none by that id.
    pub async fn remove(&self, id: &str) -> bool {
        self.ask(|reply| Command::Remove {
            id: id.to_string(),
            reply,
        })
        .await
        .unwrap_or(false)
    }

    /// Ends a room's sessions (or only its publisher's).
    pub async fn remove_room(&self, room: &str, only: Option<Role>) {
        let send = self.tx.send(Command::RemoveRoom {
            room: room.to_string(),
            only,
        });
        if tokio::time::timeout(ASK_TIMEOUT, send).await.is_err() {
            tracing::warn!(
                room,
                "the WebRTC media task did not take a room's removal in time"
            );
        }
    }

    /// The ICE username fragment the session's client offered.
    pub async fn ufrag(&self, id: &str) -> Option<String> {
        self.ask(|reply| Command::Ufrag {
            id: id.to_string(),
            reply,
        })
        .await
        .flatten()
    }

    /// The room and role of a session.
    pub async fn peer(&self, id: &str) -> Option<(String, Role)> {
        self.ask(|reply| Command::Peer {
            id: id.to_string(),
            reply,
        })
        .await
        .flatten()
    }

    /// A member joins the room's voice chat: the session's id, the answer, the member's line.
    pub async fn offer_voice(
        &self,
        room: &str,
        user_id: i64,
        name: &str,
        sdp: String,
    ) -> Result<Joined, SfuError> {
        self.ask(|reply| Command::OfferVoice {
            room: room.to_string(),
            user_id,
            name: name.to_string(),
            sdp,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(gone()))
    }

    /// Mutes or unmutes a voice session; false when there is none.
    pub async fn mute(&self, id: &str, muted: bool) -> bool {
        self.ask(|reply| Command::Mute {
            id: id.to_string(),
            muted,
            reply,
        })
        .await
        .unwrap_or(false)
    }

    /// A moderator mutes, unmutes or (`None`) removes a member of a room's voice chat, by name:
    /// sessions touched.
    pub async fn moderate_voice(&self, room: &str, name: &str, mute: Option<bool>) -> usize {
        self.ask(|reply| Command::ModerateVoice {
            room: room.to_string(),
            name: name.to_string(),
            mute,
            reply,
        })
        .await
        .unwrap_or(0)
    }

    /// A new offer for a session (renegotiation, ICE restart): the answer.
    pub async fn renegotiate(&self, id: &str, sdp: String) -> Result<String, SfuError> {
        self.ask(|reply| Command::Renegotiate {
            id: id.to_string(),
            sdp,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(gone()))
    }

    /// An ICE restart of a WHIP/WHEP session with the client's new credentials: moim's new
    /// `(ufrag, pwd)`.
    pub async fn restart_ice(
        &self,
        id: &str,
        ufrag: &str,
        pwd: &str,
    ) -> Result<(String, String), SfuError> {
        self.ask(|reply| Command::RestartIce {
            id: id.to_string(),
            ufrag: ufrag.to_string(),
            pwd: pwd.to_string(),
            reply,
        })
        .await
        .unwrap_or_else(|| Err(gone()))
    }

    /// Turns a voice member's camera on or off: the camera line it is seen on, if on.
    pub async fn camera(&self, id: &str, on: bool) -> Result<Option<usize>, SfuError> {
        self.ask(|reply| Command::Camera {
            id: id.to_string(),
            on,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(gone()))
    }

    /// How a voice session that is no more was ended, if someone other than its client did.
    /// An error when the media task does not answer (it cannot be told from "not ended").
    pub async fn ending(&self, id: &str) -> Result<Option<Ending>, SfuError> {
        self.ask(|reply| Command::Ending {
            id: id.to_string(),
            reply,
        })
        .await
        .ok_or_else(gone)
    }

    /// The room's voice members now.
    pub async fn voice_members(&self, room: &str) -> Vec<VoiceMember> {
        self.ask(|reply| Command::VoiceMembers {
            room: room.to_string(),
            reply,
        })
        .await
        .unwrap_or_default()
    }

    /// Whether a room has a WebRTC publisher, and how many watch it by WebRTC.
    pub async fn counts(&self, room: &str) -> (bool, usize) {
        self.ask(|reply| Command::Counts {
            room: room.to_string(),
            reply,
        })
        .await
        .unwrap_or((false, 0))
    }
}
