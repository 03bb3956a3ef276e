//! Request correlation at the HTTP boundary: every request gets a request id and a span in the
//! caller's W3C trace (or a new trace), every log line written while handling it carries both,
//! and the answer names the request id (`X-Request-Id`), so a user's report finds its log lines.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use auth_token::{TraceParent, REQUEST_ID, TRACEPARENT};

use crate::otlp::{Exporter, SpanRecord};
use crate::trace::{scope, RequestContext};

/// Outermost middleware: opens the request's span and context; with `OTEL_*` set, the finished
/// span goes to the exporter.
pub(crate) async fn correlate(
    State(otlp): State<Option<Arc<Exporter>>>,
    req: Request,
    next: Next,
) -> Response {
    // A block, so no borrow of the request (whose body is not `Sync`) lives across the await.
    let (parent, trace, request_id) = {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let parent = header(TRACEPARENT).and_then(TraceParent::parse);
        let trace = parent.map_or_else(TraceParent::new_root, |p| p.child());
        let request_id = auth_token::request_id(header(REQUEST_ID), &trace);
        (parent, trace, request_id)
    };
    let method = req.method().to_string();
    let started_at = std::time::SystemTime::now();
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
    let context = RequestContext {
        request_id: request_id.clone(),
        trace,
    };
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
    // Exported when sampled (the caller's flag, or ours for a new trace).
    if let Some(exporter) = otlp.filter(|_| trace.flags() & 1 == 1) {
        let nanos = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        };
        exporter.record(SpanRecord {
            trace_id: trace.trace_id(),
            span_id: trace.span_id(),
            parent_span_id: parent.map(|p| p.span_id()),
            method,
            route: route.unwrap_or_else(|| "unmatched".into()),
            status,
            request_id,
            start_unix_nanos: nanos(started_at),
            end_unix_nanos: nanos(std::time::SystemTime::now()),
        });
    }
    if let Some(id) = id_header {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}
