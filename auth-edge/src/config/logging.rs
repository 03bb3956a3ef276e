//! The logging section: `LOG_LEVEL` and `LOG_FORMAT` (the same names as accounts).

use super::vars::{err, ConfigError, Vars};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The logging section.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `LOG_LEVEL` (`RUST_LOG` overrides it).
    pub level: String,
    /// `LOG_FORMAT`.
    pub format: LogFormat,
}

impl LogConfig {
    pub(super) fn parse(v: &Vars<'_>) -> Result<LogConfig, ConfigError> {
        let format = match v.or("LOG_FORMAT", "text").to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(err("LOG_FORMAT", format!("{other:?} is not text or json"))),
        };
        let level = v.or("LOG_LEVEL", "info").to_ascii_lowercase();
        if !["trace", "debug", "info", "warn", "error"].contains(&level.as_str()) {
            return Err(err(
                "LOG_LEVEL",
                format!("{level:?} is not trace, debug, info, warn or error"),
            ));
        }
        Ok(LogConfig { level, format })
    }
}
