//! The forward-auth contract, spoken to the edge directly.

use std::time::Duration;

use auth_edge::KeySource;
use reqwest::StatusCode;

use crate::helpers::*;

const CHALLENGE: &str = "Bearer realm=\"auth\"";
const INVALID: &str = "Bearer realm=\"auth\", error=\"invalid_token\"";

async fn edge_with_key_a() -> (FakeAccounts, TestEdge) {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let edge = spawn_edge(edge_config(&fake)).await;
    (fake, edge)
}

#[tokio::test]
async fn valid_token_by_cookie_or_bearer_answers_identity_on_any_method_and_path() {
    let (_fake, edge) = edge_with_key_a().await;
    let c = claims();
    let token = sign(&c, key_a());
    let client = client();
    for via in [Via::Cookie, Via::Bearer] {
        for (method, path) in [
            (reqwest::Method::GET, "/api/v1/auth/gateway-verify"),
            (reqwest::Method::POST, "/orders/42?x=1"),
            (reqwest::Method::DELETE, "/"),
            (reqwest::Method::GET, "/metrics"),
        ] {
            let r = with_token(client.request(method.clone(), edge.url(path)), &token, via)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{via:?} {method} {path}");
            assert_eq!(r.headers()["x-user-id"], c.sub.as_str());
            assert_eq!(r.headers()["x-session-id"], c.sid.as_str());
            assert_eq!(r.headers()["x-user-role"], "2");
            assert_eq!(r.headers()["cache-control"], "no-store");
            assert!(r.headers().get("www-authenticate").is_none());
            assert!(r.bytes().await.unwrap().is_empty());
        }
    }
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_challenge() {
    let (_fake, edge) = edge_with_key_a().await;
    let client = client();
    for rb in [
        client.get(edge.url("/")),
        client.get(edge.url("/")).header("cookie", "theme=dark"),
        client
            .get(edge.url("/"))
            .header("authorization", "Basic dXNlcjpwYXNz"),
        client.get(edge.url("/")).header("cookie", "access_token="),
    ] {
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
        assert!(r.headers().get("x-user-id").is_none());
    }
}

#[tokio::test]
async fn bad_tokens_are_401_invalid_token() {
    let (_fake, edge) = edge_with_key_a().await;
    let client = client();
    let mut expired = claims();
    expired.iat = now() - 7200;
    expired.exp = now() - 3600;
    let mut wrong_aud = claims();
    wrong_aud.aud = "another-service".into();
    let mut wrong_iss = claims();
    wrong_iss.iss = "evil".into();
    let cases = [
        ("expired", sign(&expired, key_a())),
        ("forged", sign(&claims(), attacker_key())),
        ("wrong audience", sign(&wrong_aud, key_a())),
        ("wrong issuer", sign(&wrong_iss, key_a())),
        ("alg none", none_token(&claims(), key_a().kid())),
        ("garbage", "not.a.jwt".to_owned()),
        ("oversized", "a".repeat(9000)),
    ];
    for (what, token) in &cases {
        for via in [Via::Cookie, Via::Bearer] {
            let r = with_token(client.get(edge.url("/x")), token, via)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what} via {via:?}");
            assert_eq!(r.headers()["www-authenticate"], INVALID, "{what}");
            assert!(r.headers().get("x-user-id").is_none(), "{what}");
        }
    }
}

#[tokio::test]
async fn bearer_wins_over_cookie_and_cookie_name_is_configurable() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let mut config = edge_config(&fake);
    config.verifier.cookie_name = "at".into();
    let edge = spawn_edge(config).await;
    let client = client();
    let (good, bad) = (claims(), claims());
    let good_token = sign(&good, key_a());
    let bad_token = sign(&bad, attacker_key());

    let r = client
        .get(edge.url("/"))
        .header("cookie", format!("at={good_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-user-id"], good.sub.as_str());
    // The default name is not read any more.
    let r = client
        .get(edge.url("/"))
        .header("cookie", format!("access_token={good_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // An explicit bearer token decides, even when a valid cookie is present.
    let r = client
        .get(edge.url("/"))
        .header("cookie", format!("at={good_token}"))
        .bearer_auth(&bad_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admin_endpoints_live_on_their_own_listener() {
    let (_fake, edge) = edge_with_key_a().await;
    let client = client();
    let token = sign(&claims(), key_a());
    // Two verifications of the same token: the second is a cache hit.
    for _ in 0..2 {
        let r = client
            .get(edge.url("/"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = client.get(edge.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = client.get(edge.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client.get(edge.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client.get(edge.admin_url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = client.get(edge.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    for line in [
        "auth_edge_verifications_total{result=\"ok\"} 2",
        "auth_edge_verifications_total{result=\"missing\"} 1",
        "auth_edge_token_cache_hits_total 1",
        "auth_edge_verification_duration_seconds_count 3",
        "auth_edge_key_fetches_total{result=\"ok\"} 1",
        "auth_edge_keys 1",
        "auth_edge_token_cache_entries 1",
        "auth_edge_revoked_sessions 0",
        "auth_edge_revocation_source_up{source=\"stream\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert_parses_as_prometheus_text(&text);

    // On the forward-auth listener these paths are just paths: no token, 401.
    for path in ["/metrics", "/healthz", "/readyz"] {
        let r = client.get(edge.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn not_ready_until_keys_load_then_ready_without_restart() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    fake.set_failing(true);
    let edge = spawn_edge_unready(edge_config(&fake)).await;
    let client = client();
    let token = sign(&claims(), key_a());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = client.get(edge.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = client.get(edge.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Cannot decide is 503, not a 401 that would log users out.
    let r = client
        .get(edge.url("/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get("www-authenticate").is_none());

    fake.set_failing(false);
    wait_until(Duration::from_secs(10), "keys loaded", || {
        edge.verifier.is_ready()
    })
    .await;
    let r = client.get(edge.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client
        .get(edge.url("/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn keeps_verifying_when_accounts_is_down_and_rate_limits_unknown_kids() {
    let (fake, edge) = edge_with_key_a().await;
    fake.set_failing(true);
    let client = client();
    // Fresh tokens (not cached) still verify from the last good key set.
    for _ in 0..3 {
        let r = client
            .get(edge.url("/"))
            .bearer_auth(sign(&claims(), key_a()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = client.get(edge.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Tokens naming unknown kids cause at most one refetch per interval, not one each.
    let before = fake.jwks_fetches();
    for _ in 0..20 {
        let r = client
            .get(edge.url("/"))
            .bearer_auth(sign(&claims(), attacker_key()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(fake.jwks_fetches() - before, 1);
}

#[tokio::test]
async fn rotation_refetches_once_for_concurrent_requests() {
    let (fake, edge) = edge_with_key_a().await;
    fake.set_keys(&[key_a(), key_b()]);
    let before = fake.jwks_fetches();
    let client = client();
    let mut requests = Vec::new();
    for _ in 0..20 {
        let rb = client
            .get(edge.url("/"))
            .bearer_auth(sign(&claims(), key_b()));
        requests.push(tokio::spawn(rb.send()));
    }
    for r in requests {
        assert_eq!(r.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(
        fake.jwks_fetches() - before,
        1,
        "one fetch in flight, the rest waited"
    );
    // The old key still verifies.
    let r = client
        .get(edge.url("/"))
        .bearer_auth(sign(&claims(), key_a()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn withdrawn_key_stops_verifying_even_cached_tokens() {
    let fake = FakeAccounts::start(&[key_a(), key_b()]).await;
    let edge = spawn_edge(edge_config(&fake)).await;
    let client = client();
    let token = sign(&claims(), key_a());
    let r = client
        .get(edge.url("/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Key A is withdrawn (say, compromised); the next refresh installs the new set, and the
    // cached verification of the A-signed token no longer counts.
    fake.set_keys(&[key_b()]);
    edge.verifier.load_keys().await.unwrap();
    let r = client
        .get(edge.url("/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn keys_from_a_local_pem_file() {
    let dir = TempDir::new("keys");
    let pem = dir.write("public.pem", &key_a().public_pem().unwrap());
    let edge = spawn_edge(auth_edge::Config::for_tests(KeySource::File(pem))).await;
    let c = claims();
    let r = client()
        .get(edge.url("/"))
        .bearer_auth(sign(&c, key_a()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-user-id"], c.sub.as_str());
}

/// Reads what is available (tokio's io-util helpers are not enabled in this workspace).
async fn read_some(conn: &tokio::net::TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        conn.readable().await?;
        match conn.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

#[tokio::test]
async fn graceful_shutdown_closes_idle_connections_and_returns() {
    let (_fake, edge) = edge_with_key_a().await;
    // A kept-alive connection that has finished a request.
    let conn = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    conn.writable().await.unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: edge\r\n\r\n";
    assert_eq!(conn.try_write(request).unwrap(), request.len());
    let mut buf = vec![0u8; 4096];
    let n = read_some(&conn, &mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 401"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );

    // `shutdown` returns only once both listeners have stopped (it fails after 15 s otherwise).
    edge.shutdown().await;
    let n = tokio::time::timeout(Duration::from_secs(5), read_some(&conn, &mut buf))
        .await
        .expect("idle connection closed on shutdown")
        .unwrap_or(0);
    assert_eq!(n, 0, "connection closed, nothing more sent");
}

/// Sends one raw HTTP/1.1 request and returns the status line.
async fn raw_status_line(edge: &TestEdge, request: &[u8]) -> String {
    let conn = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    conn.writable().await.unwrap();
    assert_eq!(conn.try_write(request).unwrap(), request.len());
    let mut buf = vec![0u8; 4096];
    let n = read_some(&conn, &mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn control_characters_in_a_header_are_401_not_a_parser_400() {
    // nginx passes VT/FF through to auth_request and turns an auth 400 into a 500 for the
    // client: the edge must answer with an authentication status instead.
    let (_fake, edge) = edge_with_key_a().await;
    let token = sign(&claims(), key_a());
    for ctl in [0x0b_u8, 0x0c, 0x01, 0x7f] {
        let mut request = b"GET / HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer ".to_vec();
        request.extend_from_slice(token.as_bytes());
        request.push(ctl);
        request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let status = raw_status_line(&edge, &request).await;
        assert!(status.starts_with("HTTP/1.1 401"), "{ctl:#x}: {status}");
        // The same in another header: the token still counts, the bad header is ignored.
        let request = format!(
            "GET / HTTP/1.1\r\nHost: edge\r\nX-Note: a{}b\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n",
            ctl as char
        );
        let status = raw_status_line(&edge, request.as_bytes()).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{ctl:#x}: {status}");
    }
}

/// An independent reader of the exposition (Python `prometheus_client`'s text parser) sees
/// every family with its type, including the build and process metrics operators expect.
fn assert_parses_as_prometheus_text(text: &str) {
    use std::io::Write as _;
    const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps({f.name: [f.type, [[s.name, s.labels, s.value] for s in f.samples]]
                  for f in text_string_to_metric_families(sys.stdin.read())}))
"#;
    let python = binary("AUTH_TEST_PYTHON", "python3", &[]);
    let mut child = std::process::Command::new(&python)
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kind = |name: &str| families[name][0].as_str().unwrap_or("absent").to_owned();
    // The parser names counters without `_total`.
    assert_eq!(kind("auth_edge_verifications"), "counter", "{families}");
    assert_eq!(kind("auth_edge_verification_duration_seconds"), "histogram");
    assert_eq!(kind("process_cpu_seconds"), "counter");
    for gauge in [
        "auth_edge_build_info",
        "auth_edge_keys",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert_eq!(kind(gauge), "gauge", "{gauge}");
    }
    let build = &families["auth_edge_build_info"][1][0];
    assert_eq!(build[1]["mode"], "forward-auth", "{build}");
    assert_eq!(build[1]["version"], env!("CARGO_PKG_VERSION"), "{build}");
    assert_eq!(build[2], 1.0);
    let rss = families["process_resident_memory_bytes"][1][0][2]
        .as_f64()
        .unwrap();
    assert!(rss > 1e6, "{rss}");
}

/// The edge with a login redirect allowed back to `app.example.com` and `*.shop.example`.
async fn edge_with_login(trusted_proxies: &str) -> (FakeAccounts, TestEdge) {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let mut config = edge_config(&fake);
    config.verifier.browser = auth_edge::browser::BrowserPolicy {
        login: Some(auth_edge::browser::LoginRedirect {
            url: "https://login.example.com/signin?lang=en".into(),
            return_param: "return_to".into(),
            allowed_hosts: auth_edge::browser::HostAllowList::parse(
                "app.example.com,.shop.example",
            )
            .unwrap(),
        }),
        trusted_proxies: auth_edge::browser::TrustedProxies::parse(trusted_proxies).unwrap(),
        cors_preflight: false,
    };
    let edge = spawn_edge(config).await;
    (fake, edge)
}

/// A navigation as Traefik forwards it: the page's URL in X-Forwarded-Proto/Host/Uri.
fn navigation(edge: &TestEdge, host: &str, uri: &str) -> reqwest::RequestBuilder {
    client()
        .get(edge.url("/api/v1/auth/gateway-verify"))
        .header("sec-fetch-mode", "navigate")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
}

#[tokio::test]
async fn navigations_are_redirected_only_back_to_allowed_hosts_named_by_trusted_proxies() {
    let (_fake, edge) = edge_with_login("127.0.0.0/8").await;
    let login = "https://login.example.com/signin?lang=en";
    for (host, uri, want) in [
        (
            "app.example.com",
            "/orders/42?page=1",
            format!("{login}&return_to=https%3A%2F%2Fapp.example.com%2Forders%2F42%3Fpage%3D1"),
        ),
        (
            "a.shop.example:8443",
            "/",
            format!("{login}&return_to=https%3A%2F%2Fa.shop.example%3A8443%2F"),
        ),
        // Open-redirect attempts: the bare login URL.
        ("evil.example", "/", login.to_owned()),
        ("app.example.com.evil.example", "/", login.to_owned()),
        ("user@app.example.com", "/", login.to_owned()),
        ("app.example.com", "//evil.example/", login.to_owned()),
        ("app.example.com", "/\\evil.example", login.to_owned()),
    ] {
        let r = navigation(&edge, host, uri).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "{host}{uri}");
        assert_eq!(r.headers()["location"], want.as_str(), "{host}{uri}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(r.headers().get("www-authenticate").is_none());
    }

    // nginx asks for a 401 carrying the target (auth_request passes only 2xx, 401 and 403).
    let r = navigation(&edge, "app.example.com", "/x")
        .header("x-auth-edge-redirect-status", "401")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
    assert_eq!(
        r.headers()["x-auth-edge-location"],
        format!("{login}&return_to=https%3A%2F%2Fapp.example.com%2Fx").as_str()
    );
    assert!(r.headers().get("location").is_none());

    // Not a navigation (an API call, a fetch() from a page, a form POST): the 401.
    for rb in [
        client()
            .get(edge.url("/"))
            .header("accept", "application/json"),
        client().get(edge.url("/")).header("sec-fetch-mode", "cors"),
        client()
            .get(edge.url("/"))
            .header("sec-fetch-mode", "navigate")
            .header("x-forwarded-method", "POST"),
    ] {
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
    }
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_give_the_bare_login_url() {
    let (_fake, edge) = edge_with_login("10.0.0.0/8").await;
    let r = navigation(&edge, "app.example.com", "/orders")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        r.headers()["location"],
        "https://login.example.com/signin?lang=en"
    );
}

#[tokio::test]
async fn configured_identity_header_names_and_claim_headers_are_answered() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let mut config = edge_config(&fake);
    config.verifier.header_names =
        auth_edge::identity::HeaderNames::new("X-Auth-User", "X-Auth-Session", "X-Auth-Role")
            .and_then(|names| names.with_claims("jti:X-Token-Id,exp:X-Token-Expires"))
            .unwrap();
    let edge = spawn_edge(config).await;
    let c = claims();
    let r = client()
        .get(edge.url("/"))
        .bearer_auth(sign(&c, key_a()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-auth-user"], c.sub.as_str());
    assert_eq!(r.headers()["x-auth-session"], c.sid.as_str());
    assert_eq!(r.headers()["x-auth-role"], "2");
    assert_eq!(r.headers()["x-token-id"], c.jti.as_str());
    assert_eq!(r.headers()["x-token-expires"], c.exp.to_string().as_str());
    assert!(r.headers().get("x-user-id").is_none());
}

#[tokio::test]
async fn signed_identity_assertions_verify_against_the_admin_jwks() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let mut config = edge_config(&fake);
    let dir = TempDir::new("assertion");
    let mut vars: std::collections::HashMap<String, String> = [
        ("AUTH_EDGE_LISTEN", "127.0.0.1:0"),
        ("AUTH_EDGE_ADMIN_LISTEN", "127.0.0.1:0"),
        ("AUTH_EDGE_ASSERTION_AUDIENCE", "orders"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.insert(
        "AUTH_EDGE_ASSERTION_KEY_FILE".into(),
        assertion_key_file(&dir).display().to_string(),
    );
    let parsed = auth_edge::Config::from_vars(&vars).unwrap();
    config.verifier.assertion = parsed.verifier.assertion;
    config.verifier.header_names = parsed.verifier.header_names;
    let edge = spawn_edge(config).await;

    let c = claims();
    let token = sign(&c, key_a());
    let answer = |token: &str| {
        client()
            .get(edge.url("/"))
            .bearer_auth(token)
            .header("x-identity-assertion", "forged")
            .send()
    };
    let r = answer(&token).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let assertion = r.headers()["x-identity-assertion"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(assertion, "forged");
    // The same token within the assertion's first half-life: the same assertion (no re-signing).
    let again = answer(&token).await.unwrap();
    assert_eq!(again.headers()["x-identity-assertion"], assertion.as_str());

    let jwks = client()
        .get(edge.admin_url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
    let jwks = jwks.text().await.unwrap();
    let verified = pyjwt_verify_assertion(&assertion, &jwks, "auth-edge", "orders");
    assert_eq!(verified["sub"], c.sub.as_str());
    assert_eq!(verified["sid"], c.sid.as_str());
    assert_eq!(verified["role"], 2);
    let ttl = verified["exp"].as_i64().unwrap() - verified["iat"].as_i64().unwrap();
    assert_eq!(ttl, 60);
    // An assertion is no access token (its `typ` and its key are not accounts').
    assert_eq!(status_of(&edge, &assertion).await, StatusCode::UNAUTHORIZED);

    // Without assertions the JWKS path is not found.
    let (_fake, plain) = edge_with_key_a().await;
    let r = client()
        .get(plain.admin_url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
