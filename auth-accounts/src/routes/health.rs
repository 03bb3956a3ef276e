//! Health: each configured component and its state; 503 when a required one is down.
//!
//! Kubernetes-style probes at the old service's paths: `/health/live` answers 200 while the process
//! serves requests and checks nothing (a database blip must not make the kubelet restart every
//! pod), `/health/ready` answers 503 while a required dependency is down or the server is
//! draining (so the pod leaves the load balancer and comes back on its own).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;
use crate::store;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// Liveness: no dependency is checked.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The process serves requests: `{\"status\":\"ok\"}`")))]
pub(crate) async fn live() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Readiness: `ready` when the database answers (the only required dependency) and the server is
/// not shutting down; `not_ready` with 503 otherwise. Components as in `/health`.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "Ready to take traffic"), (status = 503, description = "Not ready: database down or shutting down")))]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let (database, components) = check(&state).await;
    let draining = state.draining.is_cancelled();
    let (code, status) = if database && !draining {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    let body = json!({ "status": status, "components": components });
    (code, axum::Json(body)).into_response()
}

/// Component states: `ok`, `down`, or `disabled` (not configured). The database is required; GeoIP
/// is optional. Redis, Kafka and SMTP are reported as `disabled` until their integrations are
/// configured (the embedded mode keeps events in the outbox and writes emails to a folder).
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "All required components are up"), (status = 503, description = "A required component is down")))]
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let (database, components) = check(&state).await;
    let degraded = ["redis", "kafka", "smtp"]
        .iter()
        .any(|c| components[c] == "down");
    let status = match (database, degraded) {
        (false, _) => "error",
        (true, true) => "degraded",
        (true, false) => "ok",
    };
    let body = json!({ "status": status, "components": components });
    let code = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// Whether the database answers, and every component's state.
/// How long one check answers for: probes and scrapers may call often, each check pings the
/// database, Redis, SMTP and Kafka.
const HEALTH_CACHE: std::time::Duration = std::time::Duration::from_secs(2);

/// [`check_now`], reused for [`HEALTH_CACHE`]. Concurrent callers wait for the one check in
/// flight instead of starting their own.
async fn check(state: &AppState) -> (bool, serde_json::Value) {
    let mut cache = state.health_cache.lock().await;
    if let Some((at, database, components)) = &*cache {
        if at.elapsed() < HEALTH_CACHE {
            return (*database, components.clone());
        }
    }
    let (database, components) = check_now(state).await;
    *cache = Some((std::time::Instant::now(), database, components.clone()));
    (database, components)
}

async fn check_now(state: &AppState) -> (bool, serde_json::Value) {
    let database = store::ping(&state.db).await;
    let redis = match &state.redis {
        None => "disabled",
        Some(conn) => {
            let mut conn = conn.clone();
            let pong = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await;
            if matches!(pong, Ok(Ok(_))) {
                "ok"
            } else {
                "down"
            }
        }
    };
    let geoip = if state.geoip.is_enabled() {
        "ok"
    } else {
        "disabled"
    };
    let smtp = match &state.smtp {
        None => "disabled",
        // Emails wait in the outbox while SMTP is down, so it is reported, never required.
        Some(mailer) => {
            match tokio::time::timeout(std::time::Duration::from_secs(3), mailer.ping()).await {
                Ok(true) => "ok",
                _ => "down",
            }
        }
    };
    let kafka = match &state.kafka {
        None => "disabled",
        // Events wait in the outbox while Kafka is down: reported, never required.
        Some(producer) => {
            if crate::kafka::ping(producer).await {
                "ok"
            } else {
                "down"
            }
        }
    };
    // Redis is not required: without it limits fall back to per-replica counters (see ratelimit).
    let components = json!({
        "database": if database { "ok" } else { "down" },
        "redis": redis,
        "kafka": kafka,
        "smtp": smtp,
        "geoip": geoip,
    });
    (database, components)
}
