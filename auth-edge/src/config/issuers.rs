//! The foreign-issuers section, [`ForeignIssuer`]: other token issuers the edge trusts beside its
//! own (a company IdP, an OpenID provider), listed in the JSON file `AUTH_EDGE_ISSUERS_FILE`.
//!
//! The own issuer (`JWT_ISSUER`, `JWT_AUDIENCE`, `AUTH_EDGE_JWKS_URL`, ...) stays the zero-config
//! default; this file only adds issuers. Each has its keys (a JWKS URL, or an OpenID discovery
//! URL whose `jwks_uri` is read at start and at every refresh), the audiences its tokens must
//! name, its algorithms, and which claims are the user id, the session id and the role:
//!
//! ```json
//! {"issuers": [{
//!   "issuer": "https://idp.example.com",
//!   "discovery_url": "https://idp.example.com/.well-known/openid-configuration",
//!   "audiences": ["smart-budget"],
//!   "algorithms": ["RS256"],
//!   "user_id_claim": "sub",
//!   "user_id_prefix": "idp:",
//!   "session_id_claim": "sid",
//!   "role_claim": "roles",
//!   "roles": {"budget-admin": "admin", "budget-moderator": "moderator"}
//! }]}
//! ```
//!
//! Unsafe lists are refused at start: plain `http://` key or discovery URLs outside loopback
//! (unless the issuer says `"allow_http": true`), no audiences, an issuer listed twice or equal
//! to `JWT_ISSUER`, unknown algorithm or role names, unknown fields.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use auth_token::{Algorithm, Role};
use http::Uri;
use serde::Deserialize;

use super::vars::{err, http_url, ConfigError};
use super::KeySource;
use crate::identity::{ClaimMapping, RoleMapping};

/// The variable naming the file.
pub const ISSUERS_FILE_VAR: &str = "AUTH_EDGE_ISSUERS_FILE";

/// One trusted foreign issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignIssuer {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Where its keys come from ([`KeySource::Url`] or [`KeySource::Discovery`]).
    pub keys: KeySource,
    /// `aud` must name one of these.
    pub audiences: Vec<String>,
    /// Accepted algorithms (default RS256).
    pub algorithms: Vec<Algorithm>,
    /// Which claims become the identity.
    pub claims: ClaimMapping,
}

/// The file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    issuers: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    issuer: String,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default)]
    discovery_url: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    #[serde(default)]
    user_id_claim: Option<String>,
    #[serde(default)]
    user_id_prefix: String,
    #[serde(default)]
    session_id_claim: Option<String>,
    #[serde(default)]
    role_claim: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, String>,
    #[serde(default)]
    allow_http: bool,
}

/// Reads `AUTH_EDGE_ISSUERS_FILE`: none when unset. `own_issuer` is `JWT_ISSUER`, which the
/// file may not list again.
pub(super) fn load(
    path: Option<&str>,
    own_issuer: &str,
) -> Result<Vec<ForeignIssuer>, ConfigError> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(Path::new(path))
        .map_err(|e| err(ISSUERS_FILE_VAR, format!("{path}: {e}")))?;
    parse(&text, own_issuer)
}

/// Parses and validates the file's text.
pub(super) fn parse(text: &str, own_issuer: &str) -> Result<Vec<ForeignIssuer>, ConfigError> {
    let file: File =
        serde_json::from_str(text).map_err(|e| err(ISSUERS_FILE_VAR, format!("not valid: {e}")))?;
    let mut out: Vec<ForeignIssuer> = Vec::with_capacity(file.issuers.len());
    for entry in file.issuers {
        let issuer = entry.issuer.trim().to_owned();
        let fail = |m: String| err(ISSUERS_FILE_VAR, format!("issuer {issuer:?}: {m}"));
        if issuer.is_empty() {
            return Err(err(ISSUERS_FILE_VAR, "an issuer has an empty \"issuer\""));
        }
        if issuer == own_issuer {
            return Err(fail("is JWT_ISSUER, the edge's own issuer".into()));
        }
        if out.iter().any(|i| i.issuer == issuer) {
            return Err(fail("is listed twice".into()));
        }
        let keys = match (entry.jwks_url, entry.discovery_url) {
            (Some(url), None) => KeySource::Url(safe_url(&url, entry.allow_http).map_err(fail)?),
            (None, Some(url)) => KeySource::Discovery {
                url: safe_url(&url, entry.allow_http).map_err(fail)?,
                issuer: issuer.clone(),
                allow_http: entry.allow_http,
            },
            _ => return Err(fail("set exactly one of jwks_url and discovery_url".into())),
        };
        let audiences: Vec<String> = entry
            .audiences
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        if audiences.is_empty() {
            return Err(fail(
                "\"audiences\" is required: the audiences its tokens must name".into(),
            ));
        }
        let algorithms = match entry.algorithms {
            None => vec![Algorithm::RS256],
            Some(names) => {
                let mut algs = Vec::new();
                for name in names {
                    let alg: Algorithm = name.parse().map_err(|_| {
                        fail(format!(
                            "algorithm {name:?} is not allowed: use RS256, ES256 or EdDSA"
                        ))
                    })?;
                    if !algs.contains(&alg) {
                        algs.push(alg);
                    }
                }
                if algs.is_empty() {
                    return Err(fail("\"algorithms\" is empty".into()));
                }
                algs
            }
        };
        let claim = |name: Option<String>, what: &str| -> Result<Option<String>, ConfigError> {
            match name.map(|n| n.trim().to_owned()) {
                Some(n) if n.is_empty() => Err(fail(format!("{what} is empty"))),
                other => Ok(other),
            }
        };
        let user_id = claim(entry.user_id_claim, "user_id_claim")?.unwrap_or_else(|| "sub".into());
        let session_id = claim(entry.session_id_claim, "session_id_claim")?;
        let user_id_prefix = entry.user_id_prefix;
        if !user_id_prefix.bytes().all(|b| b.is_ascii_graphic()) || user_id_prefix.len() > 64 {
            return Err(fail(
                "user_id_prefix: up to 64 visible ASCII characters, no spaces".into(),
            ));
        }
        let role = match claim(entry.role_claim, "role_claim")? {
            None if !entry.roles.is_empty() => {
                return Err(fail("\"roles\" needs \"role_claim\"".into()))
            }
            None => None,
            Some(claim) => {
                if entry.roles.is_empty() {
                    return Err(fail(
                        "\"role_claim\" needs \"roles\": which values mean user, moderator, admin"
                            .into(),
                    ));
                }
                let values = entry
                    .roles
                    .into_iter()
                    .map(|(value, role)| {
                        Ok((
                            value,
                            role_named(&role).ok_or_else(|| {
                                fail(format!("role {role:?}: use user, moderator or admin"))
                            })?,
                        ))
                    })
                    .collect::<Result<_, ConfigError>>()?;
                Some(RoleMapping { claim, values })
            }
        };
        out.push(ForeignIssuer {
            issuer,
            keys,
            audiences,
            algorithms,
            claims: ClaimMapping {
                user_id,
                user_id_prefix,
                session_id,
                role,
            },
        });
    }
    Ok(out)
}

fn role_named(name: &str) -> Option<Role> {
    match name.trim().to_ascii_lowercase().as_str() {
        "user" | "0" => Some(Role::User),
        "admin" | "1" => Some(Role::Admin),
        "moderator" | "2" => Some(Role::Moderator),
        _ => None,
    }
}

/// An `http(s)://` URL; plain `http://` only to a loopback host or with `allow_http`.
pub(crate) fn safe_url(raw: &str, allow_http: bool) -> Result<Uri, String> {
    let uri = http_url(ISSUERS_FILE_VAR, raw).map_err(|e| e.message)?;
    check_scheme(&uri, allow_http)?;
    Ok(uri)
}

/// Refuses plain `http://` outside loopback unless allowed: keys fetched in clear text from
/// another host can be swapped by anyone on the path.
pub(crate) fn check_scheme(uri: &Uri, allow_http: bool) -> Result<(), String> {
    if uri.scheme_str() == Some("https") || allow_http || is_loopback(uri) {
        return Ok(());
    }
    Err(format!(
        "{uri} is plain http to a non-loopback host: use https (or \"allow_http\": true)"
    ))
}

fn is_loopback(uri: &Uri) -> bool {
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(entry: &str) -> Result<ForeignIssuer, String> {
        parse(&format!(r#"{{"issuers": [{entry}]}}"#), "auth-service")
            .map(|mut v| v.remove(0))
            .map_err(|e| {
                assert_eq!(e.var, ISSUERS_FILE_VAR);
                e.message
            })
    }

    #[test]
    fn a_minimal_issuer_gets_the_defaults() {
        let i = one(r#"{"issuer": "https://idp.example", "audiences": ["api"],
                "discovery_url": "https://idp.example/.well-known/openid-configuration"}"#)
        .unwrap();
        assert_eq!(i.issuer, "https://idp.example");
        assert_eq!(i.algorithms, vec![Algorithm::RS256]);
        assert_eq!(i.claims.user_id, "sub");
        assert_eq!((i.claims.session_id, i.claims.role), (None, None));
        assert!(matches!(
            i.keys,
            KeySource::Discovery { ref issuer, allow_http: false, .. } if issuer == "https://idp.example"
        ));
        assert!(parse(r#"{"issuers": []}"#, "x").unwrap().is_empty());
        assert!(load(None, "x").unwrap().is_empty());
    }

    #[test]
    fn a_full_issuer() {
        let i = one(
            r#"{"issuer": "corp", "jwks_url": "http://127.0.0.1:9/jwks", "audiences": ["a", "b"],
                "algorithms": ["es256", "RS256"], "user_id_claim": "oid", "user_id_prefix": "corp:",
                "session_id_claim": "sid", "role_claim": "roles",
                "roles": {"budget-admin": "admin", "reader": "user"}}"#,
        )
        .unwrap();
        assert_eq!(
            i.keys,
            KeySource::Url("http://127.0.0.1:9/jwks".parse().unwrap())
        );
        assert_eq!(i.algorithms, vec![Algorithm::ES256, Algorithm::RS256]);
        assert_eq!(i.claims.user_id, "oid");
        assert_eq!(i.claims.user_id_prefix, "corp:");
        assert_eq!(i.claims.session_id.as_deref(), Some("sid"));
        let role = i.claims.role.unwrap();
        assert_eq!(role.claim, "roles");
        assert!(role.values.contains(&("budget-admin".into(), Role::Admin)));
    }

    #[test]
    fn unsafe_lists_are_refused() {
        let refused = |entry: &str, says: &str| {
            let e = one(entry).unwrap_err();
            assert!(e.contains(says), "{entry}: {e}");
        };
        refused(
            r#"{"issuer": "i", "jwks_url": "http://idp.example/jwks", "audiences": ["a"]}"#,
            "plain http",
        );
        refused(
            r#"{"issuer": "i", "discovery_url": "http://10.0.0.1/d", "audiences": ["a"]}"#,
            "plain http",
        );
        refused(
            r#"{"issuer": "i", "jwks_url": "https://x/j", "audiences": []}"#,
            "audiences",
        );
        refused(
            r#"{"issuer": "i", "jwks_url": "https://x/j", "audiences": [" "]}"#,
            "audiences",
        );
        refused(r#"{"issuer": "i", "jwks_url": "https://x/j"}"#, "audiences");
        refused(r#"{"issuer": "i", "audiences": ["a"]}"#, "exactly one");
        refused(
            r#"{"issuer": "i", "jwks_url": "https://x/j", "discovery_url": "https://x/d", "audiences": ["a"]}"#,
            "exactly one",
        );
        for alg in ["HS256", "none", "PS256"] {
            refused(
                &format!(
                    r#"{{"issuer": "i", "jwks_url": "https://x/j", "audiences": ["a"], "algorithms": ["{alg}"]}}"#
                ),
                "not allowed",
            );
        }
        refused(
            r#"{"issuer": "i", "jwks_url": "https://x/j", "audiences": ["a"], "algorithms": []}"#,
            "empty",
        );
        refused(
            r#"{"issuer": "auth-service", "jwks_url": "https://x/j", "audiences": ["a"]}"#,
            "JWT_ISSUER",
        );
        refused(
            r#"{"issuer": "i", "jwks_url": "https://x/j", "audiences": ["a"], "role_claim": "r"}"#,
            "needs \"roles\"",
        );
        refused(
            r#"{"issuer": "i", "jwks_url": "https://x/j", "audiences": ["a"], "role_claim": "r", "roles": {"x": "root"}}"#,
            "root",
        );
        refused(
            r#"{"issuer": "i", "jwks_url": "https://x/j", "audiences": ["a"], "user_id_claim": ""}"#,
            "user_id_claim",
        );
        refused(
            r#"{"issuer": "i", "jwks_url": "https://x/j", "audiences": ["a"], "audience": "a"}"#,
            "unknown field",
        );
        refused(
            r#"{"issuer": "i", "jwks_url": "ftp://x/j", "audiences": ["a"]}"#,
            "http",
        );
        refused(
            r#"{"issuer": "i", "jwks_url": "https://x/j", "audiences": ["a"], "user_id_prefix": "a b"}"#,
            "user_id_prefix",
        );
        // Allowed explicitly, plain http to another host is accepted.
        assert!(one(
            r#"{"issuer": "i", "jwks_url": "http://idp.internal/j", "audiences": ["a"], "allow_http": true}"#
        )
        .is_ok());
        let twice = r#"{"issuers": [
            {"issuer": "i", "jwks_url": "https://x/j", "audiences": ["a"]},
            {"issuer": "i", "jwks_url": "https://y/j", "audiences": ["b"]}]}"#;
        let e = parse(twice, "auth-service").unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
        assert!(parse("issuers: []", "x").is_err());
        let e = load(Some("/nonexistent/issuers.json"), "x").unwrap_err();
        assert_eq!(e.var, ISSUERS_FILE_VAR);
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "http://127.0.0.1:1/j",
            "http://localhost/j",
            "http://[::1]:8/j",
            "https://a/j",
        ] {
            assert!(check_scheme(&ok.parse().unwrap(), false).is_ok(), "{ok}");
        }
        assert!(check_scheme(&"http://a/j".parse().unwrap(), false).is_err());
    }
}
