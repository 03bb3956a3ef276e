//! What both auth services report about themselves, beside their own metrics: the build they run
//! ([`BUILD`]) and the standard process metrics ([`ProcessSample`]: CPU, memory, file
//! descriptors, start time), read from `/proc` when scraped.
//!
//! Each service renders these in its own exposition (accounts through `prometheus-client`, the
//! edge by hand); this crate only measures. Nothing here runs on a request path.

mod process;

pub use process::ProcessSample;

/// The version and commit of this build.
#[derive(Clone, Copy, Debug)]
pub struct BuildInfo {
    /// The workspace version (`Cargo.toml`).
    pub version: &'static str,
    /// The short git commit, or `unknown` (see the build script).
    pub commit: &'static str,
}

/// This build: the `*_build_info{version,commit}` metrics and the start-up log line.
pub const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("AUTH_BUILD_COMMIT"),
};
