//! Per-client request limits as a route layer: each feature router attaches the limit of its own
//! routes ([`per_client`]), so there is no table of paths to keep in step with the routes.
//!
//! The counter key is the client address and the route template, so every limited route has its
//! own window. The counting itself is [`crate::ratelimit::RateLimiter`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::config::RateLimitConfig;
use crate::error::ApiError;
use crate::http::client::client_ip;
use crate::metrics::RouteLabels;
use crate::ratelimit::Decision;
use crate::state::AppState;

/// Which configured limit (requests per minute per client address) a route has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `RATE_LIMIT_AUTH_PER_MINUTE`: login, registration, password reset, logout-others.
    Auth,
    /// `RATE_LIMIT_REFRESH_PER_MINUTE`.
    Refresh,
}

impl Limit {
    fn per_minute(self, config: &RateLimitConfig) -> u32 {
        match self {
            Self::Auth => config.auth_per_minute,
            Self::Refresh => config.refresh_per_minute,
        }
    }
}

/// The layer a feature router puts on its limited routes (`.route_layer(per_client(..))`).
pub(crate) fn per_client(state: &AppState, limit: Limit) -> PerClientLayer {
    PerClientLayer {
        state: state.clone(),
        limit,
    }
}

#[derive(Clone)]
pub(crate) struct PerClientLayer {
    state: AppState,
    limit: Limit,
}

impl<S> Layer<S> for PerClientLayer {
    type Service = PerClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PerClient {
            inner,
            state: self.state.clone(),
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub(crate) struct PerClient<S> {
    inner: S,
    state: AppState,
    limit: Limit,
}

impl<S> Service<Request> for PerClient<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was made ready serves this request; a fresh clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        let limit = self.limit;
        // Read what the check needs now: a request (its body) cannot be held across an await.
        let client = Client::of(&state, &req);
        Box::pin(async move {
            match check(&state, limit, client).await {
                Decision::Allowed => inner.call(req).await,
                Decision::Limited { retry_after_secs } => {
                    Ok(ApiError::TooManyRequests { retry_after_secs }.into_response())
                }
            }
        })
    }
}

/// The limited request: its route template, method and client address.
struct Client {
    route: String,
    method: String,
    ip: Option<std::net::IpAddr>,
}

impl Client {
    fn of(state: &AppState, req: &Request) -> Self {
        Self {
            route: req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            method: req.method().to_string(),
            ip: req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| client_ip(c.0.ip(), req.headers(), &state.config.http.trusted_proxies)),
        }
    }
}

async fn check(state: &AppState, limit: Limit, client: Client) -> Decision {
    let config = &state.config.rate_limit;
    if !config.enabled {
        return Decision::Allowed;
    }
    let key = format!("ip:{}:{}", config.client_key(client.ip), client.route);
    let decision = state
        .limiter
        .hit(&key, limit.per_minute(config), 60, state.clock.now())
        .await;
    if decision != Decision::Allowed {
        state
            .metrics
            .rate_limited
            .get_or_create(&RouteLabels {
                method: client.method,
                handler: client.route,
            })
            .inc();
    }
    decision
}

/// Whether another verification or reset email may go to `recipient` this hour
/// (`RATE_LIMIT_EMAILS_PER_RECIPIENT_PER_HOUR`), counted alike for every address, registered or
/// not. Over the limit the request is answered as usual and nothing is sent or changed (the last
/// link stays valid): the answer reveals nothing, and nobody can flood an inbox from many
/// addresses.
pub(crate) async fn recipient_allowed(state: &AppState, recipient: &str) -> bool {
    let config = &state.config.rate_limit;
    if !config.enabled {
        return true;
    }
    let decision = state
        .limiter
        .hit(
            &format!("mail:{recipient}"),
            config.emails_per_recipient_per_hour,
            3600,
            state.clock.now(),
        )
        .await;
    if decision != Decision::Allowed {
        tracing::info!("per-recipient email limit reached; nothing sent");
        return false;
    }
    true
}
