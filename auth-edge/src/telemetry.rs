//! Structured logs (tracing), text or JSON, level from `LOG_LEVEL` unless `RUST_LOG` is set.
//!
//! Pingora (the sidecar) logs through the `log` crate; a small bridge forwards those records
//! into tracing so there is one log stream in one format. It also demotes pingora's routine
//! client-disconnect errors ("Fail to proxy: Downstream ConnectionClosed ...", logged at ERROR
//! for every client that hangs up mid-request) to DEBUG: a proxy sees those all day, and real
//! errors would drown in them.

use log::{Level, LevelFilter, Log, Metadata, Record};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber and the `log` bridge. Call once, from `main` (tests do not
/// need logs).
pub fn init(log: &LogConfig) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let verbose_env = from_env.is_some();
    let filter =
        from_env.unwrap_or_else(|| EnvFilter::new(format!("auth_edge={0},{0}", log.level)));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `set_global_default` rather than `try_init`: the latter would install tracing-log's own
    // `log` bridge, which cannot demote anything.
    let result = match log.format {
        LogFormat::Json => {
            tracing::subscriber::set_global_default(builder.json().flatten_event(true).finish())
        }
        LogFormat::Text => tracing::subscriber::set_global_default(builder.finish()),
    };
    if let Err(e) = result {
        eprintln!("auth-edge: logging already initialised: {e}");
        return;
    }
    // Records above this level are dropped by `log` itself, before any formatting: pingora has
    // debug!/trace! calls on its hot paths. RUST_LOG may ask for anything, so allow everything.
    let max = if verbose_env {
        LevelFilter::Trace
    } else {
        match log.level.as_str() {
            "trace" => LevelFilter::Trace,
            "debug" => LevelFilter::Debug,
            "warn" => LevelFilter::Warn,
            "error" => LevelFilter::Error,
            _ => LevelFilter::Info,
        }
    };
    if log::set_boxed_logger(Box::new(LogBridge)).is_ok() {
        log::set_max_level(max);
    }
}

/// Forwards `log` records to tracing, demoting routine disconnects.
struct LogBridge;

impl Log for LogBridge {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        // The subscriber's filter decides; `log::max_level` already cut the cheap cases.
        true
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() == Level::Error && is_routine_disconnect(record) {
            let demoted = Record::builder()
                .level(Level::Debug)
                .target(record.target())
                .args(*record.args())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build();
            if log::max_level() >= LevelFilter::Debug {
                let _ = tracing_log::format_trace(&demoted);
            }
            return;
        }
        let _ = tracing_log::format_trace(record);
    }

    fn flush(&self) {}
}

/// A pingora error that only says a client went away (closed, reset, or timed out while we
/// read or wrote). Only ERROR records from pingora are formatted to check, and they are rare
/// except for exactly these.
fn is_routine_disconnect(record: &Record<'_>) -> bool {
    if !record.target().starts_with("pingora") {
        return false;
    }
    let message = record.args().to_string();
    [
        "Downstream ConnectionClosed",
        "Downstream ReadError",
        "Downstream WriteError",
        "Downstream ReadTimedout",
        "Downstream WriteTimedout",
    ]
    .iter()
    .any(|routine| message.contains(routine))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(target: &str, args: std::fmt::Arguments<'_>) -> bool {
        is_routine_disconnect(
            &Record::builder()
                .level(Level::Error)
                .target(target)
                .args(args)
                .build(),
        )
    }

    #[test]
    fn only_pingora_client_disconnects_are_routine() {
        assert!(check(
            "pingora_proxy",
            format_args!(
                "Fail to proxy: Downstream ConnectionClosed context: while reading request \
                 headers, bytes already read: 26, downstream session type: h1"
            )
        ));
        assert!(check(
            "pingora_core::protocols",
            format_args!("Downstream ReadError cause: Connection reset by peer")
        ));
        assert!(!check(
            "pingora_proxy",
            format_args!("Fail to proxy: Upstream ConnectRefused context: Peer: 127.0.0.1:8080")
        ));
        assert!(!check(
            "auth_edge::sidecar",
            format_args!("Downstream ConnectionClosed")
        ));
    }
}
