//! `GET /revocations/stream`: the revocation feed the edges stream from (NDJSON; see
//! [`crate::revocations`] for the lines and the engine behind them).

use std::time::Duration;

use auth_token::{FeedMessage, REVOCATION_STREAM_CONTENT_TYPE};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiError;
use crate::revocations::revoked_since;
use crate::routes::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// The revocation feed for the edges: newline-delimited JSON, a snapshot first, then one line per
/// revocation and a ping every 15 s.
#[utoipa::path(get, path = "/revocations/stream", tag = "tokens", security((), ("bearer" = [])),
    responses((status = 200, description = "NDJSON stream", content_type = "application/x-ndjson"),
        (status = 401, body = ErrorBody, description = "REVOCATIONS_TOKEN is set and was not presented"),
        (status = 503, body = ErrorBody, description = "Shutting down")))]
pub(crate) async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.config.http.revocations_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::crypto::ct_eq(presented, expected.expose_secret()) {
            return ApiError::Unauthorized("Revocation feed token required").into_response();
        }
    }
    // Subscribe before reading the snapshot so nothing falls between the two.
    let rx = state.revocations.subscribe();
    let draining = state.draining.clone();
    let lifetime = state.config.token_lifetime();
    let now = state.clock.now();
    let snapshot = match revoked_since(&state.db, now - lifetime.horizon(), lifetime).await {
        Ok(rows) => rows.into_iter().map(|(r, _)| r).collect::<Vec<_>>(),
        Err(err) => return ApiError::from(err).into_response(),
    };
    let first = FeedMessage::Snapshot {
        revocations: snapshot,
    }
    .to_line();
    if draining.is_cancelled() {
        return ApiError::Unavailable("Shutting down").into_response();
    }
    let body = futures_util::stream::unfold((Some(first), rx), move |(pending, mut rx)| {
        let draining = draining.clone();
        async move {
            if let Some(first) = pending {
                return Some((Ok::<_, std::io::Error>(first), (None, rx)));
            }
            let next = tokio::select! {
                // Long-lived: ends when the server starts draining, or the drain would wait forever.
                _ = draining.cancelled() => return None,
                r = rx.recv() => match r {
                    Ok(rev) => FeedMessage::Revoked(rev).to_line(),
                    // A slow edge missed messages: end the stream; it reconnects and gets a snapshot.
                    Err(_) => return None,
                },
                _ = tokio::time::sleep(Duration::from_secs(15)) => FeedMessage::Ping.to_line(),
            };
            Some((Ok(next), (None, rx)))
        }
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(REVOCATION_STREAM_CONTENT_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
