//! The forward-auth endpoint: any method, any path (nginx `auth_request`, Traefik ForwardAuth,
//! Caddy `forward_auth`, Envoy `ext_authz` HTTP service). `/api/v1/auth/gateway-verify` is just
//! one of those paths, so old gateway configurations keep working unchanged.
//!
//! It renders a [`Decision`] as the answer the proxy acts on: 200 with the identity headers it
//! copies upstream, or the denial's status and headers, which it passes to the client.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::Full;

use crate::csrf;
use crate::decision::{Access, Decision, NO_STORE};
use crate::identity;
use crate::verifier::Verifier;

/// Answers one forward-auth check: 200 with `X-User-Id`, `X-Session-Id`, `X-User-Role`, or 401
/// with an RFC 6750 challenge (503 while no keys are loaded). The body is always empty.
pub async fn handle<B>(verifier: Arc<Verifier>, request: Request<B>) -> Response<Full<Bytes>> {
    if identity::carries_identity_headers(request.headers()) {
        // The proxy passes client headers through to us; it is the proxy's job to overwrite them
        // upstream (every configuration in the README does), but an attempt is worth knowing.
        tracing::debug!("request carries client-sent identity headers");
    }
    // Proxies ask with GET (nginx subrequests, Caddy) and pass the original method along.
    let method = csrf::original_method(request.headers(), request.method());
    render(
        &verifier
            .decide(request.headers(), &method, Access::Required)
            .await,
    )
}

/// The HTTP answer for a decision. `Anonymous` (not produced here today: forward-auth has no
/// public paths) would be a 200 without identity headers.
pub fn render(decision: &Decision) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    match decision {
        Decision::Allow(_) | Decision::Anonymous => {
            let Ok(_) = identity::strip_then_set(response.headers_mut(), decision.identity());
        }
        Decision::Deny(rejection) => {
            *response.status_mut() = rejection.status();
            response.headers_mut().extend(rejection.response_headers());
        }
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
    use crate::decision::Rejection;
    use crate::identity::Identity;

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
    }
}
