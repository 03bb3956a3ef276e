//! `auth-accounts` binary: parses the command line, reads the configuration, sets up logging and
//! runs the command (see [`auth_accounts::commands`]; `auth-accounts --help` lists them).

use std::process::ExitCode;

use auth_accounts::commands::{self, Cli};
use auth_accounts::config::Config;
use tracing_subscriber::EnvFilter;

/// mimalloc, as in the edge: requests move between the runtime's worker threads and the
/// database drivers' threads, and glibc frees memory allocated on another thread under that
/// arena's lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Unknown arguments exit here with usage (status 2), before anything is read.
    let cli = Cli::try_parse_args(std::env::args_os()).unwrap_or_else(|err| err.exit());
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(err) => {
            eprintln!("auth-accounts: {err}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{},tower_http=warn,sqlx=warn", config.log.level))
    });
    if config.log.json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    match commands::run(cli.command(), config).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(error = %err, "auth-accounts failed");
            eprintln!("auth-accounts: {err}");
            ExitCode::FAILURE
        }
    }
}
