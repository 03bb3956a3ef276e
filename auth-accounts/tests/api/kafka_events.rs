//! The Kafka relay against a real broker (tansu): every outbox event reaches `auth.events` once, in
//! order per user, with key = user id and the event id, the trace and the request id as headers; nothing is lost while the
//! broker is down; two replicas never both publish.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{email, json_body, spawn_app_with, spawn_on, Backend, Env, TestApp, PASSWORD};
use crate::peers::{consume_until, KafkaRecord, Tansu};

both!(events_are_published_once_with_key_and_header);

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    event_id: String,
    event_type: String,
    user_id: Option<String>,
    payload: String,
    status: String,
    traceparent: Option<String>,
    request_id: Option<String>,
}

async fn rows(app: &TestApp) -> Vec<Row> {
    sqlx::query_as(
        "SELECT event_id, event_type, user_id, payload, status, traceparent, request_id FROM outbox_events ORDER BY created_at, event_id",
    )
    .fetch_all(&app.state.db)
    .await
    .expect("read outbox_events")
}

/// Waits until no outbox event is pending; returns all rows.
async fn wait_delivered(app: &TestApp, timeout: Duration) -> Vec<Row> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let rows = rows(app).await;
        if rows.iter().all(|r| r.status == "delivered") {
            return rows;
        }
        if std::time::Instant::now() > deadline {
            let stuck: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
                "SELECT event_type, status, attempts, last_error FROM outbox_events WHERE status <> 'delivered' ORDER BY created_at",
            )
            .fetch_all(&app.state.db)
            .await
            .unwrap();
            panic!("events not delivered after {timeout:?}: {stuck:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn health(app: &TestApp) -> Value {
    let response = app.get("health", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await
}

/// Register, log in, refresh, log out.
async fn flow(app: &TestApp, user: &str) {
    app.register(user, PASSWORD).await;
    let session = app.login(user, PASSWORD).await;
    let response = app.refresh_body(&session.refresh).await;
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let response = app.post_json_bearer("logout", &json!({}), access).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Reads the topic until every id in `ids` was seen (and a little longer, to catch duplicates).
async fn read_events(bootstrap: &str, ids: &HashSet<String>) -> Vec<KafkaRecord> {
    let want = ids.clone();
    // Anything sent twice would follow right behind: keep reading a second after the last.
    consume_until(
        bootstrap,
        Duration::from_secs(30),
        Duration::from_secs(1),
        move |records| {
            let seen: HashSet<&str> = records.iter().map(KafkaRecord::event_id).collect();
            want.iter().all(|id| seen.contains(id.as_str()))
        },
    )
    .await
}

/// Asserts each record matches its outbox row: value = envelope, key = user id (event id when the
/// event has no user), header event_id, and each event exactly once.
fn assert_matches(records: &[KafkaRecord], rows: &[Row]) {
    let by_id: HashMap<&str, &Row> = rows.iter().map(|r| (r.event_id.as_str(), r)).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for record in records {
        *counts.entry(record.event_id()).or_default() += 1;
        let Some(row) = by_id.get(record.event_id()) else {
            continue;
        };
        let envelope: Value = serde_json::from_str(&row.payload).unwrap();
        assert_eq!(record.value, envelope);
        let v = &record.value;
        assert_eq!(v["eventType"], row.event_type.as_str());
        assert_eq!(v["source"], "auth-accounts");
        assert!(
            chrono::DateTime::parse_from_rfc3339(v["occurredAt"].as_str().unwrap()).is_ok(),
            "{v}"
        );
        assert!(v["data"].is_object(), "{v}");
        assert_eq!(v["userId"], json!(row.user_id));
        let key = row.user_id.as_deref().unwrap_or(&row.event_id);
        assert_eq!(record.key.as_deref(), Some(key), "key of {v}");
        assert_eq!(
            record.headers.get("event_id"),
            Some(&row.event_id),
            "{record:?}"
        );
        assert_eq!(
            record.headers.get("event_type"),
            Some(&row.event_type),
            "{record:?}"
        );
        // Every event here was recorded by a request: its trace and request id are headers.
        let traceparent = row.traceparent.as_ref().expect("a traceparent");
        assert!(auth_token::TraceParent::parse(traceparent).is_some());
        assert_eq!(record.headers.get("traceparent"), Some(traceparent));
        assert_eq!(record.headers.get("request_id"), row.request_id.as_ref());
    }
    for row in rows {
        assert_eq!(
            counts.get(row.event_id.as_str()).copied().unwrap_or(0),
            1,
            "{} {} delivered {} time(s)",
            row.event_type,
            row.event_id,
            counts.get(row.event_id.as_str()).copied().unwrap_or(0)
        );
    }
}

/// The event types of one user's records, in topic order.
fn user_types(records: &[KafkaRecord], user_id: &str) -> Vec<String> {
    let mut mine: Vec<&KafkaRecord> = records
        .iter()
        .filter(|r| r.value["userId"] == user_id)
        .collect();
    mine.sort_by_key(|r| r.offset);
    mine.iter()
        .map(|r| r.value["eventType"].as_str().unwrap().to_string())
        .collect()
}

async fn events_are_published_once_with_key_and_header(backend: Backend) {
    let tansu = Tansu::start().await;
    let bootstrap = tansu.bootstrap();
    let app = spawn_app_with(backend, &[("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str())]).await;
    let body = health(&app).await;
    assert_eq!(body["components"]["kafka"], "ok", "{body}");
    assert_eq!(body["status"], "ok", "{body}");

    let user = email("kafka");
    flow(&app, &user).await;
    let rows = wait_delivered(&app, Duration::from_secs(30)).await;
    let mut types: Vec<&str> = rows.iter().map(|r| r.event_type.as_str()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "user.login",
            "user.logout",
            "user.registered",
            "user.token_refreshed",
            "user.verification_started"
        ]
    );
    let ids: HashSet<String> = rows.iter().map(|r| r.event_id.clone()).collect();
    let records = read_events(&bootstrap, &ids).await;
    assert_matches(&records, &rows);
    // Per-user order is the order things happened in.
    let user_id = rows
        .iter()
        .find_map(|r| r.user_id.clone())
        .expect("a user id");
    assert_eq!(
        user_types(&records, &user_id),
        [
            "user.registered",
            "user.login",
            "user.token_refreshed",
            "user.logout"
        ]
    );
    let delivered_at: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT delivered_at FROM outbox_events")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert!(delivered_at.iter().all(Option::is_some));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_for_the_broker_and_arrive_once() {
    let mut tansu = Tansu::start().await;
    let port = tansu.port;
    let bootstrap = tansu.bootstrap();
    let app = spawn_app_with(
        Backend::Postgres,
        &[("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str())],
    )
    .await;
    let user = email("outage");
    app.register(&user, PASSWORD).await;
    let before = wait_delivered(&app, Duration::from_secs(30)).await;
    let delivered_before: HashSet<String> = before.iter().map(|r| r.event_id.clone()).collect();

    // The broker dies (with its in-memory log).
    tansu.stop();
    for _ in 0..3 {
        app.login(&user, PASSWORD).await;
    }
    let body = health(&app).await;
    assert_eq!(body["components"]["kafka"], "down", "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting: Vec<Row> = rows(&app)
        .await
        .into_iter()
        .filter(|r| !delivered_before.contains(&r.event_id))
        .collect();
    assert_eq!(waiting.len(), 3, "{waiting:#?}");
    assert!(
        waiting.iter().all(|r| r.status == "pending"),
        "{waiting:#?}"
    );

    // A new broker on the same address (empty: the topic is created again).
    let tansu = Tansu::start_on(port).await;
    let after = wait_delivered(&app, Duration::from_secs(60)).await;
    let ids: HashSet<String> = waiting.iter().map(|r| r.event_id.clone()).collect();
    let records = read_events(&tansu.bootstrap(), &ids).await;
    let waited: Vec<Row> = after
        .into_iter()
        .filter(|r| ids.contains(&r.event_id))
        .collect();
    assert_matches(&records, &waited);
    let body = health(&app).await;
    assert_eq!(body["components"]["kafka"], "ok", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_publish_each_event_once() {
    let tansu = Tansu::start().await;
    let bootstrap = tansu.bootstrap();
    let env = Env::new(Backend::Sqlite).await;
    let vars = [("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str())];
    let a = spawn_on(&env, &vars).await;
    let b = spawn_on(&env, &vars).await;
    let (first, second) = (email("replica-a"), email("replica-b"));
    tokio::join!(flow(&a, &first), flow(&b, &second));
    flow(&a, &email("replica-c")).await;
    let rows = wait_delivered(&a, Duration::from_secs(30)).await;
    assert_eq!(rows.len(), 15, "{rows:#?}");
    let ids: HashSet<String> = rows.iter().map(|r| r.event_id.clone()).collect();
    let records = read_events(&bootstrap, &ids).await;
    assert_eq!(records.len(), rows.len(), "{records:#?}");
    assert_matches(&records, &rows);
    let users: HashSet<&str> = rows.iter().filter_map(|r| r.user_id.as_deref()).collect();
    assert_eq!(users.len(), 3);
    for user_id in users {
        assert_eq!(
            user_types(&records, user_id),
            [
                "user.registered",
                "user.login",
                "user.token_refreshed",
                "user.logout"
            ]
        );
    }
    // One replica holds the relay lease.
    let holders: Vec<String> =
        sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'kafka-relay'")
            .fetch_all(&a.state.db)
            .await
            .unwrap();
    assert_eq!(holders.len(), 1);
    assert!(!holders[0].is_empty());
}

/// A relay that died between the broker's acknowledgement and marking the row delivered leaves a
/// pending row that is already on the topic. The next relay finds it in the topic's tail and
/// marks it instead of publishing it a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_already_on_the_topic_is_not_published_again() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let tansu = Tansu::start().await;
    let bootstrap = tansu.bootstrap();
    let env = Env::new(Backend::Sqlite).await;
    // Without Kafka, every event stays pending.
    let quiet = spawn_on(&env, &[]).await;
    flow(&quiet, &email("crashed-relay")).await;
    let pending = rows(&quiet).await;
    assert_eq!(pending.len(), 5);
    assert!(pending.iter().all(|r| r.status == "pending"));
    drop(quiet);

    // What the dead relay got acknowledged: the oldest row, on the topic with its event id.
    let first = &pending[0];
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "event_id",
            value: Some(first.event_id.as_str()),
        })
        .insert(Header {
            key: "event_type",
            value: Some(first.event_type.as_str()),
        })
        .insert(Header {
            key: "traceparent",
            value: first.traceparent.as_deref(),
        })
        .insert(Header {
            key: "request_id",
            value: first.request_id.as_deref(),
        });
    let key = first
        .user_id
        .clone()
        .unwrap_or_else(|| first.event_id.clone());
    producer
        .send(
            FutureRecord::to("auth.events")
                .key(&key)
                .payload(&first.payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .expect("the first record on the topic");

    let relay = spawn_on(&env, &[("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str())]).await;
    let rows = wait_delivered(&relay, Duration::from_secs(30)).await;
    let ids: HashSet<String> = rows.iter().map(|r| r.event_id.clone()).collect();
    let records = read_events(&bootstrap, &ids).await;
    // Each event exactly once, the first one included, in order.
    assert_matches(&records, &rows);
    let order: Vec<&str> = records.iter().map(KafkaRecord::event_id).collect();
    let expected: Vec<&str> = pending.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(order, expected);
}
