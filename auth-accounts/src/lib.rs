//! `auth-accounts`: the accounts API of the auth system (axum).
//!
//! It owns registration with email verification, login, refresh-token rotation with reuse detection,
//! logout, sessions (device and location), password reset and change, and the JWKS that the edge and
//! other services verify access tokens with. It is a drop-in replacement for the SmartBudget auth
//! service: the same routes under `/api/v1/auth`, the same JSON, cookies and environment variables.
//!
//! Layers, from the bottom up (no module imports one above it, and no two modules import each
//! other; the unit test in `layers.rs` checks both over the sources):
//!
//! Engines, which know nothing of HTTP or of [`state::AppState`]:
//! - [`config`]: typed configuration in sections, from the environment, validated once at start-up;
//!   [`legacy`]: moving from the old service: its `.env` names (read by `config`), and
//!   `import-legacy` of its database.
//! - [`clock`], [`crypto`] (random tokens, hashes, password hashing), `domain` (parsed input
//!   types `Email`, `Password`, `Name`, `Country`; device and location), `email` (templates).
//! - `store`: the database (SQLite or PostgreSQL through one code path), its queries and
//!   migrations; [`leases`]: which replica runs a singleton job.
//! - `events`: the domain events, the Kafka contract as one type; `outbox`: their rows and the
//!   email relay; `smtp`, `kafka`: the SMTP mailer and the Kafka relay; [`cleanup`].
//! - `metrics`: the Prometheus registry; `ratelimit`: the counters (Redis or in-process);
//!   `revocations`: the revocation poller and Redis fan-out; [`keys`]: signing keys and JWKS;
//!   `tasks`: background tasks ended by one cancellation token at shutdown; `trace`: the request
//!   id and trace context of the request being handled; `otlp`: their export as OpenTelemetry
//!   spans.
//!
//! Above them:
//! - [`state`]: the state handlers receive; `unit_of_work`: a transaction that records events and
//!   queues emails with the change; `sessions`: opening sessions and the refresh state machine.
//! - `error` and `http`: the error body, extractors (`AuthUser`, `MaybeAuthUser`, `ClientInfo`,
//!   `ApiJson`), cookies, CSRF, and the middleware in front of the engines (request ids and traces,
//!   metrics, rate limits).
//! - `routes`: feature modules, each owning its routes, rate limits and OpenAPI entries, all nested
//!   under `/api/v1/auth` once.
//! - [`startup`]: [`startup::Application`] binds the listener, builds the router and the background
//!   tasks (tests use port 0); [`commands`]: the command line (`serve`, `worker`, `rotate-keys`,
//!   `migrate`, `check`, `import-legacy`, `probe`); `probe`: the container health check (the
//!   image has no curl).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cleanup;
pub mod clock;
pub mod commands;
pub mod config;
pub mod crypto;
pub(crate) mod domain;
pub(crate) mod email;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod http;
pub(crate) mod kafka;
pub mod keys;
#[cfg(test)]
mod layers;
pub mod leases;
pub mod legacy;
pub(crate) mod metrics;
pub(crate) mod otlp;
pub(crate) mod outbox;
pub(crate) mod probe;
pub(crate) mod ratelimit;
pub(crate) mod revocations;
pub(crate) mod routes;
pub(crate) mod sessions;
pub(crate) mod smtp;
pub mod startup;
pub mod state;
pub(crate) mod store;
pub(crate) mod tasks;
pub(crate) mod trace;
pub(crate) mod unit_of_work;
