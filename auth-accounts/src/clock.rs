//! Wall-clock time as unix seconds, with an offset that tests can move forward.
//!
//! Token expiry, the refresh grace window and one-time-token lifetimes are all compared against
//! this clock, so a test can check "after 16 minutes the token is refused" without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The time, in Unix seconds: the system clock plus an offset that tests advance.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Current unix time in seconds, plus any test offset.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.offset.load(Ordering::Relaxed)
    }

    /// Moves this clock forward (tests only; production never calls it).
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// Formats unix seconds as RFC 3339 in UTC, the format the old service's JSON used.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
