//! The token lifetime policy: how long an access token lives, how much clock skew is
//! tolerated, and from those the one number both services derive their bookkeeping from.
//!
//! The **horizon** (access lifetime + leeway) is how long after an event a token issued before
//! it can still be accepted somewhere. Revoked sessions must be remembered that long (the
//! revocation feed's `until`, and the database rows the cleanup keeps), and a retired signing
//! key must stay published that long. It is computed here once, not at each of those places.

/// Access-token lifetime and verification leeway, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenLifetime {
    access_ttl: i64,
    leeway: i64,
    horizon: i64,
}

impl TokenLifetime {
    /// Negative values count as zero.
    pub fn new(access_ttl_secs: i64, leeway_secs: i64) -> TokenLifetime {
        let access_ttl = access_ttl_secs.max(0);
        let leeway = leeway_secs.max(0);
        TokenLifetime {
            access_ttl,
            leeway,
            horizon: access_ttl.saturating_add(leeway),
        }
    }

    /// How long an access token lives.
    pub fn access_ttl(&self) -> i64 {
        self.access_ttl
    }

    /// Allowed clock skew for `exp` / `iat` / `nbf`.
    pub fn leeway(&self) -> i64 {
        self.leeway
    }

    /// `exp` of a token issued at `issued_at`.
    pub fn expires_at(&self, issued_at: i64) -> i64 {
        issued_at.saturating_add(self.access_ttl)
    }

    /// How long after an event (revocation, key retirement) a token issued before it can still
    /// be accepted.
    pub fn horizon(&self) -> i64 {
        self.horizon
    }

    /// Until when a session revoked at `revoked_at` must be remembered (the feed's `until`).
    pub fn revoked_until(&self, revoked_at: i64) -> i64 {
        revoked_at.saturating_add(self.horizon)
    }

    /// Whether everything issued before `at` has expired by `now` (a retired key can go, a
    /// revoked session can be forgotten).
    pub fn is_past_horizon(&self, at: i64, now: i64) -> bool {
        self.revoked_until(at) < now
    }
}

/// The last second at which a token expiring at `exp` is accepted, given the leeway (negative
/// leeway counts as zero). Verifiers and caches use this, never their own `exp + leeway`.
pub fn accepted_until(exp: i64, leeway_secs: i64) -> i64 {
    exp.saturating_add(leeway_secs.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizon_and_derived_times() {
        let l = TokenLifetime::new(900, 30);
        assert_eq!((l.access_ttl(), l.leeway(), l.horizon()), (900, 30, 930));
        assert_eq!(l.expires_at(1_000), 1_900);
        assert_eq!(l.revoked_until(1_000), 1_930);
        assert!(!l.is_past_horizon(1_000, 1_930));
        assert!(l.is_past_horizon(1_000, 1_931));
        assert_eq!(TokenLifetime::new(-5, -1).horizon(), 0);
        assert_eq!(accepted_until(100, 30), 130);
        assert_eq!(accepted_until(100, -30), 100);
        assert_eq!(accepted_until(i64::MAX, 30), i64::MAX);
    }
}
