//! The Kubernetes manifests under `k8s/` validate against the Kubernetes API schemas
//! (`kubernetes-validate`, strict: unknown fields are errors), for the oldest version they need
//! (1.30: native sidecars, `preStop.sleep`) and the validator's newest.
//!
//! Only built-in kinds can be checked: the validator has no schemas for CRDs. The Traefik kinds
//! (`Middleware`, `IngressRoute`) are skipped explicitly, by name; any other kind without a
//! schema fails the test, so a typo in `apiVersion` or `kind` cannot pass as "unknown CRD".

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::TempDir;

/// CRD kinds the manifests use on purpose, which no built-in schema covers.
const CRD_KINDS: [&str; 2] = ["Middleware", "IngressRoute"];

/// Versions validated against: the oldest supported, and the validator's default (newest).
const VERSIONS: [Option<&str>; 2] = [Some("1.30.0"), None];

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("AUTH_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache"));
    cache.join("auth-tests/venv/bin/python")
}

struct Outcome {
    success: bool,
    output: String,
}

fn validate(files: &[PathBuf], version: Option<&str>) -> Outcome {
    let python = python();
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "kubernetes_validate", "--strict"]);
    if let Some(v) = version {
        cmd.args(["-k", v]);
    }
    let out = cmd.args(files).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} -m kubernetes_validate ({e}): run scripts/test or \
             auth-edge/scripts/install-test-deps.sh (or set AUTH_TEST_PYTHON)",
            python.display()
        )
    });
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(
        !output.contains("No module named kubernetes_validate"),
        "kubernetes-validate is not installed in {}: run auth-edge/scripts/install-test-deps.sh",
        python.display()
    );
    Outcome {
        success: out.status.success(),
        output,
    }
}

/// `kind:` of every document in a multi-document YAML file (top-level keys only).
fn kinds(text: &str) -> Vec<String> {
    text.split("\n---")
        .filter_map(|doc| {
            doc.lines()
                .find_map(|l| l.strip_prefix("kind:"))
                .map(|k| k.trim().to_owned())
        })
        .collect()
}

#[test]
fn manifests_are_valid_kubernetes_objects() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(k8s_dir())
        .expect("k8s/ exists at the repository root")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the k8s manifests, found {files:?}"
    );

    let mut builtin = 0;
    let mut crds = 0;
    for f in &files {
        for kind in kinds(&std::fs::read_to_string(f).unwrap()) {
            if CRD_KINDS.contains(&kind.as_str()) {
                crds += 1;
            } else {
                builtin += 1;
            }
        }
    }
    for kind in ["Deployment", "Service", "Ingress"] {
        assert!(
            files
                .iter()
                .any(|f| kinds(&std::fs::read_to_string(f).unwrap())
                    .iter()
                    .any(|k| k == kind)),
            "no {kind} among the manifests"
        );
    }

    for version in VERSIONS {
        let Outcome { success, output } = validate(&files, version);
        let label = version.unwrap_or("default");
        assert!(success, "kubernetes-validate {label} failed:\n{output}");
        let passed = output
            .lines()
            .filter(|l| l.contains(" passed for resource "))
            .count();
        assert_eq!(
            passed, builtin,
            "every built-in object must be validated ({label}):\n{output}"
        );
        let skipped: Vec<&str> = output
            .lines()
            .filter(|l| l.contains("Couldn't find schema"))
            .collect();
        assert_eq!(skipped.len(), crds, "{label}:\n{output}");
        for line in skipped {
            assert!(
                CRD_KINDS
                    .iter()
                    .any(|k| line.contains(&format!("for kind {k} with api version traefik.io/"))),
                "a kind without a schema that is not an expected CRD ({label}): {line}"
            );
        }
        assert!(!output.contains("ERROR"), "{label}:\n{output}");
    }
}

/// The validator really rejects: an unknown field (strict mode) and a wrong type.
#[test]
fn validator_rejects_broken_manifests() {
    let dir = TempDir::new("k8s");
    let unknown_field = dir.write(
        "unknown.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: { name: x }\nspec:\n  portz: []\n",
    );
    let wrong_type = dir.write(
        "type.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: x }\nspec:\n  replicas: two\n  \
         selector: { matchLabels: { a: b } }\n  template:\n    metadata: { labels: { a: b } }\n    \
         spec: { containers: [{ name: c, image: i }] }\n",
    );
    for file in [unknown_field, wrong_type] {
        let Outcome { success, output } = validate(std::slice::from_ref(&file), None);
        assert!(!success, "{} passed:\n{output}", file.display());
        assert!(output.contains("ERROR"), "{output}");
    }
}
