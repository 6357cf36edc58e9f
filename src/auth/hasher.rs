//! Password hashing with bounded memory. argon2id with the default parameters fills 19 MiB per
//! hash; left unbounded, fifty simultaneous log-ins cost a gigabyte the allocator never gave
//! back. Here at most `workers` hashes run at once, each in a buffer from a small pool that is
//! kept for the next one (so no 19 MiB allocation is ever repeated). A request waits for a
//! worker at most `wait`, then gets [`Busy`] (the edge answers 503 with `Retry-After`).

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::metrics::{Metrics, Refusal};

/// All workers stayed busy for the whole wait.
#[derive(Debug, thiserror::Error)]
#[error("the server is busy checking other passwords; try again in a moment")]
pub struct Busy {
    /// A fair time to come back, seconds.
    pub retry_after_s: u64,
}

/// Why hashing did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Stored hashes needing more memory than this are refused rather than computed (they can only
/// come from a tampered database).
const MAX_STORED_M_COST: u32 = 256 * 1024;

/// Verified against when the account does not exist, so that costs the same as a wrong
/// password. Its output matches no password anyone knows, and the caller ignores it anyway.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bW9pbS1uby1zdWNoLXVzZXI$\
                          W1vNS4xbvlnYIMJPtz5DmqHDlZlMQKXLMWAXZ0B2bL8";

/// The hashing pool; cheap to clone.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    permits: Arc<Semaphore>,
    /// Buffers of `params.block_count()` blocks, at most one per worker.
    buffers: Mutex<Vec<Vec<Block>>>,
    params: Params,
    wait: Duration,
    metrics: Arc<Metrics>,
}

impl Hasher {
    /// `workers` hashes at once (at least one); a caller waits `wait` for a turn.
    pub fn new(workers: usize, wait: Duration, metrics: Arc<Metrics>) -> Hasher {
        Hasher::with_params(workers, wait, Params::DEFAULT, metrics)
    }

    /// As [`Hasher::new`] with other argon2 parameters (tests use tiny ones).
    pub fn with_params(
        workers: usize,
        wait: Duration,
        params: Params,
        metrics: Arc<Metrics>,
    ) -> Hasher {
        let workers = workers.max(1);
        Hasher {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(workers)),
                buffers: Mutex::new(Vec::with_capacity(workers)),
                params,
                wait,
                metrics,
            }),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=…`) for a new password.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let params = self.inner.params.clone();
        self.run(move |memory| {
            let salt = SaltString::generate(&mut OsRng);
            let mut salt_bytes = [0u8; 64];
            let salt_bytes = salt
                .decode_b64(&mut salt_bytes)
                .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
            let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
            let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
            let output = Output::init_with(len, |out| {
                argon
                    .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, memory)
                    .map_err(|_| argon2::password_hash::Error::Crypto)
            })
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params)
                    .map_err(|e| anyhow::anyhow!("hash parameters: {e}"))?,
                salt: Some(salt.as_salt()),
                hash: Some(output),
            };
            Ok(phc.to_string())
        })
        .await?
        .map_err(HashError::Internal)
    }

    /// Whether `password` matches the stored `hash`. With no hash (an unknown account) it checks
    /// against a fixed one and answers false, at the same cost.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
        // Parse before queueing: a broken stored hash should not take a worker's turn.
        let parsed = Stored::parse(&hash)?;
        let ok = self
            .run(move |memory| parsed.matches(password.as_bytes(), memory))
            .await??;
        Ok(ok && known)
    }

    /// Runs `f` on a worker with a buffer of the pool's size, after waiting for a turn.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let inner = self.inner.clone();
        let permit =
            match tokio::time::timeout(inner.wait, inner.permits.clone().acquire_owned()).await {
                Ok(permit) => permit.map_err(|_| anyhow::anyhow!("hashing pool closed"))?,
                Err(_) => {
                    inner.metrics.refused(Refusal::PasswordHashBusy);
                    return Err(Busy {
                        retry_after_s: inner.wait.as_secs().max(1),
                    }
                    .into());
                }
            };
        let out = tokio::task::spawn_blocking(move || {
            let blocks = inner.params.block_count();
            let mut memory = inner
                .buffers
                .lock()
                .pop()
                .unwrap_or_else(|| vec![Block::default(); blocks]);
            let out = f(&mut memory);
            inner.buffers.lock().push(memory);
            drop(permit);
            out
        })
        .await
        .map_err(|e| anyhow::anyhow!("hashing task: {e}"))?;
        Ok(out)
    }
}

/// A stored hash, parsed and owned so it can move to a worker.
struct Stored {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Output,
}

impl Stored {
    fn parse(phc: &str) -> anyhow::Result<Stored> {
        let bad = |e: argon2::password_hash::Error| anyhow::anyhow!("stored password hash: {e}");
        let hash = PasswordHash::new(phc).map_err(bad)?;
        let algorithm = Algorithm::try_from(hash.algorithm).map_err(bad)?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).map_err(bad)?;
        if params.m_cost() > MAX_STORED_M_COST {
            anyhow::bail!("stored password hash wants {} KiB", params.m_cost());
        }
        let mut salt = [0u8; 64];
        let salt = hash
            .salt
            .ok_or_else(|| anyhow::anyhow!("stored password hash has no salt"))?
            .decode_b64(&mut salt)
            .map_err(bad)?
            .to_vec();
        let expected = hash
            .hash
            .ok_or_else(|| anyhow::anyhow!("stored password hash has no output"))?;
        Ok(Stored {
            algorithm,
            version,
            params,
            salt,
            expected,
        })
    }

    /// Computes in `pooled` when it is large enough (it is for every hash moim writes), else in
    /// a buffer of its own for this one call.
    fn matches(&self, password: &[u8], pooled: &mut [Block]) -> anyhow::Result<bool> {
        let argon = Argon2::new(self.algorithm, self.version, self.params.clone());
        let mut own;
        let memory = if pooled.len() >= self.params.block_count() {
            pooled
        } else {
            own = vec![Block::default(); self.params.block_count()];
            &mut own[..]
        };
        let got = Output::init_with(self.expected.len(), |out| {
            argon
                .hash_password_into_with_memory(password, &self.salt, out, &mut *memory)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .map_err(|e| anyhow::anyhow!("verifying password: {e}"))?;
        // `Output`'s equality is constant-time.
        Ok(got == self.expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    fn tiny() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    fn hasher(workers: usize, wait_ms: u64) -> Hasher {
        Hasher::with_params(
            workers,
            Duration::from_millis(wait_ms),
            tiny(),
            Arc::new(Metrics::default()),
        )
    }

    #[tokio::test]
    async fn hashes_verify_here_and_with_the_reference_implementation() {
        let h = hasher(1, 1000);
        let phc = h.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h
            .verify("correct horse".into(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!h
            .verify("wrong horse".into(), Some(phc.clone()))
            .await
            .unwrap());
        // The crate's own verifier accepts what the pool wrote …
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
    }

    #[tokio::test]
    async fn verifies_hashes_written_by_the_reference_implementation() {
        use argon2::password_hash::PasswordHasher;
        // … and the pool accepts what the crate wrote with the default parameters (every hash
        // stored before the pool existed).
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::default()
            .hash_password(b"old password", &salt)
            .unwrap()
            .to_string();
        let h = Hasher::new(1, Duration::from_secs(5), Arc::new(Metrics::default()));
        assert!(h
            .verify("old password".into(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!h.verify("old passwore".into(), Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_accounts_never_match() {
        let h = Hasher::new(1, Duration::from_secs(5), Arc::new(Metrics::default()));
        assert!(!h.verify("moim-no-such-user".into(), None).await.unwrap());
        assert!(Stored::parse(DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn broken_stored_hashes_are_errors_not_matches() {
        let h = hasher(1, 1000);
        for bad in [
            "",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=999999999,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$bcrypt$x",
        ] {
            assert!(
                matches!(
                    h.verify("x".into(), Some(bad.into())).await,
                    Err(HashError::Internal(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_waits_for_a_turn_then_gets_busy() {
        let metrics = Arc::new(Metrics::default());
        let h = Hasher::with_params(1, Duration::from_millis(500), tiny(), metrics.clone());
        // Hold the only turn, as a long hash would.
        let held = h.inner.permits.clone().acquire_owned().await.unwrap();
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.hash("password".into()).await }
        });
        tokio::time::advance(Duration::from_millis(600)).await;
        match waiting.await.unwrap() {
            Err(HashError::Busy(b)) => assert_eq!(b.retry_after_s, 1),
            other => panic!("expected busy, got {:?}", other.map(|_| ())),
        }
        assert!(metrics
            .render(0, 0)
            .contains("moim_refused_total{reason=\"password_hash_busy\"} 1"));
        // Once the turn is free the next caller is served.
        drop(held);
        assert!(h.hash("password".into()).await.is_ok());
    }

    #[tokio::test]
    async fn the_pool_keeps_at_most_one_buffer_per_worker() {
        let h = hasher(2, 10_000);
        let all: Vec<_> = (0..16)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(format!("password {i}")).await })
            })
            .collect();
        for t in all {
            t.await.unwrap().unwrap();
        }
        assert!(h.inner.buffers.lock().len() <= 2);
        assert_eq!(h.inner.permits.available_permits(), 2);
    }
}
