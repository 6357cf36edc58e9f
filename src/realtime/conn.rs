//! One connection's socket, shared between the room fan-out and the connection's own task.
//!
//! Broadcast frames are framed once per room (`wire_text`) and written straight to each socket
//! from the broadcasting task with a non-blocking `try_write`: no task wake-up and no per-client
//! framing per delivery. What a socket cannot take at once waits in the connection's queue,
//! which its own task drains when the socket becomes writable. The queue is bounded in frames; a
//! connection that overflows it is told to resync. Reading (client frames, pings, close) goes
//! through tungstenite over [`SharedIo`], whose writes join the same queue, so frames from both
//! paths never interleave mid-frame.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A complete unmasked server text frame (RFC 6455 §5.2) carrying `payload`.
pub fn wire_text(payload: &str) -> Bytes {
    wire_frame(0x1, payload.as_bytes())
}

/// A close frame with a status code and a short reason.
pub fn wire_close(code: u16, reason: &str) -> Bytes {
    let mut body = Vec::with_capacity(2 + reason.len());
    body.extend_from_slice(&code.to_be_bytes());
    body.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    wire_frame(0x8, &body)
}

fn wire_frame(opcode: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// What happened to a frame handed to [`ConnIo::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written to the socket, or queued behind earlier frames.
    Ok,
    /// The queue overflowed: the connection must resync.
    Lagged,
    /// The connection is closing or gone; the frame was dropped.
    Closed,
}

#[derive(Default)]
struct Outbound {
    /// (seq, bytes): seq tags message frames so a paused queue can drop what the welcome covers.
    queue: VecDeque<(i64, Bytes)>,
    /// The front frame is partly written: it must be finished before anything else.
    head_started: bool,
    /// Holding frames until the welcome is written.
    paused: bool,
    /// Highest message seq the welcome carried: later copies of those are not sent again.
    covered: i64,
    lagged: bool,
    closed: bool,
}

/// The shared half of a connection.
pub struct ConnIo {
    stream: TcpStream,
    out: Mutex<Outbound>,
    /// Wakes the connection's task: queue needs draining, lag, or close.
    task: AtomicWaker,
    max_frames: usize,
}

impl ConnIo {
    /// Wraps an upgraded socket. The connection starts paused (see [`ConnIo::unpause`]).
    pub fn new(stream: TcpStream, max_frames: usize) -> Arc<ConnIo> {
        Arc::new(ConnIo {
            stream,
            out: Mutex::new(Outbound {
                paused: true,
                ..Outbound::default()
            }),
            task: AtomicWaker::new(),
            max_frames: max_frames.max(2),
        })
    }

    /// Writes a frame now if the socket takes it, else queues it (bounded).
    pub fn send(&self, seq: i64, frame: Bytes) -> Sent {
        let mut out = self.out.lock();
        if out.closed {
            return Sent::Closed;
        }
        if out.lagged {
            return Sent::Lagged;
        }
        if seq != 0 && seq <= out.covered {
            return Sent::Ok;
        }
        if out.queue.is_empty() && !out.paused {
            match self.stream.try_write(&frame) {
                Ok(n) if n == frame.len() => return Sent::Ok,
                Ok(n) => {
                    out.queue.push_back((seq, frame.slice(n..)));
                    out.head_started = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    out.queue.push_back((seq, frame));
                }
                Err(_) => {
                    out.closed = true;
                    drop(out);
                    self.task.wake();
                    return Sent::Closed;
                }
            }
            drop(out);
            self.task.wake();
            return Sent::Ok;
        }
        if out.queue.len() >= self.max_frames {
            out.lagged = true;
            drop(out);
            self.task.wake();
            return Sent::Lagged;
        }
        out.queue.push_back((seq, frame));
        Sent::Ok
    }

    /// Puts `first` ahead of everything queued while paused, drops queued messages with a seq at
    /// or below `covered` (the welcome already carries them), and starts writing.
    pub fn unpause(&self, first: Bytes, covered: i64) {
        let mut out = self.out.lock();
        out.queue.retain(|(seq, _)| *seq == 0 || *seq > covered);
        out.queue.push_front((0, first));
        out.covered = covered;
        out.paused = false;
        drop(out);
        self.task.wake();
    }

    /// Ends the connection after `frames` (e.g. reconnect + close). With `drop_queued` (a lagging
    /// client) whatever waits behind a partly written frame is dropped, else it goes out first.
    pub fn finish(&self, drop_queued: bool, frames: &[Bytes]) {
        let mut out = self.out.lock();
        if out.closed {
            return;
        }
        if drop_queued {
            let keep = usize::from(out.head_started);
            out.queue.truncate(keep);
        }
        out.queue.extend(frames.iter().map(|f| (0, f.clone())));
        out.paused = false;
        out.lagged = false;
        out.closed = true;
        drop(out);
        self.task.wake();
    }

    /// Writes queued frames until the queue is empty (Ready(Ok)), the socket is full (Pending:
    /// woken when writable or when more is queued), or the socket fails.
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.task.register(cx.waker());
        loop {
            let mut out = self.out.lock();
            if out.paused {
                return Poll::Pending;
            }
            let Some((_, front)) = out.queue.front_mut() else {
                return Poll::Ready(Ok(()));
            };
            match self.stream.try_write(front) {
                Ok(n) if n == front.len() => {
                    out.queue.pop_front();
                    out.head_started = false;
                }
                Ok(n) => {
                    front.advance(n);
                    out.head_started = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(out);
                    ready!(self.stream.poll_write_ready(cx))?;
                }
                Err(e) => {
                    out.closed = true;
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    /// Drives the queue from the connection's task: writes what the socket takes and stays
    /// Pending (woken by writability or by new frames) until the connection lagged or failed.
    pub fn poll_work(&self, cx: &mut Context<'_>) -> Poll<Work> {
        match self.poll_drain(cx) {
            Poll::Ready(Err(_)) => return Poll::Ready(Work::Gone),
            Poll::Ready(Ok(())) | Poll::Pending => {}
        }
        let out = self.out.lock();
        if out.lagged {
            Poll::Ready(Work::Lagged)
        } else if out.closed {
            Poll::Ready(Work::Gone)
        } else {
            Poll::Pending
        }
    }
}

/// What a connection's queue needs from its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// The queue overflowed: tell the client to resync.
    Lagged,
    /// The socket failed or was closed.
    Gone,
}

/// The connection as tungstenite sees it: reads come from the socket (after any bytes hyper
/// read past the handshake); writes (pongs, close replies) join the shared queue.
pub struct SharedIo {
    pub io: Arc<ConnIo>,
    pub pre: Bytes,
}

impl AsyncRead for SharedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.pre.is_empty() {
            let n = this.pre.len().min(buf.remaining());
            buf.put_slice(&this.pre[..n]);
            this.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        loop {
            ready!(this.io.stream.poll_read_ready(cx))?;
            match this.io.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.io.send(0, Bytes::copy_from_slice(buf)) {
            Sent::Ok => Poll::Ready(Ok(buf.len())),
            Sent::Lagged | Sent::Closed => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_drain(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn pair(max: usize) -> (Arc<ConnIo>, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (ConnIo::new(server, max), client)
    }

    async fn drain(io: &ConnIo) {
        std::future::poll_fn(|cx| io.poll_drain(cx)).await.unwrap();
    }

    async fn read_exact(client: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        client.read_exact(&mut buf).await.unwrap();
        buf
    }

    #[tokio::test]
    async fn welcome_goes_first_and_covered_messages_are_dropped() {
        let (io, mut client) = pair(8).await;
        assert_eq!(io.send(1, wire_text("m1")), Sent::Ok);
        assert_eq!(io.send(2, wire_text("m2")), Sent::Ok);
        assert_eq!(io.send(0, wire_text("v")), Sent::Ok);
        io.unpause(wire_text("W"), 1);
        drain(&io).await;
        let want = [wire_text("W"), wire_text("m2"), wire_text("v")].concat();
        assert_eq!(read_exact(&mut client, want.len()).await, want);
        // A late copy of a message the welcome covered is not sent again.
        assert_eq!(io.send(1, wire_text("m1")), Sent::Ok);
        // Unpaused and empty: the next frame goes straight to the socket.
        assert_eq!(io.send(3, wire_text("m3")), Sent::Ok);
        assert_eq!(read_exact(&mut client, 4).await, wire_text("m3").to_vec());
    }

    #[tokio::test]
    async fn a_full_queue_lags_and_a_lagged_finish_drops_the_backlog() {
        let (io, mut client) = pair(3).await;
        for i in 1..=3 {
            assert_eq!(io.send(i, wire_text("x")), Sent::Ok);
        }
        assert_eq!(io.send(4, wire_text("x")), Sent::Lagged);
        let work = std::future::poll_fn(|cx| match io.poll_work(cx) {
            Poll::Ready(w) => Poll::Ready(Some(w)),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        assert_eq!(work, Some(Work::Lagged));
        io.finish(true, &[wire_text("bye"), wire_close(4001, "lag")]);
        drain(&io).await;
        let want = [wire_text("bye"), wire_close(4001, "lag")].concat();
        assert_eq!(read_exact(&mut client, want.len()).await, want);
        assert_eq!(io.send(5, wire_text("late")), Sent::Closed);
    }

    #[test]
    fn frames_use_the_shortest_length_form() {
        let f = wire_text("hi");
        assert_eq!(&f[..], &[0x81, 2, b'h', b'i']);
        let f = wire_text(&"x".repeat(200));
        assert_eq!(&f[..4], &[0x81, 126, 0, 200]);
        assert_eq!(f.len(), 204);
        let f = wire_text(&"x".repeat(70_000));
        assert_eq!(f[1], 127);
        assert_eq!(u64::from_be_bytes(f[2..10].try_into().unwrap()), 70_000);
        let c = wire_close(1012, "restart");
        assert_eq!(&c[..4], &[0x88, 9, 0x03, 0xF4]);
    }
}
