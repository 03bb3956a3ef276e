//! The CSRF check for cookie-borne tokens, through the forward-auth endpoint (as nginx,
//! Traefik and Caddy call it) and through the sidecar.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::peers::{call, seen};

#[tokio::test]
async fn forward_auth_refuses_cookies_from_foreign_origins_not_bearer_tokens() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let mut config = edge_config(&fake);
    config.verifier.csrf.allowed_origins = vec!["https://app.example.com".into()];
    let edge = spawn_edge(config).await;
    let token = sign(&claims(), key_a());
    let client = client();
    // The proxy asks with GET and tells the original method (Caddy, Traefik, our nginx
    // snippet), or asks with the original method itself (Envoy's HTTP service).
    let post = |origin: &'static str| {
        client
            .get(edge.url("/orders"))
            .header("x-forwarded-method", "POST")
            .header("host", "api.example.com")
            .header("origin", origin)
    };
    let cases = [
        ("https://evil.example", Via::Cookie, StatusCode::FORBIDDEN),
        ("null", Via::Cookie, StatusCode::FORBIDDEN),
        ("https://app.example.com", Via::Cookie, StatusCode::OK),
        ("https://api.example.com", Via::Cookie, StatusCode::OK),
        ("https://evil.example", Via::Bearer, StatusCode::OK),
    ];
    for (origin, via, want) in cases {
        let r = with_token(post(origin), &token, via).send().await.unwrap();
        assert_eq!(r.status(), want, "{origin} {via:?}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        if want == StatusCode::FORBIDDEN {
            assert!(r.headers().get("x-user-id").is_none());
            assert!(r.headers().get("www-authenticate").is_none());
        }
    }
    let r = with_token(
        client
            .delete(edge.url("/orders/1"))
            .header("sec-fetch-site", "cross-site")
            .header("referer", "https://evil.example/page"),
        &token,
        Via::Cookie,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "the request's own method"
    );
    // A cross-site navigation (GET, no Origin) keeps working: links into the site.
    let r = with_token(
        client
            .get(edge.url("/orders"))
            .header("sec-fetch-site", "cross-site"),
        &token,
        Via::Cookie,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let metrics = client
        .get(format!("http://{}/metrics", edge.admin_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("result=\"cross_site\"} 3"),
        "three refusals counted:\n{metrics}"
    );
}

#[tokio::test]
async fn csrf_off_lets_every_origin_through() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let mut config = edge_config(&fake);
    config.verifier.csrf.enabled = false;
    let edge = spawn_edge(config).await;
    let token = sign(&claims(), key_a());
    let r = with_token(
        client()
            .post(edge.url("/orders"))
            .header("origin", "https://evil.example"),
        &token,
        Via::Cookie,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_sidecar_refuses_cross_site_cookies_and_ignores_them_on_public_paths() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let (upstream, count) = start_counting_upstream().await;
    let (sidecar, _admin) = start_sidecar(&fake, upstream, "/public/").await;
    let c = claims();
    let token = sign(&c, key_a());
    let client = client();
    let before = count.load(std::sync::atomic::Ordering::SeqCst);
    let r = with_token(
        client
            .post(sidecar.url("/orders"))
            .header("origin", "https://evil.example")
            .body("{}"),
        &token,
        Via::Cookie,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), before);
    // Same origin as the sidecar itself: allowed.
    let own = sidecar.url("");
    let v = call(with_token(
        client.post(sidecar.url("/orders")).header("origin", own),
        &token,
        Via::Cookie,
    ))
    .await
    .unwrap();
    assert_eq!(seen(&v, "x-user-id"), [c.sub.as_str()]);
    // A public path: forwarded, but as nobody.
    let v = call(with_token(
        client
            .post(sidecar.url("/public/form"))
            .header("origin", "https://evil.example"),
        &token,
        Via::Cookie,
    ))
    .await
    .unwrap();
    assert!(seen(&v, "x-user-id").is_empty(), "{v}");
}
