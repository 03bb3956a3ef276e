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
use std::sync::Arc;
use std::time::Duration;

use auth_token::{
    FeedMessage, Revocation, TokenLifetime, REDIS_REVOCATIONS_CHANNEL, REDIS_REVOKED_SET,
};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::{broadcast, Notify};
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

/// Publishes revocations to Redis for edges that subscribe there: the sorted set
/// [`REDIS_REVOKED_SET`] (member = sid, score = until) is the snapshot an edge loads on
/// (re)connect, the channel [`REDIS_REVOCATIONS_CHANNEL`] carries each new one, once.
///
/// Nothing is lost and nothing is broadcast twice:
/// - revocations whose write failed (Redis down) are kept and published when it answers again;
/// - a Redis that restarted empty (no persistence) is refilled with the recent set, without
///   publishing it again: edges that reconnect load the set, and edges that stayed connected
///   already have every revocation. [`REDIS_FILLED_MARKER`], written with each fill, tells a
///   refilled Redis from an emptied one;
/// - only a gap in what this task received (it fell behind the poller) re-publishes the recent
///   set, as that is the one case where it does not know what the channel missed.
pub(crate) struct RedisFanout {
    conn: redis::aio::ConnectionManager,
    /// Revocations not yet written (their write failed): published, in order, at the next tick.
    pending: Vec<Revocation>,
    /// Set after a gap: the next tick publishes the whole recent set on the channel too.
    republish: bool,
    /// Check the marker (and refill) at the next tick.
    check_fill: bool,
}

/// Present while Redis holds the recent revocation set written by accounts: absent after a
/// restart without persistence (or a flush), which makes a replica refill the set.
pub(crate) const REDIS_FILLED_MARKER: &str = "auth:revoked:filled";

/// At most this many revocations wait for Redis; beyond, the recent set is re-published when it
/// is back (a long outage at a high logout rate).
const MAX_PENDING: usize = 10_000;

impl RedisFanout {
    pub(crate) fn new(conn: redis::aio::ConnectionManager) -> Self {
        // Check the fill at once: revocations made while no replica was publishing get written.
        Self {
            conn,
            pending: Vec::new(),
            republish: false,
            check_fill: true,
        }
    }

    /// Writes `publish` to the set and the channel, and `fill` (when refilling) to the set only,
    /// in one transaction with the marker and the pruning of expired members.
    async fn write(
        &mut self,
        publish: &[Revocation],
        fill: &[Revocation],
        now: i64,
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for r in fill {
            pipe.cmd("ZADD")
                .arg(REDIS_REVOKED_SET)
                .arg(r.until)
                .arg(&r.sid)
                .ignore();
        }
        for r in publish {
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
        pipe.cmd("SET").arg(REDIS_FILLED_MARKER).arg(now).ignore();
        pipe.query_async::<()>(&mut self.conn).await
    }

    async fn tick(&mut self, db: &Db, fresh: Vec<Revocation>, now: i64, lifetime: TokenLifetime) {
        self.pending.extend(fresh);
        if self.pending.len() > MAX_PENDING {
            self.pending.clear();
            self.republish = true;
        }
        // Bounded: while Redis is unreachable its connection manager makes commands wait for the
        // reconnect (with backoff, up to minutes), and the poller must not wait behind it.
        let bounded = Duration::from_secs(1);
        let mut refill = self.republish;
        if self.check_fill && !refill {
            let exists = tokio::time::timeout(
                bounded,
                redis::cmd("EXISTS")
                    .arg(REDIS_FILLED_MARKER)
                    .query_async::<bool>(&mut self.conn),
            )
            .await;
            match exists {
                Ok(Ok(filled)) => {
                    refill = !filled;
                    if refill {
                        tracing::info!(
                            "revocations: Redis holds no revocation set (restarted?); refilling it"
                        );
                    }
                }
                Ok(Err(_)) | Err(_) => return self.failed("cannot read"),
            }
        }
        let recent = if refill {
            match revoked_since(db, now - lifetime.horizon(), lifetime).await {
                Ok(rows) => rows.into_iter().map(|(r, _)| r).collect(),
                Err(_) => return,
            }
        } else if self.pending.is_empty() {
            self.check_fill = false;
            return;
        } else {
            Vec::new()
        };
        let (publish, fill): (Vec<Revocation>, Vec<Revocation>) = if self.republish {
            (recent, Vec::new())
        } else {
            (self.pending.clone(), recent)
        };
        let written = tokio::time::timeout(bounded, self.write(&publish, &fill, now)).await;
        match written {
            Ok(Ok(())) => {
                self.pending.clear();
                self.republish = false;
                self.check_fill = false;
            }
            Ok(Err(_)) | Err(_) => self.failed("cannot write to"),
        }
    }

    fn failed(&mut self, what: &str) {
        if !self.check_fill {
            tracing::warn!("revocations: {what} Redis; will publish when it is back");
        }
        // When it answers again it may have restarted empty.
        self.check_fill = true;
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

/// What the revocation poller reads and how often.
pub(crate) struct Poller {
    pub db: Db,
    pub postgres: bool,
    pub clock: Clock,
    pub lifetime: TokenLifetime,
    /// The safety net: a read at least this often (`REVOCATION_POLL_MS`, 200 ms), whatever
    /// notifications were lost.
    pub interval: Duration,
    /// Woken when a revocation committed (this replica's unit of work, or [`listen`] for other
    /// replicas): the log is read at once.
    pub wake: Arc<Notify>,
}

/// Follows the revocation log and broadcasts new revocations to connected streams, until
/// `shutdown`: every revocation committed by any replica, exactly once, whatever the order of its
/// timestamp (see [`LogCursor`]). It reads when woken (a revocation committed) and every
/// `interval` anyway. With Redis, a second task publishes them there (see [`RedisFanout`]).
pub(crate) async fn poll(
    p: Poller,
    tx: broadcast::Sender<Revocation>,
    shutdown: CancellationToken,
) {
    // At once, before the first pause: a revocation committed after start-up must be after the
    // cursor (an edge that connected meanwhile got everything before it in its snapshot).
    let mut cursor = LogCursor::start(&p.db, p.postgres).await.ok();
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = p.wake.notified() => {}
            _ = tokio::time::sleep(p.interval) => {}
        }
        let log = match &mut cursor {
            Some(log) => log,
            None => match LogCursor::start(&p.db, p.postgres).await {
                Ok(log) => cursor.insert(log),
                Err(err) => {
                    tracing::warn!(error = %err, "revocation poller: database error");
                    continue;
                }
            },
        };
        match log.next(&p.db).await {
            Ok(rows) => {
                for (sid, at) in rows {
                    // No receivers is fine: no edge is connected.
                    let _ = tx.send(Revocation {
                        sid,
                        until: p.lifetime.revoked_until(at),
                    });
                }
            }
            Err(err) => tracing::warn!(error = %err, "revocation poller: database error"),
        }
        if last_prune.elapsed() >= Duration::from_secs(60) {
            last_prune = tokio::time::Instant::now();
            if let Err(err) = prune_log(&p.db, p.clock.now() - p.lifetime.horizon()).await {
                tracing::warn!(error = %err, "revocation log: prune failed");
            }
        }
    }
}

/// The PostgreSQL channel the revocation log's trigger notifies on every revocation
/// (`migrations/postgres/0006_revocation_notify.sql`).
pub(crate) const NOTIFY_CHANNEL: &str = "auth_revocations";

/// Wakes `wake` on every notification of [`NOTIFY_CHANNEL`] (revocations committed by any
/// replica), until `shutdown`. A lost connection is re-established; notifications sent meanwhile
/// are lost, which the poller's safety-net interval covers.
pub(crate) async fn listen(url: SecretString, wake: Arc<Notify>, shutdown: CancellationToken) {
    use sqlx::postgres::PgListener;
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let connected = async {
            let mut listener = PgListener::connect(url.expose_secret()).await?;
            listener.listen(NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = shutdown.cancelled() => return,
            connected = connected => match connected {
                Ok(listener) => listener,
                Err(err) => {
                    if failures % 30 == 0 {
                        tracing::warn!(error = %err, "revocation notifications: cannot listen; polling only");
                    }
                    failures += 1;
                    if !crate::tasks::pause(&shutdown, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            },
        };
        failures = 0;
        // Revocations committed while this was not listening are in the log: read it now.
        wake.notify_one();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => wake.notify_one(),
                    // The connection was lost (and sqlx reconnects on the next call): the log
                    // may have grown meanwhile.
                    Ok(None) => wake.notify_one(),
                    Err(err) => {
                        tracing::warn!(error = %err, "revocation notifications: connection lost; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}

impl RedisFanout {
    /// Publishes what the poller broadcasts to Redis, until `shutdown`; retries pending writes
    /// every 200 ms and checks every 5 s that Redis still holds the set. Its own task: a slow or
    /// unreachable Redis must not hold up the streams.
    pub(crate) async fn run(
        mut self,
        db: Db,
        clock: Clock,
        lifetime: TokenLifetime,
        mut rx: broadcast::Receiver<Revocation>,
        shutdown: CancellationToken,
    ) {
        use broadcast::error::{RecvError, TryRecvError};
        // A Redis that restarted empty answers writes fine, so no failure tells of it: look for
        // the marker every 5 s (one EXISTS), and refill without re-broadcasting if it is gone.
        let mut last_check = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            if last_check.elapsed() >= Duration::from_secs(5) {
                self.check_fill = true;
                last_check = tokio::time::Instant::now();
            }
            let mut fresh = Vec::new();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = tokio::time::timeout(Duration::from_millis(200), rx.recv()) => match received {
                    Ok(Ok(revocation)) => fresh.push(revocation),
                    // Missed some: publish the whole recent set again.
                    Ok(Err(RecvError::Lagged(_))) => self.republish = true,
                    Ok(Err(RecvError::Closed)) => return,
                    Err(_) => {}
                },
            }
            loop {
                match rx.try_recv() {
                    Ok(revocation) => fresh.push(revocation),
                    Err(TryRecvError::Lagged(_)) => self.republish = true,
                    Err(_) => break,
                }
            }
            self.tick(&db, fresh, clock.now(), lifetime).await;
        }
    }
}
