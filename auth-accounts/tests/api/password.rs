//! change-password, reset-password -> complete-reset, and hash upgrades on login.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    assert_error, cookie_value, email, json_body, spawn_app, spawn_on, Backend, FRONTEND, PASSWORD,
};

const NEW_PASSWORD: &str = "brand-new-password-2";

both!(
    change_password_revokes_other_sessions,
    change_password_errors,
    reset_password_flow,
    reset_password_does_not_reveal_accounts,
    complete_reset_errors,
    hash_is_upgraded_on_login,
);

async fn change_password_revokes_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("change");
    let a = app.register(&addr, PASSWORD).await;
    let b = app.login(&addr, PASSWORD).await;

    // Bearer caller: the fresh tokens come in the body.
    let response = app
        .post_json_bearer(
            "change-password",
            &json!({ "password": PASSWORD, "newPassword": NEW_PASSWORD }),
            &a.access,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["action"], "changePassword");
    let fresh_access = body["access_token"].as_str().unwrap().to_string();
    let fresh_refresh = body["refresh_token"].as_str().unwrap().to_string();
    app.assert_access_works(&fresh_access).await;
    for old in [&a, &b] {
        app.assert_access_dead(&old.access).await;
        app.assert_refresh_dead(&old.refresh).await;
    }
    let response = app.login_body(&addr, PASSWORD).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "login").await;
    app.login(&addr, NEW_PASSWORD).await;
    let response = app.refresh_body(&fresh_refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(app
        .events()
        .await
        .iter()
        .any(|e| e == "user.password_changed"));
    let mail = app.latest_mail(&addr).await;
    assert!(mail.token().is_none(), "a notice, not a link: {mail:?}");

    // Cookie caller with snake_case input: the fresh tokens come as cookies.
    let c = app.login(&addr, NEW_PASSWORD).await;
    let response = app
        .client
        .post(app.url("change-password"))
        .header("cookie", format!("access_token={}", c.access))
        .header("origin", FRONTEND)
        .json(&json!({ "password": NEW_PASSWORD, "new_password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie_access = cookie_value(&response, "access_token").expect("cookie delivery");
    let body = json_body(response).await;
    assert!(body.get("access_token").is_none());
    app.assert_access_works(&cookie_access).await;
    app.assert_access_dead(&c.access).await;
    app.login(&addr, PASSWORD).await;
}

async fn change_password_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("change-err");
    let a = app.register(&addr, PASSWORD).await;
    let b = app.login(&addr, PASSWORD).await;
    let response = app
        .post_json_bearer(
            "change-password",
            &json!({ "password": "not-my-password", "newPassword": NEW_PASSWORD }),
            &a.access,
        )
        .await;
    let detail = assert_error(response, StatusCode::UNAUTHORIZED, "change-password").await;
    assert_eq!(detail, "Invalid credentials");
    for new in [json!("short"), json!("x".repeat(129)), json!(null)] {
        let response = app
            .post_json_bearer(
                "change-password",
                &json!({ "password": PASSWORD, "newPassword": new }),
                &a.access,
            )
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "change-password",
        )
        .await;
    }
    let response = app
        .post_json(
            "change-password",
            &json!({ "password": PASSWORD, "newPassword": NEW_PASSWORD }),
        )
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "change-password").await;
    // Nothing changed.
    app.assert_access_works(&a.access).await;
    app.assert_access_works(&b.access).await;
    app.login(&addr, PASSWORD).await;
}

async fn reset_password_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("reset");
    let a = app.register(&addr, PASSWORD).await;
    let b = app.login(&addr, PASSWORD).await;

    let mut previous: Vec<crate::helpers::Tokens> = vec![a, b];
    for (round, key, password) in [
        (0, "new_password", NEW_PASSWORD),
        (1, "newPassword", PASSWORD),
    ] {
        let response = app
            .post_json("reset-password", &json!({ "email": addr }))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mail = app.latest_mail(&addr).await;
        assert_eq!(mail.link_path().as_deref(), Some("/auth/reset-password"));
        let token = mail.token().unwrap();
        assert_eq!(token.len(), 43);
        // The link check does not use the token up; the verification type does not match it.
        for _ in 0..2 {
            let response = app
                .client
                .get(app.url("verify-link"))
                .query(&[("token", &token), ("email", &addr)])
                .query(&[("token_type", "reset")])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        let response = app
            .client
            .get(app.url("verify-link"))
            .query(&[("token", &token), ("email", &addr)])
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "verify-link").await;

        let body = json!({ "email": addr, "token": token, key: password });
        let response = app.post_json("complete-reset", &body).await;
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
        assert_eq!(json_body(response).await["action"], "completeReset");
        // Single use.
        let response = app.post_json("complete-reset", &body).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "complete-reset").await;
        // Every session dies (in round 1, the one opened after the first reset).
        for old in &previous {
            app.assert_access_dead(&old.access).await;
            app.assert_refresh_dead(&old.refresh).await;
        }
        let old_password = if round == 0 { PASSWORD } else { NEW_PASSWORD };
        let response = app.login_body(&addr, old_password).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "login").await;
        let fresh = app.login(&addr, password).await;
        app.assert_access_works(&fresh.access).await;
        previous = vec![fresh];
    }
    let events = app.events().await;
    for wanted in [
        "user.password_reset_started",
        "user.password_reset_validated",
        "user.password_reset",
    ] {
        assert!(events.iter().any(|e| e == wanted), "{wanted} in {events:?}");
    }
}

async fn reset_password_does_not_reveal_accounts(backend: Backend) {
    let app = spawn_app(backend).await;
    let known = email("known");
    let unknown = email("unknown");
    app.register(&known, PASSWORD).await;
    let mails_before = app.mails_to(&known).await.len();
    let a = app
        .post_json("reset-password", &json!({ "email": known }))
        .await;
    let b = app
        .post_json("reset-password", &json!({ "email": unknown }))
        .await;
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(a.status(), b.status());
    assert_eq!(a.bytes().await.unwrap(), b.bytes().await.unwrap());
    assert_eq!(app.mails_to(&known).await.len(), mails_before + 1);
    assert!(
        app.mails_to(&unknown).await.is_empty(),
        "no email without an account"
    );
    // The unregistered address's token (never sent) cannot be guessed into a reset.
    let response = app
        .post_json(
            "complete-reset",
            &json!({ "email": unknown, "token": "C".repeat(43), "newPassword": NEW_PASSWORD }),
        )
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "complete-reset").await;
    let response = app
        .post_json("reset-password", &json!({ "email": "nope" }))
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "reset-password").await;
}

async fn complete_reset_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("reset-err");
    let session = app.register(&addr, PASSWORD).await;
    let response = app
        .post_json("reset-password", &json!({ "email": addr }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = app.latest_mail_token(&addr).await;
    let body = |token: &str, password: &str| json!({ "email": addr, "token": token, "newPassword": password });
    let response = app
        .post_json(
            "complete-reset",
            &body("D".repeat(43).as_str(), NEW_PASSWORD),
        )
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "complete-reset").await;
    let response = app
        .post_json("complete-reset", &body(&token, "short"))
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "complete-reset").await;
    let response = app
        .post_json("complete-reset", &json!({ "email": addr, "token": token }))
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "complete-reset").await;
    // Expired after 15 minutes (the failures above did not use it up).
    app.clock.advance(901);
    let response = app
        .post_json("complete-reset", &body(&token, NEW_PASSWORD))
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "complete-reset").await;
    app.login(&addr, PASSWORD).await;
    let response = app.refresh_body(&session.refresh).await;
    assert_eq!(response.status(), StatusCode::OK, "sessions untouched");
}

async fn hash_is_upgraded_on_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let addr = email("upgrade");
    let session = app.register(&addr, PASSWORD).await;
    let cost4 = app.password_hash(&addr).await;
    assert!(cost4.starts_with("$2b$04$"), "{cost4}");

    // Same database and keys, stronger bcrypt cost.
    let stronger = spawn_on(&app.env, &[("BCRYPT_COST", "5")]).await;
    stronger.assert_access_works(&session.access).await;
    stronger.login(&addr, PASSWORD).await;
    let cost5 = stronger.password_hash(&addr).await;
    assert!(cost5.starts_with("$2b$05$"), "{cost5}");
    stronger.login(&addr, PASSWORD).await;
    assert_eq!(
        stronger.password_hash(&addr).await,
        cost5,
        "no rehash needed"
    );
    let response = stronger.login_body(&addr, "wrong-password-9").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "login").await;

    // Another algorithm.
    let argon = spawn_on(
        &app.env,
        &[
            ("PASSWORD_HASH_ALGORITHM", "argon2id"),
            ("ARGON2_MEMORY_KIB", "1024"),
            ("ARGON2_ITERATIONS", "1"),
        ],
    )
    .await;
    argon.login(&addr, PASSWORD).await;
    let argon_hash = argon.password_hash(&addr).await;
    assert!(argon_hash.starts_with("$argon2id$"), "{argon_hash}");
    argon.login(&addr, PASSWORD).await;
    let response = argon.login_body(&addr, "wrong-password-9").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "login").await;
    // And the first app still verifies the new hash.
    app.login(&addr, PASSWORD).await;
}
