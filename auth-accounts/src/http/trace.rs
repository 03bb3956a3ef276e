//! Request correlation at the HTTP boundary: every request gets a request id and a span in the
//! caller's W3C trace (or a new trace), every log line written while handling it carries both,
//! and the answer names the request id (`X-Request-Id`), so a user's report finds its log lines.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use auth_token::{TraceParent, REQUEST_ID, TRACEPARENT};

use crate::trace::{scope, RequestContext};

/// Outermost middleware: opens the request's span and context.
pub(crate) async fn correlate(req: Request, next: Next) -> Response {
    // A block, so no borrow of the request (whose body is not `Sync`) lives across the await.
    let (trace, request_id) = {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let trace = TraceParent::continue_or_start(header(TRACEPARENT));
        let request_id = auth_token::request_id(header(REQUEST_ID), &trace);
        (trace, request_id)
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    // The route template, never the raw path: paths can carry one-time tokens.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = %trace.trace_id(),
        span_id = %trace.span_id(),
        method = %req.method(),
        route = route.as_deref().unwrap_or("unmatched"),
    );
    let id_header = HeaderValue::from_str(&request_id).ok();
    let context = RequestContext { request_id, trace };
    let started = std::time::Instant::now();
    let mut response = scope(context, next.run(req).instrument(span.clone())).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::debug!(status, elapsed_ms, "request finished");
        }
    });
    if let Some(id) = id_header {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}
