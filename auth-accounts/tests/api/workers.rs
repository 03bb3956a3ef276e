//! Background work outside the API: the `auth-accounts worker` process delivering what the API
//! queued (and reporting it on its metrics listener), the cleanup pass, and the leases that keep singleton jobs on one replica.

use std::process::Command;
use std::time::Duration;

use auth_accounts::{cleanup, leases};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{email, spawn_app_with, spawn_on, Backend, Env, TestApp, PASSWORD};
use crate::peers::{free_port, Process};

both!(
    worker_process_delivers_what_the_api_queued,
    cleanup_removes_only_what_is_dead,
    a_lease_has_one_holder_at_a_time
);

async fn pending_emails(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'")
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

async fn worker_process_delivers_what_the_api_queued(backend: Backend) {
    let env = Env::new(backend).await;
    let api = spawn_on(&env, &[("RUN_WORKERS", "false")]).await;
    let user = email("worker");
    assert_eq!(api.verify_email(&user).await.status(), StatusCode::OK);
    // The API alone does not deliver.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(pending_emails(&api).await, 1);
    assert!(std::fs::read_dir(&api.mail_dir).map_or(true, |mut d| d.next().is_none()));

    let metrics_port = free_port();
    let mut worker = Process::spawn(
        "auth-accounts-worker",
        Command::new(env!("CARGO_BIN_EXE_auth-accounts"))
            .arg("worker")
            .env_clear()
            .env("DATABASE_URL", &env.database_url)
            .env("DATA_DIR", &env.dir)
            .env("MAIL_DIR", env.mail_dir())
            .env("JWT_PRIVATE_KEY_PATH", env.private_key_path())
            .env("JWT_PUBLIC_KEY_PATH", env.public_key_path())
            .env("FRONTEND_URL", crate::helpers::FRONTEND)
            .env("HOSTNAME", "test-worker")
            .env("METRICS_PORT", metrics_port.to_string())
            .env("LOG_LEVEL", "info"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while pending_emails(&api).await > 0 {
        worker.assert_running();
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not deliver within 20 s; its output:\n{}",
            worker.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = api.latest_mail_token(&user).await;
    let response = api
        .post_json(
            "complete-registration",
            &TestApp::registration_body(&user, &token, PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // The worker runs the singleton jobs too: it holds the cleanup lease.
    let holder: String = sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'cleanup'")
        .fetch_one(&api.state.db)
        .await
        .unwrap();
    assert!(holder.starts_with("test-worker-"), "{holder}");
    // Its relay counters are scraped from its own metrics listener.
    let metrics = api
        .client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("worker metrics: {e}\n{}", worker.log()))
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "auth_email_deliveries_total{result=\"sent\"} 1"),
        "{metrics}"
    );
    worker.stop();
}

async fn count(app: &TestApp, sql: &str, id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

async fn session_exists(app: &TestApp, sid: &str) -> bool {
    count(
        app,
        "SELECT COUNT(*) FROM sessions WHERE session_id = $1",
        sid,
    )
    .await
        == 1
}

async fn refresh_tokens(app: &TestApp, sid: &str) -> i64 {
    count(
        app,
        "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = $1",
        sid,
    )
    .await
}

async fn one_time_token_exists(app: &TestApp, address: &str) -> bool {
    count(
        app,
        "SELECT COUNT(*) FROM one_time_tokens WHERE email = $1",
        address,
    )
    .await
        == 1
}

async fn cleanup_removes_only_what_is_dead(backend: Backend) {
    const DAY: i64 = 24 * 3600;
    let app = spawn_app_with(backend, &[("REFRESH_TTL_SECONDS", "3600")]).await;
    let horizon = app.state.config.token_lifetime().horizon();
    let user = email("cleanup");
    // t0: the registration's session expires at t0+3600; session A is logged out at once.
    let expired = app.register(&user, PASSWORD).await;
    let logged_out = app.login(&user, PASSWORD).await;
    let response = app
        .post_json_bearer("logout", &json!({}), &logged_out.access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // t0+2000: a verification link that expires at t0+2900.
    app.clock.advance(2000);
    let stale = email("stale-link");
    assert_eq!(app.verify_email(&stale).await.status(), StatusCode::OK);
    // t0+4000: a live session, one just logged out, a fresh link.
    app.clock.advance(2000);
    let live = app.login(&user, PASSWORD).await;
    let recent = app.login(&user, PASSWORD).await;
    let response = app
        .post_json_bearer("logout", &json!({}), &recent.access)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = email("fresh-link");
    assert_eq!(app.verify_email(&fresh).await.status(), StatusCode::OK);
    app.wait_for_mail_relay().await;
    // t0+4600: past the first session's expiry + horizon, within the recent logout's horizon.
    app.clock.advance(600);
    let now = app.clock.now();

    // Delivered outbox rows: two events and one email older than 7 days, others recent.
    let events: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM outbox_events ORDER BY created_at, event_id")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert!(events.len() >= 5, "{events:?}");
    for (id, delivered_at) in [
        (&events[0], now - 8 * DAY),
        (&events[1], now - 8 * DAY),
        (&events[2], now - DAY),
    ] {
        sqlx::query(
            "UPDATE outbox_events SET status = 'delivered', delivered_at = $1 WHERE event_id = $2",
        )
        .bind(delivered_at)
        .bind(id)
        .execute(&app.state.db)
        .await
        .unwrap();
    }
    let emails: Vec<String> = sqlx::query_scalar(
        "SELECT email_id FROM email_outbox WHERE status = 'sent' ORDER BY created_at",
    )
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert_eq!(emails.len(), 3, "{emails:?}");
    sqlx::query("UPDATE email_outbox SET sent_at = $1 WHERE email_id = $2")
        .bind(now - 8 * DAY)
        .bind(&emails[0])
        .execute(&app.state.db)
        .await
        .unwrap();
    // An old email that never went out is not "delivered": it stays.
    sqlx::query("UPDATE email_outbox SET status = 'dead', sent_at = NULL, created_at = $1 WHERE email_id = $2")
        .bind(now - 30 * DAY)
        .bind(&emails[1])
        .execute(&app.state.db)
        .await
        .unwrap();
    let events_before = events.len();
    assert!(refresh_tokens(&app, &expired.session_id).await > 0);

    let removed = cleanup::run_once(&app.state.db, now, horizon)
        .await
        .unwrap();
    assert_eq!(
        removed,
        cleanup::Removed {
            sessions: 2,
            one_time_tokens: 1,
            events: 2,
            emails: 1,
        }
    );
    // Expired and long-revoked sessions are gone with their refresh tokens.
    for sid in [&expired.session_id, &logged_out.session_id] {
        assert!(!session_exists(&app, sid).await, "{sid} should be removed");
        assert_eq!(refresh_tokens(&app, sid).await, 0);
    }
    // The live session, and the recently revoked one (the revocation feed still needs it), stay.
    for sid in [&live.session_id, &recent.session_id] {
        assert!(session_exists(&app, sid).await, "{sid} should stay");
        assert!(refresh_tokens(&app, sid).await > 0);
    }
    assert!(!one_time_token_exists(&app, &stale).await);
    assert!(one_time_token_exists(&app, &fresh).await);
    let events_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_events")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(events_after, i64::try_from(events_before).unwrap() - 2);
    let emails_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM email_outbox")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(emails_after, 2);
    // The live session still works; a second pass finds nothing more.
    app.assert_access_works(&live.access).await;
    assert_eq!(
        cleanup::run_once(&app.state.db, now, horizon)
            .await
            .unwrap(),
        cleanup::Removed::default()
    );
}

async fn a_lease_has_one_holder_at_a_time(backend: Backend) {
    // No workers: nobody else touches the leases.
    let app = spawn_app_with(backend, &[("RUN_WORKERS", "false")]).await;
    let db = &app.state.db;
    let now = app.clock.now();
    for name in [leases::CLEANUP, leases::KAFKA_RELAY] {
        assert!(leases::acquire(db, name, "w1", now, 30).await.unwrap());
        assert!(!leases::acquire(db, name, "w2", now, 30).await.unwrap());
        // Renewal extends it (to now+40).
        assert!(leases::acquire(db, name, "w1", now + 10, 30).await.unwrap());
        assert!(!leases::acquire(db, name, "w2", now + 35, 30).await.unwrap());
        // An expired lease is taken over, and the old holder cannot renew it.
        assert!(leases::acquire(db, name, "w2", now + 41, 30).await.unwrap());
        assert!(!leases::acquire(db, name, "w1", now + 42, 30).await.unwrap());
        // Released: free at once.
        leases::release(db, name, "w2").await.unwrap();
        assert!(leases::acquire(db, name, "w1", now + 43, 30).await.unwrap());
        // Many contenders for an expired lease at the same moment: exactly one wins.
        let at = now + 1000;
        let contenders = (0..8).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let holder = format!("c{i}");
                let won = leases::acquire(&db, name, &holder, at, 30).await.unwrap();
                (holder, won)
            })
        });
        let results: Vec<(String, bool)> = futures_util::future::join_all(contenders)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let winners: Vec<&String> = results.iter().filter(|(_, w)| *w).map(|(h, _)| h).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let holder: String = sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1")
            .bind(name)
            .fetch_one(db)
            .await
            .unwrap();
        assert_eq!(&holder, winners[0]);
    }
}
