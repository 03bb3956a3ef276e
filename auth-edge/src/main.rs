//! The `auth-edge` binary: configuration from the environment, logs, serve until SIGTERM.
//!
//! `auth-edge --check` validates the configuration (and a local key file) and exits: 0 when
//! usable, 2 otherwise, so deployments can fail before traffic arrives.

use std::process::ExitCode;

use auth_edge::{telemetry, Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check_only = match args.as_slice() {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => {
            eprintln!("usage: auth-edge [--check]   (configuration comes from the environment; see README)");
            return ExitCode::from(2);
        }
    };

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("auth-edge: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        return match auth_edge::check(&config).await {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("auth-edge: {e}");
                ExitCode::from(2)
            }
        };
    }

    telemetry::init(&config);
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
        "auth-edge listening"
    );
    app.run_until(shutdown_signal()).await;
    ExitCode::SUCCESS
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
