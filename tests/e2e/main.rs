//! accounts + edge, the real binaries: a token accounts issues passes the edge with the user's
//! identity; a logout reaches the edge through the revocation stream within a second; after
//! `auth-accounts rotate-keys`, tokens of the old and the new key both pass without restarting
//! the edge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use auth_test_support::process::workspace_binary as binary;
use auth_test_support::tokens::kid;
use auth_test_support::{free_port, unique, wait_http_ok, Process, TempDir};
use serde_json::{json, Value};

/// The two programs and their data; the processes are stopped before the dir is removed.
struct Stack {
    accounts_env: Vec<(String, String)>,
    accounts: String,
    edge: String,
    _procs: Vec<Process>,
    dir: TempDir,
    http: reqwest::Client,
}

async fn wait_ready(url: &str) {
    assert!(
        wait_http_ok(url, Duration::from_secs(30)).await,
        "{url} never became ready"
    );
}

async fn start() -> Stack {
    let dir = TempDir::new("auth-e2e");
    let port = free_port();
    let accounts_env: Vec<(String, String)> = [
        ("HOST", "127.0.0.1".to_string()),
        ("PORT", port.to_string()),
        ("DATA_DIR", dir.path().join("data").display().to_string()),
        (
            "JWT_PRIVATE_KEY_PATH",
            dir.path()
                .join("certs/jwt-private.pem")
                .display()
                .to_string(),
        ),
        (
            "JWT_PUBLIC_KEY_PATH",
            dir.path()
                .join("certs/jwt-public.pem")
                .display()
                .to_string(),
        ),
        ("BCRYPT_COST", "4".to_string()),
        ("RATE_LIMIT_ENABLED", "false".to_string()),
        ("LOG_LEVEL", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let accounts_proc = Process::spawn(
        "auth-accounts",
        Command::new(binary("auth-accounts")).envs(accounts_env.iter().cloned()),
    );
    let accounts = format!("http://127.0.0.1:{port}/api/v1/auth");
    wait_ready(&format!("{accounts}/health")).await;

    let (edge_port, admin_port) = (free_port(), free_port());
    let edge_proc = Process::spawn(
        "auth-edge",
        Command::new(binary("auth-edge"))
            .env("AUTH_EDGE_LISTEN", format!("127.0.0.1:{edge_port}"))
            .env("AUTH_EDGE_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
            .env(
                "AUTH_EDGE_JWKS_URL",
                format!("{accounts}/.well-known/jwks.json"),
            )
            .env(
                "AUTH_EDGE_REVOCATIONS_URL",
                format!("{accounts}/revocations/stream"),
            )
            .env("AUTH_EDGE_JWKS_UNKNOWN_KID_INTERVAL_SECONDS", "1")
            .env("LOG_LEVEL", "warn"),
    );
    wait_ready(&format!("http://127.0.0.1:{admin_port}/readyz")).await;
    Stack {
        dir,
        accounts_env,
        accounts,
        edge: format!("http://127.0.0.1:{edge_port}"),
        _procs: vec![accounts_proc, edge_proc],
        http: reqwest::Client::new(),
    }
}

impl Stack {
    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/{path}", self.accounts))
            .json(&body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// verify-email -> token from the mail folder -> complete-registration; returns (userId, access).
    async fn register(&self, email: &str) -> (String, String) {
        assert_eq!(
            self.post("verify-email", json!({ "email": email }), None)
                .await
                .0,
            200
        );
        let mail_dir = self.dir.path().join("data/mail");
        let deadline = Instant::now() + Duration::from_secs(10);
        let token = loop {
            let found = std::fs::read_dir(&mail_dir).ok().and_then(|entries| {
                entries.filter_map(Result::ok).find_map(|e| {
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    if !text.contains(&format!("To: {email}")) {
                        return None;
                    }
                    let start = text.find("token=")? + 6;
                    Some(text[start..start + 43].to_string())
                })
            });
            if let Some(t) = found {
                break t;
            }
            assert!(Instant::now() < deadline, "no verification email");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let body = json!({ "email": email, "token": token, "password": "e2e-password-1",
            "name": "E2E", "country": "Testland", "tokenDelivery": "body" });
        let (status, body) = self.post("complete-registration", body, None).await;
        assert_eq!(status, 200, "{body}");
        (
            body["userId"].as_str().unwrap().to_string(),
            body["access_token"].as_str().unwrap().to_string(),
        )
    }

    async fn login(&self, email: &str) -> String {
        let body = json!({ "email": email, "password": "e2e-password-1", "tokenDelivery": "body" });
        let (status, body) = self.post("login", body, None).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Asks the edge about a request carrying `access` as a Bearer token.
    async fn edge(&self, access: &str) -> (u16, Option<String>) {
        let r = self
            .http
            .get(format!("{}/some/service/path", self.edge))
            .bearer_auth(access)
            .header("X-User-Id", "spoofed")
            .send()
            .await
            .unwrap();
        let user = r
            .headers()
            .get("x-user-id")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), user)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_edge_together() {
    let stack = start().await;
    let email = format!("{}@example.com", unique("e2e"));
    let (user_id, access) = stack.register(&email).await;

    // Issued by accounts, verified by the edge: the identity is accounts' user, never the client's.
    assert_eq!(stack.edge(&access).await, (200, Some(user_id.clone())));
    let cookie = stack
        .http
        .get(format!("{}/", stack.edge))
        .header("Cookie", format!("access_token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status().as_u16(), 200);

    // Logout at accounts: the edge refuses the same token within a second (pushed revocation).
    let (status, _) = stack.post("logout", json!({}), Some(&access)).await;
    assert_eq!(status, 200);
    let revoked_at = Instant::now();
    loop {
        if stack.edge(&access).await.0 == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "the edge still accepts a revoked session after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "revocation visible at the edge after {:?}",
        revoked_at.elapsed()
    );

    // Key rotation at accounts: old-key and new-key tokens both pass, the edge keeps running.
    let old = stack.login(&email).await;
    let rotate = Command::new(binary("auth-accounts"))
        .arg("rotate-keys")
        .envs(stack.accounts_env.iter().cloned())
        .output()
        .unwrap();
    assert!(
        rotate.status.success(),
        "rotate-keys: {}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    // accounts reloads its key files every 5 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    let new = loop {
        let token = stack.login(&email).await;
        if kid(&token) != kid(&old) {
            break token;
        }
        assert!(
            Instant::now() < deadline,
            "accounts never signed with the rotated key"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(stack.edge(&new).await, (200, Some(user_id.clone())));
    assert_eq!(stack.edge(&old).await, (200, Some(user_id)));
}
