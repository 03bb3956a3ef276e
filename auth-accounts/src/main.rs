//! `auth-accounts` binary: reads the configuration, builds the application, serves until SIGTERM.
//!
//! ```text
//! auth-accounts            serve the API (and, by default, run the background workers)
//! auth-accounts worker     only the background workers: email and Kafka relays, cleanup
//! auth-accounts rotate-keys   rotate the signing keys on disk (see `keys`), record the event
//! auth-accounts migrate    apply pending database migrations, then exit (a Job or init container)
//! auth-accounts --check    validate configuration, database, migrations and keys, then exit
//! auth-accounts import-legacy --from URL [--dry-run]   copy the old service's users and sessions
//! auth-accounts probe [live|ready]   container health check against the running server
//! ```

use auth_accounts::config::Config;
use auth_accounts::startup::Application;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(err) => {
            eprintln!("auth-accounts: {err}");
            std::process::exit(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{},tower_http=warn,sqlx=warn", config.log_level))
    });
    if config.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    // Before the start-up warnings: a health check runs every few seconds.
    if std::env::args().nth(1).as_deref() == Some("probe") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(auth_accounts::probe::main(&config, &args));
    }
    for (name, why) in &config.ignored_legacy_vars {
        tracing::warn!(variable = name, "old-service variable has no effect: {why}");
    }
    if std::env::args().nth(1).as_deref() == Some("import-legacy") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(auth_accounts::legacy::import::main(&config, &args).await);
    }
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        match auth_accounts::store::migrate(&config).await {
            Ok(applied) if applied.is_empty() => println!("database schema is up to date"),
            Ok(applied) => println!(
                "applied {} migration(s): {}",
                applied.len(),
                applied.join(", ")
            ),
            Err(err) => {
                eprintln!("auth-accounts migrate: {err}");
                std::process::exit(1);
            }
        }
        return;
    }
    let check_only = std::env::args().any(|a| a == "--check");
    if std::env::args().nth(1).as_deref() == Some("rotate-keys") {
        rotate_keys(config).await;
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("worker") && !check_only {
        run_worker(config).await;
        return;
    }
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "start-up failed");
            eprintln!("auth-accounts: {err}");
            std::process::exit(1);
        }
    };
    if check_only {
        println!("configuration, database, migrations and keys are fine");
        return;
    }
    tracing::info!(port = app.port(), "auth-accounts listening");
    if let Err(err) = app.run_until(shutdown_signal()).await {
        tracing::error!(error = %err, "server error");
        std::process::exit(1);
    }
}

async fn rotate_keys(config: Config) {
    let rotation = match auth_accounts::keys::rotate(&config) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("auth-accounts rotate-keys: {err}");
            std::process::exit(1);
        }
    };
    // Record the rotation as an event (relayed to Kafka like every other).
    let recorded = async {
        let db = auth_accounts::store::connect(&config)
            .await
            .map_err(|e| e.to_string())?;
        let mut tx = db.begin().await.map_err(|e| e.to_string())?;
        let data = serde_json::to_value(&rotation).map_err(|e| e.to_string())?;
        let now = chrono::Utc::now().timestamp();
        let topic = config.kafka_topic.clone();
        auth_accounts::outbox::record_event(
            &mut tx,
            &topic,
            auth_accounts::outbox::events::SIGNING_KEY_ROTATED,
            None,
            data,
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    };
    if let Err(err) = recorded.await {
        eprintln!("auth-accounts rotate-keys: keys rotated, but the event was not recorded: {err}");
        std::process::exit(1);
    }
    println!(
        "rotated: {} retired, {} signs now, {} published as next",
        rotation.retired_kid, rotation.current_kid, rotation.next_kid
    );
}

async fn run_worker(config: Config) {
    let (_tx, shutting_down) = tokio::sync::watch::channel(false);
    let clock = auth_accounts::clock::Clock::default();
    let state = match auth_accounts::startup::build_state(config, clock, shutting_down).await {
        Ok(state) => state,
        Err(err) => {
            eprintln!("auth-accounts worker: {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = auth_accounts::startup::spawn_workers(&state) {
        eprintln!("auth-accounts worker: {err}");
        std::process::exit(1);
    }
    tracing::info!("auth-accounts worker running");
    shutdown_signal().await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
