//! Revoked sessions, pushed to the edge and checked on every request.
//!
//! Access tokens are verified locally and live 15 minutes, so logout, session deletion and
//! password changes would not take effect at the edge until expiry. Accounts therefore pushes
//! each revoked session id (`sid`) with `until`, the time after which every token of that session
//! has expired anyway. The set stays small: entries are dropped once `until` (plus the leeway)
//! has passed.
//!
//! Sources (both may run at once; they merge into the same set):
//! - `stream`: the NDJSON stream accounts serves (embedded mode);
//! - `redis`: the pub/sub channel plus the sorted set (production).
//!
//! Both carry [`FeedMessage`]s; the message types, the stream path and the Redis names are the
//! token crate's (`auth_token::revocation_feed`), shared with accounts.

pub mod redis;
pub mod stream;

use std::time::Duration;

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// The feed's messages, defined once in the token crate for both ends.
pub use auth_token::{FeedMessage, Revocation};

/// What the edge does when no revocation source has been heard from for too long (the feed
/// down, or refusing the edge's token): it can no longer know which sessions were revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// Keep accepting tokens (revoked sessions included) and stay ready; log and count it.
    Open,
    /// Not ready, and answer 503 instead of trusting a token ("cannot decide").
    Closed,
}

/// The staleness bound and what happens past it (`AUTH_EDGE_REVOCATION_FAIL_MODE`,
/// `AUTH_EDGE_REVOCATION_MAX_STALENESS_SECONDS`). Applies only when a source is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StalenessPolicy {
    /// Open or closed.
    pub mode: FailMode,
    /// How long without hearing from any source before the set counts as stale.
    pub max_staleness: Duration,
}

impl Default for StalenessPolicy {
    fn default() -> Self {
        StalenessPolicy {
            mode: FailMode::Closed,
            max_staleness: Duration::from_secs(60),
        }
    }
}

impl StalenessPolicy {
    /// Whether the set is stale at `now_ms`, given when a source was last heard from
    /// (`heard_ms`, 0 for never) and when the edge started (a fresh edge gets one bound's
    /// grace to connect before its answers change; readiness gets none, see
    /// [`StalenessPolicy::ready`]).
    pub fn stale(&self, heard_ms: i64, started_ms: i64, now_ms: i64) -> bool {
        let since = heard_ms.max(started_ms);
        now_ms.saturating_sub(since)
            > i64::try_from(self.max_staleness.as_millis()).unwrap_or(i64::MAX)
    }

    /// Readiness: in closed mode, only once a source has been heard from, and while it is
    /// not stale.
    pub fn ready(&self, heard_ms: i64, now_ms: i64) -> bool {
        self.mode == FailMode::Open || (heard_ms > 0 && !self.stale(heard_ms, heard_ms, now_ms))
    }
}

/// The set of revoked, not yet expired session ids.
#[derive(Debug)]
pub struct RevocationSet {
    // Read on every request, written rarely: a RwLock'd map is enough (reads do not contend).
    map: RwLock<HashMap<Box<str>, i64>>,
    leeway: i64,
    /// Bumped on every new entry: what long-lived connections (the sidecar's WebSockets) wait
    /// on to re-check their session, instead of polling the set.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for RevocationSet {
    fn default() -> Self {
        RevocationSet::new(0)
    }
}

impl RevocationSet {
    /// An empty set. `leeway_secs` is the token leeway: an entry is kept that much past `until`
    /// because a token is accepted that long past its `exp`.
    pub fn new(leeway_secs: i64) -> RevocationSet {
        RevocationSet {
            map: RwLock::default(),
            leeway: leeway_secs.max(0),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// A receiver that wakes whenever a revocation is added (a connection authorised earlier
    /// re-checks its session then).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A token of the session is accepted up to `until` plus the leeway, so it must be
    /// remembered that long.
    fn still_relevant(&self, until: i64, now: i64) -> bool {
        auth_token::accepted_until(until, self.leeway) >= now
    }

    /// Whether tokens of this session must be refused.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(sid)
    }

    /// Adds one revocation (keeping the later `until` if the sid is known). Returns whether it
    /// was new: relevant, and not known before (a repeat from a second source or replica is not
    /// a new revocation).
    pub fn revoke(&self, sid: &str, until: i64, now: i64) -> bool {
        if sid.is_empty() || !self.still_relevant(until, now) {
            return false;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(sid) {
            Some(known) => {
                *known = (*known).max(until);
                false
            }
            None => {
                map.insert(sid.into(), until);
                drop(map);
                self.changed();
                true
            }
        }
    }

    /// Merges a snapshot. Revocations are permanent, so a snapshot adds to the set and never
    /// removes from it (an entry absent from a later snapshot has simply expired there).
    pub fn merge<'a>(
        &self,
        revocations: impl IntoIterator<Item = (&'a str, i64)>,
        now: i64,
    ) -> usize {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let mut added = 0;
        for (sid, until) in revocations {
            if sid.is_empty() || !self.still_relevant(until, now) {
                continue;
            }
            let entry = map.entry(sid.into()).or_insert_with(|| {
                added += 1;
                until
            });
            *entry = (*entry).max(until);
        }
        drop(map);
        if added > 0 {
            self.changed();
        }
        added
    }

    /// Applies a parsed message; returns whether it was a new revocation (what
    /// `auth_edge_revocation_events_total` counts).
    pub fn apply(&self, message: &FeedMessage, now: i64) -> bool {
        match message {
            FeedMessage::Snapshot { revocations } => {
                self.merge(revocations.iter().map(|r| (r.sid.as_str(), r.until)), now);
                false
            }
            FeedMessage::Revoked(r) => self.revoke(&r.sid, r.until, now),
            FeedMessage::Ping | FeedMessage::Unknown => false,
        }
    }

    /// Drops entries whose tokens have all expired; returns how many.
    pub fn prune(&self, now: i64) -> usize {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let before = map.len();
        let leeway = self.leeway;
        map.retain(|_, until| auth_token::accepted_until(*until, leeway) >= now);
        before - map.len()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod staleness_tests {
    use std::time::Duration;

    use super::{FailMode, StalenessPolicy};

    #[test]
    fn stale_after_the_bound_with_one_bound_of_grace_at_start() {
        let p = StalenessPolicy {
            mode: FailMode::Closed,
            max_staleness: Duration::from_secs(10),
        };
        let started = 1_000_000;
        // Never heard from: fresh for one bound after start (answers), never ready.
        assert!(!p.stale(0, started, started + 10_000));
        assert!(p.stale(0, started, started + 10_001));
        assert!(!p.ready(0, started + 1));
        // Heard from 10 s ago: still fresh; 10.001 s: stale, and not ready.
        let heard = started + 50_000;
        assert!(!p.stale(heard, started, heard + 10_000));
        assert!(p.ready(heard, heard + 10_000));
        assert!(p.stale(heard, started, heard + 10_001));
        assert!(!p.ready(heard, heard + 10_001));
        // Open mode: stale all the same (for the log and the gauge), but always ready.
        let open = StalenessPolicy {
            mode: FailMode::Open,
            ..p
        };
        assert!(open.stale(heard, started, heard + 10_001));
        assert!(open.ready(0, started + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_merge_prune() {
        let set = RevocationSet::new(30);
        let now = 1_000;
        assert!(set.revoke("s1", now + 900, now));
        assert!(set.is_revoked("s1"));
        assert!(!set.is_revoked("s2"));
        // Past until + leeway: every token of it has expired, nothing to remember.
        assert!(!set.revoke("old", now - 31, now));
        assert!(set.revoke("recent", now - 30, now));
        assert!(!set.revoke("", now + 10, now));
        // A repeat is not new, but keeps the later until.
        assert!(!set.revoke("recent", now + 60, now));
        assert_eq!(set.len(), 2);

        // Snapshots add, never remove, and keep the later until.
        let added = set.merge([("s1", now + 10), ("s3", now + 100), ("gone", 0)], now);
        assert_eq!(added, 1);
        assert!(set.is_revoked("s1") && set.is_revoked("s3") && !set.is_revoked("gone"));

        assert_eq!(set.prune(now + 131), 2, "recent and s3 expire");
        assert!(set.is_revoked("s1"));
        assert_eq!(set.prune(now + 930), 0, "s1 kept its later until");
        assert_eq!(set.prune(now + 931), 1);
        assert!(set.is_empty());
    }

    #[test]
    fn apply_reports_events() {
        let set = RevocationSet::new(0);
        assert!(set.apply(
            &FeedMessage::Revoked(Revocation {
                sid: "a".into(),
                until: 10
            }),
            5
        ));
        // The same revocation again (another source, another replica): not a new event.
        assert!(!set.apply(
            &FeedMessage::Revoked(Revocation {
                sid: "a".into(),
                until: 10
            }),
            5
        ));
        assert!(!set.apply(&FeedMessage::Ping, 5));
        assert!(!set.apply(
            &FeedMessage::Snapshot {
                revocations: vec![Revocation {
                    sid: "b".into(),
                    until: 10
                }]
            },
            5
        ));
        assert!(set.is_revoked("a") && set.is_revoked("b"));
    }
}
