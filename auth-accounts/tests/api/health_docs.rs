//! Health, the OpenAPI document and the two documentation pages.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{json_body, spawn_app, Backend};

both!(health_reports_components, openapi_and_docs);

async fn health_reports_components(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("health", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["components"]["database"], "ok");
    assert_eq!(body["components"]["geoip"], "disabled");
    for optional in ["redis", "kafka", "smtp"] {
        assert_eq!(body["components"][optional], "disabled", "{optional}");
    }
    // A GeoIP file that cannot be read is reported as disabled, not as an error.
    let broken = app.env.dir.join("broken.mmdb");
    std::fs::write(&broken, b"not a database").unwrap();
    let with_geo =
        crate::helpers::spawn_on(&app.env, &[("GEOIP_DB_PATH", broken.to_str().unwrap())]).await;
    let body = json_body(with_geo.get("health", None).await).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["components"]["geoip"], "disabled");
}

async fn openapi_and_docs(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc = json_body(response).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("verify-email", "post"),
        ("verify-link", "get"),
        ("complete-registration", "post"),
        ("login", "post"),
        ("logout", "post"),
        ("refresh", "post"),
        ("reset-password", "post"),
        ("complete-reset", "post"),
        ("change-password", "post"),
        ("me", "get"),
        ("sessions", "get"),
        ("sessions/{session_id}", "delete"),
        ("sessions/logout-others", "post"),
        ("validate-token", "post"),
        (".well-known/jwks.json", "get"),
        ("gateway-verify", "get"),
        ("health", "get"),
        ("revocations/stream", "get"),
    ] {
        let full = format!("/api/v1/auth/{path}");
        assert!(
            paths.get(&full).and_then(|p| p.get(method)).is_some(),
            "{method} {full} documented"
        );
    }
    // Every documented operation is served: none answers 404 (no such route) or 405 (no such
    // method). The converse, every served route documented, holds by construction (routes are
    // registered through `routes!` with their docs; see the unit test in `routes`).
    for (path, item) in paths {
        let url = format!(
            "{}{}",
            app.root(),
            path.replace("{session_id}", &uuid::Uuid::new_v4().to_string())
        );
        for method in item.as_object().expect("path item").keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())
                .unwrap_or_else(|_| panic!("{method} {path}"));
            let response = app
                .client
                .request(method.clone(), &url)
                .send()
                .await
                .expect("request");
            let status = response.status();
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but answers {status}"
            );
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(
        schemes["cookie"],
        json!({"type": "apiKey", "in": "cookie", "name": "access_token"})
    );
    for page in ["docs", "redoc"] {
        let response = app.get(page, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = response.text().await.unwrap();
        assert!(html.contains("/api/v1/auth/openapi.json"), "{page}");
    }
}
