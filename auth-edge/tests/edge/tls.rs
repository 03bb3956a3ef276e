//! TLS on every trust channel: an `https://` JWKS and revocation stream, and `rediss://`, served
//! with a certificate from a throwaway CA: refused without `AUTH_EDGE_CA_FILE`, trusted with it.

use std::time::Duration;

use auth_edge::tls::TlsClient;
use reqwest::StatusCode;

use crate::helpers::*;

fn trusting(mut config: auth_edge::Config, ca: &TestCa) -> auth_edge::Config {
    let tls = TlsClient::load(Some(&ca.ca_file())).unwrap();
    config.verifier.tls = tls.clone();
    config.revocations.tls = tls;
    config
}

#[tokio::test]
async fn https_keys_and_stream_need_the_ca() {
    let ca = TestCa::new();
    let fake = FakeAccounts::start_tls(&[key_a()], ca.acceptor()).await;
    assert!(fake
        .jwks_url()
        .to_string()
        .starts_with("https://127.0.0.1:"));

    // System roots only: the certificate is refused, no key ever loads.
    let untrusting = spawn_edge_unready(edge_config(&fake)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!untrusting.verifier.keys().is_ready());
    assert_eq!(fake.stream_connections(), 0, "no stream without trust");
    assert!(untrusting
        .verifier
        .render_metrics()
        .contains("auth_edge_key_fetches_total{result=\"ok\"} 0"));

    // With the CA file: keys load over https, and the stream connects and carries revocations.
    let edge = spawn_edge(trusting(edge_config(&fake), &ca)).await;
    wait_until(Duration::from_secs(10), "stream connected", || {
        fake.stream_connections() >= 1
    })
    .await;
    let c = claims();
    let token = sign(&c, key_a());
    assert_eq!(status_of(&edge, &token).await, StatusCode::OK);
    fake.revoke(c.sid.as_str(), c.exp + 30);
    wait_until(Duration::from_secs(2), "revocation over https", || {
        edge.verifier.revocations().is_revoked(c.sid.as_str())
    })
    .await;
    assert_eq!(status_of(&edge, &token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rediss_needs_the_ca() {
    let ca = TestCa::new();
    let redis = start_redis_tls(&ca).await;
    let fake = FakeAccounts::start(&[key_a()]).await;
    let redis_url = format!("rediss://127.0.0.1:{}/", redis.port);
    let with_redis = |config: auth_edge::Config| {
        let mut config = config;
        config.revocations.url = None;
        config.revocations.redis_url = Some(redis_url.clone().into());
        config
    };
    let redis_up = |edge: &TestEdge| {
        edge.verifier
            .render_metrics()
            .contains("auth_edge_revocation_source_up{source=\"redis\"} 1")
    };

    // Never ready (fail-closed: never heard from its revocation source), so not waited for.
    let untrusting = spawn_edge_unready(with_redis(edge_config(&fake))).await;
    let edge = spawn_edge(trusting(with_redis(edge_config(&fake)), &ca)).await;
    wait_until(Duration::from_secs(10), "redis over TLS", || {
        redis_up(&edge)
    })
    .await;
    assert!(
        !redis_up(&untrusting),
        "the untrusted certificate was accepted"
    );

    // A revocation published over TLS arrives.
    let c = claims();
    let client = redis::Client::build_with_tls(
        redis_url.as_str(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(ca.ca_file()).unwrap()),
        },
    )
    .unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let line =
        serde_json::json!({"type": "revoked", "sid": c.sid.as_str(), "until": c.exp}).to_string();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(auth_token::REDIS_REVOCATIONS_CHANNEL)
        .arg(line)
        .query_async(&mut conn)
        .await
        .unwrap();
    wait_until(Duration::from_secs(2), "revocation over rediss", || {
        edge.verifier.revocations().is_revoked(c.sid.as_str())
    })
    .await;
}
