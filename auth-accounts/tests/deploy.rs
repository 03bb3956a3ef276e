//! The deployment files are checked like code: the Dockerfile passes hadolint, `docker-compose.yml`
//! and the Kubernetes manifests parse and name only settings the binaries read, `.env.example`
//! configures the service, and the probes point at the right paths. Needs `AUTH_TEST_HADOLINT` and
//! `AUTH_TEST_PYTHON` (with PyYAML), which `scripts/test` provides; a missing one fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use auth_accounts::config::{Config, ExposeSecret as _};
use auth_test_support::process::{peer_path, workspace_root};
use serde_json::Value;

/// All YAML documents of a file, as JSON (parsed by PyYAML: compose and Kubernetes use YAML 1.1).
fn yaml(path: &Path) -> Vec<Value> {
    let out = Command::new(peer_path("AUTH_TEST_PYTHON"))
        .args([
            "-c",
            "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
        ])
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{} does not parse: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Variable names a source file reads: every quoted UPPER_CASE literal in it.
fn names_in(source: &str) -> BTreeSet<String> {
    source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() > 2
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(str::to_string)
        .collect()
}

/// The text of a configuration module: `NAME.rs`, or every `.rs` file under `NAME/`.
fn module_source(path: &Path) -> String {
    let file = path.with_extension("rs");
    if file.is_file() {
        return std::fs::read_to_string(file).unwrap();
    }
    let mut text = String::new();
    for entry in std::fs::read_dir(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "rs") {
            text.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    text
}

fn accounts_names() -> BTreeSet<String> {
    let mut names = names_in(&module_source(
        &workspace_root().join("auth-accounts/src/config"),
    ));
    // Sections and the old-service aliases live under config/.
    for entry in std::fs::read_dir(workspace_root().join("auth-accounts/src/config")).unwrap() {
        names.extend(names_in(
            &std::fs::read_to_string(entry.unwrap().path()).unwrap(),
        ));
    }
    names
}

fn edge_names() -> BTreeSet<String> {
    let mut names = names_in(&module_source(
        &workspace_root().join("auth-edge/src/config"),
    ));
    // REDIS_URL, LOG_* and the JWT names are shared with accounts.
    names.extend(accounts_names());
    names
}

#[test]
fn dockerfile_passes_hadolint() {
    let out = Command::new(peer_path("AUTH_TEST_HADOLINT"))
        .arg(workspace_root().join("Dockerfile"))
        .output()
        .expect("run hadolint");
    assert!(
        out.status.success(),
        "hadolint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dockerfile = std::fs::read_to_string(workspace_root().join("Dockerfile")).unwrap();
    // Both binaries, a non-root user, a listener a container can reach.
    assert!(dockerfile.contains("target/release/auth-accounts target/release/auth-edge"));
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(dockerfile.contains("HOST=0.0.0.0"));
    assert_eq!(dockerfile.matches("\nFROM ").count(), 2, "two stages");
}

#[test]
fn compose_services_and_settings() {
    let doc = yaml(&workspace_root().join("docker-compose.yml")).remove(0);
    let services = doc["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "accounts",
            "auth_postgres",
            "edge",
            "kafka",
            "redis_cache",
            "worker"
        ])
    );
    let known_accounts = accounts_names();
    let known_edge = edge_names();
    for (service, command, known) in [
        ("accounts", vec!["auth-accounts"], &known_accounts),
        ("worker", vec!["auth-accounts", "worker"], &known_accounts),
        ("edge", vec!["auth-edge", "forward-auth"], &known_edge),
    ] {
        let s = &services[service];
        assert_eq!(s["command"], serde_json::json!(command), "{service}");
        assert_eq!(s["env_file"], ".env", "{service}");
        assert_eq!(s["build"]["context"], ".", "{service}");
        for key in s["environment"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            assert!(known.contains(key), "{service}: {key} is read by nobody");
        }
    }
    // The old gateway reaches accounts under its old name; readiness gates the dependants.
    let accounts = &services["accounts"];
    assert_eq!(
        accounts["networks"]["smartbudget-net"]["aliases"],
        serde_json::json!(["auth_service"])
    );
    assert_eq!(
        accounts["healthcheck"]["test"],
        serde_json::json!(["CMD", "auth-accounts", "probe", "ready"])
    );
    assert_eq!(
        doc["networks"]["smartbudget-net"]["name"],
        "smartbudget-net"
    );
}

#[test]
fn env_example_configures_the_service() {
    let path = workspace_root().join(".env.example");
    let mut vars = HashMap::new();
    for item in dotenvy::from_path_iter(&path).unwrap() {
        let (k, v) = item.unwrap();
        vars.insert(k, v);
    }
    let known = accounts_names();
    for key in vars.keys() {
        assert!(known.contains(key), ".env.example: {key} is read by nobody");
    }
    let config = Config::from_vars(&vars).expect(".env.example is a valid configuration");
    assert_eq!(
        config.database.url.expose_secret(),
        "postgres://auth:auth@auth_postgres:5432/auth"
    );
    assert_eq!(
        config.kafka.bootstrap_servers.as_deref(),
        Some("kafka:9092")
    );
}

#[test]
fn kubernetes_probes_use_live_and_ready() {
    let docs = yaml(&workspace_root().join("deploy/kustomize/base/accounts.yaml"));
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"],
        "/api/v1/auth/health/live"
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        "/api/v1/auth/health/ready"
    );
}
