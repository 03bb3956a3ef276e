//! Prometheus metrics (served at `/metrics` by `routes::metrics`, counted by `http::metrics`), with the names the old README promised
//! (`http_requests_total`, `http_request_duration_seconds`, `http_exceptions_total`,
//! `auth_login_attempts_total`, `auth_failed_logins_total`) plus outbox and delivery metrics.
//!
//! Operators' standard set beside them: `auth_accounts_build_info{version,commit}`, the
//! `process_*` metrics (CPU, memory, file descriptors, threads, start time), the database pool
//! (`auth_db_pool_connections{state}`, `auth_db_pool_max_connections`) and the signing key's age
//! (`auth_signing_key_age_seconds`).
//!
//! Labels use the route template (`/api/v1/auth/sessions/{session_id}`), never the raw path, so a
//! client cannot blow up the number of series.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub handler: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub handler: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutboxLabels {
    pub outbox: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BuildLabels {
    pub version: String,
    pub commit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `idle` or `in_use`.
    pub state: String,
}

/// The `process_*` metrics, read from `/proc` at each scrape.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = auth_telemetry::ProcessSample::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                p.resident_memory_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                p.virtual_memory_bytes as f64,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                p.open_fds as f64,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                p.max_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                p.start_time_seconds,
            ),
            ("process_threads", "Number of OS threads", p.threads as f64),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram>,
    pub http_exceptions: Family<RouteLabels, Counter>,
    pub login_attempts: Counter,
    pub failed_logins: Counter,
    pub rate_limited: Family<RouteLabels, Counter>,
    pub email_deliveries: Family<ResultLabels, Counter>,
    pub kafka_deliveries: Family<ResultLabels, Counter>,
    pub outbox_backlog: Family<OutboxLabels, Gauge>,
    pub outbox_oldest_age: Family<OutboxLabels, Gauge>,
    pub db_pool_connections: Family<PoolLabels, Gauge>,
    pub db_pool_max: Gauge,
    pub signing_key_age: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            http_requests.clone(),
        );
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request duration",
            http_duration.clone(),
        );
        let http_exceptions = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_exceptions",
            "HTTP requests that ended in a 5xx",
            http_exceptions.clone(),
        );
        let login_attempts = Counter::default();
        registry.register(
            "auth_login_attempts",
            "Login attempts",
            login_attempts.clone(),
        );
        let failed_logins = Counter::default();
        registry.register("auth_failed_logins", "Failed logins", failed_logins.clone());
        let rate_limited = Family::<RouteLabels, Counter>::default();
        registry.register(
            "auth_rate_limited",
            "Requests refused with 429",
            rate_limited.clone(),
        );
        let email_deliveries = Family::<ResultLabels, Counter>::default();
        registry.register(
            "auth_email_deliveries",
            "Email delivery attempts by result",
            email_deliveries.clone(),
        );
        let kafka_deliveries = Family::<ResultLabels, Counter>::default();
        registry.register(
            "auth_kafka_deliveries",
            "Kafka event deliveries by result",
            kafka_deliveries.clone(),
        );
        let outbox_backlog = Family::<OutboxLabels, Gauge>::default();
        registry.register(
            "auth_outbox_backlog",
            "Outbox rows not yet delivered",
            outbox_backlog.clone(),
        );
        let outbox_oldest_age = Family::<OutboxLabels, Gauge>::default();
        registry.register(
            "auth_outbox_oldest_age_seconds",
            "Age of the oldest undelivered outbox row",
            outbox_oldest_age.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "auth_accounts_build_info",
            "The version and commit of this build (always 1)",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: auth_telemetry::BUILD.version.into(),
                commit: auth_telemetry::BUILD.commit.into(),
            })
            .set(1);
        let db_pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "auth_db_pool_connections",
            "Database connections open, by state (idle, in_use)",
            db_pool_connections.clone(),
        );
        let db_pool_max = Gauge::default();
        registry.register(
            "auth_db_pool_max_connections",
            "The database pool's maximum size (DB_POOL_SIZE)",
            db_pool_max.clone(),
        );
        let signing_key_age = Gauge::default();
        registry.register(
            "auth_signing_key_age_seconds",
            "Seconds since the signing key file was written (rotate-keys writes a new one)",
            signing_key_age.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        // Known results start at 0, so the series exist (and rate() and alerts work) before the
        // first delivery or failure; an empty family is not rendered at all.
        for result in ["sent", "retry", "dead"] {
            let _ = email_deliveries.get_or_create(&ResultLabels {
                result: result.into(),
            });
        }
        for result in ["delivered", "retry"] {
            let _ = kafka_deliveries.get_or_create(&ResultLabels {
                result: result.into(),
            });
        }
        Self {
            registry,
            http_requests,
            http_duration,
            http_exceptions,
            login_attempts,
            failed_logins,
            rate_limited,
            email_deliveries,
            kafka_deliveries,
            outbox_backlog,
            outbox_oldest_age,
            db_pool_connections,
            db_pool_max,
            signing_key_age,
        }
    }

    /// Sets the database pool gauges (read at scrape time).
    pub fn set_db_pool(&self, size: u32, idle: usize, max: u32) {
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        let open = i64::from(size);
        for (state, value) in [("idle", idle), ("in_use", (open - idle).max(0))] {
            self.db_pool_connections
                .get_or_create(&PoolLabels {
                    state: state.into(),
                })
                .set(value);
        }
        self.db_pool_max.set(i64::from(max));
    }

    /// Sets the backlog gauges of one outbox (`events`, `emails`).
    pub fn set_outbox_backlog(&self, outbox: &str, pending: i64, oldest_age_secs: i64) {
        let labels = OutboxLabels {
            outbox: outbox.to_string(),
        };
        self.outbox_backlog.get_or_create(&labels).set(pending);
        self.outbox_oldest_age
            .get_or_create(&labels)
            .set(oldest_age_secs);
    }

    /// Counts one request (the HTTP middleware calls it with the route template).
    pub fn observe_request(&self, method: &str, handler: &str, status: u16, seconds: f64) {
        let route = RouteLabels {
            method: method.to_string(),
            handler: handler.to_string(),
        };
        self.http_duration.get_or_create(&route).observe(seconds);
        if (500..600).contains(&status) {
            self.http_exceptions.get_or_create(&route).inc();
        }
        self.http_requests
            .get_or_create(&HttpLabels {
                method: route.method,
                handler: route.handler,
                status: status.to_string(),
            })
            .inc();
    }

    /// The text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
