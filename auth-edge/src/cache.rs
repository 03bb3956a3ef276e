//! The verified-token cache: SHA-256(token) -> identity, so a repeated token costs a hash and a
//! lookup instead of a signature check (~50 us for RS256).
//!
//! Bounded twice: by entry count and by memory (an entry weighs one unit per started 512 bytes,
//! and capacity is in units), and each entry expires no later than its token's `exp` (plus the
//! leeway the verifier allows). Only successful verifications are cached; revocation is checked
//! on every request by the caller, hit or miss, so a cached entry never outlives a logout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use moka::sync::Cache;
use moka::Expiry;

use crate::clock;
use crate::verifier::Identity;

/// The cache key: the token's SHA-256. Hashing keeps entries small (tokens are ~800 bytes)
/// and keeps token text out of memory dumps of the cache.
pub type TokenKey = [u8; 32];

/// SHA-256 of the token.
pub fn key(token: &str) -> TokenKey {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// One weight unit; a typical entry (UUID ids, header values) fits in one.
pub const UNIT_BYTES: usize = 512;

struct UntilExpiry;

impl Expiry<TokenKey, Arc<Identity>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenKey,
        value: &Arc<Identity>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = value.valid_until().saturating_sub(clock::unix_now()).max(0);
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

/// Verified tokens by hash. A capacity of zero disables caching.
pub struct TokenCache {
    inner: Option<Cache<TokenKey, Arc<Identity>>>,
}

impl TokenCache {
    /// A cache of about `entries` typical entries.
    pub fn new(entries: u64) -> TokenCache {
        if entries == 0 {
            return TokenCache { inner: None };
        }
        let cache = Cache::builder()
            .max_capacity(entries)
            .weigher(|_key: &TokenKey, id: &Arc<Identity>| {
                let bytes = std::mem::size_of::<TokenKey>() + id.approximate_size();
                u32::try_from(bytes.div_ceil(UNIT_BYTES)).unwrap_or(u32::MAX)
            })
            .expire_after(UntilExpiry)
            .build();
        TokenCache { inner: Some(cache) }
    }

    /// The cached identity for this token hash, if any and not expired.
    pub fn get(&self, key: &TokenKey) -> Option<Arc<Identity>> {
        self.inner.as_ref()?.get(key)
    }

    /// Remembers a successful verification.
    pub fn insert(&self, key: TokenKey, identity: Arc<Identity>) {
        if let Some(cache) = &self.inner {
            cache.insert(key, identity);
        }
    }

    /// Approximate number of entries (eventually consistent).
    pub fn entry_count(&self) -> u64 {
        self.inner.as_ref().map_or(0, Cache::entry_count)
    }

    /// Runs moka's deferred housekeeping now (tests, metrics accuracy).
    pub fn run_pending_tasks(&self) {
        if let Some(cache) = &self.inner {
            cache.run_pending_tasks();
        }
    }
}
