//! Prometheus metrics: a handful of atomics and one histogram, rendered as text on `/metrics`.
//! Hand-rolled because the set is small and the fan-out path must stay a few atomic adds.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds (seconds) of the fan-out latency buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A cumulative histogram of durations.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; 13],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        cum += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cum}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cum}");
    }
}

/// Why a request or connection was turned away to protect the server; counted per reason in
/// `moim_refused_total{reason}` (see docs/operations.md, "Limits and abuse").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every password-hashing worker stayed busy for the whole wait (503).
    PasswordHashBusy,
    /// A connection arrived while the process held `max_connections` (503).
    ConnectionsTotal,
    /// A connection arrived from an address holding `max_connections_per_ip` (429).
    ConnectionsPerAddress,
    /// `accept` itself failed (out of descriptors, most likely).
    AcceptFailed,
    /// A request body did not arrive within `body_timeout_s` (408).
    BodyTimeout,
    /// An RTMP connection from an address already holding `rtmp_unauthenticated_per_ip`
    /// connections that have not published (closed).
    RtmpUnauthenticated,
    /// An RTMP connection that did not publish with a valid key in time (closed).
    RtmpHandshakeTimeout,
    /// A WebSocket resume (`since`) over its address's allowance: recent history instead.
    ReplayRateLimited,
    /// A welcome whose history was cut to `max_welcome_kib` (the oldest messages left out).
    WelcomeTruncated,
    /// A client WebSocket frame over 8 KiB (error `too_large`, close 1009).
    WsFrameTooLarge,
    /// A log-in or sign-up over its per-address or per-account allowance (429).
    LoginRateLimited,
    /// A state change or WebSocket upgrade naming another site in `Host` (403).
    WrongHost,
    /// A browser's state change or WebSocket upgrade from another origin (403).
    CrossSite,
    /// A NUL character in a path, query or JSON string (400).
    NulCharacter,
    /// A `map.view` over a connection's 10 a second (dropped).
    MapViewDropped,
    /// A sign-in through a provider that came back and did not finish (the page says why).
    SigninFailed,
}

impl Refusal {
    pub const ALL: [Refusal; 16] = [
        Refusal::PasswordHashBusy,
        Refusal::ConnectionsTotal,
        Refusal::ConnectionsPerAddress,
        Refusal::AcceptFailed,
        Refusal::BodyTimeout,
        Refusal::RtmpUnauthenticated,
        Refusal::RtmpHandshakeTimeout,
        Refusal::ReplayRateLimited,
        Refusal::WelcomeTruncated,
        Refusal::WsFrameTooLarge,
        Refusal::LoginRateLimited,
        Refusal::WrongHost,
        Refusal::CrossSite,
        Refusal::NulCharacter,
        Refusal::MapViewDropped,
        Refusal::SigninFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::PasswordHashBusy => "password_hash_busy",
            Refusal::ConnectionsTotal => "connections_total",
            Refusal::ConnectionsPerAddress => "connections_per_address",
            Refusal::AcceptFailed => "accept_failed",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::RtmpUnauthenticated => "rtmp_unauthenticated",
            Refusal::RtmpHandshakeTimeout => "rtmp_handshake_timeout",
            Refusal::ReplayRateLimited => "replay_rate_limited",
            Refusal::WelcomeTruncated => "welcome_truncated",
            Refusal::WsFrameTooLarge => "ws_frame_too_large",
            Refusal::LoginRateLimited => "login_rate_limited",
            Refusal::WrongHost => "wrong_host",
            Refusal::CrossSite => "cross_site",
            Refusal::NulCharacter => "nul_character",
            Refusal::MapViewDropped => "map_view_dropped",
            Refusal::SigninFailed => "signin_failed",
        }
    }
}

/// What the event path between nodes counts (`cluster::RedisBroker`).
#[derive(Default)]
pub struct BrokerStats {
    /// Subscribed to the channel right now.
    pub up: AtomicBool,
    pub published: AtomicU64,
    /// Events not sent to other nodes (Redis unreachable, or the outbox full).
    pub publish_failed: AtomicU64,
    pub received: AtomicU64,
    /// Messages from Redis that could not be read (another version's format, say).
    pub undecodable: AtomicU64,
    /// Times the subscription was (re)established after the first.
    pub reconnects: AtomicU64,
    /// Times another node's event count skipped (its events were lost on the way).
    pub missed: AtomicU64,
}

/// Every metric moim exports.
#[derive(Default)]
pub struct Metrics {
    /// Indexed by `Refusal as usize`.
    refused: [AtomicU64; Refusal::ALL.len()],
    pub connections: AtomicI64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub fanout: Histogram,
    /// Chat messages a room's fan-out read from the database because they had not reached it
    /// (lost between nodes, or late).
    pub chat_backfilled: AtomicU64,
    /// The event path between nodes, when there is one.
    pub broker: Option<Arc<BrokerStats>>,
    /// How far watch-party members' players are from the party's timeline, per report.
    pub party_drift: Histogram,
    /// Bytes read from RTMP publishers.
    pub ingest_bytes: AtomicU64,
    /// LL-HLS parts produced.
    pub hls_parts: AtomicU64,
    /// WebRTC broadcast frames that did not reach the broadcast's HLS and recording in time.
    pub webrtc_frames_dropped: AtomicU64,
    /// Route template → status → count. Two levels so a hit needs no allocation.
    http: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
}

impl Metrics {
    /// The metrics of a node that counts its event path between nodes in `broker`.
    pub fn with_broker(broker: Option<Arc<BrokerStats>>) -> Metrics {
        Metrics {
            broker,
            ..Metrics::default()
        }
    }

    /// Counts one refusal.
    pub fn refused(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one HTTP response by route template (never the raw path: bounded cardinality).
    pub fn http_request(&self, route: &str, status: u16) {
        let mut http = self.http.lock();
        let by_status = match http.get_mut(route) {
            Some(m) => m,
            None => http.entry(route.to_string()).or_default(),
        };
        *by_status.entry(status).or_default() += 1;
    }

    /// Prometheus text exposition.
    pub fn render(&self, rooms: usize, broadcasts: usize) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        gauge(
            &mut out,
            "moim_ws_connections",
            "Open room WebSocket connections.",
            self.connections.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "moim_rooms_active",
            "Rooms with at least one connection.",
            rooms as i64,
        );
        counter(
            &mut out,
            "moim_chat_messages_in_total",
            "Chat messages stored and broadcast.",
            self.messages_in.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "moim_chat_messages_out_total",
            "Broadcast frames written to connections.",
            self.messages_out.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "moim_live_broadcasts",
            "Broadcasts running now.",
            broadcasts as i64,
        );
        counter(
            &mut out,
            "moim_ingest_bytes_total",
            "Bytes received from RTMP publishers.",
            self.ingest_bytes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "moim_hls_parts_total",
            "LL-HLS parts cut from live broadcasts.",
            self.hls_parts.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "moim_webrtc_frames_dropped_total",
            "WebRTC broadcast frames dropped before its LL-HLS and recording (the task was behind).",
            self.webrtc_frames_dropped.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "moim_chat_backfilled_total",
            "Chat messages a room read from the database because they had not reached it from their node.",
            self.chat_backfilled.load(Ordering::Relaxed),
        );
        if let Some(b) = &self.broker {
            gauge(
                &mut out,
                "moim_broker_up",
                "1 while this node is subscribed to Redis and hears the other nodes.",
                b.up.load(Ordering::Relaxed) as i64,
            );
            counter(
                &mut out,
                "moim_broker_published_total",
                "Events sent to the other nodes through Redis.",
                b.published.load(Ordering::Relaxed),
            );
            counter(
                &mut out,
                "moim_broker_publish_failed_total",
                "Events not sent to the other nodes (Redis unreachable or too slow).",
                b.publish_failed.load(Ordering::Relaxed),
            );
            counter(
                &mut out,
                "moim_broker_received_total",
                "Events received from the other nodes.",
                b.received.load(Ordering::Relaxed),
            );
            counter(
                &mut out,
                "moim_broker_undecodable_total",
                "Messages on the channel this node could not read.",
                b.undecodable.load(Ordering::Relaxed),
            );
            counter(
                &mut out,
                "moim_broker_missed_total",
                "Times events from another node were found lost on the way (this node then rereads).",
                b.missed.load(Ordering::Relaxed),
            );
            counter(
                &mut out,
                "moim_broker_reconnects_total",
                "Times the Redis subscription was made again after it was lost.",
                b.reconnects.load(Ordering::Relaxed),
            );
        }
        self.fanout.render(
            "moim_chat_fanout_seconds",
            "Time from broadcast to write, per delivery.",
            &mut out,
        );
        self.party_drift.render(
            "moim_party_drift_seconds",
            "How far a watch-party member's player was from the party's timeline, per report.",
            &mut out,
        );
        let _ = writeln!(
            out,
            "# HELP moim_refused_total Requests and connections turned away by a limit, by reason.\n\
             # TYPE moim_refused_total counter"
        );
        for why in Refusal::ALL {
            let n = self.refused[why as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "moim_refused_total{{reason=\"{}\"}} {n}", why.as_str());
        }
        let _ = writeln!(
            out,
            "# HELP moim_http_requests_total HTTP responses by route and status.\n\
             # TYPE moim_http_requests_total counter"
        );
        for (route, by_status) in self.http.lock().iter() {
            let route = route.replace('\\', "\\\\").replace('"', "\\\"");
            for (status, n) in by_status {
                let _ = writeln!(
                    out,
                    "moim_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_histogram_cumulatively() {
        let m = Metrics::default();
        m.fanout.observe(Duration::from_micros(100));
        m.fanout.observe(Duration::from_millis(20));
        m.fanout.observe(Duration::from_secs(10));
        m.http_request("/api/v1/rooms", 200);
        let text = m.render(3, 1);
        assert!(text.contains("moim_live_broadcasts 1"));
        assert!(text.contains("moim_chat_fanout_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("moim_chat_fanout_seconds_bucket{le=\"0.025\"} 2"));
        assert!(text.contains("moim_chat_fanout_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("moim_rooms_active 3"));
        assert!(text.contains("moim_http_requests_total{route=\"/api/v1/rooms\",status=\"200\"} 1"));
    }
}
