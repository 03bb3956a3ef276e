//! Typed configuration, read once at start-up from environment variables, in one section per
//! concern ([`HttpConfig`], [`DatabaseConfig`], [`TokenConfig`], [`EmailConfig`], ...).
//!
//! The variable names are the old service's (`DATABASE_URL`, `REDIS_URL`, `JWT_*`, `SMTP_*`,
//! `GEOIP_DB_PATH`, `FRONTEND_URL`, ...) so an existing deployment's environment keeps working;
//! the old `.env` file and its nested names (`DB__DB_URL`, `APP__LOG_LEVEL`, ...) are resolved onto
//! these first by [`crate::config::legacy_env`].
//! [`Config::from_vars`] takes any key/value source, and each section parses on its own from the
//! same source, so parsing is tested without touching the process environment. A bad value stops
//! start-up with a message naming the variable. Secrets (database and Redis URLs, SMTP password,
//! the revocation feed token) are [`SecretString`]s: their `Debug` output is redacted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use auth_token::Algorithm;
use ipnet::IpNet;
pub use secrecy::{ExposeSecret, SecretString};

mod frontend;
pub mod legacy_env;
#[cfg(test)]
mod legacy_tests;
pub use frontend::{link, CorsMode, FrontendConfig, VerifyEmailMode};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {var}: {reason}")]
/// A setting that cannot be used: which variable, and why.
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

fn bad(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// How new password hashes are made (`PASSWORD_HASH_ALGORITHM`); both kinds always verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordAlgorithm {
    /// bcrypt, as the old service (`BCRYPT_COST`).
    Bcrypt,
    /// argon2id (`ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`).
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

/// The cookies' `SameSite` attribute (`COOKIE_SAMESITE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `Lax` (the default): sent on top-level navigations from other sites, not on their POSTs.
    Lax,
    /// `Strict`: never sent from other sites.
    Strict,
    /// `None`: sent everywhere; requires `Secure`.
    None,
}

/// Parses a trusted proxy network: a CIDR (`10.0.0.0/8`) or a single address (`127.0.0.1`).
pub fn parse_network(s: &str) -> Option<IpNet> {
    match s.parse::<IpNet>() {
        Ok(net) => Some(net),
        Err(_) => s.parse::<IpAddr>().ok().map(IpNet::from),
    }
}

/// Whether `ip` is in one of `nets`. An IPv4 peer may show up as an IPv4-mapped IPv6 address on a
/// dual-stack socket: it is compared as IPv4.
pub fn in_networks(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    nets.iter().any(|net| net.contains(&ip))
}

/// The whole configuration, in sections, read once at start-up ([`Config::from_env`]).
#[derive(Clone, Debug)]
pub struct Config {
    /// `ENV`: `dev` or `prod`. In `prod`, missing signing keys are an error instead of generated.
    pub production: bool,
    /// Logging.
    pub log: LogConfig,
    /// The listener, origins and trusted proxies.
    pub http: HttpConfig,
    /// Cookie attributes.
    pub cookies: CookieConfig,
    /// The database.
    pub database: DatabaseConfig,
    /// Redis, when configured.
    pub redis: RedisConfig,
    /// Kafka, when configured.
    pub kafka: KafkaConfig,
    /// Emails: the file mailer or SMTP.
    pub email: EmailConfig,
    /// Signing keys, claims and lifetimes.
    pub tokens: TokenConfig,
    /// Password hashing.
    pub passwords: PasswordConfig,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// Background workers.
    pub workers: WorkerConfig,
    /// Link paths, `VERIFY_EMAIL_MODE`, `CORS_MODE` (see [`FrontendConfig`]).
    pub frontend: FrontendConfig,
    /// The `OTEL_*` variables: request spans exported to an OpenTelemetry collector, if set.
    pub otlp: Option<crate::otlp::OtlpConfig>,
    /// `GEOIP_DB_PATH`: a MaxMind City database for session locations (none: no locations).
    pub geoip_db_path: Option<PathBuf>,
    /// Old-service variables that are set but have no effect (name, why), logged at start-up
    /// (see [`crate::config::legacy_env`]).
    pub ignored_legacy_vars: Vec<(&'static str, &'static str)>,
}

/// `LOG_LEVEL`, `LOG_FORMAT`.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `LOG_LEVEL`: a level or a tracing filter.
    pub level: String,
    /// `LOG_FORMAT=json`: one JSON object per line.
    pub json: bool,
}

/// The listener, the origins it serves, and who is believed about the client address.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// `HOST`: the address to listen on.
    pub host: String,
    /// `PORT` (0: any free port).
    pub port: u16,
    /// `REQUEST_TIMEOUT_SECONDS`: the most one request may take.
    pub request_timeout_secs: u64,
    /// `FRONTEND_URL`: the frontend the emailed links point to, an allowed origin.
    pub frontend_url: url::Url,
    /// Origins allowed for CORS and for cookie-authenticated state-changing requests.
    pub allowed_origins: Vec<String>,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `REVOCATIONS_TOKEN`: when set, the revocation feed requires `Authorization: Bearer` with it.
    pub revocations_token: Option<SecretString>,
    /// `METRICS_PORT`: serve `/metrics` on its own listener (`METRICS_HOST`, default `HOST`) and
    /// not on the public port, so an ingress cannot publish it. Unset: `/metrics` on the API port.
    /// `0` picks a free port (tests).
    pub metrics_port: Option<u16>,
    /// `METRICS_HOST`: the address of the `METRICS_PORT` listener (default `HOST`).
    pub metrics_host: String,
}

/// `COOKIE_SECURE`, `COOKIE_SAMESITE`, `COOKIE_DOMAIN`.
#[derive(Clone, Debug)]
pub struct CookieConfig {
    /// `COOKIE_SECURE`: cookies only over HTTPS.
    pub secure: bool,
    /// `COOKIE_SAMESITE`.
    pub same_site: SameSite,
    /// `COOKIE_DOMAIN`: the cookies' `Domain` (none: host-only cookies).
    pub domain: Option<String>,
}

/// `DATABASE_URL`, `DB_POOL_SIZE`, `DATA_DIR`, `MIGRATE_ON_START`.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`, normalised to a URL sqlx understands.
    pub url: SecretString,
    /// `DB_POOL_SIZE`: the most connections the pool opens.
    pub pool_size: u32,
    /// `DATA_DIR`: the SQLite file, mail and generated keys of the embedded mode.
    pub data_dir: PathBuf,
    /// `MIGRATE_ON_START`: apply pending migrations at start-up (default). `false` only checks that
    /// none is pending and leaves applying them to `auth-accounts migrate` (a Kubernetes Job).
    pub migrate_on_start: bool,
}

/// `REDIS_URL`: shared rate-limit counters and the revocation fan-out when set.
#[derive(Clone, Debug, Default)]
pub struct RedisConfig {
    /// The URL (none: in-process counters, no fan-out).
    pub url: Option<SecretString>,
}

/// Where domain events are relayed from the outbox.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// `KAFKA_BOOTSTRAP_SERVERS`: the Kafka relay runs when set.
    pub bootstrap_servers: Option<String>,
    /// `KAFKA_AUTH_EVENTS_TOPIC`.
    pub topic: String,
}

/// Where emails go, and who they are from.
#[derive(Clone, Debug)]
pub struct EmailConfig {
    /// Where the file mailer writes when SMTP is not configured.
    pub mail_dir: PathBuf,
    /// `SMTP_FROM_EMAIL`: the sender address.
    pub from_email: String,
    /// `SMTP_FROM_NAME`: the sender's display name.
    pub from_name: String,
    /// The SMTP server, when configured.
    pub smtp: SmtpConfig,
}

/// `SMTP_*`: the SMTP server emails are relayed to.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// `SMTP_HOST`: emails go over SMTP when set, to `mail_dir` otherwise.
    pub host: Option<String>,
    /// `SMTP_PORT`.
    pub port: u16,
    /// `SMTP_USER`: log in as this user (none: no authentication).
    pub user: Option<String>,
    /// `SMTP_PASS`.
    pub pass: Option<SecretString>,
    /// `SMTP_TLS`.
    pub tls: SmtpTls,
}

/// Signing keys, token claims and lifetimes (seconds).
#[derive(Clone, Debug)]
pub struct TokenConfig {
    /// `JWT_PRIVATE_KEY_PATH`: the current signing key (PEM).
    pub private_key_path: PathBuf,
    /// `JWT_PUBLIC_KEY_PATH`: its public key (PEM).
    pub public_key_path: PathBuf,
    /// `JWT_RETIRED_KEYS_DIR`: where rotation keeps retired public keys (default `retired/` beside
    /// the private key). A separate directory lets Kubernetes mount them from their own Secret.
    pub retired_keys_dir: PathBuf,
    /// `JWT_ADDITIONAL_PUBLIC_KEY_PATHS`: retired (or upcoming) public keys still published in the
    /// JWKS and accepted, so tokens signed before a key change stay valid until they expire.
    pub additional_public_keys: Vec<PathBuf>,
    /// `JWT_ALGORITHM`: RS256 (default), ES256 or EdDSA.
    pub algorithm: Algorithm,
    /// `JWT_ISSUER`: the `iss` claim.
    pub issuer: String,
    /// `JWT_AUDIENCE`: the `aud` claim.
    pub audience: String,
    /// `JWT_ACCESS_TTL_SECONDS`: access-token lifetime.
    pub access_ttl: i64,
    /// `JWT_LEEWAY_SECONDS`: clock skew allowed when verifying.
    pub leeway: i64,
    /// `REFRESH_TTL_SECONDS`: a session ends after this long without a refresh.
    pub refresh_ttl: i64,
    /// `SESSION_ABSOLUTE_TTL_SECONDS`: a session ends this long after sign-in however often it is
    /// refreshed (ASVS 3.3.1's absolute timeout; the refresh TTL is the idle one).
    pub session_absolute_ttl: i64,
    /// `REFRESH_REUSE_GRACE_SECONDS`: a retried refresh inside this window gets the same answer
    /// instead of revoking the family (browser tabs race).
    pub refresh_grace: i64,
    /// `ONE_TIME_TOKEN_TTL_SECONDS`: verification and reset tokens.
    pub one_time_ttl: i64,
}

/// Password hashing.
#[derive(Clone, Debug)]
pub struct PasswordConfig {
    /// `PASSWORD_HASH_ALGORITHM`: for new hashes.
    pub algorithm: PasswordAlgorithm,
    /// `BCRYPT_COST`.
    pub bcrypt_cost: u32,
    /// `ARGON2_MEMORY_KIB`.
    pub argon2_memory_kib: u32,
    /// `ARGON2_ITERATIONS`.
    pub argon2_iterations: u32,
    /// `PASSWORD_HASH_CONCURRENCY`: the most hashes computed at once (off the async threads).
    pub concurrency: usize,
}

/// Request limits. The per-route limits are the old service's; `login_failures` throttles failed
/// password checks per email address *and client* (existing or not, so a 429 reveals nothing),
/// so an attacker elsewhere cannot lock the real user out; `login_failures_per_account` is the
/// looser ceiling per address from all clients together, which bounds distributed guessing.
#[derive(Clone, Debug)]
pub struct RateLimitConfig {
    /// `RATE_LIMIT_ENABLED`.
    pub enabled: bool,
    /// `RATE_LIMIT_AUTH_PER_MINUTE`: per client, on the sign-in and registration routes.
    pub auth_per_minute: u32,
    /// `RATE_LIMIT_REFRESH_PER_MINUTE`: per client, on refresh.
    pub refresh_per_minute: u32,
    /// `LOGIN_FAILURE_LIMIT`: failed logins per address and client in the window.
    pub login_failures: u32,
    /// `LOGIN_FAILURE_ACCOUNT_LIMIT`: failed logins per address from all clients in the window.
    pub login_failures_per_account: u32,
    /// `LOGIN_FAILURE_WINDOW_SECONDS`.
    pub login_failure_window: i64,
    /// `RATE_LIMIT_IPV6_PREFIX`: IPv6 clients are counted by this prefix (a host usually owns a
    /// whole /64, and would otherwise get 2^64 buckets).
    pub ipv6_prefix: u8,
    /// `RATE_LIMIT_EMAILS_PER_RECIPIENT_PER_HOUR`: verification and reset emails to one address.
    pub emails_per_recipient_per_hour: u32,
}

/// Where the background work (outbox relays, cleanup) runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// `RUN_WORKERS`: run the relays and cleanup inside the API process (default), or leave them
    /// to a separate `auth-accounts worker` process.
    pub in_api_process: bool,
    /// `CLEANUP_INTERVAL_SECONDS`: how often expired rows are removed.
    pub cleanup_interval_secs: u64,
    /// `REVOCATION_POLL_MS`: the revocation feed's safety-net read of the log (it also reads at
    /// once when a revocation commits: this replica's, or another's through PostgreSQL NOTIFY).
    pub revocation_poll_ms: u64,
}

/// The variables, with empty values treated as unset.
pub struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
    fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }
    fn secret(&self, key: &str) -> Option<SecretString> {
        self.get(key).map(SecretString::from)
    }
    fn path(&self, key: &str) -> Option<PathBuf> {
        self.get(key).map(PathBuf::from)
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
    /// A comma-separated list, blanks dropped.
    fn list(&self, key: &str) -> Vec<&str> {
        self.get(key)
            .map(|l| {
                l.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
    /// One of `choices` (compared lowercase), or the default when unset.
    fn choice<T: Copy>(
        &self,
        key: &'static str,
        default: &str,
        choices: &[(&str, T)],
        expected: &str,
    ) -> Result<T, ConfigError> {
        let value = self.string(key, default).to_ascii_lowercase();
        choices
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, v)| *v)
            .ok_or_else(|| bad(key, format!("expected {expected}, got {value:?}")))
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

/// The origin a browser sends for pages at `url`. App shells use schemes without a tuple origin
/// in the URL standard (`capacitor://localhost`, `ionic://localhost`), which `url` serialises as
/// the opaque `null`; browsers send them as `scheme://host`, so they are spelled out here.
/// Storing `null` instead would allow every sandboxed page and `file:` document.
fn origin_of(url: &url::Url) -> Result<String, String> {
    match url.origin() {
        url::Origin::Tuple(..) => Ok(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => match url.host_str() {
            Some(host) if !host.is_empty() => Ok(match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            }),
            _ => Err(format!("{url} has no origin (no host)")),
        },
    }
}

impl Config {
    /// The token lifetime policy (access TTL, leeway and the horizon derived from them).
    pub fn token_lifetime(&self) -> auth_token::TokenLifetime {
        self.tokens.lifetime()
    }

    /// Reads the process environment over `.env` in the working directory, if there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars =
            crate::config::legacy_env::with_dotenv(std::path::Path::new("."), std::env::vars())?;
        Self::from_vars(&vars)
    }

    /// Old-service names (`DB__DB_URL`, ...) are resolved first: see [`crate::config::legacy_env`].
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let ignored_legacy_vars = crate::config::legacy_env::ignored(vars);
        let vars = &crate::config::legacy_env::resolve_aliases(vars).map_err(ConfigError::from)?;
        let v = Vars(vars);
        let production = match v.string("ENV", "dev").to_ascii_lowercase().as_str() {
            "dev" | "development" | "test" | "local" => false,
            "prod" | "production" => true,
            other => return Err(bad("ENV", format!("expected dev or prod, got {other:?}"))),
        };
        let database = DatabaseConfig::from_vars(&v)?;
        let http = HttpConfig::from_vars(&v)?;
        let frontend = FrontendConfig::from_vars(&v)?;
        if production && frontend.cors == CorsMode::Gateway && http.trusted_proxies.is_empty() {
            // Behind a gateway every request comes from the gateway's address: without trusting it
            // all users would share one rate-limit bucket (and one address in their sessions).
            return Err(bad(
                "TRUSTED_PROXIES",
                "required with CORS_MODE=gateway in ENV=prod (the gateway's address or network)",
            ));
        }
        let config = Self {
            production,
            log: LogConfig {
                level: crate::config::legacy_env::log_level(&v.string("LOG_LEVEL", "info")),
                json: v.string("LOG_FORMAT", if production { "json" } else { "text" }) == "json",
            },
            http,
            cookies: CookieConfig::from_vars(&v, production)?,
            email: EmailConfig::from_vars(&v, &database.data_dir)?,
            database,
            redis: RedisConfig {
                url: v.secret("REDIS_URL"),
            },
            kafka: KafkaConfig {
                bootstrap_servers: v.get("KAFKA_BOOTSTRAP_SERVERS").map(str::to_string),
                topic: v.string("KAFKA_AUTH_EVENTS_TOPIC", "auth.events"),
            },
            tokens: TokenConfig::from_vars(&v)?,
            passwords: PasswordConfig::from_vars(&v)?,
            rate_limit: RateLimitConfig::from_vars(&v)?,
            workers: WorkerConfig {
                in_api_process: v.flag("RUN_WORKERS", true)?,
                cleanup_interval_secs: v.num("CLEANUP_INTERVAL_SECONDS", 3600u64)?.max(10),
                revocation_poll_ms: v.num("REVOCATION_POLL_MS", 200u64)?.clamp(10, 600_000),
            },
            frontend,
            geoip_db_path: v.path("GEOIP_DB_PATH"),
            otlp: crate::otlp::config_from(|k| v.get(k).map(str::to_owned))
                .map_err(|e| bad("OTEL_EXPORTER_OTLP_ENDPOINT", e))?,
            ignored_legacy_vars,
        };
        if production {
            config.refuse_unsafe_production()?;
        }
        Ok(config)
    }

    /// `ENV=prod` means safe: settings that are fine on a laptop and dangerous in front of users
    /// stop the start, each naming its variable. (The signing key file's permissions are checked
    /// where it is read, [`crate::keys`].)
    fn refuse_unsafe_production(&self) -> Result<(), ConfigError> {
        if !self.rate_limit.enabled {
            return Err(bad(
                "RATE_LIMIT_ENABLED",
                "cannot be false when ENV=prod (passwords could be guessed at full speed)",
            ));
        }
        if self.http.revocations_token.is_none() {
            return Err(bad(
                "REVOCATIONS_TOKEN",
                "required when ENV=prod (anyone could follow the revocation feed); give the edges \
                 the same value in AUTH_EDGE_REVOCATIONS_TOKEN",
            ));
        }
        if self.http.frontend_url.scheme() != "https" {
            return Err(bad(
                "FRONTEND_URL",
                "must be https:// when ENV=prod (links in emails carry one-time tokens)",
            ));
        }
        if let Some(everything) = self
            .http
            .trusted_proxies
            .iter()
            .find(|n| n.prefix_len() == 0)
        {
            return Err(bad(
                "TRUSTED_PROXIES",
                format!(
                    "{everything} trusts every address when ENV=prod: any client could choose its \
                     address (rate limits, session locations); list the gateway's network"
                ),
            ));
        }
        if self.passwords.algorithm == PasswordAlgorithm::Bcrypt && self.passwords.bcrypt_cost < 10
        {
            return Err(bad(
                "BCRYPT_COST",
                format!(
                    "{} is below 10, too cheap to slow down guessing when ENV=prod",
                    self.passwords.bcrypt_cost
                ),
            ));
        }
        Ok(())
    }

    /// Whether the database is SQLite (the embedded mode).
    pub fn is_sqlite(&self) -> bool {
        self.database.is_sqlite()
    }

    /// Whether `origin` may make credentialed cross-origin and cookie state-changing requests.
    pub fn is_origin_allowed(&self, origin: &str) -> bool {
        self.http.is_origin_allowed(origin)
    }
}

impl HttpConfig {
    /// This section from the variables (defaults for those unset).
    pub fn from_vars(v: &Vars<'_>) -> Result<Self, ConfigError> {
        let frontend_url = url::Url::parse(&v.string("FRONTEND_URL", "http://localhost:3000"))
            .map_err(|e| bad("FRONTEND_URL", e.to_string()))?;
        let mut allowed_origins =
            vec![origin_of(&frontend_url).map_err(|e| bad("FRONTEND_URL", e))?];
        for item in v.list("CORS_ALLOWED_ORIGINS") {
            if item == "*" {
                // A wildcard with credentials would let any site act as the user.
                return Err(bad(
                    "CORS_ALLOWED_ORIGINS",
                    "\"*\" is not allowed with cookies",
                ));
            }
            let url = url::Url::parse(item)
                .map_err(|e| bad("CORS_ALLOWED_ORIGINS", format!("{item}: {e}")))?;
            let origin = origin_of(&url).map_err(|e| bad("CORS_ALLOWED_ORIGINS", e))?;
            if !allowed_origins.contains(&origin) {
                allowed_origins.push(origin);
            }
        }
        let trusted_proxies = v
            .list("TRUSTED_PROXIES")
            .into_iter()
            .map(|item| {
                parse_network(item).ok_or_else(|| {
                    bad("TRUSTED_PROXIES", format!("not an address or CIDR: {item}"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            host: v.string("HOST", "127.0.0.1"),
            port: v.num("PORT", 8000u16)?,
            request_timeout_secs: v.num("REQUEST_TIMEOUT_SECONDS", 10u64)?.max(1),
            frontend_url,
            allowed_origins,
            trusted_proxies,
            revocations_token: v.secret("REVOCATIONS_TOKEN"),
            metrics_port: v
                .get("METRICS_PORT")
                .map(|_| v.num("METRICS_PORT", 0u16))
                .transpose()?,
            metrics_host: v.string("METRICS_HOST", &v.string("HOST", "127.0.0.1")),
        })
    }

    /// Exact match against the configured origins; the opaque `null` never matches.
    pub fn is_origin_allowed(&self, origin: &str) -> bool {
        origin != "null"
            && self
                .allowed_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
    }
}

impl CookieConfig {
    /// This section from the variables (defaults for those unset).
    pub fn from_vars(v: &Vars<'_>, production: bool) -> Result<Self, ConfigError> {
        let same_site = v.choice(
            "COOKIE_SAMESITE",
            "lax",
            &[
                ("lax", SameSite::Lax),
                ("strict", SameSite::Strict),
                ("none", SameSite::None),
            ],
            "lax, strict or none",
        )?;
        let secure = v.flag("COOKIE_SECURE", true)?;
        if same_site == SameSite::None && !secure {
            // Browsers drop SameSite=None cookies without Secure; the old service shipped that bug.
            return Err(bad("COOKIE_SAMESITE", "none requires COOKIE_SECURE=true"));
        }
        if production && !secure {
            return Err(bad("COOKIE_SECURE", "cannot be false when ENV=prod"));
        }
        Ok(Self {
            secure,
            same_site,
            domain: v.get("COOKIE_DOMAIN").map(str::to_string),
        })
    }
}

impl DatabaseConfig {
    /// This section from the variables (defaults for those unset).
    pub fn from_vars(v: &Vars<'_>) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(v.string("DATA_DIR", "data"));
        let default_db = format!("sqlite://{}/auth.db", data_dir.display());
        let url = normalise_database_url(&v.string("DATABASE_URL", &default_db));
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(bad("DATABASE_URL", "expected sqlite:// or postgres:// URL"));
        }
        Ok(Self {
            url: SecretString::from(url),
            pool_size: v.num("DB_POOL_SIZE", 20u32)?.max(1),
            data_dir,
            migrate_on_start: v.flag("MIGRATE_ON_START", true)?,
        })
    }

    /// Whether the URL is a SQLite one.
    pub fn is_sqlite(&self) -> bool {
        self.url.expose_secret().starts_with("sqlite:")
    }
}

impl EmailConfig {
    /// This section from the variables (defaults for those unset).
    pub fn from_vars(v: &Vars<'_>, data_dir: &std::path::Path) -> Result<Self, ConfigError> {
        let port = v.num("SMTP_PORT", 587u16)?;
        let tls = match v.get("SMTP_TLS").map(str::to_ascii_lowercase).as_deref() {
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
            None => match port {
                465 => SmtpTls::Tls,
                587 => SmtpTls::Starttls,
                _ => SmtpTls::Opportunistic,
            },
        };
        Ok(Self {
            mail_dir: v.path("MAIL_DIR").unwrap_or_else(|| data_dir.join("mail")),
            from_email: v.string("SMTP_FROM_EMAIL", "noreply@localhost"),
            from_name: v.string("SMTP_FROM_NAME", "SmartBudget"),
            smtp: SmtpConfig {
                host: v.get("SMTP_HOST").map(str::to_string),
                port,
                user: v.get("SMTP_USER").map(str::to_string),
                pass: v.secret("SMTP_PASS"),
                tls,
            },
        })
    }

    /// `Name <address>`, the sender of every email.
    pub fn from_header(&self) -> String {
        format!("{} <{}>", self.from_name, self.from_email)
    }
}

impl TokenConfig {
    /// When a session refreshed at `now` expires: a refresh TTL on from now, but never past the
    /// absolute lifetime counted from sign-in (`created_at`).
    /// When a session refreshed at `now` expires: the idle timeout, capped by the absolute one.
    pub fn session_expiry(&self, created_at: i64, now: i64) -> i64 {
        (now + self.refresh_ttl).min(created_at + self.session_absolute_ttl)
    }

    /// This section from the variables (defaults for those unset).
    pub fn from_vars(v: &Vars<'_>) -> Result<Self, ConfigError> {
        let algorithm = v
            .string("JWT_ALGORITHM", "RS256")
            .parse::<Algorithm>()
            .map_err(|_| bad("JWT_ALGORITHM", "expected RS256, ES256 or EdDSA"))?;
        let certs = |name: &str| PathBuf::from("certs").join(name);
        let private_key_path = v
            .path("JWT_PRIVATE_KEY_PATH")
            .unwrap_or_else(|| certs("jwt-private.pem"));
        let retired_keys_dir = v.path("JWT_RETIRED_KEYS_DIR").unwrap_or_else(|| {
            private_key_path
                .parent()
                .unwrap_or_else(|| std::path::Path::new("."))
                .join("retired")
        });
        Ok(Self {
            private_key_path,
            retired_keys_dir,
            public_key_path: v
                .path("JWT_PUBLIC_KEY_PATH")
                .unwrap_or_else(|| certs("jwt-public.pem")),
            additional_public_keys: v
                .list("JWT_ADDITIONAL_PUBLIC_KEY_PATHS")
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            algorithm,
            issuer: v.string("JWT_ISSUER", "auth-service"),
            audience: v.string("JWT_AUDIENCE", "smart-budget"),
            access_ttl: v.positive("JWT_ACCESS_TTL_SECONDS", 900)?,
            leeway: v.num("JWT_LEEWAY_SECONDS", 30i64)?.clamp(0, 300),
            refresh_ttl: v.positive("REFRESH_TTL_SECONDS", 30 * 24 * 3600)?,
            session_absolute_ttl: v.positive("SESSION_ABSOLUTE_TTL_SECONDS", 90 * 24 * 3600)?,
            refresh_grace: v.num("REFRESH_REUSE_GRACE_SECONDS", 10i64)?.clamp(0, 300),
            one_time_ttl: v.positive("ONE_TIME_TOKEN_TTL_SECONDS", 900)?,
        })
    }
}

impl TokenConfig {
    /// The token lifetime policy (access TTL, leeway and the horizon derived from them).
    pub fn lifetime(&self) -> auth_token::TokenLifetime {
        auth_token::TokenLifetime::new(self.access_ttl, self.leeway)
    }
}

impl PasswordConfig {
    /// This section from the variables (defaults for those unset).
    pub fn from_vars(v: &Vars<'_>) -> Result<Self, ConfigError> {
        let algorithm = v.choice(
            "PASSWORD_HASH_ALGORITHM",
            "bcrypt",
            &[
                ("bcrypt", PasswordAlgorithm::Bcrypt),
                ("argon2id", PasswordAlgorithm::Argon2id),
                ("argon2", PasswordAlgorithm::Argon2id),
            ],
            "bcrypt or argon2id",
        )?;
        let bcrypt_cost = v.num("BCRYPT_COST", 12u32)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(bad("BCRYPT_COST", "must be between 4 and 31"));
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(Self {
            algorithm,
            bcrypt_cost,
            argon2_memory_kib: v.num("ARGON2_MEMORY_KIB", 19 * 1024u32)?,
            argon2_iterations: v.num("ARGON2_ITERATIONS", 2u32)?,
            concurrency: v.num("PASSWORD_HASH_CONCURRENCY", cores)?.max(1),
        })
    }
}

impl RateLimitConfig {
    /// This section from the variables (defaults for those unset).
    pub fn from_vars(v: &Vars<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            enabled: v.flag("RATE_LIMIT_ENABLED", true)?,
            auth_per_minute: v.num("RATE_LIMIT_AUTH_PER_MINUTE", 5u32)?.max(1),
            refresh_per_minute: v.num("RATE_LIMIT_REFRESH_PER_MINUTE", 30u32)?.max(1),
            login_failures: v.num("LOGIN_FAILURE_LIMIT", 10u32)?.max(1),
            login_failures_per_account: v.num("LOGIN_FAILURE_ACCOUNT_LIMIT", 100u32)?.max(1),
            login_failure_window: v.positive("LOGIN_FAILURE_WINDOW_SECONDS", 900)?,
            ipv6_prefix: match v.num("RATE_LIMIT_IPV6_PREFIX", 64u8)? {
                p @ 32..=128 => p,
                _ => return Err(bad("RATE_LIMIT_IPV6_PREFIX", "must be between 32 and 128")),
            },
            emails_per_recipient_per_hour: v
                .num("RATE_LIMIT_EMAILS_PER_RECIPIENT_PER_HOUR", 5u32)?
                .max(1),
        })
    }

    /// The rate-limit identity of a client address: IPv4 as is, IPv6 by its prefix.
    pub fn client_key(&self, ip: Option<IpAddr>) -> String {
        match ip {
            None => String::new(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => ipnet::Ipv6Net::new(v6, self.ipv6_prefix)
                    .map(|net| net.trunc().to_string())
                    .unwrap_or_else(|_| v6.to_string()),
            },
        }
    }
}

impl From<crate::config::legacy_env::EnvError> for ConfigError {
    fn from(e: crate::config::legacy_env::EnvError) -> Self {
        bad(e.var, e.reason)
    }
}

impl<'a> Vars<'a> {
    /// Wraps a key/value source (the process environment, or a test's map).
    pub fn new(vars: &'a HashMap<String, String>) -> Self {
        Self(vars)
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
        assert_eq!(c.database.url.expose_secret(), "sqlite://data/auth.db");
        assert!(c.cookies.secure);
        assert_eq!(c.cookies.same_site, SameSite::Lax);
        assert_eq!(c.passwords.bcrypt_cost, 12);
        assert_eq!(c.tokens.access_ttl, 900);
        assert_eq!(c.tokens.refresh_grace, 10);
        assert_eq!(
            c.http.allowed_origins,
            vec!["http://localhost:3000".to_string()]
        );
        assert_eq!(c.tokens.issuer, "auth-service");
        assert_eq!(c.tokens.audience, "smart-budget");
        assert_eq!(c.http.port, 8000);
        assert_eq!(c.kafka.topic, "auth.events");
        assert_eq!(c.email.mail_dir, PathBuf::from("data/mail"));
        assert_eq!(c.email.smtp.tls, SmtpTls::Starttls);
        assert!(c.workers.in_api_process);
        assert!(c.redis.url.is_none());
    }

    #[test]
    fn old_sqlalchemy_url_is_accepted_and_never_printed() {
        let c = Config::from_vars(&vars(&[
            ("DATABASE_URL", "postgresql+asyncpg://u:p@h:5432/db"),
            ("SMTP_PASS", "hunter2"),
            ("REDIS_URL", "redis://:pw@h"),
        ]))
        .unwrap();
        assert_eq!(c.database.url.expose_secret(), "postgres://u:p@h:5432/db");
        let printed = format!("{c:?}");
        for secret in ["u:p@h", "hunter2", ":pw@h"] {
            assert!(!printed.contains(secret), "{secret} leaked in {printed}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (pairs, var) in [
            (vec![("PORT", "eighty")], "PORT"),
            (vec![("CORS_ALLOWED_ORIGINS", "*")], "CORS_ALLOWED_ORIGINS"),
            (vec![("JWT_ALGORITHM", "HS256")], "JWT_ALGORITHM"),
            (
                vec![("ENV", "prod"), ("COOKIE_SECURE", "false")],
                "COOKIE_SECURE",
            ),
            (
                vec![("COOKIE_SAMESITE", "none"), ("COOKIE_SECURE", "false")],
                "COOKIE_SAMESITE",
            ),
            (vec![("TRUSTED_PROXIES", "10.0.0.0/33")], "TRUSTED_PROXIES"),
            (vec![("SMTP_TLS", "maybe")], "SMTP_TLS"),
            (
                vec![("PASSWORD_HASH_ALGORITHM", "md5")],
                "PASSWORD_HASH_ALGORITHM",
            ),
            (vec![("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (
                vec![("JWT_ACCESS_TTL_SECONDS", "0")],
                "JWT_ACCESS_TTL_SECONDS",
            ),
        ] {
            let e = Config::from_vars(&vars(&pairs)).unwrap_err();
            assert_eq!(e.var, var, "{pairs:?}");
        }
    }

    #[test]
    fn a_section_parses_on_its_own() {
        let map = vars(&[
            ("SMTP_PORT", "465"),
            ("SMTP_HOST", "mail"),
            ("MAIL_DIR", "/m"),
        ]);
        let email = EmailConfig::from_vars(&Vars::new(&map), std::path::Path::new("d")).unwrap();
        assert_eq!(email.smtp.tls, SmtpTls::Tls);
        assert_eq!(email.smtp.host.as_deref(), Some("mail"));
        assert_eq!(email.mail_dir, PathBuf::from("/m"));
        assert_eq!(email.from_header(), "SmartBudget <noreply@localhost>");
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
            c.http.allowed_origins,
            vec!["https://app.example.com", "https://admin.example.com"]
        );
        assert!(c.is_origin_allowed("https://admin.example.com"));
        assert!(!c.is_origin_allowed("https://evil.example.com"));
    }

    /// The smallest safe production configuration.
    const PROD: [(&str, &str); 3] = [
        ("ENV", "prod"),
        ("REVOCATIONS_TOKEN", "feed-token-0123456789"),
        ("FRONTEND_URL", "https://app.example.com"),
    ];

    #[test]
    fn prod_refuses_unsafe_settings_naming_each() {
        Config::from_vars(&vars(&PROD)).unwrap();
        for (change, var) in [
            (("RATE_LIMIT_ENABLED", "false"), "RATE_LIMIT_ENABLED"),
            (("REVOCATIONS_TOKEN", ""), "REVOCATIONS_TOKEN"),
            (("FRONTEND_URL", "http://app.example.com"), "FRONTEND_URL"),
            (
                ("TRUSTED_PROXIES", "10.0.0.0/8, 0.0.0.0/0"),
                "TRUSTED_PROXIES",
            ),
            (("TRUSTED_PROXIES", "::/0"), "TRUSTED_PROXIES"),
            (("BCRYPT_COST", "9"), "BCRYPT_COST"),
        ] {
            let mut pairs: Vec<(&str, &str)> = PROD
                .iter()
                .copied()
                .filter(|(k, _)| *k != change.0)
                .collect();
            pairs.push(change);
            let e = Config::from_vars(&vars(&pairs)).unwrap_err();
            assert_eq!(e.var, var, "{change:?}");
            // The same settings start in development.
            pairs.retain(|(k, _)| *k != "ENV");
            Config::from_vars(&vars(&pairs)).unwrap();
        }
    }

    #[test]
    fn opaque_origins_are_spelled_out_and_null_never_matches() {
        let c = Config::from_vars(&vars(&[(
            "CORS_ALLOWED_ORIGINS",
            "capacitor://localhost, ionic://localhost:8100",
        )]))
        .unwrap();
        assert!(c.is_origin_allowed("capacitor://localhost"));
        assert!(c.is_origin_allowed("ionic://localhost:8100"));
        assert!(!c.is_origin_allowed("null"));
        assert!(!c.http.allowed_origins.iter().any(|o| o == "null"));
        let e =
            Config::from_vars(&vars(&[("CORS_ALLOWED_ORIGINS", "data:text/html,hi")])).unwrap_err();
        assert_eq!(e.var, "CORS_ALLOWED_ORIGINS");
    }

    #[test]
    fn prod_behind_a_gateway_needs_trusted_proxies() {
        let mut gateway = PROD.to_vec();
        gateway.push(("CORS_MODE", "gateway"));
        let e = Config::from_vars(&vars(&gateway)).unwrap_err();
        assert_eq!(e.var, "TRUSTED_PROXIES");
        let mut with_proxy = gateway.to_vec();
        with_proxy.push(("TRUSTED_PROXIES", "172.16.0.0/12"));
        let c = Config::from_vars(&vars(&with_proxy)).unwrap();
        assert_eq!(c.frontend.cors, CorsMode::Gateway);
        // In dev the same configuration starts (and warns at the first forwarded request).
        let dev = Config::from_vars(&vars(&[("CORS_MODE", "gateway")])).unwrap();
        assert!(dev.http.trusted_proxies.is_empty());
    }

    #[test]
    fn retired_keys_and_migrations_for_kubernetes() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert!(c.database.migrate_on_start);
        let c = Config::from_vars(&vars(&[
            ("JWT_PRIVATE_KEY_PATH", "/etc/auth/keys/private.pem"),
            ("MIGRATE_ON_START", "false"),
        ]))
        .unwrap();
        assert_eq!(
            c.tokens.retired_keys_dir,
            PathBuf::from("/etc/auth/keys/retired")
        );
        assert!(!c.database.migrate_on_start);
        let c = Config::from_vars(&vars(&[("JWT_RETIRED_KEYS_DIR", "/etc/auth/retired")])).unwrap();
        assert_eq!(
            c.tokens.retired_keys_dir,
            PathBuf::from("/etc/auth/retired")
        );
        let e = Config::from_vars(&vars(&[("MIGRATE_ON_START", "sometimes")])).unwrap_err();
        assert_eq!(e.var, "MIGRATE_ON_START");
    }

    #[test]
    fn ipv6_clients_are_counted_by_prefix() {
        let c = Config::from_vars(&vars(&[])).unwrap().rate_limit;
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            c.client_key(ip("2001:db8:1:2:aaaa::1")),
            c.client_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            c.client_key(ip("2001:db8:1:2::1")),
            c.client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(c.client_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(c.client_key(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(c.client_key(ip("::ffff:198.51.100.7")), "198.51.100.7");
        let c128 = Config::from_vars(&vars(&[("RATE_LIMIT_IPV6_PREFIX", "128")]))
            .unwrap()
            .rate_limit;
        assert_ne!(
            c128.client_key(ip("2001:db8::1")),
            c128.client_key(ip("2001:db8::2"))
        );
        assert_eq!(
            Config::from_vars(&vars(&[("RATE_LIMIT_IPV6_PREFIX", "8")]))
                .unwrap_err()
                .var,
            "RATE_LIMIT_IPV6_PREFIX"
        );
    }

    #[test]
    fn trusted_proxy_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let net = vec![parse_network("10.0.0.0/8").unwrap()];
        assert!(in_networks(&net, ip("10.1.2.3")));
        assert!(!in_networks(&net, ip("11.1.2.3")));
        assert!(in_networks(&net, ip("::ffff:10.1.2.3")));
        let one = vec![parse_network("127.0.0.1").unwrap()];
        assert!(in_networks(&one, ip("127.0.0.1")));
        assert!(!in_networks(&one, ip("127.0.0.2")));
        assert!(parse_network("10.0.0.0/33").is_none());
        assert!(parse_network("not-an-ip").is_none());
        let all = vec![parse_network("::/0").unwrap()];
        assert!(in_networks(&all, ip("2001:db8::1")));
        assert!(!in_networks(&[], ip("127.0.0.1")));
        let c = Config::from_vars(&vars(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")])).unwrap();
        assert_eq!(c.http.trusted_proxies.len(), 2);
    }
}
