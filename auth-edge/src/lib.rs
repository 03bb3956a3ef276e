//! `auth-edge`: the latency-critical verifier that sits in front of services.
//!
//! It checks the access token of every request (from the `access_token` cookie or
//! `Authorization: Bearer`) against cached JWKS keys, refuses sessions whose revocation was pushed
//! to it, and answers with the caller's identity (`X-User-Id`, `X-Session-Id`, `X-User-Role`).
//! It depends only on `auth-token`, never on `auth-accounts`, and keeps working from its caches
//! when accounts, Redis or the network are down.
//!
//! The reusable core is [`Verifier`]: [`Verifier::decide_request`] makes one [`Decision`] per request
//! (allow with an [`Identity`], anonymous on a public path or a CORS preflight, deny with a
//! [`Rejection`], or redirect a browser's navigation to the login page), and
//! the front ends are thin layers that only render it in their protocol:
//! - forward-auth HTTP server ([`Application`]): nginx `auth_request`, Traefik, Caddy, Envoy HTTP;
//! - Envoy ext_authz gRPC ([`ext_authz`]), on its own listener in the same process;
//! - sidecar reverse proxy ([`sidecar`], pingora) in front of one application.
//!
//! Modules:
//! - [`config`]: typed configuration from environment variables, in sections, validated at
//!   start-up.
//! - [`public_paths`]: the sidecar's token-free path prefixes, matched safely.
//! - [`verifier`]: [`Verifier`]: one request, one [`Decision`].
//! - [`decision`]: [`Decision`], [`Access`] and [`Rejection`] (status, challenge, `no-store`).
//! - [`identity`]: [`Identity`] and the one strip-then-set rule for the identity headers.
//! - [`assertion`]: the optional signed identity assertion (a short-lived JWT the edge signs).
//! - [`keys`]: the key set: JWKS URL or file, refresh by `max-age`, unknown-`kid` refetch.
//! - [`cache`]: verified-token cache (quick_cache), bounded by entries and memory; expiry on read.
//! - [`revocations`]: the revoked-session set and its sources (accounts stream, Redis).
//! - [`request`]: token extraction (bearer, cookie).
//! - [`csrf`]: the Origin / Fetch Metadata check for cookie-borne tokens.
//! - [`browser`]: the login redirect for navigations (allow-listed return URLs from trusted
//!   proxies only) and the CORS preflight bypass.
//! - [`background`]: the work that keeps a verifier fresh (key refresh, revocation sources,
//!   pruning), started next to it, never inside it.
//! - [`server`]: hyper listeners: forward-auth and admin (health, readiness, metrics).
//! - [`ext_authz`]: `envoy.service.auth.v3.Authorization/Check` over HTTP/2 (hand-written prost).
//! - [`sidecar`]: the pingora `ProxyHttp` impl and its server set-up.
//! - [`startup`]: [`Application`]: bind, start background work, serve, shut down gracefully.
//! - [`metrics`]: Prometheus counters and gauges, hand-written text format.
//! - [`http_client`]: the minimal HTTP(S) GET used for JWKS and the revocation stream.
//! - [`tls`]: the TLS client (rustls on aws-lc-rs; system roots plus `AUTH_EDGE_CA_FILE`).
//! - [`telemetry`]: structured logs.
//! - [`backoff`], [`clock`]: reconnect delays, unix time.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod assertion;
pub mod background;
pub mod backoff;
pub mod browser;
pub mod cache;
pub mod clock;
pub mod config;
pub mod csrf;
pub mod decision;
pub mod ext_authz;
pub mod http_client;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod public_paths;
pub mod request;
pub mod revocations;
pub mod server;
pub mod sidecar;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod verifier;

pub use config::{Config, ConfigError, KeySource, Mode, VerifierSettings};
pub use decision::{Access, Decision, Rejection};
pub use identity::Identity;
pub use startup::Application;
pub use verifier::Verifier;

/// What `auth-edge --check` verifies beyond parsing: that a local key file loads. A JWKS URL is
/// not fetched (accounts may legitimately start later; readiness covers that).
pub async fn check(config: &Config) -> Result<String, String> {
    let (serve, settings) = (&config.serve, &config.verifier);
    let keys = match &settings.keys {
        KeySource::File(path) => {
            let loaded = keys::load(&settings.keys, &settings.algorithms, &settings.tls)
                .await
                .map_err(|e| format!("AUTH_EDGE_JWKS_FILE: {}: {e}", path.display()))?;
            format!("{} key(s) from {}", loaded.keys.len(), path.display())
        }
        KeySource::Url(uri) | KeySource::Discovery { url: uri, .. } => {
            format!("keys from {uri} (not fetched by --check)")
        }
    };
    let keys = if settings.issuers.is_empty() {
        keys
    } else {
        let names: Vec<&str> = settings.issuers.iter().map(|i| i.issuer.as_str()).collect();
        format!("{keys}, foreign issuers {names:?}")
    };
    let revocations = match (&config.revocations.url, &config.revocations.redis_url) {
        (None, None) => "none (revoked sessions stay valid until their tokens expire)".to_owned(),
        (Some(uri), None) => format!("stream {uri}"),
        (None, Some(_)) => "redis".to_owned(),
        (Some(uri), Some(_)) => format!("stream {uri} and redis"),
    };
    let mode = match serve.mode {
        Mode::ForwardAuth => match serve.grpc_listen {
            Some(grpc) => format!("forward-auth (ext_authz gRPC on {grpc})"),
            None => "forward-auth".to_owned(),
        },
        Mode::Sidecar => format!(
            "sidecar to {} (public paths: {:?})",
            serve.upstream.as_deref().unwrap_or("?"),
            serve.public_paths
        ),
    };
    Ok(format!(
        "configuration OK: {mode}, listen {}, admin {}, {keys}, revocations: {revocations}",
        serve.listen, serve.admin_listen
    ))
}

/// Helpers shared by the unit tests of several modules.
#[cfg(test)]
pub(crate) mod testing {
    use http::{HeaderMap, HeaderValue};

    /// A header block from `(name, value)` pairs, repeated names appended.
    pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }
}
