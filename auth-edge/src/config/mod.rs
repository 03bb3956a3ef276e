//! Typed configuration, read once from the environment and validated at start-up, in sections:
//!
//! - [`serve`]: mode, listeners, the sidecar's upstream and public paths, threads, drain;
//! - [`verification`]: [`VerifierSettings`], all the verifier is given (keys, token policy,
//!   cookie, cache, identity header names, the [`browser`] section: login redirect, CORS
//!   preflight, trusted proxies; and the [`assertion`] section: the signed identity assertion);
//! - [`issuers`]: other trusted issuers (`AUTH_EDGE_ISSUERS_FILE`), beside the own one;
//! - [`revocation`]: the revocation sources, with their secrets;
//! - [`logging`]: level and format;
//! - `vars`: reading variables and [`ConfigError`] (shared by the sections).
//!
//! Parsing takes a plain map ([`Config::from_vars`]) so tests never touch the process
//! environment. Every error names the variable, so a bad deployment fails with a message that
//! says what to fix instead of a 401 storm later. Empty values count as unset (as in accounts).

pub mod assertion;
pub mod browser;
pub mod issuers;
pub mod logging;
pub mod revocation;
pub mod serve;
mod vars;
pub mod verification;

use std::collections::HashMap;

pub use issuers::ForeignIssuer;
pub use logging::{LogConfig, LogFormat};
pub use revocation::RevocationSources;
pub use serve::{Mode, ServeConfig, DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN};
pub use vars::ConfigError;

use crate::tls::TlsClient;
pub use verification::{JwksRefresh, KeySource, VerifierSettings, DEFAULT_JWKS_URL};

/// Everything the edge needs to run, one field per section.
#[derive(Clone, Debug)]
pub struct Config {
    /// What is served, where.
    pub serve: ServeConfig,
    /// What the verifier is given.
    pub verifier: VerifierSettings,
    /// Where revocations come from.
    pub revocations: RevocationSources,
    /// Logging.
    pub log: LogConfig,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&std::env::vars().collect())
    }

    /// Parses and validates a set of variables (the environment, in production).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let v = vars::Vars(vars);
        // One TLS client for every trust channel (keys, stream, Redis).
        let tls = match v.get("AUTH_EDGE_CA_FILE") {
            None => TlsClient::default(),
            Some(path) => TlsClient::load(Some(std::path::Path::new(path)))
                .map_err(|e| vars::err("AUTH_EDGE_CA_FILE", e.to_string()))?,
        };
        let mut config = Config {
            verifier: VerifierSettings::parse(&v)?,
            revocations: RevocationSources::parse(&v)?,
            log: LogConfig::parse(&v)?,
            serve: ServeConfig::parse(&v)?,
        };
        config.verifier.tls = tls.clone();
        config.revocations.tls = tls;
        Ok(config)
    }

    /// A configuration for tests and embedding: loopback listeners on port 0, the given key
    /// source, defaults otherwise.
    pub fn for_tests(keys: KeySource) -> Config {
        let vars = HashMap::from([
            ("AUTH_EDGE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "AUTH_EDGE_ADMIN_LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
        ]);
        let mut config = Config::from_vars(&vars)
            .unwrap_or_else(|e| unreachable!("the defaults always parse: {e}"));
        config.verifier.keys = keys;
        config
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use auth_token::Algorithm;
    use secrecy::ExposeSecret;

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
        assert_eq!(c.serve.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(c.serve.admin_listen.to_string(), "127.0.0.1:9091");
        assert_eq!(
            c.verifier.keys,
            KeySource::Url(DEFAULT_JWKS_URL.parse().unwrap())
        );
        assert_eq!(c.verifier.algorithms, vec![Algorithm::RS256]);
        assert_eq!(
            (c.verifier.issuer.as_str(), c.verifier.audience.as_str()),
            ("auth-service", "smart-budget")
        );
        assert_eq!(c.verifier.leeway_secs, 30);
        assert_eq!(c.verifier.cookie_name, "access_token");
        assert_eq!(c.verifier.jwks.min, Duration::from_secs(30));
        assert_eq!(c.verifier.jwks.max, Duration::from_secs(3600));
        assert_eq!(c.verifier.jwks.unknown_kid_interval, Duration::from_secs(5));
        assert_eq!(c.verifier.cache_entries, 100_000);
        assert!(!c.revocations.any());
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.serve.mode, Mode::ForwardAuth);
        assert_eq!(c.serve.grpc_listen, None);
        assert!(c.serve.public_paths.is_empty());
        assert!(c.serve.worker_threads() >= 1);
        let v = c.verifier.validation();
        assert_eq!(v.leeway_secs, 30);
        assert_eq!(v.issuer, "auth-service");
    }

    #[test]
    fn empty_values_are_unset() {
        let c = parse(&[("AUTH_EDGE_LISTEN", " "), ("AUTH_EDGE_JWKS_FILE", "")]).unwrap();
        assert_eq!(c.serve.listen.to_string(), DEFAULT_LISTEN);
        assert!(matches!(c.verifier.keys, KeySource::Url(_)));
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
        assert_eq!(
            c.verifier.keys,
            KeySource::File("/etc/auth/jwks.json".into())
        );
        assert_eq!(
            c.verifier.algorithms,
            vec![Algorithm::RS256, Algorithm::EdDSA]
        );
        assert_eq!(c.verifier.cookie_name, "__Host-at");
        assert_eq!(c.verifier.cache_entries, 0);
        assert!(c.revocations.any());
        assert_eq!(c.log.format, LogFormat::Json);
        // Secrets are kept, and never print.
        let token = c.revocations.token.as_ref().unwrap();
        assert_eq!(token.expose_secret(), "s3cret");
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
            &[("AUTH_EDGE_REVOCATIONS_URL", "wss://a/s")],
            "AUTH_EDGE_REVOCATIONS_URL",
        );
        fails_on(
            &[("AUTH_EDGE_CA_FILE", "/nonexistent/ca.pem")],
            "AUTH_EDGE_CA_FILE",
        );
        fails_on(
            &[("AUTH_EDGE_REVOCATIONS_TOKEN", "t")],
            "AUTH_EDGE_REVOCATIONS_TOKEN",
        );
        let m = fails_on(&[("REDIS_URL", "postgres://u:hunter2@db")], "REDIS_URL");
        assert!(!m.contains("hunter2"), "{m}");
        fails_on(&[("LOG_FORMAT", "xml")], "LOG_FORMAT");
        fails_on(&[("LOG_LEVEL", "loud")], "LOG_LEVEL");
    }

    #[test]
    fn modes() {
        let c = parse(&[("AUTH_EDGE_GRPC_LISTEN", "127.0.0.1:9001")]).unwrap();
        assert_eq!(c.serve.grpc_listen, Some("127.0.0.1:9001".parse().unwrap()));
        let c = parse(&[
            ("AUTH_EDGE_MODE", "Sidecar"),
            ("AUTH_EDGE_UPSTREAM", "app:8080"),
            ("AUTH_EDGE_PUBLIC_PATHS", "/healthz,/static/"),
            ("AUTH_EDGE_THREADS", "3"),
        ])
        .unwrap();
        assert_eq!(c.serve.mode, Mode::Sidecar);
        assert_eq!(c.serve.upstream.as_deref(), Some("app:8080"));
        assert!(c.serve.public_paths.is_public("/static/x.css"));
        assert_eq!(c.serve.worker_threads(), 3);
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
    fn browsers() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.verifier.browser, crate::browser::BrowserPolicy::default());
        let c = parse(&[
            (
                "AUTH_EDGE_LOGIN_URL",
                "https://Login.example.com/signin?lang=en",
            ),
            ("AUTH_EDGE_CORS_PREFLIGHT", "Allow"),
            ("AUTH_EDGE_TRUSTED_PROXIES", "10.0.0.0/8"),
        ])
        .unwrap();
        let b = &c.verifier.browser;
        assert!(b.cors_preflight);
        assert!(b.reads_return_url(Some("10.1.1.1".parse().unwrap())));
        assert!(!b.reads_return_url(Some("127.0.0.1".parse().unwrap())));
        let login = b.login.as_ref().unwrap();
        assert_eq!(login.return_param, "rd");
        // By default only the login page's own host may be returned to.
        assert!(login.allowed_hosts.allows("login.example.com"));
        assert!(!login.allowed_hosts.allows("app.example.com"));
        let c = parse(&[
            ("AUTH_EDGE_LOGIN_URL", "http://127.0.0.1:3000/login"),
            ("AUTH_EDGE_LOGIN_RETURN_PARAM", "return_to"),
            (
                "AUTH_EDGE_REDIRECT_ALLOWED_HOSTS",
                "app.example.com,.example.org",
            ),
        ])
        .unwrap();
        let login = c.verifier.browser.login.unwrap();
        assert_eq!(login.return_param, "return_to");
        assert!(login.allowed_hosts.allows("a.example.org"));

        for (pairs, var) in [
            (
                &[("AUTH_EDGE_LOGIN_URL", "/login")][..],
                "AUTH_EDGE_LOGIN_URL",
            ),
            (
                &[("AUTH_EDGE_LOGIN_URL", "javascript:alert(1)")],
                "AUTH_EDGE_LOGIN_URL",
            ),
            (
                &[("AUTH_EDGE_LOGIN_URL", "https://u@login.example/")],
                "AUTH_EDGE_LOGIN_URL",
            ),
            (
                &[
                    ("AUTH_EDGE_LOGIN_URL", "https://login.example/"),
                    ("AUTH_EDGE_REDIRECT_ALLOWED_HOSTS", "*"),
                ],
                "AUTH_EDGE_REDIRECT_ALLOWED_HOSTS",
            ),
            (
                &[
                    ("AUTH_EDGE_LOGIN_URL", "https://login.example/"),
                    ("AUTH_EDGE_REDIRECT_ALLOWED_HOSTS", "*.example.com"),
                ],
                "AUTH_EDGE_REDIRECT_ALLOWED_HOSTS",
            ),
            (
                &[
                    ("AUTH_EDGE_LOGIN_URL", "https://login.example/"),
                    ("AUTH_EDGE_LOGIN_RETURN_PARAM", "r&d"),
                ],
                "AUTH_EDGE_LOGIN_RETURN_PARAM",
            ),
            (
                &[("AUTH_EDGE_REDIRECT_ALLOWED_HOSTS", "a.example")],
                "AUTH_EDGE_REDIRECT_ALLOWED_HOSTS",
            ),
            (
                &[("AUTH_EDGE_LOGIN_RETURN_PARAM", "rd")],
                "AUTH_EDGE_LOGIN_RETURN_PARAM",
            ),
            (
                &[("AUTH_EDGE_CORS_PREFLIGHT", "yes")],
                "AUTH_EDGE_CORS_PREFLIGHT",
            ),
            (
                &[("AUTH_EDGE_TRUSTED_PROXIES", "gateway")],
                "AUTH_EDGE_TRUSTED_PROXIES",
            ),
        ] {
            fails_on(pairs, var);
        }
    }

    #[test]
    fn identity_header_names() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            c.verifier.header_names,
            crate::identity::HeaderNames::default()
        );
        let c = parse(&[
            ("AUTH_EDGE_USER_ID_HEADER", "X-Auth-User"),
            ("AUTH_EDGE_ROLE_HEADER", "X-Auth-Role"),
        ])
        .unwrap();
        let names = c.verifier.header_names.names();
        assert_eq!(
            [names[0].as_str(), names[1].as_str(), names[2].as_str()],
            ["x-auth-user", "x-session-id", "x-auth-role"]
        );
        fails_on(
            &[("AUTH_EDGE_ROLE_HEADER", "Cookie")],
            "AUTH_EDGE_ROLE_HEADER",
        );
        fails_on(
            &[("AUTH_EDGE_SESSION_ID_HEADER", "X-User-Id")],
            "AUTH_EDGE_SESSION_ID_HEADER",
        );
        fails_on(
            &[("AUTH_EDGE_USER_ID_HEADER", "X_User")],
            "AUTH_EDGE_USER_ID_HEADER",
        );
    }

    #[test]
    fn identity_assertions() {
        let c = parse(&[]).unwrap();
        assert!(c.verifier.assertion.is_none());
        assert!(c.verifier.header_names.assertion().is_none());
        let dir = std::env::temp_dir().join(format!("edge-assertion-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = |alg| {
            let path = dir.join(format!("{alg}.pem"));
            let pem = auth_token::SigningKey::generate(alg)
                .unwrap()
                .to_pkcs8_pem()
                .unwrap();
            std::fs::write(&path, pem).unwrap();
            path.display().to_string()
        };
        let (ed, p256, rsa) = (
            key(Algorithm::EdDSA),
            key(Algorithm::ES256),
            key(Algorithm::RS256),
        );
        let c = parse(&[("AUTH_EDGE_ASSERTION_KEY_FILE", &ed)]).unwrap();
        assert!(c.verifier.assertion.is_some());
        assert_eq!(
            c.verifier.header_names.assertion().unwrap(),
            "x-identity-assertion"
        );
        let c = parse(&[
            ("AUTH_EDGE_ASSERTION_KEY_FILE", &p256),
            ("AUTH_EDGE_ASSERTION_ALGORITHM", "ES256"),
            ("AUTH_EDGE_ASSERTION_HEADER", "X-Signed-Identity"),
            ("AUTH_EDGE_ASSERTION_TTL_SECONDS", "30"),
            ("AUTH_EDGE_ASSERTION_AUDIENCE", "orders"),
        ])
        .unwrap();
        assert_eq!(
            c.verifier.header_names.assertion().unwrap(),
            "x-signed-identity"
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("-----"), "no PEM armour: {debug}");

        let var = "AUTH_EDGE_ASSERTION_KEY_FILE";
        fails_on(
            &[("AUTH_EDGE_ASSERTION_AUDIENCE", "x")],
            "AUTH_EDGE_ASSERTION_AUDIENCE",
        );
        fails_on(&[(var, "/nonexistent/key.pem")], var);
        // A P-256 key read as Ed25519, an RSA key (too slow to sign per request).
        fails_on(&[(var, &p256)], var);
        fails_on(
            &[(var, &rsa), ("AUTH_EDGE_ASSERTION_ALGORITHM", "RS256")],
            "AUTH_EDGE_ASSERTION_ALGORITHM",
        );
        fails_on(
            &[(var, &ed), ("AUTH_EDGE_ASSERTION_HEADER", "X-User-Id")],
            "AUTH_EDGE_ASSERTION_HEADER",
        );
        fails_on(
            &[(var, &ed), ("AUTH_EDGE_ASSERTION_HEADER", "Authorization")],
            "AUTH_EDGE_ASSERTION_HEADER",
        );
        fails_on(
            &[(var, &ed), ("AUTH_EDGE_ASSERTION_TTL_SECONDS", "3600")],
            "AUTH_EDGE_ASSERTION_TTL_SECONDS",
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn for_tests_uses_port_zero() {
        let c = Config::for_tests(KeySource::File("/k.pem".into()));
        assert_eq!(c.serve.listen.port(), 0);
        assert_eq!(c.serve.admin_listen.port(), 0);
        assert_eq!(c.verifier.keys, KeySource::File("/k.pem".into()));
    }
}
