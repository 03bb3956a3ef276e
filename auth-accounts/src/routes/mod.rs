//! Feature modules, each owning its routes (and their rate limits and OpenAPI entries) and the
//! queries it needs. [`router`] nests them all under `/api/v1/auth`, once.

pub(crate) mod docs;
pub(crate) mod health;
pub(crate) mod issue;
pub(crate) mod login;
pub(crate) mod metrics;
pub(crate) mod password;
pub(crate) mod registration;
pub(crate) mod revocations;
pub(crate) mod sessions;
pub(crate) mod tokens;

use std::sync::{Arc, OnceLock};

use axum::Router;
use serde::Serialize;
use utoipa::{OpenApi as _, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub(crate) const PREFIX: &str = "/api/v1/auth";

/// Every public route: the API under [`PREFIX`] (documented as it is registered), and
/// `/metrics` unless it has a listener of its own (`METRICS_PORT`, see [`metrics::router`]).
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let (router, _) = api(state);
    match state.config.http.metrics_port {
        None => router.merge(metrics::router()),
        Some(_) => router,
    }
}

/// The API routes and the OpenAPI document that describes exactly them.
pub(crate) fn api(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let document = Arc::new(OnceLock::new());
    let features = OpenApiRouter::new()
        .merge(registration::router(state))
        .merge(login::router(state))
        .merge(password::router(state))
        .merge(sessions::router(state))
        .merge(tokens::router())
        .merge(health::router())
        .merge(revocations::router())
        .merge(docs::router(document.clone(), state.config.production));
    let (router, mut openapi) = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .nest(PREFIX, features)
        .split_for_parts();
    utoipa::Modify::modify(&docs::SharedAnswers, &mut openapi);
    if let Ok(json) = openapi.to_json() {
        let _ = document.set(json);
    }
    (router, openapi)
}

/// The old service's success body: `{"status":"success","action":..,"detail":..}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusBody {
    #[schema(example = "success")]
    pub status: &'static str,
    pub action: &'static str,
    pub detail: String,
}

impl StatusBody {
    pub(crate) fn success(action: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: "success",
            action,
            detail: detail.into(),
        }
    }
}

/// The error body of every 4xx/5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    #[schema(example = "error")]
    pub status: &'static str,
    #[schema(example = "login")]
    pub action: String,
    #[schema(example = "Invalid credentials")]
    pub detail: String,
}

#[cfg(test)]
mod tests {
    /// The document is complete by construction only if every API route goes through `routes!`
    /// (which adds its `#[utoipa::path]`): no feature module may add a route any other way.
    #[test]
    fn feature_routes_are_registered_with_their_docs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
        let mut registered = 0;
        let mut documented = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            // docs.rs serves the document itself, metrics.rs `/metrics` outside the API.
            if !matches!(name.as_str(), "docs.rs" | "metrics.rs" | "mod.rs") {
                // `OpenApiRouter::new()` is the documented kind; a plain axum router is not.
                let plain = text.replace("OpenApiRouter::new()", "");
                assert!(
                    !plain.contains(".route(") && !plain.contains("Router::new()"),
                    "{name} adds a route without its OpenAPI entry"
                );
            }
            registered += text.matches("routes!(").count();
            documented += text.matches("#[utoipa::path(").count();
        }
        // Every documented handler is registered (a registered one must be documented to compile).
        assert_eq!(registered, documented);
        assert!(registered >= 18);
    }
}
