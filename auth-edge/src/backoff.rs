//! Exponential backoff with jitter for reconnect loops.
//!
//! Jitter matters here: when accounts or Redis restarts, every edge replica reconnects, and
//! without it they all come back in the same millisecond.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Doubling delays from `base` up to `max`, each scaled by a random factor in [0.5, 1.0).
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `base`, never above `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// Back to `base` after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        let full = self.base.saturating_mul(factor).min(self.max);
        // RandomState is seeded randomly per instance: enough randomness for jitter without a
        // rand dependency.
        let random = RandomState::new().build_hasher().finish();
        let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
        full.mul_f64(0.5 + unit / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_max_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let ranges = [
            (50, 100),
            (100, 200),
            (200, 400),
            (400, 800),
            (500, 1000),
            (500, 1000),
        ];
        for (lo, hi) in ranges {
            let d = b.next_delay().as_millis();
            assert!((lo..=hi).contains(&d), "{d} not in {lo}..={hi}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
