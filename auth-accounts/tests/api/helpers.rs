//! Starting the real application on port 0 against SQLite or PostgreSQL, and the HTTP, mail and
//! database helpers every scenario uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_accounts::clock::Clock;
use auth_accounts::config::Config;
use auth_accounts::startup::Application;
use auth_accounts::state::AppState;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection as _;

pub use auth_test_support::tokens::{jwt_claims, jwt_header};

pub const FRONTEND: &str = "http://localhost:3000";
pub const PASSWORD: &str = "correct-horse-battery";
pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/// Runs each named scenario (an `async fn(Backend)`) once on SQLite and once on PostgreSQL.
macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )+
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The data of one test: a temp dir (database file, mail, keys) and, for PostgreSQL, a fresh
/// database. Several apps can run on one `Env` (a restart with other settings); the last one to go
/// removes the dir and drops the database.
pub struct Env {
    pub dir: PathBuf,
    pub database_url: String,
    /// (admin URL, database name) for PostgreSQL.
    postgres: Option<(String, String)>,
}

impl Env {
    pub async fn new(backend: Backend) -> Arc<Self> {
        let dir = std::env::temp_dir().join(format!(
            "auth-accounts-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/auth.db", dir.display()), None),
            Backend::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
                    panic!("TEST_DATABASE_URL is not set: run scripts/test (it starts PostgreSQL)")
                });
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::postgres::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
                let _ = conn.close().await;
                let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&format!("/{name}"));
                (url.to_string(), Some((admin, name)))
            }
        };
        // Created last: a failure above leaves nothing behind.
        std::fs::create_dir_all(&dir).expect("create the test temp dir");
        Arc::new(Self {
            dir,
            database_url,
            postgres,
        })
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.dir.join("mail")
    }

    pub fn private_key_path(&self) -> PathBuf {
        self.dir.join("certs").join("jwt-private.pem")
    }

    pub fn public_key_path(&self) -> PathBuf {
        self.dir.join("certs").join("jwt-public.pem")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for _ in 0..5 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some((admin, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime: use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::postgres::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Tokens of one session, as handed out with `tokenDelivery: "body"`.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
    pub session_id: String,
}

impl Tokens {
    fn from_body(body: &Value) -> Self {
        let access = body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {body}"))
            .to_string();
        let claims = jwt_claims(&access);
        Self {
            refresh: body["refresh_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no refresh_token in {body}"))
                .to_string(),
            user_id: claims["sub"].as_str().expect("sub").to_string(),
            session_id: claims["sid"].as_str().expect("sid").to_string(),
            access,
        }
    }
}

/// One email written by the file mailer.
#[derive(Debug)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub raw: String,
}

impl Mail {
    /// The frontend links in the text part.
    pub fn links(&self) -> Vec<url::Url> {
        self.raw
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with(FRONTEND))
            .filter_map(|l| url::Url::parse(l).ok())
            .collect()
    }

    /// The path of the action link (the last link of the text part): `/auth/registration`,
    /// `/auth/reset-password`, `/auth/forgot-password`.
    pub fn link_path(&self) -> Option<String> {
        self.links().last().map(|u| u.path().to_string())
    }

    pub fn token(&self) -> Option<String> {
        self.links().iter().find_map(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.to_string())
        })
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:{port}/api/v1/auth`
    pub address: String,
    pub port: u16,
    /// The `METRICS_PORT` listener, when the test asked for one.
    pub metrics_port: Option<u16>,
    pub client: Client,
    pub mail_dir: PathBuf,
    pub clock: Clock,
    pub state: AppState,
    pub env: Arc<Env>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        // `close` marks the pool closed at once (the returned future only drains it): background
        // tasks still running until the test's runtime ends open no new connection, so nothing
        // recreates the SQLite file after `Env` removed it.
        std::mem::drop(self.state.db.close());
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, extra_vars: &[(&str, &str)]) -> TestApp {
    let env = Env::new(backend).await;
    spawn_on(&env, extra_vars).await
}

/// Starts an application on an existing `Env`: same database, mail dir and signing keys.
pub async fn spawn_on(env: &Arc<Env>, extra_vars: &[(&str, &str)]) -> TestApp {
    let mut vars: HashMap<String, String> = [
        ("HOST", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
        ("BCRYPT_COST", "4".to_string()),
        ("DATA_DIR", env.dir.display().to_string()),
        ("MAIL_DIR", env.mail_dir().display().to_string()),
        (
            "JWT_PRIVATE_KEY_PATH",
            env.private_key_path().display().to_string(),
        ),
        (
            "JWT_PUBLIC_KEY_PATH",
            env.public_key_path().display().to_string(),
        ),
        ("FRONTEND_URL", FRONTEND.to_string()),
        ("DATABASE_URL", env.database_url.clone()),
        // Scenarios make many requests from 127.0.0.1 in a second; the limits have their own test.
        ("RATE_LIMIT_ENABLED", "false".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra_vars {
        vars.insert((*k).to_string(), (*v).to_string());
    }
    let config = Config::from_vars(&vars).expect("test configuration is valid");
    let app = Application::build_with_clock(config, Clock::default())
        .await
        .unwrap_or_else(|e| panic!("application failed to start: {e}"));
    let port = app.port();
    let metrics_port = app.metrics_port();
    let state = app.state().clone();
    let server = tokio::spawn(async move {
        let _ = app.run_until(std::future::pending()).await;
    });
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client");
    TestApp {
        address: format!("http://127.0.0.1:{port}/api/v1/auth"),
        port,
        metrics_port,
        client,
        mail_dir: env.mail_dir(),
        clock: state.clock.clone(),
        state,
        env: env.clone(),
        server,
    }
}

pub async fn json_body(response: Response) -> Value {
    let status = response.status();
    let text = response.text().await.expect("response body");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text:?}"))
}

/// Asserts the status and the error body shape, and returns the detail.
pub async fn assert_error(response: Response, status: StatusCode, action: &str) -> String {
    let got = response.status();
    let body = json_body(response).await;
    assert_eq!(got, status, "unexpected status; body {body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["action"], action, "{body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(3),
        "error body has exactly status, action, detail: {body}"
    );
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("detail is a string: {body}"))
        .to_string()
}

/// All `Set-Cookie` header values of a response.
pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii Set-Cookie").to_string())
        .collect()
}

/// The value of the live (non-empty) `name` cookie set by a response.
pub fn cookie_value(response: &Response, name: &str) -> Option<String> {
    set_cookies(response).iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (n, v) = first.split_once('=')?;
        (n.trim() == name && !v.is_empty()).then(|| v.to_string())
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.address, path.trim_start_matches('/'))
    }

    /// `http://127.0.0.1:{port}` (for paths outside the API prefix).
    pub fn root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client with a cookie store that sends `Origin: FRONTEND` like a browser on the frontend.
    /// Secure cookies never travel over plain http: use it with `COOKIE_SECURE=false`.
    pub fn cookie_client(&self) -> Client {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::ORIGIN, HeaderValue::from_static(FRONTEND));
        Client::builder()
            .cookie_store(true)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client")
    }

    pub async fn post_json(&self, path: &str, value: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(value)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json_bearer(&self, path: &str, value: &Value, bearer: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(bearer)
            .json(value)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request")
    }

    pub async fn delete(&self, path: &str, bearer: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("request")
    }

    pub async fn verify_email(&self, email: &str) -> Response {
        self.post_json("verify-email", &json!({ "email": email }))
            .await
    }

    /// verify-email, then the token from the emailed link.
    pub async fn verification_token(&self, email: &str) -> String {
        let response = self.verify_email(email).await;
        assert_eq!(response.status(), StatusCode::OK);
        self.latest_mail_token(email).await
    }

    pub fn registration_body(email: &str, token: &str, password: &str) -> Value {
        json!({
            "email": email, "token": token, "password": password,
            "name": "Test User", "country": "Russia", "tokenDelivery": "body",
        })
    }

    /// The full registration flow; returns the tokens of the session it opens.
    pub async fn register(&self, email: &str, password: &str) -> Tokens {
        let token = self.verification_token(email).await;
        let response = self
            .post_json(
                "complete-registration",
                &Self::registration_body(email, &token, password),
            )
            .await;
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(status, StatusCode::OK, "complete-registration: {body}");
        let tokens = Tokens::from_body(&body);
        assert_eq!(body["userId"], tokens.user_id.as_str());
        tokens
    }

    /// login with `tokenDelivery: "body"`.
    pub async fn login_body(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "login",
            &json!({ "email": email, "password": password, "tokenDelivery": "body" }),
        )
        .await
    }

    /// login with a User-Agent, tokens in the body; panics unless 200.
    pub async fn login_as(&self, email: &str, password: &str, user_agent: &str) -> Tokens {
        let response = self
            .client
            .post(self.url("login"))
            .header(reqwest::header::USER_AGENT, user_agent)
            .json(&json!({ "email": email, "password": password, "tokenDelivery": "body" }))
            .send()
            .await
            .expect("request");
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(status, StatusCode::OK, "login: {body}");
        Tokens::from_body(&body)
    }

    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        self.login_as(email, password, "integration-test").await
    }

    pub async fn refresh_body(&self, refresh: &str) -> Response {
        self.post_json("refresh", &json!({ "refreshToken": refresh }))
            .await
    }

    pub async fn me_status(&self, access: &str) -> StatusCode {
        self.get("me", Some(access)).await.status()
    }

    pub async fn validate_status(&self, access: &str) -> StatusCode {
        self.post_json("validate-token", &json!({ "token": access }))
            .await
            .status()
    }

    pub async fn gateway_status(&self, access: &str) -> StatusCode {
        self.get("gateway-verify", Some(access)).await.status()
    }

    /// The access token works for /me, validate-token and gateway-verify.
    pub async fn assert_access_works(&self, access: &str) {
        assert_eq!(self.me_status(access).await, StatusCode::OK, "/me");
        assert_eq!(
            self.validate_status(access).await,
            StatusCode::OK,
            "validate-token"
        );
        assert_eq!(
            self.gateway_status(access).await,
            StatusCode::OK,
            "gateway-verify"
        );
    }

    /// The access token is refused, at once, by /me, validate-token and gateway-verify.
    pub async fn assert_access_dead(&self, access: &str) {
        assert_eq!(
            self.me_status(access).await,
            StatusCode::UNAUTHORIZED,
            "/me"
        );
        assert_eq!(
            self.validate_status(access).await,
            StatusCode::UNAUTHORIZED,
            "validate-token"
        );
        assert_eq!(
            self.gateway_status(access).await,
            StatusCode::UNAUTHORIZED,
            "gateway-verify"
        );
    }

    pub async fn assert_refresh_dead(&self, refresh: &str) {
        let response = self.refresh_body(refresh).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "refresh").await;
    }

    /// Waits (up to 5 s) until the email relay has written every queued email.
    pub async fn wait_for_mail_relay(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pending: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'")
                    .fetch_one(&self.state.db)
                    .await
                    .expect("count pending emails");
            if pending == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{pending} email(s) still pending after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every email written to `recipient`, oldest first (after the relay has caught up).
    pub async fn mails_to(&self, recipient: &str) -> Vec<Mail> {
        self.wait_for_mail_relay().await;
        let Ok(dir) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        let mut found: Vec<((i64, std::time::SystemTime), Mail)> = Vec::new();
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("eml") {
                continue;
            }
            let raw = std::fs::read_to_string(&path).expect("read .eml");
            let header = |name: &str| {
                raw.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            let to = header("To: ");
            if to != recipient {
                continue;
            }
            let mail = Mail {
                subject: header("Subject: "),
                to,
                raw,
            };
            found.push((sort_key(&path), mail));
        }
        found.sort_by_key(|a| a.0);
        found.into_iter().map(|(_, m)| m).collect()
    }

    pub async fn latest_mail(&self, recipient: &str) -> Mail {
        self.mails_to(recipient)
            .await
            .pop()
            .unwrap_or_else(|| panic!("no email to {recipient}"))
    }

    /// The token of the newest email to `recipient` that carries one.
    pub async fn latest_mail_token(&self, recipient: &str) -> String {
        let mail = self.latest_mail(recipient).await;
        mail.token()
            .unwrap_or_else(|| panic!("the newest email to {recipient} has no token: {mail:?}"))
    }

    /// Event types in the outbox, oldest first.
    pub async fn events(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT event_type FROM outbox_events ORDER BY created_at")
            .fetch_all(&self.state.db)
            .await
            .expect("read outbox_events")
    }

    /// (event_type, payload text) of every outbox event.
    pub async fn event_rows(&self) -> Vec<(String, String)> {
        sqlx::query_as("SELECT event_type, payload FROM outbox_events ORDER BY created_at")
            .fetch_all(&self.state.db)
            .await
            .expect("read outbox_events")
    }

    pub async fn password_hash(&self, email: &str) -> String {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(&self.state.db)
            .await
            .expect("read password_hash")
    }
}

/// Emails are named `{created_at}-{id}.eml`; the relay writes them in creation order, so the file
/// time breaks ties within one second.
fn sort_key(path: &Path) -> (i64, std::time::SystemTime) {
    let created = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH);
    (created, modified)
}

/// A unique address for one test.
pub fn email(prefix: &str) -> String {
    format!(
        "{prefix}-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
