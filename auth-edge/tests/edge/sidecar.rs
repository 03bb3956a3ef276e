//! The sidecar (`auth-edge sidecar`, pingora) in front of an echoing upstream: the shared peer
//! and browser scenarios, public paths, 401s answered by the sidecar itself (the upstream never
//! sees them), kept connections after a 401, trace context and request ids passed on, and shutdown
//! on SIGTERM.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::peers::{browser_scenario, call, scenario, seen, LOGIN_URL};

async fn ready_fake() -> FakeAccounts {
    FakeAccounts::start(&[key_a()]).await
}

async fn wait_stream(fake: &FakeAccounts) {
    wait_until(Duration::from_secs(10), "stream connected", || {
        fake.stream_connections() >= 1
    })
    .await;
}

#[tokio::test]
async fn sidecar_runs_the_peer_scenarios() {
    let fake = ready_fake().await;
    let upstream = start_upstream().await;
    // The test client is not a trusted proxy here: the return URL is made of the request's own
    // Host and target, and its X-Forwarded-Host is ignored.
    let (sidecar, _admin) = start_sidecar_with(
        &fake,
        upstream,
        "",
        &[
            ("AUTH_EDGE_LOGIN_URL", LOGIN_URL),
            ("AUTH_EDGE_REDIRECT_ALLOWED_HOSTS", "127.0.0.1"),
            ("AUTH_EDGE_CORS_PREFLIGHT", "allow"),
            ("AUTH_EDGE_TRUSTED_PROXIES", "192.0.2.1"),
        ],
    )
    .await;
    wait_stream(&fake).await;
    scenario(&sidecar, &fake).await;
    browser_scenario(&sidecar, Some(&sidecar.url("/orders/42?page=1"))).await;
}

#[tokio::test]
async fn configured_identity_header_names_are_set_and_every_spelling_stripped() {
    let fake = ready_fake().await;
    let upstream = start_upstream().await;
    let (sidecar, _admin) = start_sidecar_with(
        &fake,
        upstream,
        "/public/",
        &[
            ("AUTH_EDGE_USER_ID_HEADER", "X-Auth-User"),
            ("AUTH_EDGE_SESSION_ID_HEADER", "X-Auth-Session"),
            ("AUTH_EDGE_ROLE_HEADER", "X-Auth-Role"),
        ],
    )
    .await;
    wait_stream(&fake).await;
    let c = claims();
    let token = sign(&c, key_a());
    let client = client();
    for (path, token) in [("/orders", Some(&token)), ("/public/x", None)] {
        let mut rb = client
            .get(sidecar.url(path))
            .header("X-Auth-User", "admin")
            .header("X_Auth_User", "admin")
            .header("x-auth_session", "s-evil")
            .header("X-User-Id", "admin");
        if let Some(token) = token {
            rb = with_token(rb, token, Via::Bearer);
        }
        let v = call(rb)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e:?}\n{}", sidecar.log_text()));
        let want: Vec<String> = token.map(|_| c.sub.to_string()).into_iter().collect();
        assert_eq!(seen(&v, "x-auth-user"), want, "{path}");
        if token.is_some() {
            assert_eq!(seen(&v, "x-auth-session"), vec![c.sid.to_string()]);
            assert_eq!(seen(&v, "x-auth-role"), vec!["2".to_owned()]);
        }
        assert_eq!(v["underscored"], serde_json::json!([]), "{path}");
        // The default names are stripped too: an application may still read X-User-Id.
        assert!(seen(&v, "x-user-id").is_empty(), "{path}");
    }
}

#[tokio::test]
async fn the_upstream_gets_a_signed_assertion_never_a_client_sent_one() {
    let fake = ready_fake().await;
    let upstream = start_upstream().await;
    let dir = TempDir::new("assertion");
    let key_file = assertion_key_file(&dir).display().to_string();
    let (sidecar, admin) = start_sidecar_with(
        &fake,
        upstream,
        "/public/",
        &[
            ("AUTH_EDGE_ASSERTION_KEY_FILE", &key_file),
            ("AUTH_EDGE_ASSERTION_AUDIENCE", "orders"),
        ],
    )
    .await;
    wait_stream(&fake).await;
    let c = claims();
    let client = client();
    let v = call(
        with_token(
            client.get(sidecar.url("/orders")),
            &sign(&c, key_a()),
            Via::Bearer,
        )
        .header("X-Identity-Assertion", "forged")
        .header("X_Identity_Assertion", "forged"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:?}\n{}", sidecar.log_text()));
    let got = seen(&v, "x-identity-assertion");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(v["underscored"], serde_json::json!([]));
    let jwks = text_of(&format!("http://127.0.0.1:{admin}/.well-known/jwks.json")).await;
    let verified = pyjwt_verify_assertion(&got[0], &jwks, "auth-edge", "orders");
    assert_eq!(verified["sub"], c.sub.as_str());

    // A public path without a token: no assertion at all, the client's stripped.
    let v = call(
        client
            .get(sidecar.url("/public/x"))
            .header("X-Identity-Assertion", "forged"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(seen(&v, "x-identity-assertion").is_empty());
}

#[tokio::test]
async fn public_paths_pass_without_a_token_but_never_with_a_spoofed_identity() {
    let fake = ready_fake().await;
    let upstream = start_upstream().await;
    let (sidecar, _admin) = start_sidecar(&fake, upstream, "/public/, /healthz").await;
    let client = client();

    // Underscore variants count as the real header for CGI/WSGI/PHP applications.
    const VARIANTS: [&str; 3] = ["x_user_id", "x-session_id", "x_user_role"];
    for path in ["/public/info", "/healthz", "/public/a/b?x=1"] {
        let v = call(
            client
                .get(sidecar.url(path))
                .header("X-User-Id", "admin")
                .header("X_User_Id", "admin")
                .header("X-Session_Id", "s-evil")
                .header("X_USER_ROLE", "1"),
        )
        .await
        .unwrap_or_else(|e| panic!("{path}: {e:?}\n{}", sidecar.log_text()));
        assert!(
            seen(&v, "x-user-id").is_empty(),
            "{path}: spoofed header reached upstream"
        );
        assert!(seen(&v, "x-session-id").is_empty(), "{path}");
        assert_eq!(
            seen(&v, "underscored"),
            Vec::<String>::new(),
            "{path}: an identity header variant reached upstream (sent {VARIANTS:?})"
        );
    }
    // A valid token on a public path still identifies the caller.
    let c = claims();
    let v = call(
        with_token(
            client.get(sidecar.url("/public/me")),
            &sign(&c, key_a()),
            Via::Bearer,
        )
        .header("X_User_Id", "admin"),
    )
    .await
    .unwrap();
    assert_eq!(seen(&v, "x-user-id"), vec![c.sub.clone()]);
    assert_eq!(seen(&v, "x-session-id"), vec![c.sid.clone()]);
    assert_eq!(
        seen(&v, "underscored"),
        Vec::<String>::new(),
        "beside a valid token"
    );
    // A bad one there is no identity, not a 401, and the spoofed header is still stripped.
    let v = call(
        with_token(client.get(sidecar.url("/public/me")), "junk", Via::Cookie)
            .header("X-User-Id", "admin"),
    )
    .await
    .unwrap();
    assert!(seen(&v, "x-user-id").is_empty());

    // Neighbours and paths that an upstream could normalise out of the public prefix need a
    // token.
    for path in [
        "/publicx",
        "/healthzz",
        "/public/../orders",
        "/public/%2e%2e/orders",
        "/orders",
    ] {
        let e = call(client.get(sidecar.url(path))).await.expect_err(path);
        assert_eq!(e.0, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn rejected_requests_are_answered_by_the_sidecar_and_never_reach_the_upstream() {
    let fake = ready_fake().await;
    let (upstream, count) = start_counting_upstream().await;
    let (sidecar, _admin) = start_sidecar(&fake, upstream, "/public/").await;
    let client = client();
    let url = sidecar.url("/orders/1");

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
        ("junk", "junk".to_owned()),
    ];
    let before = count.load(Ordering::SeqCst);
    for (what, token) in &bad {
        for via in [Via::Cookie, Via::Bearer] {
            let r = with_token(client.post(&url), token, via)
                .header("X-User-Id", "admin")
                .body("{\"amount\": 1}")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what} {via:?}");
            assert_eq!(
                r.headers()["www-authenticate"],
                "Bearer realm=\"auth\", error=\"invalid_token\"",
                "{what}"
            );
            assert_eq!(r.headers()["cache-control"], "no-store");
        }
    }
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"auth\"");
    assert_eq!(
        count.load(Ordering::SeqCst),
        before,
        "the upstream saw a request that failed authentication"
    );

    // A good request does reach it (the counter works).
    let v = call(with_token(
        client.get(&url),
        &sign(&claims(), key_a()),
        Via::Cookie,
    ))
    .await
    .unwrap();
    assert_eq!(v["path"], "/orders/1");
    assert_eq!(count.load(Ordering::SeqCst), before + 1);
}

/// Reads one HTTP/1.1 response with an empty body (what a 401 from the sidecar is).
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("response in time")
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    String::from_utf8(buf).unwrap().to_ascii_lowercase()
}

#[tokio::test]
async fn a_401_keeps_the_connection_open() {
    let fake = ready_fake().await;
    let upstream = start_upstream().await;
    let (sidecar, _admin) = start_sidecar(&fake, upstream, "").await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", sidecar.port))
        .await
        .unwrap();
    let requests = [
        "GET /a HTTP/1.1\r\nHost: app\r\n\r\n",
        "POST /b HTTP/1.1\r\nHost: app\r\nAuthorization: Bearer junk\r\nContent-Length: 5\r\n\r\nhello",
        "GET /c HTTP/1.1\r\nHost: app\r\n\r\n",
    ];
    for request in requests {
        stream.write_all(request.as_bytes()).await.unwrap();
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("http/1.1 401"), "{head}");
        assert!(head.contains("content-length: 0"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
    }
}

#[tokio::test]
async fn sidecar_exits_on_sigterm() {
    let fake = ready_fake().await;
    let upstream = start_upstream().await;
    let (mut sidecar, admin) = start_sidecar(&fake, upstream, "").await;
    let r = client()
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("auth_edge_keys 1"));

    // AUTH_EDGE_DRAIN_SECONDS=1: pingora's grace period, then its runtimes stop.
    let status = sidecar
        .terminate(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("sidecar did not exit:\n{}", sidecar.log_text()));
    assert!(status.success(), "{status}\n{}", sidecar.log_text());
    // The log is tracing's, with pingora's own lines bridged into it.
    let log = sidecar.log_text();
    assert!(log.contains("auth-edge sidecar listening"), "{log}");
}

#[tokio::test]
async fn the_upstream_continues_the_clients_trace() {
    let fake = ready_fake().await;
    let upstream = start_upstream().await;
    let (sidecar, admin) = start_sidecar(&fake, upstream, "/public/").await;
    let client = client();
    let metrics = text_of(&format!("http://127.0.0.1:{admin}/metrics")).await;
    assert!(
        metrics.contains("mode=\"sidecar\"} 1"),
        "the build info names the mode:\n{metrics}"
    );
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    // A traced request: same trace, the sidecar's own span; the request id is the trace id.
    let response = with_token(
        client.get(sidecar.url("/orders")),
        &sign(&claims(), key_a()),
        Via::Bearer,
    )
    .header("traceparent", PARENT)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-request-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let v: serde_json::Value = response.json().await.unwrap();
    let sent = seen(&v, "traceparent");
    assert_eq!(sent.len(), 1, "{v}");
    let tp = auth_token::TraceParent::parse(&sent[0]).expect("a valid traceparent upstream");
    assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(tp.span_id(), "00f067aa0ba902b7");
    assert_eq!(
        seen(&v, "x-request-id"),
        ["4bf92f3577b34da6a3ce929d0e0e4736"]
    );

    // An untraced request starts a trace; a harmless request id is kept, a forged one replaced.
    let v = call(
        client
            .get(sidecar.url("/public/x"))
            .header("x-request-id", "lb-7"),
    )
    .await
    .unwrap();
    assert!(auth_token::TraceParent::parse(&seen(&v, "traceparent")[0]).is_some());
    assert_eq!(seen(&v, "x-request-id"), ["lb-7"]);
    let v = call(
        client
            .get(sidecar.url("/public/x"))
            .header("x-request-id", "a\"b")
            .header("traceparent", "garbage"),
    )
    .await
    .unwrap();
    let tp = auth_token::TraceParent::parse(&seen(&v, "traceparent")[0]).unwrap();
    assert_eq!(seen(&v, "x-request-id"), [tp.trace_id()]);

    // A refusal names the request too.
    let response = client
        .get(sidecar.url("/orders"))
        .header("x-request-id", "lb-8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["x-request-id"], "lb-8");
}
