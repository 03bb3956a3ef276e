//! Reads a Kafka topic from the beginning until it has been quiet for a while and prints one line
//! per message: `<eventId>\t<eventType>\t<key>`. Used by `scripts/fault-test` to check that every
//! outbox event reached the topic exactly once.
//!
//! ```text
//! cargo run -p auth-accounts --example read_topic -- BROKERS TOPIC [IDLE_SECONDS]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let brokers = args.get(1).expect("BROKERS");
    let topic = args.get(2).expect("TOPIC");
    let idle: u64 = args
        .get(3)
        .map(|s| s.parse().expect("IDLE_SECONDS"))
        .unwrap_or(5);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("read-topic-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut quiet = Duration::ZERO;
    let step = Duration::from_millis(500);
    while quiet < Duration::from_secs(idle) {
        match consumer.poll(step) {
            Some(Ok(msg)) => {
                quiet = Duration::ZERO;
                let payload: serde_json::Value = msg
                    .payload()
                    .and_then(|p| serde_json::from_slice(p).ok())
                    .unwrap_or_default();
                let key = msg
                    .key()
                    .map(|k| String::from_utf8_lossy(k).to_string())
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}",
                    payload["eventId"].as_str().unwrap_or("?"),
                    payload["eventType"].as_str().unwrap_or("?"),
                    key
                );
            }
            Some(Err(err)) => {
                eprintln!("read_topic: {err}");
                quiet += step;
            }
            None => quiet += step,
        }
    }
}
