//! [`Decision`]: what the edge concluded about one request, made once by
//! [`crate::verifier::Verifier::decide_request`] and rendered by each front end in its own protocol
//! (forward-auth HTTP, ext_authz HTTP/gRPC, the pingora sidecar).
//!
//! Everything a front end needs is here: the identity to forward, or the status, challenge and
//! `Cache-Control` of a denial, so the three answers cannot drift apart.

use std::sync::Arc;

use http::header::{CACHE_CONTROL, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, StatusCode};

use crate::identity::Identity;
use crate::metrics::Outcome;

/// Whether a request needs a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No valid token, no access (every forward-auth and ext_authz check; the sidecar's
    /// protected paths).
    Required,
    /// A public path: forwarded either way, with the identity when a valid token came along.
    Optional,
}

/// The outcome of one check.
#[derive(Debug)]
pub enum Decision {
    /// A valid token: forward with this identity.
    Allow(Arc<Identity>),
    /// A public path without a (usable) token, or a CORS preflight: forward with no identity
    /// at all.
    Anonymous,
    /// Refuse, with this reason's status and challenge.
    Deny(Rejection),
    /// A browser's page navigation that would get a 401: send it to the login page instead
    /// ([`crate::browser`]).
    Redirect(Redirect),
}

/// A denial rendered for a browser: `302` to the login page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The login URL, with the return URL when it was known and allowed.
    pub location: HeaderValue,
    /// Why the request was not authenticated (what an API client would have been told).
    pub rejection: Rejection,
}

impl Redirect {
    /// `302 Found`: browsers follow it with a `GET`, which is all a navigation needs.
    pub const STATUS: StatusCode = StatusCode::FOUND;

    /// The headers of the redirect: `Cache-Control: no-store` and `Location`.
    pub fn response_headers(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
        [(CACHE_CONTROL, NO_STORE), (LOCATION, self.location.clone())].into_iter()
    }
}

impl Decision {
    /// The identity to forward: some for [`Decision::Allow`], none otherwise.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Decision::Allow(identity) => Some(identity),
            Decision::Anonymous | Decision::Deny(_) | Decision::Redirect(_) => None,
        }
    }
}

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
    /// No revocation source has been heard from within the staleness bound and the fail mode
    /// is closed: the token may belong to a revoked session.
    #[error("revocation sources stale")]
    RevocationsStale,
    /// The token came in the cookie of a cross-site request ([`crate::csrf`]).
    #[error("cookie sent by a cross-site request")]
    CrossSite,
}

/// The value of `Cache-Control` on every denial (and every forward-auth answer): the answer
/// depends on the credentials, so no cache anywhere may reuse it.
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

impl Rejection {
    /// The metrics outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            Rejection::Missing => Outcome::Missing,
            Rejection::Invalid(_) => Outcome::Invalid,
            Rejection::Expired => Outcome::Expired,
            Rejection::UnknownKey(_) => Outcome::UnknownKey,
            Rejection::Revoked => Outcome::Revoked,
            Rejection::Unavailable | Rejection::RevocationsStale => Outcome::Unavailable,
            Rejection::CrossSite => Outcome::CrossSite,
        }
    }

    /// 401, or 503 while no keys are loaded: "cannot decide" must not look like "log out" to
    /// clients that refresh or drop their session on 401. 403 for a cross-site request: the
    /// credentials are fine, the page that sent them is not, and refreshing would not help.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Unavailable | Rejection::RevocationsStale => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::CrossSite => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 challenge for a 401: no error attribute when no token was sent (section
    /// 3.1), and the same generic `invalid_token` for every other reason, so a prober learns
    /// nothing. None for the 503 and the 403 (not an authentication problem).
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        match self {
            Rejection::Unavailable | Rejection::RevocationsStale | Rejection::CrossSite => None,
            Rejection::Missing => Some(HeaderValue::from_static("Bearer realm=\"auth\"")),
            _ => Some(HeaderValue::from_static(
                "Bearer realm=\"auth\", error=\"invalid_token\"",
            )),
        }
    }

    /// The headers of the denial sent to the client: `Cache-Control: no-store`, then the
    /// challenge when there is one. The body is always empty.
    pub fn response_headers(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
        std::iter::once((CACHE_CONTROL, NO_STORE)).chain(
            self.www_authenticate()
                .map(|challenge| (WWW_AUTHENTICATE, challenge)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            Rejection::Unavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn denial_headers() {
        let headers: Vec<_> = Rejection::Expired.response_headers().collect();
        assert_eq!(
            headers,
            [
                (CACHE_CONTROL, NO_STORE),
                (
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"auth\", error=\"invalid_token\"")
                )
            ]
        );
        let headers: Vec<_> = Rejection::Unavailable.response_headers().collect();
        assert_eq!(headers, [(CACHE_CONTROL, NO_STORE)]);
        assert!(Decision::Anonymous.identity().is_none());
        assert!(Decision::Deny(Rejection::Missing).identity().is_none());
    }
}
