//! Health, the OpenAPI document and the two documentation pages.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{json_body, spawn_app, Backend};

both!(
    health_reports_components,
    openapi_and_docs,
    openapi_lists_what_the_shared_layers_answer,
    probes_live_and_ready
);

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

/// The old service's probe paths: liveness checks nothing, readiness follows the database.
async fn probes_live_and_ready(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("health/live", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!({ "status": "ok" }));
    let response = app.get("health/ready", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["components"]["database"], "ok");
    // The database goes away: not ready (out of the load balancer), but still alive (no restart).
    app.state.db.close().await;
    // Checks are reused for two seconds (a probe flood costs one check).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let response = app.get("health/ready", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(response).await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["components"]["database"], "down");
    let response = app.get("health/live", None).await;
    assert_eq!(response.status(), StatusCode::OK);
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
        ("health/live", "get"),
        ("health/ready", "get"),
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

/// What schemathesis found undocumented on the first run (scripts/schemathesis): the served
/// document says what the shared layers (JSON extractor, CSRF check) answer.
async fn openapi_lists_what_the_shared_layers_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = json_body(app.get("openapi.json", None).await).await;
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let login = op("/api/v1/auth/login", "post");
    for code in ["400", "403", "415", "422"] {
        assert!(login["responses"][code].is_object(), "login {code}");
    }
    // A GET carries no body and is not CSRF-checked.
    let me = op("/api/v1/auth/me", "get");
    assert!(me["responses"]["415"].is_null() && me["responses"]["403"].is_null());
    for path in ["/api/v1/auth/logout", "/api/v1/auth/refresh"] {
        assert_eq!(op(path, "post")["requestBody"]["required"], false, "{path}");
    }
    let link = op("/api/v1/auth/verify-link", "get");
    for p in link["parameters"].as_array().unwrap() {
        if p["name"] == "token" || p["name"] == "email" {
            assert_eq!(p["required"], true, "{p}");
        }
    }
    let email = &doc["components"]["schemas"]["EmailRequest"]["properties"]["email"];
    assert_eq!(email["format"], "email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_nosniff_and_personal_ones_are_never_cached() {
    let app = spawn_app(Backend::Sqlite).await;
    let tokens = app
        .register(&crate::helpers::email("headers"), crate::helpers::PASSWORD)
        .await;
    for (path, bearer) in [
        ("me", Some(tokens.access.as_str())),
        ("sessions", Some(tokens.access.as_str())),
        ("health", None),
        ("no-such-route", None),
    ] {
        let response = app.get(path, bearer).await;
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
    // The JWKS keeps its own caching policy.
    let jwks = app.get(".well-known/jwks.json", None).await;
    assert_eq!(jwks.headers()["x-content-type-options"], "nosniff");
    assert_ne!(jwks.headers()["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_share_one_metrics_label() {
    let app = spawn_app(Backend::Sqlite).await;
    for method in ["FROBNICATE", "BREW", "X-A1"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        app.client
            .request(m, app.url("health"))
            .send()
            .await
            .unwrap();
    }
    let metrics = app
        .client
        .get(format!("http://127.0.0.1:{}/metrics", app.port))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("FROBNICATE") && !metrics.contains("BREW"),
        "{metrics}"
    );
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_are_reused_for_two_seconds() {
    let mut redis = crate::peers::RedisServer::start().await;
    let url = redis.url();
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, &[("REDIS_URL", url.as_str())]).await;
    let components = |body: serde_json::Value| body["components"]["redis"].clone();
    assert_eq!(
        components(json_body(app.get("health", None).await).await),
        "ok"
    );
    redis.stop();
    // Within the cache window the last check answers (a probe flood costs one check)...
    assert_eq!(
        components(json_body(app.get("health", None).await).await),
        "ok"
    );
    // ...and after it, a fresh one.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        components(json_body(app.get("health", None).await).await),
        "down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documentation_pages_are_served_in_development_only() {
    let dev = spawn_app(Backend::Sqlite).await;
    assert_eq!(dev.get("docs", None).await.status(), StatusCode::OK);
    // The same environment (its signing key now exists) in production.
    let prod = crate::helpers::spawn_on(
        &dev.env,
        &[
            ("ENV", "prod"),
            ("REVOCATIONS_TOKEN", "feed-token-0123456789"),
            ("FRONTEND_URL", "https://app.example.com"),
            ("RATE_LIMIT_ENABLED", "true"),
            ("BCRYPT_COST", "10"),
        ],
    )
    .await;
    for page in ["docs", "redoc"] {
        assert_eq!(
            prod.get(page, None).await.status(),
            StatusCode::NOT_FOUND,
            "{page}"
        );
    }
    assert_eq!(
        prod.get("openapi.json", None).await.status(),
        StatusCode::OK
    );
}
