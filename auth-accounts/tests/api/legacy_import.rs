//! `import-legacy` against a real old-schema PostgreSQL database (`tests/fixtures/legacy_schema.sql`,
//! written from the old service's migrations), into SQLite and into PostgreSQL: a dry run, the
//! import, the import again (no duplicates), then the real API: an imported user signs in with the
//! original password (and the bcrypt hash is upgraded), and a browser's old `refresh_token` cookie
//! is rotated into a new-format token instead of signing the user out.

use std::collections::HashMap;

use auth_accounts::config::Config;
use auth_accounts::legacy::import::{run, Counts, Options, Report};
use reqwest::StatusCode;
use sqlx::{Connection as _, Executor as _};

use crate::helpers::{cookie_value, json_body, jwt_claims, spawn_on, Backend, Env, FRONTEND};

both!(old_database_is_imported_and_old_cookies_keep_working);

const SCHEMA: &str = include_str!("../fixtures/legacy_schema.sql");

const ALICE: &str = "00000000-0000-4000-8000-000000000001";
const BOB: &str = "00000000-0000-4000-8000-000000000002";
const BOB_AGAIN: &str = "00000000-0000-4000-8000-000000000003";
const BAD_EMAIL: &str = "00000000-0000-4000-8000-000000000004";
const BAD_ROLE: &str = "00000000-0000-4000-8000-000000000005";
const NO_HASH: &str = "00000000-0000-4000-8000-000000000006";
const PLAIN_HASH: &str = "00000000-0000-4000-8000-000000000007";
const CAROL: &str = "00000000-0000-4000-8000-000000000008";

const ALICE_LIVE: &str = "10000000-0000-4000-8000-000000000001";
const ALICE_REVOKED: &str = "10000000-0000-4000-8000-000000000002";
const ALICE_EXPIRED: &str = "10000000-0000-4000-8000-000000000003";
const BOB_LIVE: &str = "10000000-0000-4000-8000-000000000004";
const BAD_ROLE_LIVE: &str = "10000000-0000-4000-8000-000000000005";
const CAROL_BAD_FINGERPRINT: &str = "10000000-0000-4000-8000-000000000006";

/// The old service's refresh tokens were `str(uuid4())`, stored as `sha256(token).hexdigest()`.
const ALICE_OLD_REFRESH: &str = "5b0c3f7e-2a51-4d0e-9a57-3f1d2c4b6a88";
const BOB_OLD_REFRESH: &str = "0f6d7a1c-8e2b-4b49-a3d1-9c0e5f7b2d44";

fn sha256_hex(s: &str) -> String {
    auth_accounts::crypto::sha256_hex(s)
}

/// Builds the old database: the fixture schema, then rows the old service wrote, and rows that a
/// database edited by hand over the years may hold (its constraints loosened first).
async fn old_database() -> std::sync::Arc<Env> {
    let source = Env::new(Backend::Postgres).await;
    let mut conn = sqlx::postgres::PgConnection::connect(&source.database_url)
        .await
        .expect("connect to the old database");
    sqlx::raw_sql(SCHEMA)
        .execute(&mut conn)
        .await
        .expect("old schema");
    conn.execute(
        "ALTER TABLE users DROP CONSTRAINT ck_users_role_allowed;
         ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;",
    )
    .await
    .expect("loosen constraints");
    // The old service hashed with rounds=10; cost 4 keeps the test fast and still shows the upgrade.
    let alice_hash = bcrypt::hash("alice-old-password", 4).expect("bcrypt");
    let other_hash = bcrypt::hash("some-password", 4).expect("bcrypt");
    let users = [
        (
            ALICE,
            0,
            "alice@example.com",
            Some(alice_hash.as_str()),
            "Alice",
        ),
        (BOB, 1, "Bob@Example.com", Some(other_hash.as_str()), "Bob"),
        // Differs only in case: the old service kept both; the new one has one account per address.
        (
            BOB_AGAIN,
            0,
            "bob@example.com",
            Some(other_hash.as_str()),
            "Bob 2",
        ),
        (
            BAD_EMAIL,
            0,
            "admin@localhost",
            Some(other_hash.as_str()),
            "Local",
        ),
        (
            BAD_ROLE,
            7,
            "role@example.com",
            Some(other_hash.as_str()),
            "Role",
        ),
        (NO_HASH, 0, "nohash@example.com", None, "No Hash"),
        (PLAIN_HASH, 0, "plain@example.com", Some("hunter2"), "Plain"),
        (
            CAROL,
            0,
            "carol@example.com",
            Some(other_hash.as_str()),
            "Carol",
        ),
    ];
    for (id, role, email, hash, name) in users {
        sqlx::query(
            "INSERT INTO users (user_id, role, email, password_hash, name, country, retention_days, is_active,
                 last_login, created_at, updated_at, is_locked, locked_until)
             VALUES ($1::uuid, $2, $3, $4, $5, 'Russia', 30, true, now() - interval '1 day',
                 now() - interval '90 days', now() - interval '1 day', false, NULL)",
        )
        .bind(id)
        .bind(role)
        .bind(email)
        .bind(hash)
        .bind(name)
        .execute(&mut conn)
        .await
        .expect("insert old user");
    }
    let sessions = [
        (
            ALICE_LIVE,
            ALICE,
            false,
            "10 days",
            sha256_hex(ALICE_OLD_REFRESH),
        ),
        (ALICE_REVOKED, ALICE, true, "10 days", sha256_hex("revoked")),
        (ALICE_EXPIRED, ALICE, false, "-1 day", sha256_hex("expired")),
        (BOB_LIVE, BOB, false, "20 days", sha256_hex(BOB_OLD_REFRESH)),
        (
            BAD_ROLE_LIVE,
            BAD_ROLE,
            false,
            "20 days",
            sha256_hex("bad-role"),
        ),
        (
            CAROL_BAD_FINGERPRINT,
            CAROL,
            false,
            "20 days",
            "z".repeat(64),
        ),
    ];
    for (id, user, revoked, expires_in, fingerprint) in sessions {
        sqlx::query(
            "INSERT INTO sessions (session_id, user_id, user_agent, device_name, ip, location, revoked,
                 refresh_fingerprint, last_activity, expires_at, created_at)
             VALUES ($1::uuid, $2::uuid, 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0', 'Firefox on Linux',
                 '203.0.113.7', 'Moscow, Russia', $3, $4, now() - interval '2 hours',
                 now() + $5::interval, now() - interval '3 days')",
        )
        .bind(id)
        .bind(user)
        .bind(revoked)
        .bind(fingerprint)
        .bind(expires_in)
        .execute(&mut conn)
        .await
        .expect("insert old session");
    }
    let _ = conn.close().await;
    source
}

fn target_config(target: &Env) -> Config {
    let vars: HashMap<String, String> = [
        ("DATABASE_URL", target.database_url.clone()),
        ("DATA_DIR", target.dir.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Config::from_vars(&vars).expect("target configuration")
}

fn rejected_ids(report: &Report) -> Vec<(&str, &str)> {
    let mut ids: Vec<(&str, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.table, r.id.as_str()))
        .collect();
    ids.sort();
    ids
}

async fn count(app: &crate::helpers::TestApp, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&app.state.db)
        .await
        .expect("count");
    n
}

async fn old_database_is_imported_and_old_cookies_keep_working(backend: Backend) {
    let source = old_database().await;
    let target = Env::new(backend).await;
    let config = target_config(&target);
    let mut options = Options::parse(&[
        "--from".to_string(),
        // The old service's own spelling of the URL.
        source
            .database_url
            .replacen("postgres://", "postgresql+asyncpg://", 1),
        "--batch-size".to_string(),
        "2".to_string(),
        "--dry-run".to_string(),
    ])
    .expect("options");

    let expected_rejects = vec![
        ("sessions", BAD_ROLE_LIVE),
        ("sessions", CAROL_BAD_FINGERPRINT),
        ("users", BOB_AGAIN),
        ("users", BAD_EMAIL),
        ("users", BAD_ROLE),
        ("users", NO_HASH),
        ("users", PLAIN_HASH),
    ];

    // Dry run: counts what a real run would do.
    let dry = run(&config, &options).await.expect("dry run");
    println!("{dry}");
    assert_eq!(
        dry.users,
        Counts {
            read: 8,
            imported: 3,
            present: 0,
            not_live: 0
        }
    );
    assert_eq!(
        dry.sessions,
        Counts {
            read: 6,
            imported: 2,
            present: 0,
            not_live: 2
        }
    );
    assert_eq!(rejected_ids(&dry), expected_rejects, "{dry}");
    // Nothing was written: the target was not even opened.
    if backend == Backend::Sqlite {
        assert!(!target.dir.join("auth.db").exists());
    }

    // The import: every rejected row is reported with its reason.
    options.dry_run = false;
    let first = run(&config, &options).await.expect("import");
    println!("{first}");
    assert_eq!(
        first.users,
        Counts {
            read: 8,
            imported: 3,
            present: 0,
            not_live: 0
        }
    );
    assert_eq!(
        first.sessions,
        Counts {
            read: 6,
            imported: 2,
            present: 0,
            not_live: 2
        }
    );
    assert_eq!(rejected_ids(&first), expected_rejects, "{first}");
    let reason = |id: &str| {
        first
            .rejected
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.reason.clone())
            .unwrap_or_default()
    };
    assert!(reason(BOB_AGAIN).contains(BOB), "{first}");
    assert!(reason(BAD_EMAIL).contains("domain needs a dot"), "{first}");
    assert!(reason(BAD_ROLE).contains("unknown role 7"), "{first}");
    assert!(
        reason(NO_HASH).contains("password hash is missing"),
        "{first}"
    );
    assert!(reason(PLAIN_HASH).contains("not bcrypt"), "{first}");
    assert!(reason(BAD_ROLE_LIVE).contains("rejected"), "{first}");
    assert!(
        reason(CAROL_BAD_FINGERPRINT).contains("fingerprint"),
        "{first}"
    );

    // Again: nothing new, nothing duplicated, the same rows reported.
    let second = run(&config, &options).await.expect("second import");
    assert_eq!(
        second.users,
        Counts {
            read: 8,
            imported: 0,
            present: 3,
            not_live: 0
        }
    );
    assert_eq!(
        second.sessions,
        Counts {
            read: 6,
            imported: 0,
            present: 2,
            not_live: 2
        }
    );
    assert_eq!(rejected_ids(&second), expected_rejects);

    // The real API on the imported database (cost 5 > the old hashes' 4: an upgrade is due).
    let app = spawn_on(&target, &[("BCRYPT_COST", "5")]).await;
    assert_eq!(count(&app, "users").await, 3);
    assert_eq!(count(&app, "sessions").await, 2);
    assert_eq!(count(&app, "refresh_tokens").await, 2);
    let (role,): (i64,) = sqlx::query_as("SELECT role FROM users WHERE email = 'bob@example.com'")
        .fetch_one(&app.state.db)
        .await
        .expect("bob");
    assert_eq!(role, 1);

    // Sign in with the original password; the hash is upgraded on the way.
    let tokens = app.login("alice@example.com", "alice-old-password").await;
    assert_eq!(tokens.user_id, ALICE);
    let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE user_id = $1")
        .bind(ALICE)
        .fetch_one(&app.state.db)
        .await
        .expect("hash");
    assert!(
        hash.starts_with("$2b$05$"),
        "rehashed at the new cost: {hash}"
    );
    app.login("alice@example.com", "alice-old-password").await;
    let wrong = app.login_body("alice@example.com", "wrong-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // A browser still holding the old service's refresh cookie (Path=/) after the cut-over.
    let refresh = |cookie: String| {
        app.client
            .post(app.url("refresh"))
            .header(reqwest::header::ORIGIN, FRONTEND)
            .header(reqwest::header::COOKIE, cookie)
            .send()
    };
    let response = refresh(format!("refresh_token={ALICE_OLD_REFRESH}"))
        .await
        .expect("refresh");
    assert_eq!(response.status(), StatusCode::OK);
    let new_refresh = cookie_value(&response, "refresh_token").expect("new refresh cookie");
    let access = cookie_value(&response, "access_token").expect("new access cookie");
    assert_ne!(new_refresh, ALICE_OLD_REFRESH);
    assert_eq!(new_refresh.len(), 43, "a new-format token");
    let claims = jwt_claims(&access);
    assert_eq!(claims["sub"], ALICE);
    assert_eq!(claims["sid"], ALICE_LIVE, "the same session, not a new one");
    let me = app.get("me", Some(&access)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(json_body(me).await["email"], "alice@example.com");

    // The chain goes on with the new token; the old one is now a used generation (reuse).
    let response = refresh(format!("refresh_token={new_refresh}"))
        .await
        .expect("refresh");
    assert_eq!(response.status(), StatusCode::OK);
    let third = cookie_value(&response, "refresh_token").expect("third refresh cookie");
    let response = refresh(format!("refresh_token={third}"))
        .await
        .expect("refresh");
    assert_eq!(response.status(), StatusCode::OK);

    // Bob's old token works from a non-browser client too (token in the body).
    let response = app.refresh_body(BOB_OLD_REFRESH).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Sessions that were revoked or expired in the old service stay signed out.
    let response = refresh("refresh_token=revoked".to_string())
        .await
        .expect("refresh");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
