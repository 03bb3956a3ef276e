//! The `auth-edge` binary: configuration from the environment, logs, serve until SIGTERM.
//!
//! ```text
//! auth-edge [forward-auth | sidecar] [--check]
//! ```
//!
//! The mode comes from the subcommand, else `AUTH_EDGE_MODE`, else forward-auth. `--check`
//! validates the configuration (and a local key file) and exits: 0 when usable, 2 otherwise, so
//! deployments can fail before traffic arrives.
//!
//! There is no `#[tokio::main]`: the sidecar's proxy (pingora) builds its own runtimes and must
//! own the main thread, so each mode builds what it needs.

use std::collections::HashMap;
use std::process::ExitCode;

use auth_edge::config::Mode;
use auth_edge::{telemetry, Application, Config};

/// mimalloc rather than glibc's malloc: requests move between worker threads, and glibc frees
/// memory allocated on another thread under that arena's lock (measured: ~10% of the sidecar's
/// CPU per request in lock contention). mimalloc frees cross-thread without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: auth-edge [forward-auth | sidecar] [--check]   \
                     (configuration comes from the environment; see README)";

fn main() -> ExitCode {
    let mut mode = None;
    let mut check_only = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" if !check_only => check_only = true,
            "forward-auth" | "sidecar" if mode.is_none() => mode = Some(arg),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let mut vars: HashMap<String, String> = std::env::vars().collect();
    if let Some(mode) = mode {
        // The subcommand wins over the environment.
        vars.insert("AUTH_EDGE_MODE".to_owned(), mode);
    }
    let config = match Config::from_vars(&vars) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("auth-edge: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        return check(&config);
    }

    telemetry::init(&config.log);
    match config.serve.mode {
        Mode::Sidecar => match auth_edge::sidecar::run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "sidecar cannot start");
                ExitCode::from(1)
            }
        },
        Mode::ForwardAuth => forward_auth(config),
    }
}

fn check(config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("auth-edge: cannot start a runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(auth_edge::check(config)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("auth-edge: {e}");
            ExitCode::from(2)
        }
    }
}

fn forward_auth(config: Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.serve.worker_threads())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let app = match Application::build(config).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!(error = %e, "cannot bind");
                return ExitCode::from(1);
            }
        };
        tracing::info!(
            listen = %app.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
            admin_port = app.admin_port(),
            grpc_port = app.grpc_port(),
            version = auth_telemetry::BUILD.version,
            commit = auth_telemetry::BUILD.commit,
            "auth-edge listening"
        );
        app.run_until(shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

/// SIGTERM (Kubernetes, systemd) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received; draining");
}
