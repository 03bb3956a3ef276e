//! Periodic cleanup: expired and long-revoked sessions (their refresh tokens go with them), expired
//! one-time tokens, and delivered outbox rows past retention. One replica at a time (lease).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::leases;
use crate::store::Db;

/// Delivered events and sent emails are kept this long for inspection, then deleted.
const RETENTION_SECS: i64 = 7 * 24 * 3600;

/// What one cleanup pass deleted, by kind of row.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Sessions past their expiry (with their refresh tokens).
    pub sessions: u64,
    /// Used or expired verification and reset tokens.
    pub one_time_tokens: u64,
    /// Delivered outbox events past the retention.
    pub events: u64,
    /// Sent emails past the retention.
    pub emails: u64,
}

/// One cleanup pass. `horizon` is how long a revoked session must stay visible to the revocation
/// feed (its access tokens' lifetime).
pub async fn run_once(db: &Db, now: i64, horizon: i64) -> sqlx::Result<Removed> {
    // Refresh tokens first: not every SQLite connection is guaranteed to cascade.
    sqlx::query(
        "DELETE FROM refresh_tokens WHERE session_id IN
           (SELECT session_id FROM sessions WHERE expires_at < $1 OR revoked_at < $2)",
    )
    .bind(now - horizon)
    .bind(now - horizon)
    .execute(db)
    .await?;
    let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $2")
        .bind(now - horizon)
        .bind(now - horizon)
        .execute(db)
        .await?
        .rows_affected();
    let one_time_tokens = sqlx::query("DELETE FROM one_time_tokens WHERE expires_at < $1")
        .bind(now)
        .execute(db)
        .await?
        .rows_affected();
    let events =
        sqlx::query("DELETE FROM outbox_events WHERE status = 'delivered' AND delivered_at < $1")
            .bind(now - RETENTION_SECS)
            .execute(db)
            .await?
            .rows_affected();
    let emails = sqlx::query(
        "DELETE FROM email_outbox WHERE (status = 'sent' AND sent_at < $1) OR (status = 'suppressed' AND created_at < $1)",
    )
        .bind(now - RETENTION_SECS)
        .execute(db)
        .await?
        .rows_affected();
    Ok(Removed {
        sessions,
        one_time_tokens,
        events,
        emails,
    })
}

/// Runs [`run_once`] every `every` while this replica holds the cleanup lease, until `shutdown`
/// (then gives the lease up, so another replica need not wait for it to expire).
pub async fn run(
    db: Db,
    clock: Clock,
    horizon: i64,
    holder: String,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let now = clock.now();
        let lease_secs = i64::try_from(every.as_secs()).unwrap_or(3600).max(60);
        if let Ok(true) = leases::acquire(&db, leases::CLEANUP, &holder, now, lease_secs).await {
            match run_once(&db, now, horizon).await {
                Ok(removed) => tracing::info!(?removed, "cleanup done"),
                Err(err) => tracing::warn!(error = %err, "cleanup failed"),
            }
        }
        if !crate::tasks::pause(&shutdown, every).await {
            let _ = leases::release(&db, leases::CLEANUP, &holder).await;
            return;
        }
    }
}
