//! Structured logs (tracing), text or JSON, level from `LOG_LEVEL` unless `RUST_LOG` is set.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber. Call once, from `main` (tests do not need logs).
pub fn init(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("auth_edge={0},{0}", config.log_level)));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("auth-edge: logging already initialised: {e}");
    }
}
