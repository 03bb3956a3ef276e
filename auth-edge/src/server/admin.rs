//! The admin listener: `/healthz` (the process is alive), `/readyz` (keys loaded: 200, else 503),
//! `/metrics` (Prometheus text), and `/.well-known/jwks.json`, the public key of the signed
//! identity assertions (404 when the edge signs none). Everything else is 404.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::verifier::Verifier;

fn text(
    status: StatusCode,
    body: impl Into<Bytes>,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const PLAIN: &str = "text/plain; charset=utf-8";

/// Answers one admin request.
pub async fn handle<B>(verifier: Arc<Verifier>, request: Request<B>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
            PLAIN,
        );
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n", PLAIN),
        "/readyz" => {
            if verifier.is_ready() {
                text(StatusCode::OK, "ready\n", PLAIN)
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "keys not loaded\n", PLAIN)
            }
        }
        "/metrics" => text(
            StatusCode::OK,
            verifier.render_metrics(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/.well-known/jwks.json" => match verifier.assertion_signer() {
            Some(signer) => {
                let body = serde_json::to_string(&signer.jwks()).unwrap_or_default();
                let mut response = text(StatusCode::OK, body, "application/json");
                // The key changes only with a restart; upstreams refetch on an unknown kid.
                response.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                );
                response
            }
            None => text(StatusCode::NOT_FOUND, "no identity assertions\n", PLAIN),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n", PLAIN),
    }
}
