//! `cargo xtask GATE... [-- CARGO-TEST-ARGS]`: the repository's gates, by name, for CI and people
//! alike. `cargo xtask help` lists them; `all` runs every gate in order, which is what
//! `scripts/test` (the one test command) does after installing the peers and starting PostgreSQL.
//!
//! ```text
//! cargo xtask unit                    seconds: lib and bin unit tests, no peers, no network
//! cargo xtask setup                   install the peers once (cached), then ...
//! cargo xtask integration -- login    ... the suites against real peers (a test name filter)
//! ```
//!
//! Gates that need the peers read where they are from the environment, or else from
//! `~/.cache/auth-tests/test-env` (written by `scripts/setup`); without either they stop and say
//! to run `cargo xtask setup`. They start a throwaway PostgreSQL (`scripts/with-postgres`) unless
//! `TEST_DATABASE_URL` names one. Standard library only, so this builds in seconds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// One gate: its name, what it checks, and how.
struct Gate {
    name: &'static str,
    about: &'static str,
    run: fn(&Ctx) -> Result<(), String>,
}

/// Every gate, in the order `all` runs them: cheap and peerless first, so a formatting slip fails
/// in seconds rather than after the integration suites.
const GATES: &[Gate] = &[
    Gate {
        name: "setup",
        about: "install the test peers and tools (scripts/setup; cached, idempotent)",
        run: setup,
    },
    Gate {
        name: "fmt",
        about: "cargo fmt --check",
        run: fmt,
    },
    Gate {
        name: "cycles",
        about: "no import cycles between a crate's top-level modules (scripts/module-cycles)",
        run: cycles,
    },
    Gate {
        name: "clippy",
        about: "cargo clippy --locked, every target, -D warnings",
        run: clippy,
    },
    Gate {
        name: "deny",
        about:
            "cargo deny, offline: licenses, bans (one TLS stack), sources; advisories if possible",
        run: deny,
    },
    Gate {
        name: "doc",
        about: "cargo doc --no-deps with RUSTDOCFLAGS=-D warnings, and the doc tests",
        run: doc,
    },
    Gate {
        name: "unit",
        about: "unit tests of every library and binary: no peers, no network, seconds",
        run: unit,
    },
    Gate {
        name: "integration",
        about: "token interop (PyJWT), accounts API, deployment files, edge: against real peers",
        run: integration,
    },
    Gate {
        name: "e2e",
        about: "the real auth-accounts and auth-edge binaries together (tests/e2e)",
        run: e2e,
    },
    Gate {
        name: "deploy",
        about: "Prometheus rules, Grafana dashboard, Kustomize overlays (scripts/check-deploy)",
        run: deploy,
    },
    Gate {
        name: "browser",
        about: "headless Chromium through the SmartBudget gateway's nginx (scripts/browser-test)",
        run: browser,
    },
    Gate {
        name: "fuzz",
        about: "fuzz smoke: each corpus plus 2000 new inputs per target (scripts/fuzz)",
        run: fuzz,
    },
    Gate {
        name: "schemathesis",
        about: "API fuzzing of a running accounts, on SQLite and PostgreSQL (scripts/schemathesis)",
        run: schemathesis,
    },
    Gate {
        name: "faults",
        about: "SIGKILL every component under load; nothing lost, duplicated or reordered (scripts/fault-test --short)",
        run: faults,
    },
    Gate {
        name: "upgrade",
        about: "the previous release on this one's schema, side by side, rollback (scripts/upgrade-test)",
        run: upgrade,
    },
];

/// What every gate gets: where the workspace is, and what to pass on to `cargo test`.
struct Ctx {
    root: PathBuf,
    cargo: String,
    test_args: Vec<String>,
}

impl Ctx {
    /// `cargo ARGS` in the workspace root.
    fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.args(args).current_dir(&self.root);
        cmd
    }

    /// `cargo test --locked ARGS` followed by the caller's extra arguments (a name filter).
    fn cargo_test(&self, args: &[&str]) -> Command {
        let mut cmd = self.cargo(&["test", "--locked"]);
        cmd.args(args).args(&self.test_args);
        cmd
    }

    /// A script of the repository, run in its root.
    fn script(&self, path: &str) -> Command {
        let mut cmd = Command::new(self.root.join(path));
        cmd.current_dir(&self.root);
        cmd
    }

    /// `cmd` run under `scripts/with-postgres` unless `TEST_DATABASE_URL` names a database.
    fn with_postgres(&self, cmd: Command) -> Command {
        if std::env::var_os("TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
            return cmd;
        }
        let mut wrapped = self.script("scripts/with-postgres");
        wrapped.arg(cmd.get_program()).args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped
    }
}

/// Runs `cmd`, echoing it first; an error names the command and its exit status.
fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = shown(cmd);
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// The command line, for messages.
fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn setup(ctx: &Ctx) -> Result<(), String> {
    if std::env::var_os("AUTH_TEST_SETUP_DONE").is_some() {
        eprintln!("already done by scripts/test");
        return Ok(());
    }
    // Its stdout is the environment, also kept in test-env: shown on stderr, for the record.
    let out = ctx
        .script("scripts/setup")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run scripts/setup: {e}"))?;
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("scripts/setup failed ({})", out.status))
    }
}

fn fmt(ctx: &Ctx) -> Result<(), String> {
    run(&mut ctx.cargo(&["fmt", "--all", "--", "--check"]))
}

fn cycles(ctx: &Ctx) -> Result<(), String> {
    run(&mut ctx.script("scripts/module-cycles"))
}

fn clippy(ctx: &Ctx) -> Result<(), String> {
    run(&mut ctx.cargo(&[
        "clippy",
        "--locked",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

/// licenses, bans and sources need only the crate graph and run offline. advisories needs the
/// RustSec database, a git repository on GitHub: a copy already under `$CARGO_HOME/advisory-dbs`
/// is used offline; otherwise one fetch is tried (for at most a minute), and where GitHub cannot
/// be reached the check is reported as NOT CHECKED, with cargo-deny's error, and the gate passes
/// unless `AUTH_DENY_ADVISORIES=require`.
fn deny(ctx: &Ctx) -> Result<(), String> {
    let env = peer_env(&["AUTH_TEST_CARGO_DENY"])?;
    let bin = PathBuf::from(&env["AUTH_TEST_CARGO_DENY"]);
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: run `cargo xtask setup` (it builds cargo-deny once)",
            bin.display()
        ));
    }
    let cargo_deny = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.arg("deny").args(args).current_dir(&ctx.root);
        cmd
    };
    run(&mut cargo_deny(&[
        "--offline",
        "--locked",
        "check",
        "--hide-inclusion-graph",
        "licenses",
        "bans",
        "sources",
    ]))?;
    // A cloned database has the advisories under `crates/` (a failed clone leaves a lock file).
    let have_db = advisory_dbs()
        .read_dir()
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| entry.path().join("crates").is_dir());
    if have_db || run_for_at_most(&mut cargo_deny(&["fetch", "db"]), 60).is_ok() {
        return run(&mut cargo_deny(&[
            "--offline",
            "--locked",
            "check",
            "advisories",
        ]));
    }
    let note = "advisories NOT CHECKED: no RustSec advisory database here and it cannot be \
                fetched (a git repository on github.com; cargo-deny's error above)";
    if std::env::var("AUTH_DENY_ADVISORIES").as_deref() == Ok("require") {
        return Err(note.into());
    }
    eprintln!("== {note}; AUTH_DENY_ADVISORIES=require makes this a failure");
    Ok(())
}

/// Where cargo-deny keeps the advisory databases: `$CARGO_HOME/advisory-dbs`.
fn advisory_dbs() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
        .join("advisory-dbs")
}

/// [`run`], but a command still running after `seconds` is killed and counts as failed.
fn run_for_at_most(cmd: &mut Command, seconds: u64) -> Result<(), String> {
    eprintln!("$ {} (for at most {seconds} s)", shown(cmd));
    let mut child = cmd.spawn().map_err(|e| format!("cannot run: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("failed ({status})")),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {seconds} s: stopped"));
            }
        }
    }
}

fn doc(ctx: &Ctx) -> Result<(), String> {
    run(ctx
        .cargo(&["doc", "--locked", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    run(&mut ctx.cargo(&["test", "--locked", "--workspace", "--doc"]))
}

fn unit(ctx: &Ctx) -> Result<(), String> {
    // `--workspace` everywhere: selecting packages (`-p`) would unify dependency features
    // differently and rebuild much of the graph between gates.
    run(&mut ctx.cargo_test(&["--workspace", "--lib", "--bins"]))
}

fn integration(ctx: &Ctx) -> Result<(), String> {
    let env = peer_env(&[
        "AUTH_TEST_PYTHON",
        "AUTH_TEST_REDIS",
        "AUTH_TEST_TANSU",
        "AUTH_TEST_NGINX",
        "AUTH_TEST_CADDY",
        "AUTH_TEST_ENVOY",
        "AUTH_TEST_GEOIP_DB",
        "AUTH_TEST_HADOLINT",
    ])?;
    let mut cmd = ctx.cargo_test(&[
        "--workspace",
        "--test",
        "interop",
        "--test",
        "api",
        "--test",
        "deploy",
        "--test",
        "edge",
    ]);
    cmd.envs(&env);
    run(&mut ctx.with_postgres(cmd))
}

fn e2e(ctx: &Ctx) -> Result<(), String> {
    // The tests start the real binaries: build them first.
    run(&mut ctx.cargo(&["build", "--locked", "--workspace", "--bins"]))?;
    run(&mut ctx.cargo_test(&["--workspace", "--test", "e2e"]))
}

fn deploy(ctx: &Ctx) -> Result<(), String> {
    run(&mut ctx.script("scripts/check-deploy"))
}

fn browser(ctx: &Ctx) -> Result<(), String> {
    run(&mut ctx.script("scripts/browser-test"))
}

fn fuzz(ctx: &Ctx) -> Result<(), String> {
    run(ctx.script("scripts/fuzz").args(["smoke", "2000"]))
}

fn schemathesis(ctx: &Ctx) -> Result<(), String> {
    let env = peer_env(&["AUTH_TEST_VENV"])?;
    run(&mut ctx.cargo(&["build", "--locked", "--workspace", "--bins"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.root.join("target"));
    let accounts = target.join("debug").join("auth-accounts");
    for db in ["sqlite", "postgres"] {
        eprintln!("== schemathesis on {db}");
        let mut cmd = ctx.script("scripts/schemathesis");
        cmd.arg(&accounts).args([db, "100"]).envs(&env);
        run(&mut if db == "postgres" {
            ctx.with_postgres(cmd)
        } else {
            cmd
        })?;
    }
    Ok(())
}

fn faults(ctx: &Ctx) -> Result<(), String> {
    run(ctx.script("scripts/fault-test").arg("--short"))
}

fn upgrade(ctx: &Ctx) -> Result<(), String> {
    let env = peer_env(&["AUTH_TEST_PYTHON"])?;
    run(&mut ctx.cargo(&[
        "build",
        "--locked",
        "-p",
        "auth-accounts",
        "--bin",
        "auth-accounts",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.root.join("target"));
    let mut cmd = ctx.script("scripts/upgrade-test");
    cmd.arg(target.join("debug").join("auth-accounts"))
        .envs(&env);
    run(&mut ctx.with_postgres(cmd))
}

/// `~/.cache/auth-tests`, where `scripts/setup` keeps what it installs.
fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache"))
        .join("auth-tests")
}

/// The peer variables `names`: from the environment, else from the `test-env` file that
/// `scripts/setup` writes. A missing one is an error that says how to get it.
fn peer_env(names: &[&str]) -> Result<HashMap<String, String>, String> {
    let file = cache_dir().join("test-env");
    let saved = read_env_file(&file);
    let mut env = HashMap::new();
    for &name in names {
        let value = std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| saved.get(name).cloned());
        let Some(value) = value else {
            return Err(format!(
                "the test environment is missing: {name} is not set and {} does not name it.\n\
                 Run `cargo xtask setup` first (it installs the peers and writes that file), \
                 or scripts/test, which runs every gate",
                file.display()
            ));
        };
        env.insert(name.to_owned(), value);
    }
    Ok(env)
}

/// The `test-env` file at `path` ([`parse_env`]); none when it cannot be read.
fn read_env_file(path: &Path) -> HashMap<String, String> {
    parse_env(&std::fs::read_to_string(path).unwrap_or_default())
}

/// `export NAME=VALUE` lines (what `scripts/setup` prints); anything else is skipped.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The gates `names` stand for, in the order given (`all`: every gate); or the unknown name.
fn select(names: &[String]) -> Result<Vec<&'static Gate>, &str> {
    let mut selected = Vec::new();
    for name in names {
        if name == "all" {
            selected.extend(GATES);
        } else if let Some(gate) = GATES.iter().find(|g| g.name == name) {
            selected.push(gate);
        } else {
            return Err(name);
        }
    }
    Ok(selected)
}

fn usage() -> String {
    let mut text = String::from(
        "usage: cargo xtask GATE... [-- CARGO-TEST-ARGS]\n\
         Gates run in the order given; `all` is every gate, in this order:\n",
    );
    for gate in GATES {
        text.push_str(&format!("  {:<13}{}\n", gate.name, gate.about));
    }
    text.push_str(
        "CARGO-TEST-ARGS (a test name filter, ...) go to the unit, integration and e2e tests.\n",
    );
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (names, test_args) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (&args[..], Vec::new()),
    };
    if names.is_empty()
        || names
            .iter()
            .any(|n| ["help", "--help", "-h"].contains(&n.as_str()))
    {
        print!("{}", usage());
        return if names.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let selected = match select(names) {
        Ok(selected) => selected,
        Err(name) => {
            eprint!("unknown gate `{name}`\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let ctx = Ctx {
        // xtask/ is in the workspace root.
        root: Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        cargo: std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        test_args,
    };
    let mut passed = Vec::new();
    for gate in selected {
        eprintln!("\n== {}: {}", gate.name, gate.about);
        let start = Instant::now();
        let result = (gate.run)(&ctx);
        let took = start.elapsed().as_secs_f64();
        if let Err(e) = result {
            eprintln!("\n== gate {} FAILED after {took:.1} s: {e}", gate.name);
            if !passed.is_empty() {
                eprintln!("== passed before it: {}", passed.join(", "));
            }
            return ExitCode::FAILURE;
        }
        passed.push(format!("{} ({took:.1} s)", gate.name));
    }
    eprintln!("\n== gates passed: {}", passed.join(", "));
    ExitCode::SUCCESS
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gates_are_selected_in_the_order_given_and_all_is_every_gate() {
        let picked = select(&names(&["unit", "fmt"])).unwrap();
        assert_eq!(
            picked.iter().map(|g| g.name).collect::<Vec<_>>(),
            ["unit", "fmt"]
        );
        assert_eq!(select(&names(&["all"])).unwrap().len(), GATES.len());
        assert_eq!(select(&names(&["fmt", "nope"])).err(), Some("nope"));
    }

    #[test]
    fn gate_names_are_unique() {
        let mut seen: Vec<&str> = GATES.iter().map(|g| g.name).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), GATES.len());
    }

    #[test]
    fn the_setup_environment_is_read_from_its_export_lines() {
        let env = parse_env(
            "export AUTH_TEST_REDIS=/usr/bin/redis-server\n\
             == progress, not an export\n\
             export AUTH_TEST_PYTHON=/cache/venv/bin/python\n",
        );
        assert_eq!(env.len(), 2);
        assert_eq!(env["AUTH_TEST_REDIS"], "/usr/bin/redis-server");
        assert_eq!(env["AUTH_TEST_PYTHON"], "/cache/venv/bin/python");
    }
}
