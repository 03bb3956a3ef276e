//! Integration tests of the accounts API: the real application on port 0, over HTTP, against
//! SQLite and PostgreSQL (`TEST_DATABASE_URL`; `scripts/test` starts one). One binary, one module
//! per feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Helpers are `pub` to the modules of this one test binary.
#![allow(unreachable_pub)]

#[macro_use]
mod helpers;

mod correlation;
mod credentials;
mod errors;
mod health_docs;
mod legacy_import;
mod login;
mod password;
mod refresh;
mod registration;
mod sessions;
mod tokens;

// Production integrations against real peers (redis-server, tansu, aiosmtpd, prometheus_client,
// the GeoIP test database): started by the tests on loopback ports, see `peers`.
mod geoip;
mod kafka_events;
mod metrics;
mod peers;
mod rate_limits;
mod revocation_feed;
mod smtp_delivery;
mod workers;
