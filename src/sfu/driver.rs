//! The SFU's driver: one task owning the UDP socket and the core, fed commands by the HTTP
//! edge over a channel (offers, removals), datagrams by the socket, and deadlines by the clock.
//! All peers share the one socket; the core tells them apart by ICE credentials and address.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::core::{Core, Happening, Limits, PeerId, Role, SfuError};

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
}

/// The SFU as the rest of moim uses it; cheap to clone.
#[derive(Clone)]
pub struct Sfu {
    tx: mpsc::Sender<Command>,
    /// The media socket's address.
    pub local: SocketAddr,
}

fn gone() -> SfuError {
    SfuError::Unsupported("the media server is shutting down".into())
}

impl Sfu {
    /// Binds the media socket and starts the task; it ends when `shutdown` is cancelled.
    /// `advertise`: the addresses clients reach the socket at (its port is added).
    pub async fn start(
        listen: SocketAddr,
        advertise: Vec<IpAddr>,
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
        let mut core = Core::new(candidates, limits);
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
                        }
                    }
                    got = socket.recv_from(&mut buf) => match got {
                        Ok((n, source)) => core.receive(Instant::now(), source, local, &buf[..n]),
                        Err(e) => tracing::debug!(error = %e, "WebRTC socket read failed"),
                    },
                    _ = sleep => {}
                }
                next = core.poll(Instant::now(), &mut out);
                for d in out.drain(..) {
                    if let Err(e) = socket.send_to(&d.contents, d.destination).await {
                        tracing::debug!(error = %e, to = %d.destination, "WebRTC send failed");
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
        self.tx.send(make(reply)).await.ok()?;
        rx.await.ok()
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
        let _ = self
            .tx
            .send(Command::RemoveRoom {
                room: room.to_string(),
                only,
            })
            .await;
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
