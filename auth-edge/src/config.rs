//! Typed configuration, read once from the environment and validated at start-up.
//!
//! Parsing takes a plain map ([`Config::from_vars`]) so tests never touch the process
//! environment. Every error names the variable, so a bad deployment fails with a message that
//! says what to fix instead of a 401 storm later. Empty values count as unset (as in accounts).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use auth_token::Algorithm;
use http::Uri;

use crate::public_paths::PublicPaths;

/// Where the edge listens by default: next to accounts (`127.0.0.1:8000`) in the embedded mode.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";
/// Health, readiness and metrics listen here, apart from forward-auth traffic.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9091";
/// The accounts service's JWKS in the embedded mode (`cargo run -p auth-accounts`).
pub const DEFAULT_JWKS_URL: &str = "http://127.0.0.1:8000/api/v1/auth/.well-known/jwks.json";

/// A configuration value that must never be printed (tokens, URLs with passwords).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where verification keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS document over plain HTTP (the edge carries no TLS client: it talks to accounts
    /// inside the cluster or on loopback).
    Url(Uri),
    /// A local file: a JWKS document, a single JWK, or a public-key PEM.
    File(PathBuf),
}

/// What the process serves (`AUTH_EDGE_MODE`, or the binary's subcommand).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answers forward-auth checks (nginx, Traefik, Caddy, Envoy HTTP) and, when
    /// `AUTH_EDGE_GRPC_LISTEN` is set, Envoy ext_authz gRPC checks.
    ForwardAuth,
    /// A reverse proxy in front of one upstream (`AUTH_EDGE_UPSTREAM`), usually in the same pod.
    Sidecar,
}

impl Mode {
    /// Parses `forward-auth` or `sidecar`.
    pub fn parse(raw: &str) -> Option<Mode> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "forward-auth" | "forward_auth" => Some(Mode::ForwardAuth),
            "sidecar" => Some(Mode::Sidecar),
            _ => None,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Everything the edge needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Forward-auth or sidecar (`AUTH_EDGE_MODE`).
    pub mode: Mode,
    /// Forward-auth listener, or the sidecar proxy's listener (`AUTH_EDGE_LISTEN`).
    pub listen: SocketAddr,
    /// Envoy ext_authz gRPC listener, off when unset (`AUTH_EDGE_GRPC_LISTEN`; forward-auth mode).
    pub grpc_listen: Option<SocketAddr>,
    /// Where the sidecar forwards authenticated requests, `host:port` (`AUTH_EDGE_UPSTREAM`).
    pub upstream: Option<String>,
    /// Path prefixes the sidecar forwards without a token (`AUTH_EDGE_PUBLIC_PATHS`).
    pub public_paths: PublicPaths,
    /// Worker threads, 0 for one per CPU (`AUTH_EDGE_THREADS`).
    pub threads: usize,
    /// Health/readiness/metrics listener (`AUTH_EDGE_ADMIN_LISTEN`).
    pub admin_listen: SocketAddr,
    /// `AUTH_EDGE_JWKS_URL` or `AUTH_EDGE_JWKS_FILE`.
    pub keys: KeySource,
    /// Accepted token algorithms (`AUTH_EDGE_ALGORITHMS`).
    pub algorithms: Vec<Algorithm>,
    /// Required `iss` (`JWT_ISSUER`).
    pub issuer: String,
    /// Required `aud` (`JWT_AUDIENCE`).
    pub audience: String,
    /// Clock skew allowed for `exp`/`iat` (`AUTH_EDGE_LEEWAY_SECONDS`).
    pub leeway_secs: i64,
    /// Cookie carrying the access token (`AUTH_EDGE_COOKIE_NAME`).
    pub cookie_name: String,
    /// Lower bound of the JWKS refresh interval (`AUTH_EDGE_JWKS_MIN_REFRESH_SECONDS`).
    pub jwks_min_refresh: Duration,
    /// Upper bound of the JWKS refresh interval (`AUTH_EDGE_JWKS_MAX_REFRESH_SECONDS`).
    pub jwks_max_refresh: Duration,
    /// At most one refetch for an unknown `kid` per this interval
    /// (`AUTH_EDGE_JWKS_UNKNOWN_KID_INTERVAL_SECONDS`).
    pub jwks_unknown_kid_interval: Duration,
    /// Verified-token cache capacity, in entries of up to 512 bytes (`AUTH_EDGE_CACHE_ENTRIES`).
    pub cache_entries: u64,
    /// Revocation stream from accounts (`AUTH_EDGE_REVOCATIONS_URL`).
    pub revocations_url: Option<Uri>,
    /// Bearer token for the revocation stream (`AUTH_EDGE_REVOCATIONS_TOKEN`).
    pub revocations_token: Option<Secret>,
    /// Redis for revocation pub/sub (`REDIS_URL`); may carry a password.
    pub redis_url: Option<Secret>,
    /// How long in-flight requests may finish after SIGTERM (`AUTH_EDGE_DRAIN_SECONDS`).
    pub drain: Duration,
    /// `LOG_LEVEL` (`RUST_LOG` overrides it).
    pub log_level: String,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
}

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Reads variables, treating empty (or blank) values as unset.
struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn get(&self, var: &str) -> Option<&str> {
        self.0.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn or<'s>(&'s self, var: &str, default: &'s str) -> &'s str {
        self.get(var).unwrap_or(default)
    }

    fn addr(&self, var: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
        let raw = self.or(var, default);
        raw.parse().map_err(|_| {
            err(
                var,
                format!("{raw:?} is not an address like 127.0.0.1:8081"),
            )
        })
    }

    fn number(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        let n: u64 = raw
            .parse()
            .map_err(|_| err(var, format!("{raw:?} is not a whole number")))?;
        if !(min..=max).contains(&n) {
            return Err(err(var, format!("{n} is outside {min}..={max}")));
        }
        Ok(n)
    }

    fn secs(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(var, default, min, max).map(Duration::from_secs)
    }
}

/// `host:port` with a non-zero port; the host is resolved when the sidecar starts.
fn host_port(var: &'static str, raw: &str) -> Result<String, ConfigError> {
    let bad = || {
        err(
            var,
            format!("{raw:?} is not host:port (e.g. 127.0.0.1:8080)"),
        )
    };
    let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if port == 0 || host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(bad());
    }
    Ok(raw.to_owned())
}

/// Accepts only `http://host[:port]/path` URLs: the edge has no TLS client on purpose (it stays
/// small and talks to accounts inside the cluster); an `https` URL must fail loudly at start-up
/// rather than at the first fetch.
fn http_url(var: &'static str, raw: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = raw
        .parse()
        .map_err(|_| err(var, format!("{raw:?} is not a URL")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(err(
                var,
                "https is not supported (the edge has no TLS client): use plain http to accounts \
                 inside the cluster or on loopback, or a local key file",
            ))
        }
        _ => return Err(err(var, format!("{raw:?} must start with http://"))),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(err(var, format!("{raw:?} has no host")));
    }
    Ok(uri)
}

fn algorithms(raw: &str) -> Result<Vec<Algorithm>, ConfigError> {
    const VAR: &str = "AUTH_EDGE_ALGORITHMS";
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // auth_token::Algorithm has no `none` and no HMAC variant, so those cannot be configured
        // at all; say why instead of a bare "unsupported".
        let alg: Algorithm = name.parse().map_err(|_| {
            err(
                VAR,
                format!("{name:?} is not allowed: use RS256, ES256 or EdDSA (never none or HS*)"),
            )
        })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        return Err(err(VAR, "no algorithm given"));
    }
    Ok(out)
}

fn cookie_name(raw: &str) -> Result<String, ConfigError> {
    // RFC 6265 cookie-name is an RFC 7230 token.
    let valid = raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(err(
            "AUTH_EDGE_COOKIE_NAME",
            format!("{raw:?} is not a valid cookie name"),
        ));
    }
    Ok(raw.to_owned())
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&std::env::vars().collect())
    }

    /// Parses and validates a set of variables (the environment, in production).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let v = Vars(vars);

        let keys = match (v.get("AUTH_EDGE_JWKS_URL"), v.get("AUTH_EDGE_JWKS_FILE")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "AUTH_EDGE_JWKS_FILE",
                    "set either AUTH_EDGE_JWKS_URL or AUTH_EDGE_JWKS_FILE, not both",
                ))
            }
            (Some(url), None) => KeySource::Url(http_url("AUTH_EDGE_JWKS_URL", url)?),
            (None, Some(path)) => KeySource::File(PathBuf::from(path)),
            (None, None) => KeySource::Url(http_url("AUTH_EDGE_JWKS_URL", DEFAULT_JWKS_URL)?),
        };

        let jwks_min_refresh = v.secs("AUTH_EDGE_JWKS_MIN_REFRESH_SECONDS", 30, 1, 86_400)?;
        let jwks_max_refresh = v.secs("AUTH_EDGE_JWKS_MAX_REFRESH_SECONDS", 3600, 1, 86_400)?;
        if jwks_max_refresh < jwks_min_refresh {
            return Err(err(
                "AUTH_EDGE_JWKS_MAX_REFRESH_SECONDS",
                format!(
                    "{} is below AUTH_EDGE_JWKS_MIN_REFRESH_SECONDS ({})",
                    jwks_max_refresh.as_secs(),
                    jwks_min_refresh.as_secs()
                ),
            ));
        }

        let revocations_url = v
            .get("AUTH_EDGE_REVOCATIONS_URL")
            .map(|raw| http_url("AUTH_EDGE_REVOCATIONS_URL", raw))
            .transpose()?;
        let revocations_token = v.get("AUTH_EDGE_REVOCATIONS_TOKEN").map(Secret::new);
        if revocations_token.is_some() && revocations_url.is_none() {
            return Err(err(
                "AUTH_EDGE_REVOCATIONS_TOKEN",
                "set without AUTH_EDGE_REVOCATIONS_URL",
            ));
        }
        let redis_url = match v.get("REDIS_URL") {
            None => None,
            Some(raw) => {
                if raw.starts_with("rediss://") {
                    return Err(err(
                        "REDIS_URL",
                        "rediss:// (TLS) is not supported by the edge; use redis:// on a private network",
                    ));
                }
                // Parses without connecting; the message never includes the URL (it may hold a
                // password).
                redis::Client::open(raw)
                    .map_err(|_| err("REDIS_URL", "not a valid redis:// URL"))?;
                Some(Secret::new(raw))
            }
        };

        let log_format = match v.or("LOG_FORMAT", "text").to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(err("LOG_FORMAT", format!("{other:?} is not text or json"))),
        };
        let log_level = v.or("LOG_LEVEL", "info").to_ascii_lowercase();
        if !["trace", "debug", "info", "warn", "error"].contains(&log_level.as_str()) {
            return Err(err(
                "LOG_LEVEL",
                format!("{log_level:?} is not trace, debug, info, warn or error"),
            ));
        }

        let mode = {
            let raw = v.or("AUTH_EDGE_MODE", "forward-auth");
            Mode::parse(raw).ok_or_else(|| {
                err(
                    "AUTH_EDGE_MODE",
                    format!("{raw:?} is not forward-auth or sidecar"),
                )
            })?
        };
        let grpc_listen = match v.get("AUTH_EDGE_GRPC_LISTEN") {
            None => None,
            Some(_) => Some(v.addr("AUTH_EDGE_GRPC_LISTEN", "")?),
        };
        let upstream = v
            .get("AUTH_EDGE_UPSTREAM")
            .map(|raw| host_port("AUTH_EDGE_UPSTREAM", raw))
            .transpose()?;
        let public_paths = PublicPaths::parse(v.or("AUTH_EDGE_PUBLIC_PATHS", ""))
            .map_err(|m| err("AUTH_EDGE_PUBLIC_PATHS", m))?;
        // A setting the chosen mode would silently ignore is a deployment mistake: say so now
        // rather than leave a path unprotected or a listener missing.
        match mode {
            Mode::Sidecar => {
                if upstream.is_none() {
                    return Err(err(
                        "AUTH_EDGE_UPSTREAM",
                        "required in sidecar mode (the application's host:port)",
                    ));
                }
                if grpc_listen.is_some() {
                    return Err(err(
                        "AUTH_EDGE_GRPC_LISTEN",
                        "only served in forward-auth mode",
                    ));
                }
            }
            Mode::ForwardAuth => {
                if upstream.is_some() {
                    return Err(err(
                        "AUTH_EDGE_UPSTREAM",
                        "only used in sidecar mode (set AUTH_EDGE_MODE=sidecar)",
                    ));
                }
                if !public_paths.is_empty() {
                    return Err(err(
                        "AUTH_EDGE_PUBLIC_PATHS",
                        "only used in sidecar mode (the proxy in front decides what is public)",
                    ));
                }
            }
        }
        let threads = v.number("AUTH_EDGE_THREADS", 0, 0, 1024)?;

        let leeway = v.number("AUTH_EDGE_LEEWAY_SECONDS", 30, 0, 300)?;
        Ok(Config {
            mode,
            listen: v.addr("AUTH_EDGE_LISTEN", DEFAULT_LISTEN)?,
            grpc_listen,
            upstream,
            public_paths,
            threads: usize::try_from(threads).unwrap_or(0),
            admin_listen: v.addr("AUTH_EDGE_ADMIN_LISTEN", DEFAULT_ADMIN_LISTEN)?,
            keys,
            algorithms: algorithms(v.or("AUTH_EDGE_ALGORITHMS", "RS256"))?,
            issuer: v.or("JWT_ISSUER", "auth-service").to_owned(),
            audience: v.or("JWT_AUDIENCE", "smart-budget").to_owned(),
            leeway_secs: i64::try_from(leeway).unwrap_or(30),
            cookie_name: cookie_name(v.or("AUTH_EDGE_COOKIE_NAME", auth_token::ACCESS_COOKIE))?,
            jwks_min_refresh,
            jwks_max_refresh,
            jwks_unknown_kid_interval: v.secs(
                "AUTH_EDGE_JWKS_UNKNOWN_KID_INTERVAL_SECONDS",
                5,
                0,
                3600,
            )?,
            cache_entries: v.number("AUTH_EDGE_CACHE_ENTRIES", 100_000, 0, 100_000_000)?,
            revocations_url,
            revocations_token,
            redis_url,
            drain: v.secs("AUTH_EDGE_DRAIN_SECONDS", 10, 0, 600)?,
            log_level,
            log_format,
        })
    }

    /// The verification policy tokens are checked against.
    pub fn validation(&self) -> auth_token::Validation {
        let mut v = auth_token::Validation::new(self.issuer.clone(), self.audience.clone());
        v.algorithms = self.algorithms.clone();
        v.leeway_secs = self.leeway_secs;
        v
    }

    /// Worker threads to run: `AUTH_EDGE_THREADS`, or one per CPU.
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }

    /// Whether any revocation source is configured. Without one, a revoked session stays usable
    /// at this edge until its access token expires; start-up warns about it.
    pub fn has_revocation_source(&self) -> bool {
        self.revocations_url.is_some() || self.redis_url.is_some()
    }

    /// A configuration for tests and embedding: loopback listeners on port 0, the given key
    /// source, defaults otherwise.
    pub fn for_tests(keys: KeySource) -> Config {
        let mut vars = HashMap::new();
        vars.insert("AUTH_EDGE_LISTEN".to_owned(), "127.0.0.1:0".to_owned());
        vars.insert(
            "AUTH_EDGE_ADMIN_LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        );
        // The defaults always parse; fall through to a hand-built value only to avoid a panic path.
        let mut config = Config::from_vars(&vars).unwrap_or_else(|_| Config {
            mode: Mode::ForwardAuth,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_listen: None,
            upstream: None,
            public_paths: PublicPaths::default(),
            threads: 0,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            keys: keys.clone(),
            algorithms: vec![Algorithm::RS256],
            issuer: "auth-service".into(),
            audience: "smart-budget".into(),
            leeway_secs: 30,
            cookie_name: auth_token::ACCESS_COOKIE.into(),
            jwks_min_refresh: Duration::from_secs(30),
            jwks_max_refresh: Duration::from_secs(3600),
            jwks_unknown_kid_interval: Duration::from_secs(5),
            cache_entries: 100_000,
            revocations_url: None,
            revocations_token: None,
            redis_url: None,
            drain: Duration::from_secs(10),
            log_level: "info".into(),
            log_format: LogFormat::Text,
        });
        config.keys = keys;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(&vars(pairs))
    }

    fn fails_on(pairs: &[(&str, &str)], var: &str) -> String {
        let e = parse(pairs).unwrap_err();
        assert_eq!(e.var, var, "{e}");
        e.to_string()
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9091");
        assert_eq!(c.keys, KeySource::Url(DEFAULT_JWKS_URL.parse().unwrap()));
        assert_eq!(c.algorithms, vec![Algorithm::RS256]);
        assert_eq!(
            (c.issuer.as_str(), c.audience.as_str()),
            ("auth-service", "smart-budget")
        );
        assert_eq!(c.leeway_secs, 30);
        assert_eq!(c.cookie_name, "access_token");
        assert_eq!(c.jwks_min_refresh, Duration::from_secs(30));
        assert_eq!(c.jwks_max_refresh, Duration::from_secs(3600));
        assert_eq!(c.jwks_unknown_kid_interval, Duration::from_secs(5));
        assert_eq!(c.cache_entries, 100_000);
        assert!(!c.has_revocation_source());
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.mode, Mode::ForwardAuth);
        assert_eq!(c.grpc_listen, None);
        assert!(c.public_paths.is_empty());
        assert!(c.worker_threads() >= 1);
        let v = c.validation();
        assert_eq!(v.leeway_secs, 30);
        assert_eq!(v.issuer, "auth-service");
    }

    #[test]
    fn empty_values_are_unset() {
        let c = parse(&[("AUTH_EDGE_LISTEN", " "), ("AUTH_EDGE_JWKS_FILE", "")]).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(matches!(c.keys, KeySource::Url(_)));
    }

    #[test]
    fn full_configuration() {
        let c = parse(&[
            ("AUTH_EDGE_LISTEN", "0.0.0.0:9000"),
            ("AUTH_EDGE_ADMIN_LISTEN", "[::1]:9100"),
            ("AUTH_EDGE_JWKS_FILE", "/etc/auth/jwks.json"),
            ("AUTH_EDGE_ALGORITHMS", "rs256, EdDSA,RS256"),
            ("JWT_ISSUER", "iss"),
            ("JWT_AUDIENCE", "aud"),
            ("AUTH_EDGE_LEEWAY_SECONDS", "5"),
            ("AUTH_EDGE_COOKIE_NAME", "__Host-at"),
            ("AUTH_EDGE_CACHE_ENTRIES", "0"),
            (
                "AUTH_EDGE_REVOCATIONS_URL",
                "http://accounts:8000/api/v1/auth/revocations/stream",
            ),
            ("AUTH_EDGE_REVOCATIONS_TOKEN", "s3cret"),
            ("REDIS_URL", "redis://:pw@redis:6379/0"),
            ("LOG_FORMAT", "JSON"),
            ("LOG_LEVEL", "debug"),
        ])
        .unwrap();
        assert_eq!(c.keys, KeySource::File("/etc/auth/jwks.json".into()));
        assert_eq!(c.algorithms, vec![Algorithm::RS256, Algorithm::EdDSA]);
        assert_eq!(c.cookie_name, "__Host-at");
        assert_eq!(c.cache_entries, 0);
        assert!(c.has_revocation_source());
        assert_eq!(c.log_format, LogFormat::Json);
        // Secrets never print.
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains(":pw@"),
            "{debug}"
        );
    }

    #[test]
    fn errors_name_the_variable() {
        fails_on(&[("AUTH_EDGE_LISTEN", "localhost")], "AUTH_EDGE_LISTEN");
        fails_on(
            &[("AUTH_EDGE_ADMIN_LISTEN", "1.2.3.4")],
            "AUTH_EDGE_ADMIN_LISTEN",
        );
        let m = fails_on(
            &[("AUTH_EDGE_JWKS_URL", "https://accounts/jwks.json")],
            "AUTH_EDGE_JWKS_URL",
        );
        assert!(m.contains("https is not supported"), "{m}");
        fails_on(&[("AUTH_EDGE_JWKS_URL", "ftp://x/y")], "AUTH_EDGE_JWKS_URL");
        fails_on(&[("AUTH_EDGE_JWKS_URL", "not a url")], "AUTH_EDGE_JWKS_URL");
        fails_on(
            &[
                ("AUTH_EDGE_JWKS_URL", "http://a/j"),
                ("AUTH_EDGE_JWKS_FILE", "/k"),
            ],
            "AUTH_EDGE_JWKS_FILE",
        );
        fails_on(
            &[("AUTH_EDGE_LEEWAY_SECONDS", "-1")],
            "AUTH_EDGE_LEEWAY_SECONDS",
        );
        fails_on(
            &[("AUTH_EDGE_LEEWAY_SECONDS", "9999")],
            "AUTH_EDGE_LEEWAY_SECONDS",
        );
        fails_on(&[("AUTH_EDGE_COOKIE_NAME", "a b")], "AUTH_EDGE_COOKIE_NAME");
        fails_on(&[("AUTH_EDGE_COOKIE_NAME", "a;b")], "AUTH_EDGE_COOKIE_NAME");
        fails_on(
            &[("AUTH_EDGE_CACHE_ENTRIES", "lots")],
            "AUTH_EDGE_CACHE_ENTRIES",
        );
        let m = fails_on(
            &[
                ("AUTH_EDGE_JWKS_MIN_REFRESH_SECONDS", "60"),
                ("AUTH_EDGE_JWKS_MAX_REFRESH_SECONDS", "30"),
            ],
            "AUTH_EDGE_JWKS_MAX_REFRESH_SECONDS",
        );
        assert!(m.contains("below"), "{m}");
        fails_on(
            &[("AUTH_EDGE_REVOCATIONS_URL", "https://a/s")],
            "AUTH_EDGE_REVOCATIONS_URL",
        );
        fails_on(
            &[("AUTH_EDGE_REVOCATIONS_TOKEN", "t")],
            "AUTH_EDGE_REVOCATIONS_TOKEN",
        );
        fails_on(&[("REDIS_URL", "rediss://r:6380")], "REDIS_URL");
        let m = fails_on(&[("REDIS_URL", "postgres://u:hunter2@db")], "REDIS_URL");
        assert!(!m.contains("hunter2"), "{m}");
        fails_on(&[("LOG_FORMAT", "xml")], "LOG_FORMAT");
        fails_on(&[("LOG_LEVEL", "loud")], "LOG_LEVEL");
    }

    #[test]
    fn modes() {
        let c = parse(&[("AUTH_EDGE_GRPC_LISTEN", "127.0.0.1:9001")]).unwrap();
        assert_eq!(c.grpc_listen, Some("127.0.0.1:9001".parse().unwrap()));
        let c = parse(&[
            ("AUTH_EDGE_MODE", "Sidecar"),
            ("AUTH_EDGE_UPSTREAM", "app:8080"),
            ("AUTH_EDGE_PUBLIC_PATHS", "/healthz,/static/"),
            ("AUTH_EDGE_THREADS", "3"),
        ])
        .unwrap();
        assert_eq!(c.mode, Mode::Sidecar);
        assert_eq!(c.upstream.as_deref(), Some("app:8080"));
        assert!(c.public_paths.is_public("/static/x.css"));
        assert_eq!(c.worker_threads(), 3);
        parse(&[
            ("AUTH_EDGE_MODE", "sidecar"),
            ("AUTH_EDGE_UPSTREAM", "[::1]:80"),
        ])
        .unwrap();

        fails_on(&[("AUTH_EDGE_MODE", "proxy")], "AUTH_EDGE_MODE");
        fails_on(&[("AUTH_EDGE_MODE", "sidecar")], "AUTH_EDGE_UPSTREAM");
        for bad in ["app", "app:0", "app:http", ":80", "http://app:80"] {
            fails_on(
                &[("AUTH_EDGE_MODE", "sidecar"), ("AUTH_EDGE_UPSTREAM", bad)],
                "AUTH_EDGE_UPSTREAM",
            );
        }
        fails_on(
            &[
                ("AUTH_EDGE_MODE", "sidecar"),
                ("AUTH_EDGE_UPSTREAM", "app:8080"),
                ("AUTH_EDGE_GRPC_LISTEN", "127.0.0.1:9001"),
            ],
            "AUTH_EDGE_GRPC_LISTEN",
        );
        fails_on(&[("AUTH_EDGE_UPSTREAM", "app:8080")], "AUTH_EDGE_UPSTREAM");
        fails_on(
            &[("AUTH_EDGE_PUBLIC_PATHS", "/healthz")],
            "AUTH_EDGE_PUBLIC_PATHS",
        );
        fails_on(
            &[
                ("AUTH_EDGE_MODE", "sidecar"),
                ("AUTH_EDGE_UPSTREAM", "app:8080"),
                ("AUTH_EDGE_PUBLIC_PATHS", "/"),
            ],
            "AUTH_EDGE_PUBLIC_PATHS",
        );
        fails_on(
            &[("AUTH_EDGE_GRPC_LISTEN", "9001")],
            "AUTH_EDGE_GRPC_LISTEN",
        );
        fails_on(&[("AUTH_EDGE_THREADS", "many")], "AUTH_EDGE_THREADS");
    }

    #[test]
    fn algorithms_never_none_or_hmac() {
        for bad in ["none", "HS256", "RS256,hs512", "PS256", ","] {
            let m = fails_on(&[("AUTH_EDGE_ALGORITHMS", bad)], "AUTH_EDGE_ALGORITHMS");
            assert!(m.starts_with("AUTH_EDGE_ALGORITHMS: "), "{m}");
        }
        let m = fails_on(&[("AUTH_EDGE_ALGORITHMS", "none")], "AUTH_EDGE_ALGORITHMS");
        assert!(m.contains("never none or HS*"), "{m}");
    }

    #[test]
    fn for_tests_uses_port_zero() {
        let c = Config::for_tests(KeySource::File("/k.pem".into()));
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.admin_listen.port(), 0);
        assert_eq!(c.keys, KeySource::File("/k.pem".into()));
    }
}
