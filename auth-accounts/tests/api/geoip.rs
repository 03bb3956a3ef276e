//! Session locations from MaxMind's GeoIP2 City test database (`AUTH_TEST_GEOIP_DB`), with the
//! client address taken from `X-Forwarded-For` of a trusted proxy.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{email, json_body, spawn_app_with, spawn_on, Backend, TestApp, PASSWORD};
use crate::peers::peer_path;

/// Logs in as if forwarded by a proxy for `client`; returns the session id.
async fn login_from(app: &TestApp, user: &str, client: &str) -> String {
    let response = app
        .client
        .post(app.url("login"))
        .header("X-Forwarded-For", client)
        .json(&json!({ "email": user, "password": PASSWORD, "tokenDelivery": "body" }))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, StatusCode::OK, "login from {client}: {body}");
    let access = body["access_token"].as_str().unwrap();
    crate::helpers::jwt_claims(access)["sid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// sessionId -> session JSON, as listed by GET /sessions.
async fn sessions(app: &TestApp, access: &str) -> std::collections::HashMap<String, Value> {
    let response = app.get("sessions", Some(access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    body["sessions"]
        .as_array()
        .expect("sessions array")
        .iter()
        .map(|s| (s["sessionId"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_come_from_the_geoip_database() {
    let db = peer_path("AUTH_TEST_GEOIP_DB");
    let db = db.to_str().unwrap();
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("GEOIP_DB_PATH", db), ("TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await;
    let health = json_body(app.get("health", None).await).await;
    assert_eq!(health["components"]["geoip"], "ok", "{health}");
    assert_eq!(health["status"], "ok", "{health}");

    let user = email("geo");
    // Registered directly from 127.0.0.1 (no proxy header): a loopback address.
    let registered = app.register(&user, PASSWORD).await;
    let mut expected = vec![(registered.session_id.clone(), "127.0.0.1", "Local Network")];
    for (client, location) in [
        ("81.2.69.142", "London, United Kingdom"),
        ("2001:480:10::1", "San Diego, United States"),
        ("2001:218::1", "Japan"),
        ("8.8.8.8", "Unknown"),
        ("192.168.1.5", "Local Network"),
    ] {
        expected.push((login_from(&app, &user, client).await, client, location));
    }
    let listed = sessions(&app, &registered.access).await;
    assert_eq!(listed.len(), expected.len(), "{listed:#?}");
    for (sid, ip, location) in expected {
        let session = &listed[&sid];
        assert_eq!(session["location"], location, "{ip}: {session}");
        assert_eq!(session["ip"], ip, "{session}");
    }

    // A broken database file: geoip disabled, locations "Unknown", nothing fails.
    let broken = app.env.dir.join("broken.mmdb");
    std::fs::write(
        &broken,
        b"\xab\xcd\xefMaxMind.com but not really a database",
    )
    .unwrap();
    let degraded = spawn_on(
        &app.env,
        &[
            ("GEOIP_DB_PATH", broken.to_str().unwrap()),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let response = degraded.get("health", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let health = json_body(response).await;
    assert_eq!(health["components"]["geoip"], "disabled", "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    let london = login_from(&degraded, &user, "81.2.69.142").await;
    let listed = sessions(&degraded, &registered.access).await;
    assert_eq!(
        listed[&london]["location"], "Unknown",
        "{:#?}",
        listed[&london]
    );
    assert_eq!(listed[&london]["ip"], "81.2.69.142");
}
