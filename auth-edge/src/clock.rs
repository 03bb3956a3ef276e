//! Wall-clock time as unix seconds/milliseconds: token `exp` and revocation `until` are unix
//! seconds, so the edge compares against the system clock (not a monotonic one).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    unix_now_ms() / 1000
}

/// Now, in unix milliseconds.
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
