//! Prometheus metrics, hand-written in the text exposition format.
//!
//! The hot path only touches a few relaxed atomics (no locks, no label maps, no allocation), and
//! the format is small enough that a metrics library would cost more than it saves.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How a verification ended; the `result` label of `auth_edge_verifications_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Valid token, identity returned.
    Ok,
    /// No token in the request.
    Missing,
    /// Malformed, bad signature, wrong issuer/audience/type/algorithm.
    Invalid,
    /// Expired (or not yet valid).
    Expired,
    /// Signed by a key the edge does not know, even after a refetch.
    UnknownKey,
    /// The session was revoked.
    Revoked,
    /// No keys loaded yet: the edge cannot decide.
    Unavailable,
    /// A cookie-borne token on a cross-site request (CSRF check).
    CrossSite,
}

impl Outcome {
    const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Missing,
        Outcome::Invalid,
        Outcome::Expired,
        Outcome::UnknownKey,
        Outcome::Revoked,
        Outcome::Unavailable,
        Outcome::CrossSite,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Missing => "missing",
            Outcome::Invalid => "invalid",
            Outcome::Expired => "expired",
            Outcome::UnknownKey => "unknown_key",
            Outcome::Revoked => "revoked",
            Outcome::Unavailable => "unavailable",
            Outcome::CrossSite => "cross_site",
        }
    }
}

/// A revocation source, for the per-source gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The NDJSON stream from accounts.
    Stream,
    /// Redis pub/sub.
    Redis,
}

impl Source {
    fn index(self) -> usize {
        match self {
            Source::Stream => 0,
            Source::Redis => 1,
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Source::Stream => "stream",
            Source::Redis => "redis",
        }
    }
}

/// Upper bounds (seconds) of the latency histogram: a cache hit is a few microseconds, a cold
/// RS256 check ~50 us, a refetch for an unknown kid milliseconds.
const BUCKETS: [f64; 12] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025, 0.1,
    1.0,
];

#[derive(Default)]
struct SourceState {
    up: AtomicBool,
    configured: AtomicBool,
    events: AtomicU64,
    last_message_ms: AtomicI64,
    refused: AtomicU64,
}

/// Why the sidecar closed an upgraded connection (WebSocket) itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Its session was revoked.
    Revoked,
    /// Revocations are stale and the edge fails closed.
    Stale,
}

impl CloseReason {
    /// The metric label (and log field).
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Revoked => "revoked",
            CloseReason::Stale => "stale",
        }
    }
}

/// Every metric the edge exports. Shared by reference; all methods take `&self`.
#[derive(Default)]
pub struct Metrics {
    verifications: [AtomicU64; Outcome::ALL.len()],
    cache_hits: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    key_fetch_ok: AtomicU64,
    key_fetch_error: AtomicU64,
    keys_loaded: AtomicU64,
    keys_last_success_ms: AtomicI64,
    sources: [SourceState; 2],
    last_revocation_ms: AtomicI64,
    /// Sidecar: upgraded connections (WebSockets) open now, and those it closed itself.
    tunnels_open: AtomicI64,
    tunnels_closed_revoked: AtomicU64,
    tunnels_closed_stale: AtomicU64,
    /// How this process runs (`forward-auth` or `sidecar`): the `mode` label of the build info.
    mode: std::sync::OnceLock<&'static str>,
}

/// Gauges that live elsewhere (the cache and the revocation set), read at scrape time.
pub struct Snapshot {
    /// Entries in the verified-token cache.
    pub cache_entries: u64,
    /// Revoked session ids held.
    pub revoked_sessions: usize,
    /// Now, in unix milliseconds.
    pub now_ms: i64,
    /// Whether the revocation set is older than the staleness bound (None: no source).
    pub revocations_stale: Option<bool>,
}

impl Metrics {
    /// Sidecar: an upgraded connection was opened.
    pub fn tunnel_opened(&self) {
        self.tunnels_open.fetch_add(1, Relaxed);
    }

    /// Sidecar: an upgraded connection ended, closed by the sidecar for `reason` (or by a peer).
    pub fn tunnel_closed(&self, reason: Option<CloseReason>) {
        self.tunnels_open.fetch_sub(1, Relaxed);
        match reason {
            Some(CloseReason::Revoked) => {
                self.tunnels_closed_revoked.fetch_add(1, Relaxed);
            }
            Some(CloseReason::Stale) => {
                self.tunnels_closed_stale.fetch_add(1, Relaxed);
            }
            None => {}
        }
    }

    /// Names the mode this process runs in (`forward-auth`, `sidecar`); set once at start-up.
    pub fn set_mode(&self, mode: &'static str) {
        let _ = self.mode.set(mode);
    }

    /// Counts one verification and its duration.
    pub fn observe(&self, outcome: Outcome, cached: bool, elapsed: Duration) {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.verifications[i].fetch_add(1, Relaxed);
        if cached {
            self.cache_hits.fetch_add(1, Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        // Non-cumulative per bucket here; cumulated when rendered.
        let b = BUCKETS.iter().position(|le| secs <= *le);
        if let Some(b) = b {
            self.buckets[b].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_ns.fetch_add(ns, Relaxed);
    }

    /// Counts a key fetch; on success records how many keys are loaded.
    pub fn key_fetch(&self, ok: bool, keys: usize, now_ms: i64) {
        if ok {
            self.key_fetch_ok.fetch_add(1, Relaxed);
            self.keys_loaded.store(keys as u64, Relaxed);
            self.keys_last_success_ms.store(now_ms, Relaxed);
        } else {
            self.key_fetch_error.fetch_add(1, Relaxed);
        }
    }

    /// Marks a revocation source as configured (so its gauges are exported).
    pub fn source_configured(&self, source: Source) {
        self.sources[source.index()].configured.store(true, Relaxed);
    }

    /// Whether a revocation source is currently connected and has its snapshot.
    pub fn source_up(&self, source: Source, up: bool) {
        self.sources[source.index()].up.store(up, Relaxed);
    }

    /// Any message (including pings) arrived from a source.
    pub fn source_message(&self, source: Source, now_ms: i64) {
        self.sources[source.index()]
            .last_message_ms
            .store(now_ms, Relaxed);
    }

    /// A source refused the edge's credentials (HTTP 401/403, a Redis authentication error):
    /// a configuration error, counted so it can be alerted on.
    pub fn source_refused(&self, source: Source) {
        self.sources[source.index()].refused.fetch_add(1, Relaxed);
    }

    /// When a revocation source was last known healthy (unix ms; 0 for never), or None when
    /// no source is configured: `now_ms` while one is connected with its snapshot loaded (a
    /// silent link is dropped within the stream's idle timeout or Redis' ping timeout), else
    /// its last message.
    pub fn revocations_heard_ms(&self, now_ms: i64) -> Option<i64> {
        self.sources
            .iter()
            .filter(|st| st.configured.load(Relaxed))
            .map(|st| {
                if st.up.load(Relaxed) {
                    now_ms
                } else {
                    st.last_message_ms.load(Relaxed)
                }
            })
            .max()
    }

    /// A revocation event (not a snapshot) arrived from a source.
    pub fn revocation_event(&self, source: Source, now_ms: i64) {
        self.sources[source.index()].events.fetch_add(1, Relaxed);
        self.last_revocation_ms.store(now_ms, Relaxed);
    }

    /// Verifications so far with this outcome (for tests and logs).
    pub fn verifications(&self, outcome: Outcome) -> u64 {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.verifications[i].load(Relaxed)
    }

    /// Cache hits so far.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Relaxed)
    }

    /// The sidecar's upgraded-connection metrics.
    fn render_tunnels(&self, w: &mut String) {
        let _ = writeln!(
            w,
            "# HELP auth_edge_sidecar_tunnels Upgraded connections (WebSockets) open through the sidecar."
        );
        let _ = writeln!(w, "# TYPE auth_edge_sidecar_tunnels gauge");
        let _ = writeln!(
            w,
            "auth_edge_sidecar_tunnels {}",
            self.tunnels_open.load(Relaxed).max(0)
        );
        let _ = writeln!(
            w,
            "# HELP auth_edge_sidecar_tunnels_closed_total Upgraded connections the sidecar closed itself, by reason."
        );
        let _ = writeln!(w, "# TYPE auth_edge_sidecar_tunnels_closed_total counter");
        for (reason, c) in [
            (CloseReason::Revoked, &self.tunnels_closed_revoked),
            (CloseReason::Stale, &self.tunnels_closed_stale),
        ] {
            let _ = writeln!(
                w,
                "auth_edge_sidecar_tunnels_closed_total{{reason=\"{}\"}} {}",
                reason.label(),
                c.load(Relaxed)
            );
        }
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self, s: &Snapshot) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail; the results are ignored on purpose.
        let w = &mut out;
        let build = auth_telemetry::BUILD;
        let _ = writeln!(
            w,
            "# HELP auth_edge_build_info The version, commit and mode of this process (always 1)."
        );
        let _ = writeln!(w, "# TYPE auth_edge_build_info gauge");
        let _ = writeln!(
            w,
            "auth_edge_build_info{{version=\"{}\",commit=\"{}\",mode=\"{}\"}} 1",
            build.version,
            build.commit,
            self.mode.get().copied().unwrap_or("forward-auth")
        );
        if let Some(p) = auth_telemetry::ProcessSample::read() {
            render_process(w, &p);
        }
        if self.mode.get() == Some(&"sidecar") {
            self.render_tunnels(w);
        }
        let _ = writeln!(
            w,
            "# HELP auth_edge_verifications_total Token verifications by result."
        );
        let _ = writeln!(w, "# TYPE auth_edge_verifications_total counter");
        for (o, c) in Outcome::ALL.iter().zip(&self.verifications) {
            let _ = writeln!(
                w,
                "auth_edge_verifications_total{{result=\"{}\"}} {}",
                o.label(),
                c.load(Relaxed)
            );
        }
        let _ = writeln!(w, "# HELP auth_edge_token_cache_hits_total Verifications answered from the verified-token cache.");
        let _ = writeln!(w, "# TYPE auth_edge_token_cache_hits_total counter");
        let _ = writeln!(
            w,
            "auth_edge_token_cache_hits_total {}",
            self.cache_hits.load(Relaxed)
        );

        let _ = writeln!(
            w,
            "# HELP auth_edge_verification_duration_seconds Time to verify a request's token."
        );
        let _ = writeln!(
            w,
            "# TYPE auth_edge_verification_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (le, c) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(
                w,
                "auth_edge_verification_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            w,
            "auth_edge_verification_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(w, "auth_edge_verification_duration_seconds_sum {sum}");
        let _ = writeln!(w, "auth_edge_verification_duration_seconds_count {count}");

        let _ = writeln!(
            w,
            "# HELP auth_edge_key_fetches_total JWKS / key file loads by result."
        );
        let _ = writeln!(w, "# TYPE auth_edge_key_fetches_total counter");
        let _ = writeln!(
            w,
            "auth_edge_key_fetches_total{{result=\"ok\"}} {}",
            self.key_fetch_ok.load(Relaxed)
        );
        let _ = writeln!(
            w,
            "auth_edge_key_fetches_total{{result=\"error\"}} {}",
            self.key_fetch_error.load(Relaxed)
        );
        let _ = writeln!(
            w,
            "# HELP auth_edge_keys Verification keys currently loaded."
        );
        let _ = writeln!(w, "# TYPE auth_edge_keys gauge");
        let _ = writeln!(w, "auth_edge_keys {}", self.keys_loaded.load(Relaxed));
        let last_keys = self.keys_last_success_ms.load(Relaxed);
        if last_keys > 0 {
            let _ = writeln!(w, "# HELP auth_edge_keys_age_seconds Seconds since keys were last loaded successfully.");
            let _ = writeln!(w, "# TYPE auth_edge_keys_age_seconds gauge");
            let _ = writeln!(w, "auth_edge_keys_age_seconds {}", age(s.now_ms, last_keys));
        }

        let _ = writeln!(
            w,
            "# HELP auth_edge_token_cache_entries Verified tokens cached."
        );
        let _ = writeln!(w, "# TYPE auth_edge_token_cache_entries gauge");
        let _ = writeln!(w, "auth_edge_token_cache_entries {}", s.cache_entries);
        let _ = writeln!(
            w,
            "# HELP auth_edge_revoked_sessions Revoked, not yet expired session ids held."
        );
        let _ = writeln!(w, "# TYPE auth_edge_revoked_sessions gauge");
        let _ = writeln!(w, "auth_edge_revoked_sessions {}", s.revoked_sessions);

        let last_rev = self.last_revocation_ms.load(Relaxed);
        if last_rev > 0 {
            let _ = writeln!(w, "# HELP auth_edge_revocation_last_event_age_seconds Seconds since the last revocation event arrived.");
            let _ = writeln!(
                w,
                "# TYPE auth_edge_revocation_last_event_age_seconds gauge"
            );
            let _ = writeln!(
                w,
                "auth_edge_revocation_last_event_age_seconds {}",
                age(s.now_ms, last_rev)
            );
        }
        let _ = writeln!(w, "# HELP auth_edge_revocation_source_up 1 while a revocation source is connected and its snapshot loaded.");
        let _ = writeln!(w, "# TYPE auth_edge_revocation_source_up gauge");
        for src in [Source::Stream, Source::Redis] {
            let st = &self.sources[src.index()];
            if st.configured.load(Relaxed) {
                let _ = writeln!(
                    w,
                    "auth_edge_revocation_source_up{{source=\"{}\"}} {}",
                    src.label(),
                    u8::from(st.up.load(Relaxed))
                );
            }
        }
        let _ = writeln!(
            w,
            "# HELP auth_edge_revocation_events_total Revocation events received."
        );
        let _ = writeln!(w, "# TYPE auth_edge_revocation_events_total counter");
        for src in [Source::Stream, Source::Redis] {
            let st = &self.sources[src.index()];
            if st.configured.load(Relaxed) {
                let _ = writeln!(
                    w,
                    "auth_edge_revocation_events_total{{source=\"{}\"}} {}",
                    src.label(),
                    st.events.load(Relaxed)
                );
            }
        }
        let _ = writeln!(w, "# HELP auth_edge_revocation_source_refusals_total Connections a source refused for the edge's credentials (a configuration error).");
        let _ = writeln!(
            w,
            "# TYPE auth_edge_revocation_source_refusals_total counter"
        );
        for src in [Source::Stream, Source::Redis] {
            let st = &self.sources[src.index()];
            if st.configured.load(Relaxed) {
                let _ = writeln!(
                    w,
                    "auth_edge_revocation_source_refusals_total{{source=\"{}\"}} {}",
                    src.label(),
                    st.refused.load(Relaxed)
                );
            }
        }
        if let Some(stale) = s.revocations_stale {
            let _ = writeln!(w, "# HELP auth_edge_revocations_stale 1 while no revocation source has been heard from within AUTH_EDGE_REVOCATION_MAX_STALENESS_SECONDS.");
            let _ = writeln!(w, "# TYPE auth_edge_revocations_stale gauge");
            let _ = writeln!(w, "auth_edge_revocations_stale {}", u8::from(stale));
        }
        let _ = writeln!(w, "# HELP auth_edge_revocation_last_message_age_seconds Seconds since a source last sent anything (pings included): the revocation lag bound.");
        let _ = writeln!(
            w,
            "# TYPE auth_edge_revocation_last_message_age_seconds gauge"
        );
        for src in [Source::Stream, Source::Redis] {
            let st = &self.sources[src.index()];
            let last = st.last_message_ms.load(Relaxed);
            if st.configured.load(Relaxed) && last > 0 {
                let _ = writeln!(
                    w,
                    "auth_edge_revocation_last_message_age_seconds{{source=\"{}\"}} {}",
                    src.label(),
                    age(s.now_ms, last)
                );
            }
        }
        out
    }
}

/// The standard `process_*` metrics (the names every Prometheus client library uses).
/// Appends the foreign issuers' key metrics to `w`: each issuer's key store counts its loads in a
/// [`Metrics`] of its own, rendered here under an `issuer` label (bounded: issuers come from the
/// configuration). The unlabelled `auth_edge_key*` metrics stay the own issuer's.
pub fn render_issuer_keys<'a>(
    w: &mut String,
    issuers: impl Iterator<Item = (&'a str, &'a Metrics)> + Clone,
    now_ms: i64,
) {
    let _ = writeln!(
        w,
        "# HELP auth_edge_issuer_key_fetches_total Foreign issuers' key loads (discovery and JWKS) by result."
    );
    let _ = writeln!(w, "# TYPE auth_edge_issuer_key_fetches_total counter");
    for (issuer, m) in issuers.clone() {
        let issuer = label_value(issuer);
        for (result, n) in [("ok", &m.key_fetch_ok), ("error", &m.key_fetch_error)] {
            let _ = writeln!(
                w,
                "auth_edge_issuer_key_fetches_total{{issuer=\"{issuer}\",result=\"{result}\"}} {}",
                n.load(Relaxed)
            );
        }
    }
    let _ = writeln!(
        w,
        "# HELP auth_edge_issuer_keys Verification keys currently loaded per foreign issuer."
    );
    let _ = writeln!(w, "# TYPE auth_edge_issuer_keys gauge");
    for (issuer, m) in issuers.clone() {
        let _ = writeln!(
            w,
            "auth_edge_issuer_keys{{issuer=\"{}\"}} {}",
            label_value(issuer),
            m.keys_loaded.load(Relaxed)
        );
    }
    let _ = writeln!(w, "# HELP auth_edge_issuer_keys_age_seconds Seconds since a foreign issuer's keys were last loaded successfully.");
    let _ = writeln!(w, "# TYPE auth_edge_issuer_keys_age_seconds gauge");
    for (issuer, m) in issuers {
        let last = m.keys_last_success_ms.load(Relaxed);
        if last > 0 {
            let _ = writeln!(
                w,
                "auth_edge_issuer_keys_age_seconds{{issuer=\"{}\"}} {}",
                label_value(issuer),
                age(now_ms, last)
            );
        }
    }
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label_value(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_process(w: &mut String, p: &auth_telemetry::ProcessSample) {
    let metrics: [(&str, &str, &str, f64); 7] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_memory_bytes as f64,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_memory_bytes as f64,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds as f64,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds as f64,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        ),
        (
            "process_threads",
            "gauge",
            "Number of OS threads.",
            p.threads as f64,
        ),
    ];
    for (name, kind, help, value) in metrics {
        let _ = writeln!(w, "# HELP {name} {help}");
        let _ = writeln!(w, "# TYPE {name} {kind}");
        let _ = writeln!(w, "{name} {value}");
    }
}

fn age(now_ms: i64, then_ms: i64) -> f64 {
    (now_ms.saturating_sub(then_ms)).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_foreign_issuers_keys_with_an_issuer_label() {
        let (a, b) = (Metrics::default(), Metrics::default());
        a.key_fetch(true, 2, 1_000);
        b.key_fetch(false, 0, 1_000);
        let mut out = String::new();
        let issuers = [("https://idp.example", &a), ("odd\"issuer\\", &b)];
        render_issuer_keys(&mut out, issuers.into_iter(), 3_000);
        for line in [
            "auth_edge_issuer_key_fetches_total{issuer=\"https://idp.example\",result=\"ok\"} 1",
            "auth_edge_issuer_key_fetches_total{issuer=\"odd\\\"issuer\\\\\",result=\"error\"} 1",
            "auth_edge_issuer_keys{issuer=\"https://idp.example\"} 2",
            "auth_edge_issuer_keys_age_seconds{issuer=\"https://idp.example\"} 2",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in\n{out}");
        }
        assert!(
            !out.contains("age_seconds{issuer=\"odd"),
            "never loaded: no age"
        );
    }

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.observe(Outcome::Ok, true, Duration::from_micros(3));
        m.observe(Outcome::Ok, false, Duration::from_micros(60));
        m.observe(Outcome::Revoked, true, Duration::from_secs(5));
        m.key_fetch(true, 2, 1_000);
        m.key_fetch(false, 0, 2_000);
        m.source_configured(Source::Stream);
        m.source_up(Source::Stream, true);
        m.source_message(Source::Stream, 9_000);
        m.revocation_event(Source::Stream, 8_000);
        let text = m.render(&Snapshot {
            cache_entries: 4,
            revoked_sessions: 1,
            now_ms: 10_000,
            revocations_stale: Some(false),
        });
        for line in [
            "auth_edge_verifications_total{result=\"ok\"} 2",
            "auth_edge_verifications_total{result=\"revoked\"} 1",
            "auth_edge_verifications_total{result=\"unavailable\"} 0",
            "auth_edge_token_cache_hits_total 2",
            "auth_edge_verification_duration_seconds_bucket{le=\"0.000005\"} 1",
            "auth_edge_verification_duration_seconds_bucket{le=\"0.0001\"} 2",
            "auth_edge_verification_duration_seconds_bucket{le=\"1\"} 2",
            "auth_edge_verification_duration_seconds_bucket{le=\"+Inf\"} 3",
            "auth_edge_verification_duration_seconds_count 3",
            "auth_edge_key_fetches_total{result=\"ok\"} 1",
            "auth_edge_key_fetches_total{result=\"error\"} 1",
            "auth_edge_keys 2",
            "auth_edge_keys_age_seconds 9",
            "auth_edge_token_cache_entries 4",
            "auth_edge_revoked_sessions 1",
            "auth_edge_revocation_last_event_age_seconds 2",
            "auth_edge_revocation_source_up{source=\"stream\"} 1",
            "auth_edge_revocation_events_total{source=\"stream\"} 1",
            "auth_edge_revocation_last_message_age_seconds{source=\"stream\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Unconfigured sources are not exported.
        assert!(!text.contains("source=\"redis\""));
        // Every sample line belongs to a declared metric.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {base} ")), "{name}");
        }
    }
}
