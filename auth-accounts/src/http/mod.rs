//! HTTP plumbing shared by the feature modules: extractors, cookies, CSRF and the error body.

pub mod auth;
pub mod client;
pub mod cookies;
pub mod csrf;
pub mod errors;
pub mod json;

pub use auth::{AuthUser, TokenSource};
pub use client::ClientInfo;
pub use json::ApiJson;
