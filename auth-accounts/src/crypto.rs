//! Secrets: random tokens, their hashes at rest, and password hashing.
//!
//! One-time tokens (email links) and refresh tokens are 256 random bits, shown to the client once and
//! stored only as SHA-256. Password hashing is CPU-heavy (bcrypt cost 12 is ~0.4 s here), so it runs
//! on the blocking pool behind a semaphore: a burst of logins queues instead of starving the async
//! threads that serve everything else.

use std::sync::Arc;

use aws_lc_rs::{digest, hmac, rand};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::config::{PasswordAlgorithm, PasswordConfig};

/// Why randomness or password hashing failed (a server error, never the client's).
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The system's random generator failed.
    #[error("system random generator failed")]
    Random,
    /// bcrypt failed (or a stored bcrypt hash is malformed).
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    /// The argon2 parameters are invalid.
    #[error("argon2 parameters: {0}")]
    Argon2(#[from] argon2::Error),
    /// argon2 failed (or a stored argon2 hash is malformed).
    #[error("argon2: {0}")]
    PasswordHash(#[from] argon2::password_hash::Error),
    /// The blocking hashing task panicked or was cancelled.
    #[error("password hashing task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The hasher is shutting down.
    #[error("password hashing is closed")]
    Closed(#[from] tokio::sync::AcquireError),
}

/// `n` bytes from the system's random generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes).map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_token() -> Result<String, CryptoError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// Lowercase hex SHA-256: how tokens are stored and looked up.
pub fn sha256_hex(input: &str) -> String {
    hex(digest::digest(&digest::SHA256, input.as_bytes()).as_ref())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Constant-time equality for secrets and their hashes.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The refresh token that follows `token` in its family: HMAC-SHA256 under the family's own random
/// key. Deterministic on purpose: a retry or a concurrent request with the same token inside the grace
/// window gets the very same successor instead of a second, diverging one. Without the family key
/// (kept server-side) nobody can compute a successor from a stolen token.
pub fn next_refresh_token(family_key_hex: &str, token: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, family_key_hex.as_bytes());
    URL_SAFE_NO_PAD.encode(hmac::sign(&key, token.as_bytes()).as_ref())
}

const BCRYPT_SHA256_PREFIX: &str = "$bcrypt-sha256$";

/// Hashes and verifies passwords with the configured algorithm.
#[derive(Clone)]
pub struct PasswordHasher {
    algorithm: PasswordAlgorithm,
    bcrypt_cost: u32,
    argon2_memory_kib: u32,
    argon2_iterations: u32,
    permits: Arc<Semaphore>,
    /// A hash of a random password with the current parameters: verifying against it makes a login
    /// for an unknown email cost the same time as one for a real account.
    dummy_hash: Arc<String>,
}

/// The outcome of a password check.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// The password matches.
    pub ok: bool,
    /// The stored hash uses an older algorithm or weaker parameters than configured.
    pub needs_rehash: bool,
}

impl PasswordHasher {
    /// A hasher for `config`; makes the dummy hash that unknown users are checked against.
    pub fn new(config: &PasswordConfig) -> Result<Self, CryptoError> {
        let mut hasher = Self {
            algorithm: config.algorithm,
            bcrypt_cost: config.bcrypt_cost,
            argon2_memory_kib: config.argon2_memory_kib,
            argon2_iterations: config.argon2_iterations,
            permits: Arc::new(Semaphore::new(config.concurrency)),
            dummy_hash: Arc::new(String::new()),
        };
        let dummy = hasher.hash_blocking(&random_token()?)?;
        hasher.dummy_hash = Arc::new(dummy);
        Ok(hasher)
    }

    /// Hashes `password` with the configured algorithm, off the async threads.
    pub async fn hash(&self, password: &str) -> Result<String, CryptoError> {
        let this = self.clone();
        let password = password.to_string();
        self.run(move || this.hash_blocking(&password)).await?
    }

    /// Verifies against `stored`, or against the dummy hash when there is no account.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, CryptoError> {
        let this = self.clone();
        let password = password.to_string();
        let known = stored.is_some();
        let stored = stored
            .map(str::to_string)
            .unwrap_or_else(|| this.dummy_hash.to_string());
        let mut result = self
            .run(move || this.verify_blocking(&password, &stored))
            .await?;
        if !known {
            result = Verified {
                ok: false,
                needs_rehash: false,
            };
        }
        Ok(result)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CryptoError> {
        // The permit moves into the blocking task: a request dropped mid-hash (client gone,
        // timeout) must not free a slot while its hash still occupies a core.
        let permit = self.permits.clone().acquire_owned().await?;
        Ok(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await?)
    }

    fn argon2(&self) -> Result<argon2::Argon2<'static>, CryptoError> {
        let params = argon2::Params::new(self.argon2_memory_kib, self.argon2_iterations, 1, None)?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }

    fn hash_blocking(&self, password: &str) -> Result<String, CryptoError> {
        match self.algorithm {
            PasswordAlgorithm::Bcrypt => {
                // bcrypt reads at most 72 bytes. Longer passwords (allowed up to 128 characters) are
                // pre-hashed with SHA-256 so every character counts, and marked so verify knows.
                if password.len() > 72 {
                    let inner = bcrypt::hash(prehash(password), self.bcrypt_cost)?;
                    Ok(format!("{BCRYPT_SHA256_PREFIX}{inner}"))
                } else {
                    Ok(bcrypt::hash(password, self.bcrypt_cost)?)
                }
            }
            PasswordAlgorithm::Argon2id => {
                use argon2::password_hash::{PasswordHasher as _, SaltString};
                let salt = SaltString::encode_b64(&random_bytes::<16>()?)?;
                Ok(self
                    .argon2()?
                    .hash_password(password.as_bytes(), &salt)?
                    .to_string())
            }
        }
    }

    fn verify_blocking(&self, password: &str, stored: &str) -> Verified {
        let fail = Verified {
            ok: false,
            needs_rehash: false,
        };
        if let Some(inner) = stored.strip_prefix(BCRYPT_SHA256_PREFIX) {
            let ok = bcrypt::verify(prehash(password), inner).unwrap_or(false);
            let needs_rehash = self.algorithm != PasswordAlgorithm::Bcrypt
                || bcrypt_cost(inner) < self.bcrypt_cost;
            return Verified { ok, needs_rehash };
        }
        if stored.starts_with("$2") {
            if password.len() > 72 {
                // A plain bcrypt hash can only have come from a password of at most 72 bytes
                // (ours pre-hash longer ones); the old service's library refused longer input too.
                // The refusal still costs one bcrypt at the stored cost: answering at once would
                // tell a prober which accounts have plain hashes (old or unknown ones, whose dummy
                // hash is plain) from those with pre-hashed ones.
                let _ = bcrypt::verify(prehash(password), stored);
                return fail;
            }
            let ok = bcrypt::verify(password, stored).unwrap_or(false);
            let needs_rehash = self.algorithm != PasswordAlgorithm::Bcrypt
                || bcrypt_cost(stored) < self.bcrypt_cost;
            return Verified { ok, needs_rehash };
        }
        if stored.starts_with("$argon2") {
            use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
            let Ok(parsed) = PasswordHash::new(stored) else {
                return fail;
            };
            let ok = argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            let weaker = parsed.params.get_decimal("m").unwrap_or(0) < self.argon2_memory_kib
                || parsed.params.get_decimal("t").unwrap_or(0) < self.argon2_iterations;
            let needs_rehash = self.algorithm != PasswordAlgorithm::Argon2id || weaker;
            return Verified { ok, needs_rehash };
        }
        fail
    }
}

fn prehash(password: &str) -> String {
    use base64::engine::general_purpose::STANDARD;
    STANDARD.encode(digest::digest(&digest::SHA256, password.as_bytes()).as_ref())
}

fn bcrypt_cost(hash: &str) -> u32 {
    // "$2b$12$...": the cost is the third field.
    hash.split('$')
        .nth(2)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hasher(pairs: &[(&str, &str)]) -> PasswordHasher {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PasswordHasher::new(&crate::config::Config::from_vars(&vars).unwrap().passwords).unwrap()
    }

    #[tokio::test]
    async fn a_long_password_against_a_plain_hash_costs_a_bcrypt_too() {
        let h = hasher(&[("BCRYPT_COST", "10")]);
        let plain = h.hash("short password").await.unwrap();
        assert!(plain.starts_with("$2"));
        let long = "x".repeat(100);
        let time = |password: String| {
            let (h, plain) = (h.clone(), plain.clone());
            async move {
                let started = std::time::Instant::now();
                assert!(!h.verify(&password, Some(&plain)).await.unwrap().ok);
                started.elapsed()
            }
        };
        let short_took = time("wrong password".into()).await;
        let long_took = time(long).await;
        // Same work: one bcrypt at cost 10 each (an early refusal took microseconds).
        assert!(
            long_took * 3 > short_took,
            "long {long_took:?} vs short {short_took:?}"
        );
    }

    #[tokio::test]
    async fn a_dropped_hash_keeps_its_permit_until_the_hash_ends() {
        let h = hasher(&[("BCRYPT_COST", "12"), ("PASSWORD_HASH_CONCURRENCY", "1")]);
        let busy = h.clone();
        let request = tokio::spawn(async move { busy.hash("correct horse").await });
        while h.permits.available_permits() == 1 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // The client goes away mid-hash: the hash still runs, so its slot stays taken.
        request.abort();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(
            h.permits.available_permits(),
            0,
            "permit freed while hashing"
        );
        let start = std::time::Instant::now();
        while h.permits.available_permits() == 0 {
            assert!(start.elapsed() < std::time::Duration::from_secs(30));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn bcrypt_round_trip_and_long_passwords() {
        let h = hasher(&[("BCRYPT_COST", "4")]);
        let stored = h.hash("correct horse").await.unwrap();
        assert!(stored.starts_with("$2"));
        assert!(h.verify("correct horse", Some(&stored)).await.unwrap().ok);
        assert!(!h.verify("wrong horse", Some(&stored)).await.unwrap().ok);

        // Two passwords equal in their first 72 bytes must not be interchangeable.
        let a = format!("{}{}", "a".repeat(72), "tail-one");
        let b = format!("{}{}", "a".repeat(72), "tail-two");
        let stored = h.hash(&a).await.unwrap();
        assert!(stored.starts_with(BCRYPT_SHA256_PREFIX));
        assert!(h.verify(&a, Some(&stored)).await.unwrap().ok);
        assert!(!h.verify(&b, Some(&stored)).await.unwrap().ok);
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        let h = hasher(&[("BCRYPT_COST", "4")]);
        let v = h.verify("anything at all", None).await.unwrap();
        assert!(!v.ok);
    }

    #[tokio::test]
    async fn upgrade_is_requested_for_weaker_or_other_hashes() {
        let weak = hasher(&[("BCRYPT_COST", "4")]);
        let stored = weak.hash("password-123").await.unwrap();
        let strong = hasher(&[("BCRYPT_COST", "5")]);
        let v = strong.verify("password-123", Some(&stored)).await.unwrap();
        assert!(v.ok && v.needs_rehash);
        let argon = hasher(&[
            ("PASSWORD_HASH_ALGORITHM", "argon2id"),
            ("ARGON2_MEMORY_KIB", "1024"),
            ("ARGON2_ITERATIONS", "1"),
        ]);
        let v = argon.verify("password-123", Some(&stored)).await.unwrap();
        assert!(v.ok && v.needs_rehash);
        let a2 = argon.hash("password-123").await.unwrap();
        assert!(a2.starts_with("$argon2id$"));
        let v = argon.verify("password-123", Some(&a2)).await.unwrap();
        assert_eq!(
            v,
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!argon.verify("password-124", Some(&a2)).await.unwrap().ok);
        let v = weak.verify("password-123", Some(&a2)).await.unwrap();
        assert!(v.ok && v.needs_rehash);
    }

    #[test]
    fn tokens_and_hashes() {
        let t = random_token().unwrap();
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token().unwrap());
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
        let n1 = next_refresh_token("key", "token");
        assert_eq!(n1, next_refresh_token("key", "token"));
        assert_ne!(n1, next_refresh_token("other-key", "token"));
        assert_eq!(n1.len(), 43);
    }
}
