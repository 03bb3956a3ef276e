//! The state every handler receives: passed explicitly (axum `State`), never global, so each test
//! runs its own application.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::PasswordHasher;
use crate::domain::GeoIp;
use crate::keys::Keys;
use crate::store::Db;
use crate::unit_of_work::UnitOfWork;

/// What every handler and background task shares: one `Arc`, so the clone axum makes for every
/// request is one reference count, not one per field (measured: dropping the per-field clones
/// was ~3% of `GET /me`'s CPU). The fields are read through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The handle to `shared`.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    /// The configuration, as read at start-up.
    pub config: Arc<Config>,
    /// The database pool.
    pub db: Db,
    /// Swapped in place when the key files change (rotation); read with [`AppState::keys`].
    pub keys: Arc<std::sync::RwLock<Arc<Keys>>>,
    /// Password hashing, bounded.
    pub hasher: PasswordHasher,
    /// Client locations (disabled without a database).
    pub geoip: GeoIp,
    /// The time.
    pub clock: Clock,
    /// Wakes the email relay right after a transaction that queued an email commits.
    pub mail_notify: Arc<Notify>,
    /// Wakes this replica's revocation poller (a unit of work that revoked a session, or a
    /// PostgreSQL notification from another replica's).
    pub revocation_notify: Arc<tokio::sync::Notify>,
    /// New revocations, fanned out to the edges' revocation streams.
    pub revocations: tokio::sync::broadcast::Sender<auth_token::Revocation>,
    /// Cancelled when the server starts draining, so long-lived streams end and the graceful
    /// drain does not wait for them forever.
    pub draining: tokio_util::sync::CancellationToken,
    /// The Prometheus registry.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Request spans to the OpenTelemetry collector (`OTEL_EXPORTER_OTLP_ENDPOINT`), if set.
    pub otlp: Option<Arc<crate::otlp::Exporter>>,
    /// The rate-limit counters.
    pub limiter: Arc<crate::ratelimit::RateLimiter>,
    /// Shared Redis connection (reconnects by itself) when `REDIS_URL` is set.
    pub redis: Option<redis::aio::ConnectionManager>,
    /// The SMTP mailer when `SMTP_HOST` is set (health pings it).
    pub smtp: Option<Arc<crate::smtp::SmtpMailer>>,
    /// The Kafka producer when `KAFKA_BOOTSTRAP_SERVERS` is set (the relay and health use it).
    pub kafka: Option<rdkafka::producer::FutureProducer>,
    /// The last health check and when it ran: `/health` and `/health/ready` reuse it for a
    /// moment, so a flood of probes costs one check (see `routes::health`).
    pub health_cache:
        Arc<tokio::sync::Mutex<Option<(std::time::Instant, bool, serde_json::Value)>>>,
}

impl AppState {
    /// The keys in use now.
    pub fn keys(&self) -> Arc<Keys> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl AppState {
    /// Starts a unit of work (a write transaction with its outbox) at the current time.
    pub async fn unit_of_work(&self) -> sqlx::Result<UnitOfWork> {
        Ok(UnitOfWork::begin(&self.db, &self.config, self.clock.now())
            .await?
            .notify_mail(self.mail_notify.clone())
            .notify_revocations(self.revocation_notify.clone()))
    }
}
