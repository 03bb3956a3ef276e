//! The middleware that counts every request in [`crate::metrics::Metrics`], labelled by route
//! template (never the raw path, so a client cannot blow up the number of series).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::Metrics;

/// Records every request's count, duration and 5xx.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
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
