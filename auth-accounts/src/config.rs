//! Typed configuration, read once at start-up from environment variables.
//!
//! The variable names are the old service's (`DATABASE_URL`, `REDIS_URL`, `JWT_*`, `SMTP_*`,
//! `GEOIP_DB_PATH`, `FRONTEND_URL`, ...) so an existing deployment's environment keeps working.
//! [`Config::from_vars`] takes any key/value source, so parsing is tested without touching the
//! process environment. A bad value stops start-up with a message naming the variable.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use auth_token::Algorithm;

mod frontend;
pub use frontend::{link, CorsMode, FrontendConfig, VerifyEmailMode};

/// A value that must never reach a log line (database URLs with passwords, SMTP passwords).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn bad(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordAlgorithm {
    Bcrypt,
    Argon2id,
}

/// How the SMTP connection is secured (`SMTP_TLS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// STARTTLS when the server offers it, plain otherwise (local relays, test sinks).
    Opportunistic,
    /// Never encrypt (a relay on localhost).
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

/// A trusted proxy network (`10.0.0.0/8`, `127.0.0.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may show up as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `ENV`: `dev` or `prod`. In `prod`, missing signing keys are an error instead of generated.
    pub production: bool,
    pub log_level: String,
    pub log_json: bool,
    pub host: String,
    pub port: u16,
    pub database_url: Secret,
    pub db_pool_size: u32,
    pub data_dir: PathBuf,
    pub mail_dir: PathBuf,
    pub redis_url: Option<Secret>,
    pub kafka_bootstrap_servers: Option<String>,
    pub kafka_topic: String,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_user: Option<String>,
    pub smtp_pass: Option<Secret>,
    pub smtp_from_email: String,
    pub smtp_from_name: String,
    pub smtp_tls: SmtpTls,
    pub jwt_private_key_path: PathBuf,
    pub jwt_public_key_path: PathBuf,
    /// `JWT_ADDITIONAL_PUBLIC_KEY_PATHS`: retired (or upcoming) public keys still published in the
    /// JWKS and accepted, so tokens signed before a key change stay valid until they expire.
    pub jwt_additional_public_keys: Vec<PathBuf>,
    /// `JWT_RETIRED_KEYS_DIR`: where rotation keeps retired public keys (default `retired/` beside
    /// the private key). A separate directory lets Kubernetes mount them from their own Secret.
    pub jwt_retired_keys_dir: PathBuf,
    pub jwt_algorithm: Algorithm,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_ttl: i64,
    pub jwt_leeway: i64,
    pub refresh_ttl: i64,
    pub refresh_grace: i64,
    pub one_time_token_ttl: i64,
    pub geoip_db_path: Option<PathBuf>,
    pub frontend_url: url::Url,
    /// Link paths, `VERIFY_EMAIL_MODE`, `CORS_MODE` (see [`FrontendConfig`]).
    pub frontend: FrontendConfig,
    /// Origins allowed for CORS and for cookie-authenticated state-changing requests.
    pub allowed_origins: Vec<String>,
    pub cookie_secure: bool,
    pub cookie_same_site: SameSite,
    pub cookie_domain: Option<String>,
    pub password_algorithm: PasswordAlgorithm,
    pub bcrypt_cost: u32,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub password_hash_concurrency: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub request_timeout_secs: u64,
    /// `REVOCATIONS_TOKEN`: when set, the revocation feed requires `Authorization: Bearer` with it.
    pub revocations_token: Option<Secret>,
    pub rate_limit: RateLimitConfig,
    /// `RUN_WORKERS`: run the relays and cleanup inside the API process (default), or leave them
    /// to a separate `auth-accounts worker` process.
    pub run_workers: bool,
    /// `MIGRATE_ON_START`: apply pending migrations at start-up (default). `false` only checks that
    /// none is pending and leaves applying them to `auth-accounts migrate` (a Kubernetes Job).
    pub migrate_on_start: bool,
    pub cleanup_interval_secs: u64,
    /// Old-service variables that are set but have no effect (name, why), logged at start-up.
    pub ignored_legacy_vars: Vec<(&'static str, &'static str)>,
}

/// Request limits. The per-route limits are the old service's; `login_failures` throttles failed
/// logins per email address (existing or not, so a 429 reveals nothing).
#[derive(Clone, Debug)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub auth_per_minute: u32,
    pub refresh_per_minute: u32,
    pub login_failures: u32,
    pub login_failure_window: i64,
}

struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
    fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }
    fn num<T: std::str::FromStr>(&self, key: &'static str, default: T) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| bad(key, format!("not a number: {v:?}"))),
        }
    }
    fn positive(&self, key: &'static str, default: i64) -> Result<i64, ConfigError> {
        let v = self.num(key, default)?;
        if v <= 0 {
            return Err(bad(key, "must be positive"));
        }
        Ok(v)
    }
    fn flag(&self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(bad(key, format!("expected true or false, got {v:?}"))),
        }
    }
}

/// Turns the old service's SQLAlchemy URL (`postgresql+asyncpg://`) into one sqlx understands.
pub(crate) fn normalise_database_url(url: &str) -> String {
    for prefix in [
        "postgresql+asyncpg://",
        "postgresql+psycopg://",
        "postgres+asyncpg://",
    ] {
        if let Some(rest) = url.strip_prefix(prefix) {
            return format!("postgres://{rest}");
        }
    }
    url.to_string()
}

fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

impl Config {
    /// The token lifetime policy (access TTL, leeway and the horizon derived from them).
    pub fn token_lifetime(&self) -> auth_token::TokenLifetime {
        auth_token::TokenLifetime::new(self.access_ttl, self.jwt_leeway)
    }

    /// Reads the process environment over `.env` in the working directory, if there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars = crate::legacy::env::with_dotenv(std::path::Path::new("."), std::env::vars())?;
        Self::from_vars(&vars)
    }

    /// Old-service names (`DB__DB_URL`, ...) are resolved first: see [`crate::legacy::env`].
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let ignored_legacy_vars = crate::legacy::env::ignored(vars);
        let vars = &crate::legacy::env::resolve_aliases(vars)?;
        let v = Vars(vars);
        let production = match v.string("ENV", "dev").to_ascii_lowercase().as_str() {
            "dev" | "development" | "test" | "local" => false,
            "prod" | "production" => true,
            other => return Err(bad("ENV", format!("expected dev or prod, got {other:?}"))),
        };
        let data_dir = PathBuf::from(v.string("DATA_DIR", "data"));
        let default_db = format!("sqlite://{}/auth.db", data_dir.display());
        let database_url = normalise_database_url(&v.string("DATABASE_URL", &default_db));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(bad("DATABASE_URL", "expected sqlite:// or postgres:// URL"));
        }
        let jwt_algorithm = v
            .string("JWT_ALGORITHM", "RS256")
            .parse::<Algorithm>()
            .map_err(|_| bad("JWT_ALGORITHM", "expected RS256, ES256 or EdDSA"))?;
        let frontend_url = url::Url::parse(&v.string("FRONTEND_URL", "http://localhost:3000"))
            .map_err(|e| bad("FRONTEND_URL", e.to_string()))?;
        let mut allowed_origins = vec![origin_of(&frontend_url)];
        if let Some(list) = v.get("CORS_ALLOWED_ORIGINS") {
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if item == "*" {
                    // A wildcard with credentials would let any site act as the user.
                    return Err(bad(
                        "CORS_ALLOWED_ORIGINS",
                        "\"*\" is not allowed with cookies",
                    ));
                }
                let url = url::Url::parse(item)
                    .map_err(|e| bad("CORS_ALLOWED_ORIGINS", format!("{item}: {e}")))?;
                let origin = origin_of(&url);
                if !allowed_origins.contains(&origin) {
                    allowed_origins.push(origin);
                }
            }
        }
        let cookie_same_site = match v
            .string("COOKIE_SAMESITE", "lax")
            .to_ascii_lowercase()
            .as_str()
        {
            "lax" => SameSite::Lax,
            "strict" => SameSite::Strict,
            "none" => SameSite::None,
            other => {
                return Err(bad(
                    "COOKIE_SAMESITE",
                    format!("expected lax, strict or none, got {other:?}"),
                ))
            }
        };
        let cookie_secure = v.flag("COOKIE_SECURE", true)?;
        if cookie_same_site == SameSite::None && !cookie_secure {
            // Browsers drop SameSite=None cookies without Secure; the old service shipped that bug.
            return Err(bad("COOKIE_SAMESITE", "none requires COOKIE_SECURE=true"));
        }
        if production && !cookie_secure {
            return Err(bad("COOKIE_SECURE", "cannot be false when ENV=prod"));
        }
        let password_algorithm = match v
            .string("PASSWORD_HASH_ALGORITHM", "bcrypt")
            .to_ascii_lowercase()
            .as_str()
        {
            "bcrypt" => PasswordAlgorithm::Bcrypt,
            "argon2id" | "argon2" => PasswordAlgorithm::Argon2id,
            other => {
                return Err(bad(
                    "PASSWORD_HASH_ALGORITHM",
                    format!("expected bcrypt or argon2id, got {other:?}"),
                ))
            }
        };
        let bcrypt_cost = v.num("BCRYPT_COST", 12u32)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(bad("BCRYPT_COST", "must be between 4 and 31"));
        }
        let mut trusted_proxies = Vec::new();
        if let Some(list) = v.get("TRUSTED_PROXIES") {
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                trusted_proxies.push(IpNet::parse(item).ok_or_else(|| {
                    bad("TRUSTED_PROXIES", format!("not an address or CIDR: {item}"))
                })?);
            }
        }
        let smtp_port = v.num("SMTP_PORT", 587u16)?;
        let smtp_tls = match v.get("SMTP_TLS").map(str::to_ascii_lowercase).as_deref() {
            Some("starttls") => SmtpTls::Starttls,
            Some("tls" | "ssl" | "implicit") => SmtpTls::Tls,
            Some("opportunistic") => SmtpTls::Opportunistic,
            Some("none" | "plain" | "off") => SmtpTls::None,
            Some(other) => {
                return Err(bad(
                    "SMTP_TLS",
                    format!("expected starttls, tls, opportunistic or none, got {other:?}"),
                ))
            }
            None => match smtp_port {
                465 => SmtpTls::Tls,
                587 => SmtpTls::Starttls,
                _ => SmtpTls::Opportunistic,
            },
        };
        let frontend = FrontendConfig::from_vars(&v)?;
        if production && frontend.cors == CorsMode::Gateway && trusted_proxies.is_empty() {
            // Behind a gateway every request comes from the gateway's address: without trusting it
            // all users would share one rate-limit bucket (and one address in their sessions).
            return Err(bad(
                "TRUSTED_PROXIES",
                "required with CORS_MODE=gateway in ENV=prod (the gateway's address or network)",
            ));
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let certs = |name: &str| PathBuf::from("certs").join(name);
        let jwt_private_key_path = v
            .get("JWT_PRIVATE_KEY_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| certs("jwt-private.pem"));
        let jwt_retired_keys_dir = v.get("JWT_RETIRED_KEYS_DIR").map_or_else(
            || {
                jwt_private_key_path
                    .parent()
                    .unwrap_or_else(|| std::path::Path::new("."))
                    .join("retired")
            },
            PathBuf::from,
        );
        Ok(Self {
            production,
            log_level: crate::legacy::env::log_level(&v.string("LOG_LEVEL", "info")),
            log_json: v.string("LOG_FORMAT", if production { "json" } else { "text" }) == "json",
            host: v.string("HOST", "127.0.0.1"),
            port: v.num("PORT", 8000u16)?,
            database_url: Secret::new(database_url),
            db_pool_size: v.num("DB_POOL_SIZE", 20u32)?.max(1),
            mail_dir: v
                .get("MAIL_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("mail")),
            data_dir,
            redis_url: v.get("REDIS_URL").map(Secret::new),
            kafka_bootstrap_servers: v.get("KAFKA_BOOTSTRAP_SERVERS").map(str::to_string),
            kafka_topic: v.string("KAFKA_AUTH_EVENTS_TOPIC", "auth.events"),
            smtp_host: v.get("SMTP_HOST").map(str::to_string),
            smtp_port,
            smtp_tls,
            smtp_user: v.get("SMTP_USER").map(str::to_string),
            smtp_pass: v.get("SMTP_PASS").map(Secret::new),
            smtp_from_email: v.string("SMTP_FROM_EMAIL", "noreply@localhost"),
            smtp_from_name: v.string("SMTP_FROM_NAME", "SmartBudget"),
            jwt_private_key_path,
            jwt_public_key_path: v
                .get("JWT_PUBLIC_KEY_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| certs("jwt-public.pem")),
            jwt_additional_public_keys: v
                .get("JWT_ADDITIONAL_PUBLIC_KEY_PATHS")
                .map(|l| {
                    l.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default(),
            jwt_retired_keys_dir,
            jwt_algorithm,
            jwt_issuer: v.string("JWT_ISSUER", "auth-service"),
            jwt_audience: v.string("JWT_AUDIENCE", "smart-budget"),
            access_ttl: v.positive("JWT_ACCESS_TTL_SECONDS", 900)?,
            jwt_leeway: v.num("JWT_LEEWAY_SECONDS", 30i64)?.clamp(0, 300),
            refresh_ttl: v.positive("REFRESH_TTL_SECONDS", 30 * 24 * 3600)?,
            refresh_grace: v.num("REFRESH_REUSE_GRACE_SECONDS", 10i64)?.clamp(0, 300),
            one_time_token_ttl: v.positive("ONE_TIME_TOKEN_TTL_SECONDS", 900)?,
            geoip_db_path: v.get("GEOIP_DB_PATH").map(PathBuf::from),
            frontend_url,
            frontend,
            allowed_origins,
            cookie_secure,
            cookie_same_site,
            cookie_domain: v.get("COOKIE_DOMAIN").map(str::to_string),
            password_algorithm,
            bcrypt_cost,
            argon2_memory_kib: v.num("ARGON2_MEMORY_KIB", 19 * 1024u32)?,
            argon2_iterations: v.num("ARGON2_ITERATIONS", 2u32)?,
            password_hash_concurrency: v.num("PASSWORD_HASH_CONCURRENCY", cores)?.max(1),
            trusted_proxies,
            request_timeout_secs: v.num("REQUEST_TIMEOUT_SECONDS", 10u64)?.max(1),
            revocations_token: v.get("REVOCATIONS_TOKEN").map(Secret::new),
            run_workers: v.flag("RUN_WORKERS", true)?,
            migrate_on_start: v.flag("MIGRATE_ON_START", true)?,
            cleanup_interval_secs: v.num("CLEANUP_INTERVAL_SECONDS", 3600u64)?.max(10),
            rate_limit: RateLimitConfig {
                enabled: v.flag("RATE_LIMIT_ENABLED", true)?,
                auth_per_minute: v.num("RATE_LIMIT_AUTH_PER_MINUTE", 5u32)?.max(1),
                refresh_per_minute: v.num("RATE_LIMIT_REFRESH_PER_MINUTE", 30u32)?.max(1),
                login_failures: v.num("LOGIN_FAILURE_LIMIT", 10u32)?.max(1),
                login_failure_window: v.positive("LOGIN_FAILURE_WINDOW_SECONDS", 900)?,
            },
            ignored_legacy_vars,
        })
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose().starts_with("sqlite:")
    }

    pub fn is_origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A variable map for `Config::from_vars` (also used by the legacy `.env` tests).
    pub(crate) fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_mode() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert!(c.is_sqlite());
        assert!(c.cookie_secure);
        assert_eq!(c.cookie_same_site, SameSite::Lax);
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.access_ttl, 900);
        assert_eq!(c.refresh_grace, 10);
        assert_eq!(c.allowed_origins, vec!["http://localhost:3000".to_string()]);
        assert_eq!(c.jwt_issuer, "auth-service");
        assert_eq!(c.jwt_audience, "smart-budget");
        assert!(c.migrate_on_start);
        assert_eq!(c.jwt_retired_keys_dir, PathBuf::from("certs/retired"));
    }

    #[test]
    fn retired_keys_and_migrations_for_kubernetes() {
        let c = Config::from_vars(&vars(&[
            ("JWT_PRIVATE_KEY_PATH", "/etc/auth/keys/private.pem"),
            ("MIGRATE_ON_START", "false"),
        ]))
        .unwrap();
        assert_eq!(
            c.jwt_retired_keys_dir,
            PathBuf::from("/etc/auth/keys/retired")
        );
        assert!(!c.migrate_on_start);
        let c = Config::from_vars(&vars(&[("JWT_RETIRED_KEYS_DIR", "/etc/auth/retired")])).unwrap();
        assert_eq!(c.jwt_retired_keys_dir, PathBuf::from("/etc/auth/retired"));
        let e = Config::from_vars(&vars(&[("MIGRATE_ON_START", "sometimes")])).unwrap_err();
        assert_eq!(e.var, "MIGRATE_ON_START");
    }

    #[test]
    fn old_sqlalchemy_url_is_accepted() {
        let c = Config::from_vars(&vars(&[(
            "DATABASE_URL",
            "postgresql+asyncpg://u:p@h:5432/db",
        )]))
        .unwrap();
        assert_eq!(c.database_url.expose(), "postgres://u:p@h:5432/db");
        assert_eq!(format!("{:?}", c.database_url), "Secret(***)");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Config::from_vars(&vars(&[("PORT", "eighty")])).unwrap_err();
        assert_eq!(e.var, "PORT");
        let e = Config::from_vars(&vars(&[("CORS_ALLOWED_ORIGINS", "*")])).unwrap_err();
        assert_eq!(e.var, "CORS_ALLOWED_ORIGINS");
        let e = Config::from_vars(&vars(&[("JWT_ALGORITHM", "HS256")])).unwrap_err();
        assert_eq!(e.var, "JWT_ALGORITHM");
        let e =
            Config::from_vars(&vars(&[("ENV", "prod"), ("COOKIE_SECURE", "false")])).unwrap_err();
        assert_eq!(e.var, "COOKIE_SECURE");
        let e = Config::from_vars(&vars(&[
            ("COOKIE_SAMESITE", "none"),
            ("COOKIE_SECURE", "false"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "COOKIE_SAMESITE");
    }

    #[test]
    fn origins_are_normalised() {
        let c = Config::from_vars(&vars(&[
            ("FRONTEND_URL", "https://app.example.com/some/path"),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://admin.example.com/, https://app.example.com",
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            vec!["https://app.example.com", "https://admin.example.com"]
        );
        assert!(c.is_origin_allowed("https://admin.example.com"));
        assert!(!c.is_origin_allowed("https://evil.example.com"));
    }

    #[test]
    fn prod_behind_a_gateway_needs_trusted_proxies() {
        let gateway = [("ENV", "prod"), ("CORS_MODE", "gateway")];
        let e = Config::from_vars(&vars(&gateway)).unwrap_err();
        assert_eq!(e.var, "TRUSTED_PROXIES");
        let mut with_proxy = gateway.to_vec();
        with_proxy.push(("TRUSTED_PROXIES", "172.16.0.0/12"));
        let c = Config::from_vars(&vars(&with_proxy)).unwrap();
        assert_eq!(c.frontend.cors, CorsMode::Gateway);
        // In dev the same configuration starts (and warns at the first forwarded request).
        let dev = Config::from_vars(&vars(&[("CORS_MODE", "gateway")])).unwrap();
        assert!(dev.trusted_proxies.is_empty());
    }

    #[test]
    fn trusted_proxy_networks() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        let one = IpNet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_none());
        let all = IpNet::parse("::/0").unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
    }
}
