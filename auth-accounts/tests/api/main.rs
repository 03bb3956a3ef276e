//! Integration tests of the accounts API: the real application on port 0, over HTTP, against
//! SQLite and PostgreSQL (`TEST_DATABASE_URL`; `scripts/test` starts one). One binary, one module
//! per feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;

mod errors;
mod health_docs;
mod login;
mod password;
mod refresh;
mod registration;
mod sessions;
mod tokens;
