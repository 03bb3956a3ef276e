//! The edge behind real proxies: nginx `auth_request`, Caddy `forward_auth`, Traefik
//! `forwardAuth`, Envoy `ext_authz` (HTTP service and gRPC). Each runs the same scenario against
//! an upstream that echoes the identity headers it receives, then the browser scenario (login
//! redirect, CORS preflight); the sidecar tests (`sidecar.rs`) run both too.

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

/// The login page of the browser scenario; return URLs may name the peers' host only.
pub const LOGIN_URL: &str = "https://login.example.com/signin";

/// The edge settings of the browser scenario: the login redirect and the CORS preflight bypass.
pub fn browser_policy() -> auth_edge::browser::BrowserPolicy {
    auth_edge::browser::BrowserPolicy {
        login: Some(auth_edge::browser::LoginRedirect {
            url: LOGIN_URL.into(),
            return_param: "rd".into(),
            allowed_hosts: auth_edge::browser::HostAllowList::parse("127.0.0.1").unwrap(),
        }),
        cors_preflight: true,
        ..Default::default()
    }
}

async fn setup() -> Setup {
    setup_with(|c| c.verifier.browser = browser_policy()).await
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

/// The values of `header` the upstream received (none when it got no such header).
pub fn seen(v: &Value, header: &str) -> Vec<String> {
    v.get(header)
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
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

/// Percent-encodes everything but RFC 3986 unreserved characters (a query parameter's value).
pub fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The browser scenario (an edge configured with [`browser_policy`]): navigations without a
/// valid token are sent to the login page with the page's URL (never a host the client made up),
/// API calls keep their 401, and CORS preflights pass without a token and without an identity.
/// `return_url` is what the page's URL must be seen as (None: the bare login URL).
pub async fn browser_scenario(peer: &Peer, return_url: Option<&str>) {
    let name = peer.name;
    let client = client();
    let url = peer.url("/orders/42?page=1");
    let expected = match return_url {
        Some(back) => format!("{LOGIN_URL}?rd={}", encode(back)),
        None => LOGIN_URL.to_owned(),
    };
    let mut expired = claims();
    expired.iat = now() - 7200;
    expired.exp = now() - 3600;
    let expired = sign(&expired, key_a());

    // 1. A navigation (by Fetch Metadata, or by Accept from a browser without it) without a
    //    valid token: 302 to the login page; a client-sent X-Forwarded-Host changes nothing.
    for (header, value, token) in [
        ("sec-fetch-mode", "navigate", None),
        ("accept", "text/html,application/xhtml+xml,*/*;q=0.8", None),
        ("sec-fetch-mode", "navigate", Some(expired.as_str())),
    ] {
        let mut rb = client
            .get(&url)
            .header(header, value)
            .header("x-forwarded-host", "evil.example");
        if let Some(token) = token {
            rb = with_token(rb, token, Via::Cookie);
        }
        let r = rb.send().await.expect("proxy answers");
        assert_eq!(
            r.status(),
            StatusCode::FOUND,
            "{name} {header}: {value}\n{}",
            peer.log_text()
        );
        assert_eq!(r.headers()["location"], expected.as_str(), "{name}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{name}");
    }

    // 2. API calls and fetch() from a page still get the 401 and its challenge.
    for (header, value) in [("accept", "application/json"), ("sec-fetch-mode", "cors")] {
        let e = call(client.get(&url).header(header, value))
            .await
            .expect_err("an API call is not redirected");
        assert_eq!(
            e,
            (
                StatusCode::UNAUTHORIZED,
                Some("Bearer realm=\"auth\"".into())
            ),
            "{name} {header}"
        );
    }

    // 3. A navigation with a valid token reaches the upstream.
    let c = claims();
    let v = call(with_token(
        client.get(&url).header("sec-fetch-mode", "navigate"),
        &sign(&c, key_a()),
        Via::Cookie,
    ))
    .await
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(seen(&v, "x-user-id"), vec![c.sub.clone()], "{name}");

    // 4. A CORS preflight passes without a token, with no identity at all, spoofed or not; an
    //    OPTIONS that is not a preflight does not.
    let v = call(
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "DELETE")
            .header("X-User-Id", "admin")
            .header("X_User_Id", "admin"),
    )
    .await
    .unwrap_or_else(|e| panic!("{name} preflight: {e:?}\n{}", peer.log_text()));
    assert_eq!(
        seen(&v, "x-user-id"),
        Vec::<String>::new(),
        "{name} preflight"
    );
    assert_eq!(v["underscored"], serde_json::json!([]), "{name} preflight");
    let e = call(
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("X-User-Id", "admin"),
    )
    .await
    .expect_err("OPTIONS without Access-Control-Request-Method needs a token");
    assert_eq!(e.0, StatusCode::UNAUTHORIZED, "{name}");
}

/// Runs both scenarios through `peer`.
async fn scenarios(peer: &Peer, fake: &FakeAccounts) {
    scenario(peer, fake).await;
    browser_scenario(peer, Some(&peer.url("/orders/42?page=1"))).await;
}

#[tokio::test]
async fn nginx_auth_request() {
    let s = setup().await;
    let nginx = start_nginx(s.edge.addr, s.upstream).await;
    scenarios(&nginx, &s.fake).await;
}

#[tokio::test]
async fn caddy_forward_auth() {
    let s = setup().await;
    let caddy = start_caddy(s.edge.addr, s.upstream).await;
    scenarios(&caddy, &s.fake).await;
}

#[tokio::test]
async fn traefik_forward_auth() {
    let s = setup().await;
    let traefik = start_traefik(s.edge.addr, s.upstream).await;
    scenarios(&traefik, &s.fake).await;
}

#[tokio::test]
async fn envoy_ext_authz_http() {
    let s = setup().await;
    let envoy = start_envoy(s.edge.addr, s.upstream).await;
    scenarios(&envoy, &s.fake).await;
}

#[tokio::test]
async fn envoy_ext_authz_grpc() {
    let s = setup_with(|c| {
        c.serve.grpc_listen = Some(([127, 0, 0, 1], 0).into());
        c.verifier.browser = browser_policy();
    })
    .await;
    let grpc = s.edge.grpc_addr.expect("grpc listener");
    let envoy = start_envoy_grpc(grpc, s.upstream).await;
    scenarios(&envoy, &s.fake).await;
}
