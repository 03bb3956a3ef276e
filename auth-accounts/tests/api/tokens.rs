//! validate-token, gateway-verify, the JWKS (checked by PyJWT too) and the signing keys on disk.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, email, json_body, jwt_claims, jwt_header, spawn_app, spawn_on, Backend, PASSWORD,
};

both!(
    validate_token,
    gateway_verify,
    jwks_publishes_the_signing_key,
    pyjwt_verifies_issued_tokens,
    keys_are_generated_private_and_kept,
    keys_rotate_without_restart,
);

async fn validate_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.register(&email("validate"), PASSWORD).await;
    let response = app
        .post_json("validate-token", &json!({ "token": session.access }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    let claims = jwt_claims(&session.access);
    assert_eq!(
        body,
        json!({
            "status": "success", "action": "validateToken", "detail": "Token valid.",
            "valid": true, "userId": session.user_id, "sessionId": session.session_id,
            "role": 0, "exp": claims["exp"],
        })
    );
    assert_eq!(claims["iss"], "auth-service");
    assert_eq!(claims["aud"], "smart-budget");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    for token in ["", "garbage", "a.b.c", session.refresh.as_str()] {
        let response = app
            .post_json("validate-token", &json!({ "token": token }))
            .await;
        assert_error(response, StatusCode::UNAUTHORIZED, "validate-token").await;
    }
    let response = app.post_json("validate-token", &json!({})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validate-token").await;

    // Revoked: refused at once.
    let response = app
        .post_json_bearer("logout", &json!({}), &session.access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .post_json("validate-token", &json!({ "token": session.access }))
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "validate-token").await;
}

async fn gateway_verify(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.register(&email("gateway"), PASSWORD).await;
    let bearer = app
        .client
        .get(app.url("gateway-verify"))
        .bearer_auth(&session.access)
        .send()
        .await
        .unwrap();
    let cookie = app
        .client
        .get(app.url("gateway-verify"))
        .header(
            "cookie",
            format!("other=1; access_token={}", session.access),
        )
        .send()
        .await
        .unwrap();
    // nginx auth_request may forward the original method.
    let post = app
        .client
        .post(app.url("gateway-verify"))
        .bearer_auth(&session.access)
        .send()
        .await
        .unwrap();
    for response in [bearer, cookie, post] {
        assert_eq!(response.status(), StatusCode::OK);
        let h = response.headers();
        assert_eq!(h["x-user-id"].to_str().unwrap(), session.user_id);
        assert_eq!(h["x-session-id"].to_str().unwrap(), session.session_id);
        assert_eq!(h["x-user-role"].to_str().unwrap(), "0");
        assert_eq!(h["cache-control"].to_str().unwrap(), "no-store");
    }

    let unauthenticated = [
        app.client.get(app.url("gateway-verify")),
        app.client
            .get(app.url("gateway-verify"))
            .bearer_auth("garbage"),
        app.client
            .get(app.url("gateway-verify"))
            .header("cookie", "access_token=garbage"),
        app.client
            .get(app.url("gateway-verify"))
            .header("authorization", "Basic dXNlcjpwYXNz"),
    ];
    for request in unauthenticated {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key("www-authenticate"));
        assert!(!response.headers().contains_key("x-user-id"));
        assert_eq!(response.text().await.unwrap(), "", "empty body");
    }

    let response = app
        .post_json_bearer("logout", &json!({}), &session.access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.get("gateway-verify", Some(&session.access)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.text().await.unwrap(), "");
}

async fn jwks_publishes_the_signing_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.register(&email("jwks"), PASSWORD).await;
    let response = app.get(".well-known/jwks.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let jwks = json_body(response).await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    let b64url = |v: &Value| {
        v.as_str().is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    assert!(
        b64url(&key["n"]) && key["n"].as_str().unwrap().len() >= 342,
        "2048-bit n"
    );
    assert_eq!(key["e"], "AQAB");
    assert!(
        key.get("d").is_none() && key.get("p").is_none(),
        "no private parts"
    );
    let header = jwt_header(&session.access);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], key["kid"]);
}

async fn pyjwt_verifies_issued_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.register(&email("pyjwt"), PASSWORD).await;
    let python = std::env::var("AUTH_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let jwks_url = app.url(".well-known/jwks.json");
    let token = session.access.clone();
    let script = r#"
import sys
try:
    import jwt
except ImportError as e:
    print("PyJWT is not importable: %s" % e, file=sys.stderr)
    sys.exit(3)
url, tok = sys.argv[1], sys.argv[2]
key = jwt.PyJWKClient(url).get_signing_key_from_jwt(tok)
claims = jwt.decode(tok, key, algorithms=["RS256"], audience="smart-budget", issuer="auth-service")
print(claims["sub"])
"#;
    let py = python.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&py)
            .arg("-c")
            .arg(script)
            .arg(jwks_url)
            .arg(token)
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| {
        panic!("cannot run {python:?} ({e}): run scripts/test, or set AUTH_TEST_PYTHON to a Python with PyJWT[crypto]")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(3),
        "{python} cannot import PyJWT: run scripts/test (it prepares a venv with PyJWT[crypto]) or set AUTH_TEST_PYTHON; {stderr}"
    );
    assert!(output.status.success(), "PyJWT refused the token: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        session.user_id
    );
}

async fn keys_are_generated_private_and_kept(backend: Backend) {
    use std::os::unix::fs::PermissionsExt as _;
    let app = spawn_app(backend).await;
    let private = app.env.private_key_path();
    let public = app.env.public_key_path();
    let mode = std::fs::metadata(&private).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "private key mode {mode:o}");
    let pem = std::fs::read_to_string(&private).unwrap();
    assert!(pem.contains("PRIVATE KEY"));
    assert!(std::fs::read_to_string(&public)
        .unwrap()
        .contains("PUBLIC KEY"));
    let session = app.register(&email("keys"), PASSWORD).await;

    // A restart loads the same key: earlier tokens stay valid, the JWKS is unchanged.
    let before = json_body(app.get(".well-known/jwks.json", None).await).await;
    let restarted = spawn_on(&app.env, &[]).await;
    let after = json_body(restarted.get(".well-known/jwks.json", None).await).await;
    assert_eq!(before, after);
    assert_eq!(std::fs::read_to_string(&private).unwrap(), pem);
    restarted.assert_access_works(&session.access).await;
}

/// `rotate-keys` without a restart: the next key was published before it signs, tokens of the
/// retired key keep verifying, new tokens carry the new kid, and a second rotation promotes the
/// key that was published as next.
async fn keys_rotate_without_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let address = email("rotate");
    let old = app.register(&address, PASSWORD).await;
    let old_kid = jwt_header(&old.access)["kid"].as_str().unwrap().to_string();

    let first = auth_accounts::keys::rotate(&app.state.config).unwrap();
    assert_eq!(first.retired_kid, old_kid);
    assert!(auth_accounts::startup::reload_keys(&app.state)
        .await
        .unwrap());
    let jwks = json_body(app.get(".well-known/jwks.json", None).await).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    for kid in [&first.retired_kid, &first.current_kid, &first.next_kid] {
        assert!(kids.contains(&kid.as_str()), "{kid} missing from {kids:?}");
    }
    // The retired key's token still works; a new login is signed by the new key and works too.
    app.assert_access_works(&old.access).await;
    let login = app.login(&address, PASSWORD).await;
    assert_eq!(jwt_header(&login.access)["kid"], first.current_kid.as_str());
    app.assert_access_works(&login.access).await;

    // The second rotation promotes the key the JWKS already published as next.
    let second = auth_accounts::keys::rotate(&app.state.config).unwrap();
    assert_eq!(second.current_kid, first.next_kid);
    assert!(auth_accounts::startup::reload_keys(&app.state)
        .await
        .unwrap());
    app.assert_access_works(&login.access).await;

    // Once every token of a retired key has expired, the key leaves the JWKS (its retirement time
    // is the file's mtime: pretend it was retired an hour ago) and its tokens are refused.
    let retired = app.env.private_key_path().parent().unwrap().join("retired");
    let old_file = retired.join(format!("{}.pem", first.retired_kid));
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old_file)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    assert!(auth_accounts::startup::reload_keys(&app.state)
        .await
        .unwrap());
    let jwks = json_body(app.get(".well-known/jwks.json", None).await).await;
    assert!(!jwks.to_string().contains(&first.retired_kid));
    app.assert_access_dead(&old.access).await;
}
