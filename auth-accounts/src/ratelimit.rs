//! Rate limits: fixed windows per client address and route, and a per-email throttle on failed
//! logins.
//!
//! With `REDIS_URL` the counters live in Redis, shared by every accounts replica. When Redis is
//! unreachable each replica falls back to its own in-process counters: the limit then applies per
//! replica (looser by at most the replica count) instead of disappearing, no request fails because
//! of it, and health reports Redis down. The per-email failure throttle counts unknown addresses
//! exactly like real ones, so a 429 says nothing about whether an account exists.
//!
//! This is the engine; the per-route middleware that feature routers attach is
//! `http::ratelimit`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited { retry_after_secs: u64 },
}

/// How long a Redis round trip may take before the in-process counters are used instead. The
/// connection manager makes commands wait while it reconnects (with backoff, up to minutes), so
/// without this bound a Redis outage would stall every limited request until the request timeout.
const REDIS_TIMEOUT: Duration = Duration::from_millis(300);
/// After a failure Redis is left alone this long, so an outage costs one slow request per pause
/// instead of one per request.
const REDIS_PAUSE: Duration = Duration::from_secs(2);

pub struct RateLimiter {
    local: Mutex<HashMap<String, (i64, u32)>>,
    redis: Option<redis::aio::ConnectionManager>,
    redis_paused_until: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(redis: Option<redis::aio::ConnectionManager>) -> Self {
        Self {
            local: Mutex::new(HashMap::new()),
            redis,
            redis_paused_until: Mutex::new(None),
        }
    }

    /// The Redis connection, unless there is none or it failed a moment ago.
    fn redis(&self) -> Option<redis::aio::ConnectionManager> {
        let redis = self.redis.as_ref()?;
        let paused = self
            .redis_paused_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match *paused {
            Some(until) if Instant::now() < until => None,
            _ => Some(redis.clone()),
        }
    }

    fn redis_failed(&self, error: &dyn std::fmt::Display) {
        tracing::warn!(error = %error, "rate limiter: Redis unavailable, using in-process counters");
        *self
            .redis_paused_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + REDIS_PAUSE);
    }

    /// Runs a Redis command within [`REDIS_TIMEOUT`]; `None` (and a pause) on failure.
    async fn redis_query<T: redis::FromRedisValue>(
        &self,
        run: impl FnOnce(
            redis::aio::ConnectionManager,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = redis::RedisResult<T>> + Send>,
        >,
    ) -> Option<T> {
        let conn = self.redis()?;
        match tokio::time::timeout(REDIS_TIMEOUT, run(conn)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(err)) => {
                self.redis_failed(&err);
                None
            }
            Err(_) => {
                self.redis_failed(&"timed out");
                None
            }
        }
    }

    /// Counts one hit on `key` in the current `window`-second window.
    pub async fn hit(&self, key: &str, limit: u32, window: i64, now: i64) -> Decision {
        let window = window.max(1);
        let start = now - now.rem_euclid(window);
        let retry_after = u64::try_from(start + window - now).unwrap_or(1).max(1);
        let count = match self.redis_hit(key, start, window).await {
            Some(count) => count,
            None => self.local_hit(key, start),
        };
        if count > u64::from(limit) {
            Decision::Limited {
                retry_after_secs: retry_after,
            }
        } else {
            Decision::Allowed
        }
    }

    /// The current count without adding to it.
    pub async fn peek(&self, key: &str, window: i64, now: i64) -> u64 {
        let window = window.max(1);
        let start = now - now.rem_euclid(window);
        let k = format!("rl:{key}:{start}");
        let got = self
            .redis_query(move |mut conn| {
                Box::pin(async move {
                    redis::cmd("GET")
                        .arg(k)
                        .query_async::<Option<u64>>(&mut conn)
                        .await
                })
            })
            .await;
        if let Some(v) = got {
            return v.unwrap_or(0);
        }
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        match local.get(key) {
            Some((s, c)) if *s == start => u64::from(*c),
            _ => 0,
        }
    }

    async fn redis_hit(&self, key: &str, start: i64, window: i64) -> Option<u64> {
        let k = format!("rl:{key}:{start}");
        self.redis_query(move |mut conn| {
            Box::pin(async move {
                redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg(&k)
                    .cmd("EXPIRE")
                    .arg(&k)
                    .arg(window + 1)
                    .query_async::<(u64, i64)>(&mut conn)
                    .await
            })
        })
        .await
        .map(|(count, _)| count)
    }

    fn local_hit(&self, key: &str, start: i64) -> u64 {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if local.len() > 100_000 {
            // Old windows are dead weight; bound memory under an address-spraying flood.
            local.retain(|_, (s, _)| *s >= start);
        }
        let entry = local.entry(key.to_string()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        u64::from(entry.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fixed_window_in_process() {
        let rl = RateLimiter::new(None);
        let now = 1_000_020; // 20 s into a minute window starting at 1_000_020 - 20... any value works
        for _ in 0..5 {
            assert_eq!(rl.hit("k", 5, 60, now).await, Decision::Allowed);
        }
        match rl.hit("k", 5, 60, now).await {
            Decision::Limited { retry_after_secs } => assert!((1..=60).contains(&retry_after_secs)),
            other => panic!("expected a limit, got {other:?}"),
        }
        // Another key is independent; the next window starts fresh.
        assert_eq!(rl.hit("other", 5, 60, now).await, Decision::Allowed);
        assert_eq!(rl.hit("k", 5, 60, now + 60).await, Decision::Allowed);
        assert_eq!(rl.peek("k", 60, now + 60).await, 1);
    }
}
