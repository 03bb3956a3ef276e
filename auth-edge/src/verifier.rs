//! [`Verifier`]: the reusable core every front end (forward-auth, sidecar proxy, ext_authz) calls.
//!
//! One request = one token: cache lookup (or signature and claims check against the cached
//! key set, refetching once on an unknown `kid`), then the revocation check, always.
//! [`Verifier::decide`] turns that into the [`Decision`] the front ends render. The verifier runs
//! no task of its own: keeping its keys and revocations fresh is [`crate::background`]'s job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_token::{Claims, ForeignValidation, KeySet, Validation};
use http::{HeaderMap, Method, StatusCode};

use crate::assertion::AssertionSigner;
use crate::browser::{self, BrowserPolicy, OriginalUrl};
use crate::cache::{self, TokenCache};
use crate::clock;
use crate::config::VerifierSettings;
use crate::csrf::CsrfPolicy;
use crate::decision::{Access, Decision, Redirect, Rejection};
use crate::identity::{ClaimMapping, HeaderNames, Identity};
use crate::keys::KeyStore;
use crate::metrics::{Metrics, Outcome, Snapshot};
use crate::request;
use crate::revocations::{FailMode, RevocationSet, StalenessPolicy};

/// Verifies access tokens against cached keys and pushed revocations.
///
/// Build it with [`Verifier::new`], keep it fresh with [`crate::background::run`] on some
/// runtime, and call [`Verifier::decide`] (or [`Verifier::check_headers`],
/// [`Verifier::verify_token`]) per request. Cheap to share: wrap it in an `Arc`.
pub struct Verifier {
    cookie_name: String,
    csrf: CsrfPolicy,
    browser: BrowserPolicy,
    header_names: HeaderNames,
    assertion: Option<Arc<AssertionSigner>>,
    staleness: StalenessPolicy,
    started_ms: i64,
    validation: Validation,
    keys: KeyStore,
    // Other trusted issuers (`AUTH_EDGE_ISSUERS_FILE`); empty by default, and then the own
    // tokens' path is exactly what it was without them.
    issuers: Vec<ForeignIssuer>,
    cache: TokenCache,
    revocations: Arc<RevocationSet>,
    metrics: Arc<Metrics>,
}

impl Verifier {
    /// A verifier with no keys yet (not ready until the background work or
    /// [`Verifier::load_keys`] loads them).
    pub fn new(settings: VerifierSettings) -> Verifier {
        let metrics = Arc::new(Metrics::default());
        let validation = settings.validation();
        let keys = KeyStore::new(
            settings.keys,
            settings.algorithms,
            settings.jwks,
            settings.tls.clone(),
            metrics.clone(),
        );
        let issuers = settings
            .issuers
            .into_iter()
            .map(|issuer| (issuer, Arc::<Metrics>::default()))
            .map(|(issuer, key_metrics)| ForeignIssuer {
                // Their fetches are counted apart (`auth_edge_issuer_key*{issuer}`): the own
                // key metrics (`auth_edge_key*`) keep describing the own issuer's keys.
                keys: KeyStore::new(
                    issuer.keys,
                    issuer.algorithms.clone(),
                    settings.jwks,
                    settings.tls.clone(),
                    key_metrics.clone(),
                )
                .sharing_epoch(&keys),
                key_metrics,
                validation: ForeignValidation {
                    algorithms: issuer.algorithms,
                    issuer: issuer.issuer,
                    audiences: issuer.audiences,
                    leeway_secs: settings.leeway_secs,
                },
                mapping: issuer.claims,
            })
            .collect();
        Verifier {
            keys,
            issuers,
            cache: TokenCache::new(settings.cache_entries),
            revocations: Arc::new(RevocationSet::new(settings.leeway_secs)),
            cookie_name: settings.cookie_name,
            csrf: settings.csrf,
            browser: settings.browser,
            header_names: settings.header_names,
            assertion: settings.assertion,
            staleness: settings.staleness,
            started_ms: clock::unix_now_ms(),
            validation,
            metrics,
        }
    }

    /// Loads keys once now (waits for a fetch in flight). Useful at start-up to be ready sooner.
    /// Other issuers' keys are loaded too, but their failures are only logged: readiness is
    /// the own issuer's.
    pub async fn load_keys(&self) -> Result<(), crate::keys::KeyError> {
        let own = self.keys.refresh().await.map(|_| ());
        for foreign in &self.issuers {
            if let Err(e) = foreign.keys.refresh().await {
                tracing::warn!(issuer = %foreign.validation.issuer, error = %e, "loading keys failed");
            }
        }
        own
    }

    /// Keeps every issuer's keys fresh, forever ([`KeyStore::run`] for each).
    pub async fn run_keys(&self) {
        let foreign = self.issuers.iter().map(|f| f.keys.run());
        tokio::join!(self.keys.run(), futures_util::future::join_all(foreign));
    }

    /// The key store (readiness, manual installs, the refresh loop).
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The revocation set (sources write to it; embedders may too).
    pub fn revocations(&self) -> &RevocationSet {
        &self.revocations
    }

    /// The revocation set, shared with the tasks that fill it.
    pub fn revocations_handle(&self) -> Arc<RevocationSet> {
        self.revocations.clone()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics registry, shared with the background tasks that report to it.
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Ready to verify: keys are loaded and, in the closed fail mode, a revocation source has
    /// been heard from within the staleness bound.
    pub fn is_ready(&self) -> bool {
        let now = clock::unix_now_ms();
        self.keys.is_ready()
            && self
                .metrics
                .revocations_heard_ms(now)
                .is_none_or(|heard| self.staleness.ready(heard, now))
    }

    /// Whether the revocation set is stale now (false when no source is configured).
    pub fn revocations_stale(&self) -> bool {
        let now = clock::unix_now_ms();
        self.metrics
            .revocations_heard_ms(now)
            .is_some_and(|heard| self.staleness.stale(heard, self.started_ms, now))
    }

    /// The staleness policy (for the background watcher's log lines).
    pub fn staleness_policy(&self) -> StalenessPolicy {
        self.staleness
    }

    /// The Prometheus text of every metric.
    pub fn render_metrics(&self) -> String {
        let now_ms = clock::unix_now_ms();
        let mut out = self.metrics.render(&Snapshot {
            cache_entries: self.cache.entry_count(),
            revoked_sessions: self.revocations.len(),
            now_ms,
            revocations_stale: self
                .metrics
                .revocations_heard_ms(0)
                .map(|_| self.revocations_stale()),
        });
        if !self.issuers.is_empty() {
            let issuers = self
                .issuers
                .iter()
                .map(|f| (f.validation.issuer.as_str(), &*f.key_metrics));
            crate::metrics::render_issuer_keys(&mut out, issuers, now_ms);
        }
        out
    }

    /// The names the identity is sent under (and stripped from client requests).
    pub fn header_names(&self) -> &HeaderNames {
        &self.header_names
    }

    /// The signer of identity assertions, when configured (its JWKS is served on the admin port).
    pub fn assertion_signer(&self) -> Option<&AssertionSigner> {
        self.assertion.as_deref()
    }

    /// What browsers get (login redirect, CORS preflight) and whose forwarded headers count.
    pub fn browser(&self) -> &BrowserPolicy {
        &self.browser
    }

    /// The decision for a request as a front end sees it: [`Verifier::decide`], plus what
    /// browsers get ([`crate::browser`]): a CORS preflight passes anonymously when
    /// `AUTH_EDGE_CORS_PREFLIGHT=allow`, and a page navigation that would get a 401 is redirected
    /// to the login page when `AUTH_EDGE_LOGIN_URL` is set (503 and 403 stay as they are: the
    /// login page cannot help with those).
    pub async fn decide_request(&self, request: &RequestView<'_>, access: Access) -> Decision {
        if self.browser.cors_preflight && browser::is_preflight(request.headers, request.method) {
            tracing::debug!("CORS preflight forwarded without a token");
            return Decision::Anonymous;
        }
        match self.decide(request.headers, request.method, access).await {
            Decision::Deny(rejection) if rejection.status() == StatusCode::UNAUTHORIZED => {
                match &self.browser.login {
                    Some(login) if browser::is_navigation(request.headers, request.method) => {
                        Decision::Redirect(Redirect {
                            location: login.location(request.original_url),
                            rejection,
                        })
                    }
                    _ => Decision::Deny(rejection),
                }
            }
            Decision::Allow(identity) => {
                if let Some(signer) = &self.assertion {
                    signer.refresh(&identity, clock::unix_now());
                }
                Decision::Allow(identity)
            }
            other => other,
        }
    }

    /// The decision for a request, from its headers and its original method: the token policy
    /// every front end renders (through [`Verifier::decide_request`]).
    ///
    /// With [`Access::Optional`] (a public path) no token means [`Decision::Anonymous`] without
    /// a verification, and a bad or expired token is simply no identity, never a denial (a page
    /// that greets a signed-in user must not 401 a stale cookie). A token from the cookie of a
    /// cross-site request ([`crate::csrf`]) is refused with 403, or ignored on a public path.
    pub async fn decide(&self, headers: &HeaderMap, method: &Method, access: Access) -> Decision {
        let credential = request::credential_from_headers(headers, &self.cookie_name);
        if access == Access::Optional && matches!(credential, Ok(None)) {
            return Decision::Anonymous;
        }
        if let Ok(Some(c)) = credential {
            let refusal = if c.source == auth_token::TokenSource::Cookie
                && !self.csrf.allows(headers, method)
            {
                tracing::debug!(%method, "cookie-borne token on a cross-site request");
                Some(Rejection::CrossSite)
            } else if self.staleness.mode == FailMode::Closed && self.revocations_stale() {
                // Closed fail mode: with no word from the revocation sources for too long, a
                // valid token may belong to a revoked session: "cannot decide", never "allow".
                Some(Rejection::RevocationsStale)
            } else {
                None
            };
            if let Some(rejection) = refusal {
                if access == Access::Optional {
                    return Decision::Anonymous;
                }
                self.metrics
                    .observe(rejection.outcome(), false, Duration::ZERO);
                return Decision::Deny(rejection);
            }
        }
        match self.check_headers(headers).await {
            Ok(identity) => Decision::Allow(identity),
            Err(rejection) if access == Access::Optional => {
                tracing::debug!(reason = %rejection, "public path with an unusable token");
                Decision::Anonymous
            }
            Err(rejection) => {
                tracing::debug!(reason = %rejection, "request not authenticated");
                Decision::Deny(rejection)
            }
        }
    }

    /// Authenticates a request from its headers (bearer token or cookie).
    pub async fn check_headers(&self, headers: &HeaderMap) -> Result<Arc<Identity>, Rejection> {
        match request::token_from_headers(headers, &self.cookie_name) {
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
            if identity.key_epoch() == epoch && now <= identity.valid_until() {
                return (self.not_revoked(identity), true);
            }
            // Expired or from a withdrawn key set: free the slot now rather than at eviction.
            self.cache.remove_stale(&key, &identity);
        }
        if let Some(foreign) = self.foreign_issuer(token) {
            let identity = match self.verify_foreign(foreign, token, now, epoch).await {
                Ok(identity) => Arc::new(identity),
                Err(r) => return (Err(r), false),
            };
            self.cache.insert(key, identity.clone());
            return (self.not_revoked(identity), false);
        }
        let claims = match self.verify_signature(token, now).await {
            Ok(claims) => claims,
            Err(r) => return (Err(r), false),
        };
        let identity = match Identity::from_claims(&claims, self.validation.leeway_secs, epoch) {
            Ok(identity) => {
                Arc::new(identity.with_claim_values(&claims, self.header_names.claim_fields()))
            }
            Err(e) => return (Err(Rejection::Invalid(e)), false),
        };
        self.cache.insert(key, identity.clone());
        (self.not_revoked(identity), false)
    }

    async fn verify_signature(&self, token: &str, now: i64) -> Result<Claims, Rejection> {
        with_keys(&self.keys, |keys| {
            auth_token::verify(token, keys, &self.validation, now)
        })
        .await
    }

    /// The foreign issuer a token names in its `iss`, if any: read unverified, only to pick the
    /// keys and policy it is then verified with. Nothing to read when no issuer is configured.
    fn foreign_issuer(&self, token: &str) -> Option<&ForeignIssuer> {
        if self.issuers.is_empty() {
            return None;
        }
        let iss = auth_token::peek_issuer(token).ok()??;
        self.issuers.iter().find(|f| f.validation.issuer == iss)
    }

    async fn verify_foreign(
        &self,
        foreign: &ForeignIssuer,
        token: &str,
        now: i64,
        epoch: u64,
    ) -> Result<Identity, Rejection> {
        let claims = with_keys(&foreign.keys, |keys| {
            auth_token::verify_foreign(token, keys, &foreign.validation, now)
        })
        .await?;
        let identity = Identity::from_foreign(
            &claims,
            &foreign.mapping,
            self.validation.leeway_secs,
            epoch,
        )
        .map_err(Rejection::Invalid)?;
        Ok(identity.with_foreign_claim_values(&claims, self.header_names.claim_fields()))
    }

    fn not_revoked(&self, identity: Arc<Identity>) -> Result<Arc<Identity>, Rejection> {
        // A foreign token without a session id has nothing the feed could name.
        let sid = identity.session_id();
        if !sid.is_empty() && self.revocations.is_revoked(sid) {
            Err(Rejection::Revoked)
        } else {
            Ok(identity)
        }
    }
}

/// The request a front end asks about.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'a> {
    /// Its headers (the credentials, and what the CSRF and browser checks read).
    pub headers: &'a HeaderMap,
    /// The original request's method.
    pub method: &'a Method,
    /// The page's URL, for the login redirect to return to: only from a trusted proxy (see
    /// [`BrowserPolicy::reads_return_url`]), None otherwise.
    pub original_url: Option<OriginalUrl<'a>>,
}

/// A trusted issuer other than the own one: its keys, its token policy, its claim mapping.
struct ForeignIssuer {
    keys: KeyStore,
    /// Only its key loads are counted here.
    key_metrics: Arc<Metrics>,
    validation: ForeignValidation,
    mapping: ClaimMapping,
}

/// Runs `verify` against `store`'s keys: loads them first if there are none yet (503 if that
/// fails), and refetches once on an unknown `kid` (rotation: the issuer published a new key we
/// have not fetched yet).
async fn with_keys<T>(
    store: &KeyStore,
    verify: impl Fn(&KeySet) -> Result<T, auth_token::Error>,
) -> Result<T, Rejection> {
    if store.current().is_empty() {
        // Startup or a source that never answered: try once (rate limited), else 503.
        if !store.refetch_for_unknown_kid("").await && !store.is_ready() {
            return Err(Rejection::Unavailable);
        }
    }
    let keys = store.current();
    match verify(&keys) {
        Err(auth_token::Error::UnknownKey(kid)) => {
            if !store.refetch_for_unknown_kid(&kid).await {
                return Err(Rejection::UnknownKey(kid));
            }
            verify(&store.current()).map_err(rejection)
        }
        other => other.map_err(rejection),
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

    use http::StatusCode;

    use super::*;
    use crate::config::{Config, KeySource};

    fn settings(alg: Algorithm) -> VerifierSettings {
        let mut settings = Config::for_tests(KeySource::File("/nonexistent".into())).verifier;
        settings.algorithms = vec![alg];
        settings
    }

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
        let v = Verifier::new(settings(key.algorithm()));
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
            ("user-1", "s1", Some(1))
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
        let v = Verifier::new(settings(Algorithm::EdDSA));
        let token = sign(&claims("s", 600), &key).unwrap();
        let r = v.verify_token(&token).await.unwrap_err();
        assert_eq!(r, Rejection::Unavailable);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn decisions_for_required_and_optional_access() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let v = verifier(&key);
        let bearer = |token: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                http::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
            h
        };
        let good = bearer(&sign(&claims("s1", 600), &key).unwrap());
        let expired = bearer(&sign(&claims("s1", -3600), &key).unwrap());
        let none = HeaderMap::new();

        for access in [Access::Required, Access::Optional] {
            let Decision::Allow(id) = v.decide(&good, &Method::GET, access).await else {
                panic!("a valid token is allowed")
            };
            assert_eq!(id.session_id(), "s1");
        }
        assert!(matches!(
            v.decide(&none, &Method::GET, Access::Required).await,
            Decision::Deny(Rejection::Missing)
        ));
        assert!(matches!(
            v.decide(&expired, &Method::GET, Access::Required).await,
            Decision::Deny(Rejection::Expired)
        ));
        let missing_before = v.metrics().verifications(Outcome::Missing);
        assert!(matches!(
            v.decide(&none, &Method::GET, Access::Optional).await,
            Decision::Anonymous
        ));
        assert_eq!(
            v.metrics().verifications(Outcome::Missing),
            missing_before,
            "no token on a public path is not a verification"
        );
        assert!(matches!(
            v.decide(&expired, &Method::GET, Access::Optional).await,
            Decision::Anonymous
        ));
    }

    #[tokio::test]
    async fn browsers_are_redirected_and_preflights_pass() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let mut s = settings(key.algorithm());
        s.browser = crate::browser::BrowserPolicy {
            login: Some(crate::browser::LoginRedirect {
                url: "https://login.example/".into(),
                return_param: "rd".into(),
                allowed_hosts: crate::browser::HostAllowList::parse("app.example").unwrap(),
            }),
            cors_preflight: true,
            ..Default::default()
        };
        let v = Verifier::new(s);
        v.keys()
            .install([key.verifying_key()].into_iter().collect());
        use crate::testing::headers;
        let navigation = headers(&[("sec-fetch-mode", "navigate")]);
        let api = headers(&[("accept", "application/json")]);
        let back = OriginalUrl {
            scheme: "https",
            authority: "app.example",
            path_and_query: "/a?b=1",
        };
        let view = |h, m, original_url| RequestView {
            headers: h,
            method: m,
            original_url,
        };
        let Decision::Redirect(r) = v
            .decide_request(
                &view(&navigation, &Method::GET, Some(back)),
                Access::Required,
            )
            .await
        else {
            panic!("a navigation without a token is redirected")
        };
        assert_eq!(
            r.location,
            "https://login.example/?rd=https%3A%2F%2Fapp.example%2Fa%3Fb%3D1"
        );
        assert_eq!(r.rejection, Rejection::Missing);
        assert!(matches!(
            v.decide_request(&view(&api, &Method::GET, Some(back)), Access::Required)
                .await,
            Decision::Deny(Rejection::Missing)
        ));
        // No keys: 503 stays 503 for navigations too.
        let unready = Verifier::new(settings(key.algorithm()));
        let mut with_token = navigation.clone();
        with_token.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {}", sign(&claims("s", 600), &key).unwrap())
                .parse()
                .unwrap(),
        );
        assert!(matches!(
            unready
                .decide_request(&view(&with_token, &Method::GET, None), Access::Required)
                .await,
            Decision::Deny(Rejection::Unavailable)
        ));
        assert!(matches!(
            v.decide_request(&view(&with_token, &Method::GET, None), Access::Required)
                .await,
            Decision::Allow(_)
        ));
        let preflight = headers(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "DELETE"),
        ]);
        assert!(matches!(
            v.decide_request(&view(&preflight, &Method::OPTIONS, None), Access::Required)
                .await,
            Decision::Anonymous
        ));
        // Off by default.
        assert!(matches!(
            verifier(&key)
                .decide_request(&view(&preflight, &Method::OPTIONS, None), Access::Required)
                .await,
            Decision::Deny(Rejection::Missing)
        ));
    }
}
