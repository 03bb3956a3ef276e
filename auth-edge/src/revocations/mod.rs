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
//! - `redis`: `SUBSCRIBE auth:revocations` plus the `auth:revoked` sorted set (production).

mod message;
pub mod redis;
pub mod stream;

pub use message::{Message, Revocation};

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// The set of revoked, not yet expired session ids.
#[derive(Debug, Default)]
pub struct RevocationSet {
    // Read on every request, written rarely: a RwLock'd map is enough (reads do not contend).
    map: RwLock<HashMap<Box<str>, i64>>,
    leeway: i64,
}

impl RevocationSet {
    /// An empty set. `leeway_secs` is the token leeway: an entry is kept that much past `until`
    /// because a token is accepted that long past its `exp`.
    pub fn new(leeway_secs: i64) -> RevocationSet {
        RevocationSet {
            map: RwLock::default(),
            leeway: leeway_secs.max(0),
        }
    }

    fn still_relevant(&self, until: i64, now: i64) -> bool {
        until.saturating_add(self.leeway) >= now
    }

    /// Whether tokens of this session must be refused.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(sid)
    }

    /// Adds one revocation (keeping the later `until` if the sid is known). Returns whether it
    /// was relevant.
    pub fn revoke(&self, sid: &str, until: i64, now: i64) -> bool {
        if sid.is_empty() || !self.still_relevant(until, now) {
            return false;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(sid.into()).or_insert(until);
        *entry = (*entry).max(until);
        true
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
        added
    }

    /// Applies a parsed message; returns whether it was a revocation event.
    pub fn apply(&self, message: &Message, now: i64) -> bool {
        match message {
            Message::Snapshot { revocations } => {
                self.merge(revocations.iter().map(|r| (r.sid.as_str(), r.until)), now);
                false
            }
            Message::Revoked { sid, until } => {
                self.revoke(sid, *until, now);
                true
            }
            Message::Ping | Message::Unknown => false,
        }
    }

    /// Drops entries whose tokens have all expired; returns how many.
    pub fn prune(&self, now: i64) -> usize {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let before = map.len();
        let leeway = self.leeway;
        map.retain(|_, until| until.saturating_add(leeway) >= now);
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
mod tests {
    use super::*;

    #[test]
    fn parses_messages() {
        assert_eq!(
            Message::parse(br#"{"type":"snapshot","revocations":[{"sid":"a","until":5}]}"#)
                .unwrap(),
            Message::Snapshot {
                revocations: vec![Revocation {
                    sid: "a".into(),
                    until: 5
                }]
            }
        );
        assert_eq!(
            Message::parse(br#"{"type":"revoked","sid":"b","until":7,"extra":1}"#).unwrap(),
            Message::Revoked {
                sid: "b".into(),
                until: 7
            }
        );
        assert_eq!(
            Message::parse(br#"{"type":"ping"}"#).unwrap(),
            Message::Ping
        );
        assert_eq!(
            Message::parse(br#"{"type":"hello","x":1}"#).unwrap(),
            Message::Unknown
        );
        assert!(Message::parse(br#"{"type":"revoked","sid":"b"}"#).is_err());
        assert!(Message::parse(b"not json").is_err());
    }

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
            &Message::Revoked {
                sid: "a".into(),
                until: 10
            },
            5
        ));
        assert!(!set.apply(&Message::Ping, 5));
        assert!(!set.apply(
            &Message::Snapshot {
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
