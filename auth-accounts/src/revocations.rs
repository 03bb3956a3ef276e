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

use std::collections::HashMap;
use std::time::Duration;

use auth_token::{
    FeedMessage, Revocation, TokenLifetime, REDIS_REVOCATIONS_CHANNEL, REDIS_REVOKED_SET,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::Db;

/// Revocations since `since` (inclusive), oldest first.
pub(crate) async fn revoked_since(
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
pub(crate) struct RedisFanout {
    conn: redis::aio::ConnectionManager,
    /// Set after a failed write: the next successful tick re-publishes the full snapshot.
    resync: bool,
}

impl RedisFanout {
    pub(crate) fn new(conn: redis::aio::ConnectionManager) -> Self {
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

/// Where the poller is in the revocation log (`migrations/*/0004_revocation_log.sql`).
///
/// SQLite has one writer at a time, so `seq` is commit order and the cursor is the last `seq`
/// read. PostgreSQL commits concurrently, so a lower `seq` can become visible after a higher one:
/// the cursor is a transaction id instead, the oldest transaction still running when the last
/// read began (`txid_snapshot_xmin`). Every transaction below it had ended by then, so its rows
/// were in that read; rows of younger transactions are read again until they fall below it, and
/// `sent` keeps them from being streamed twice.
enum LogCursor {
    Sqlite { seq: i64 },
    Postgres { xmin: i64, sent: HashMap<i64, i64> },
}

/// One row of the revocation log: `(seq, session_id, revoked_at, txid)`.
type LogRow = (i64, String, i64, i64);

impl LogCursor {
    /// A cursor at the end of the log (what is already there is in every stream's snapshot).
    async fn start(db: &Db, postgres: bool) -> sqlx::Result<LogCursor> {
        if postgres {
            Ok(LogCursor::Postgres {
                xmin: current_xmin(db).await?,
                sent: HashMap::new(),
            })
        } else {
            let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM revocation_log")
                .fetch_one(db)
                .await?;
            Ok(LogCursor::Sqlite { seq })
        }
    }

    /// The revocations committed since the last read, each exactly once, in log order.
    async fn next(&mut self, db: &Db) -> sqlx::Result<Vec<(String, i64)>> {
        match self {
            LogCursor::Sqlite { seq } => {
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT seq, session_id, revoked_at FROM revocation_log WHERE seq > $1 ORDER BY seq",
                )
                .bind(*seq)
                .fetch_all(db)
                .await?;
                if let Some((last, _, _)) = rows.last() {
                    *seq = *last;
                }
                Ok(rows.into_iter().map(|(_, sid, at)| (sid, at)).collect())
            }
            LogCursor::Postgres { xmin, sent } => {
                // xmin first, rows second: a transaction older than this xmin had ended before
                // the row query's snapshot, so its rows are in it.
                let next_xmin = current_xmin(db).await?;
                let rows: Vec<LogRow> = sqlx::query_as(
                    "SELECT seq, session_id, revoked_at, txid FROM revocation_log WHERE txid >= $1 ORDER BY seq",
                )
                .bind(*xmin)
                .fetch_all(db)
                .await?;
                let mut fresh = Vec::new();
                for (seq, sid, at, txid) in rows {
                    if sent.insert(seq, txid).is_none() {
                        fresh.push((sid, at));
                    }
                }
                *xmin = next_xmin;
                // Rows below the new cursor are never read again: forget them.
                sent.retain(|_, txid| *txid >= next_xmin);
                Ok(fresh)
            }
        }
    }
}

async fn current_xmin(db: &Db) -> sqlx::Result<i64> {
    let (xmin,): (i64,) = sqlx::query_as("SELECT txid_snapshot_xmin(txid_current_snapshot())")
        .fetch_one(db)
        .await?;
    Ok(xmin)
}

/// Drops log rows older than the revocation horizon (their tokens have expired everywhere).
async fn prune_log(db: &Db, before: i64) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM revocation_log WHERE revoked_at < $1")
            .bind(before)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Follows the revocation log every 200 ms and broadcasts new revocations to connected streams,
/// until `shutdown`: every revocation committed by any replica, exactly once, whatever the order
/// of its timestamp (see [`LogCursor`]). With Redis, a second task publishes them there (see
/// [`RedisFanout`]).
pub(crate) async fn poll(
    db: Db,
    postgres: bool,
    clock: Clock,
    lifetime: TokenLifetime,
    tx: broadcast::Sender<Revocation>,
    shutdown: CancellationToken,
) {
    // At once, before the first pause: a revocation committed after start-up must be after the
    // cursor (an edge that connected meanwhile got everything before it in its snapshot).
    let mut cursor = LogCursor::start(&db, postgres).await.ok();
    let mut last_prune = tokio::time::Instant::now();
    while crate::tasks::pause(&shutdown, Duration::from_millis(200)).await {
        let log = match &mut cursor {
            Some(log) => log,
            None => match LogCursor::start(&db, postgres).await {
                Ok(log) => cursor.insert(log),
                Err(err) => {
                    tracing::warn!(error = %err, "revocation poller: database error");
                    continue;
                }
            },
        };
        match log.next(&db).await {
            Ok(rows) => {
                for (sid, at) in rows {
                    // No receivers is fine: no edge is connected.
                    let _ = tx.send(Revocation {
                        sid,
                        until: lifetime.revoked_until(at),
                    });
                }
            }
            Err(err) => tracing::warn!(error = %err, "revocation poller: database error"),
        }
        if last_prune.elapsed() >= Duration::from_secs(60) {
            last_prune = tokio::time::Instant::now();
            if let Err(err) = prune_log(&db, clock.now() - lifetime.horizon()).await {
                tracing::warn!(error = %err, "revocation log: prune failed");
            }
        }
    }
}

impl RedisFanout {
    /// Publishes what the poller broadcasts to Redis, until `shutdown`; retries a pending full
    /// resync every 200 ms and does one every 30 s anyway. Its own task: a slow or unreachable
    /// Redis must not hold up the streams.
    pub(crate) async fn run(
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
