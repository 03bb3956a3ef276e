//! Fills in the error body's `action` (the route's last path segment, as the old service did) and
//! gives framework-made errors (404, 405, timeouts) the same JSON body.

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use crate::error::ErrorDetail;

/// Marks a response whose (empty) error body is part of the contract: gateway-verify answers a bare
/// 401 that nginx `auth_request` expects.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeepBody;

pub(crate) async fn error_body(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let mut response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<KeepBody>().is_some()
    {
        return response;
    }
    // Taken out so an outer copy of this middleware leaves the finished body alone.
    let detail = match response.extensions_mut().remove::<ErrorDetail>() {
        Some(d) => d.0,
        None if is_json(&response) => return response,
        // Framework rejections (a too-large body for a `Bytes` extractor, ...) answer text/plain:
        // they get the JSON error body too.
        None => default_detail(status),
    };
    let body = json!({ "status": "error", "action": action(&path), "detail": detail });
    *response.body_mut() = Body::from(body.to_string());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

fn default_detail(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "Not found".into(),
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed".into(),
        StatusCode::REQUEST_TIMEOUT => "Request timed out".into(),
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large".into(),
        other => other.canonical_reason().unwrap_or("Error").to_string(),
    }
}

/// The last path segment that is not a parameter: `/api/v1/auth/sessions/{session_id}` -> `sessions`.
fn action(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .find(|s| !s.is_empty() && !s.starts_with('{') && !s.starts_with(':'))
        .unwrap_or("")
        .chars()
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::action;

    #[test]
    fn actions() {
        assert_eq!(action("/api/v1/auth/login"), "login");
        assert_eq!(action("/api/v1/auth/sessions/{session_id}"), "sessions");
        assert_eq!(
            action("/api/v1/auth/complete-registration/"),
            "complete-registration"
        );
        assert_eq!(action("/"), "");
    }
}
