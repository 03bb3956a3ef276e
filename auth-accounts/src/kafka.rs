//! The Kafka relay: publishes the event outbox to `KAFKA_AUTH_EVENTS_TOPIC` (rdkafka).
//!
//! One replica at a time holds the relay lease, so rows are published once and in order. Each row
//! is sent with key = user id (Kafka keeps per-key order within a partition), the envelope JSON as
//! value and the event id as a header, by an idempotent producer with `acks=all`. A row is marked
//! delivered only after the broker acknowledged it. When the broker is down the relay retries the
//! oldest row with capped backoff and never skips it: nothing is lost and order is kept.
//!
//! Nothing is published twice either, where a plain outbox relay would:
//! - a row acknowledged while the database is away stays in memory as delivered-not-marked and is
//!   marked when the database answers, instead of being sent again;
//! - a relay that starts, takes the lease over, or replaces its producer first reads the tail of
//!   the topic and marks the pending rows it finds there delivered (a crash between an
//!   acknowledgement and its marking, or an acknowledgement that never arrived). The relay sends
//!   one row at a time, so at most one row can be in that state; the last 50 records are read.
//!
//! Consumers should still de-duplicate by `eventId` (the contract is at least once: a broker that
//! loses acknowledged records, or another writer's records filling the tail, defeat the check).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::leases;
use crate::metrics::{Metrics, ResultLabels};
use crate::store::Db;

pub(crate) fn producer(bootstrap: &str) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // librdkafka retries a send itself, with the same producer sequence number, for this long:
        // the broker discards the copies, so a slow or briefly unreachable broker does not turn
        // into duplicates the way a relay-level re-send (a new sequence number) would. Not longer:
        // a broker that lost its producer state (a restart) rejects those retries until this runs
        // out, and only then does the relay replace the producer and send again.
        .set("message.timeout.ms", "20000")
        .set("socket.timeout.ms", "5000")
        .set("client.id", "auth-accounts")
        .create()
}

/// Whether the broker answers a metadata request (health).
pub(crate) async fn ping(producer: &FutureProducer) -> bool {
    let client = producer.clone();
    tokio::task::spawn_blocking(move || {
        client
            .client()
            .fetch_metadata(None, Duration::from_secs(2))
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

#[derive(sqlx::FromRow)]
struct Row {
    event_id: String,
    topic: String,
    event_type: String,
    user_id: Option<String>,
    payload: String,
    attempts: i64,
    traceparent: Option<String>,
    request_id: Option<String>,
}

pub(crate) struct KafkaRelay {
    pub db: Db,
    pub producer: FutureProducer,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// This replica's name in the lease table.
    pub holder: String,
    /// `KAFKA_BOOTSTRAP_SERVERS`, to replace a producer that stopped making progress.
    pub bootstrap: String,
    /// Rows the broker acknowledged that are not marked delivered yet (the database was away).
    pub unmarked: Vec<String>,
    /// Whether the topic's tail must be checked for pending rows before sending (see the module
    /// documentation): at start, after taking the lease over, after replacing the producer.
    pub check_tail: bool,
}

/// How many records from the end of each partition the tail check reads.
const TAIL_DEPTH: i64 = 50;

const LEASE_SECS: i64 = 30;

impl KafkaRelay {
    /// Publishes while this replica holds the relay lease, until `shutdown` (then gives the lease
    /// up, so another replica takes over at once).
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(500);
        let mut failures = 0u32;
        loop {
            let now = self.clock.now();
            let leader =
                leases::acquire(&self.db, leases::KAFKA_RELAY, &self.holder, now, LEASE_SECS)
                    .await
                    .unwrap_or(false);
            let pause = if !leader {
                // Whoever held the lease may have died between an acknowledgement and its marking.
                self.check_tail = true;
                Duration::from_secs(2)
            } else if self.check_tail {
                match self.skip_published().await {
                    Ok(skipped) => {
                        if skipped > 0 {
                            tracing::info!(
                                skipped,
                                "kafka relay: rows already on the topic marked delivered"
                            );
                        }
                        self.check_tail = false;
                        Duration::ZERO
                    }
                    Err(err) => {
                        // Sending before knowing could publish a row twice: wait for the broker.
                        tracing::warn!(error = %err, "kafka relay: cannot read the topic's tail; will retry");
                        let pause = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(15));
                        pause
                    }
                }
            } else {
                match self.run_once().await {
                    Ok(Progress::Sent(n)) if n > 0 => {
                        backoff = Duration::from_millis(500);
                        failures = 0;
                        Duration::ZERO
                    }
                    Ok(Progress::Sent(_)) => {
                        failures = 0;
                        Duration::from_millis(250)
                    }
                    Ok(Progress::Stuck) => {
                        failures += 1;
                        if failures >= 2 || self.producer.client().fatal_error().is_some() {
                            self.replace_producer();
                        }
                        let pause = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(15));
                        pause
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "kafka relay: database error");
                        Duration::from_secs(1)
                    }
                }
            };
            if !crate::tasks::pause(&shutdown, pause).await {
                if leader {
                    let _ = leases::release(&self.db, leases::KAFKA_RELAY, &self.holder).await;
                }
                return;
            }
        }
    }

    /// An idempotent producer can stay stuck for good: after a fatal error, or when the broker lost
    /// its producer state (a rebuilt cluster answers every retry with UNKNOWN_PRODUCER_ID until the
    /// message times out). A new producer gets a new producer id. Nothing is lost: a row is marked
    /// delivered only after an acknowledgement, and the failed row is sent again.
    fn replace_producer(&mut self) {
        match producer(&self.bootstrap) {
            Ok(fresh) => {
                tracing::warn!("kafka relay: deliveries keep failing; starting a new producer");
                // The old one may have delivered a record whose acknowledgement never came.
                self.check_tail = true;
                let old = std::mem::replace(&mut self.producer, fresh);
                // Dropping a producer flushes and joins its threads: not on an async worker.
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(err) => tracing::warn!(error = %err, "kafka relay: cannot create a producer"),
        }
    }

    /// Marks delivered the rows acknowledged while the database was away.
    async fn mark_unmarked(&mut self) -> sqlx::Result<()> {
        while let Some(event_id) = self.unmarked.last() {
            sqlx::query(
                "UPDATE outbox_events SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, last_error = NULL
                 WHERE event_id = $2 AND status = 'pending'",
            )
            .bind(self.clock.now())
            .bind(event_id)
            .execute(&self.db)
            .await?;
            self.unmarked.pop();
        }
        Ok(())
    }

    /// Marks delivered the pending rows found among the last records of the topic(s) they are
    /// for; returns how many.
    async fn skip_published(&mut self) -> Result<u64, String> {
        self.mark_unmarked().await.map_err(|e| e.to_string())?;
        let topics: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT topic FROM outbox_events WHERE status = 'pending'")
                .fetch_all(&self.db)
                .await
                .map_err(|e| e.to_string())?;
        let mut skipped = 0;
        for (topic,) in topics {
            let bootstrap = self.bootstrap.clone();
            let read = topic.clone();
            let ids = tokio::task::spawn_blocking(move || published_tail(&bootstrap, &read))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            for event_id in ids {
                skipped += sqlx::query(
                    "UPDATE outbox_events SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, last_error = NULL
                     WHERE event_id = $2 AND topic = $3 AND status = 'pending'",
                )
                .bind(self.clock.now())
                .bind(&event_id)
                .bind(&topic)
                .execute(&self.db)
                .await
                .map_err(|e| e.to_string())?
                .rows_affected();
            }
        }
        Ok(skipped)
    }

    /// Sends pending rows oldest first, stopping at the first failure so order is kept.
    pub(crate) async fn run_once(&mut self) -> sqlx::Result<Progress> {
        self.mark_unmarked().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT event_id, topic, event_type, user_id, payload, attempts, traceparent, request_id FROM outbox_events
             WHERE status = 'pending' ORDER BY created_at, event_id LIMIT 100",
        )
        .fetch_all(&self.db)
        .await?;
        let mut sent = 0;
        for row in rows {
            let key = row.user_id.clone().unwrap_or_else(|| row.event_id.clone());
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "event_id",
                    value: Some(row.event_id.as_str()),
                })
                .insert(Header {
                    key: "event_type",
                    value: Some(row.event_type.as_str()),
                });
            // W3C Trace Context's Kafka binding: the `traceparent` header, as in HTTP.
            let headers = match &row.traceparent {
                Some(tp) => headers.insert(Header {
                    key: auth_token::TRACEPARENT,
                    value: Some(tp.as_str()),
                }),
                None => headers,
            };
            let headers = match &row.request_id {
                Some(id) => headers.insert(Header {
                    key: "request_id",
                    value: Some(id.as_str()),
                }),
                None => headers,
            };
            let record = FutureRecord::to(&row.topic)
                .key(&key)
                .payload(&row.payload)
                .headers(headers);
            match self.producer.send(record, Duration::from_secs(30)).await {
                Ok(_) => {
                    self.metrics
                        .kafka_deliveries
                        .get_or_create(&ResultLabels {
                            result: "delivered".into(),
                        })
                        .inc();
                    // Remembered until marked: a database error now must not send it again.
                    self.unmarked.push(row.event_id.clone());
                    self.mark_unmarked().await?;
                    sent += 1;
                }
                Err((err, _)) => {
                    self.metrics
                        .kafka_deliveries
                        .get_or_create(&ResultLabels {
                            result: "retry".into(),
                        })
                        .inc();
                    if row.attempts % 10 == 0 {
                        tracing::warn!(event_id = %row.event_id, attempts = row.attempts + 1, error = %err, "kafka relay: delivery failed; will retry");
                    }
                    sqlx::query("UPDATE outbox_events SET attempts = attempts + 1, last_error = $1 WHERE event_id = $2")
                        .bind(err.to_string())
                        .bind(&row.event_id)
                        .execute(&self.db)
                        .await?;
                    return Ok(Progress::Stuck);
                }
            }
        }
        Ok(Progress::Sent(sent))
    }
}

/// The `event_id` headers of the last [`TAIL_DEPTH`] records of every partition of `topic`
/// (blocking: a consumer assigned to the tail of each partition, committing nothing).
fn published_tail(bootstrap: &str, topic: &str) -> rdkafka::error::KafkaResult<Vec<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "auth-accounts-relay-tail")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("socket.timeout.ms", "5000")
        .create()?;
    let timeout = Duration::from_secs(5);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ids = Vec::new();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        if high <= low {
            continue;
        }
        let start = low.max(high - TAIL_DEPTH);
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
        consumer.assign(&assignment)?;
        let deadline = std::time::Instant::now() + timeout;
        let mut read = 0;
        while read < high - start {
            if std::time::Instant::now() > deadline {
                return Err(rdkafka::error::KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                ));
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    read += 1;
                    let id = message.headers().and_then(|h| {
                        h.iter()
                            .find(|h| h.key == "event_id")
                            .and_then(|h| h.value)
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .map(str::to_owned)
                    });
                    ids.extend(id);
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                Some(Err(err)) => return Err(err),
                None => {}
            }
        }
    }
    Ok(ids)
}

pub(crate) enum Progress {
    Sent(usize),
    Stuck,
}
