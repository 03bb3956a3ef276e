//! HTTP plumbing shared by the feature modules: extractors, cookies, CSRF, the error body, and the
//! middleware in front of the engines (request metrics, per-client rate limits).

pub(crate) mod auth;
pub(crate) mod client;
pub(crate) mod cookies;
pub(crate) mod csrf;
pub(crate) mod errors;
pub(crate) mod json;
pub(crate) mod metrics;
pub(crate) mod ratelimit;
pub(crate) mod trace;

pub(crate) use auth::{AuthUser, MaybeAuthUser, TokenSource};
pub(crate) use client::ClientInfo;
pub(crate) use json::ApiJson;
