//! Reading variables and [`ConfigError`]: empty values count as unset, every error names its variable, and the
//! value shapes several sections share (addresses, bounded numbers, `http://` URLs, `host:port`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// A [`ConfigError`] for `var`.
pub(super) fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Reads variables, treating empty (or blank) values as unset.
pub(super) struct Vars<'a>(pub(super) &'a HashMap<String, String>);

impl Vars<'_> {
    pub(super) fn get(&self, var: &str) -> Option<&str> {
        self.0.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub(super) fn or<'s>(&'s self, var: &str, default: &'s str) -> &'s str {
        self.get(var).unwrap_or(default)
    }

    pub(super) fn addr(&self, var: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
        let raw = self.or(var, default);
        raw.parse().map_err(|_| {
            err(
                var,
                format!("{raw:?} is not an address like 127.0.0.1:8081"),
            )
        })
    }

    pub(super) fn number(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        let n: u64 = raw
            .parse()
            .map_err(|_| err(var, format!("{raw:?} is not a whole number")))?;
        if !(min..=max).contains(&n) {
            return Err(err(var, format!("{n} is outside {min}..={max}")));
        }
        Ok(n)
    }

    pub(super) fn secs(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(var, default, min, max).map(Duration::from_secs)
    }
}

/// `host:port` with a non-zero port; the host is resolved when the sidecar starts.
pub(super) fn host_port(var: &'static str, raw: &str) -> Result<String, ConfigError> {
    let bad = || {
        err(
            var,
            format!("{raw:?} is not host:port (e.g. 127.0.0.1:8080)"),
        )
    };
    let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if port == 0 || host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(bad());
    }
    Ok(raw.to_owned())
}

/// Accepts `http(s)://host[:port]/path` URLs; anything else fails loudly at start-up rather
/// than at the first fetch.
pub(super) fn http_url(var: &'static str, raw: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = raw
        .parse()
        .map_err(|_| err(var, format!("{raw:?} is not a URL")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(err(
                var,
                format!("{raw:?} must start with http:// or https://"),
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(err(var, format!("{raw:?} has no host")));
    }
    Ok(uri)
}
