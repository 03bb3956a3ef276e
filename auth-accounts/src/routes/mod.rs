//! Feature modules, each owning its routes and the queries it needs. All live under `/api/v1/auth`.

pub mod docs;
pub mod health;
pub mod issue;
pub mod login;
pub mod password;
pub mod registration;
pub mod sessions;
pub mod tokens;

use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

pub const PREFIX: &str = "/api/v1/auth";

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(registration::router())
        .merge(login::router())
        .merge(password::router())
        .merge(sessions::router())
        .merge(tokens::router())
        .merge(health::router())
        .merge(docs::router())
        .merge(crate::revocations::router())
}

/// The old service's success body: `{"status":"success","action":..,"detail":..}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusBody {
    #[schema(example = "success")]
    pub status: &'static str,
    pub action: &'static str,
    pub detail: String,
}

impl StatusBody {
    pub fn success(action: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: "success",
            action,
            detail: detail.into(),
        }
    }
}

/// The error body of every 4xx/5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "error")]
    pub status: &'static str,
    #[schema(example = "login")]
    pub action: String,
    #[schema(example = "Invalid credentials")]
    pub detail: String,
}
