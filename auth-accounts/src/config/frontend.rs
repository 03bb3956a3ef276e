//! Settings for the web frontend and the gateway in front of the service: where emailed links
//! point, what `verify-email` reveals, and who answers CORS.
//!
//! The defaults are this service's own (enumeration-safe, CORS answered here); the SmartBudget
//! profile in the README changes `VERIFY_EMAIL_MODE` and `CORS_MODE` to match its frontend and its
//! nginx gateway.

use super::{bad, ConfigError, Vars};

/// `VERIFY_EMAIL_MODE`: what `POST /verify-email` answers for an address that is registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyEmailMode {
    /// `sign_up` for everyone, and the email says "you already have an account": the answer does
    /// not tell whether an address is registered. The default.
    EnumerationSafe,
    /// `sign_in` for a registered address (no email sent), `sign_up` otherwise: the old service's
    /// identifier-first flow, which the SmartBudget frontend needs (its only sign-in path is
    /// email -> `sign_in` -> password). It reveals whether an address has an account, to anyone,
    /// at the per-address-and-client rate the route's limit allows.
    IdentifierFirst,
}

/// `CORS_MODE`: whether this service answers CORS itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorsMode {
    /// `Access-Control-Allow-*` for the allowed origins, preflights answered here. The default.
    Service,
    /// No CORS headers at all: a gateway adds its own (the SmartBudget nginx does, at server level;
    /// two `Access-Control-Allow-Origin` headers make browsers reject the response). The origin
    /// check on cookie-authenticated writes (CSRF) still uses the allowed origins.
    Gateway,
}

/// How accounts works with the frontend: the email links and who answers CORS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontendConfig {
    /// `VERIFY_EMAIL_MODE`.
    pub verify_email: VerifyEmailMode,
    /// `CORS_MODE`.
    pub cors: CorsMode,
    /// Routes of the frontend the emails link to, below `FRONTEND_URL`'s own path.
    pub sign_in_path: String,
    /// The registration page (the verification email's link).
    pub registration_path: String,
    /// The password-reset page (the reset email's link).
    pub reset_password_path: String,
}

fn path(v: &Vars<'_>, key: &'static str, default: &str) -> Result<String, ConfigError> {
    let p = v.string(key, default);
    if !p.starts_with('/') || p.contains(['?', '#']) {
        return Err(bad(key, "must be a path starting with / (no query)"));
    }
    Ok(p)
}

impl FrontendConfig {
    pub(super) fn from_vars(v: &Vars<'_>) -> Result<Self, ConfigError> {
        let verify_email = match v
            .string("VERIFY_EMAIL_MODE", "enumeration-safe")
            .to_ascii_lowercase()
            .replace('_', "-")
            .as_str()
        {
            "enumeration-safe" => VerifyEmailMode::EnumerationSafe,
            "identifier-first" => VerifyEmailMode::IdentifierFirst,
            other => {
                return Err(bad(
                    "VERIFY_EMAIL_MODE",
                    format!("expected enumeration-safe or identifier-first, got {other:?}"),
                ))
            }
        };
        let cors = match v
            .string("CORS_MODE", "service")
            .to_ascii_lowercase()
            .as_str()
        {
            "service" => CorsMode::Service,
            "gateway" => CorsMode::Gateway,
            other => {
                return Err(bad(
                    "CORS_MODE",
                    format!("expected service or gateway, got {other:?}"),
                ))
            }
        };
        Ok(Self {
            verify_email,
            cors,
            sign_in_path: path(v, "FRONTEND_SIGN_IN_PATH", "/auth/sign-in")?,
            registration_path: path(v, "FRONTEND_REGISTRATION_PATH", "/auth/registration")?,
            reset_password_path: path(v, "FRONTEND_RESET_PASSWORD_PATH", "/auth/reset-password")?,
        })
    }
}

/// `path` below `base`, keeping the path `base` already has (`https://host/app` + `/auth/sign-in`
/// is `https://host/app/auth/sign-in`), with the given query parameters.
pub fn link(base: &url::Url, path: &str, query: &[(&str, &str)]) -> String {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url.set_fragment(None);
    url.set_query(None);
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in query {
            pairs.append_pair(k, v);
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<FrontendConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FrontendConfig::from_vars(&Vars(&map))
    }

    #[test]
    fn defaults_are_safe_and_link_to_the_frontend_routes() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.verify_email, VerifyEmailMode::EnumerationSafe);
        assert_eq!(c.cors, CorsMode::Service);
        assert_eq!(c.sign_in_path, "/auth/sign-in");
        assert_eq!(c.registration_path, "/auth/registration");
        assert_eq!(c.reset_password_path, "/auth/reset-password");
    }

    #[test]
    fn settings_are_read_and_checked() {
        let c = parse(&[
            ("VERIFY_EMAIL_MODE", "identifier_first"),
            ("CORS_MODE", "Gateway"),
            ("FRONTEND_SIGN_IN_PATH", "/login"),
        ])
        .unwrap();
        assert_eq!(c.verify_email, VerifyEmailMode::IdentifierFirst);
        assert_eq!(c.cors, CorsMode::Gateway);
        assert_eq!(c.sign_in_path, "/login");
        assert_eq!(
            parse(&[("VERIFY_EMAIL_MODE", "reveal")]).unwrap_err().var,
            "VERIFY_EMAIL_MODE"
        );
        assert_eq!(
            parse(&[("CORS_MODE", "none")]).unwrap_err().var,
            "CORS_MODE"
        );
        assert_eq!(
            parse(&[("FRONTEND_RESET_PASSWORD_PATH", "reset")])
                .unwrap_err()
                .var,
            "FRONTEND_RESET_PASSWORD_PATH"
        );
    }

    #[test]
    fn links_keep_the_frontend_path_prefix() {
        let base = url::Url::parse("https://example.com/budget/").unwrap();
        assert_eq!(
            link(
                &base,
                "/auth/registration",
                &[("token", "a b"), ("email", "u+1@x.io")]
            ),
            "https://example.com/budget/auth/registration?token=a+b&email=u%2B1%40x.io"
        );
        let root = url::Url::parse("http://localhost:3000").unwrap();
        assert_eq!(
            link(&root, "/auth/sign-in", &[]),
            "http://localhost:3000/auth/sign-in"
        );
    }
}
