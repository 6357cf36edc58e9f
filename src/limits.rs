//! Limits on open connections: how many one address may hold and how many the process may hold
//! in all, with the total kept inside the open-file limit so that moim always has a descriptor
//! left to say "no" with. Shared by the HTTP and RTMP listeners. Also a gate that keeps a flood
//! of refusals from flooding the log.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::metrics::{Metrics, Refusal};

/// Descriptors kept back from connections: the database pool, files being served, recordings,
/// ffmpeg pipes, and the socket a refusal is written on.
pub fn reserved_descriptors(soft_limit: u64) -> u64 {
    (soft_limit / 8).max(96)
}

/// Refusals written at once (each holds its socket for up to a second): a quarter of the
/// reserve, so answering "no" cannot itself run the process out of descriptors.
pub fn refusals_in_flight(soft_limit: u64) -> usize {
    (reserved_descriptors(soft_limit) / 4).min(256) as usize
}

/// Raises the open-file soft limit to the hard limit (the usual 1,024 default is far below
/// what a server with thousands of sockets needs); returns the soft limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 (one subscriber's
/// network; a single machine can pick any address inside it).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The process holds as many connections as it may.
    Total,
    /// This address holds as many as one address may.
    PerAddress,
}

/// Open connections, in total and per address.
pub struct ConnLimits {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnPermit {
    limits: Arc<ConnLimits>,
    address: Option<IpAddr>,
}

impl ConnLimits {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            max_total: max_total.max(1),
            max_per_address: max_per_address.max(1),
            open: Mutex::new(Counts::default()),
        })
    }

    pub fn max_total(&self) -> usize {
        self.max_total
    }

    /// Admits one connection from `address` (`None`: count it only in the total, e.g. a
    /// trusted proxy's connection, whose clients are counted per request instead).
    pub fn admit(self: &Arc<Self>, address: Option<IpAddr>) -> Result<ConnPermit, Refused> {
        let address = address.map(address_key);
        let mut open = self.open.lock();
        if open.total >= self.max_total {
            return Err(Refused::Total);
        }
        if let Some(a) = address {
            let n = open.by_address.entry(a).or_insert(0);
            if *n >= self.max_per_address {
                return Err(Refused::PerAddress);
            }
            *n += 1;
        }
        open.total += 1;
        Ok(ConnPermit {
            limits: self.clone(),
            address,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().total
    }

    /// Connections open now from `address`.
    pub fn open_from(&self, address: IpAddr) -> usize {
        self.open
            .lock()
            .by_address
            .get(&address_key(address))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock();
        open.total -= 1;
        if let Some(a) = self.address {
            if let Some(n) = open.by_address.get_mut(&a) {
                *n -= 1;
                if *n == 0 {
                    open.by_address.remove(&a);
                }
            }
        }
    }
}

/// Lets one log line through per `every` and counts what it held back, so a flood of refused
/// connections costs a counter increment each, not a log line each.
pub struct LogGate {
    every: Duration,
    state: Mutex<Option<Instant>>,
    held_back: AtomicU64,
}

impl LogGate {
    pub const fn new(every: Duration) -> LogGate {
        LogGate {
            every,
            state: Mutex::new(None),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when this line may be logged.
    pub fn pass(&self, now: Instant) -> Option<u64> {
        let mut last = self.state.lock();
        match *last {
            Some(t) if now.saturating_duration_since(t) < self.every => {
                self.held_back.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.held_back.swap(0, Ordering::Relaxed))
            }
        }
    }
}

/// Counts a refused connection and logs it through `gate`.
pub fn note_refusal(
    metrics: &Metrics,
    gate: &LogGate,
    why: Refusal,
    peer: std::net::SocketAddr,
    what: &str,
) {
    metrics.refused(why);
    if let Some(held_back) = gate.pass(Instant::now()) {
        tracing::warn!(
            %peer,
            reason = why.as_str(),
            similar_not_logged = held_back,
            "{what} refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn caps_per_address_and_in_total() {
        let limits = ConnLimits::new(5, 2);
        let a1 = limits.admit(ip("10.0.0.1")).unwrap();
        let _a2 = limits.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(
            limits.admit(ip("10.0.0.1")).err(),
            Some(Refused::PerAddress)
        );
        let _b = limits.admit(ip("10.0.0.2")).unwrap();
        let _p1 = limits.admit(None).unwrap();
        let _p2 = limits.admit(None).unwrap();
        assert_eq!(limits.admit(ip("10.0.0.3")).err(), Some(Refused::Total));
        assert_eq!(limits.open(), 5);
        drop(a1);
        assert_eq!(limits.open_from("10.0.0.1".parse().unwrap()), 1);
        let _again = limits.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(limits.open(), 5);
    }

    #[test]
    fn forgets_addresses_with_nothing_open() {
        let limits = ConnLimits::new(100, 10);
        for i in 0..50u8 {
            drop(limits.admit(Some(IpAddr::from([10, 0, 1, i]))).unwrap());
        }
        assert!(limits.open.lock().by_address.is_empty());
        assert_eq!(limits.open(), 0);
    }

    #[test]
    fn ipv6_counts_by_network_and_mapped_ipv4_as_ipv4() {
        let limits = ConnLimits::new(100, 2);
        let _a = limits.admit(ip("2001:db8:1:2::1")).unwrap();
        let _b = limits.admit(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8:1:2:dead::beef")).err(),
            Some(Refused::PerAddress)
        );
        let _other_network = limits.admit(ip("2001:db8:1:3::1")).unwrap();
        let _v4 = limits.admit(ip("192.0.2.7")).unwrap();
        let _mapped = limits.admit(ip("::ffff:192.0.2.7")).unwrap();
        assert_eq!(
            limits.admit(ip("192.0.2.7")).err(),
            Some(Refused::PerAddress)
        );
    }

    #[test]
    fn the_log_gate_lets_one_line_through_per_period() {
        let gate = LogGate::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(gate.pass(t0), Some(0));
        for i in 0..1000 {
            assert_eq!(gate.pass(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(gate.pass(t0 + Duration::from_secs(11)), Some(1000));
        assert_eq!(gate.pass(t0 + Duration::from_secs(12)), None);
    }

    #[test]
    fn the_reserve_leaves_room_below_small_and_large_limits() {
        assert_eq!(reserved_descriptors(256), 96);
        assert_eq!(refusals_in_flight(256), 24);
        assert_eq!(reserved_descriptors(1024), 128);
        assert_eq!(reserved_descriptors(65536), 8192);
        assert_eq!(refusals_in_flight(65536), 256);
    }
}
