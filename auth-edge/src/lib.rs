//! `auth-edge`: the latency-critical verifier that sits in front of services.
//!
//! This crate is a placeholder until its own issue (forward-auth, sidecar proxy, Envoy ext_authz).
//! It depends only on `auth-token`, never on `auth-accounts`, so the two programs stay independent.

/// The cookie the edge reads the access token from by default.
pub const DEFAULT_ACCESS_COOKIE: &str = auth_token::ACCESS_COOKIE;
