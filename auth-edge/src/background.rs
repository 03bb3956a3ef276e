//! The background work that keeps a [`Verifier`] fresh, started by whoever runs the edge
//! ([`crate::startup`] for forward-auth, [`crate::sidecar`] on its admin thread), never by the
//! verifier itself: the key refresh loop, the revocation sources, and pruning expired
//! revocations. The verified-token cache needs no sweep (expiry is checked on read).

use std::sync::Arc;
use std::time::Duration;

use crate::clock;
use crate::config::RevocationSources;
use crate::revocations;
use crate::verifier::Verifier;

/// How often expired revocations are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Runs every background task for `verifier` until dropped; spawn it on the runtime of your
/// choice (and abort it when serving ends).
pub async fn run(verifier: Arc<Verifier>, sources: RevocationSources) {
    if !sources.any() {
        tracing::warn!(
            "no revocation source (AUTH_EDGE_REVOCATIONS_URL or REDIS_URL): revoked \
             sessions stay valid here until their access tokens expire"
        );
    }
    let RevocationSources {
        url,
        token,
        redis_url,
        tls,
    } = sources;
    let stream = async {
        if let Some(uri) = url {
            revocations::stream::run(
                uri,
                tls.clone(),
                token,
                verifier.revocations_handle(),
                verifier.metrics_handle(),
                revocations::stream::IDLE_TIMEOUT,
            )
            .await;
        }
    };
    let redis = async {
        if let Some(url) = redis_url {
            revocations::redis::run(
                url,
                tls.clone(),
                verifier.revocations_handle(),
                verifier.metrics_handle(),
            )
            .await;
        }
    };
    let watch = async {
        // Says loudly when the revocation set goes stale and when it recovers (the fail mode
        // decides what requests get meanwhile; see `revocations::FailMode`).
        let policy = verifier.staleness_policy();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut was_stale = false;
        loop {
            tick.tick().await;
            let stale = verifier.revocations_stale();
            if stale && !was_stale {
                tracing::error!(
                    mode = ?policy.mode,
                    max_staleness = ?policy.max_staleness,
                    "no revocation source heard from within the bound: {}",
                    match policy.mode {
                        revocations::FailMode::Closed => "not ready, answering 503 to tokens",
                        revocations::FailMode::Open => "still accepting tokens, revoked sessions included",
                    }
                );
            } else if !stale && was_stale {
                tracing::info!("revocation source heard from again; revocation set fresh");
            }
            was_stale = stale;
        }
    };
    let prune = async {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        loop {
            tick.tick().await;
            let dropped = verifier.revocations().prune(clock::unix_now());
            if dropped > 0 {
                tracing::debug!(dropped, "pruned expired revocations");
            }
        }
    };
    tokio::join!(verifier.run_keys(), stream, redis, watch, prune);
}
