//! What the process serves and where: the mode, the listeners, the sidecar's upstream and public
//! paths, threads and drain. Settings the chosen mode would silently ignore are refused here.

use std::net::SocketAddr;
use std::time::Duration;

use super::vars::{err, host_port, ConfigError, Vars};
use crate::public_paths::PublicPaths;

/// Where the edge listens by default: next to accounts (`127.0.0.1:8000`) in the embedded mode.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";
/// Health, readiness and metrics listen here, apart from forward-auth traffic.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9091";

/// What the process serves (`AUTH_EDGE_MODE`, or the binary's subcommand).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answers forward-auth checks (nginx, Traefik, Caddy, Envoy HTTP) and, when
    /// `AUTH_EDGE_GRPC_LISTEN` is set, Envoy ext_authz gRPC checks.
    ForwardAuth,
    /// A reverse proxy in front of one upstream (`AUTH_EDGE_UPSTREAM`), usually in the same pod.
    Sidecar,
}

impl Mode {
    /// Parses `forward-auth` or `sidecar`.
    pub fn parse(raw: &str) -> Option<Mode> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "forward-auth" | "forward_auth" => Some(Mode::ForwardAuth),
            "sidecar" => Some(Mode::Sidecar),
            _ => None,
        }
    }
}

/// The serving section.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Forward-auth or sidecar (`AUTH_EDGE_MODE`).
    pub mode: Mode,
    /// Forward-auth listener, or the sidecar proxy's listener (`AUTH_EDGE_LISTEN`).
    pub listen: SocketAddr,
    /// Envoy ext_authz gRPC listener, off when unset (`AUTH_EDGE_GRPC_LISTEN`; forward-auth mode).
    pub grpc_listen: Option<SocketAddr>,
    /// Health/readiness/metrics listener (`AUTH_EDGE_ADMIN_LISTEN`).
    pub admin_listen: SocketAddr,
    /// Where the sidecar forwards authenticated requests, `host:port` (`AUTH_EDGE_UPSTREAM`).
    pub upstream: Option<String>,
    /// Path prefixes the sidecar forwards without a token (`AUTH_EDGE_PUBLIC_PATHS`).
    pub public_paths: PublicPaths,
    /// Worker threads, 0 for one per CPU (`AUTH_EDGE_THREADS`).
    pub threads: usize,
    /// How long in-flight requests may finish after SIGTERM (`AUTH_EDGE_DRAIN_SECONDS`).
    pub drain: Duration,
}

impl ServeConfig {
    pub(super) fn parse(v: &Vars<'_>) -> Result<ServeConfig, ConfigError> {
        let mode = {
            let raw = v.or("AUTH_EDGE_MODE", "forward-auth");
            Mode::parse(raw).ok_or_else(|| {
                err(
                    "AUTH_EDGE_MODE",
                    format!("{raw:?} is not forward-auth or sidecar"),
                )
            })?
        };
        let grpc_listen = match v.get("AUTH_EDGE_GRPC_LISTEN") {
            None => None,
            Some(_) => Some(v.addr("AUTH_EDGE_GRPC_LISTEN", "")?),
        };
        let upstream = v
            .get("AUTH_EDGE_UPSTREAM")
            .map(|raw| host_port("AUTH_EDGE_UPSTREAM", raw))
            .transpose()?;
        let public_paths = PublicPaths::parse(v.or("AUTH_EDGE_PUBLIC_PATHS", ""))
            .map_err(|m| err("AUTH_EDGE_PUBLIC_PATHS", m))?;
        // A setting the chosen mode would silently ignore is a deployment mistake: say so now
        // rather than leave a path unprotected or a listener missing.
        match mode {
            Mode::Sidecar => {
                if upstream.is_none() {
                    return Err(err(
                        "AUTH_EDGE_UPSTREAM",
                        "required in sidecar mode (the application's host:port)",
                    ));
                }
                if grpc_listen.is_some() {
                    return Err(err(
                        "AUTH_EDGE_GRPC_LISTEN",
                        "only served in forward-auth mode",
                    ));
                }
            }
            Mode::ForwardAuth => {
                if upstream.is_some() {
                    return Err(err(
                        "AUTH_EDGE_UPSTREAM",
                        "only used in sidecar mode (set AUTH_EDGE_MODE=sidecar)",
                    ));
                }
                if !public_paths.is_empty() {
                    return Err(err(
                        "AUTH_EDGE_PUBLIC_PATHS",
                        "only used in sidecar mode (the proxy in front decides what is public)",
                    ));
                }
            }
        }
        let threads = v.number("AUTH_EDGE_THREADS", 0, 0, 1024)?;
        Ok(ServeConfig {
            mode,
            listen: v.addr("AUTH_EDGE_LISTEN", DEFAULT_LISTEN)?,
            grpc_listen,
            admin_listen: v.addr("AUTH_EDGE_ADMIN_LISTEN", DEFAULT_ADMIN_LISTEN)?,
            upstream,
            public_paths,
            threads: usize::try_from(threads).unwrap_or(0),
            drain: v.secs("AUTH_EDGE_DRAIN_SECONDS", 10, 0, 600)?,
        })
    }

    /// Worker threads to run: `AUTH_EDGE_THREADS`, or one per CPU.
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }
}
