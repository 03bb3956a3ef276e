//! The revocation feed: how edges learn, within a second, that a session was revoked.
//!
//! Edges verify access tokens on their own (JWKS) and cannot ask the database on every request, so
//! accounts pushes revoked session ids to them. A poller reads sessions revoked since its last look
//! (by any replica: the database is the source of truth) and fans them out to every connected edge
//! over the NDJSON stream and through Redis. The messages, the stream path and the Redis names are
//! the token crate's (`auth_token::FeedMessage` and friends), shared with the edge; `until` is
//! `TokenLifetime::revoked_until` of the revocation time.
//!
//! This module is the engine (queries, poller, Redis fan-out); the HTTP stream that serves it is
//! `routes::revocations`.

use std::collections::HashSet;
use std::time::Duration;

use auth_token::{
    FeedMessage, Revocation, TokenLifetime, REDIS_REVOCATIONS_CHANNEL, REDIS_REVOKED_SET,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::Db;

/// Revocations since `since` (inclusive), oldest first.
pub async fn revoked_since(
    db: &Db,
    since: i64,
    lifetime: TokenLifetime,
) -> sqlx::Result<Vec<(Revocation, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT session_id, revoked_at FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1 ORDER BY revoked_at",
    )
    .bind(since)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sid, at)| {
            (
                Revocation {
                    sid,
                    until: lifetime.revoked_until(at),
                },
                at,
            )
        })
        .collect())
}

/// Polls the database every 200 ms and broadcasts new revocations to connected streams.
/// Publishes to Redis for edges that subscribe there: the sorted set [`REDIS_REVOKED_SET`]
/// (member = sid, score = until) is the snapshot an edge loads on (re)connect, the channel
/// [`REDIS_REVOCATIONS_CHANNEL`] carries each new one. If Redis was unreachable, the whole recent set is written again once it
/// answers, so an outage delays revocations but loses none.
pub struct RedisFanout {
    conn: redis::aio::ConnectionManager,
    /// Set after a failed write: the next successful tick re-publishes the full snapshot.
    resync: bool,
}

impl RedisFanout {
    pub fn new(conn: redis::aio::ConnectionManager) -> Self {
        // Start with a full sync: revocations made while no replica was publishing get written.
        Self { conn, resync: true }
    }

    async fn publish(&mut self, items: &[Revocation], now: i64) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for r in items {
            pipe.cmd("ZADD")
                .arg(REDIS_REVOKED_SET)
                .arg(r.until)
                .arg(&r.sid)
                .ignore();
            pipe.cmd("PUBLISH")
                .arg(REDIS_REVOCATIONS_CHANNEL)
                .arg(FeedMessage::Revoked(r.clone()).to_json())
                .ignore();
        }
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(REDIS_REVOKED_SET)
            .arg("-inf")
            .arg(now)
            .ignore();
        pipe.query_async::<()>(&mut self.conn).await
    }

    async fn tick(&mut self, db: &Db, fresh: &[Revocation], now: i64, lifetime: TokenLifetime) {
        let items = if self.resync {
            match revoked_since(db, now - lifetime.horizon(), lifetime).await {
                Ok(rows) => rows.into_iter().map(|(r, _)| r).collect(),
                Err(_) => return,
            }
        } else if fresh.is_empty() {
            return;
        } else {
            fresh.to_vec()
        };
        // Bounded: while Redis is unreachable its connection manager makes commands wait for the
        // reconnect (with backoff, up to minutes), and this loop also feeds the edges' streams.
        let published = tokio::time::timeout(Duration::from_secs(1), self.publish(&items, now))
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::IoError,
                    "timed out",
                )))
            });
        match published {
            Ok(()) => self.resync = false,
            Err(err) => {
                if !self.resync {
                    tracing::warn!(error = %err, "revocations: Redis unavailable; will re-publish when it is back");
                }
                self.resync = true;
            }
        }
    }
}

/// Polls the database every 200 ms and broadcasts new revocations to connected streams, until
/// `shutdown`. With Redis, a second task publishes them there (see [`RedisFanout`]).
pub async fn poll(
    db: Db,
    clock: Clock,
    lifetime: TokenLifetime,
    tx: broadcast::Sender<Revocation>,
    shutdown: CancellationToken,
) {
    let mut cursor = clock.now();
    // Revocation times have one-second resolution: remember what was sent for the cursor's
    // second so a row seen twice is sent once.
    let mut sent_at_cursor: HashSet<String> = HashSet::new();
    while crate::tasks::pause(&shutdown, Duration::from_millis(200)).await {
        match revoked_since(&db, cursor, lifetime).await {
            Ok(rows) => {
                for (revocation, at) in rows {
                    if at > cursor {
                        cursor = at;
                        sent_at_cursor.clear();
                    }
                    if sent_at_cursor.insert(revocation.sid.clone()) {
                        // No receivers is fine: no edge is connected.
                        let _ = tx.send(revocation);
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "revocation poller: database error"),
        }
    }
}

impl RedisFanout {
    /// Publishes what the poller broadcasts to Redis, until `shutdown`; retries a pending full
    /// resync every 200 ms and does one every 30 s anyway. Its own task: a slow or unreachable
    /// Redis must not hold up the streams.
    pub async fn run(
        mut self,
        db: Db,
        clock: Clock,
        lifetime: TokenLifetime,
        mut rx: broadcast::Receiver<Revocation>,
        shutdown: CancellationToken,
    ) {
        use broadcast::error::{RecvError, TryRecvError};
        // A Redis that restarted empty (no persistence) answers writes fine, so no failure would
        // trigger a resync: re-publish the whole recent set every 30 s regardless. Cheap (only
        // sessions revoked within one access-token lifetime) and idempotent (ZADD).
        let mut last_full = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            if last_full.elapsed() >= Duration::from_secs(30) {
                self.resync = true;
                last_full = tokio::time::Instant::now();
            }
            let mut fresh = Vec::new();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = tokio::time::timeout(Duration::from_millis(200), rx.recv()) => match received {
                    Ok(Ok(revocation)) => fresh.push(revocation),
                    // Missed some: publish the whole recent set again.
                    Ok(Err(RecvError::Lagged(_))) => self.resync = true,
                    Ok(Err(RecvError::Closed)) => return,
                    Err(_) => {}
                },
            }
            loop {
                match rx.try_recv() {
                    Ok(revocation) => fresh.push(revocation),
                    Err(TryRecvError::Lagged(_)) => self.resync = true,
                    Err(_) => break,
                }
            }
            self.tick(&db, &fresh, clock.now(), lifetime).await;
        }
    }
}
