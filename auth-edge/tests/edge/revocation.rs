//! Revocations pushed to the edge: the accounts stream and Redis, each refused within 1 s.

use std::time::{Duration, Instant};

use auth_edge::Config;
use reqwest::StatusCode;

use crate::helpers::*;

/// Polls until the token is refused; returns how long that took.
async fn refused_within(edge: &TestEdge, token: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if status_of(edge, token).await == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "still accepted {:?} after the revocation",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn stream_revocation_is_refused_within_one_second() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let edge = spawn_edge(edge_config(&fake)).await;
    wait_until(Duration::from_secs(5), "stream connected", || {
        fake.stream_connections() == 1
    })
    .await;
    let (c, other) = (claims(), claims());
    let token = sign(&c, key_a());
    let other_token = sign(&other, key_a());
    // Accepted (and cached) first, so the refusal proves the check runs on cache hits.
    assert_eq!(status_of(&edge, &token).await, StatusCode::OK);
    assert_eq!(status_of(&edge, &token).await, StatusCode::OK);

    fake.revoke(c.sid.as_str(), c.exp + 30);
    let took = refused_within(&edge, &token, Duration::from_secs(1)).await;
    eprintln!("stream revocation visible after {took:?}");
    assert_eq!(status_of(&edge, &other_token).await, StatusCode::OK);
    assert_eq!(edge.verifier.revocations().len(), 1);
}

#[tokio::test]
async fn stream_snapshot_is_loaded_on_connect_and_on_every_reconnect() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let (early, late) = (claims(), claims());
    fake.revoke_silently(early.sid.as_str(), early.exp);
    let edge = spawn_edge(edge_config(&fake)).await;
    wait_until(Duration::from_secs(5), "snapshot", || {
        edge.verifier.revocations().is_revoked(early.sid.as_str())
    })
    .await;
    assert_eq!(
        status_of(&edge, &sign(&early, key_a())).await,
        StatusCode::UNAUTHORIZED
    );

    // Accounts restarts: the stream ends; a revocation happens while the edge is disconnected.
    let late_token = sign(&late, key_a());
    assert_eq!(status_of(&edge, &late_token).await, StatusCode::OK);
    fake.drop_streams();
    fake.revoke_silently(late.sid.as_str(), late.exp);
    wait_until(Duration::from_secs(10), "reconnect", || {
        fake.stream_connections() >= 2
    })
    .await;
    refused_within(&edge, &late_token, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn stream_authenticates_with_the_configured_token() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    fake.require_token("edge-secret");
    let mut config = edge_config(&fake);
    config.revocations.token = Some("edge-secret".into());
    let edge = spawn_edge(config).await;
    wait_until(Duration::from_secs(5), "stream connected", || {
        fake.stream_connections() == 1
    })
    .await;
    let c = claims();
    let token = sign(&c, key_a());
    assert_eq!(status_of(&edge, &token).await, StatusCode::OK);
    fake.revoke(c.sid.as_str(), c.exp);
    refused_within(&edge, &token, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn silent_stream_is_replaced_after_the_idle_timeout() {
    // The fake sends its snapshot and then nothing (no pings): a dead link TCP has not noticed.
    let fake = FakeAccounts::start(&[key_a()]).await;
    let set = std::sync::Arc::new(auth_edge::revocations::RevocationSet::new(30));
    let metrics = std::sync::Arc::default();
    let task = tokio::spawn(auth_edge::revocations::stream::run(
        fake.stream_url(),
        auth_edge::tls::TlsClient::default(),
        None,
        set.clone(),
        metrics,
        Duration::from_millis(300),
    ));
    wait_until(Duration::from_secs(5), "reconnect after idle", || {
        fake.stream_connections() >= 3
    })
    .await;
    task.abort();
}

fn redis_config(fake: &FakeAccounts, redis: &RedisServer) -> Config {
    let mut config = edge_config(fake);
    config.revocations.url = None;
    config.revocations.redis_url = Some(redis.url().into());
    config
}

async fn redis_conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis.connection().await
}

/// What accounts does on a revocation: remember it in the sorted set, then publish it.
async fn redis_revoke(
    conn: &mut redis::aio::MultiplexedConnection,
    sid: &str,
    until: i64,
    publish: bool,
) {
    let _: i64 = redis::cmd("ZADD")
        .arg("auth:revoked")
        .arg(until)
        .arg(sid)
        .query_async(conn)
        .await
        .unwrap();
    if publish {
        let message = serde_json::json!({"type": "revoked", "sid": sid, "until": until});
        let _: i64 = redis::cmd("PUBLISH")
            .arg("auth:revocations")
            .arg(message.to_string())
            .query_async(conn)
            .await
            .unwrap();
    }
}

fn redis_up(edge: &TestEdge) -> bool {
    edge.verifier
        .render_metrics()
        .contains("auth_edge_revocation_source_up{source=\"redis\"} 1")
}

/// Waits until Redis itself reports a subscriber on the channel (the edge's metric may still
/// say "up" for a moment after a Redis restart).
async fn wait_subscribed(conn: &mut redis::aio::MultiplexedConnection) {
    let start = Instant::now();
    loop {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("auth:revocations")
            .query_async(conn)
            .await
            .unwrap();
        if n > 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "edge never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn redis_revocation_is_refused_within_one_second() {
    let redis = start_redis().await;
    let mut conn = redis_conn(&redis).await;
    let fake = FakeAccounts::start(&[key_a()]).await;
    let (before, during, stale) = (claims(), claims(), claims());
    // Already revoked before the edge starts: comes from the sorted set snapshot. A stale entry
    // (all its tokens expired long ago) is not loaded.
    redis_revoke(&mut conn, before.sid.as_str(), before.exp, false).await;
    redis_revoke(&mut conn, stale.sid.as_str(), now() - 3600, false).await;
    let edge = spawn_edge(redis_config(&fake, &redis)).await;
    wait_subscribed(&mut conn).await;
    wait_until(Duration::from_secs(5), "snapshot loaded", || {
        redis_up(&edge)
    })
    .await;
    assert_eq!(
        status_of(&edge, &sign(&before, key_a())).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(!edge.verifier.revocations().is_revoked(stale.sid.as_str()));

    let token = sign(&during, key_a());
    assert_eq!(status_of(&edge, &token).await, StatusCode::OK);
    redis_revoke(&mut conn, during.sid.as_str(), during.exp, true).await;
    let took = refused_within(&edge, &token, Duration::from_secs(1)).await;
    eprintln!("redis revocation visible after {took:?}");
}

#[tokio::test]
async fn redis_outage_keeps_the_set_and_resubscribes() {
    let redis = start_redis().await;
    let fake = FakeAccounts::start(&[key_a()]).await;
    let edge = spawn_edge(redis_config(&fake, &redis)).await;
    let (first, second) = (claims(), claims());
    let mut conn = redis_conn(&redis).await;
    wait_subscribed(&mut conn).await;
    redis_revoke(&mut conn, first.sid.as_str(), first.exp, true).await;
    refused_within(&edge, &sign(&first, key_a()), Duration::from_secs(1)).await;

    // Redis restarts empty (no persistence): what the edge learnt stays; tokens keep verifying.
    let redis = restart_redis(redis).await;
    let second_token = sign(&second, key_a());
    assert_eq!(status_of(&edge, &second_token).await, StatusCode::OK);
    assert!(edge.verifier.revocations().is_revoked(first.sid.as_str()));

    let mut conn = redis_conn(&redis).await;
    wait_subscribed(&mut conn).await;
    redis_revoke(&mut conn, second.sid.as_str(), second.exp, true).await;
    refused_within(&edge, &second_token, Duration::from_secs(1)).await;
}

async fn metrics_text(edge: &TestEdge) -> String {
    client()
        .get(edge.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn ready(edge: &TestEdge) -> StatusCode {
    client()
        .get(edge.admin_url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

/// An edge whose revocation stream refuses its token, with a one-second staleness bound.
async fn edge_refused_by_the_feed(
    mode: auth_edge::revocations::FailMode,
) -> (FakeAccounts, TestEdge) {
    let fake = FakeAccounts::start(&[key_a()]).await;
    fake.require_token("the-right-token");
    let mut config = edge_config(&fake);
    config.revocations.token = Some("a-wrong-token".into());
    config.verifier.staleness.mode = mode;
    config.verifier.staleness.max_staleness = Duration::from_secs(1);
    let edge = spawn_edge_unready(config).await;
    wait_until(Duration::from_secs(10), "keys loaded", || {
        edge.verifier.keys().is_ready()
    })
    .await;
    (fake, edge)
}

#[tokio::test]
async fn closed_fail_mode_refuses_tokens_and_readiness_when_the_feed_refuses_the_edge() {
    let (_fake, edge) = edge_refused_by_the_feed(auth_edge::revocations::FailMode::Closed).await;
    let token = sign(&claims(), key_a());
    // Never heard from the feed: not ready at once (keys alone are not enough)...
    assert_eq!(ready(&edge).await, StatusCode::SERVICE_UNAVAILABLE);
    // ...and past the bound, "cannot decide" instead of trusting the token.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = client()
        .get(edge.url("/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get("x-user-id").is_none());
    // No token is still a plain 401.
    let r = client().get(edge.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let metrics = metrics_text(&edge).await;
    assert!(
        metrics.contains("auth_edge_revocations_stale 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("auth_edge_revocation_source_refusals_total{source=\"stream\"} 0"),
        "the refusal is counted:\n{metrics}"
    );
}

#[tokio::test]
async fn open_fail_mode_keeps_answering_but_says_so() {
    let (_fake, edge) = edge_refused_by_the_feed(auth_edge::revocations::FailMode::Open).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(ready(&edge).await, StatusCode::OK);
    assert_eq!(
        status_of(&edge, &sign(&claims(), key_a())).await,
        StatusCode::OK
    );
    let metrics = metrics_text(&edge).await;
    assert!(
        metrics.contains("auth_edge_revocations_stale 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn closed_fail_mode_recovers_when_the_feed_comes_back() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let mut config = edge_config(&fake);
    config.verifier.staleness.max_staleness = Duration::from_secs(1);
    let edge = spawn_edge(config).await;
    let token = sign(&claims(), key_a());
    assert_eq!(status_of(&edge, &token).await, StatusCode::OK);
    assert_eq!(ready(&edge).await, StatusCode::OK);
    // The feed refuses reconnections (a wrong token rolled out), and the stream ends.
    fake.require_token("rotated");
    fake.drop_streams();
    wait_until(Duration::from_secs(5), "stale", || {
        edge.verifier.revocations_stale()
    })
    .await;
    assert_eq!(
        status_of(&edge, &token).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(ready(&edge).await, StatusCode::SERVICE_UNAVAILABLE);
    // The operator fixes it: the next reconnection (backoff) restores both.
    fake.clear_required_token();
    wait_until(Duration::from_secs(20), "fresh again", || {
        !edge.verifier.revocations_stale()
    })
    .await;
    assert_eq!(status_of(&edge, &token).await, StatusCode::OK);
    assert_eq!(ready(&edge).await, StatusCode::OK);
}
