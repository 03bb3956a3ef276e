//! The command line: `serve` (the default), `worker`, `rotate-keys`, `migrate`, `check`,
//! `import-legacy` and `probe`, parsed with clap, and what each does. The binary only parses, reads the configuration, sets up logging
//! and calls [`run`]; everything here is library code the tests can call.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret as _;

use crate::config::Config;
use crate::events::Event;
use crate::keys::{KeyError, Keys};
use crate::legacy::import::{ImportError, Options as ImportOptions};
use crate::probe;
use crate::startup::{shutdown_signal, Application, StartError};
use crate::store::{self, StoreError};
use crate::unit_of_work::UnitOfWork;

/// Accounts API: registration, login, refresh rotation, sessions, passwords, JWKS.
///
/// Configured by environment variables (see the README).
#[derive(Debug, Parser)]
#[command(name = "auth-accounts", version)]
pub struct Cli {
    #[command(subcommand)]
    #[allow(missing_docs)] // clap would show a doc comment as help text
    pub command: Option<Command>,
    /// The same as the `check` subcommand (the flag of earlier releases).
    #[arg(long, global = true, hide = true)]
    pub check: bool,
}

/// The subcommands (each variant's doc comment is its `--help` text).
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the API (and, unless RUN_WORKERS=false, run the background workers). The default.
    Serve,
    /// Run only the background workers: email and Kafka relays, revocation feed, cleanup.
    Worker,
    /// Rotate the signing keys on disk and record the rotation event.
    RotateKeys,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check configuration, database connectivity, schema state, keys and Redis; change nothing.
    Check,
    /// Copy the old service's users and live sessions into the configured database. Exit status
    /// 0: all rows taken; 3: finished, some rows rejected (listed); 1: failed (a rerun resumes).
    ImportLegacy(ImportOptions),
    /// Container health check: ask the server on this host (PORT; a wildcard HOST means loopback)
    /// for /health/live or /health/ready; exit status 0 on a 200, 1 otherwise.
    Probe {
        #[allow(missing_docs)] // clap would show a doc comment as help text
        #[arg(value_enum, default_value_t = probe::Which::Live)]
        which: probe::Which,
    },
}

impl Cli {
    /// Parses a command line (the program name first). Every parse error carries the usage, also
    /// those clap gives without it (an invalid value such as `probe dead` or `--batch-size 0`).
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        Self::try_parse_from(&args).map_err(|err| with_usage(err, &args))
    }

    /// The command to run: `--check` wins, no subcommand means `serve`.
    pub fn command(&self) -> Command {
        if self.check {
            Command::Check
        } else {
            self.command.clone().unwrap_or(Command::Serve)
        }
    }
}

/// Adds the usage of the subcommand named on the command line (or of the binary) to an error
/// that has none; help and version output are left alone.
fn with_usage(mut err: clap::Error, args: &[std::ffi::OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) || err.get(ContextKind::Usage).is_some()
    {
        return err;
    }
    let mut cli = <Cli as clap::CommandFactory>::command();
    cli.build();
    let named = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| cli.find_subcommand(a).is_some())
        .map(str::to_string);
    let usage = match named.and_then(|name| cli.find_subcommand_mut(name)) {
        Some(sub) => sub.render_usage(),
        None => cli.render_usage(),
    };
    err.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    err
}

/// Why a subcommand failed (the process exits non-zero with it).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The service could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing keys could not be read or written.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The server stopped with an error.
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
    /// `rotate-keys` changed the keys but could not record the event.
    #[error("keys rotated, but the event was not recorded: {0}")]
    RotationEvent(#[source] sqlx::Error),
    /// `check` found problems (each one was logged).
    #[error("{0} check(s) failed")]
    Check(usize),
    /// `import-legacy` failed.
    #[error("import-legacy: {0}")]
    Import(#[from] ImportError),
}

/// Runs a command; the exit status when it finished (an error is status 1).
pub async fn run(command: Command, config: Config) -> Result<ExitCode, CommandError> {
    // Not before a health check, which runs every few seconds.
    if !matches!(command, Command::Probe { .. }) {
        for (name, why) in &config.ignored_legacy_vars {
            tracing::warn!(variable = name, "old-service variable has no effect: {why}");
        }
    }
    let done = match command {
        Command::Serve => serve(config).await,
        Command::Worker => Ok(crate::startup::run_worker(config, shutdown_signal()).await?),
        Command::RotateKeys => rotate_keys(config).await,
        Command::Migrate => migrate(config).await,
        Command::Check => check(config).await,
        Command::ImportLegacy(options) => {
            let report = crate::legacy::import::run(&config, &options).await?;
            print!("{report}");
            return Ok(ExitCode::from(report.exit_status()));
        }
        Command::Probe { which } => {
            return Ok(if probe::healthy(&config, which) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

async fn serve(config: Config) -> Result<(), CommandError> {
    let app = Application::build(config).await?;
    tracing::info!(
        port = app.port(),
        metrics_port = app.metrics_port(),
        version = auth_telemetry::BUILD.version,
        commit = auth_telemetry::BUILD.commit,
        "auth-accounts listening"
    );
    app.run_until(shutdown_signal())
        .await
        .map_err(CommandError::Serve)
}

async fn migrate(config: Config) -> Result<(), CommandError> {
    let db = store::open(&config, true).await?;
    let applied = store::migrate(&db, &config).await?;
    db.close().await;
    println!("migrations: {applied} applied, schema up to date");
    Ok(())
}

async fn rotate_keys(config: Config) -> Result<(), CommandError> {
    let rotation = crate::keys::rotate(&config)?;
    // Record the rotation as an event (relayed to Kafka like every other).
    let db = store::connect(&config).await?;
    let recorded = async {
        let now = chrono::Utc::now().timestamp();
        let mut uow = UnitOfWork::begin(&db, &config, now).await?;
        uow.record(None, Event::from(rotation.clone())).await?;
        uow.commit().await
    };
    recorded.await.map_err(CommandError::RotationEvent)?;
    db.close().await;
    println!(
        "rotated: {} retired, {} signs now, {} published as next",
        rotation.retired_kid, rotation.current_kid, rotation.next_kid
    );
    Ok(())
}

/// Reads and reports; never writes (no migration, no key generation, no SQLite file created).
async fn check(config: Config) -> Result<(), CommandError> {
    let mut failures = 0;
    let mut report = |name: &str, result: Result<String, String>| match result {
        Ok(detail) => println!("ok    {name}: {detail}"),
        Err(detail) => {
            failures += 1;
            println!("FAIL  {name}: {detail}");
        }
    };
    report("configuration", Ok("valid".into()));
    let backend = if config.is_sqlite() {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    match store::open(&config, false).await {
        Err(err) => report("database", Err(err.to_string())),
        Ok(db) => {
            let reachable = store::ping(&db).await;
            report(
                "database",
                if reachable {
                    Ok(format!("{backend} reachable"))
                } else {
                    Err(format!("{backend} does not answer"))
                },
            );
            if reachable {
                report(
                    "schema",
                    schema_report(store::schema_state(&db, &config).await),
                );
            }
            db.close().await;
        }
    }
    report(
        "signing keys",
        match Keys::read(&config) {
            Ok(Some(keys)) => Ok(format!(
                "{} signs, {} published",
                keys.signing.kid(),
                keys.fingerprint().len()
            )),
            Ok(None) => Ok("none yet; generated at first start (ENV=dev)".into()),
            Err(err) => Err(err.to_string()),
        },
    );
    if let Some(url) = &config.redis.url {
        report("redis", redis_ping(url.expose_secret()).await);
    }
    if failures > 0 {
        return Err(CommandError::Check(failures));
    }
    Ok(())
}

fn schema_report(state: Result<store::SchemaState, StoreError>) -> Result<String, String> {
    let state = state.map_err(|e| e.to_string())?;
    if !state.pending.is_empty() {
        return Err(format!(
            "{} pending migration(s), run `auth-accounts migrate`: {}",
            state.pending.len(),
            state.pending.join(", ")
        ));
    }
    // A newer release's expand step: this release works on that schema (the rollback the upgrade
    // policy promises), so it is worth a note, not a failure.
    if !state.unknown.is_empty() {
        return Ok(format!(
            "up to date ({} migrations), plus {:?} from a newer release, which this release works with",
            state.applied, state.unknown
        ));
    }
    Ok(format!("up to date ({} migrations)", state.applied))
}

async fn redis_ping(url: &str) -> Result<String, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => Ok("reachable".into()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_args(std::iter::once("auth-accounts").chain(args.iter().copied()))
            .map(|cli| cli.command())
    }

    #[test]
    fn check_passes_a_newer_releases_migrations_and_fails_pending_ones() {
        let state = |pending: &[&str], unknown: &[i64]| {
            Ok(store::SchemaState {
                applied: 4,
                pending: pending.iter().map(|p| (*p).to_string()).collect(),
                unknown: unknown.to_vec(),
            })
        };
        assert_eq!(
            schema_report(state(&[], &[])).unwrap(),
            "up to date (4 migrations)"
        );
        // The rollback the upgrade policy promises: a newer release's expand step is fine.
        let note = schema_report(state(&[], &[5])).unwrap();
        assert!(note.contains("[5] from a newer release"), "{note}");
        let err = schema_report(state(&["5 event trace"], &[])).unwrap_err();
        assert!(err.contains("auth-accounts migrate"), "{err}");
    }

    #[test]
    fn commands() {
        assert_eq!(parse(&[]).unwrap(), Command::Serve);
        assert_eq!(parse(&["serve"]).unwrap(), Command::Serve);
        assert_eq!(parse(&["worker"]).unwrap(), Command::Worker);
        assert_eq!(parse(&["rotate-keys"]).unwrap(), Command::RotateKeys);
        assert_eq!(parse(&["migrate"]).unwrap(), Command::Migrate);
        assert_eq!(parse(&["check"]).unwrap(), Command::Check);
        // The flag of earlier releases, alone or after a subcommand.
        assert_eq!(parse(&["--check"]).unwrap(), Command::Check);
        assert_eq!(parse(&["worker", "--check"]).unwrap(), Command::Check);
        // Moving from the old service, and the container health check.
        assert_eq!(
            parse(&[
                "import-legacy",
                "--from",
                "postgresql+asyncpg://u:p@h/old",
                "--dry-run"
            ])
            .unwrap(),
            Command::ImportLegacy(ImportOptions {
                from: "postgres://u:p@h/old".into(),
                dry_run: true,
                batch_size: 500,
            })
        );
        assert_eq!(
            parse(&["probe"]).unwrap(),
            Command::Probe {
                which: probe::Which::Live
            }
        );
        assert_eq!(
            parse(&["probe", "ready"]).unwrap(),
            Command::Probe {
                which: probe::Which::Ready
            }
        );
    }

    #[test]
    fn unknown_arguments_are_an_error_with_usage() {
        for args in [
            &["serv"][..],
            &["--verbose"],
            &["serve", "extra"],
            &["probe", "dead"],
            &["import-legacy"],
            &["import-legacy", "--from", "x", "--batch-size", "0"],
            &["import-legacy", "--from", "x", "--force"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(err.to_string().contains("Usage:"), "{err}");
        }
        // The usage is the subcommand's.
        let err = parse(&["probe", "dead"]).unwrap_err().to_string();
        assert!(err.contains("Usage: auth-accounts probe"), "{err}");
    }

    #[tokio::test]
    async fn check_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("accounts-check-{}", uuid::Uuid::new_v4()));
        let vars = [
            ("DATA_DIR", dir.display().to_string()),
            (
                "JWT_PRIVATE_KEY_PATH",
                dir.join("k/jwt-private.pem").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let config = Config::from_vars(&vars).unwrap();
        // No database file yet: the check fails and creates neither the file nor keys.
        assert!(matches!(
            check(config.clone()).await,
            Err(CommandError::Check(1))
        ));
        assert!(!dir.exists());
        // After `migrate` the schema is up to date and the check passes.
        migrate(config.clone()).await.unwrap();
        check(config).await.unwrap();
        assert!(!dir.join("k").exists(), "check generated no key");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
