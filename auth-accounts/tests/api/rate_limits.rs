//! Rate limits (`RATE_LIMIT_ENABLED=true`): per client address and route, the per-email failed-login
//! throttle, `X-Forwarded-For` from trusted proxies only, and counters shared through Redis by every
//! replica (with an in-process fallback when Redis is down).

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, email, json_body, spawn_app_with, spawn_on, Backend, Env, TestApp, PASSWORD,
};
use crate::peers::{align_to_window, wait_until, RedisServer};

const LIMITED: &[(&str, &str)] = &[("RATE_LIMIT_ENABLED", "true")];

/// A login with tokens in the body, optionally with an `X-Forwarded-For` header.
async fn login(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Response {
    let mut req = app
        .client
        .post(app.url("login"))
        .json(&json!({ "email": email, "password": password, "tokenDelivery": "body" }));
    if let Some(xff) = forwarded_for {
        req = req.header("X-Forwarded-For", xff);
    }
    req.send().await.expect("request")
}

/// Asserts a 429 with `Retry-After` (1..=window seconds) and the error body; returns the body.
async fn assert_limited(response: Response, action: &str, window: u64) -> Value {
    let retry_after: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .unwrap_or_else(|| panic!("429 without Retry-After: {:?}", response.headers()))
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is delta-seconds");
    assert!(
        (1..=window).contains(&retry_after),
        "Retry-After {retry_after} not within 1..={window}"
    );
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        body,
        json!({ "status": "error", "action": action, "detail": "Too many requests" })
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixth_login_in_a_minute_is_refused_and_refresh_allows_thirty() {
    let app = spawn_app_with(Backend::Sqlite, LIMITED).await;
    let user = email("limits");
    let mut tokens = app.register(&user, PASSWORD).await;
    align_to_window(&[&app.clock], 60);
    for i in 1..=5 {
        let response = login(&app, &user, PASSWORD, None).await;
        assert_eq!(response.status(), StatusCode::OK, "login {i}");
    }
    assert_limited(login(&app, &user, PASSWORD, None).await, "login", 60).await;
    // The limit is per route: refresh has its own budget of 30 a minute.
    for i in 1..=30 {
        let response = app.refresh_body(&tokens.refresh).await;
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(status, StatusCode::OK, "refresh {i}: {body}");
        tokens.refresh = body["refresh_token"].as_str().unwrap().to_string();
    }
    assert_limited(app.refresh_body(&tokens.refresh).await, "refresh", 60).await;
    // A new window starts a new budget.
    app.clock.advance(60);
    assert_eq!(
        login(&app, &user, PASSWORD, None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh_body(&tokens.refresh).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_login_throttle_answers_alike_for_unknown_emails() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "1000"),
            ("LOGIN_FAILURE_LIMIT", "3"),
        ],
    )
    .await;
    let known = email("known");
    app.register(&known, PASSWORD).await;
    let unknown = email("unknown");
    align_to_window(&[&app.clock], 900);
    let mut answers = Vec::new();
    for address in [&known, &unknown] {
        for _ in 1..=3 {
            let response = login(&app, address, "wrong-password-123", None).await;
            assert_error(response, StatusCode::UNAUTHORIZED, "login").await;
        }
        // Throttled now, even with the right password.
        let response = login(&app, address, PASSWORD, None).await;
        answers.push(assert_limited(response, "login", 900).await);
    }
    assert_eq!(
        answers[0], answers[1],
        "same answer for a real and an unknown email"
    );
    // Per email: another account is not affected.
    let other = email("other");
    app.register(&other, PASSWORD).await;
    assert_eq!(
        login(&app, &other, PASSWORD, None).await.status(),
        StatusCode::OK
    );
    // The throttle ends with its window.
    app.clock.advance(900);
    assert_eq!(
        login(&app, &known, PASSWORD, None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let env = Env::new(Backend::Sqlite).await;
    let trusting = spawn_on(
        &env,
        &[
            ("RATE_LIMIT_ENABLED", "true"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let plain = spawn_on(&env, LIMITED).await;
    let user = email("xff");
    trusting.register(&user, PASSWORD).await;

    // Behind a trusted proxy each forwarded client has its own budget.
    align_to_window(&[&trusting.clock], 60);
    for i in 1..=5 {
        let response = login(&trusting, &user, PASSWORD, Some("203.0.113.10")).await;
        assert_eq!(response.status(), StatusCode::OK, "client A login {i}");
    }
    assert_limited(
        login(&trusting, &user, PASSWORD, Some("203.0.113.10")).await,
        "login",
        60,
    )
    .await;
    for i in 1..=5 {
        let response = login(&trusting, &user, PASSWORD, Some("203.0.113.11")).await;
        assert_eq!(response.status(), StatusCode::OK, "client B login {i}");
    }
    assert_limited(
        login(&trusting, &user, PASSWORD, Some("203.0.113.11")).await,
        "login",
        60,
    )
    .await;
    // A spoofed left-hand entry does not buy a new budget: the proxy appends the real client.
    assert_limited(
        login(
            &trusting,
            &user,
            PASSWORD,
            Some("198.51.100.1, 203.0.113.10"),
        )
        .await,
        "login",
        60,
    )
    .await;

    // Without TRUSTED_PROXIES the header is ignored: one budget for the TCP peer.
    align_to_window(&[&plain.clock], 60);
    for i in 1..=5 {
        let xff = format!("203.0.113.{}", 20 + i);
        let response = login(&plain, &user, PASSWORD, Some(&xff)).await;
        assert_eq!(response.status(), StatusCode::OK, "login {i} ({xff})");
    }
    assert_limited(
        login(&plain, &user, PASSWORD, Some("203.0.113.99")).await,
        "login",
        60,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_shared_through_redis_and_survive_its_outage() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let env = Env::new(Backend::Sqlite).await;
    let vars = [("RATE_LIMIT_ENABLED", "true"), ("REDIS_URL", url.as_str())];
    let a = spawn_on(&env, &vars).await;
    let b = spawn_on(&env, &vars).await;
    let user = email("shared");
    a.register(&user, PASSWORD).await;
    let health = json_body(a.get("health", None).await).await;
    assert_eq!(health["components"]["redis"], "ok", "{health}");
    assert_eq!(health["status"], "ok", "{health}");

    // One budget for both replicas: 3 on A and 3 on B make the sixth.
    align_to_window(&[&a.clock, &b.clock], 60);
    for (i, app) in [&a, &a, &a, &b, &b].into_iter().enumerate() {
        let response = login(app, &user, PASSWORD, None).await;
        assert_eq!(response.status(), StatusCode::OK, "login {}", i + 1);
    }
    assert_limited(login(&b, &user, PASSWORD, None).await, "login", 60).await;
    assert_limited(login(&a, &user, PASSWORD, None).await, "login", 60).await;

    // Redis goes away. Requests keep working; each replica limits on its own.
    redis.stop();
    a.clock.advance(60);
    b.clock.advance(60);
    for (name, app) in [("A", &a), ("B", &b)] {
        for i in 1..=5 {
            let started = Instant::now();
            let response = login(app, &user, PASSWORD, None).await;
            let status = response.status();
            let body = json_body(response).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "replica {name}, login {i} with Redis down: {body}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "replica {name}, login {i} took {:?} with Redis down",
                started.elapsed()
            );
        }
        assert_limited(login(app, &user, PASSWORD, None).await, "login", 60).await;
    }
    // Health checks are reused for two seconds: wait for a fresh one.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = a.get("health", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let health = json_body(response).await;
    assert_eq!(health["components"]["redis"], "down", "{health}");
    assert_eq!(health["components"]["database"], "ok", "{health}");
    assert_eq!(health["status"], "degraded", "{health}");

    // Redis is back (empty, same address): both replicas share one budget again within seconds.
    let _redis = RedisServer::start_on(redis.port).await;
    for app in [&a, &b] {
        wait_until("health: redis ok", Duration::from_secs(10), || async {
            json_body(app.get("health", None).await).await["components"]["redis"] == "ok"
        })
        .await;
    }
    // The limiters leave Redis alone for a moment after a failure.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    align_to_window(&[&a.clock, &b.clock], 60);
    for (i, app) in [&b, &b, &b, &a, &a].into_iter().enumerate() {
        let response = login(app, &user, PASSWORD, None).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "login {} after recovery",
            i + 1
        );
    }
    assert_limited(login(&a, &user, PASSWORD, None).await, "login", 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_that_hashes_is_rate_limited() {
    let app = spawn_app_with(Backend::Sqlite, LIMITED).await;
    let user = email("hashes");
    let tokens = app.register(&user, PASSWORD).await;
    align_to_window(&[&app.clock], 60);
    let reset = json!({ "email": user, "token": "not-the-token", "newPassword": "NewPass123!" });
    for i in 1..=5 {
        let response = app.post_json("complete-reset", &reset).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "complete-reset {i}"
        );
    }
    assert_limited(
        app.post_json("complete-reset", &reset).await,
        "complete-reset",
        60,
    )
    .await;
    let change = json!({ "password": "wrong-password-1", "newPassword": "NewPass123!" });
    for i in 1..=5 {
        let response = app
            .post_json_bearer("change-password", &change, &tokens.access)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "change-password {i}"
        );
    }
    assert_limited(
        app.post_json_bearer("change-password", &change, &tokens.access)
            .await,
        "change-password",
        60,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_current_passwords_count_as_failed_logins() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "1000"),
            ("LOGIN_FAILURE_LIMIT", "3"),
        ],
    )
    .await;
    let user = email("guess");
    let tokens = app.register(&user, PASSWORD).await;
    align_to_window(&[&app.clock], 900);
    let guess = json!({ "password": "wrong-password-1", "newPassword": "NewPass123!" });
    for _ in 1..=3 {
        let response = app
            .post_json_bearer("change-password", &guess, &tokens.access)
            .await;
        assert_error(response, StatusCode::UNAUTHORIZED, "change-password").await;
    }
    // Throttled now, even with the right current password, and so is a login.
    let right = json!({ "password": PASSWORD, "newPassword": "NewPass123!" });
    assert_limited(
        app.post_json_bearer("change-password", &right, &tokens.access)
            .await,
        "change-password",
        900,
    )
    .await;
    assert_limited(login(&app, &user, PASSWORD, None).await, "login", 900).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_reset_token_costs_no_password_hash() {
    // An expensive hash (bcrypt cost 14) makes the difference plain: a wrong token is answered
    // after a lookup, a right one after a hash.
    let app = spawn_app_with(Backend::Sqlite, &[("BCRYPT_COST", "14")]).await;
    let user = email("cheap");
    app.register(&user, PASSWORD).await;
    let wrong = json!({ "email": user, "token": "not-the-token", "newPassword": "NewPass123!" });
    let started = Instant::now();
    let response = app.post_json("complete-reset", &wrong).await;
    let wrong_took = started.elapsed();
    assert_error(response, StatusCode::UNAUTHORIZED, "complete-reset").await;
    let response = app
        .post_json("reset-password", &json!({ "email": user }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = app.latest_mail_token(&user).await;
    let right = json!({ "email": user, "token": token, "newPassword": "NewPass123!" });
    let started = Instant::now();
    let response = app.post_json("complete-reset", &right).await;
    let right_took = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        wrong_took * 5 < right_took,
        "a wrong token took {wrong_took:?}, a right one {right_took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_elsewhere_cannot_lock_the_owner_out_until_the_account_ceiling() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "1000"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("LOGIN_FAILURE_LIMIT", "3"),
            ("LOGIN_FAILURE_ACCOUNT_LIMIT", "5"),
        ],
    )
    .await;
    let owner = email("owner");
    app.register(&owner, PASSWORD).await;
    align_to_window(&[&app.clock], 900);
    for _ in 1..=3 {
        let r = login(&app, &owner, "wrong-password-1", Some("203.0.113.66")).await;
        assert_error(r, StatusCode::UNAUTHORIZED, "login").await;
    }
    // The guesser is throttled; the owner, from their own address, is not.
    assert_limited(
        login(&app, &owner, PASSWORD, Some("203.0.113.66")).await,
        "login",
        900,
    )
    .await;
    assert_eq!(
        login(&app, &owner, PASSWORD, Some("198.51.100.20"))
            .await
            .status(),
        StatusCode::OK
    );
    // Guessing from many addresses meets the looser per-account ceiling (5 in all).
    for ip in ["203.0.113.67", "203.0.113.68"] {
        let r = login(&app, &owner, "wrong-password-1", Some(ip)).await;
        assert_error(r, StatusCode::UNAUTHORIZED, "login").await;
    }
    assert_limited(
        login(&app, &owner, PASSWORD, Some("198.51.100.20")).await,
        "login",
        900,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_share_a_bucket_per_64() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("RATE_LIMIT_ENABLED", "true"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let user = email("v6");
    app.register(&user, PASSWORD).await;
    align_to_window(&[&app.clock], 60);
    // Five logins from five addresses of one /64 (with a port, as some proxies write them).
    for i in 1..=5 {
        let xff = format!("[2001:db8:7:7::{i}]:4430");
        let r = login(&app, &user, PASSWORD, Some(&xff)).await;
        assert_eq!(r.status(), StatusCode::OK, "login {i}");
    }
    assert_limited(
        login(&app, &user, PASSWORD, Some("2001:db8:7:7::99")).await,
        "login",
        60,
    )
    .await;
    // Another /64 has its own budget.
    assert_eq!(
        login(&app, &user, PASSWORD, Some("2001:db8:7:8::1"))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_inbox_gets_at_most_five_emails_an_hour() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "1000"),
        ],
    )
    .await;
    align_to_window(&[&app.clock], 3600);
    let victim = email("inbox");
    for _ in 1..=7 {
        let r = app.verify_email(&victim).await;
        assert_eq!(r.status(), StatusCode::OK, "the answer never changes");
    }
    app.wait_for_mail_relay().await;
    assert_eq!(app.mails_to(&victim).await.len(), 5);
    // The last link sent still works: nothing was replaced by the refused requests.
    let token = app.latest_mail_token(&victim).await;
    let body = crate::helpers::TestApp::registration_body(&victim, &token, PASSWORD);
    assert_eq!(
        app.post_json("complete-registration", &body).await.status(),
        StatusCode::OK
    );
}
