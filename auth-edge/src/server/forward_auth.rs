//! The forward-auth endpoint: any method, any path (nginx `auth_request`, Traefik ForwardAuth,
//! Caddy `forward_auth`, Envoy `ext_authz` HTTP service). `/api/v1/auth/gateway-verify` is just
//! one of those paths, so old gateway configurations keep working unchanged.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use http_body_util::Full;

use crate::request::IDENTITY_HEADERS;
use crate::verifier::Verifier;

/// Answers one forward-auth check: 200 with `X-User-Id`, `X-Session-Id`, `X-User-Role`, or 401
/// with an RFC 6750 challenge (503 while no keys are loaded). The body is always empty.
pub async fn handle<B>(verifier: Arc<Verifier>, request: Request<B>) -> Response<Full<Bytes>> {
    if IDENTITY_HEADERS
        .iter()
        .any(|h| request.headers().contains_key(h))
    {
        // The proxy passes client headers through to us; it is the proxy's job to overwrite them
        // upstream (every configuration in the README does), but an attempt is worth knowing.
        tracing::debug!("request carries client-sent identity headers");
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    match verifier.check_headers(request.headers()).await {
        Ok(identity) => {
            let headers = response.headers_mut();
            for (name, value) in identity.headers() {
                headers.insert(name.clone(), value);
            }
        }
        Err(rejection) => {
            tracing::debug!(reason = %rejection, "request not authenticated");
            *response.status_mut() = rejection.status();
            if let Some(challenge) = rejection.www_authenticate() {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge);
            }
        }
    }
    // The answer depends on the credentials; no cache anywhere may reuse it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
