//! `GET /metrics` (outside the API prefix, or alone on the `METRICS_PORT` listener): refreshes the
//! gauges read at scrape time (outbox backlog, database pool, signing-key age), then renders
//! everything.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

async fn render(State(state): State<AppState>) -> Response {
    let now = state.clock.now();
    match crate::outbox::backlog(&state.db).await {
        Ok(rows) => {
            for (outbox, pending, oldest) in rows {
                let age = oldest.map(|t| now - t).unwrap_or(0);
                state.metrics.set_outbox_backlog(outbox, pending, age);
            }
        }
        // The gauges keep their last values; the rest of the metrics still render.
        Err(err) => tracing::warn!(error = %err, "metrics: cannot read the outbox backlog"),
    }
    let db = &state.db;
    state
        .metrics
        .set_db_pool(db.size(), db.num_idle(), db.options().get_max_connections());
    if let Some(age) = crate::keys::signing_key_age(&state.config, now) {
        state.metrics.signing_key_age.set(age);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}
