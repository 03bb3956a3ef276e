//! A Kafka-protocol broker (tansu, `$AUTH_TEST_TANSU`) with in-memory storage, and a consumer
//! that reads the records back (librdkafka, like the service's producer).

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

use crate::fs::unique;
use crate::net::free_port;
use crate::process::{peer_path, Process};

/// The topic accounts publishes its domain events to.
pub const TOPIC: &str = "auth.events";

/// A tansu broker with in-memory storage and the `auth.events` topic (one partition).
#[derive(Debug)]
pub struct Tansu {
    /// The loopback port it listens on.
    pub port: u16,
    process: Process,
}

impl Tansu {
    /// A broker on a free port, once the topic exists.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// A fresh broker on `port` (memory storage: the topic is created again, empty).
    pub async fn start_on(port: u16) -> Self {
        let bin = peer_path("AUTH_TEST_TANSU");
        let url = format!("tcp://127.0.0.1:{port}");
        let mut process = Process::spawn(
            "tansu",
            Command::new(&bin)
                .args(["broker", "--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                .env("RUST_LOG", "warn"),
        );
        process.wait_for_port(port, Duration::from_secs(20)).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut create = Command::new(&bin);
            create
                .args([
                    "topic",
                    "create",
                    TOPIC,
                    "--partitions",
                    "1",
                    "--broker",
                    &url,
                ])
                .env("RUST_LOG", "warn");
            let out = tokio::task::spawn_blocking(move || create.output())
                .await
                .expect("the tansu thread")
                .expect("run tansu topic create");
            if out.status.success() {
                break;
            }
            process.assert_running();
            assert!(
                Instant::now() < deadline,
                "tansu topic create {TOPIC} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self { port, process }
    }

    /// `bootstrap.servers` for a client: `127.0.0.1:{port}`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (an outage; its in-memory data is gone).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// One record read back from the topic.
#[derive(Debug, Clone)]
pub struct KafkaRecord {
    /// The record key (the user id).
    pub key: Option<String>,
    /// The value, parsed as JSON (`Null` without one).
    pub value: Value,
    /// The record headers, values read as UTF-8.
    pub headers: HashMap<String, String>,
    /// Its offset in the partition.
    pub offset: i64,
}

impl KafkaRecord {
    /// The event id in the value (`eventId`), empty without one.
    pub fn event_id(&self) -> &str {
        self.value["eventId"].as_str().unwrap_or("")
    }
}

/// Reads `auth.events` (partition 0) from the beginning until `done` says the records read so far
/// are enough (then keeps reading for `linger`, so a duplicate right behind is caught), or panics
/// after `timeout`.
pub async fn consume_until(
    bootstrap: &str,
    timeout: Duration,
    linger: Duration,
    done: impl Fn(&[KafkaRecord]) -> bool + Send + 'static,
) -> Vec<KafkaRecord> {
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", unique("auth-tests"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("create a Kafka consumer");
        let mut partitions = TopicPartitionList::new();
        partitions
            .add_partition_offset(TOPIC, 0, Offset::Beginning)
            .expect("partition 0");
        consumer.assign(&partitions).expect("assign partition 0");
        let deadline = Instant::now() + timeout;
        let mut records = Vec::new();
        let mut linger_until: Option<Instant> = None;
        loop {
            match linger_until {
                Some(until) if Instant::now() >= until => return records,
                Some(_) => {}
                None if done(&records) => linger_until = Some(Instant::now() + linger),
                None => {}
            }
            assert!(
                linger_until.is_some() || Instant::now() < deadline,
                "timed out after {timeout:?} reading {TOPIC}; read so far: {records:#?}"
            );
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                // Transient (the broker is still electing, a fetch failed): keep polling.
                Some(Err(_)) => {}
                Some(Ok(message)) => {
                    let headers = message
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let value = message
                        .payload()
                        .map(|p| {
                            serde_json::from_slice(p).unwrap_or_else(|e| {
                                panic!(
                                    "record value is not JSON ({e}): {}",
                                    String::from_utf8_lossy(p)
                                )
                            })
                        })
                        .unwrap_or(Value::Null);
                    records.push(KafkaRecord {
                        key: message
                            .key()
                            .map(|k| String::from_utf8_lossy(k).into_owned()),
                        value,
                        headers,
                        offset: message.offset(),
                    });
                }
            }
        }
    })
    .await
    .expect("the consumer thread")
}
