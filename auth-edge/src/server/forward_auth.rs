//! The forward-auth endpoint: any method, any path (nginx `auth_request`, Traefik ForwardAuth,
//! Caddy `forward_auth`, Envoy `ext_authz` HTTP service). `/api/v1/auth/gateway-verify` is just
//! one of those paths, so old gateway configurations keep working unchanged.
//!
//! It renders a [`Decision`] as the answer the proxy acts on: 200 with the identity headers it
//! copies upstream, or the denial's status and headers, which it passes to the client. A login
//! redirect is a `302` with `Location` (Traefik, Caddy and Envoy pass it to the browser), or, for
//! nginx, whose `auth_request` passes only 2xx, 401 and 403, a 401 carrying the target in
//! `X-Auth-Edge-Location` when the check asks with `X-Auth-Edge-Redirect-Status: 401` (the nginx
//! snippet's `error_page 401` then answers the redirect).

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::Full;

use crate::browser;
use crate::csrf;
use crate::decision::{Access, Decision, NO_STORE};
use crate::identity::{self, HeaderNames};
use crate::server::Peer;
use crate::verifier::{RequestView, Verifier};

/// Sent by the nginx snippet: render a login redirect as a 401 with [`X_AUTH_EDGE_LOCATION`].
pub const X_AUTH_EDGE_REDIRECT_STATUS: HeaderName =
    HeaderName::from_static("x-auth-edge-redirect-status");
/// Where the login redirect goes, on the 401 rendered for nginx.
pub const X_AUTH_EDGE_LOCATION: HeaderName = HeaderName::from_static("x-auth-edge-location");
/// Envoy's HTTP ext_authz removes the headers listed here from the upstream request of an
/// allowed check: an anonymous answer (a CORS preflight) sets no identity, so it must remove
/// the client's.
const X_ENVOY_AUTH_HEADERS_TO_REMOVE: HeaderName =
    HeaderName::from_static("x-envoy-auth-headers-to-remove");

/// How a login redirect is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectAs {
    /// `302 Found` with `Location` (Traefik, Caddy, Envoy).
    Found,
    /// `401` with the challenge and [`X_AUTH_EDGE_LOCATION`] (nginx `auth_request`).
    Unauthorized,
}

impl RedirectAs {
    /// What the check request asks for.
    pub fn of(headers: &HeaderMap) -> RedirectAs {
        match headers.get(X_AUTH_EDGE_REDIRECT_STATUS) {
            Some(v) if v.as_bytes() == b"401" => RedirectAs::Unauthorized,
            _ => RedirectAs::Found,
        }
    }
}

/// Answers one forward-auth check: 200 with `X-User-Id`, `X-Session-Id`, `X-User-Role`, or 401
/// with an RFC 6750 challenge (503 while no keys are loaded). The body is always empty.
pub async fn handle<B>(verifier: Arc<Verifier>, request: Request<B>) -> Response<Full<Bytes>> {
    if verifier.header_names().carried_by(request.headers()) {
        // The proxy passes client headers through to us; it is the proxy's job to overwrite them
        // upstream (every configuration in the README does), but an attempt is worth knowing.
        tracing::debug!("request carries client-sent identity headers");
    }
    // Proxies ask with GET (nginx subrequests, Caddy) and pass the original method along.
    let method = csrf::original_method(request.headers(), request.method());
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let original_url = verifier
        .browser()
        .reads_return_url(Peer::ip_of(&request))
        .then(|| browser::forwarded_url(request.headers(), target))
        .flatten();
    let view = RequestView {
        headers: request.headers(),
        method: &method,
        original_url,
    };
    render(
        &verifier.decide_request(&view, Access::Required).await,
        RedirectAs::of(request.headers()),
        verifier.header_names(),
    )
}

/// The HTTP answer for a decision. `Anonymous` (a CORS preflight) is a 200 without identity
/// headers, telling Envoy to remove the client's.
pub fn render(
    decision: &Decision,
    redirect_as: RedirectAs,
    names: &HeaderNames,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    match decision {
        Decision::Allow(_) => {
            let Ok(_) =
                identity::strip_then_set(response.headers_mut(), decision.identity(), names);
        }
        Decision::Anonymous => {
            let names: Vec<&str> = names.stripped().map(HeaderName::as_str).collect();
            if let Ok(value) = HeaderValue::from_str(&names.join(",")) {
                response
                    .headers_mut()
                    .insert(X_ENVOY_AUTH_HEADERS_TO_REMOVE, value);
            }
        }
        Decision::Deny(rejection) => {
            *response.status_mut() = rejection.status();
            response.headers_mut().extend(rejection.response_headers());
        }
        Decision::Redirect(redirect) => match redirect_as {
            RedirectAs::Found => {
                *response.status_mut() = crate::decision::Redirect::STATUS;
                response.headers_mut().extend(redirect.response_headers());
            }
            RedirectAs::Unauthorized => {
                *response.status_mut() = redirect.rejection.status();
                response
                    .headers_mut()
                    .extend(redirect.rejection.response_headers());
                response
                    .headers_mut()
                    .insert(X_AUTH_EDGE_LOCATION, redirect.location.clone());
            }
        },
    }
    // The answer depends on the credentials; no cache anywhere may reuse it, allowed or not.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, NO_STORE);
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::StatusCode;

    use super::*;
    use crate::decision::{Redirect, Rejection};
    use crate::identity::Identity;

    fn render(decision: &Decision) -> Response<Full<Bytes>> {
        super::render(decision, RedirectAs::Found, &HeaderNames::default())
    }

    #[test]
    fn renders_each_decision() {
        let allowed = render(&Decision::Allow(Arc::new(Identity::for_tests("u1"))));
        assert_eq!(allowed.status(), StatusCode::OK);
        assert_eq!(allowed.headers()["x-user-id"], "u1");
        assert_eq!(allowed.headers()["cache-control"], "no-store");

        let anonymous = render(&Decision::Anonymous);
        assert_eq!(anonymous.status(), StatusCode::OK);
        assert!(!identity::carries_identity_headers(anonymous.headers()));

        let denied = render(&Decision::Deny(Rejection::Missing));
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            denied.headers()["www-authenticate"],
            "Bearer realm=\"auth\""
        );
        assert_eq!(denied.headers().get_all("cache-control").iter().count(), 1);
        assert_eq!(
            anonymous.headers()["x-envoy-auth-headers-to-remove"],
            "x-user-id,x-session-id,x-user-role"
        );

        let redirect = Decision::Redirect(Redirect {
            location: HeaderValue::from_static("https://login.example/?rd=x"),
            rejection: Rejection::Expired,
        });
        let found = render(&redirect);
        assert_eq!(found.status(), StatusCode::FOUND);
        assert_eq!(found.headers()["location"], "https://login.example/?rd=x");
        assert_eq!(found.headers()["cache-control"], "no-store");
        assert!(found.headers().get("www-authenticate").is_none());
        let for_nginx = super::render(&redirect, RedirectAs::Unauthorized, &HeaderNames::default());
        assert_eq!(for_nginx.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            for_nginx.headers()["x-auth-edge-location"],
            "https://login.example/?rd=x"
        );
        assert!(for_nginx.headers().get("location").is_none());
        assert!(for_nginx.headers().get("www-authenticate").is_some());
        let mut asks = HeaderMap::new();
        assert_eq!(RedirectAs::of(&asks), RedirectAs::Found);
        asks.insert(X_AUTH_EDGE_REDIRECT_STATUS, HeaderValue::from_static("401"));
        assert_eq!(RedirectAs::of(&asks), RedirectAs::Unauthorized);
    }
}
