//! Leases in the database: which replica runs a singleton job right now.
//!
//! The Kafka relay must be one process at a time (per-user order, no row delivered twice) and the
//! cleanup needs to run only once. A replica takes the lease when it is free or expired and keeps
//! it by renewing; if it dies, another takes over after the lease runs out.

use crate::store::Db;

/// The lease of the Kafka relay (one replica publishes, in order).
pub const KAFKA_RELAY: &str = "kafka-relay";
/// The lease of the cleanup job.
pub const CLEANUP: &str = "cleanup";

/// Takes or renews `name` for `holder` until `now + ttl`; `true` when this holder has it.
pub async fn acquire(db: &Db, name: &str, holder: &str, now: i64, ttl: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE leases SET holder = $1, expires_at = $2 WHERE name = $3 AND (holder = $1 OR expires_at < $4)",
    )
    .bind(holder)
    .bind(now + ttl)
    .bind(name)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the lease up (clean shutdown), so another replica need not wait for it to expire.
pub async fn release(db: &Db, name: &str, holder: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(db)
        .await
        .map(|_| ())
}
