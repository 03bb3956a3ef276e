//! The revocation stream from accounts: `GET {AUTH_EDGE_REVOCATIONS_URL}`, NDJSON.
//!
//! First line a snapshot, then one `revoked` line per revocation, and a `ping` every 15 s. A
//! connection that errors, ends, or stays silent for [`IDLE_TIMEOUT`] is replaced with backoff;
//! every new connection starts with a fresh snapshot, which is merged in, so nothing revoked
//! while disconnected is missed.

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use http_body_util::BodyExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{FeedMessage, RevocationSet};
use crate::backoff::Backoff;
use crate::clock;
use crate::http_client::{self, FetchError};
use crate::metrics::{Metrics, Source};
use crate::tls::TlsClient;

/// Three missed pings: the link is dead even if TCP has not noticed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A line is a few hundred bytes; a snapshot of many sessions is larger but bounded.
const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("read failed: {0}")]
    Read(#[from] hyper::Error),
    #[error("no line for {0:?}")]
    Idle(Duration),
    #[error("stream ended")]
    Eof,
    #[error("line longer than {MAX_LINE} bytes")]
    LineTooLong,
}

/// Follows the stream forever, reconnecting as needed.
pub async fn run(
    uri: Uri,
    tls: TlsClient,
    token: Option<SecretString>,
    set: Arc<RevocationSet>,
    metrics: Arc<Metrics>,
    idle_timeout: Duration,
) {
    metrics.source_configured(Source::Stream);
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        let result = follow(
            &uri,
            &tls,
            token.as_ref(),
            &set,
            &metrics,
            idle_timeout,
            &mut backoff,
        )
        .await;
        metrics.source_up(Source::Stream, false);
        let delay = backoff.next_delay();
        match result {
            Err(StreamError::Fetch(FetchError::Status(status)))
                if status == http::StatusCode::UNAUTHORIZED
                    || status == http::StatusCode::FORBIDDEN =>
            {
                // Not an outage: a configuration error that retrying will not fix.
                metrics.source_refused(Source::Stream);
                tracing::error!(
                    %status,
                    retry_in = ?delay,
                    "the revocation stream refused the edge's token: AUTH_EDGE_REVOCATIONS_TOKEN \
                     must equal accounts' REVOCATIONS_TOKEN; revoked sessions are not seen"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "revocation stream unavailable; reconnecting");
            }
            Ok(()) => {}
        }
        tokio::time::sleep(delay).await;
    }
}

async fn follow(
    uri: &Uri,
    tls: &TlsClient,
    token: Option<&SecretString>,
    set: &RevocationSet,
    metrics: &Metrics,
    idle_timeout: Duration,
    backoff: &mut Backoff,
) -> Result<(), StreamError> {
    let response = http_client::get(
        uri,
        tls,
        auth_token::REVOCATION_STREAM_CONTENT_TYPE,
        token.map(ExposeSecret::expose_secret),
        CONNECT_TIMEOUT,
    )
    .await?;
    let mut body = response.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut last_line = Instant::now();
    loop {
        let frame = tokio::time::timeout_at(last_line + idle_timeout, body.frame())
            .await
            .map_err(|_| StreamError::Idle(idle_timeout))?;
        let Some(frame) = frame else {
            return Err(StreamError::Eof);
        };
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        buf.extend_from_slice(&data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + pos];
            start += pos + 1;
            last_line = Instant::now();
            handle_line(line, set, metrics, backoff);
        }
        buf.drain(..start);
        if buf.len() > MAX_LINE {
            return Err(StreamError::LineTooLong);
        }
    }
}

fn handle_line(line: &[u8], set: &RevocationSet, metrics: &Metrics, backoff: &mut Backoff) {
    let line = line.trim_ascii();
    if line.is_empty() {
        return;
    }
    let now_ms = clock::unix_now_ms();
    metrics.source_message(Source::Stream, now_ms);
    match FeedMessage::parse(line) {
        Ok(message) => {
            if let FeedMessage::Snapshot { revocations } = &message {
                tracing::info!(
                    revocations = revocations.len(),
                    "revocation stream connected"
                );
                metrics.source_up(Source::Stream, true);
                backoff.reset();
            }
            if set.apply(&message, now_ms / 1000) {
                metrics.revocation_event(Source::Stream, now_ms);
                if let FeedMessage::Revoked(r) = &message {
                    // A session id names a session, it grants nothing; `bench/fanout` times these.
                    tracing::debug!(sid = %r.sid, source = "stream", "revocation applied");
                }
            }
        }
        // One bad line must not drop the link (and with it every later revocation).
        Err(e) => tracing::warn!(error = %e, "ignoring an unreadable revocation line"),
    }
}
