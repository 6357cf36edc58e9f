//! Token buckets: the arithmetic for every rate limit (login attempts, chat messages), and a keyed
//! map of them with a size cap so an attacker cannot grow memory by inventing keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// One token bucket. Pure: the caller passes the time.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    pub fn full(burst: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: burst as f64,
            updated: now,
        }
    }

    /// Takes one token if there is one; otherwise returns how long until there will be.
    pub fn take(&mut self, burst: u32, per_s: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_s).min(burst as f64);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if per_s > 0.0 {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_s))
        } else {
            Err(Duration::from_secs(3600))
        }
    }

    /// Returns one token (never beyond the burst).
    pub fn give_back(&mut self, burst: u32, per_s: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_s + 1.0).min(burst as f64);
        self.updated = now;
    }

    /// True when the bucket has refilled completely by `now`.
    pub fn is_full(&self, burst: u32, per_s: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * per_s >= burst as f64
    }
}

/// Buckets by key, all with the same burst and rate.
pub struct KeyedLimiter<K> {
    burst: u32,
    per_s: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(burst: u32, per_s: f64, max_keys: usize) -> Self {
        KeyedLimiter {
            burst,
            per_s,
            max_keys,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Gives back a token [`KeyedLimiter::check`] took (for limits that count only failures:
    /// take before trying, refund on success).
    pub fn refund(&self, key: &K) {
        let now = Instant::now();
        if let Some(b) = self.buckets.lock().get_mut(key) {
            b.give_back(self.burst, self.per_s, now);
        }
    }

    /// Takes a token for `key`; `Err(wait)` when the key is over its limit.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.buckets.lock();
        if map.len() >= self.max_keys && !map.contains_key(key) {
            // Full buckets carry no information; dropping them is free.
            map.retain(|_, b| !b.is_full(self.burst, self.per_s, now));
            if map.len() >= self.max_keys {
                return Err(Duration::from_secs(1));
            }
        }
        map.entry(key.clone())
            .or_insert_with(|| Bucket::full(self.burst, now))
            .take(self.burst, self.per_s, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::full(3, t0);
        for _ in 0..3 {
            assert!(b.take(3, 1.0, t0).is_ok());
        }
        let wait = b.take(3, 1.0, t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        assert!(b.take(3, 1.0, t0 + Duration::from_millis(1001)).is_ok());
        assert!(b.take(3, 1.0, t0 + Duration::from_millis(1002)).is_err());
    }

    #[test]
    fn keyed_limiter_separates_keys_and_caps_memory() {
        let l = KeyedLimiter::new(1, 0.0, 2);
        assert!(l.check(&"a").is_ok());
        assert!(l.check(&"a").is_err());
        assert!(l.check(&"b").is_ok());
        // Map full of empty buckets: a third key is refused rather than growing the map.
        assert!(l.check(&"c").is_err());
    }

    #[test]
    fn refunds_give_a_token_back_up_to_the_burst() {
        let l = KeyedLimiter::new(2, 0.0, 10);
        for _ in 0..5 {
            assert!(l.check(&"a").is_ok());
            l.refund(&"a");
        }
        assert!(l.check(&"a").is_ok());
        assert!(l.check(&"a").is_ok());
        assert!(l.check(&"a").is_err());
        l.refund(&"a");
        l.refund(&"a");
        l.refund(&"a");
        assert!(l.check(&"a").is_ok());
        assert!(l.check(&"a").is_ok());
        assert!(l.check(&"a").is_err(), "refunds never exceed the burst");
        l.refund(&"unknown");
    }
}
