//! Real peers for the production integrations: redis-server, the tansu Kafka broker, an aiosmtpd
//! SMTP sink, the Python Prometheus parser and the GeoIP test database. `scripts/test` installs them
//! and exports where they are (`AUTH_TEST_REDIS`, `AUTH_TEST_TANSU`, `AUTH_TEST_PYTHON`,
//! `AUTH_TEST_GEOIP_DB`); a missing one fails the test (never skips it). Each test starts its own
//! peers on random loopback ports; they are killed when dropped. The launchers are
//! `auth_test_support`'s (shared with the edge and end-to-end suites), re-exported here.

use auth_accounts::clock::Clock;

pub use auth_test_support::kafka::*;
pub use auth_test_support::net::*;
pub use auth_test_support::process::*;
pub use auth_test_support::python::*;
pub use auth_test_support::redis::*;
pub use auth_test_support::smtp::*;

/// Moves every clock to the start of the next `window`-second window (all by the same amount), so a
/// burst of requests counted in fixed windows cannot straddle a window boundary.
pub fn align_to_window(clocks: &[&Clock], window: i64) {
    let now = clocks[0].now();
    let advance = window - now.rem_euclid(window);
    for clock in clocks {
        clock.advance(advance);
    }
}
