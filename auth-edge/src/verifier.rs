//! [`Verifier`]: the reusable core every front end (forward-auth, sidecar proxy, ext_authz) calls.
//!
//! One request = one token: cache lookup (or signature and claims check against the cached
//! key set, refetching once on an unknown `kid`), then the revocation check, always.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_token::{Claims, Validation};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::cache::{self, TokenCache};
use crate::clock;
use crate::config::Config;
use crate::keys::KeyStore;
use crate::metrics::{Metrics, Outcome, Snapshot};
use crate::request::{self, IDENTITY_HEADERS};
use crate::revocations::{self, RevocationSet};

/// How often expired revocations are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A verified caller, ready to be forwarded as headers.
///
/// Compact on purpose (one of these per cached token, 100,000 by default): the three header
/// values live in one shared buffer, `{sub}{sid}{role}`, and each header is a zero-copy slice of
/// it, so a cache hit allocates nothing.
#[derive(Debug)]
pub struct Identity {
    values: Bytes,
    sub_end: u32,
    sid_end: u32,
    role: i32,
    exp: i64,
    valid_until: i64,
    key_epoch: u64,
}

impl Identity {
    fn new(claims: Claims, leeway: i64, key_epoch: u64) -> Result<Identity, auth_token::Error> {
        // `UserId` and `SessionId` are never empty (an empty header is dropped or merged with a
        // client-sent value by some proxies) and are visible ASCII; the check below stays as
        // the last word on header values.
        let (sub, sid) = (claims.sub.as_str(), claims.sid.as_str());
        let role = claims.role.to_string();
        let mut values = String::with_capacity(sub.len() + sid.len() + role.len());
        values.push_str(sub);
        values.push_str(sid);
        values.push_str(&role);
        let too_long = || auth_token::Error::Malformed("sub or sid too long");
        let sub_end = u32::try_from(sub.len()).map_err(|_| too_long())?;
        let sid_end = u32::try_from(sub.len() + sid.len()).map_err(|_| too_long())?;
        let identity = Identity {
            values: Bytes::from(values),
            sub_end,
            sid_end,
            role: claims.role.as_i32(),
            exp: claims.exp,
            valid_until: auth_token::accepted_until(claims.exp, leeway),
            key_epoch,
        };
        // Checked once here, so `headers` never meets an invalid value.
        if identity
            .header_values()
            .iter()
            .any(|v| HeaderValue::from_maybe_shared(v.clone()).is_err())
        {
            return Err(auth_token::Error::Malformed(
                "sub or sid is not a header value",
            ));
        }
        Ok(identity)
    }

    /// An identity for unit tests elsewhere in the crate: `sub` = `sid` = `id`, role 1.
    #[cfg(test)]
    pub(crate) fn for_tests(id: &str) -> Identity {
        let claims = Claims {
            sub: id.parse().unwrap_or_else(|e| panic!("test id {id:?}: {e}")),
            sid: id.parse().unwrap_or_else(|e| panic!("test id {id:?}: {e}")),
            role: auth_token::Role::Admin,
            iss: String::new(),
            aud: String::new(),
            iat: 0,
            exp: clock::unix_now() + 600,
            jti: String::new(),
        };
        // Test ids are plain ASCII.
        Identity::new(claims, 0, 0).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The three values as slices of the shared buffer (reference-count bumps, no copies).
    fn header_values(&self) -> [Bytes; 3] {
        let (sub, sid) = (self.sub_end as usize, self.sid_end as usize);
        [
            self.values.slice(..sub),
            self.values.slice(sub..sid),
            self.values.slice(sid..),
        ]
    }

    fn str_at(&self, range: std::ops::Range<usize>) -> &str {
        // Built from Strings split at their own lengths: always UTF-8.
        std::str::from_utf8(&self.values[range]).unwrap_or_default()
    }

    /// User id (`sub`).
    pub fn user_id(&self) -> &str {
        self.str_at(0..self.sub_end as usize)
    }

    /// Session id (`sid`).
    pub fn session_id(&self) -> &str {
        self.str_at(self.sub_end as usize..self.sid_end as usize)
    }

    /// Role (`role`).
    pub fn role(&self) -> i32 {
        self.role
    }

    /// Token expiry, unix seconds.
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// Last second (unix) at which the token is still accepted (`exp` + leeway).
    pub fn valid_until(&self) -> i64 {
        self.valid_until
    }

    /// `(x-user-id, ..), (x-session-id, ..), (x-user-role, ..)`.
    pub fn headers(&self) -> impl Iterator<Item = (&'static http::HeaderName, HeaderValue)> {
        IDENTITY_HEADERS
            .iter()
            .zip(self.header_values())
            // Validated in `new`; an empty value is unreachable and would only drop a header.
            .map(|(name, v)| (name, HeaderValue::from_maybe_shared(v).unwrap_or(EMPTY)))
    }

    /// Strips any client-sent identity headers, then sets ours (for proxies that forward the
    /// request themselves). Returns whether a client-sent one was removed.
    pub fn apply(&self, headers: &mut HeaderMap) -> bool {
        let spoofed = request::strip_identity_headers(headers);
        for (name, value) in self.headers() {
            headers.insert(name.clone(), value);
        }
        spoofed
    }

    /// Bytes held for this identity, for the cache's memory bound: the struct, the shared
    /// buffer, and the allocator's and reference count's overhead on both.
    pub(crate) fn approximate_size(&self) -> usize {
        std::mem::size_of::<Identity>() + self.values.len() + 64
    }
}

const EMPTY: HeaderValue = HeaderValue::from_static("");

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No token in the request.
    #[error("no token")]
    Missing,
    /// The token is not valid (format, signature, issuer, audience, type, algorithm).
    #[error("invalid token: {0}")]
    Invalid(auth_token::Error),
    /// Expired or not yet valid.
    #[error("token expired or not yet valid")]
    Expired,
    /// Signed by an unknown key, even after refetching the keys.
    #[error("unknown signing key {0:?}")]
    UnknownKey(String),
    /// The session has been revoked.
    #[error("session revoked")]
    Revoked,
    /// No key is loaded yet, so nothing can be verified.
    #[error("verification keys not loaded")]
    Unavailable,
}

impl Rejection {
    /// The metrics outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            Rejection::Missing => Outcome::Missing,
            Rejection::Invalid(_) => Outcome::Invalid,
            Rejection::Expired => Outcome::Expired,
            Rejection::UnknownKey(_) => Outcome::UnknownKey,
            Rejection::Revoked => Outcome::Revoked,
            Rejection::Unavailable => Outcome::Unavailable,
        }
    }

    /// 401, or 503 while no keys are loaded: "cannot decide" must not look like "log out" to
    /// clients that refresh or drop their session on 401.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 challenge for a 401: no error attribute when no token was sent (section
    /// 3.1), and the same generic `invalid_token` for every other reason, so a prober learns
    /// nothing. None for the 503 (not an authentication problem).
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        match self {
            Rejection::Unavailable => None,
            Rejection::Missing => Some(HeaderValue::from_static("Bearer realm=\"auth\"")),
            _ => Some(HeaderValue::from_static(
                "Bearer realm=\"auth\", error=\"invalid_token\"",
            )),
        }
    }
}

/// Verifies access tokens against cached keys and pushed revocations.
///
/// Build it with [`Verifier::new`], drive [`Verifier::run_background`] on some runtime (key
/// refresh, revocation sources, pruning), and call [`Verifier::check_headers`] or
/// [`Verifier::verify_token`] per request. Cheap to share: wrap it in an `Arc`.
pub struct Verifier {
    config: Config,
    validation: Validation,
    keys: KeyStore,
    cache: TokenCache,
    revocations: Arc<RevocationSet>,
    metrics: Arc<Metrics>,
}

impl Verifier {
    /// A verifier with no keys yet (not ready until the background task or
    /// [`Verifier::load_keys`] loads them).
    pub fn new(config: Config) -> Verifier {
        let metrics = Arc::new(Metrics::default());
        Verifier {
            validation: config.validation(),
            keys: KeyStore::new(&config, metrics.clone()),
            cache: TokenCache::new(config.cache_entries),
            revocations: Arc::new(RevocationSet::new(config.leeway_secs)),
            metrics,
            config,
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Loads keys once now (waits for a fetch in flight). Useful at start-up to be ready sooner.
    pub async fn load_keys(&self) -> Result<(), crate::keys::KeyError> {
        self.keys.refresh().await.map(|_| ())
    }

    /// The key store (readiness, manual installs).
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The revocation set (sources write to it; embedders may too).
    pub fn revocations(&self) -> &RevocationSet {
        &self.revocations
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Ready to verify: keys are loaded.
    pub fn is_ready(&self) -> bool {
        self.keys.is_ready()
    }

    /// The Prometheus text of every metric.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&Snapshot {
            cache_entries: self.cache.entry_count(),
            revoked_sessions: self.revocations.len(),
            now_ms: clock::unix_now_ms(),
        })
    }

    /// The background work: key refresh, revocation sources, pruning. Runs until dropped; spawn
    /// it on the runtime of your choice.
    pub async fn run_background(self: Arc<Self>) {
        if !self.config.has_revocation_source() {
            tracing::warn!(
                "no revocation source (AUTH_EDGE_REVOCATIONS_URL or REDIS_URL): revoked \
                 sessions stay valid here until their access tokens expire"
            );
        }
        let stream = {
            let this = self.clone();
            async move {
                if let Some(uri) = this.config.revocations_url.clone() {
                    revocations::stream::run(
                        uri,
                        this.config.revocations_token.clone(),
                        this.revocations.clone(),
                        this.metrics.clone(),
                        revocations::stream::IDLE_TIMEOUT,
                    )
                    .await;
                }
            }
        };
        let redis = {
            let this = self.clone();
            async move {
                if let Some(url) = this.config.redis_url.clone() {
                    revocations::redis::run(url, this.revocations.clone(), this.metrics.clone())
                        .await;
                }
            }
        };
        let prune = {
            let this = self.clone();
            async move {
                let mut tick = tokio::time::interval(PRUNE_EVERY);
                loop {
                    tick.tick().await;
                    let dropped = this.revocations.prune(clock::unix_now());
                    if dropped > 0 {
                        tracing::debug!(dropped, "pruned expired revocations");
                    }
                }
            }
        };
        tokio::join!(self.keys.run(), stream, redis, prune);
    }

    /// Authenticates a request from its headers (bearer token or cookie).
    pub async fn check_headers(&self, headers: &HeaderMap) -> Result<Arc<Identity>, Rejection> {
        match request::token_from_headers(headers, &self.config.cookie_name) {
            Ok(Some(token)) => self.verify_token(token).await,
            Ok(None) => {
                self.metrics
                    .observe(Outcome::Missing, false, Duration::ZERO);
                Err(Rejection::Missing)
            }
            // Credentials that cannot be read one way only (two Authorization headers, an
            // ambiguous cookie): refused like a bad token.
            Err(e) => {
                tracing::debug!(error = %e, "malformed credentials");
                self.metrics
                    .observe(Outcome::Invalid, false, Duration::ZERO);
                Err(Rejection::Invalid(auth_token::Error::Malformed(
                    "request credentials",
                )))
            }
        }
    }

    /// Verifies one token: signature and claims (or the cache), then revocation.
    pub async fn verify_token(&self, token: &str) -> Result<Arc<Identity>, Rejection> {
        let started = Instant::now();
        let (result, cached) = self.verify_inner(token).await;
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(r) => r.outcome(),
        };
        self.metrics.observe(outcome, cached, started.elapsed());
        result
    }

    async fn verify_inner(&self, token: &str) -> (Result<Arc<Identity>, Rejection>, bool) {
        let now = clock::unix_now();
        let key = cache::key(token);
        // Read before the key set: if a key is withdrawn in between, the entry carries the old
        // epoch and is ignored next time.
        let epoch = self.keys.epoch();
        if let Some(identity) = self.cache.get(&key) {
            if identity.key_epoch == epoch && now <= identity.valid_until {
                return (self.not_revoked(identity), true);
            }
            // Expired or from a withdrawn key set: free the slot now rather than at eviction.
            self.cache.remove_stale(&key, &identity);
        }
        let claims = match self.verify_signature(token, now).await {
            Ok(claims) => claims,
            Err(r) => return (Err(r), false),
        };
        let identity = match Identity::new(claims, self.validation.leeway_secs, epoch) {
            Ok(identity) => Arc::new(identity),
            Err(e) => return (Err(Rejection::Invalid(e)), false),
        };
        self.cache.insert(key, identity.clone());
        (self.not_revoked(identity), false)
    }

    async fn verify_signature(&self, token: &str, now: i64) -> Result<Claims, Rejection> {
        let keys = self.keys.current();
        if keys.is_empty() {
            // Startup or a source that never answered: try once (rate limited), else 503.
            if !self.keys.refetch_for_unknown_kid("").await && !self.keys.is_ready() {
                return Err(Rejection::Unavailable);
            }
        }
        let keys = self.keys.current();
        match auth_token::verify(token, &keys, &self.validation, now) {
            Err(auth_token::Error::UnknownKey(kid)) => {
                // Rotation: accounts published a new key we have not fetched yet.
                if !self.keys.refetch_for_unknown_kid(&kid).await {
                    return Err(Rejection::UnknownKey(kid));
                }
                let keys = self.keys.current();
                auth_token::verify(token, &keys, &self.validation, now).map_err(rejection)
            }
            other => other.map_err(rejection),
        }
    }

    fn not_revoked(&self, identity: Arc<Identity>) -> Result<Arc<Identity>, Rejection> {
        if self.revocations.is_revoked(identity.session_id()) {
            Err(Rejection::Revoked)
        } else {
            Ok(identity)
        }
    }
}

fn rejection(e: auth_token::Error) -> Rejection {
    match e {
        auth_token::Error::Expired | auth_token::Error::NotYetValid => Rejection::Expired,
        auth_token::Error::UnknownKey(kid) => Rejection::UnknownKey(kid),
        other => Rejection::Invalid(other),
    }
}

#[cfg(test)]
mod tests {
    use auth_token::{sign, Algorithm, SigningKey};

    use super::*;
    use crate::config::KeySource;

    fn claims(sid: &str, exp_in: i64) -> Claims {
        let now = clock::unix_now();
        Claims {
            sub: "user-1".parse().unwrap(),
            sid: sid.parse().unwrap(),
            role: auth_token::Role::Admin,
            iss: "auth-service".into(),
            aud: "smart-budget".into(),
            iat: now - 5,
            exp: now + exp_in,
            jti: "j".into(),
        }
    }

    fn verifier(key: &SigningKey) -> Verifier {
        let mut config = Config::for_tests(KeySource::File("/nonexistent".into()));
        config.algorithms = vec![key.algorithm()];
        let v = Verifier::new(config);
        v.keys()
            .install([key.verifying_key()].into_iter().collect());
        v
    }

    #[tokio::test]
    async fn verifies_caches_and_checks_revocation_on_hits() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let v = verifier(&key);
        let token = sign(&claims("s1", 600), &key).unwrap();

        let id = v.verify_token(&token).await.unwrap();
        assert_eq!(
            (id.user_id(), id.session_id(), id.role()),
            ("user-1", "s1", 1)
        );
        let again = v.verify_token(&token).await.unwrap();
        assert!(Arc::ptr_eq(&id, &again), "second check is a cache hit");
        assert_eq!(v.metrics().cache_hits(), 1);

        v.revocations()
            .revoke("s1", clock::unix_now() + 600, clock::unix_now());
        assert_eq!(
            v.verify_token(&token).await.unwrap_err(),
            Rejection::Revoked
        );
        assert_eq!(v.metrics().verifications(Outcome::Revoked), 1);
    }

    #[tokio::test]
    async fn rejections() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let other = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let v = verifier(&key);
        let expired = sign(&claims("s", -3600), &key).unwrap();
        assert_eq!(
            v.verify_token(&expired).await.unwrap_err(),
            Rejection::Expired
        );
        let forged = sign(&claims("s", 600), &other).unwrap();
        assert!(matches!(
            v.verify_token(&forged).await.unwrap_err(),
            Rejection::UnknownKey(_)
        ));
        assert!(matches!(
            v.verify_token("garbage").await.unwrap_err(),
            Rejection::Invalid(_)
        ));
        // Ids that cannot be header values, and roles outside 0..=2, are refused.
        for (member, value) in [
            ("sid", serde_json::json!("")),
            ("sub", serde_json::json!("a b")),
            ("role", serde_json::json!(3)),
        ] {
            let mut payload = serde_json::to_value(claims("s", 600)).unwrap();
            payload[member] = value;
            let token = auth_token::sign_payload(&payload, &key).unwrap();
            assert!(
                matches!(
                    v.verify_token(&token).await.unwrap_err(),
                    Rejection::Invalid(_)
                ),
                "{member}"
            );
        }
        assert_eq!(
            v.check_headers(&HeaderMap::new()).await.unwrap_err(),
            Rejection::Missing
        );
    }

    #[tokio::test]
    async fn withdrawn_key_invalidates_cached_tokens() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let next = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let v = verifier(&key);
        let token = sign(&claims("s", 600), &key).unwrap();
        v.verify_token(&token).await.unwrap();
        v.keys()
            .install([next.verifying_key()].into_iter().collect());
        assert!(matches!(
            v.verify_token(&token).await.unwrap_err(),
            Rejection::UnknownKey(_)
        ));
    }

    #[tokio::test]
    async fn no_keys_is_unavailable_not_unauthorized() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let mut config = Config::for_tests(KeySource::File("/nonexistent".into()));
        config.algorithms = vec![Algorithm::EdDSA];
        let v = Verifier::new(config);
        let token = sign(&claims("s", 600), &key).unwrap();
        let r = v.verify_token(&token).await.unwrap_err();
        assert_eq!(r, Rejection::Unavailable);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn challenges() {
        assert_eq!(
            Rejection::Missing.www_authenticate().unwrap(),
            "Bearer realm=\"auth\""
        );
        assert_eq!(
            Rejection::Revoked.www_authenticate().unwrap(),
            "Bearer realm=\"auth\", error=\"invalid_token\""
        );
        assert_eq!(Rejection::Unavailable.www_authenticate(), None);
        assert_eq!(Rejection::Expired.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn apply_replaces_client_headers() {
        let id = Identity::new(claims("s9", 60), 30, 0).unwrap();
        let mut h = HeaderMap::new();
        h.append("x-user-id", HeaderValue::from_static("admin"));
        h.append("x-user-id", HeaderValue::from_static("root"));
        assert!(id.apply(&mut h));
        assert_eq!(h.get_all("x-user-id").iter().count(), 1);
        assert_eq!(h["x-user-id"], "user-1");
        assert_eq!(h["x-session-id"], "s9");
        assert_eq!(h["x-user-role"], "1");
    }
}
