//! The correlation of the request being handled (its request id and W3C trace context), readable
//! by code below the HTTP layer: the outbox stores it with each event, so the Kafka record carries
//! the trace of the request that caused it.
//!
//! The HTTP middleware (`http::trace`) runs each request inside [`scope`]; background work runs
//! outside any request and sees `None`.

use auth_token::TraceParent;

/// The correlation of one request.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    /// The request id (the caller's `X-Request-Id`, or the trace id).
    pub request_id: String,
    /// This service's span in the caller's trace (or a new trace).
    pub trace: TraceParent,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Runs `fut` with `context` as the current request.
pub(crate) async fn scope<F: std::future::Future>(context: RequestContext, fut: F) -> F::Output {
    CURRENT.scope(context, fut).await
}

/// The request being handled by this task, if any.
pub(crate) fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}
