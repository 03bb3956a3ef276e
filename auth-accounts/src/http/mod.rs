//! HTTP plumbing shared by the feature modules: extractors, cookies, CSRF, the error body, and the
//! middleware in front of the engines (request metrics, per-client rate limits).

pub mod auth;
pub mod client;
pub mod cookies;
pub mod csrf;
pub mod errors;
pub mod json;
pub mod metrics;
pub mod ratelimit;
pub mod trace;

pub use auth::{AuthUser, MaybeAuthUser, TokenSource};
pub use client::ClientInfo;
pub use json::ApiJson;
