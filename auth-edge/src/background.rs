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
    } = sources;
    let stream = async {
        if let Some(uri) = url {
            revocations::stream::run(
                uri,
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
                verifier.revocations_handle(),
                verifier.metrics_handle(),
            )
            .await;
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
    tokio::join!(verifier.keys().run(), stream, redis, prune);
}
