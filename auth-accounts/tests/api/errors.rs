//! Nothing a client can send produces a 500; every error has the same body; CSRF and CORS.

use auth_test_support::tokens::{attacker_key, b64_json, sign};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    assert_error, email, json_body, jwt_claims, jwt_header, spawn_app, spawn_app_with, spawn_on,
    Backend, TestApp, FRONTEND, PASSWORD,
};

both!(
    malformed_requests_are_client_errors,
    a_database_outage_is_a_503_to_retry,
    unknown_routes_and_methods,
    forged_and_expired_tokens,
    csrf_origin_check,
    cors_preflight,
    cors_left_to_the_gateway,
    rate_limits,
);

/// The JSON endpoints and the action their errors carry.
const JSON_ROUTES: [(&str, &str); 7] = [
    ("login", "login"),
    ("verify-email", "verify-email"),
    ("complete-registration", "complete-registration"),
    ("reset-password", "reset-password"),
    ("complete-reset", "complete-reset"),
    ("validate-token", "validate-token"),
    ("change-password", "change-password"),
];

async fn raw_post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    bearer: &str,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(path))
        .bearer_auth(bearer)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap()
}

async fn malformed_requests_are_client_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.register(&email("bad-input"), PASSWORD).await;
    let bearer = session.access.as_str();
    let json = Some("application/json");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge = format!("{{\"email\":\"{}\"}}", "a".repeat(100 * 1024));
    for (path, action) in JSON_ROUTES {
        let cases: Vec<(Option<&str>, Vec<u8>, StatusCode)> = vec![
            (json, b"{\"email\": ".to_vec(), StatusCode::BAD_REQUEST),
            (json, b"not json at all".to_vec(), StatusCode::BAD_REQUEST),
            (json, vec![0xff, 0xfe, b'{', b'}'], StatusCode::BAD_REQUEST),
            // Nesting past serde_json's recursion limit: a data error.
            (json, deep.clone().into_bytes(), StatusCode::UNPROCESSABLE_ENTITY),
            (json, Vec::new(), StatusCode::BAD_REQUEST),
            (Some("text/plain"), b"{}".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (None, b"{}".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (
                Some("application/x-www-form-urlencoded"),
                b"email=a%40b.c".to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (json, b"{}".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
            (json, b"[]".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
            (json, b"null".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
            (
                json,
                br#"{"email": 1, "password": [], "token": {}, "name": true, "country": 1.5, "newPassword": 7}"#
                    .to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (json, huge.clone().into_bytes(), StatusCode::PAYLOAD_TOO_LARGE),
        ];
        for (content_type, body, expected) in cases {
            let response = raw_post(&app, path, content_type, body.clone(), bearer).await;
            let what = format!(
                "{path} with {content_type:?} {:?}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
            assert_eq!(response.status(), expected, "{what}");
            let detail = assert_error(response, expected, action).await;
            assert!(!detail.is_empty(), "{what}");
        }
    }
    // Optional bodies (refresh, logout): a broken one is a client error with the error body (the
    // body is optional, not free-form); too large is 413 with the same error body.
    for body in [
        b"{oops".to_vec(),
        b"[1,2]".to_vec(),
        deep.clone().into_bytes(),
    ] {
        let response = raw_post(&app, "refresh", json, body.clone(), "garbage").await;
        let status = response.status();
        assert!(status.is_client_error(), "refresh: {status}");
        assert_error(response, status, "refresh").await;
        let response = raw_post(&app, "logout", json, body, "garbage").await;
        let status = response.status();
        assert!(status.is_client_error(), "logout: {status}");
        assert_error(response, status, "logout").await;
    }
    for (path, action) in [("refresh", "refresh"), ("logout", "logout")] {
        let response = raw_post(&app, path, json, huge.clone().into_bytes(), "garbage").await;
        let detail = assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, action).await;
        assert_eq!(detail, "Request body is too large");
    }
    // A broken query string.
    let response = app
        .client
        .get(format!("{}?token=%ZZ&email=%FF", app.url("verify-link")))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(status.is_client_error(), "{status}");
    assert_error(response, status, "verify-link").await;
    // The session is still fine after all that.
    app.assert_access_works(bearer).await;
}

async fn unknown_routes_and_methods(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("no-such-route", None).await;
    let detail = assert_error(response, StatusCode::NOT_FOUND, "no-such-route").await;
    assert_eq!(detail, "Not found");
    let response = app
        .client
        .get(format!("{}/elsewhere/entirely", app.root()))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "entirely").await;
    let response = app
        .client
        .post(app.url("sessions/a/b/c"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    for (method, path, action) in [
        (Method::GET, "login", "login"),
        (Method::PUT, "me", "me"),
        (Method::DELETE, "sessions", "sessions"),
        (Method::GET, "refresh", "refresh"),
        (Method::POST, ".well-known/jwks.json", "jwks.json"),
        (Method::PATCH, "verify-email", "verify-email"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let detail = assert_error(response, StatusCode::METHOD_NOT_ALLOWED, action).await;
        assert_eq!(detail, "Method not allowed", "{method} {path}");
    }
}

async fn forged_and_expired_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.register(&email("forged"), PASSWORD).await;
    let real = session.access.clone();
    let parts: Vec<&str> = real.split('.').collect();
    let header = jwt_header(&real);
    let mut claims = jwt_claims(&real);

    // Signed by a key that is not ours (its own kid), and the same spliced under our kid.
    let foreign_claims: auth_token::Claims = serde_json::from_value(claims.clone()).unwrap();
    let foreign = sign(&foreign_claims, attacker_key());
    let foreign_parts: Vec<&str> = foreign.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], foreign_parts[1], foreign_parts[2]);

    let mut none_header = header.clone();
    none_header["alg"] = json!("none");
    let alg_none = format!("{}.{}.", b64_json(&none_header), parts[1]);
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    let alg_hs = format!("{}.{}.{}", b64_json(&hs_header), parts[1], parts[2]);

    claims["role"] = json!(1);
    let tampered = format!("{}.{}.{}", parts[0], b64_json(&claims), parts[2]);

    let long = "a".repeat(10_000);
    let bad_tokens = [
        "garbage".to_string(),
        "a.b.c".to_string(),
        "..".to_string(),
        format!("{real}x"),
        foreign,
        spliced,
        alg_none,
        alg_hs,
        tampered,
        session.refresh.clone(),
        long,
        "Zm9v.YmFy.YmF6".to_string(),
    ];
    for token in &bad_tokens {
        let response = app.get("me", Some(token)).await;
        let detail = assert_error(response, StatusCode::UNAUTHORIZED, "me").await;
        assert_eq!(detail, "Invalid or expired token");
        assert_eq!(app.validate_status(token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.gateway_status(token).await, StatusCode::UNAUTHORIZED);
    }
    // Odd Authorization headers.
    for value in [
        "Bearer",
        "Bearer ",
        "Basic abc",
        "bearer",
        "Token x",
        "Bearer \u{7f}",
    ] {
        let Ok(request) = app
            .client
            .get(app.url("me"))
            .header("authorization", value)
            .build()
        else {
            continue;
        };
        let response = app.client.execute(request).await.unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "me").await;
    }
    app.assert_access_works(&real).await;

    // Expired: 15 min + 30 s leeway.
    app.clock.advance(900 + 31);
    app.assert_access_dead(&real).await;
    // The session itself lives on: refresh gives a working token.
    let response = app.refresh_body(&session.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    app.assert_access_works(body["access_token"].as_str().unwrap())
        .await;
}

async fn csrf_origin_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("csrf");
    let session = app.register(&addr, PASSWORD).await;
    let other = app.login(&addr, PASSWORD).await;
    let cookie = format!("access_token={}", session.access);
    let post = |headers: Vec<(&'static str, String)>| {
        let mut req = app.client.post(app.url("sessions/logout-others"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { req.send().await.unwrap() }
    };

    let refused = [
        vec![
            ("cookie", cookie.clone()),
            ("origin", "https://evil.example".into()),
        ],
        vec![("cookie", cookie.clone())],
        vec![
            ("cookie", cookie.clone()),
            ("referer", "https://evil.example/page".into()),
        ],
        vec![("cookie", cookie.clone()), ("origin", "null".into())],
        vec![
            ("cookie", cookie.clone()),
            ("origin", "http://localhost:3001".into()),
        ],
        // A refresh cookie alone counts as a credential too.
        vec![
            ("cookie", format!("refresh_token={}", session.refresh)),
            ("origin", "https://evil.example".into()),
        ],
    ];
    for headers in refused {
        let response = post(headers.clone()).await;
        assert_error(response, StatusCode::FORBIDDEN, "logout-others").await;
    }
    // Nothing happened.
    app.assert_access_works(&other.access).await;

    let response = post(vec![
        ("cookie", cookie.clone()),
        ("origin", FRONTEND.into()),
    ])
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.assert_access_dead(&other.access).await;
    let third = app.login(&addr, PASSWORD).await;
    let response = post(vec![
        ("cookie", cookie.clone()),
        ("referer", format!("{FRONTEND}/settings/sessions")),
    ])
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.assert_access_dead(&third.access).await;

    // Bearer clients carry no ambient credential: no Origin needed.
    let fourth = app.login(&addr, PASSWORD).await;
    let response = app
        .post_json_bearer("sessions/logout-others", &json!({}), &session.access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.assert_access_dead(&fourth.access).await;
    // Reads are not state-changing: a cross-site GET with the cookie is answered.
    let response = app
        .client
        .get(app.url("me"))
        .header("cookie", cookie.clone())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Login from the frontend without cookies needs no Origin.
    assert_eq!(
        app.login_body(&addr, PASSWORD).await.status(),
        StatusCode::OK
    );
}

async fn cors_preflight(backend: Backend) {
    let app = spawn_app(backend).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let response = preflight(FRONTEND).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let h = response.headers();
    assert_eq!(h["access-control-allow-origin"].to_str().unwrap(), FRONTEND);
    assert_eq!(
        h["access-control-allow-credentials"].to_str().unwrap(),
        "true"
    );
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("content-type"));

    let response = preflight("https://evil.example").await.unwrap();
    assert!(response.status().as_u16() < 500);
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));

    // Actual requests: the allowed origin is echoed, never a wildcard.
    let response = app
        .client
        .get(app.url("health"))
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"]
            .to_str()
            .unwrap(),
        FRONTEND
    );
    let response = app
        .client
        .get(app.url("health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
}

/// Moves the app clock to the start of a fixed window when the current one is about to end, so a
/// burst of requests lands in one window.
fn align_to_window(app: &TestApp, window: i64) {
    let into = app.clock.now().rem_euclid(window);
    if into > window - 20 {
        app.clock.advance(window - into);
    }
}

async fn rate_limits(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "3"),
        ],
    )
    .await;
    let addr = email("limited");
    align_to_window(&app, 60);
    // Registration spends two of the three (verify-email and complete-registration are separate).
    app.register(&addr, PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(app.verify_email(&addr).await.status(), StatusCode::OK);
    }
    let response = app.verify_email(&addr).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "verify-email").await;
    // Other routes count separately; reads are not limited.
    let response = app
        .post_json("reset-password", &json!({ "email": addr }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get("health", None).await.status(), StatusCode::OK);
    // The next window starts afresh.
    app.clock.advance(60);
    assert_eq!(app.verify_email(&addr).await.status(), StatusCode::OK);

    // Failed logins per address: unknown addresses are throttled exactly like real ones.
    let app = spawn_on(
        &app.env,
        &[
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "1000"),
            ("LOGIN_FAILURE_LIMIT", "3"),
        ],
    )
    .await;
    align_to_window(&app, 900);
    let unknown = email("nobody");
    for who in [&addr, &unknown] {
        for _ in 0..3 {
            let response = app.login_body(who, "wrong-password-1").await;
            assert_error(response, StatusCode::UNAUTHORIZED, "login").await;
        }
    }
    let limited_real = app.login_body(&addr, PASSWORD).await;
    let limited_unknown = app.login_body(&unknown, PASSWORD).await;
    assert_eq!(limited_real.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited_unknown.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited_real.bytes().await.unwrap(),
        limited_unknown.bytes().await.unwrap()
    );
    // Another address is not affected; after the window the right password works again.
    let other = email("other");
    app.register(&other, PASSWORD).await;
    app.login(&other, PASSWORD).await;
    app.clock.advance(900);
    app.login(&addr, PASSWORD).await;
}

/// `CORS_MODE=gateway`: no `Access-Control-*` header from the service (the gateway adds its own;
/// two `Access-Control-Allow-Origin` headers make browsers refuse), while the CSRF origin check on
/// cookie-authenticated writes still uses the allowed origins.
async fn cors_left_to_the_gateway(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("CORS_MODE", "gateway"),
            ("CORS_ALLOWED_ORIGINS", "http://localhost:5173"),
        ],
    )
    .await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("login"))
        .header("origin", FRONTEND)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    let health = app
        .client
        .get(app.url("health"))
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    for response in [preflight, health] {
        let cors: Vec<_> = response
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{cors:?}");
    }

    let addr = email("gateway-cors");
    let session = app.register(&addr, PASSWORD).await;
    let post = |origin: &'static str| {
        app.client
            .post(app.url("sessions/logout-others"))
            .header("cookie", format!("access_token={}", session.access))
            .header("origin", origin)
            .send()
    };
    let refused = post("https://evil.example").await.unwrap();
    assert_error(refused, StatusCode::FORBIDDEN, "logout-others").await;
    for origin in [FRONTEND, "http://localhost:5173"] {
        assert_eq!(post(origin).await.unwrap().status(), StatusCode::OK);
    }
}

/// The database going away is not a bug in the request: 503 with `Retry-After`, the error body,
/// and no 500, on every kind of route (a login, a refresh, an authenticated read).
async fn a_database_outage_is_a_503_to_retry(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = email("outage");
    let tokens = app.register(&user, PASSWORD).await;
    app.state.db.close().await;
    for (response, action) in [
        (app.login_body(&user, PASSWORD).await, "login"),
        (app.refresh_body(&tokens.refresh).await, "refresh"),
        (app.get("sessions", Some(&tokens.access)).await, "sessions"),
    ] {
        assert_eq!(response.headers()["retry-after"], "1", "{action}");
        let detail = assert_error(response, StatusCode::SERVICE_UNAVAILABLE, action).await;
        assert_eq!(detail, "Service temporarily unavailable");
    }
}
