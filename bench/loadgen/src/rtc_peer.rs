//! A WebRTC peer for the benchmarks: a str0m `Rtc` on its own non-blocking UDP socket, pumped
//! by the caller's loop.

use std::net::UdpSocket;
use std::time::Instant;

use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output, Rtc};

pub struct UdpPeer {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub connected: bool,
    /// Frames received (on `counted` only, when set).
    pub frames: u64,
    pub counted: Option<Mid>,
}

impl UdpPeer {
    pub fn new(rtc: Rtc, socket: UdpSocket, counted: Option<Mid>) -> UdpPeer {
        UdpPeer {
            rtc,
            socket,
            connected: false,
            frames: 0,
            counted,
        }
    }

    /// Takes in every datagram waiting, runs str0m's clock, sends what it wants sent.
    pub fn pump(&mut self, buf: &mut [u8]) -> anyhow::Result<()> {
        let local = self.socket.local_addr()?;
        loop {
            match self.socket.recv_from(buf) {
                Ok((n, source)) => {
                    let input = Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: local,
                            contents: buf[..n].try_into()?,
                        },
                    );
                    self.rtc.handle_input(input)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        self.rtc.handle_input(Input::Timeout(Instant::now()))?;
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(_) => return Ok(()),
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(d)) if self.counted.is_none_or(|m| m == d.mid) => {
                    self.frames += 1
                }
                Output::Event(_) => {}
            }
        }
    }
}
