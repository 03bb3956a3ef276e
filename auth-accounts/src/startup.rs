//! Building and running the application.
//!
//! [`Application::build`] does everything that can fail (configuration checks, database and
//! migrations, keys, listener) before serving, and exposes the bound port, so tests start the real
//! application on port 0 and the binary stays a thin wrapper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, Method};
use axum::Router;
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::clock::Clock;
use crate::config::{Config, CorsMode};
use crate::crypto::PasswordHasher;
use crate::domain::GeoIp;
use crate::http::{csrf, errors};
use crate::keys::Keys;
use crate::outbox::FileMailer;
use crate::routes;
use crate::state::AppState;
use crate::store;
use crate::tasks::Background;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The signing keys could not be loaded or generated.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    /// The listener could not bind.
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    /// Redis refused the connection.
    #[error("cannot connect to Redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// Redis did not answer.
    #[error("Redis did not answer within 5 s")]
    RedisTimeout,
    /// The password hasher could not be set up.
    #[error("password hashing: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
    /// The SMTP mailer could not be set up.
    #[error("SMTP: {0}")]
    Smtp(#[from] crate::smtp::SmtpError),
    /// The Kafka producer could not be created.
    #[error("Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The key reload task failed.
    #[error("key reload: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The service, built and bound: [`Application::run_until`] serves it (tests use port 0).
pub struct Application {
    listener: TcpListener,
    /// `METRICS_PORT`: `/metrics` alone on its own listener.
    metrics_listener: Option<TcpListener>,
    router: Router,
    state: AppState,
    background: Background,
}

/// How long a clean shutdown waits for background tasks to finish their current step.
const BACKGROUND_GRACE: Duration = Duration::from_secs(10);

impl Application {
    /// Opens the database, loads the keys, binds the listener and starts the background tasks.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Clock::default()).await
    }

    /// As [`Application::build`], with a clock the caller controls (tests move time forward).
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Self, StartError> {
        let addr = format!("{}:{}", config.http.host, config.http.port);
        let mut shared = build_shared(config, clock, CancellationToken::new()).await?;
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| StartError::Bind(addr, e))?;
        let metrics_listener = match shared.config.http.metrics_port {
            None => None,
            Some(port) => {
                let addr = format!("{}:{port}", shared.config.http.metrics_host);
                Some(
                    TcpListener::bind(&addr)
                        .await
                        .map_err(|e| StartError::Bind(addr, e))?,
                )
            }
        };
        let background = Background::new();
        if let Some(otlp) = shared.config.otlp.clone() {
            let (exporter, task) = crate::otlp::Exporter::start(otlp, background.token());
            background.spawn(task);
            shared.otlp = Some(exporter);
        }
        let state = AppState::new(shared);
        if state.config.workers.in_api_process {
            spawn_workers(&state, &background);
        } else {
            // The revocation feed is part of serving: edges stream from this process.
            spawn_revocation_feed(&state, &background);
        }
        spawn_key_reloader(&state, &background);
        let router = router(state.clone());
        Ok(Self {
            listener,
            metrics_listener,
            router,
            state,
            background,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The port of the `METRICS_PORT` listener, if there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// The state its handlers share.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, drains in-flight requests, then stops the background
    /// tasks and waits for them.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let draining = self.state.draining.clone();
        let metrics_server = self
            .metrics_listener
            .map(|listener| serve_metrics(listener, &self.state));
        let signal = async move {
            shutdown.await;
            draining.cancel();
        };
        let served = axum::serve(self.listener, service)
            .with_graceful_shutdown(signal)
            .await;
        // The API stopped for whatever reason: so does the metrics listener.
        self.state.draining.cancel();
        if let Some(task) = metrics_server {
            let _ = task.await;
        }
        self.background.shutdown(BACKGROUND_GRACE).await;
        served
    }
}

/// Serves `/metrics` alone on `listener` until the state's draining token is cancelled.
fn serve_metrics(listener: TcpListener, state: &AppState) -> tokio::task::JoinHandle<()> {
    let router = routes::metrics::router().with_state(state.clone());
    let stop = state.draining.clone();
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "metrics listener failed");
        }
    })
}

/// Runs only the background work (`auth-accounts worker`) until `shutdown` resolves.
pub async fn run_worker(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let state = build_state(config, Clock::default(), CancellationToken::new()).await?;
    // The worker's relay counters are scraped from `METRICS_PORT`, like the API's.
    let metrics_server = match state.config.http.metrics_port {
        None => None,
        Some(port) => {
            let addr = format!("{}:{port}", state.config.http.metrics_host);
            let listener = TcpListener::bind(&addr)
                .await
                .map_err(|e| StartError::Bind(addr, e))?;
            Some(serve_metrics(listener, &state))
        }
    };
    let background = Background::new();
    spawn_workers(&state, &background);
    spawn_key_reloader(&state, &background);
    tracing::info!(
        version = auth_telemetry::BUILD.version,
        commit = auth_telemetry::BUILD.commit,
        "auth-accounts worker running"
    );
    shutdown.await;
    state.draining.cancel();
    background.shutdown(BACKGROUND_GRACE).await;
    if let Some(task) = metrics_server {
        let _ = task.await;
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// Every route under `/api/v1/auth`, with the middleware in front of them.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.http.request_timeout_secs);
    let origins: Vec<HeaderValue> = state
        .config
        .http
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    // Credentials allowed for the configured origins only; never a wildcard.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT_LANGUAGE,
        ])
        .max_age(Duration::from_secs(600));
    let router = routes::router(&state)
        .layer(axum::middleware::from_fn(errors::error_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::check_origin,
        ))
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        // Inside the error body and the metrics, so a timeout gets the JSON body and is counted.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn(errors::error_body))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::http::metrics::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024));
    // CORS_MODE=gateway: the gateway adds its own headers; a second set would make browsers refuse.
    let router = match state.config.frontend.cors {
        CorsMode::Service => router.layer(cors),
        CorsMode::Gateway => router,
    };
    router
        .layer(axum::middleware::from_fn(
            crate::http::metrics::security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.otlp.clone(),
            crate::http::trace::correlate,
        ))
        .with_state(state)
}

/// Everything the API and the workers share: database (migrated), keys, Redis, SMTP, Kafka.
pub async fn build_state(
    config: Config,
    clock: Clock,
    draining: CancellationToken,
) -> Result<AppState, StartError> {
    build_shared(config, clock, draining)
        .await
        .map(AppState::new)
}

/// [`build_state`]'s fields, before anything holds them (the OTLP exporter is added then).
async fn build_shared(
    config: Config,
    clock: Clock,
    draining: CancellationToken,
) -> Result<crate::state::Shared, StartError> {
    let db = store::connect(&config).await?;
    let keys = Keys::load(&config)?;
    let hasher = PasswordHasher::new(&config.passwords)?;
    let geoip = GeoIp::open(config.geoip_db_path.as_deref());
    let redis = match &config.redis.url {
        None => None,
        Some(url) => {
            let client = redis::Client::open(url.expose_secret()).map_err(StartError::Redis)?;
            // Reachable at start, or start-up fails loudly; later outages are survived (the
            // manager reconnects, and callers fall back as documented in `ratelimit`).
            // Reconnect attempts at most 1 s apart (the default backoff grows to 60 s, so service
            // through Redis would resume a minute after it is back), each bounded.
            let manager_config = redis::aio::ConnectionManagerConfig::new()
                .set_max_delay(1000)
                .set_connection_timeout(Duration::from_secs(1))
                .set_response_timeout(Duration::from_secs(1));
            let manager = tokio::time::timeout(
                Duration::from_secs(5),
                redis::aio::ConnectionManager::new_with_config(client, manager_config),
            )
            .await
            .map_err(|_| StartError::RedisTimeout)?
            .map_err(StartError::Redis)?;
            Some(manager)
        }
    };
    let smtp = match config.email.smtp.host {
        Some(_) => Some(Arc::new(crate::smtp::SmtpMailer::new(&config.email)?)),
        None => None,
    };
    let kafka = match &config.kafka.bootstrap_servers {
        Some(servers) => Some(crate::kafka::producer(servers)?),
        None => None,
    };
    Ok(crate::state::Shared {
        config: Arc::new(config),
        db,
        keys: Arc::new(std::sync::RwLock::new(Arc::new(keys))),
        hasher,
        geoip,
        clock,
        mail_notify: Arc::new(Notify::new()),
        revocation_notify: Arc::new(Notify::new()),
        health_cache: Arc::default(),
        revocations: tokio::sync::broadcast::channel(1024).0,
        draining,
        metrics: Arc::new(crate::metrics::Metrics::new()),
        otlp: None,
        limiter: Arc::new(crate::ratelimit::RateLimiter::new(redis.clone())),
        redis,
        smtp,
        kafka,
    })
}

/// Reloads the key files and swaps them in when the published set changed (a rotation by
/// `auth-accounts rotate-keys`, or an operator replacing files). `Ok(true)` when keys changed.
pub async fn reload_keys(state: &AppState) -> Result<bool, StartError> {
    let config = state.config.clone();
    let keys = tokio::task::spawn_blocking(move || Keys::load(&config)).await??;
    let current = state.keys();
    if keys.fingerprint() == current.fingerprint() && keys.signing.kid() == current.signing.kid() {
        return Ok(false);
    }
    tracing::info!(kid = keys.signing.kid(), published = ?keys.fingerprint(), "signing keys reloaded");
    if let Ok(mut slot) = state.keys.write() {
        *slot = Arc::new(keys);
    }
    Ok(true)
}

fn spawn_key_reloader(state: &AppState, background: &Background) {
    let state = state.clone();
    let shutdown = background.token();
    background.spawn(async move {
        while crate::tasks::pause(&shutdown, Duration::from_secs(5)).await {
            if let Err(err) = reload_keys(&state).await {
                tracing::warn!(error = %err, "key reload failed; keeping the current keys");
            }
        }
    });
}

fn spawn_revocation_feed(state: &AppState, background: &Background) {
    let lifetime = state.config.token_lifetime();
    if let Some(redis) = &state.redis {
        let fanout = crate::revocations::RedisFanout::new(redis.clone());
        background.spawn(fanout.run(
            state.db.clone(),
            state.clock.clone(),
            lifetime,
            state.revocations.subscribe(),
            background.token(),
        ));
    }
    // PostgreSQL: other replicas' revocations wake this feed through LISTEN/NOTIFY (SQLite has a
    // single process, whose own units of work wake it).
    if !state.config.is_sqlite() {
        background.spawn(crate::revocations::listen(
            state.config.database.url.clone(),
            state.revocation_notify.clone(),
            background.token(),
        ));
    }
    background.spawn(crate::revocations::poll(
        crate::revocations::Poller {
            db: state.db.clone(),
            postgres: !state.config.is_sqlite(),
            clock: state.clock.clone(),
            lifetime,
            interval: Duration::from_millis(state.config.workers.revocation_poll_ms),
            wake: state.revocation_notify.clone(),
        },
        state.revocations.clone(),
        background.token(),
    ));
}

/// Starts the background work: revocation feed, email relay, Kafka relay, cleanup. Runs inside the
/// API process by default (`RUN_WORKERS=true`) or alone as `auth-accounts worker`.
pub fn spawn_workers(state: &AppState, background: &Background) {
    spawn_revocation_feed(state, background);
    let holder = format!(
        "{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "auth-accounts".into()),
        uuid::Uuid::new_v4().simple()
    );
    let config = &state.config;
    let mailer: Arc<dyn crate::outbox::Mailer> = match &state.smtp {
        Some(smtp) => smtp.clone(),
        None => Arc::new(FileMailer {
            dir: config.email.mail_dir.clone(),
            from: config.email.from_header(),
            log_links: !config.production,
        }),
    };
    let relay = crate::outbox::EmailRelay {
        db: state.db.clone(),
        mailer,
        clock: state.clock.clone(),
        metrics: state.metrics.clone(),
        unmarked: Arc::default(),
    };
    background.spawn(relay.run(state.mail_notify.clone(), background.token()));
    if let (Some(producer), Some(bootstrap)) = (&state.kafka, &config.kafka.bootstrap_servers) {
        let relay = crate::kafka::KafkaRelay {
            db: state.db.clone(),
            producer: producer.clone(),
            clock: state.clock.clone(),
            metrics: state.metrics.clone(),
            holder: holder.clone(),
            bootstrap: bootstrap.clone(),
            unmarked: Vec::new(),
            check_tail: true,
        };
        background.spawn(relay.run(background.token()));
    }
    background.spawn(crate::cleanup::run(
        state.db.clone(),
        state.clock.clone(),
        config.token_lifetime().horizon(),
        holder,
        Duration::from_secs(config.workers.cleanup_interval_secs),
        background.token(),
    ));
}
