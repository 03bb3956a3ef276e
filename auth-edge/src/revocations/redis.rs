//! Revocations from Redis: `SUBSCRIBE` to [`CHANNEL`], then the snapshot from the sorted set
//! [`SORTED_SET`] (member = sid, score = until).
//!
//! Subscribing before reading the snapshot closes the gap between the two: a revocation
//! published in between arrives as a message, one written before is in the set. Every reconnect
//! repeats both steps. A periodic PING on the subscription notices a dead link that TCP has not.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use secrecy::{ExposeSecret, SecretString};

use super::{FeedMessage, RevocationSet};
use crate::backoff::Backoff;
use crate::clock;
use crate::metrics::{Metrics, Source};
use crate::tls::TlsClient;

/// The pub/sub channel accounts publishes `{"type":"revoked","sid","until"}` on.
pub const CHANNEL: &str = auth_token::REDIS_REVOCATIONS_CHANNEL;
/// The sorted set holding every revocation still relevant.
pub const SORTED_SET: &str = auth_token::REDIS_REVOKED_SET;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PING_EVERY: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
enum RedisSourceError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("timed out")]
    Timeout,
    #[error("subscription closed")]
    Closed,
}

/// Follows Redis forever, reconnecting as needed.
pub async fn run(
    url: SecretString,
    tls: TlsClient,
    set: Arc<RevocationSet>,
    metrics: Arc<Metrics>,
) {
    metrics.source_configured(Source::Redis);
    // rediss:// trusts the system's roots, or only AUTH_EDGE_CA_FILE's certificates when given.
    let client = match tls.ca_pem() {
        Some(ca) if url.expose_secret().starts_with("rediss://") => redis::Client::build_with_tls(
            url.expose_secret(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            },
        ),
        _ => redis::Client::open(url.expose_secret()),
    };
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            // Config validation parses the URL first, so this is unreachable in practice.
            tracing::error!(error = %e, "REDIS_URL is invalid; Redis revocations are off");
            return;
        }
    };
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        let result = follow(&client, &set, &metrics, &mut backoff).await;
        metrics.source_up(Source::Redis, false);
        let delay = backoff.next_delay();
        match result {
            Err(RedisSourceError::Redis(e))
                if e.kind() == redis::ErrorKind::AuthenticationFailed
                    || e.code() == Some("NOAUTH")
                    || e.code() == Some("WRONGPASS")
                    || e.code() == Some("NOPERM") =>
            {
                metrics.source_refused(Source::Redis);
                tracing::error!(
                    error = %e,
                    retry_in = ?delay,
                    "redis refused the edge's credentials (REDIS_URL); revoked sessions are not seen"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "redis revocations unavailable; reconnecting");
            }
            Ok(()) => {}
        }
        tokio::time::sleep(delay).await;
    }
}

async fn timed<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
    limit: Duration,
) -> Result<T, RedisSourceError> {
    Ok(tokio::time::timeout(limit, f)
        .await
        .map_err(|_| RedisSourceError::Timeout)??)
}

async fn follow(
    client: &redis::Client,
    set: &RevocationSet,
    metrics: &Metrics,
    backoff: &mut Backoff,
) -> Result<(), RedisSourceError> {
    let pubsub = timed(client.get_async_pubsub(), CONNECT_TIMEOUT).await?;
    let (mut sink, mut stream): (PubSubSink, PubSubStream) = pubsub.split();
    timed(sink.subscribe(CHANNEL), CONNECT_TIMEOUT).await?;

    let now = clock::unix_now();
    let mut conn = timed(client.get_multiplexed_async_connection(), CONNECT_TIMEOUT).await?;
    // Scores are floats to Redis; `until` values are whole seconds well inside f64's exact range.
    let snapshot: Vec<(String, f64)> = timed(
        redis::cmd("ZRANGEBYSCORE")
            .arg(SORTED_SET)
            .arg(now)
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(&mut conn),
        CONNECT_TIMEOUT,
    )
    .await?;
    drop(conn);
    set.merge(
        snapshot
            .iter()
            .map(|(sid, until)| (sid.as_str(), *until as i64)),
        now,
    );
    tracing::info!(
        revocations = snapshot.len(),
        "redis revocation subscription ready"
    );
    metrics.source_up(Source::Redis, true);
    metrics.source_message(Source::Redis, clock::unix_now_ms());
    backoff.reset();

    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            message = stream.next() => {
                let message = message.ok_or(RedisSourceError::Closed)?;
                let now_ms = clock::unix_now_ms();
                metrics.source_message(Source::Redis, now_ms);
                match FeedMessage::parse(message.get_payload_bytes()) {
                    Ok(message) => {
                        if set.apply(&message, now_ms / 1000) {
                            metrics.revocation_event(Source::Redis, now_ms);
                            if let FeedMessage::Revoked(r) = &message {
                                tracing::debug!(sid = %r.sid, source = "redis", "revocation applied");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring an unreadable revocation message"),
                }
            }
            _ = ping.tick() => {
                // In subscribed mode the answer is a ["pong", ""] array, hence `Value`.
                timed(sink.ping::<redis::Value>(), PING_TIMEOUT).await?;
                metrics.source_message(Source::Redis, clock::unix_now_ms());
            }
        }
    }
}
