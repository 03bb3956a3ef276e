//! `auth-accounts`: the accounts API of the auth system (axum).
//!
//! It owns registration with email verification, login, refresh-token rotation with reuse detection,
//! logout, sessions (device and location), password reset and change, and the JWKS that the edge and
//! other services verify access tokens with. It is a drop-in replacement for the SmartBudget auth
//! service: the same routes under `/api/v1/auth`, the same JSON, cookies and environment variables.
//!
//! Modules:
//! - [`config`]: typed configuration from the environment, validated once at start-up.
//! - [`startup`]: [`startup::Application`] binds the listener and builds the router (tests use port 0).
//! - [`state`]: the shared application state passed to handlers.
//! - [`error`]: the one error type and its JSON body `{"status":"error","action":..,"detail":..}`.
//! - [`http`]: extractors (JSON, authenticated user, client info), cookies, CSRF and error middleware.
//! - [`domain`]: parsed input types (`Email`, `Password`, `Name`, `Country`) and device/location helpers.
//! - [`crypto`]: password hashing off the async threads, random one-time and refresh tokens.
//! - [`keys`]: signing keys on disk, generated on first start, and the published JWKS.
//! - [`legacy`]: moving from the old service: its `.env` names, and `import-legacy` of its database.
//! - [`metrics`]: Prometheus metrics at `/metrics`.
//! - [`store`]: the database (SQLite or PostgreSQL through one code path) and its queries.
//! - [`outbox`]: events and emails written in the same transaction as the change, and their relay.
//! - [`smtp`]: SMTP delivery of the email outbox.
//! - [`kafka`]: the relay publishing the event outbox to Kafka.
//! - [`leases`]: which replica runs a singleton job (Kafka relay, cleanup).
//! - [`cleanup`]: periodic removal of expired sessions, tokens and delivered outbox rows.
//! - [`email`]: email templates (Russian and English).
//! - [`probe`]: `auth-accounts probe`, the container health check (the image has no curl).
//! - [`ratelimit`]: per-route and per-account limits, shared through Redis when configured.
//! - [`revocations`]: the feed that pushes revoked sessions to the edges.
//! - [`routes`]: feature modules, each owning its routes: registration, login, password, sessions,
//!   tokens, health, docs.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cleanup;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod email;
pub mod error;
pub mod http;
pub mod kafka;
pub mod keys;
pub mod leases;
pub mod legacy;
pub mod metrics;
pub mod outbox;
pub mod probe;
pub mod ratelimit;
pub mod revocations;
pub mod routes;
pub mod smtp;
pub mod startup;
pub mod state;
pub mod store;
