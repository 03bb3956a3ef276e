//! What the test suites share (`auth-accounts/tests/api`, `auth-edge/tests/edge`, `tests/e2e`,
//! `shared/tests`), so that each harness holds only what is its own (the application under test
//! and its fakes). Used only as a dev-dependency; never published.
//!
//! - [`fs`]: process-unique names and temp dirs removed on drop;
//! - [`net`]: free loopback ports, polling waits, a plain HTTP client;
//! - [`process`]: child processes with a log file, killed on drop ([`Process`], and [`Peer`], one
//!   listening on a port), and where peer binaries and the workspace's own binaries are;
//! - [`redis`], `kafka` (feature `kafka`), [`smtp`], [`proxies`]: real peers (redis-server,
//!   tansu, `tests/smtp_sink.py`, nginx / Caddy / Envoy) on random loopback ports;
//! - [`python`]: running the test venv's Python;
//! - [`tls`]: a throwaway certificate authority;
//! - [`tokens`]: shared test keys, minting claims and tokens, forging bad ones, reading a JWT.
//!
//! `scripts/test` (or `cargo xtask setup`) installs the peers and exports where they are
//! (`AUTH_TEST_*`). A missing peer fails the test with "run scripts/test": it never skips, because
//! a skipped check looks exactly like a passing one. Panicking is how this crate reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fs;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod net;
pub mod process;
pub mod proxies;
pub mod python;
pub mod redis;
pub mod smtp;
pub mod tls;
pub mod tokens;

pub use fs::{unique, TempDir};
pub use net::{client, free_port, wait_for, wait_http_ok, wait_until, wait_until_true};
pub use process::{Peer, Process};
