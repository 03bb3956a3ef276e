//! The revocation feed: how edges learn, within a second, that a session was revoked.
//!
//! Edges verify access tokens on their own (JWKS) and cannot ask the database on every request, so
//! accounts pushes revoked session ids to them. A poller reads sessions revoked since its last look
//! (by any replica: the database is the source of truth) and fans them out to every connected edge
//! over `GET /api/v1/auth/revocations/stream`, newline-delimited JSON:
//!
//! ```text
//! {"type":"snapshot","revocations":[{"sid":"..","until":1795676000}]}   first line: everything still relevant
//! {"type":"revoked","sid":"..","until":1795676100}                      then one line per revocation
//! {"type":"ping"}                                                       every 15 s, so a dead link is noticed
//! ```
//!
//! `until` is when the last access token of that session expires (revocation time + access token
//! lifetime + leeway); after it the edge can forget the entry.

use std::collections::HashSet;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Db;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Revocation {
    pub sid: String,
    pub until: i64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Line<'a> {
    Snapshot { revocations: &'a [Revocation] },
    Revoked(&'a Revocation),
    Ping,
}

fn line(l: &Line<'_>) -> String {
    let mut s = serde_json::to_string(l).unwrap_or_default();
    s.push('\n');
    s
}

/// How long a revocation matters: the longest an access token of the session can still be valid.
pub fn horizon(state_ttl: i64, leeway: i64) -> i64 {
    state_ttl + leeway
}

/// Revocations since `since` (inclusive), oldest first.
pub async fn revoked_since(
    db: &Db,
    since: i64,
    horizon: i64,
) -> sqlx::Result<Vec<(Revocation, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT session_id, revoked_at FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1 ORDER BY revoked_at",
    )
    .bind(since)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sid, at)| {
            (
                Revocation {
                    sid,
                    until: at + horizon,
                },
                at,
            )
        })
        .collect())
}

/// Polls the database every 200 ms and broadcasts new revocations to connected streams.
pub fn spawn_poller(
    db: Db,
    clock: Clock,
    horizon: i64,
    tx: broadcast::Sender<Revocation>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut cursor = clock.now();
        // Revocation times have one-second resolution: remember what was sent for the cursor's
        // second so a row seen twice is sent once.
        let mut sent_at_cursor: HashSet<String> = HashSet::new();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match revoked_since(&db, cursor, horizon).await {
                Ok(rows) => {
                    for (revocation, at) in rows {
                        if at > cursor {
                            cursor = at;
                            sent_at_cursor.clear();
                        }
                        if sent_at_cursor.insert(revocation.sid.clone()) {
                            // No receivers is fine: no edge is connected.
                            let _ = tx.send(revocation);
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "revocation poller: database error"),
            }
        }
    })
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/auth/revocations/stream", get(stream))
}

async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.config.revocations_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::crypto::ct_eq(presented, expected.expose()) {
            return ApiError::Unauthorized("Revocation feed token required").into_response();
        }
    }
    // Subscribe before reading the snapshot so nothing falls between the two.
    let rx = state.revocations.subscribe();
    let shutting_down = state.shutting_down.clone();
    let horizon = horizon(state.config.access_ttl, state.config.jwt_leeway);
    let now = state.clock.now();
    let snapshot = match revoked_since(&state.db, now - horizon, horizon).await {
        Ok(rows) => rows.into_iter().map(|(r, _)| r).collect::<Vec<_>>(),
        Err(err) => return ApiError::from(err).into_response(),
    };
    let first = line(&Line::Snapshot {
        revocations: &snapshot,
    });
    if *shutting_down.borrow() {
        return ApiError::Unavailable("Shutting down").into_response();
    }
    let body = futures_util::stream::unfold((Some(first), rx), move |(pending, mut rx)| {
        let mut shutting_down = shutting_down.clone();
        async move {
            if let Some(first) = pending {
                return Some((Ok::<_, std::io::Error>(first), (None, rx)));
            }
            let next = tokio::select! {
                _ = shutting_down.changed() => return None,
                r = rx.recv() => match r {
                    Ok(rev) => line(&Line::Revoked(&rev)),
                    // A slow edge missed messages: end the stream; it reconnects and gets a snapshot.
                    Err(_) => return None,
                },
                _ = tokio::time::sleep(Duration::from_secs(15)) => line(&Line::Ping),
            };
            Some((Ok(next), (None, rx)))
        }
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
