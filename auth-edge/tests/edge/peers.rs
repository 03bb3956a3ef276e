//! The edge behind real proxies: nginx `auth_request`, Caddy `forward_auth`, Envoy `ext_authz`
//! (HTTP service and gRPC). Each runs the same scenario against an upstream that echoes the
//! identity headers it receives; the sidecar tests (`sidecar.rs`) run it too.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

struct Setup {
    fake: FakeAccounts,
    edge: TestEdge,
    upstream: SocketAddr,
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

async fn setup_with(adjust: impl FnOnce(&mut auth_edge::Config)) -> Setup {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let mut config = edge_config(&fake);
    adjust(&mut config);
    let edge = spawn_edge(config).await;
    wait_until(Duration::from_secs(5), "stream connected", || {
        fake.stream_connections() == 1
    })
    .await;
    let upstream = start_upstream().await;
    Setup {
        fake,
        edge,
        upstream,
    }
}

/// What the upstream saw, or the status the proxy answered with instead.
pub async fn call(rb: reqwest::RequestBuilder) -> Result<Value, (StatusCode, Option<String>)> {
    let r = rb.send().await.expect("proxy answers");
    let status = r.status();
    if status != StatusCode::OK {
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        return Err((status, challenge));
    }
    Ok(r.json().await.expect("upstream JSON"))
}

pub fn seen(v: &Value, header: &str) -> Vec<String> {
    v[header]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The shared scenario: identity reaches the upstream, spoofing fails, rotation, bad tokens,
/// revocation within a second. `fake` is the accounts stand-in the edge under test reads.
pub async fn scenario(peer: &Peer, fake: &FakeAccounts) {
    let name = peer.name;
    let client = client();
    let url = peer.url("/orders/42?page=1");

    // 1. A valid token, by cookie and by bearer, reaches the upstream with the identity.
    let c = claims();
    let token = sign(&c, key_a());
    for via in [Via::Cookie, Via::Bearer] {
        let v = call(with_token(client.get(&url), &token, via))
            .await
            .unwrap_or_else(|e| panic!("{name} {via:?}: {e:?}\n{}", peer.log_text()));
        assert_eq!(seen(&v, "x-user-id"), vec![c.sub.clone()], "{name} {via:?}");
        assert_eq!(seen(&v, "x-session-id"), vec![c.sid.clone()], "{name}");
        assert_eq!(seen(&v, "x-user-role"), vec!["2".to_owned()], "{name}");
        assert_eq!(v["path"], "/orders/42", "{name}");
    }

    // 2. Client-sent identity headers never reach the upstream: replaced when a token is valid...
    let v = call(
        with_token(client.get(&url), &token, Via::Bearer)
            .header("X-User-Id", "admin")
            .header("X-Session-Id", "spoofed")
            .header("X-User-Role", "1"),
    )
    .await
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(seen(&v, "x-user-id"), vec![c.sub.clone()], "{name} spoofed");
    assert_eq!(
        seen(&v, "x-session-id"),
        vec![c.sid.clone()],
        "{name} spoofed"
    );
    assert_eq!(
        seen(&v, "x-user-role"),
        vec!["2".to_owned()],
        "{name} spoofed"
    );
    // ...and their underscore spellings (read as the same variable by CGI/WSGI/PHP) are dropped
    // by the proxy configuration the README ships...
    let v = call(
        with_token(client.get(&url), &token, Via::Bearer)
            .header("X_User_Id", "admin")
            .header("X-Session_Id", "spoofed")
            .header("x_user_role", "1"),
    )
    .await
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(
        v["underscored"],
        serde_json::json!([]),
        "{name} underscored"
    );
    assert_eq!(seen(&v, "x-user-id"), vec![c.sub.clone()], "{name}");
    // ...and the request is refused without one (or with a bad one).
    for rb in [
        client.get(&url).header("X-User-Id", "admin"),
        with_token(client.get(&url), "junk", Via::Bearer).header("X-User-Id", "admin"),
    ] {
        let e = call(rb)
            .await
            .expect_err("spoofed header without a token must not pass");
        assert_eq!(e.0, StatusCode::UNAUTHORIZED, "{name}");
    }
    let e = call(client.get(&url)).await.expect_err("no token");
    assert_eq!(
        e,
        (
            StatusCode::UNAUTHORIZED,
            Some("Bearer realm=\"auth\"".into())
        ),
        "{name}"
    );

    // 3. Key rotation without restarting the edge: the new key's tokens and the old key's both
    //    verify. (Before the forged-token check, whose unknown kid would use up the refetch
    //    allowance of the next 5 s.)
    fake.set_keys(&[key_a(), key_b()]);
    let new = claims();
    let v = call(with_token(
        client.get(&url),
        &sign(&new, key_b()),
        Via::Cookie,
    ))
    .await
    .unwrap_or_else(|e| panic!("{name} new key: {e:?}"));
    assert_eq!(
        seen(&v, "x-user-id"),
        vec![new.sub.clone()],
        "{name} new key"
    );
    let old = claims();
    let v = call(with_token(
        client.get(&url),
        &sign(&old, key_a()),
        Via::Bearer,
    ))
    .await
    .unwrap_or_else(|e| panic!("{name} old key: {e:?}"));
    assert_eq!(
        seen(&v, "x-user-id"),
        vec![old.sub.clone()],
        "{name} old key"
    );

    // 4. Bad tokens: 401 with the RFC 6750 challenge.
    let mut expired = claims();
    expired.iat = now() - 7200;
    expired.exp = now() - 3600;
    let mut wrong_aud = claims();
    wrong_aud.aud = "another-service".into();
    let bad = [
        ("expired", sign(&expired, key_a())),
        ("forged", sign(&claims(), attacker_key())),
        ("wrong audience", sign(&wrong_aud, key_a())),
        ("alg none", none_token(&claims(), key_a().kid())),
    ];
    for (what, t) in &bad {
        for via in [Via::Cookie, Via::Bearer] {
            let e = call(with_token(client.get(&url), t, via))
                .await
                .expect_err(what);
            assert_eq!(
                e,
                (
                    StatusCode::UNAUTHORIZED,
                    Some("Bearer realm=\"auth\", error=\"invalid_token\"".into())
                ),
                "{name} {what} {via:?}"
            );
        }
    }

    // 4b. CSRF: the cookie of a cross-site POST is refused with 403; a Bearer token or the
    //     site's own origin passes.
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for (origin, via, want) in [
        (
            "https://evil.example".to_owned(),
            Via::Cookie,
            Some(StatusCode::FORBIDDEN),
        ),
        ("null".to_owned(), Via::Cookie, Some(StatusCode::FORBIDDEN)),
        ("https://evil.example".to_owned(), Via::Bearer, None),
        (format!("http://{host}"), Via::Cookie, None),
    ] {
        let got = call(with_token(client.post(&url), &token, via).header("origin", &origin))
            .await
            .err()
            .map(|e| e.0);
        assert_eq!(got, want, "{name} {origin} {via:?}");
    }

    // 5. Revocation through the revocation source: refused within a second.
    let victim = claims();
    let victim_token = sign(&victim, key_a());
    call(with_token(client.get(&url), &victim_token, Via::Cookie))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    fake.revoke(victim.sid.as_str(), victim.exp + 30);
    let start = Instant::now();
    loop {
        match call(with_token(client.get(&url), &victim_token, Via::Cookie)).await {
            Err((StatusCode::UNAUTHORIZED, _)) => break,
            other => assert!(
                start.elapsed() < Duration::from_secs(1),
                "{name}: revoked session still accepted: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Other sessions are unaffected.
    call(with_token(client.get(&url), &token, Via::Cookie))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
}

#[tokio::test]
async fn nginx_auth_request() {
    let s = setup().await;
    let nginx = start_nginx(s.edge.addr, s.upstream).await;
    scenario(&nginx, &s.fake).await;
}

#[tokio::test]
async fn caddy_forward_auth() {
    let s = setup().await;
    let caddy = start_caddy(s.edge.addr, s.upstream).await;
    scenario(&caddy, &s.fake).await;
}

#[tokio::test]
async fn envoy_ext_authz_http() {
    let s = setup().await;
    let envoy = start_envoy(s.edge.addr, s.upstream).await;
    scenario(&envoy, &s.fake).await;
}

#[tokio::test]
async fn envoy_ext_authz_grpc() {
    let s = setup_with(|c| c.serve.grpc_listen = Some(([127, 0, 0, 1], 0).into())).await;
    let grpc = s.edge.grpc_addr.expect("grpc listener");
    let envoy = start_envoy_grpc(grpc, s.upstream).await;
    scenario(&envoy, &s.fake).await;
}
