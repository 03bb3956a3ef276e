//! The `auth-edge` binary: `--check`, and serving until SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

fn edge_command(vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth-edge"));
    // Only what the test sets: nothing from the developer's environment leaks in.
    cmd.env_clear();
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

fn check(vars: &[(&str, &str)]) -> (i32, String, String) {
    let out = edge_command(vars).arg("--check").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_a_valid_configuration() {
    let dir = TempDir::new("check");
    let pem = dir.write("public.pem", &key_a().public_pem().unwrap());
    let (code, out, err) = check(&[("AUTH_EDGE_JWKS_FILE", pem.to_str().unwrap())]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("configuration OK") && out.contains("1 key(s)"),
        "{out}"
    );

    // The defaults alone are valid (JWKS URL of the local accounts, not fetched by --check).
    let (code, out, err) = check(&[]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn check_rejects_bad_configuration_naming_the_variable() {
    let dir = TempDir::new("check");
    let garbage = dir.write("garbage.pem", "not a key");
    let missing = dir.path().join("missing.pem");
    for (vars, var) in [
        (
            vec![("AUTH_EDGE_ALGORITHMS", "HS256")],
            "AUTH_EDGE_ALGORITHMS",
        ),
        (vec![("AUTH_EDGE_LISTEN", "nowhere")], "AUTH_EDGE_LISTEN"),
        (
            vec![("AUTH_EDGE_CA_FILE", "/nonexistent/ca.pem")],
            "AUTH_EDGE_CA_FILE",
        ),
        (
            vec![("AUTH_EDGE_JWKS_FILE", garbage.to_str().unwrap())],
            "AUTH_EDGE_JWKS_FILE",
        ),
        (
            vec![("AUTH_EDGE_JWKS_FILE", missing.to_str().unwrap())],
            "AUTH_EDGE_JWKS_FILE",
        ),
    ] {
        let (code, out, err) = check(&vars);
        assert_eq!(code, 2, "{vars:?}: {out}{err}");
        assert!(err.contains(var), "{vars:?}: {err}");
    }
    let out = edge_command(&[]).arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn mode_comes_from_the_subcommand_or_the_environment() {
    let run = |args: &[&str], vars: &[(&str, &str)]| {
        let out = edge_command(vars).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let upstream = [("AUTH_EDGE_UPSTREAM", "127.0.0.1:8080")];
    let (code, out) = run(&["sidecar", "--check"], &upstream);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sidecar to 127.0.0.1:8080"), "{out}");
    let (code, out) = run(
        &["--check"],
        &[
            ("AUTH_EDGE_MODE", "sidecar"),
            ("AUTH_EDGE_UPSTREAM", "127.0.0.1:8080"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sidecar"), "{out}");
    // The subcommand wins over the environment.
    let (code, out) = run(
        &["forward-auth", "--check"],
        &[
            ("AUTH_EDGE_MODE", "sidecar"),
            ("AUTH_EDGE_GRPC_LISTEN", "127.0.0.1:9001"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ext_authz gRPC on 127.0.0.1:9001"), "{out}");
    // Sidecar without an upstream, and options the mode would ignore, fail naming the variable.
    let (code, out) = run(&["sidecar", "--check"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("AUTH_EDGE_UPSTREAM"), "{out}");
    let (code, out) = run(&["--check"], &upstream);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("AUTH_EDGE_UPSTREAM"), "{out}");
    for bad in [
        &["proxy"][..],
        &["sidecar", "sidecar"],
        &["--check", "--check"],
    ] {
        let (code, out) = run(bad, &upstream);
        assert_eq!(code, 2, "{bad:?}: {out}");
        assert!(out.contains("usage"), "{out}");
    }
}

#[tokio::test]
async fn binary_serves_and_drains_on_sigterm() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let (port, admin) = (free_port(), free_port());
    let listen = format!("127.0.0.1:{port}");
    let admin_listen = format!("127.0.0.1:{admin}");
    let jwks = fake.jwks_url().to_string();
    let mut child = edge_command(&[
        ("AUTH_EDGE_LISTEN", &listen),
        ("AUTH_EDGE_ADMIN_LISTEN", &admin_listen),
        ("AUTH_EDGE_JWKS_URL", &jwks),
        ("LOG_FORMAT", "json"),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();

    let ready = wait_http_ok(
        &format!("http://{admin_listen}/readyz"),
        Duration::from_secs(20),
    )
    .await;
    assert!(ready, "binary never became ready");
    let client = client();
    let c = claims();
    let r = client
        .get(format!("http://{listen}/api/v1/auth/gateway-verify"))
        .header("cookie", format!("access_token={}", sign(&c, key_a())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(r.headers()["x-user-id"], c.sub.as_str());

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("auth-edge did not exit after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}
