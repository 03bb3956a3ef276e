//! Request correlation: a caller's W3C `traceparent` is continued (its trace id reaches the log
//! lines of the request and the events it records, which the Kafka relay publishes as headers:
//! see `kafka_events`), and every answer names its request id.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{email, spawn_app, Backend, PASSWORD};

both!(a_trace_reaches_the_logs_the_events_and_the_answer);

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Everything the application logs (at info) in this test binary, from the first call on.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("auth_accounts=info")
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buffer
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn a_trace_reaches_the_logs_the_events_and_the_answer(backend: Backend) {
    let logs = logs();
    let app = spawn_app(backend).await;
    let user = email("trace");
    app.register(&user, PASSWORD).await;

    // A unique trace id per run (the log buffer is shared by the tests of this binary).
    let trace_id = format!("{}{:016x}", &TRACE_ID[..16], rand_u64());
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let response = app
        .client
        .post(app.url("login"))
        .header("traceparent", &traceparent)
        .json(&json!({ "email": user, "password": PASSWORD, "tokenDelivery": "body" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // No request id sent: the answer names the trace id, which finds the log lines.
    assert_eq!(
        response.headers()["x-request-id"].to_str().unwrap(),
        trace_id
    );

    // The event row carries this service's span in the caller's trace, and the request id.
    let (tp, request_id): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT traceparent, request_id FROM outbox_events WHERE event_type = 'user.login' ORDER BY created_at DESC, event_id DESC LIMIT 1",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    let tp = tp.expect("traceparent stored with the event");
    let parsed = auth_token::TraceParent::parse(&tp).expect("a valid traceparent");
    assert_eq!(parsed.trace_id(), trace_id);
    assert_ne!(parsed.span_id(), "00f067aa0ba902b7", "a span of its own");
    assert_eq!(request_id.as_deref(), Some(trace_id.as_str()));

    // The log line of the event names the trace and the request.
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("trace_id={trace_id}")) && l.contains("event recorded"))
        .unwrap_or_else(|| panic!("no log line of the event with the trace id in:\n{text}"));
    assert!(line.contains(&format!("request_id={trace_id}")), "{line}");
    assert!(line.contains("route=\"/api/v1/auth/login\""), "{line}");

    // A caller's own request id is kept when harmless, replaced when not.
    let response = app
        .client
        .get(app.url(".well-known/jwks.json"))
        .header("x-request-id", "gateway-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "gateway-req-42");
    let response = app
        .client
        .get(app.url(".well-known/jwks.json"))
        .header("x-request-id", "forged\"log line")
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-request-id"].to_str().unwrap(),
        trace_id
    );
    // Errors and unknown routes are answered with an id too.
    let response = app.get("no-such-route", None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-request-id"].len(), 32);
}

fn rand_u64() -> u64 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) | 1
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, each request is exported to the collector as a server
/// span of the caller's trace (OTLP/HTTP, JSON): received here by a stand-in collector that keeps
/// what is posted to `/v1/traces`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector() {
    use axum::routing::post;

    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).expect("OTLP JSON"));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let endpoint = format!("http://127.0.0.1:{port}");
    let app = crate::helpers::spawn_app_with(
        Backend::Sqlite,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "auth-under-test"),
        ],
    )
    .await;
    let user = email("otlp");
    app.register(&user, PASSWORD).await;
    let trace_id = format!("{}{:016x}", &TRACE_ID[..16], rand_u64());
    let response = app
        .client
        .post(app.url("login"))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&json!({ "email": user, "password": PASSWORD, "tokenDelivery": "body" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (resource, span) = loop {
        let found = received.lock().unwrap().iter().find_map(|request| {
            let resource = &request["resourceSpans"][0];
            resource["scopeSpans"][0]["spans"]
                .as_array()?
                .iter()
                .find(|s| s["traceId"] == trace_id.as_str())
                .map(|s| (resource["resource"].clone(), s.clone()))
        });
        if let Some(found) = found {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "no span of the trace");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(span["name"], "POST /api/v1/auth/login");
    assert_eq!(span["parentSpanId"], "b7ad6b7169203331");
    assert_eq!(span["kind"], 2);
    let span_id = span["spanId"].as_str().unwrap();
    assert_eq!(span_id.len(), 16);
    assert!(span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["key"] == "http.response.status_code" && a["value"]["intValue"] == "200"));
    assert_eq!(
        resource["attributes"][0]["value"]["stringValue"],
        "auth-under-test"
    );
    // The span the event carries (the Kafka `traceparent`) is this one.
    let (tp,): (Option<String>,) = sqlx::query_as(
        "SELECT traceparent FROM outbox_events WHERE event_type = 'user.login' ORDER BY created_at DESC, event_id DESC LIMIT 1",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(
        tp.unwrap(),
        format!("00-{trace_id}-{span_id}-01"),
        "the event's traceparent names the exported span"
    );
}
