//! The verified-token cache: SHA-256(token) -> identity, so a repeated token costs a hash and a
//! lookup instead of a signature check (~35-50 us for RS256).
//!
//! Bounded twice: by entry count and by memory (an entry weighs one unit per started 512 bytes,
//! and capacity is in units). `quick_cache` rather than moka: its per-entry overhead is ~100 bytes
//! against moka's ~400 (measured), which keeps 100,000 cached tokens under 50 MB of RSS. It has
//! no per-entry expiry, so expiry is checked on read: the verifier treats an entry past its
//! token's `exp` (plus leeway) or from a withdrawn key set as absent and removes it; stale entries
//! that are never read again are the first to be evicted (CLOCK-Pro keeps what is read).
//! Only successful verifications are cached; revocation is checked on every request by the
//! caller, hit or miss, so a cached entry never outlives a logout.

use std::sync::Arc;

use aws_lc_rs::digest;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::identity::Identity;

/// The cache key: the token's SHA-256. Hashing keeps entries small (tokens are ~800 bytes)
/// and keeps token text out of memory dumps of the cache.
pub type TokenKey = [u8; 32];

/// SHA-256 of the token.
pub fn key(token: &str) -> TokenKey {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// One weight unit; a typical entry (UUID ids) fits in one.
pub const UNIT_BYTES: usize = 512;

/// Weighs an entry in [`UNIT_BYTES`] units, so unusually long ids count for more.
#[derive(Clone, Copy)]
struct UnitWeighter;

impl Weighter<TokenKey, Arc<Identity>> for UnitWeighter {
    fn weight(&self, _key: &TokenKey, identity: &Arc<Identity>) -> u64 {
        let bytes = std::mem::size_of::<TokenKey>() + identity.approximate_size();
        bytes.div_ceil(UNIT_BYTES) as u64
    }
}

/// Verified tokens by hash. A capacity of zero disables caching.
pub struct TokenCache {
    inner: Option<Cache<TokenKey, Arc<Identity>, UnitWeighter>>,
}

impl TokenCache {
    /// A cache of about `entries` typical entries.
    pub fn new(entries: u64) -> TokenCache {
        if entries == 0 {
            return TokenCache { inner: None };
        }
        let items = usize::try_from(entries).unwrap_or(usize::MAX);
        TokenCache {
            inner: Some(Cache::with_weighter(items, entries, UnitWeighter)),
        }
    }

    /// The cached identity for this token hash, if any. The caller checks that it is still
    /// valid (expiry, key epoch) and calls [`TokenCache::remove_stale`] if not.
    pub fn get(&self, key: &TokenKey) -> Option<Arc<Identity>> {
        self.inner.as_ref()?.get(key)
    }

    /// Remembers a successful verification.
    pub fn insert(&self, key: TokenKey, identity: Arc<Identity>) {
        if let Some(cache) = &self.inner {
            cache.insert(key, identity);
        }
    }

    /// Drops `stale` if it is still the entry for `key` (a concurrent request may already have
    /// replaced it with a fresh verification, which must stay).
    pub fn remove_stale(&self, key: &TokenKey, stale: &Arc<Identity>) {
        if let Some(cache) = &self.inner {
            cache.remove_if(key, |current| Arc::ptr_eq(current, stale));
        }
    }

    /// Number of entries.
    pub fn entry_count(&self) -> u64 {
        self.inner.as_ref().map_or(0, |c| c.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_capacity_and_removes_only_the_stale_entry() {
        let cache = TokenCache::new(100);
        for i in 0..1000u32 {
            cache.insert(
                key(&i.to_string()),
                Arc::new(Identity::for_tests(&i.to_string())),
            );
        }
        assert!(cache.entry_count() <= 100, "{}", cache.entry_count());

        let k = key("t");
        let old = Arc::new(Identity::for_tests("old"));
        let new = Arc::new(Identity::for_tests("new"));
        cache.insert(k, old.clone());
        cache.insert(k, new.clone());
        cache.remove_stale(&k, &old);
        assert!(Arc::ptr_eq(&cache.get(&k).unwrap(), &new));
        cache.remove_stale(&k, &new);
        assert!(cache.get(&k).is_none());

        let off = TokenCache::new(0);
        off.insert(k, new);
        assert!(off.get(&k).is_none());
        assert_eq!(off.entry_count(), 0);
    }
}
