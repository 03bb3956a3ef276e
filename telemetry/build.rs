//! Records the commit the binaries are built from: `AUTH_BUILD_COMMIT` when set (a container build
//! without `.git` passes it as a build argument), else `git rev-parse`, else `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=AUTH_BUILD_COMMIT");
    let commit = std::env::var("AUTH_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    if commit.is_some() {
        // A new commit or a branch switch must rebuild, and nothing else should.
        for path in ["HEAD", "packed-refs"] {
            if let Some(p) = git(&["rev-parse", "--git-path", path]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            if let Some(p) = git(&["rev-parse", "--git-path", &head_ref]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    let commit = commit
        .filter(|c| c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AUTH_BUILD_COMMIT={commit}");
}
