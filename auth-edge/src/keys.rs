//! The verification key set: loaded from the JWKS URL or a local file, refreshed in the
//! background, refetched on an unknown `kid`, and kept when the source is down.
//!
//! Availability first: a failed or empty fetch never replaces the last good set, so the edge keeps
//! verifying while accounts is unreachable. Rotation works without restarts: accounts publishes a
//! new key before signing with it, and a token naming a `kid` we have not seen triggers one
//! refetch (one in flight, the others wait for it; at most one per interval, so tokens with random
//! kids cannot turn the edge into a JWKS flooder).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use auth_token::{Algorithm, Jwk, JwkSet, KeySet, VerifyingKey};
use bytes::Bytes;
use http::{HeaderMap, Uri};
use http_body_util::{BodyExt, Limited};

use crate::backoff::Backoff;
use crate::clock;
use crate::config::{JwksRefresh, KeySource};
use crate::http_client::{self, FetchError};
use crate::metrics::Metrics;
use crate::tls::TlsClient;

/// Bound on one JWKS fetch, connect to last byte. Requests with an unknown kid wait for it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS document is a few KiB; anything much larger is not one.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Refresh interval when the JWKS response has no `Cache-Control: max-age` (clamped to the
/// configured bounds).
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// Why keys could not be loaded. The previous set stays in use.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The JWKS URL could not be fetched.
    #[error("fetching JWKS failed: {0}")]
    Fetch(#[from] FetchError),
    /// The key file could not be read.
    #[error("reading key file failed: {0}")]
    Read(#[from] std::io::Error),
    /// The document is not JWKS, JWK or PEM.
    #[error("{0}")]
    Parse(String),
    /// The document holds no key usable with the configured algorithms.
    #[error("no usable key for algorithms {algorithms} ({details})")]
    NoKeys {
        /// The configured algorithms.
        algorithms: String,
        /// Why each key was skipped.
        details: String,
    },
}

/// A freshly loaded key set and how long the source says it stays fresh.
#[derive(Debug)]
pub struct Loaded {
    /// The usable keys.
    pub keys: KeySet,
    /// `Cache-Control: max-age` of the response (none for files).
    pub max_age: Option<Duration>,
}

/// Parses a key document: a JWKS (`{"keys":[...]}`), a single JWK, or a public-key PEM (tried
/// with each configured algorithm in turn). Keys whose algorithm is not configured are dropped,
/// so "loaded" always means "can verify an acceptable token".
pub fn parse_keys(bytes: &[u8], algorithms: &[Algorithm]) -> Result<KeySet, KeyError> {
    let text = std::str::from_utf8(bytes).map_err(|_| KeyError::Parse("not UTF-8".into()))?;
    let (all, mut skipped) = if text.trim_start().starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| KeyError::Parse(format!("not JSON: {e}")))?;
        let set: JwkSet = if value.get("keys").is_some() {
            serde_json::from_value(value)
                .map_err(|e| KeyError::Parse(format!("not a JWKS: {e}")))?
        } else {
            let jwk: Jwk = serde_json::from_value(value)
                .map_err(|e| KeyError::Parse(format!("not a JWK: {e}")))?;
            JwkSet { keys: vec![jwk] }
        };
        let (keys, errors) = KeySet::from_jwks(&set);
        (
            keys,
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        )
    } else if text.contains("-----BEGIN") {
        let mut errors = Vec::new();
        let mut keys = KeySet::new();
        for alg in algorithms {
            match VerifyingKey::from_public_pem(text, *alg) {
                Ok(key) => {
                    keys.insert(key);
                    break;
                }
                Err(e) => errors.push(format!("{alg}: {e}")),
            }
        }
        (keys, errors)
    } else {
        return Err(KeyError::Parse(
            "neither JSON (JWKS/JWK) nor a PEM public key".into(),
        ));
    };
    let mut usable = KeySet::new();
    for kid in all.kids() {
        if let Some(key) = all.get(kid) {
            if algorithms.contains(&key.algorithm()) {
                usable.insert(key.clone());
            } else {
                skipped.push(format!("kid {kid}: {} not allowed", key.algorithm()));
            }
        }
    }
    if usable.is_empty() {
        return Err(KeyError::NoKeys {
            algorithms: algorithms
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(","),
            details: if skipped.is_empty() {
                "the document has no keys".into()
            } else {
                skipped.join("; ")
            },
        });
    }
    if !skipped.is_empty() {
        tracing::debug!(skipped = %skipped.join("; "), "some keys were skipped");
    }
    Ok(usable)
}

/// `max-age` from `Cache-Control`; `no-cache`/`no-store` count as zero (refresh at the lower
/// bound).
pub fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-cache" || lower == "no-store" {
                return Some(Duration::ZERO);
            }
            if let Some(secs) = lower.strip_prefix("max-age=") {
                if let Ok(secs) = secs.trim_matches('"').parse::<u64>() {
                    found = Some(Duration::from_secs(secs));
                }
            }
        }
    }
    found
}

/// Loads keys once from the configured source.
pub async fn load(
    source: &KeySource,
    algorithms: &[Algorithm],
    tls: &TlsClient,
) -> Result<Loaded, KeyError> {
    match source {
        KeySource::File(path) => {
            let bytes = tokio::fs::read(path).await?;
            Ok(Loaded {
                keys: parse_keys(&bytes, algorithms)?,
                max_age: None,
            })
        }
        KeySource::Url(uri) => {
            let (body, max_age) = fetch(uri, tls).await?;
            Ok(Loaded {
                keys: parse_keys(&body, algorithms)?,
                max_age,
            })
        }
        KeySource::Discovery {
            url,
            issuer,
            allow_http,
        } => {
            let (body, _) = fetch(url, tls).await?;
            let jwks_uri = jwks_uri(&body, issuer, *allow_http)?;
            let (body, max_age) = fetch(&jwks_uri, tls).await?;
            Ok(Loaded {
                keys: parse_keys(&body, algorithms)?,
                max_age,
            })
        }
    }
}

/// GETs a JSON document (bounded in time and size) and its `Cache-Control: max-age`.
async fn fetch(uri: &Uri, tls: &TlsClient) -> Result<(Bytes, Option<Duration>), KeyError> {
    let fetch = async {
        let response = http_client::get(uri, tls, "application/json", None, FETCH_TIMEOUT).await?;
        let max_age = max_age(response.headers());
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| FetchError::Body(e.to_string()))?
            .to_bytes();
        Ok::<_, KeyError>((body, max_age))
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| FetchError::Timeout)?
}

/// The `jwks_uri` of an OpenID discovery document (OpenID Connect Discovery 1.0, section 3),
/// which must name `issuer` exactly (section 4.3: a document for another issuer is refused) and
/// point at `https://` (or loopback, or `allow_http`), like a configured JWKS URL.
pub fn jwks_uri(document: &[u8], issuer: &str, allow_http: bool) -> Result<Uri, KeyError> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let doc: Discovery = serde_json::from_slice(document)
        .map_err(|e| KeyError::Parse(format!("not an OpenID discovery document: {e}")))?;
    if doc.issuer != issuer {
        return Err(KeyError::Parse(format!(
            "the discovery document is for issuer {:?}, not {issuer:?}",
            doc.issuer
        )));
    }
    crate::config::issuers::safe_url(&doc.jwks_uri, allow_http)
        .map_err(|e| KeyError::Parse(format!("jwks_uri: {e}")))
}

/// When the last unknown-kid refetch happened; guarded by the single-flight mutex.
struct FetchState {
    last_unknown_kid_fetch: Option<Instant>,
}

/// The current key set plus the machinery that keeps it fresh.
pub struct KeyStore {
    source: KeySource,
    algorithms: Vec<Algorithm>,
    refresh: JwksRefresh,
    tls: TlsClient,
    // Swapped whole on refresh; readers clone the Arc and drop the lock at once.
    current: RwLock<Arc<KeySet>>,
    // Bumped whenever a kid disappears or changes its key material, so cached verifications made with a withdrawn key
    // (e.g. a compromised one) stop counting at once.
    // Shared with other issuers' stores ([`KeyStore::sharing_epoch`]): one verified-token cache
    // serves them all.
    epoch: Arc<AtomicU64>,
    // One fetch in flight: every fetch, periodic or unknown-kid, holds this lock.
    fetch: tokio::sync::Mutex<FetchState>,
    metrics: Arc<Metrics>,
}

impl KeyStore {
    /// An empty store for keys of `algorithms` from `source`; nothing is fetched until
    /// [`KeyStore::refresh`] or [`KeyStore::run`].
    pub fn new(
        source: KeySource,
        algorithms: Vec<Algorithm>,
        refresh: JwksRefresh,
        tls: TlsClient,
        metrics: Arc<Metrics>,
    ) -> KeyStore {
        KeyStore {
            source,
            algorithms,
            refresh,
            tls,
            current: RwLock::new(Arc::new(KeySet::new())),
            epoch: Arc::new(AtomicU64::new(0)),
            fetch: tokio::sync::Mutex::new(FetchState {
                last_unknown_kid_fetch: None,
            }),
            metrics,
        }
    }

    /// The same store bumping `other`'s epoch instead of its own: a key withdrawn here then
    /// invalidates every cached verification, whichever store made it. Withdrawals are rare;
    /// one shared counter keeps the cache's check a single load.
    pub fn sharing_epoch(mut self, other: &KeyStore) -> KeyStore {
        self.epoch = other.epoch.clone();
        self
    }

    /// The keys in use now.
    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether at least one key is loaded (readiness).
    pub fn is_ready(&self) -> bool {
        !self.current().is_empty()
    }

    /// Changes whenever a previously loaded kid is withdrawn or gets other key material.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Installs a key set directly (embedding, tests).
    pub fn install(&self, keys: KeySet) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let old: BTreeSet<&str> = current.kids().collect();
        let new: BTreeSet<&str> = keys.kids().collect();
        if old != new {
            tracing::info!(
                kids = ?new,
                "verification keys changed"
            );
        }
        // A kid withdrawn, or a kid kept with other key material (a replaced key published
        // under the old name): tokens verified with the old key must be verified again.
        if current.kids().any(|kid| keys.get(kid) != current.get(kid)) {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        *current = Arc::new(keys);
    }

    /// Fetches now (waiting for any fetch in flight first) and installs the result. Returns the
    /// delay until the next periodic refresh.
    pub async fn refresh(&self) -> Result<Duration, KeyError> {
        let _guard = self.fetch.lock().await;
        self.fetch_and_install().await
    }

    async fn fetch_and_install(&self) -> Result<Duration, KeyError> {
        match load(&self.source, &self.algorithms, &self.tls).await {
            Ok(loaded) => {
                self.metrics
                    .key_fetch(true, loaded.keys.len(), clock::unix_now_ms());
                self.install(loaded.keys);
                Ok(self.next_refresh(loaded.max_age))
            }
            Err(e) => {
                self.metrics.key_fetch(false, 0, clock::unix_now_ms());
                Err(e)
            }
        }
    }

    fn next_refresh(&self, max_age: Option<Duration>) -> Duration {
        let wanted = match (&self.source, max_age) {
            // A local file is cheap to re-read: pick up a replaced file quickly.
            (KeySource::File(_), _) => self.refresh.min,
            (KeySource::Url(_) | KeySource::Discovery { .. }, Some(age)) => age,
            (KeySource::Url(_) | KeySource::Discovery { .. }, None) => DEFAULT_REFRESH,
        };
        wanted.clamp(self.refresh.min, self.refresh.max)
    }

    /// Called when a token names a `kid` not in the current set. Refetches at most once per
    /// interval; concurrent callers wait for the fetch in flight instead of starting their own.
    /// Returns whether the kid is known afterwards.
    pub async fn refetch_for_unknown_kid(&self, kid: &str) -> bool {
        let mut state = self.fetch.lock().await;
        // Whoever held the lock before us may have fetched it already.
        if self.current().get(kid).is_some() {
            return true;
        }
        if let Some(last) = state.last_unknown_kid_fetch {
            if last.elapsed() < self.refresh.unknown_kid_interval {
                return false;
            }
        }
        state.last_unknown_kid_fetch = Some(Instant::now());
        tracing::info!(kid, "key id not in the current set: refetching keys");
        if let Err(e) = self.fetch_and_install().await {
            tracing::warn!(error = %e, "refetching keys failed; keeping the previous set");
        }
        self.current().get(kid).is_some()
    }

    /// Refreshes forever: at the source's `max-age` (clamped to the configured bounds) while it
    /// answers, with a quick backoff (capped at the lower bound) while it does not.
    pub async fn run(&self) {
        let mut backoff = Backoff::new(Duration::from_millis(500), self.refresh.min);
        loop {
            let wait = match self.refresh().await {
                Ok(next) => {
                    backoff.reset();
                    next
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    if self.is_ready() {
                        tracing::warn!(error = %e, retry_in = ?delay, "refreshing keys failed; still serving the last good set");
                    } else {
                        tracing::warn!(error = %e, retry_in = ?delay, "loading keys failed; not ready yet");
                    }
                    delay
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use auth_token::SigningKey;

    use super::*;

    fn store_for(source: KeySource) -> KeyStore {
        let refresh = JwksRefresh {
            min: Duration::from_secs(30),
            max: Duration::from_secs(600),
            unknown_kid_interval: Duration::from_secs(5),
        };
        KeyStore::new(
            source,
            vec![Algorithm::EdDSA],
            refresh,
            TlsClient::default(),
            Arc::default(),
        )
    }

    #[test]
    fn parses_jwks_jwk_and_pem() {
        let rs = SigningKey::generate(Algorithm::RS256).unwrap();
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let jwks = serde_json::to_vec(&JwkSet {
            keys: vec![rs.public_jwk(), ed.public_jwk()],
        })
        .unwrap();
        let all = [Algorithm::RS256, Algorithm::EdDSA];

        let set = parse_keys(&jwks, &all).unwrap();
        assert_eq!(set.len(), 2);
        // Keys of algorithms that are not configured are dropped.
        let set = parse_keys(&jwks, &[Algorithm::RS256]).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), vec![rs.kid()]);
        // Nothing usable at all is an error naming the algorithms.
        let e = parse_keys(&jwks, &[Algorithm::ES256]).unwrap_err();
        assert!(e.to_string().contains("ES256"), "{e}");

        let single = serde_json::to_vec(&ed.public_jwk()).unwrap();
        assert_eq!(parse_keys(&single, &all).unwrap().len(), 1);

        let pem = rs.public_pem().unwrap();
        let set = parse_keys(pem.as_bytes(), &[Algorithm::EdDSA, Algorithm::RS256]).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), vec![rs.kid()]);

        assert!(parse_keys(b"hello", &all).is_err());
        assert!(parse_keys(b"{\"keys\": 3}", &all).is_err());
        assert!(parse_keys(b"{\"keys\": []}", &all).is_err());
        assert!(parse_keys(&[0xff, 0xfe], &all).is_err());
    }

    #[test]
    fn discovery_documents() {
        let doc = |issuer: &str, jwks: &str| {
            serde_json::to_vec(&serde_json::json!({"issuer": issuer, "jwks_uri": jwks})).unwrap()
        };
        let idp = "https://idp.example";
        assert_eq!(
            jwks_uri(&doc(idp, "https://idp.example/jwks"), idp, false).unwrap(),
            "https://idp.example/jwks"
        );
        // A document for another issuer (a mix-up or a hijacked URL) is refused.
        let e = jwks_uri(
            &doc("https://evil.example", "https://idp.example/jwks"),
            idp,
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("evil"), "{e}");
        // jwks_uri follows the configured URLs' rule: no plain http outside loopback.
        assert!(jwks_uri(&doc(idp, "http://idp.example/jwks"), idp, false).is_err());
        assert!(jwks_uri(&doc(idp, "http://idp.example/jwks"), idp, true).is_ok());
        assert!(jwks_uri(&doc(idp, "http://127.0.0.1:9/jwks"), idp, false).is_ok());
        assert!(jwks_uri(b"{\"issuer\": \"x\"}", "x", false).is_err());
        assert!(jwks_uri(b"<html>", "x", false).is_err());
    }

    #[test]
    fn cache_control_max_age() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(http::header::CACHE_CONTROL, v.parse().unwrap());
            max_age(&m)
        };
        assert_eq!(h("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(h("Max-Age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(h("no-store"), Some(Duration::ZERO));
        assert_eq!(h("public"), None);
        assert_eq!(h("max-age=soon"), None);
        assert_eq!(max_age(&HeaderMap::new()), None);
    }

    #[test]
    fn refresh_interval_is_clamped() {
        let store = store_for(KeySource::Url("http://a/j".parse().unwrap()));
        let s = Duration::from_secs;
        assert_eq!(store.next_refresh(Some(s(300))), s(300));
        assert_eq!(store.next_refresh(Some(s(0))), s(30));
        assert_eq!(store.next_refresh(Some(s(86_400))), s(600));
        assert_eq!(store.next_refresh(None), s(300));
        let file = store_for(KeySource::File("k".into()));
        assert_eq!(file.next_refresh(None), s(30));
    }

    #[test]
    fn withdrawing_a_key_bumps_the_epoch() {
        let store = store_for(KeySource::File("k".into()));
        let a = SigningKey::generate(Algorithm::EdDSA)
            .unwrap()
            .verifying_key();
        let b = SigningKey::generate(Algorithm::EdDSA)
            .unwrap()
            .verifying_key();
        assert!(!store.is_ready());
        store.install([a.clone()].into_iter().collect());
        assert!(store.is_ready());
        let e0 = store.epoch();
        store.install([a.clone(), b.clone()].into_iter().collect());
        assert_eq!(store.epoch(), e0, "adding a key keeps cached verifications");
        store.install([b].into_iter().collect());
        assert_ne!(store.epoch(), e0, "withdrawing one invalidates them");
    }

    #[test]
    fn new_material_under_a_known_kid_bumps_the_epoch() {
        let store = store_for(KeySource::File("k".into()));
        let jwk = |key: &SigningKey| {
            let mut jwk = key.verifying_key().to_jwk();
            jwk.kid = Some("stable-kid".into());
            auth_token::VerifyingKey::from_jwk(&jwk).unwrap()
        };
        let first = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let second = SigningKey::generate(Algorithm::EdDSA).unwrap();
        store.install([jwk(&first)].into_iter().collect());
        let e0 = store.epoch();
        store.install([jwk(&first)].into_iter().collect());
        assert_eq!(
            store.epoch(),
            e0,
            "the same key again keeps cached verifications"
        );
        store.install([jwk(&second)].into_iter().collect());
        assert_ne!(
            store.epoch(),
            e0,
            "other material under the same kid invalidates them"
        );
    }
}
