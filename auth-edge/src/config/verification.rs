//! The verification section, [`VerifierSettings`]: where keys come from and how often they are
//! refreshed, which tokens are acceptable (algorithms, issuer, audience, leeway), where the token
//! is read from (the cookie name), how many verifications are cached, and what browsers get
//! ([`super::browser`]). It is all the
//! [`crate::verifier::Verifier`] is given.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth_token::Algorithm;
use http::Uri;

use super::issuers::ForeignIssuer;
use super::vars::{err, http_url, ConfigError, Vars};
use crate::assertion::AssertionSigner;
use crate::browser::BrowserPolicy;
use crate::csrf::{self, CsrfPolicy};
use crate::identity::HeaderNames;
use crate::revocations::{FailMode, StalenessPolicy};
use crate::tls::TlsClient;

/// The accounts service's JWKS in the embedded mode (`cargo run -p auth-accounts`).
pub const DEFAULT_JWKS_URL: &str = "http://127.0.0.1:8000/api/v1/auth/.well-known/jwks.json";

/// Where verification keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS document over HTTP or HTTPS.
    Url(Uri),
    /// A local file: a JWKS document, a single JWK, or a public-key PEM.
    File(PathBuf),
    /// An OpenID discovery document (`/.well-known/openid-configuration`) whose `issuer` must
    /// be `issuer` and whose `jwks_uri` is fetched; read again at every refresh (foreign
    /// issuers, [`super::issuers`]).
    Discovery {
        /// The discovery document's URL.
        url: Uri,
        /// The issuer the document must name.
        issuer: String,
        /// Whether a plain `http://` `jwks_uri` outside loopback is acceptable.
        allow_http: bool,
    },
}

/// How often the key set is refetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwksRefresh {
    /// Lower bound of the refresh interval (`AUTH_EDGE_JWKS_MIN_REFRESH_SECONDS`).
    pub min: Duration,
    /// Upper bound of the refresh interval (`AUTH_EDGE_JWKS_MAX_REFRESH_SECONDS`).
    pub max: Duration,
    /// At most one refetch for an unknown `kid` per this interval
    /// (`AUTH_EDGE_JWKS_UNKNOWN_KID_INTERVAL_SECONDS`).
    pub unknown_kid_interval: Duration,
}

/// What the verifier needs, and nothing else.
#[derive(Clone, Debug)]
pub struct VerifierSettings {
    /// `AUTH_EDGE_JWKS_URL` or `AUTH_EDGE_JWKS_FILE`.
    pub keys: KeySource,
    /// Key refresh timing.
    pub jwks: JwksRefresh,
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
    /// Verified-token cache capacity, in entries of up to 512 bytes (`AUTH_EDGE_CACHE_ENTRIES`).
    pub cache_entries: u64,
    /// The cross-site check for cookie-borne tokens (`AUTH_EDGE_CSRF`,
    /// `AUTH_EDGE_CSRF_ALLOWED_ORIGINS`).
    pub csrf: CsrfPolicy,
    /// The identity header names (`AUTH_EDGE_USER_ID_HEADER`, `AUTH_EDGE_SESSION_ID_HEADER`,
    /// `AUTH_EDGE_ROLE_HEADER`).
    pub header_names: HeaderNames,
    /// The signed identity assertion, when configured (`AUTH_EDGE_ASSERTION_*`).
    pub assertion: Option<Arc<AssertionSigner>>,
    /// Login redirects for navigations, the CORS preflight bypass and the trusted proxies
    /// ([`super::browser`]).
    pub browser: BrowserPolicy,
    /// What happens when the revocation sources go quiet (`AUTH_EDGE_REVOCATION_FAIL_MODE`,
    /// `AUTH_EDGE_REVOCATION_MAX_STALENESS_SECONDS`).
    pub staleness: StalenessPolicy,
    /// The TLS client for an `https://` JWKS URL (`AUTH_EDGE_CA_FILE`).
    pub tls: TlsClient,
    /// Other trusted issuers (`AUTH_EDGE_ISSUERS_FILE`), beside the own one above.
    pub issuers: Vec<ForeignIssuer>,
}

impl VerifierSettings {
    pub(super) fn parse(v: &Vars<'_>) -> Result<VerifierSettings, ConfigError> {
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
        let min = v.secs("AUTH_EDGE_JWKS_MIN_REFRESH_SECONDS", 30, 1, 86_400)?;
        let max = v.secs("AUTH_EDGE_JWKS_MAX_REFRESH_SECONDS", 3600, 1, 86_400)?;
        if max < min {
            return Err(err(
                "AUTH_EDGE_JWKS_MAX_REFRESH_SECONDS",
                format!(
                    "{} is below AUTH_EDGE_JWKS_MIN_REFRESH_SECONDS ({})",
                    max.as_secs(),
                    min.as_secs()
                ),
            ));
        }
        let jwks = JwksRefresh {
            min,
            max,
            unknown_kid_interval: v.secs(
                "AUTH_EDGE_JWKS_UNKNOWN_KID_INTERVAL_SECONDS",
                5,
                0,
                3600,
            )?,
        };
        let leeway = v.number("AUTH_EDGE_LEEWAY_SECONDS", 30, 0, 300)?;
        let (header_names, assertion) = super::assertion::parse(v, header_names(v)?)?;
        let issuer = v.or("JWT_ISSUER", "auth-service").to_owned();
        let issuers = super::issuers::load(v.get(super::issuers::ISSUERS_FILE_VAR), &issuer)?;
        Ok(VerifierSettings {
            keys,
            jwks,
            algorithms: algorithms(v.or("AUTH_EDGE_ALGORITHMS", "RS256"))?,
            issuer,
            issuers,
            audience: v.or("JWT_AUDIENCE", "smart-budget").to_owned(),
            leeway_secs: i64::try_from(leeway).unwrap_or(30),
            cookie_name: cookie_name(v.or("AUTH_EDGE_COOKIE_NAME", auth_token::ACCESS_COOKIE))?,
            cache_entries: v.number("AUTH_EDGE_CACHE_ENTRIES", 100_000, 0, 100_000_000)?,
            csrf: csrf_policy(v)?,
            browser: super::browser::parse(v)?,
            header_names,
            assertion,
            staleness: StalenessPolicy {
                mode: match v
                    .or("AUTH_EDGE_REVOCATION_FAIL_MODE", "closed")
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "closed" => FailMode::Closed,
                    "open" => FailMode::Open,
                    other => {
                        return Err(err(
                            "AUTH_EDGE_REVOCATION_FAIL_MODE",
                            format!("{other:?}: use closed or open"),
                        ))
                    }
                },
                max_staleness: v.secs(
                    "AUTH_EDGE_REVOCATION_MAX_STALENESS_SECONDS",
                    60,
                    5,
                    86_400,
                )?,
            },
            // Set by `Config::from_vars`, shared with the revocation sources.
            tls: TlsClient::default(),
        })
    }

    /// The verification policy tokens are checked against.
    pub fn validation(&self) -> auth_token::Validation {
        let mut v = auth_token::Validation::new(self.issuer.clone(), self.audience.clone());
        v.algorithms = self.algorithms.clone();
        v.leeway_secs = self.leeway_secs;
        v
    }
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

fn csrf_policy(v: &Vars<'_>) -> Result<CsrfPolicy, ConfigError> {
    let enabled = match v.or("AUTH_EDGE_CSRF", "on").to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => true,
        "off" | "false" | "0" => false,
        other => return Err(err("AUTH_EDGE_CSRF", format!("{other:?}: use on or off"))),
    };
    let allowed_origins = v
        .or("AUTH_EDGE_CSRF_ALLOWED_ORIGINS", "")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|o| {
            csrf::parse_origin(o).map_err(|e| err("AUTH_EDGE_CSRF_ALLOWED_ORIGINS", e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok(CsrfPolicy {
        enabled,
        allowed_origins,
    })
}

fn header_names(v: &Vars<'_>) -> Result<HeaderNames, ConfigError> {
    let vars = [
        ("AUTH_EDGE_USER_ID_HEADER", auth_token::HEADER_USER_ID),
        ("AUTH_EDGE_SESSION_ID_HEADER", auth_token::HEADER_SESSION_ID),
        ("AUTH_EDGE_ROLE_HEADER", auth_token::HEADER_USER_ROLE),
    ];
    let [user, session, role] = vars.map(|(var, default)| v.or(var, default));
    let names = HeaderNames::new(user, session, role).map_err(|m| {
        // Name the variable that was set (the first, when the names clash).
        let var = vars
            .iter()
            .map(|(var, _)| *var)
            .find(|var| v.get(var).is_some())
            .unwrap_or("AUTH_EDGE_USER_ID_HEADER");
        err(var, m)
    })?;
    names
        .with_claims(v.or("AUTH_EDGE_CLAIM_HEADERS", ""))
        .map_err(|m| err("AUTH_EDGE_CLAIM_HEADERS", m))
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
