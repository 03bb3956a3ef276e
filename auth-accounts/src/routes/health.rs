//! Health: each configured component and its state; 503 when a required one is down.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;
use crate::store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Component states: `ok`, `down`, or `disabled` (not configured). The database is required; GeoIP
/// is optional. Redis, Kafka and SMTP are reported as `disabled` until their integrations are
/// configured (the embedded mode keeps events in the outbox and writes emails to a folder).
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "All required components are up"), (status = 503, description = "A required component is down")))]
pub async fn health(State(state): State<AppState>) -> Response {
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
    let status = match (database, redis) {
        (false, _) => "error",
        (true, _) if redis == "down" || smtp == "down" || kafka == "down" => "degraded",
        _ => "ok",
    };
    let body = json!({
        "status": status,
        "components": {
            "database": if database { "ok" } else { "down" },
            "redis": redis,
            "kafka": kafka,
            "smtp": smtp,
            "geoip": geoip,
        }
    });
    let code = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}
