//! The middleware that counts every request in [`crate::metrics::Metrics`], labelled by route
//! template (never the raw path, so a client cannot blow up the number of series).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::Metrics;

/// Records every request's count, duration and 5xx.
pub(crate) async fn track(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    // A client can send any method token: unknown ones share one label value.
    let method = match *req.method() {
        axum::http::Method::GET
        | axum::http::Method::POST
        | axum::http::Method::PUT
        | axum::http::Method::PATCH
        | axum::http::Method::DELETE
        | axum::http::Method::HEAD
        | axum::http::Method::OPTIONS => req.method().as_str().to_string(),
        _ => "other".to_string(),
    };
    let start = Instant::now();
    let response = next.run(req).await;
    metrics.observe_request(
        &method,
        &handler,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// Headers on every answer: `X-Content-Type-Options: nosniff`, and `Cache-Control: no-store`
/// unless the handler chose a policy (the JWKS is cacheable). Answers of this service are about
/// a user or their credentials: no shared cache may keep them (ASVS 8.2.1).
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    use axum::http::{header, HeaderValue};
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
