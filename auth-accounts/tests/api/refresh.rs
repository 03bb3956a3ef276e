//! Refresh-token rotation, the grace window, reuse detection and concurrent refreshes.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, cookie_value, email, json_body, set_cookies, spawn_app, spawn_app_with, Backend,
    FRONTEND, PASSWORD,
};

both!(
    rotation_and_reuse_detection,
    retry_within_grace_window_is_consistent,
    token_from_body_keys_or_cookie,
    concurrent_refreshes_agree,
    unknown_tokens_revoke_nothing,
    a_refresh_cookie_is_never_exchanged_for_body_tokens,
    sessions_end_at_their_absolute_lifetime,
    the_grace_answer_goes_only_to_the_client_that_rotated,
);

async fn refreshed(response: reqwest::Response) -> (String, String) {
    let status = response.status();
    let body: Value = json_body(response).await;
    assert_eq!(status, StatusCode::OK, "refresh: {body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["action"], "refresh");
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn rotation_and_reuse_detection(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("rotate");
    let session = app.register(&addr, PASSWORD).await;
    let other = app.login(&addr, PASSWORD).await;

    let (access1, refresh1) = refreshed(app.refresh_body(&session.refresh).await).await;
    assert_ne!(refresh1, session.refresh, "rotated on use");
    assert_eq!(refresh1.len(), 43);
    app.assert_access_works(&access1).await;
    let (access2, refresh2) = refreshed(app.refresh_body(&refresh1).await).await;
    assert_ne!(refresh2, refresh1);

    // The token before the current one, after the grace window: reuse. The family dies.
    app.clock.advance(11);
    app.assert_refresh_dead(&refresh1).await;
    app.assert_refresh_dead(&refresh2).await;
    app.assert_access_dead(&access2).await;
    app.assert_access_dead(&access1).await;
    let events = app.events().await;
    assert!(
        events.iter().any(|e| e == "user.refresh_token_reused"),
        "{events:?}"
    );
    // Another session of the same user is not part of the family.
    app.assert_access_works(&other.access).await;
    let (_, _) = refreshed(app.refresh_body(&other.refresh).await).await;

    // An even older token (generation 0) after the family was revoked: still refused.
    app.assert_refresh_dead(&session.refresh).await;
}

async fn retry_within_grace_window_is_consistent(backend: Backend) {
    // With the default rate limits on: retries must not be throttled.
    let app = spawn_app_with(backend, &[("RATE_LIMIT_ENABLED", "true")]).await;
    let addr = email("grace");
    let session = app.register(&addr, PASSWORD).await;
    let (access1, refresh1) = refreshed(app.refresh_body(&session.refresh).await).await;
    app.clock.advance(5);
    for _ in 0..3 {
        let response = app.refresh_body(&session.refresh).await;
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let (access, refresh) = refreshed(response).await;
        assert_eq!(refresh, refresh1, "the same successor");
        app.assert_access_works(&access).await;
    }
    // Nothing was revoked: the first answer's tokens still work and the successor rotates on.
    app.assert_access_works(&access1).await;
    assert!(!app
        .events()
        .await
        .iter()
        .any(|e| e == "user.refresh_token_reused"));
    let (_, refresh2) = refreshed(app.refresh_body(&refresh1).await).await;
    assert_ne!(refresh2, refresh1);
    // Now the original is two generations old: reuse, even inside the grace window.
    app.assert_refresh_dead(&session.refresh).await;
    app.assert_refresh_dead(&refresh2).await;
}

async fn token_from_body_keys_or_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("inputs");
    let session = app.register(&addr, PASSWORD).await;

    // snake_case key.
    let response = app
        .post_json("refresh", &json!({ "refresh_token": session.refresh }))
        .await;
    assert!(set_cookies(&response).is_empty());
    let (_, refresh1) = refreshed(response).await;

    // Body token, cookie delivery requested.
    let response = app
        .post_json(
            "refresh",
            &json!({ "refreshToken": refresh1, "tokenDelivery": "cookie" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let refresh2 = cookie_value(&response, "refresh_token").expect("cookie delivery");
    let body = json_body(response).await;
    assert!(body.get("refresh_token").is_none());

    // The cookie (a browser on the frontend sends Origin), answered with cookies.
    let response = app
        .client
        .post(app.url("refresh"))
        .header("cookie", format!("refresh_token={refresh2}"))
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let access3 = cookie_value(&response, "access_token").expect("access cookie");
    let refresh3 = cookie_value(&response, "refresh_token").expect("refresh cookie");
    assert_ne!(refresh3, refresh2);
    app.assert_access_works(&access3).await;

    // A refused cookie refresh clears the cookies.
    app.clock.advance(11);
    let response = app
        .client
        .post(app.url("refresh"))
        .header("cookie", format!("refresh_token={refresh2}"))
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookies(&response)
        .iter()
        .any(|c| c.starts_with("refresh_token=;") && c.contains("Max-Age=0")));
    assert_error(response, StatusCode::UNAUTHORIZED, "refresh").await;
}

async fn concurrent_refreshes_agree(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("race");
    let session = app.register(&addr, PASSWORD).await;
    let mut handles = Vec::new();
    for _ in 0..5 {
        let request = app
            .client
            .post(app.url("refresh"))
            .json(&json!({ "refreshToken": session.refresh }));
        handles.push(tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }));
    }
    let mut successors = Vec::new();
    for handle in handles {
        let (status, text) = handle.await.unwrap();
        assert_eq!(status, StatusCode::OK, "concurrent refresh: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        successors.push(body["refresh_token"].as_str().unwrap().to_string());
    }
    assert!(
        successors.windows(2).all(|w| w[0] == w[1]),
        "one successor: {successors:?}"
    );
    assert!(!app
        .events()
        .await
        .iter()
        .any(|e| e == "user.refresh_token_reused"));
    let (access, _) = refreshed(app.refresh_body(&successors[0]).await).await;
    app.assert_access_works(&access).await;
}

async fn unknown_tokens_revoke_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("unknown");
    let session = app.register(&addr, PASSWORD).await;
    let random = "B".repeat(43);
    for body in [
        json!({ "refreshToken": random }),
        json!({ "refreshToken": "x".repeat(5000) }),
        json!({ "refreshToken": "" }),
        json!({}),
    ] {
        let response = app.post_json("refresh", &body).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "refresh").await;
    }
    // No body, no cookie.
    let response = app.client.post(app.url("refresh")).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "refresh").await;
    // A wrong type is a client error, never a 500.
    let response = app
        .post_json("refresh", &json!({ "refreshToken": 12 }))
        .await;
    assert!(response.status().is_client_error(), "{}", response.status());
    let response = app
        .client
        .post(app.url("refresh"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    // The real session is untouched.
    app.assert_access_works(&session.access).await;
    let (_, _) = refreshed(app.refresh_body(&session.refresh).await).await;
    assert!(!app
        .events()
        .await
        .iter()
        .any(|e| e == "user.refresh_token_reused" || e == "user.session_revoked"));
}

async fn a_refresh_cookie_is_never_exchanged_for_body_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.register(&email("cookie-in"), PASSWORD).await;
    let response = app
        .client
        .post(app.url("refresh"))
        .header("cookie", format!("refresh_token={}", session.refresh))
        .header("origin", FRONTEND)
        .json(&json!({ "tokenDelivery": "body" }))
        .send()
        .await
        .unwrap();
    assert!(set_cookies(&response).is_empty());
    let body = assert_error(response, StatusCode::BAD_REQUEST, "refresh").await;
    assert!(!body.contains(&session.refresh));
    // The cookie still works, the way it was meant to be used.
    app.assert_access_works(&session.access).await;
    let response = app
        .client
        .post(app.url("refresh"))
        .header("cookie", format!("refresh_token={}", session.refresh))
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(cookie_value(&response, "refresh_token").is_some());
    assert!(json_body(response).await.get("refresh_token").is_none());
}

async fn sessions_end_at_their_absolute_lifetime(backend: Backend) {
    let app = spawn_app_with(backend, &[("SESSION_ABSOLUTE_TTL_SECONDS", "3600")]).await;
    let session = app.register(&email("absolute"), PASSWORD).await;
    let mut refresh = session.refresh;
    // Refreshed every 20 minutes: the idle timeout never strikes, the absolute one does.
    for _ in 0..2 {
        app.clock.advance(1200);
        refresh = refreshed(app.refresh_body(&refresh).await).await.1;
    }
    app.clock.advance(1201);
    app.assert_refresh_dead(&refresh).await;
}

async fn the_grace_answer_goes_only_to_the_client_that_rotated(backend: Backend) {
    let app = spawn_app_with(backend, &[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let session = app.register(&email("bound"), PASSWORD).await;
    let from = |ip: &'static str, token: &str| {
        app.client
            .post(app.url("refresh"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "refreshToken": token }))
            .send()
    };
    let (_, next) = refreshed(from("203.0.113.7", &session.refresh).await.unwrap()).await;
    // The same client retrying within the window gets the same successor...
    let (_, again) = refreshed(from("203.0.113.7", &session.refresh).await.unwrap()).await;
    assert_eq!(again, next);
    // ...a copy replayed from elsewhere is reuse: refused, and the family is revoked.
    let response = from("198.51.100.9", &session.refresh).await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "refresh").await;
    app.assert_refresh_dead(&next).await;
}
