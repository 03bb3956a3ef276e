//! `GET /metrics`, parsed by the reference OpenMetrics parser (Python `prometheus_client`).

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::helpers::{email, spawn_app, spawn_app_with, Backend, PASSWORD};
use crate::peers::python;

const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": family.name, "type": family.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples]})
print(json.dumps(out))
"#;

#[derive(Debug, Deserialize)]
struct Family {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    samples: Vec<Sample>,
}

#[derive(Debug, Deserialize)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

struct Metrics(Vec<Family>);

impl Metrics {
    async fn scrape(app: &crate::helpers::TestApp) -> Self {
        Self::scrape_url(app, &format!("{}/metrics", app.root())).await
    }

    async fn scrape_url(app: &crate::helpers::TestApp, url: &str) -> Self {
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let out = python(&["-c", PARSE], Some(&text)).await;
        Self(serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")))
    }

    fn family(&self, name: &str, kind: &str) -> &Family {
        let family = self
            .0
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no metric family {name}"));
        assert_eq!(family.kind, kind, "type of {name}");
        family
    }

    /// The value of sample `name` with exactly these labels (0 when absent).
    fn value(&self, family: &str, kind: &str, sample: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.family(family, kind)
            .samples
            .iter()
            .find(|s| s.name == sample && s.labels == want)
            .map_or(0.0, |s| s.value)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_openmetrics_and_count_what_happened() {
    let app = spawn_app(Backend::Sqlite).await;
    let user = email("metrics");
    let registered = app.register(&user, PASSWORD).await;
    let second = app.login(&user, PASSWORD).await;
    app.login(&user, PASSWORD).await;
    for _ in 0..3 {
        let response = app.login_body(&user, "not-the-password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = app.login_body(&email("nobody"), PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .delete(
            &format!("sessions/{}", second.session_id),
            &registered.access,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.me_status(&registered.access).await, StatusCode::OK);
    app.wait_for_mail_relay().await;

    let m = Metrics::scrape(&app).await;
    // Requests by method, route template and status.
    let requests = |method: &str, handler: &str, status: &str| {
        m.value(
            "http_requests",
            "counter",
            "http_requests_total",
            &[("method", method), ("handler", handler), ("status", status)],
        )
    };
    assert_eq!(requests("POST", "/api/v1/auth/login", "200"), 2.0);
    assert_eq!(requests("POST", "/api/v1/auth/login", "401"), 4.0);
    assert_eq!(requests("POST", "/api/v1/auth/verify-email", "200"), 1.0);
    assert_eq!(
        requests("POST", "/api/v1/auth/complete-registration", "200"),
        1.0
    );
    assert_eq!(
        requests("DELETE", "/api/v1/auth/sessions/{session_id}", "200"),
        1.0
    );
    assert_eq!(requests("GET", "/api/v1/auth/me", "200"), 1.0);
    // Labels carry the template, never the raw path.
    for family in &m.0 {
        for sample in &family.samples {
            if let Some(handler) = sample.labels.get("handler") {
                assert!(
                    !handler.contains(&second.session_id),
                    "raw path in a label: {sample:?}"
                );
            }
        }
    }
    // Durations: a histogram per route with buckets, count and sum.
    let login_route = [("method", "POST"), ("handler", "/api/v1/auth/login")];
    let histogram = "http_request_duration_seconds";
    assert_eq!(
        m.value(
            histogram,
            "histogram",
            "http_request_duration_seconds_count",
            &login_route
        ),
        6.0
    );
    let mut inf = login_route.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        m.value(
            histogram,
            "histogram",
            "http_request_duration_seconds_bucket",
            &inf
        ),
        6.0
    );
    assert!(
        m.value(
            histogram,
            "histogram",
            "http_request_duration_seconds_sum",
            &login_route
        ) > 0.0
    );
    // Login counters: 6 attempts, 4 failures (3 wrong passwords, 1 unknown address).
    assert_eq!(
        m.value(
            "auth_login_attempts",
            "counter",
            "auth_login_attempts_total",
            &[]
        ),
        6.0
    );
    assert_eq!(
        m.value(
            "auth_failed_logins",
            "counter",
            "auth_failed_logins_total",
            &[]
        ),
        4.0
    );
    // Outbox gauges: without Kafka every event waits in the outbox; the one email went out.
    let pending_events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox_events WHERE status = 'pending'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert!(pending_events >= 8, "{pending_events}");
    #[allow(clippy::cast_precision_loss)]
    let pending_events = pending_events as f64;
    let backlog = |outbox: &str| {
        m.value(
            "auth_outbox_backlog",
            "gauge",
            "auth_outbox_backlog",
            &[("outbox", outbox)],
        )
    };
    assert_eq!(backlog("events"), pending_events);
    assert_eq!(backlog("emails"), 0.0);
    let age = |outbox: &str| {
        m.value(
            "auth_outbox_oldest_age_seconds",
            "gauge",
            "auth_outbox_oldest_age_seconds",
            &[("outbox", outbox)],
        )
    };
    assert!((0.0..60.0).contains(&age("events")), "{}", age("events"));
    assert_eq!(age("emails"), 0.0);
    assert_eq!(
        m.value(
            "auth_email_deliveries",
            "counter",
            "auth_email_deliveries_total",
            &[("result", "sent")]
        ),
        1.0
    );
    // Known results are there from the start, at 0.
    assert_eq!(
        m.value(
            "auth_email_deliveries",
            "counter",
            "auth_email_deliveries_total",
            &[("result", "retry")]
        ),
        0.0
    );
    for result in ["delivered", "retry"] {
        let family = m.family("auth_kafka_deliveries", "counter");
        assert!(
            family
                .samples
                .iter()
                .any(|s| s.name == "auth_kafka_deliveries_total"
                    && s.labels.get("result").map(String::as_str) == Some(result)
                    && s.value == 0.0),
            "{family:?}"
        );
    }
    // SQLite caps the pool at 8 connections (DB_POOL_SIZE defaults to 20).
    assert_operator_metrics(&m, 8.0);

    // The backlog's age follows the clock.
    app.clock.advance(120);
    let later = Metrics::scrape(&app).await;
    let age = later.value(
        "auth_outbox_oldest_age_seconds",
        "gauge",
        "auth_outbox_oldest_age_seconds",
        &[("outbox", "events")],
    );
    assert!((120.0..180.0).contains(&age), "{age}");

    // A 5xx is counted as an exception: with the database gone, health answers 503.
    app.state.db.close().await;
    let response = app.get("health", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let m = Metrics::scrape(&app).await;
    assert_eq!(
        m.value(
            "http_exceptions",
            "counter",
            "http_exceptions_total",
            &[("method", "GET"), ("handler", "/api/v1/auth/health")]
        ),
        1.0
    );
}

/// Build, process, pool and key metrics: what operators of any service expect.
fn assert_operator_metrics(m: &Metrics, pool_size: f64) {
    let build = m.family("auth_accounts_build_info", "gauge");
    assert_eq!(build.samples.len(), 1, "{build:?}");
    let labels = &build.samples[0].labels;
    assert_eq!(labels["version"], env!("CARGO_PKG_VERSION"));
    let commit = &labels["commit"];
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{commit}"
    );
    assert_eq!(build.samples[0].value, 1.0);
    let cpu = m.value(
        "process_cpu_seconds",
        "counter",
        "process_cpu_seconds_total",
        &[],
    );
    assert!(cpu > 0.0, "{cpu}");
    let rss = m.value(
        "process_resident_memory_bytes",
        "gauge",
        "process_resident_memory_bytes",
        &[],
    );
    assert!(rss > 1e6, "{rss}");
    let fds = m.value("process_open_fds", "gauge", "process_open_fds", &[]);
    let max_fds = m.value("process_max_fds", "gauge", "process_max_fds", &[]);
    assert!(fds >= 3.0 && max_fds >= fds, "{fds} {max_fds}");
    let start = m.value(
        "process_start_time_seconds",
        "gauge",
        "process_start_time_seconds",
        &[],
    );
    #[allow(clippy::cast_precision_loss)]
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        start > now - 3600.0 && start <= now + 1.0,
        "{start} vs {now}"
    );
    // The pool: DB_POOL_SIZE is its maximum, and the scrape's own query left a connection open.
    assert_eq!(
        m.value(
            "auth_db_pool_max_connections",
            "gauge",
            "auth_db_pool_max_connections",
            &[]
        ),
        pool_size
    );
    let idle = m.value(
        "auth_db_pool_connections",
        "gauge",
        "auth_db_pool_connections",
        &[("state", "idle")],
    );
    let in_use = m.value(
        "auth_db_pool_connections",
        "gauge",
        "auth_db_pool_connections",
        &[("state", "in_use")],
    );
    assert!(
        idle + in_use >= 1.0 && idle + in_use <= pool_size,
        "{idle} {in_use}"
    );
    // The key was written when the test started.
    let age = m.value(
        "auth_signing_key_age_seconds",
        "gauge",
        "auth_signing_key_age_seconds",
        &[],
    );
    assert!((0.0..600.0).contains(&age), "{age}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("METRICS_PORT", "0"), ("DB_POOL_SIZE", "3")],
    )
    .await;
    let port = app.metrics_port.expect("a metrics listener");
    assert_ne!(port, app.port);
    // Not on the public port any more (an ingress cannot publish it by accident) ...
    let response = app
        .client
        .get(format!("{}/metrics", app.root()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // ... and only metrics on the metrics port.
    let response = app
        .client
        .get(format!("http://127.0.0.1:{port}/api/v1/auth/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.me_status("not-a-token").await, StatusCode::UNAUTHORIZED);
    let m = Metrics::scrape_url(&app, &format!("http://127.0.0.1:{port}/metrics")).await;
    assert_operator_metrics(&m, 3.0);
    assert_eq!(
        m.value(
            "http_requests",
            "counter",
            "http_requests_total",
            &[
                ("method", "GET"),
                ("handler", "/api/v1/auth/me"),
                ("status", "401")
            ]
        ),
        1.0
    );
}
