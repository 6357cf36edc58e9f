//! The community's orderings, as pure functions of counts and times, so they can be pinned by
//! golden tests at a fixed clock.
//!
//! - **Hot** ([`hot`]): Reddit's key, `log10(max(likes, 1)) + created_s / 45000`: ten times the
//!   likes are worth 12.5 hours of youth. It depends on nothing that changes by itself with
//!   time, so it is stored on the post, rewritten in the same transaction as each like, and
//!   indexed; no job has to recompute it and none can leave it stale (Lemmy's 10-minute job did).
//!   Stored as an integer (the key × 10⁶) so both databases compare it exactly.
//! - **Places** by the Bayesian average of their reviews ([`bayesian`]): a place with one 5-star
//!   review does not outrank one with forty 4.8s.
//! - **Comments** by the Wilson score lower bound of their up and down votes ([`wilson`]).

/// Seconds that weigh as much as a tenfold of likes.
pub const HOT_SECONDS: f64 = 45_000.0;
/// Reviews' weight of the prior in [`bayesian`]: the site's mean counts as this many reviews.
pub const BAYES_PRIOR_COUNT: f64 = 5.0;
/// The prior mean when the site has no reviews yet.
pub const BAYES_DEFAULT_MEAN: f64 = 3.0;

/// The hot key of a post with `likes` created at `created_ms` (unix milliseconds).
pub fn hot(likes: i64, created_ms: i64) -> i64 {
    let order = (likes.max(1) as f64).log10();
    let key = order + (created_ms as f64 / 1000.0) / HOT_SECONDS;
    (key * 1e6).round() as i64
}

/// The Bayesian average of `count` ratings summing to `sum`, pulled toward the site's `mean`.
pub fn bayesian(sum: i64, count: i64, mean: f64) -> f64 {
    (BAYES_PRIOR_COUNT * mean + sum as f64) / (BAYES_PRIOR_COUNT + count as f64)
}

/// The lower bound of the 95 % Wilson score interval of `up` among `up + down` votes; 0 with
/// no votes.
pub fn wilson(up: i64, down: i64) -> f64 {
    let n = (up + down) as f64;
    if n <= 0.0 {
        return 0.0;
    }
    let z = 1.959_963_984_540_054_f64;
    let p = up as f64 / n;
    let z2 = z * z;
    (p + z2 / (2.0 * n) - z * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt()) / (1.0 + z2 / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01T00:00:00Z.
    const T0: i64 = 1_796_083_200_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn hot_golden_values() {
        assert_eq!(hot(0, T0), 39_912_960_000);
        assert_eq!(hot(1, T0), hot(0, T0));
        assert_eq!(hot(10, T0), 39_913_960_000);
        assert_eq!(hot(100, T0 + HOUR), 39_915_040_000);
    }

    #[test]
    fn hot_never_puts_a_year_old_post_over_todays() {
        let year_old = hot(100_000, T0 - 365 * 24 * HOUR);
        let today = hot(1, T0);
        assert!(today > year_old);
        // Ten times the likes equal 12.5 hours.
        assert_eq!(hot(10, T0), hot(1, T0 + 45_000_000));
        // A like never lowers a post.
        for likes in 0..1000 {
            assert!(hot(likes + 1, T0) >= hot(likes, T0));
        }
    }

    #[test]
    fn bayesian_golden_values() {
        // One 5-star review against the site's mean of 3: (5×3 + 5) / 6.
        assert!((bayesian(5, 1, 3.0) - 20.0 / 6.0).abs() < 1e-12);
        // Forty reviews averaging 4.8 beat it.
        assert!(bayesian(192, 40, 3.0) > bayesian(5, 1, 3.0));
        assert!((bayesian(0, 0, 4.2) - 4.2).abs() < 1e-12);
    }

    #[test]
    fn wilson_golden_values() {
        assert_eq!(wilson(0, 0), 0.0);
        assert!((wilson(1, 0) - 0.206_549).abs() < 1e-6);
        assert!((wilson(10, 0) - 0.722_467).abs() < 1e-6);
        assert!((wilson(60, 40) - 0.502_002).abs() < 1e-6);
        // Many votes mostly up beat one vote up.
        assert!(wilson(90, 10) > wilson(1, 0));
        assert!(wilson(2, 0) > wilson(2, 1));
    }
}
