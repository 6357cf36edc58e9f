//! The HTTP/1.1 accept loop. moim serves connections with hyper directly (rather than
//! `axum::serve`) so that an upgraded WebSocket hands back the plain `TcpStream`: the chat
//! fan-out writes to sockets itself (see `realtime::conn`). Every connection is admitted
//! against the connection limits first (a refused one gets a short JSON answer, not silence),
//! and every request body must arrive within the body deadline.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::limits::{note_refusal, ConnLimits, ConnPermit, LogGate, Refused};
use crate::metrics::{Metrics, Refusal};

/// What the accept loop enforces.
#[derive(Clone)]
pub struct Admission {
    pub limits: Arc<ConnLimits>,
    pub metrics: Arc<Metrics>,
    /// Peers are a trusted proxy: count its connections in the total only (the clients behind
    /// it are counted per WebSocket, by their forwarded address).
    pub trust_proxy: bool,
    /// Longest time a request body may take to arrive, from the end of its head.
    pub body_timeout: Duration,
    /// Refusals being written at once; beyond this a refused socket is just closed.
    pub refusals_in_flight: usize,
}

/// The open connection's place under the limits; in every request's extensions so an upgraded
/// WebSocket keeps it for as long as it lives.
#[derive(Clone)]
pub struct Admitted(#[allow(dead_code)] pub Arc<ConnPermit>);

static REFUSAL_LOG: LogGate = LogGate::new(Duration::from_secs(10));
static ACCEPT_LOG: LogGate = LogGate::new(Duration::from_secs(10));

/// Accepts connections until `stop`, then lets in-flight requests finish (idle keep-alive
/// connections close at once). Upgraded connections are not waited for: their sessions are.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    admission: Admission,
) {
    let connections = TaskTracker::new();
    let refusals = Arc::new(Semaphore::new(admission.refusals_in_flight));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning, and say
                    // so once in a while rather than for every attempt.
                    admission.metrics.refused(Refusal::AcceptFailed);
                    if let Some(held_back) = ACCEPT_LOG.pass(std::time::Instant::now()) {
                        tracing::warn!(error = %e, similar_not_logged = held_back, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let counted = (!admission.trust_proxy).then(|| peer.ip());
        let permit = match admission.limits.admit(counted) {
            Ok(p) => Admitted(Arc::new(p)),
            Err(why) => {
                let (refusal, answer) = match why {
                    Refused::Total => (Refusal::ConnectionsTotal, &OVERLOADED),
                    Refused::PerAddress => (Refusal::ConnectionsPerAddress, &TOO_MANY),
                };
                note_refusal(
                    &admission.metrics,
                    &REFUSAL_LOG,
                    refusal,
                    peer,
                    "connection",
                );
                match refusals.clone().try_acquire_owned() {
                    Ok(turn) => {
                        tokio::spawn(async move {
                            refuse(stream, answer).await;
                            drop(turn);
                        });
                    }
                    Err(_) => refuse_at_once(&stream, answer),
                }
                continue;
            }
        };
        // Chat frames are small and latency matters: no Nagle delay.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let router = router.clone();
        let body_timeout = admission.body_timeout;
        let metrics = admission.metrics.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(permit.clone());
            let router = router.clone();
            let metrics = metrics.clone();
            async move {
                let req =
                    req.map(|b| axum::body::Body::new(Deadline::new(b, body_timeout, &metrics)));
                Ok::<_, Infallible>(router.oneshot(req).await.unwrap_or_else(|e| match e {}))
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(30))
            .max_buf_size(READ_BUFFER)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// The most a connection reads from its socket at once (hyper's default is about 400 KiB).
/// An upload piece arrives in reads this large, which take fewer system calls and wake-ups.
const READ_BUFFER: usize = 1 << 20;

/// A canned answer for a refused connection.
struct Answer {
    status: &'static str,
    code: &'static str,
    message: &'static str,
    retry_after_s: u32,
}

static OVERLOADED: Answer = Answer {
    status: "503 Service Unavailable",
    code: "overloaded",
    message: "the server has as many connections as it can take; try again shortly",
    retry_after_s: 5,
};

static TOO_MANY: Answer = Answer {
    status: "429 Too Many Requests",
    code: "too_many_connections",
    message: "too many connections from your address; close some and try again",
    retry_after_s: 5,
};

impl Answer {
    fn bytes(&self) -> Vec<u8> {
        let body = serde_json::json!({"error": self.code, "message": self.message}).to_string();
        format!(
            "HTTP/1.1 {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             retry-after: {}\r\nconnection: close\r\n\r\n{body}",
            self.status,
            body.len(),
            self.retry_after_s
        )
        .into_bytes()
    }
}

/// Answers and closes, reading what the client sends (its request, then its close) so that
/// closing does not reset the answer away before the client reads it. A client that sends
/// nothing within 250 ms is not waited for (connection squatters would hold every refusal's
/// place); one that does gets up to a second.
async fn refuse(mut stream: TcpStream, answer: &Answer) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&answer.bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        let first = tokio::time::timeout(Duration::from_millis(250), stream.read(&mut sink));
        let mut left = match first.await {
            Ok(Ok(n)) if n > 0 => 16 * 1024 - n,
            _ => return Ok(()),
        };
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left -= n.min(left),
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// When too many refusals are already lingering: whatever the client has sent is read, the
/// answer goes into the socket's send buffer, and the socket closes now.
fn refuse_at_once(stream: &TcpStream, answer: &Answer) {
    let mut sink = [0u8; 4096];
    for _ in 0..4 {
        if !matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = stream.try_write(&answer.bytes());
}

/// The request body ran past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// Bytes per second a long body must average to earn time beyond the base deadline.
pub const MIN_BODY_RATE: u64 = 16 * 1024;

/// A request body that fails once its deadline passes (a trickle of a byte every few seconds
/// would otherwise hold the connection for as long as the sender likes). The deadline is the
/// base timeout plus a second for every [`MIN_BODY_RATE`] bytes received, so a large upload
/// piece on a slow line is not cut while it keeps up that pace; and a body that goes silent for
/// the base timeout is cut whatever it earned (time is not banked by a fast start).
struct Deadline {
    inner: Incoming,
    /// The timer and where to count its expiry; `None` for bodiless requests (most GETs),
    /// which never start one.
    timer: Option<(Pin<Box<Sleep>>, Arc<Metrics>)>,
    timeout: Duration,
    started: tokio::time::Instant,
    received: u64,
    /// When the last bytes came.
    last: tokio::time::Instant,
}

impl Deadline {
    fn new(inner: Incoming, timeout: Duration, metrics: &Arc<Metrics>) -> Deadline {
        let timer = (!inner.is_end_stream())
            .then(|| (Box::pin(tokio::time::sleep(timeout)), metrics.clone()));
        Deadline {
            inner,
            timer,
            timeout,
            started: tokio::time::Instant::now(),
            received: 0,
            last: tokio::time::Instant::now(),
        }
    }

    /// When the body must be done, given what has arrived.
    fn due(&self) -> tokio::time::Instant {
        let earned = self.started
            + self.timeout
            + Duration::from_secs_f64(self.received as f64 / MIN_BODY_RATE as f64);
        earned.min(self.last + self.timeout)
    }
}

impl Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(Ok(f)) = &frame {
                    if let Some(data) = f.data_ref() {
                        this.received += data.len() as u64;
                        this.last = tokio::time::Instant::now();
                    }
                }
                return Poll::Ready(frame.map(|f| f.map_err(axum::Error::new)));
            }
            Poll::Pending => {}
        }
        let due = this.due();
        let Some((sleep, _)) = this.timer.as_mut() else {
            return Poll::Pending;
        };
        if sleep.deadline() != due {
            // It earned more time, or went quiet, since the timer was set.
            sleep.as_mut().reset(due);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                if let Some((_, metrics)) = this.timer.take() {
                    metrics.refused(Refusal::BodyTimeout);
                }
                Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
