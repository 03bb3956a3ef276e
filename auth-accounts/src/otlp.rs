//! Optional export of request spans to an OpenTelemetry collector: OTLP over HTTP with the JSON
//! encoding (`POST {endpoint}/v1/traces`), configured by the standard `OTEL_*` variables and off
//! unless an endpoint is set.
//!
//! Each request is one server span: the trace id and parent of the caller's `traceparent` (or a
//! new trace), this service's span id (the one it passes on in Kafka event headers), the route
//! template, the status. Spans are queued (bounded: when the collector cannot keep up they are
//! dropped and counted, never held in memory without limit) and sent in batches every second by
//! a background task. Written by hand rather than with the `opentelemetry` crates: one span kind
//! and one encoding are a small format, and the SDK's HTTP exporters pull a second HTTP client
//! stack (reqwest 0.13) into the binary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Spans waiting for the next batch at most; beyond, new spans are dropped.
const QUEUE: usize = 4096;
/// Spans per request to the collector at most.
const BATCH: usize = 512;

/// Where and how to export (`OTEL_EXPORTER_OTLP_ENDPOINT` and friends).
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// The traces URL: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`. `http://` only.
    pub endpoint: url::Url,
    /// `OTEL_SERVICE_NAME` (default `auth-accounts`).
    pub service_name: String,
    /// `OTEL_EXPORTER_OTLP_HEADERS` (`key=value,...`), e.g. a collector's API key.
    pub headers: Vec<(String, SecretString)>,
}

/// One finished request.
#[derive(Clone, Debug)]
pub(crate) struct SpanRecord {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) parent_span_id: Option<String>,
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) status: u16,
    pub(crate) request_id: String,
    pub(crate) start_unix_nanos: u128,
    pub(crate) end_unix_nanos: u128,
}

/// The handle the HTTP middleware records spans with.
#[derive(Debug)]
pub struct Exporter {
    tx: mpsc::Sender<SpanRecord>,
    dropped: AtomicU64,
}

impl Exporter {
    /// The exporter and its background task (which ends, after a last flush, on `shutdown`).
    pub(crate) fn start(
        config: OtlpConfig,
        shutdown: CancellationToken,
    ) -> (Arc<Self>, impl std::future::Future<Output = ()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let exporter = Arc::new(Self {
            tx,
            dropped: AtomicU64::new(0),
        });
        let task = run(config, rx, exporter.clone(), shutdown);
        (exporter, task)
    }

    /// Queues a span; drops it when the queue is full (the collector is slow or away).
    pub(crate) fn record(&self, span: SpanRecord) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn run(
    config: OtlpConfig,
    mut rx: mpsc::Receiver<SpanRecord>,
    exporter: Arc<Exporter>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut failures = 0u32;
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        };
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(span) => batch.push(span),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let body = encode(&config, &batch);
            match post(&config, body).await {
                Ok(()) => failures = 0,
                Err(err) => {
                    if failures % 60 == 0 {
                        tracing::warn!(error = %err, spans = batch.len(), dropped = exporter.dropped.load(Ordering::Relaxed), "OTLP export failed; spans dropped");
                    }
                    failures += 1;
                }
            }
            batch.clear();
        }
        if stop {
            return;
        }
    }
}

/// The OTLP/JSON `ExportTraceServiceRequest` (ids in hex, 64-bit integers as strings).
fn encode(config: &OtlpConfig, spans: &[SpanRecord]) -> Vec<u8> {
    let string = |key: &str, value: &str| serde_json::json!({ "key": key, "value": { "stringValue": value } });
    let spans: Vec<serde_json::Value> = spans
        .iter()
        .map(|s| {
            let mut span = serde_json::json!({
                "traceId": s.trace_id,
                "spanId": s.span_id,
                "name": format!("{} {}", s.method, s.route),
                "kind": 2, // SERVER
                "startTimeUnixNano": s.start_unix_nanos.to_string(),
                "endTimeUnixNano": s.end_unix_nanos.to_string(),
                "attributes": [
                    string("http.request.method", &s.method),
                    string("http.route", &s.route),
                    { "key": "http.response.status_code", "value": { "intValue": s.status.to_string() } },
                    string("http.request.header.x-request-id", &s.request_id),
                ],
                // ERROR for a 5xx (a server span's 4xx is the client's error, per the conventions).
                "status": { "code": if s.status >= 500 { 2 } else { 0 } },
            });
            if let Some(parent) = &s.parent_span_id {
                span["parentSpanId"] = serde_json::Value::String(parent.clone());
            }
            span
        })
        .collect();
    let request = serde_json::json!({
        "resourceSpans": [{
            "resource": { "attributes": [
                string("service.name", &config.service_name),
                string("service.version", auth_telemetry::BUILD.version),
            ] },
            "scopeSpans": [{
                "scope": { "name": "auth-accounts", "version": auth_telemetry::BUILD.version },
                "spans": spans,
            }],
        }],
    });
    serde_json::to_vec(&request).unwrap_or_default()
}

/// One `POST` on a new connection (once a second: no pool needed), bounded to 5 s.
async fn post(config: &OtlpConfig, body: Vec<u8>) -> Result<(), String> {
    let url = &config.endpoint;
    let host = url.host_str().ok_or("no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("no port")?;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let mut request = http::Request::post(url.path())
            .header(http::header::HOST, format!("{host}:{port}"))
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in &config.headers {
            request = request.header(name.as_str(), value.expose_secret());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {}", response.status()))
        }
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Reads the standard variables; `Ok(None)` when export is off (no endpoint, or
/// `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`).
pub(crate) fn config_from(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<OtlpConfig>, String> {
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match get("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(format!(
                "OTEL_TRACES_EXPORTER: only `otlp` and `none` are supported, not {other:?}"
            ))
        }
    }
    let protocol =
        get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let endpoint = match (
        get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(traces), _) => traces,
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => return Ok(None),
    };
    if let Some(protocol) = protocol.filter(|p| p != "http/json") {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL: only `http/json` is supported, not {protocol:?} (collectors accept it on their HTTP port, 4318)"
        ));
    }
    let endpoint =
        url::Url::parse(&endpoint).map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
    if endpoint.scheme() != "http" {
        return Err(
            "OTEL_EXPORTER_OTLP_ENDPOINT: only http:// is supported (a collector or agent beside the service)".into(),
        );
    }
    let headers = get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .or_else(|| get("OTEL_EXPORTER_OTLP_HEADERS"))
        .unwrap_or_default()
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("OTEL_EXPORTER_OTLP_HEADERS: not key=value: {pair:?}"))?;
            let name = name.trim();
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("OTEL_EXPORTER_OTLP_HEADERS: bad header name {name:?}"))?;
            Ok((name.to_owned(), SecretString::from(value.trim().to_owned())))
        })
        .collect::<Result<_, String>>()?;
    Ok(Some(OtlpConfig {
        endpoint,
        service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "auth-accounts".into()),
        headers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Option<OtlpConfig>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config_from(|k| vars.get(k).cloned())
    }

    #[test]
    fn off_unless_an_endpoint_is_set() {
        assert!(config(&[]).unwrap().is_none());
        let on = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(on.endpoint.as_str(), "http://collector:4318/v1/traces");
        assert_eq!(on.service_name, "auth-accounts");
        let traces = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:9999/custom"),
            ("OTEL_SERVICE_NAME", "auth-eu"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cret, x-tenant=t1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(traces.endpoint.as_str(), "http://b:9999/custom");
        assert_eq!(traces.service_name, "auth-eu");
        assert_eq!(traces.headers.len(), 2);
        assert_eq!(traces.headers[0].1.expose_secret(), "s3cret");
        for off in [
            [
                ("OTEL_SDK_DISABLED", "true"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ],
            [
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ],
        ] {
            assert!(config(&off).unwrap().is_none());
        }
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for (vars, named) in [
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "https://a:4318")],
                "http://",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ],
                "http/json",
            ),
            (
                vec![
                    ("OTEL_TRACES_EXPORTER", "zipkin"),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
                ],
                "OTEL_TRACES_EXPORTER",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
                    ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
                ],
                "key=value",
            ),
        ] {
            let err = config(&vars).unwrap_err();
            assert!(err.contains(named), "{err}");
        }
    }

    #[test]
    fn encodes_otlp_json() {
        let config = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318")])
            .unwrap()
            .unwrap();
        let span = SpanRecord {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_span_id: Some("b7ad6b7169203331".into()),
            method: "POST".into(),
            route: "/api/v1/auth/login".into(),
            status: 503,
            request_id: "r1".into(),
            start_unix_nanos: 1,
            end_unix_nanos: 2,
        };
        let v: serde_json::Value = serde_json::from_slice(&encode(&config, &[span])).unwrap();
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s["parentSpanId"], "b7ad6b7169203331");
        assert_eq!(s["name"], "POST /api/v1/auth/login");
        assert_eq!(s["startTimeUnixNano"], "1");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(
            v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "auth-accounts"
        );
    }
}
