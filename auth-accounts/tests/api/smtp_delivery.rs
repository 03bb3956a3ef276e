//! Email over SMTP to a real server (aiosmtpd sink): recipient, subject per language, a link that
//! completes the registration, and retries with backoff while the server is down.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{email, json_body, spawn_app_with, spawn_on, Backend, TestApp, PASSWORD};
use crate::peers::{wait_for, wait_until, SmtpSink};

both!(
    verification_mail_goes_over_smtp,
    mail_waits_while_smtp_is_down
);

fn smtp_vars(port: &str, tls: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_HOST", "127.0.0.1".to_string()),
        ("SMTP_PORT", port.to_string()),
        ("SMTP_TLS", tls.to_string()),
        ("SMTP_FROM_EMAIL", "noreply@auth.test".to_string()),
        ("SMTP_FROM_NAME", "Auth Tests".to_string()),
    ]
}

fn as_refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn health(app: &TestApp) -> serde_json::Value {
    let response = app.get("health", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await
}

async fn verification_mail_goes_over_smtp(backend: Backend) {
    let sink_dir = tempdir("sink");
    let sink = SmtpSink::start(&sink_dir).await;
    let vars = smtp_vars(&sink.port.to_string(), "none");
    let app = spawn_app_with(backend, &as_refs(&vars)).await;
    let body = health(&app).await;
    assert_eq!(body["components"]["smtp"], "ok", "{body}");
    assert_eq!(body["status"], "ok", "{body}");

    // Russian by default.
    let ru = email("smtp-ru");
    assert_eq!(app.verify_email(&ru).await.status(), StatusCode::OK);
    let mails = sink.wait_for_mails(&ru, 1, Duration::from_secs(10)).await;
    let mail = &mails[0];
    assert_eq!(mail.subject, "Подтверждение email");
    assert!(mail.to.contains(&ru), "{mail:?}");
    assert_eq!(mail.from, "Auth Tests <noreply@auth.test>");
    assert!(
        mail.text
            .contains("http://localhost:3000/auth/registration?"),
        "{}",
        mail.text
    );
    assert!(
        mail.html
            .contains("http://localhost:3000/auth/registration?"),
        "{}",
        mail.html
    );
    // The Message-ID names the outbox row, which is now marked sent.
    let email_id: String =
        sqlx::query_scalar("SELECT email_id FROM email_outbox WHERE recipient = $1")
            .bind(&ru)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(mail.message_id, format!("<{email_id}@auth-accounts>"));
    wait_until("the email row marked sent", Duration::from_secs(5), || {
        let db = app.state.db.clone();
        let id = email_id.clone();
        async move {
            let status: String =
                sqlx::query_scalar("SELECT status FROM email_outbox WHERE email_id = $1")
                    .bind(&id)
                    .fetch_one(&db)
                    .await
                    .unwrap();
            status == "sent"
        }
    })
    .await;
    // The link's token completes the registration.
    let token = mail.token().expect("a token in the link");
    let response = app
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&ru, &token, PASSWORD),
        )
        .await;
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());

    // English on request; and STARTTLS-when-offered works with a server that does not offer it.
    let opportunistic = smtp_vars(&sink.port.to_string(), "opportunistic");
    let app2 = spawn_on(&app.env, &as_refs(&opportunistic)).await;
    let en = email("smtp-en");
    let response = app2
        .client
        .post(app2.url("verify-email"))
        .header("Accept-Language", "en-US,en;q=0.9")
        .json(&json!({ "email": en }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mails = sink.wait_for_mails(&en, 1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].subject, "Confirm your email");
    assert!(mails[0].to.contains(&en));
    let token = mails[0].token().expect("a token in the link");
    let response = app2
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&en, &token, PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Nothing went to the folder mailer.
    assert!(!app.mail_dir.exists() || std::fs::read_dir(&app.mail_dir).unwrap().next().is_none());
    let _ = std::fs::remove_dir_all(&sink_dir);
}

async fn mail_waits_while_smtp_is_down(backend: Backend) {
    let first_dir = tempdir("sink1");
    let mut sink = SmtpSink::start(&first_dir).await;
    let port = sink.port;
    let vars = smtp_vars(&port.to_string(), "none");
    let app = spawn_app_with(backend, &as_refs(&vars)).await;
    let user = email("smtp-down");
    assert_eq!(app.verify_email(&user).await.status(), StatusCode::OK);
    let token = sink.wait_for_mails(&user, 1, Duration::from_secs(10)).await[0]
        .token()
        .unwrap();
    let response = app
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&user, &token, PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // The server goes away: health says so, the reset email waits in the outbox.
    sink.stop();
    let body = health(&app).await;
    assert_eq!(body["components"]["smtp"], "down", "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    let response = app
        .post_json("reset-password", &json!({ "email": user }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (email_id, next_attempt_at) = wait_for(
        "a failed delivery attempt",
        Duration::from_secs(20),
        || {
            let db = app.state.db.clone();
            async move {
                let row: Option<(String, String, i64, i64, Option<String>)> = sqlx::query_as(
                    "SELECT email_id, status, attempts, next_attempt_at, last_error FROM email_outbox WHERE kind = 'password_reset'",
                )
                .fetch_optional(&db)
                .await
                .unwrap();
                let (id, status, attempts, next, error) = row?;
                assert_eq!(status, "pending");
                (attempts >= 1).then(|| {
                    assert!(error.is_some(), "last_error is recorded");
                    (id, next)
                })
            }
        },
    )
    .await;
    // Backoff: the retry is ~10 s away; nothing is sent meanwhile.
    let wait = next_attempt_at - app.clock.now();
    assert!((5..=11).contains(&wait), "retry in {wait} s");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, attempts): (String, i64) =
        sqlx::query_as("SELECT status, attempts FROM email_outbox WHERE email_id = $1")
            .bind(&email_id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("pending", 1));

    // The server is back on the same port; when the retry comes due, the mail arrives.
    let second_dir = tempdir("sink2");
    let sink = SmtpSink::start_on(port, &second_dir).await;
    app.clock.advance(wait + 1);
    let mails = sink.wait_for_mails(&user, 1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].subject, "Восстановление пароля");
    assert_eq!(mails[0].message_id, format!("<{email_id}@auth-accounts>"));
    assert!(mails[0].text.contains("/auth/reset-password?"));
    wait_until(
        "the reset email marked sent",
        Duration::from_secs(5),
        || {
            let db = app.state.db.clone();
            let id = email_id.clone();
            async move {
                let (status, attempts): (String, i64) =
                    sqlx::query_as("SELECT status, attempts FROM email_outbox WHERE email_id = $1")
                        .bind(&id)
                        .fetch_one(&db)
                        .await
                        .unwrap();
                status == "sent" && attempts == 2
            }
        },
    )
    .await;
    let body = health(&app).await;
    assert_eq!(body["components"]["smtp"], "ok", "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    let _ = std::fs::remove_dir_all(&first_dir);
    let _ = std::fs::remove_dir_all(&second_dir);
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "auth-test-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_emails_keep_no_one_time_links_at_rest() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let user = crate::helpers::email("at-rest");
    let response = app.verify_email(&user).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    app.wait_for_mail_relay().await;
    let token = app.latest_mail_token(&user).await;
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT status, body_text, body_html FROM email_outbox")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert!(!rows.is_empty());
    for (status, text, html) in rows {
        assert_eq!(status, "sent");
        assert!(!text.contains(&token) && !html.contains(&token));
        assert!(text.is_empty() && html.is_empty());
    }
}
