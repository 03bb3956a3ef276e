//! Login (cookie and body delivery), logout, a browser-like cookie flow, and the outbox events.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    cookie_value, email, json_body, set_cookies, spawn_app, spawn_app_with, Backend, FRONTEND,
    PASSWORD,
};

both!(
    cookie_delivery_sets_secure_cookies,
    body_delivery_returns_tokens,
    bad_credentials_look_the_same,
    browser_cookie_flow,
    logout_revokes_at_once,
    events_are_recorded_without_secrets,
);

fn attrs(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

async fn cookie_delivery_sets_secure_cookies(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("cookie");
    app.register(&addr, PASSWORD).await;
    let response = app
        .post_json("login", &json!({ "email": addr, "password": PASSWORD }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(&response);
    let access = cookies
        .iter()
        .find(|c| c.starts_with("access_token=") && !c.starts_with("access_token=;"))
        .expect("access_token cookie");
    let refresh = cookies
        .iter()
        .find(|c| c.starts_with("refresh_token=") && !c.starts_with("refresh_token=;"))
        .expect("refresh_token cookie");
    let a = attrs(access);
    for wanted in [
        "httponly",
        "secure",
        "samesite=lax",
        "path=/",
        "max-age=900",
    ] {
        assert!(a.contains(&wanted.to_string()), "{wanted} in {access}");
    }
    let r = attrs(refresh);
    for wanted in [
        "httponly",
        "secure",
        "samesite=lax",
        "path=/api/v1/auth",
        "max-age=2592000",
    ] {
        assert!(r.contains(&wanted.to_string()), "{wanted} in {refresh}");
    }
    let access_token = cookie_value(&response, "access_token").unwrap();
    let body = json_body(response).await;
    assert_eq!(body["status"], "success");
    assert_eq!(body["action"], "login");
    assert_eq!(body["user"]["email"], addr.as_str());
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    let text = body.to_string();
    assert!(!text.contains(&access_token), "no token in the JSON");
    // The cookie authenticates (GET needs no Origin).
    let me = app
        .client
        .get(app.url("me"))
        .header("cookie", format!("access_token={access_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
}

async fn body_delivery_returns_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("body");
    let registered = app.register(&addr, PASSWORD).await;
    for key in ["tokenDelivery", "token_delivery"] {
        let response = app
            .post_json(
                "login",
                &json!({ "email": addr, "password": PASSWORD, key: "body" }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{key}");
        assert!(
            set_cookies(&response).is_empty(),
            "no Set-Cookie with {key}"
        );
        assert_eq!(
            response.headers()["cache-control"].to_str().unwrap(),
            "no-store"
        );
        let body = json_body(response).await;
        // OAuth 2.0's names (RFC 6749 5.1), as the old service's README documented them.
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(body.get("accessToken").is_none() && body.get("tokenType").is_none());
        assert_eq!(body["user"]["id"], registered.user_id.as_str());
        let access = body["access_token"].as_str().unwrap();
        let refresh = body["refresh_token"].as_str().unwrap();
        assert_eq!(refresh.len(), 43);
        assert_ne!(refresh, registered.refresh);
        app.assert_access_works(access).await;
    }
}

async fn bad_credentials_look_the_same(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("creds");
    app.register(&addr, PASSWORD).await;
    let wrong_password = app.login_body(&addr, "wrong-password-1").await;
    let unknown_user = app.login_body(&email("nobody"), PASSWORD).await;
    let malformed = app.login_body("not-an-email", PASSWORD).await;
    let mut bodies = Vec::new();
    for response in [wrong_password, unknown_user, malformed] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key("www-authenticate"));
        bodies.push(response.bytes().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
    let body: Value = serde_json::from_slice(&bodies[0]).unwrap();
    assert_eq!(
        body,
        json!({"status": "error", "action": "login", "detail": "Invalid credentials"})
    );
    let failed = app
        .events()
        .await
        .iter()
        .filter(|e| *e == "user.login_failed")
        .count();
    assert_eq!(failed, 3);
}

async fn browser_cookie_flow(backend: Backend) {
    let app = spawn_app_with(backend, &[("COOKIE_SECURE", "false")]).await;
    let addr = email("browser");
    app.register(&addr, PASSWORD).await;
    let browser = app.cookie_client();
    let response = browser
        .post(app.url("login"))
        .json(&json!({ "email": addr, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for cookie in set_cookies(&response) {
        assert!(!attrs(&cookie).contains(&"secure".to_string()), "{cookie}");
    }
    let first_refresh = cookie_value(&response, "refresh_token").unwrap();
    let me = browser.get(app.url("me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(json_body(me).await["email"], addr.as_str());

    // Refresh from the cookie alone answers with new cookies.
    let response = browser.post(app.url("refresh")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let second_refresh = cookie_value(&response, "refresh_token").expect("rotated cookie");
    assert_ne!(first_refresh, second_refresh);
    let body = json_body(response).await;
    assert!(body.get("refresh_token").is_none() && body.get("access_token").is_none());
    assert_eq!(
        browser.get(app.url("me")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // Logout clears the cookies and ends the session.
    let response = browser.post(app.url("logout")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cleared = set_cookies(&response);
    assert!(cleared
        .iter()
        .any(|c| c.starts_with("access_token=;") && c.contains("Max-Age=0")));
    assert!(cleared
        .iter()
        .any(|c| c.starts_with("refresh_token=;") && c.contains("Path=/api/v1/auth")));
    assert_eq!(
        browser.get(app.url("me")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    app.assert_refresh_dead(&second_refresh).await;
}

async fn logout_revokes_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("logout");
    let a = app.register(&addr, PASSWORD).await;
    let b = app.login(&addr, PASSWORD).await;

    // With the access token (Bearer).
    let response = app.post_json_bearer("logout", &json!({}), &a.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await,
        json!({"status": "success", "action": "logout", "detail": "Logged out."})
    );
    app.assert_access_dead(&a.access).await;
    app.assert_refresh_dead(&a.refresh).await;
    app.assert_access_works(&b.access).await;

    // With only the refresh token (snake_case key) or no body at all: 200. A body that is not
    // JSON is a client error with the error body (it ends nothing).
    let response = app
        .post_json("logout", &json!({ "refresh_token": b.refresh }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.assert_access_dead(&b.access).await;
    app.assert_refresh_dead(&b.refresh).await;
    let response = app.client.post(app.url("logout")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .client
        .post(app.url("logout"))
        .bearer_auth("garbage")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["action"], "logout");
    let logouts = app
        .events()
        .await
        .iter()
        .filter(|e| *e == "user.logout")
        .count();
    assert_eq!(logouts, 2, "one event per ended session");
    // The cookie variant needs an allowed Origin (CSRF), then ends the session.
    let c = app.login(&addr, PASSWORD).await;
    let response = app
        .client
        .post(app.url("logout"))
        .header("cookie", format!("access_token={}", c.access))
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.assert_access_dead(&c.access).await;
}

async fn events_are_recorded_without_secrets(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("events");
    let registered = app.register(&addr, PASSWORD).await;
    let logged_in = app.login(&addr, PASSWORD).await;
    let response = app.refresh_body(&logged_in.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed = json_body(response).await;
    let new_access = refreshed["access_token"].as_str().unwrap().to_string();
    let new_refresh = refreshed["refresh_token"].as_str().unwrap().to_string();
    let response = app
        .post_json_bearer("logout", &json!({}), &new_access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let rows = app.event_rows().await;
    let types: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    for wanted in [
        "user.verification_started",
        "user.registered",
        "user.login",
        "user.token_refreshed",
        "user.logout",
    ] {
        assert!(types.contains(&wanted), "{wanted} in {types:?}");
    }
    let secrets = [
        PASSWORD,
        &registered.access,
        &registered.refresh,
        &logged_in.access,
        &logged_in.refresh,
        &new_access,
        &new_refresh,
    ];
    for (event_type, payload) in &rows {
        let envelope: Value = serde_json::from_str(payload).expect("payload is JSON");
        assert_eq!(envelope["eventType"], event_type.as_str());
        assert_eq!(envelope["source"], "auth-accounts");
        assert!(envelope["eventId"].as_str().is_some_and(|s| s.len() == 36));
        assert!(envelope["occurredAt"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')));
        assert!(envelope.get("userId").is_some() && envelope["data"].is_object());
        if event_type != "user.verification_started" {
            assert_eq!(envelope["userId"], registered.user_id.as_str(), "{payload}");
        }
        for secret in secrets {
            assert!(!payload.contains(secret), "{event_type} leaks a secret");
        }
    }
}
