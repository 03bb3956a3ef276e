//! /me, the session list, ending one session and ending all others.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, email, json_body, spawn_app, spawn_app_with, Backend, CHROME_WINDOWS, PASSWORD,
};

both!(
    me_returns_the_profile,
    list_shows_live_sessions,
    expired_sessions_are_not_listed,
    delete_session,
    logout_others_keeps_the_current_session,
);

async fn sessions_of(app: &crate::helpers::TestApp, access: &str) -> Vec<Value> {
    let response = app.get("sessions", Some(access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    body["sessions"].as_array().expect("sessions array").clone()
}

fn ids(sessions: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = sessions
        .iter()
        .map(|s| s["sessionId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn me_returns_the_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("me");
    let session = app.register(&addr, PASSWORD).await;
    let response = app.get("me", Some(&session.access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me = json_body(response).await;
    assert_eq!(me["userId"], session.user_id.as_str());
    assert_eq!(me["email"], addr.as_str());
    assert_eq!(me["name"], "Test User");
    assert_eq!(me["country"], "Russia");
    assert_eq!(me["role"], 0);
    assert!(me["createdAt"].as_str().is_some_and(|s| s.ends_with('Z')));
    assert!(me["lastLogin"].as_str().is_some_and(|s| s.ends_with('Z')));
    let text = me.to_string();
    assert!(!text.contains("$2"), "no password hash in /me: {text}");
    assert!(!text.to_lowercase().contains("password"));

    let response = app.get("me", None).await;
    let detail = assert_error(response, StatusCode::UNAUTHORIZED, "me").await;
    assert_eq!(detail, "Not authenticated");
}

async fn list_shows_live_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("list");
    let first = app.register(&addr, PASSWORD).await;
    let chrome = app.login_as(&addr, PASSWORD, CHROME_WINDOWS).await;
    let curl = app.login_as(&addr, PASSWORD, "curl/8.5.0").await;
    let someone_else = app.register(&email("else"), PASSWORD).await;

    let list = sessions_of(&app, &chrome.access).await;
    assert_eq!(
        ids(&list),
        sorted(vec![
            first.session_id.clone(),
            chrome.session_id.clone(),
            curl.session_id.clone()
        ]),
        "only this user's sessions"
    );
    for s in &list {
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "sessionId",
            "deviceName",
            "ip",
            "location",
            "createdAt",
            "lastActivity",
            "isCurrentSession",
        ] {
            assert!(keys.contains(&key), "{key} in {s}");
        }
        assert_eq!(s["ip"], "127.0.0.1");
        assert_eq!(s["location"], "Local Network");
        for key in ["createdAt", "lastActivity"] {
            let t = s[key].as_str().unwrap();
            assert!(
                t.len() == 20 && t.as_bytes()[10] == b'T' && t.ends_with('Z'),
                "{t}"
            );
        }
        let current = s["sessionId"] == chrome.session_id.as_str();
        assert_eq!(s["isCurrentSession"], current, "{s}");
    }
    let by_id = |id: &str| list.iter().find(|s| s["sessionId"] == id).unwrap().clone();
    assert_eq!(by_id(&chrome.session_id)["deviceName"], "Chrome on Windows");
    assert_eq!(by_id(&curl.session_id)["deviceName"], "curl");

    // A revoked session disappears from the list.
    let response = app
        .delete(&format!("sessions/{}", curl.session_id), &chrome.access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let list = sessions_of(&app, &chrome.access).await;
    assert_eq!(
        ids(&list),
        sorted(vec![first.session_id.clone(), chrome.session_id.clone()])
    );
    assert_eq!(sessions_of(&app, &someone_else.access).await.len(), 1);
    let response = app.get("sessions", None).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "sessions").await;
}

async fn expired_sessions_are_not_listed(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TTL_SECONDS", "3600")]).await;
    let addr = email("expired");
    let old = app.register(&addr, PASSWORD).await;
    app.clock.advance(3000);
    let young = app.login(&addr, PASSWORD).await;
    assert_eq!(sessions_of(&app, &young.access).await.len(), 2);
    app.clock.advance(700);
    let list = sessions_of(&app, &young.access).await;
    assert_eq!(ids(&list), vec![young.session_id.clone()]);
    // The expired session's tokens are dead too.
    app.assert_refresh_dead(&old.refresh).await;
    let response = app
        .delete(&format!("sessions/{}", old.session_id), &young.access)
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "sessions").await;
}

async fn delete_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("delete");
    let a = app.register(&addr, PASSWORD).await;
    let b = app.login(&addr, PASSWORD).await;
    let stranger = app.register(&email("stranger"), PASSWORD).await;

    let response = app
        .delete(&format!("sessions/{}", b.session_id), &a.access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["status"], "success");
    app.assert_access_dead(&b.access).await;
    app.assert_refresh_dead(&b.refresh).await;
    app.assert_access_works(&a.access).await;

    // Again (already gone), someone else's, an unknown id: 404. Not a UUID: 422.
    for id in [
        b.session_id.clone(),
        stranger.session_id.clone(),
        uuid::Uuid::new_v4().to_string(),
        b.session_id.to_uppercase(),
    ] {
        let response = app.delete(&format!("sessions/{id}"), &a.access).await;
        assert_error(response, StatusCode::NOT_FOUND, "sessions").await;
    }
    app.assert_access_works(&stranger.access).await;
    for bad in ["not-a-uuid", "1", "%00", "'%20OR%201=1"] {
        let response = app.delete(&format!("sessions/{bad}"), &a.access).await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "sessions").await;
    }
    let response = app
        .client
        .delete(app.url(&format!("sessions/{}", a.session_id)))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "sessions").await;
    // Ending the current session works too.
    let response = app
        .delete(&format!("sessions/{}", a.session_id), &a.access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.assert_access_dead(&a.access).await;
}

async fn logout_others_keeps_the_current_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("others");
    let a = app.register(&addr, PASSWORD).await;
    let b = app.login(&addr, PASSWORD).await;
    let c = app.login(&addr, PASSWORD).await;
    let stranger = app.register(&email("stranger"), PASSWORD).await;

    let response = app
        .post_json_bearer("sessions/logout-others", &json!({}), &b.access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["action"], "revokeOtherSessions");
    assert_eq!(body["detail"], "2 other session(s) revoked.");
    app.assert_access_works(&b.access).await;
    for dead in [&a, &c] {
        app.assert_access_dead(&dead.access).await;
        app.assert_refresh_dead(&dead.refresh).await;
    }
    app.assert_access_works(&stranger.access).await;
    assert_eq!(
        ids(&sessions_of(&app, &b.access).await),
        vec![b.session_id.clone()]
    );
    // The survivor still refreshes.
    let response = app.refresh_body(&b.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.post_json("sessions/logout-others", &json!({})).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "logout-others").await;
}
