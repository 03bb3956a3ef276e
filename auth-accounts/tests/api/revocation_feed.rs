//! The revocation feed: a logout reaches Redis (sorted set `auth:revoked`, channel
//! `auth:revocations`) and the NDJSON stream `GET /revocations/stream` within a second, pushed
//! on commit (not left to the safety-net poll), and a Redis that restarted empty is refilled
//! without broadcasting anything twice.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, email, spawn_app, spawn_app_with, spawn_on, Backend, Env, TestApp, PASSWORD,
};
use crate::peers::{wait_for, RedisServer};

both!(
    logout_reaches_redis_within_a_second,
    stream_sends_snapshot_then_revocations,
    revocations_committed_out_of_order_are_streamed,
    revocations_are_pushed_not_polled
);

/// The access-token horizon with the default settings: 900 s lifetime + 30 s leeway.
const HORIZON: i64 = 930;

async fn revoked_at(app: &TestApp, session_id: &str) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>("SELECT revoked_at FROM sessions WHERE session_id = $1")
        .bind(session_id)
        .fetch_one(&app.state.db)
        .await
        .expect("read revoked_at")
        .expect("the session is revoked")
}

async fn logout(app: &TestApp, access: &str) {
    let response = app.post_json_bearer("logout", &json!({}), access).await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn logout_reaches_redis_within_a_second(backend: Backend) {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let app = spawn_app_with(backend, &[("REDIS_URL", url.as_str())]).await;
    let mut pubsub = redis::Client::open(url.as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .expect("Redis pub/sub connection");
    pubsub
        .subscribe(auth_token::REDIS_REVOCATIONS_CHANNEL)
        .await
        .expect("SUBSCRIBE auth:revocations");
    let mut messages = pubsub.on_message();
    let tokens = app.register(&email("fanout"), PASSWORD).await;

    logout(&app, &tokens.access).await;
    let logged_out = Instant::now();
    let until = revoked_at(&app, &tokens.session_id).await + HORIZON;

    // The channel carries the revocation...
    let message = tokio::time::timeout(Duration::from_secs(1), messages.next())
        .await
        .expect("a message on auth:revocations within 1 s")
        .expect("the subscription is open");
    let payload: String = message.get_payload().expect("text payload");
    let line: Value = serde_json::from_str(&payload).expect("the payload is JSON");
    assert_eq!(
        line,
        json!({ "type": "revoked", "sid": tokens.session_id, "until": until })
    );
    // ...and the sorted set holds it with score = until, for edges that (re)connect.
    let mut conn = redis.connection().await;
    let score = wait_for(
        "the sid in auth:revoked",
        Duration::from_secs(1).saturating_sub(logged_out.elapsed()),
        || {
            let mut conn = conn.clone();
            let sid = tokens.session_id.clone();
            async move {
                redis::cmd("ZSCORE")
                    .arg(auth_token::REDIS_REVOKED_SET)
                    .arg(&sid)
                    .query_async::<Option<f64>>(&mut conn)
                    .await
                    .expect("ZSCORE")
            }
        },
    )
    .await;
    assert!(
        logged_out.elapsed() < Duration::from_secs(1),
        "published after {:?}",
        logged_out.elapsed()
    );
    #[allow(clippy::cast_possible_truncation)]
    let score = score as i64;
    assert_eq!(score, until);
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(auth_token::REDIS_REVOKED_SET)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, vec![tokens.session_id.clone()]);
}

/// Reads newline-delimited JSON from a streaming response.
struct Lines {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Lines {
    async fn next(&mut self, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {}", String::from_utf8_lossy(&line))
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no line within {timeout:?}"))
                .expect("read the stream")
                .expect("the stream ended");
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

async fn stream_sends_snapshot_then_revocations(backend: Backend) {
    const FEED_TOKEN: &str = "feed-secret-0123456789";
    let app = spawn_app_with(backend, &[("REVOCATIONS_TOKEN", FEED_TOKEN)]).await;
    let user = email("feed");
    let first = app.register(&user, PASSWORD).await;
    let second = app.login(&user, PASSWORD).await;
    logout(&app, &first.access).await;
    let first_until = revoked_at(&app, &first.session_id).await + HORIZON;

    // The feed requires its token.
    let stream = |bearer: Option<&str>| {
        let mut req = app.client.get(app.url("revocations/stream"));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    assert_error(
        stream(None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "stream",
    )
    .await;
    assert_error(
        stream(Some("feed-secret-wrong")).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "stream",
    )
    .await;
    // An access token is not the feed token.
    assert_error(
        stream(Some(&second.access)).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "stream",
    )
    .await;

    let response = stream(Some(FEED_TOKEN)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let mut lines = Lines {
        response,
        buffer: Vec::new(),
    };
    let snapshot = lines.next(Duration::from_secs(2)).await;
    assert_eq!(
        snapshot,
        json!({ "type": "snapshot", "revocations": [{ "sid": first.session_id, "until": first_until }] })
    );

    logout(&app, &second.access).await;
    let logged_out = Instant::now();
    let line = next_revocation(&mut lines, &second.session_id, &[&first.session_id]).await;
    assert!(
        logged_out.elapsed() < Duration::from_secs(1),
        "revocation streamed after {:?}",
        logged_out.elapsed()
    );
    let second_until = revoked_at(&app, &second.session_id).await + HORIZON;
    assert_eq!(
        line,
        json!({ "type": "revoked", "sid": second.session_id, "until": second_until })
    );
}

/// The next `revoked` line for `sid`, within 1 s. Pings, and repeats of revocations the edge
/// already has (`known`: a revocation in the snapshot may also be streamed once), are skipped.
async fn next_revocation(lines: &mut Lines, sid: &str, known: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.next(left).await;
        if line["type"] == "ping" {
            continue;
        }
        assert_eq!(line["type"], "revoked", "{line}");
        if line["sid"] == sid {
            return line;
        }
        assert!(
            known.iter().any(|k| line["sid"] == *k),
            "a revocation nobody made: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_survive_a_redis_outage() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let url = redis.url();
    let app = spawn_app_with(Backend::Sqlite, &[("REDIS_URL", url.as_str())]).await;
    let user = email("outage");
    let before = app.register(&user, PASSWORD).await;
    let during = app.login(&user, PASSWORD).await;
    let mut lines = open_stream(&app).await;
    logout(&app, &before.access).await;
    next_revocation(&mut lines, &before.session_id, &[]).await;

    // Redis dies: the stream to the edges keeps flowing, within a second.
    redis.stop();
    logout(&app, &during.access).await;
    let logged_out = Instant::now();
    next_revocation(&mut lines, &during.session_id, &[]).await;
    assert!(
        logged_out.elapsed() < Duration::from_secs(1),
        "streamed after {:?} with Redis down",
        logged_out.elapsed()
    );
    let health = crate::helpers::json_body(app.get("health", None).await).await;
    assert_eq!(health["components"]["redis"], "down", "{health}");

    // A new (empty) Redis on the same port gets the whole recent set, including what was revoked
    // while it was away.
    let redis = RedisServer::start_on(port).await;
    let mut conn = redis.connection().await;
    let mut want = vec![before.session_id.clone(), during.session_id.clone()];
    want.sort();
    wait_for("auth:revoked re-published", Duration::from_secs(10), || {
        let mut conn = conn.clone();
        let want = want.clone();
        async move {
            let mut members: Vec<String> = redis::cmd("ZRANGE")
                .arg(auth_token::REDIS_REVOKED_SET)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .ok()?;
            members.sort();
            (members == want).then_some(())
        }
    })
    .await;
    let until: f64 = redis::cmd("ZSCORE")
        .arg(auth_token::REDIS_REVOKED_SET)
        .arg(&during.session_id)
        .query_async(&mut conn)
        .await
        .unwrap();
    #[allow(clippy::cast_possible_truncation)]
    let until = until as i64;
    assert_eq!(until, revoked_at(&app, &during.session_id).await + HORIZON);
}

/// Revokes a session directly in the database with the given stamp, as a replica whose clock
/// read came earlier (or later) than its commit would.
async fn revoke_stamped(app: &TestApp, session_id: &str, stamp: i64) {
    let updated = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE session_id = $2")
        .bind(stamp)
        .bind(session_id)
        .execute(&app.state.db)
        .await
        .expect("revoke")
        .rows_affected();
    assert_eq!(updated, 1);
}

async fn revocations_committed_out_of_order_are_streamed(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = email("order");
    let first = app.register(&user, PASSWORD).await;
    let later = app.login(&user, PASSWORD).await;
    let concurrent = app.login(&user, PASSWORD).await;
    let committed_meanwhile = app.login(&user, PASSWORD).await;
    let mut lines = open_stream(&app).await;
    let now = chrono::Utc::now().timestamp();

    // A revocation stamped later commits first...
    revoke_stamped(&app, &later.session_id, now + 5).await;
    next_revocation(&mut lines, &later.session_id, &[]).await;
    // ...then one stamped earlier (a replica that waited for a lock): it is still streamed.
    revoke_stamped(&app, &first.session_id, now - 5).await;
    next_revocation(&mut lines, &first.session_id, &[]).await;

    if backend == Backend::Postgres {
        // Two transactions at once: the one that started first (and took the lower log number)
        // commits last.
        let mut slow = app.state.db.begin().await.expect("begin");
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE session_id = $2")
            .bind(now)
            .bind(&concurrent.session_id)
            .execute(&mut *slow)
            .await
            .expect("revoke in the slow transaction");
        revoke_stamped(&app, &committed_meanwhile.session_id, now).await;
        next_revocation(&mut lines, &committed_meanwhile.session_id, &[]).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        slow.commit().await.expect("commit");
        next_revocation(&mut lines, &concurrent.session_id, &[]).await;
    }
}

/// Opens `app`'s revocation stream and reads its snapshot.
async fn open_stream(app: &TestApp) -> Lines {
    let response = app
        .client
        .get(app.url("revocations/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = Lines {
        response,
        buffer: Vec::new(),
    };
    assert_eq!(lines.next(Duration::from_secs(2)).await["type"], "snapshot");
    lines
}

/// With the safety-net poll at 10 minutes, a revocation still reaches the streams within a
/// second: the replica that revoked wakes its own feed, and on PostgreSQL every other replica's
/// (the revocation log's trigger NOTIFYs, the replicas LISTEN), even for a revocation written by
/// plain SQL.
async fn revocations_are_pushed_not_polled(backend: Backend) {
    let env = Env::new(backend).await;
    let slow_poll = [("REVOCATION_POLL_MS", "600000")];
    let a = spawn_on(&env, &slow_poll).await;
    let user = email("push");
    let first = a.register(&user, PASSWORD).await;
    let second = a.login(&user, PASSWORD).await;
    let third = a.login(&user, PASSWORD).await;
    let mut at_a = open_stream(&a).await;

    logout(&a, &first.access).await;
    next_revocation(&mut at_a, &first.session_id, &[]).await;
    if backend == Backend::Sqlite {
        return; // one process per SQLite database: there is no other replica to tell.
    }
    let b = spawn_on(&env, &slow_poll).await;
    let mut at_b = open_stream(&b).await;
    // Give B's listener its connection (it reads the log once connected, so nothing is lost
    // either way; this only makes the next step test the push rather than that first read).
    tokio::time::sleep(Duration::from_millis(300)).await;
    logout(&a, &second.access).await;
    next_revocation(&mut at_b, &second.session_id, &[&first.session_id]).await;
    next_revocation(&mut at_a, &second.session_id, &[]).await;
    // Not through a unit of work at all: the trigger still notifies every replica.
    revoke_stamped(&a, &third.session_id, a.clock.now()).await;
    next_revocation(&mut at_b, &third.session_id, &[&first.session_id]).await;
    next_revocation(&mut at_a, &third.session_id, &[]).await;
}

/// A Redis that restarted empty gets the recent set back, and nothing on the channel: the edges
/// that stayed subscribed have every revocation, and re-broadcasting the set to every edge would
/// cost the fleet size times the logout rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_redis_is_refilled_without_a_rebroadcast() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let url = redis.url();
    let app = spawn_app_with(Backend::Sqlite, &[("REDIS_URL", url.as_str())]).await;
    let tokens = app.register(&email("refill"), PASSWORD).await;
    logout(&app, &tokens.access).await;
    let mut conn = redis.connection().await;
    let in_set = |conn: &redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        let sid = tokens.session_id.clone();
        async move {
            redis::cmd("ZSCORE")
                .arg(auth_token::REDIS_REVOKED_SET)
                .arg(&sid)
                .query_async::<Option<f64>>(&mut conn)
                .await
                .ok()
                .flatten()
        }
    };
    wait_for(
        "the revocation in auth:revoked",
        Duration::from_secs(2),
        || in_set(&conn),
    )
    .await;

    // Redis restarts without its data; a subscriber listens on the channel from the start.
    redis.stop();
    let redis = RedisServer::start_on(port).await;
    conn = redis.connection().await;
    let mut pubsub = redis::Client::open(url.as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    pubsub
        .subscribe(auth_token::REDIS_REVOCATIONS_CHANNEL)
        .await
        .unwrap();
    let mut messages = pubsub.on_message();
    // Refilled within the 5 s check interval...
    wait_for("auth:revoked refilled", Duration::from_secs(8), || {
        in_set(&conn)
    })
    .await;
    // ... without a word on the channel.
    let message = tokio::time::timeout(Duration::from_millis(1500), messages.next()).await;
    assert!(
        message.is_err(),
        "the refill re-broadcast: {:?}",
        message.map(|m| m.map(|m| m.get_payload::<String>()))
    );
    // New revocations are still published, once.
    let other = app.register(&email("refill-2"), PASSWORD).await;
    logout(&app, &other.access).await;
    let message = tokio::time::timeout(Duration::from_secs(2), messages.next())
        .await
        .expect("the new revocation on the channel")
        .unwrap();
    let line: Value = serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(line["sid"], other.session_id.as_str(), "{line}");
    let again = tokio::time::timeout(Duration::from_millis(500), messages.next()).await;
    assert!(again.is_err(), "published twice");
}
