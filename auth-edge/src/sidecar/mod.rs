//! The sidecar: a pingora reverse proxy in front of one application (`AUTH_EDGE_UPSTREAM`),
//! usually in the same pod, so the application needs no gateway that speaks forward-auth.
//!
//! [`SidecarProxy`] is one `ProxyHttp` impl rendering the verifier's [`Decision`]:
//! `request_filter` asks for it (on public paths a token is optional: verified if present, never
//! required) and answers a denial itself; `upstream_request_filter` applies the identity rule
//! ([`identity::strip_then_set`]) on every forwarded request, public ones too. Pingora brings the
//! proxying itself: hop-by-hop headers, pooling, timeouts, retries and drain (and upgrades
//! without a token, on public paths).
//!
//! Protocols: HTTP/1.1 and HTTP/2 cleartext (prior knowledge, as gRPC clients speak it) from
//! clients; an HTTP/2 request goes to the application over HTTP/2 too (gRPC needs trailers end
//! to end), an HTTP/1.1 one over HTTP/1.1. A gRPC call that is refused gets a gRPC answer
//! (`grpc-status` 16, 7 or 14) instead of a bare HTTP status. Authenticated upgrades (WebSocket)
//! go through the sidecar's own tunnel, which closes them when their session is revoked.
//!
//! Pingora owns its threads and runtimes ([`run`] blocks the calling thread until shutdown), so
//! the admin listener and the verifier's background work (keys, revocations) run on a separate
//! thread with their own small tokio runtime.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use auth_token::{TraceParent, REQUEST_ID, TRACEPARENT};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use pingora::apps::HttpServerOptions;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::protocols::http::HttpTask;
use pingora::proxy::{http_proxy_service_with_name, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::{Error, ErrorSource, ErrorType};

mod frames;
mod tunnel;

use crate::background;
use crate::browser;
use crate::config::Config;
use crate::decision::{Access, Decision, Redirect};
use crate::identity::{self, IdentityHeaders};
use crate::public_paths::PublicPaths;
use crate::server::{self, Protocol};
use crate::verifier::{RequestView, Verifier};

/// Connecting to an application in the same pod takes microseconds; seconds mean it is down.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on upstream silence while reading a response (every request has a timeout).
const UPSTREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// A rejected request's body is drained to keep the connection only if it is this small;
/// anything larger (or of unknown length) closes the connection instead of reading it.
const MAX_DRAINED_BODY: u64 = 64 * 1024;
/// Bound on draining that small body after a rejection.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// `AUTH_EDGE_UPSTREAM` is missing or does not resolve.
    #[error("AUTH_EDGE_UPSTREAM: {0}")]
    Upstream(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The admin thread's runtime could not be built.
    #[error("cannot start the admin runtime: {0}")]
    Runtime(std::io::Error),
}

/// Resolves `host:port` once at start-up: a name lookup per request would block pingora's
/// threads, and the application's address does not change during the pod's life.
pub fn resolve_upstream(raw: &str) -> Result<SocketAddr, SidecarError> {
    raw.to_socket_addrs()
        .map_err(|e| SidecarError::Upstream(format!("{raw}: {e}")))?
        .next()
        .ok_or_else(|| SidecarError::Upstream(format!("{raw} resolves to no address")))
}

/// Per-request state: the decision, once made (only forwarded requests have one).
#[derive(Default)]
pub struct RequestCtx {
    decision: Option<Decision>,
    /// This hop's span in the client's trace (or a new trace), and the request id.
    trace: Option<(TraceParent, String)>,
}

/// The upstream request as a header block for the identity rule.
struct Upstream<'a>(&'a mut RequestHeader);

impl IdentityHeaders for Upstream<'_> {
    type Error = Box<Error>;

    fn remove(&mut self, name: &HeaderName) -> bool {
        self.0.remove_header(name).is_some()
    }

    fn names_where(&self, keep: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.0.headers.names_where(keep)
    }

    fn remove_named(&mut self, name: &str) -> bool {
        self.0.remove_header(name).is_some()
    }

    fn set(&mut self, name: &HeaderName, value: HeaderValue) -> pingora::Result<()> {
        self.0.insert_header(name.clone(), value)
    }
}

/// The proxy logic: verify, then forward with our identity headers only.
pub struct SidecarProxy {
    verifier: Arc<Verifier>,
    upstream: SocketAddr,
    public_paths: PublicPaths,
}

impl SidecarProxy {
    /// A proxy to `upstream` using `verifier`.
    pub fn new(verifier: Arc<Verifier>, upstream: SocketAddr, public_paths: PublicPaths) -> Self {
        SidecarProxy {
            verifier,
            upstream,
            public_paths,
        }
    }

    /// What every forwarded request carries, public ones too: our identity headers only (the
    /// application trusts them, so only values we set may reach it), and the trace context.
    fn forwarding_headers(
        &self,
        upstream_request: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> pingora::Result<()> {
        let identity = ctx.decision.as_ref().and_then(Decision::identity);
        if identity::strip_then_set(
            &mut Upstream(upstream_request),
            identity,
            self.verifier.header_names(),
        )? {
            tracing::debug!("stripped client-sent identity headers");
        }
        // The upstream continues the client's trace from this hop, and logs the same request id.
        if let Some((trace, request_id)) = &ctx.trace {
            upstream_request.insert_header(TRACEPARENT, trace.to_string())?;
            upstream_request.insert_header(REQUEST_ID, request_id.as_str())?;
        }
        Ok(())
    }
}

/// Whether the request asks for an HTTP/1.1 upgrade (WebSocket). HTTP/2's extended CONNECT
/// (RFC 8441) is not offered: pingora does not support it.
fn upgrade_over_http1(session: &Session) -> bool {
    !session.is_http2() && session.is_upgrade_req()
}

/// Whether answering without reading the request body would still leave the connection usable
/// after a bounded drain. `Expect: 100-continue` clients wait for us before sending a body, and
/// chunked or large bodies would have to be read in full: close those instead.
fn can_keep_connection(headers: &HeaderMap) -> bool {
    if headers.contains_key(EXPECT) || headers.contains_key(TRANSFER_ENCODING) {
        return false;
    }
    match headers.get(CONTENT_LENGTH) {
        None => true,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|len| len <= MAX_DRAINED_BODY),
    }
}

/// This hop's trace context and request id, from the client's `traceparent` and `X-Request-Id`
/// (or new ones).
fn correlate(headers: &HeaderMap) -> (TraceParent, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let trace = TraceParent::continue_or_start(header(TRACEPARENT));
    let request_id = auth_token::request_id(header(REQUEST_ID), &trace);
    (trace, request_id)
}

/// Whether the request is a gRPC call (`application/grpc`, `application/grpc+proto`, ...).
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The gRPC status a refusal maps to: UNAUTHENTICATED (16), PERMISSION_DENIED (7),
/// UNAVAILABLE (14), else UNKNOWN (2).
fn grpc_status(status: StatusCode) -> u8 {
    match status {
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 2,
    }
}

/// A refusal as a gRPC "Trailers-Only" answer: HTTP 200, the status in `grpc-status`, no body.
/// gRPC clients read `grpc-status`; an HTTP 401 would reach the application as a transport
/// error (UNKNOWN or INTERNAL, depending on the library) instead of UNAUTHENTICATED.
async fn write_grpc_rejection(
    session: &mut Session,
    status: StatusCode,
    request_id: &str,
) -> pingora::Result<()> {
    let mut response = ResponseHeader::build(StatusCode::OK, Some(4))?;
    response.insert_header(CONTENT_TYPE, "application/grpc")?;
    response.insert_header("grpc-status", grpc_status(status).to_string())?;
    // Percent-encoded, as `grpc-message` must be.
    let message = match status {
        StatusCode::UNAUTHORIZED => "missing,%20invalid%20or%20revoked%20token",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::SERVICE_UNAVAILABLE => "cannot%20verify%20tokens%20now",
        _ => "refused",
    };
    response.insert_header("grpc-message", message)?;
    response.insert_header(REQUEST_ID, request_id)?;
    // One HEADERS frame that ends the stream, as "Trailers-Only" requires: pingora's
    // `write_response_header` would end the stream with a separate empty DATA frame, which gRPC
    // clients read as a broken stream (UNKNOWN).
    session
        .as_downstream_mut()
        .response_duplex_vec(vec![HttpTask::Header(Box::new(response), true)])
        .await
        .map(drop)
}

/// The same answer as the forward-auth endpoint: 401 with the RFC 6750 challenge (503 while no
/// keys are loaded), or a login redirect's 302 and `Location`; empty body, `no-store`. Written by hand rather than with
/// `respond_error`, which forces `Connection: close`: a client refreshing its token right after
/// a 401 should not pay for a new connection.
async fn write_rejection(
    session: &mut Session,
    status: StatusCode,
    headers: impl Iterator<Item = (HeaderName, HeaderValue)>,
    request_id: &str,
) -> pingora::Result<()> {
    let mut response = ResponseHeader::build(status, Some(5))?;
    for (name, value) in headers {
        response.insert_header(name, value)?;
    }
    response.insert_header(REQUEST_ID, request_id)?;
    response.insert_header(CONTENT_LENGTH, "0")?;
    if can_keep_connection(&session.req_header().headers) {
        // Pingora closes a connection whose request body is unread when the response starts;
        // for a small body it is cheaper to drain it (after the response) and keep the
        // connection.
        let downstream = session.as_downstream_mut();
        downstream.set_close_on_response_before_downstream_finish(false);
        downstream.set_total_drain_timeout(Some(DRAIN_TIMEOUT));
    } else {
        session.set_keepalive(None);
    }
    session
        .write_response_header(Box::new(response), true)
        .await
}

#[async_trait]
impl ProxyHttp for SidecarProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::default()
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let (trace, request_id) = correlate(&session.req_header().headers);
        let access = if self.public_paths.is_public(session.req_header().uri.path()) {
            Access::Optional
        } else {
            Access::Required
        };
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(SocketAddr::ip);
        let trusted = self.verifier.browser().reads_return_url(peer);
        let request = session.req_header();
        let target = request
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let view = RequestView {
            headers: &request.headers,
            method: &request.method,
            original_url: self
                .verifier
                .browser()
                .login
                .as_ref()
                .and_then(|_| browser::own_url(&request.headers, target, trusted)),
        };
        match self.verifier.decide_request(&view, access).await {
            Decision::Deny(rejection) if is_grpc(&request.headers) => {
                write_grpc_rejection(session, rejection.status(), &request_id).await?;
                Ok(true)
            }
            Decision::Deny(rejection) => {
                write_rejection(
                    session,
                    rejection.status(),
                    rejection.response_headers(),
                    &request_id,
                )
                .await?;
                Ok(true)
            }
            Decision::Redirect(redirect) => {
                write_rejection(
                    session,
                    Redirect::STATUS,
                    redirect.response_headers(),
                    &request_id,
                )
                .await?;
                Ok(true)
            }
            forwarded => {
                ctx.decision = Some(forwarded);
                ctx.trace = Some((trace, request_id));
                let identity = ctx.decision.as_ref().and_then(Decision::identity);
                let (Some(identity), true) = (identity, upgrade_over_http1(session)) else {
                    return Ok(false);
                };
                // An authenticated upgrade: tunnelled by us, so a revocation can close it.
                let watch = tunnel::Watch {
                    verifier: self.verifier.clone(),
                    sid: identity.session_id().to_owned(),
                };
                let mut request = session.req_header().clone();
                self.forwarding_headers(&mut request, ctx)?;
                let request_id = ctx.trace.as_ref().map_or("", |(_, id)| id.as_str());
                tunnel::run(session, request, self.upstream, watch, request_id).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream, false, String::new());
        peer.options.connection_timeout = Some(UPSTREAM_CONNECT_TIMEOUT);
        peer.options.read_timeout = Some(UPSTREAM_READ_TIMEOUT);
        if session.is_http2() {
            // HTTP/2 in, HTTP/2 out (prior knowledge, cleartext): gRPC's trailers and streams
            // survive only end to end. An application that speaks HTTP/1.1 only gets HTTP/1.1
            // clients, which is what it already had.
            peer.options.set_http_version(2, 2);
        }
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        self.forwarding_headers(upstream_request, ctx)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // The client learns the request id unless the upstream named one itself.
        if let Some((_, request_id)) = &ctx.trace {
            if !upstream_response.headers.contains_key(REQUEST_ID) {
                upstream_response.insert_header(REQUEST_ID, request_id.as_str())?;
            }
        }
        Ok(())
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, error: &Error) -> bool {
        // A client hanging up mid-request is routine for a proxy; pingora would log it at ERROR.
        let routine = error.esource() == &ErrorSource::Downstream
            && matches!(
                error.etype(),
                ErrorType::ConnectionClosed
                    | ErrorType::ReadError
                    | ErrorType::WriteError
                    | ErrorType::ReadTimedout
                    | ErrorType::WriteTimedout
            );
        if routine {
            tracing::debug!(error = %error, "client went away");
        }
        routine
    }
}

/// Runs the sidecar until SIGTERM (graceful: listeners close, in-flight requests get
/// `AUTH_EDGE_DRAIN_SECONDS`) or SIGINT (immediate). Blocks the calling thread; call it from a
/// plain `main`, never inside a tokio runtime (pingora builds its own and would panic).
pub fn run(config: Config) -> Result<(), SidecarError> {
    let Config {
        serve,
        verifier: settings,
        revocations,
        log: _,
    } = config;
    let upstream_raw = serve
        .upstream
        .clone()
        .ok_or_else(|| SidecarError::Upstream("required in sidecar mode".into()))?;
    let upstream = resolve_upstream(&upstream_raw)?;

    // Bind the admin listener here, so a taken port fails start-up with a clear error. The
    // proxy port is checked the same way: pingora binds it later and would only log the error.
    let admin =
        std::net::TcpListener::bind(serve.admin_listen).map_err(|source| SidecarError::Bind {
            addr: serve.admin_listen,
            source,
        })?;
    admin
        .set_nonblocking(true)
        .map_err(|source| SidecarError::Bind {
            addr: serve.admin_listen,
            source,
        })?;
    drop(
        std::net::TcpListener::bind(serve.listen).map_err(|source| SidecarError::Bind {
            addr: serve.listen,
            source,
        })?,
    );

    let verifier = Arc::new(Verifier::new(settings));
    verifier.metrics().set_mode("sidecar");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("auth-edge-admin")
        .enable_all()
        .build()
        .map_err(SidecarError::Runtime)?;
    let v = verifier.clone();
    let drain = serve.drain;
    std::thread::Builder::new()
        .name("auth-edge-admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::spawn(background::run(v.clone(), revocations));
                let listener = match tokio::net::TcpListener::from_std(admin) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!(error = %e, "admin listener unusable");
                        return;
                    }
                };
                // Runs for the life of the process; pingora's shutdown ends the process.
                server::serve(
                    listener,
                    Protocol::Http1,
                    move |req| server::admin::handle(v.clone(), req),
                    std::future::pending::<()>(),
                    drain,
                )
                .await;
            });
        })
        .map_err(SidecarError::Runtime)?;

    let conf = ServerConf {
        threads: serve.worker_threads(),
        // Pingora closes its listeners at once on SIGTERM and then waits this long whatever is
        // in flight; its default (300 s) is longer than Kubernetes' 30 s grace.
        grace_period_seconds: Some(serve.drain.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut pingora = Server::new_with_opt_and_conf(None, conf);
    pingora.bootstrap();
    let mut proxy = http_proxy_service_with_name(
        &pingora.configuration,
        SidecarProxy::new(verifier, upstream, serve.public_paths.clone()),
        "auth-edge sidecar",
    );
    if let Some(app) = proxy.app_logic_mut() {
        // Clients speaking HTTP/2 without TLS (gRPC) are recognised by their preface; HTTP/1.1
        // clients are unaffected.
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        app.server_options = Some(options);
    }
    proxy.add_tcp(&serve.listen.to_string());
    pingora.add_service(proxy);
    tracing::info!(
        listen = %serve.listen,
        admin = %serve.admin_listen,
        upstream = %upstream,
        public_paths = ?serve.public_paths,
        threads = serve.worker_threads(),
        "auth-edge sidecar listening"
    );
    pingora.run(RunArgs::default());
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn keeps_the_connection_only_for_small_known_bodies() {
        let mut h = HeaderMap::new();
        assert!(can_keep_connection(&h));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("1024"));
        assert!(can_keep_connection(&h));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("10000000"));
        assert!(!can_keep_connection(&h));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("junk"));
        assert!(!can_keep_connection(&h));
        let mut h = HeaderMap::new();
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert!(!can_keep_connection(&h));
        let mut h = HeaderMap::new();
        h.insert(EXPECT, HeaderValue::from_static("100-continue"));
        assert!(!can_keep_connection(&h));
    }

    #[test]
    fn upstream_requests_get_only_our_identity() {
        let mut request = RequestHeader::build("GET", b"/", None).unwrap();
        request.insert_header("X-User-Id", "admin").unwrap();
        request.insert_header("x-user-role", "9").unwrap();
        request.insert_header("x-other", "kept").unwrap();
        let id = crate::identity::Identity::for_tests("u1");
        let names = crate::identity::HeaderNames::default();
        assert!(identity::strip_then_set(&mut Upstream(&mut request), Some(&id), &names).unwrap());
        let h = &request.headers;
        assert_eq!(h.get_all("x-user-id").iter().count(), 1);
        assert_eq!(h["x-user-id"], "u1");
        assert_eq!(h["x-user-role"], "1");
        assert_eq!(h["x-other"], "kept");
        // Anonymous (a public path): stripped, nothing set.
        assert!(identity::strip_then_set(&mut Upstream(&mut request), None, &names).unwrap());
        assert!(!identity::carries_identity_headers(&request.headers));
    }

    #[test]
    fn resolves_upstream_once() {
        assert_eq!(
            resolve_upstream("127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert!(resolve_upstream("localhost:8080").is_ok());
    }
}
