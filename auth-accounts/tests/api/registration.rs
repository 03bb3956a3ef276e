//! verify-email -> verify-link -> complete-registration; one-time tokens; input validation.

use reqwest::StatusCode;
use serde_json::json;

use auth_accounts::crypto::sha256_hex;

use crate::helpers::{
    assert_error, cookie_value, email, json_body, spawn_app, spawn_app_with, Backend, TestApp,
    FRONTEND, PASSWORD,
};

both!(
    full_flow_with_cookies,
    verify_link_does_not_consume,
    one_time_token_is_hashed_and_single_use,
    one_time_token_expires,
    new_verify_email_invalidates_previous_token,
    verify_link_parameters,
    verify_email_does_not_reveal_accounts,
    email_is_normalised,
    validation,
    long_passwords,
    identifier_first_mode,
    link_paths_are_configurable_and_keep_the_frontend_path,
);

fn is_base64url_token(t: &str) -> bool {
    t.len() == 43
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn full_flow_with_cookies(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("flow");
    let response = app.verify_email(&addr).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await,
        json!({"status": "success", "action": "sign_up", "detail": "Verification email sent."})
    );
    let mail = app.latest_mail(&addr).await;
    assert_eq!(mail.to, addr);
    assert_eq!(mail.link_path().as_deref(), Some("/auth/registration"));
    let token = mail.token().expect("verification link has a token");
    assert!(is_base64url_token(&token), "{token:?}");
    let link = mail.links().pop().unwrap();
    assert!(link.query_pairs().any(|(k, v)| k == "email" && v == addr));

    // Default delivery: cookies, and no tokens in the JSON.
    let response = app
        .post_json(
            "complete-registration",
            &json!({ "email": addr, "token": token, "password": PASSWORD, "name": "  Ann  ", "country": "Russia" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-store"
    );
    let access = cookie_value(&response, "access_token").expect("access_token cookie");
    assert!(cookie_value(&response, "refresh_token").is_some());
    let body = json_body(response).await;
    assert_eq!(body["status"], "success");
    assert_eq!(body["action"], "completeRegistration");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    let user_id = body["userId"].as_str().unwrap().to_string();

    // The access cookie authenticates /me.
    let me = app
        .client
        .get(app.url("me"))
        .header("cookie", format!("access_token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me = json_body(me).await;
    assert_eq!(me["userId"], user_id.as_str());
    assert_eq!(me["email"], addr.as_str());
    assert_eq!(me["name"], "Ann");
    assert_eq!(me["country"], "Russia");

    let events = app.events().await;
    for wanted in ["user.verification_started", "user.registered"] {
        assert!(events.iter().any(|e| e == wanted), "{wanted} in {events:?}");
    }
}

async fn verify_link_does_not_consume(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("link");
    let token = app.verification_token(&addr).await;
    for query in [
        vec![("token", token.as_str()), ("email", addr.as_str())],
        vec![
            ("token", token.as_str()),
            ("email", addr.as_str()),
            ("token_type", "verification"),
        ],
        vec![
            ("token", token.as_str()),
            ("email", addr.as_str()),
            ("tokenType", "verification"),
        ],
    ] {
        let response = app
            .client
            .get(app.url("verify-link"))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{query:?}");
        assert_eq!(json_body(response).await["status"], "success");
    }
    // Still usable after three checks.
    let response = app
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&addr, &token, PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(app
        .events()
        .await
        .iter()
        .any(|e| e == "user.verification_validated"));
}

async fn one_time_token_is_hashed_and_single_use(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("once");
    let token = app.verification_token(&addr).await;
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT purpose, email, token_hash FROM one_time_tokens")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let (purpose, stored_email, hash) = &rows[0];
    assert_eq!(purpose, "verification");
    assert_eq!(stored_email, &addr);
    assert_ne!(hash, &token);
    assert!(!hash.contains(&token));
    assert_eq!(hash, &sha256_hex(&token));

    let body = TestApp::registration_body(&addr, &token, PASSWORD);
    assert_eq!(
        app.post_json("complete-registration", &body).await.status(),
        StatusCode::OK
    );
    // Used up: the row is gone and a second use is refused.
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM one_time_tokens")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let response = app.post_json("complete-registration", &body).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "complete-registration").await;
    let response = app
        .client
        .get(app.url("verify-link"))
        .query(&[("token", &token), ("email", &addr)])
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "verify-link").await;
}

async fn one_time_token_expires(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("expiry");
    let token = app.verification_token(&addr).await;
    let check = || async {
        app.client
            .get(app.url("verify-link"))
            .query(&[("token", &token), ("email", &addr)])
            .send()
            .await
            .unwrap()
            .status()
    };
    app.clock.advance(880);
    assert_eq!(check().await, StatusCode::OK, "still valid at 14m40s");
    app.clock.advance(21);
    assert_eq!(
        check().await,
        StatusCode::UNAUTHORIZED,
        "expired after 15 min"
    );
    let response = app
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&addr, &token, PASSWORD),
        )
        .await;
    let detail = assert_error(response, StatusCode::UNAUTHORIZED, "complete-registration").await;
    assert!(detail.contains("expired"), "{detail}");
}

async fn new_verify_email_invalidates_previous_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("again");
    let first = app.verification_token(&addr).await;
    let second = app.verification_token(&addr).await;
    assert_ne!(first, second);
    assert_eq!(app.mails_to(&addr).await.len(), 2);
    let response = app
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&addr, &first, PASSWORD),
        )
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "complete-registration").await;
    let response = app
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&addr, &second, PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn verify_link_parameters(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("params");
    let token = app.verification_token(&addr).await;
    let get = |query: Vec<(&'static str, String)>| {
        let req = app.client.get(app.url("verify-link")).query(&query);
        async move { req.send().await.unwrap() }
    };
    // Missing parameters and an unknown token type: 400.
    for query in [
        vec![],
        vec![("token", token.clone())],
        vec![("email", addr.clone())],
        vec![
            ("token", token.clone()),
            ("email", addr.clone()),
            ("token_type", "magic".to_string()),
        ],
    ] {
        assert_error(get(query).await, StatusCode::BAD_REQUEST, "verify-link").await;
    }
    // A verification token is not a reset token; a wrong token or address is refused.
    for query in [
        vec![
            ("token", token.clone()),
            ("email", addr.clone()),
            ("token_type", "reset".to_string()),
        ],
        vec![("token", "A".repeat(43)), ("email", addr.clone())],
        vec![("token", token.clone()), ("email", email("other"))],
        vec![
            ("token", token.clone()),
            ("email", "not-an-email".to_string()),
        ],
    ] {
        assert_error(get(query).await, StatusCode::UNAUTHORIZED, "verify-link").await;
    }
}

async fn verify_email_does_not_reveal_accounts(backend: Backend) {
    let app = spawn_app(backend).await;
    let known = email("known");
    let unknown = email("unknown");
    app.register(&known, PASSWORD).await;

    let a = app.verify_email(&known).await;
    let b = app.verify_email(&unknown).await;
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(a.status(), b.status());
    let (a, b) = (a.bytes().await.unwrap(), b.bytes().await.unwrap());
    assert_eq!(a, b, "identical bodies for registered and unregistered");

    // Only the email differs; it links the frontend's sign-in page (where a reset starts).
    let to_known = app.latest_mail(&known).await;
    assert_eq!(to_known.link_path().as_deref(), Some("/auth/sign-in"));
    assert!(
        to_known.token().is_none(),
        "no registration link: {to_known:?}"
    );
    assert!(!to_known.raw.contains("/auth/login") && !to_known.raw.contains("forgot-password"));
    let to_unknown = app.latest_mail(&unknown).await;
    assert_eq!(
        to_unknown.link_path().as_deref(),
        Some("/auth/registration")
    );
    assert!(to_unknown.token().is_some());
    assert_ne!(to_known.subject, to_unknown.subject);
}

async fn email_is_normalised(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let messy = format!(" Bob-{id}@Example.COM ");
    let clean = format!("bob-{id}@example.com");
    assert_eq!(app.verify_email(&messy).await.status(), StatusCode::OK);
    let token = app.latest_mail_token(&clean).await;
    let response = app
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&messy, &token, PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = app
        .login(&format!("BOB-{}@example.com", id.to_uppercase()), PASSWORD)
        .await;
    let me = json_body(app.get("me", Some(&tokens.access)).await).await;
    assert_eq!(me["email"], clean.as_str());
}

async fn validation(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in ["", "plain", "a@b", "a b@example.com", "@example.com"] {
        let response = app.verify_email(bad).await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "verify-email").await;
    }
    let addr = email("valid");
    let token = app.verification_token(&addr).await;
    let base = TestApp::registration_body(&addr, &token, PASSWORD);
    let with = |key: &str, value: serde_json::Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let cases = [
        with("email", json!("not-an-email")),
        with("password", json!("1234567")),
        with("password", json!("x".repeat(129))),
        with("name", json!("   ")),
        with("name", json!("n".repeat(256))),
        with("country", json!(" \t ")),
        with("country", json!("c".repeat(101))),
        with("name", json!(42)),
    ];
    for body in cases {
        let response = app.post_json("complete-registration", &body).await;
        let detail = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "complete-registration",
        )
        .await;
        assert!(!detail.is_empty());
    }
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("country");
    let response = app.post_json("complete-registration", &missing).await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "complete-registration",
    )
    .await;
    // Refused requests did not use the token up; limits are inclusive.
    let ok = with("name", json!("n".repeat(255)));
    let ok = {
        let mut ok = ok;
        ok["country"] = json!("c".repeat(100));
        ok
    };
    let response = app.post_json("complete-registration", &ok).await;
    assert_eq!(response.status(), StatusCode::OK);
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

async fn long_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("long");
    // 128 characters, 200 bytes: above bcrypt's 72-byte input limit.
    let password = format!("{}{}", "a".repeat(72), "я".repeat(56));
    assert_eq!(password.chars().count(), 128);
    app.register(&addr, &password).await;
    assert_eq!(
        app.login_body(&addr, &password).await.status(),
        StatusCode::OK
    );
    let same_prefix = format!("{}{}", "a".repeat(72), "b".repeat(56));
    let response = app.login_body(&addr, &same_prefix).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "login").await;
    let truncated = "a".repeat(72);
    let response = app.login_body(&addr, &truncated).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "login").await;
}

/// `VERIFY_EMAIL_MODE=identifier-first`: the old service's answers, which the SmartBudget frontend
/// needs to sign in (email -> `sign_in` -> password); still rate limited.
async fn identifier_first_mode(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("VERIFY_EMAIL_MODE", "identifier-first"),
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_AUTH_PER_MINUTE", "3"),
        ],
    )
    .await;
    let known = email("idfirst-known");
    let unknown = email("idfirst-new");
    app.register(&known, PASSWORD).await;
    let mails_before = app.mails_to(&known).await.len();

    let response = app.verify_email(&known).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await,
        json!({"status": "success", "action": "sign_in", "detail": "Complete sign in."})
    );
    let response = app.verify_email(&unknown).await;
    assert_eq!(json_body(response).await["action"], "sign_up");
    assert_eq!(
        app.latest_mail(&unknown).await.link_path().as_deref(),
        Some("/auth/registration")
    );
    // Nothing is emailed to the registered address.
    app.wait_for_mail_relay().await;
    assert_eq!(app.mails_to(&known).await.len(), mails_before);

    // The per-route limit still applies: 7 quick calls span at most two one-minute windows of 3.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(app.verify_email(&known).await.status());
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

async fn link_paths_are_configurable_and_keep_the_frontend_path(backend: Backend) {
    let base = format!("{FRONTEND}/budget/");
    let app = spawn_app_with(
        backend,
        &[
            ("FRONTEND_URL", base.as_str()),
            ("FRONTEND_REGISTRATION_PATH", "/signup"),
            ("FRONTEND_RESET_PASSWORD_PATH", "/reset"),
            ("FRONTEND_SIGN_IN_PATH", "/in"),
        ],
    )
    .await;
    let addr = email("paths");
    app.verify_email(&addr).await;
    assert_eq!(
        app.latest_mail(&addr).await.link_path().as_deref(),
        Some("/budget/signup")
    );
    let token = app.latest_mail_token(&addr).await;
    let response = app
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&addr, &token, PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.verify_email(&addr).await;
    assert_eq!(
        app.latest_mail(&addr).await.link_path().as_deref(),
        Some("/budget/in")
    );
    let response = app
        .post_json("reset-password", &json!({ "email": addr }))
        .await;
    assert_eq!(json_body(response).await["action"], "resetPassword");
    assert_eq!(
        app.latest_mail(&addr).await.link_path().as_deref(),
        Some("/budget/reset")
    );
}
