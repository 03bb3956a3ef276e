//! HTTP listeners (hyper 1): the forward-auth and admin listeners (HTTP/1.1), and the accept
//! loop the ext_authz gRPC listener (HTTP/2) shares with them.
//!
//! Two listeners rather than reserved paths on one: a forward-auth request may carry any path
//! (Envoy sends the original one), so `/metrics` or `/healthz` from a client must never be
//! answered as anything but a forward-auth check.

pub mod admin;
pub mod forward_auth;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// Bound on reading a request head: slow-loris protection.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle HTTP/2 connections are pinged this often, so a peer that vanished without a FIN (a
/// killed Envoy pod) does not hold the connection forever.
const H2_KEEPALIVE: Duration = Duration::from_secs(30);

/// Concurrent gRPC calls per HTTP/2 connection (Envoy opens more connections when it needs
/// more; its default limit per connection is far higher than a check needs).
const H2_STREAMS: u32 = 64;
/// Request headers of one HTTP/2 request (gRPC metadata), decoded size.
const H2_MAX_HEADER_LIST: u32 = 64 * 1024;
/// Bytes queued for sending per stream.
const H2_MAX_SEND_BUF: usize = 64 * 1024;
/// Flow-control window of a whole connection: how much a peer may send before we read.
const H2_CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;

/// The TCP peer of a request, in its extensions: the proxy (or client) that connected, whose
/// forwarded headers count only if it is a trusted proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Peer {
    /// The peer's address of a request served by [`serve`] (None for a hand-made request).
    pub fn ip_of<B>(request: &Request<B>) -> Option<std::net::IpAddr> {
        request.extensions().get::<Peer>().map(|p| p.0.ip())
    }
}

/// The protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (forward-auth subrequests, admin).
    Http1,
    /// HTTP/2 with prior knowledge, no TLS (gRPC from Envoy).
    Http2,
}

/// Serves `handler` on `listener` until `shutdown` resolves, then lets open requests finish for
/// up to `drain` before returning.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    protocol: Protocol,
    handler: H,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        // A header value with a control character (VT, FF, ...) is dropped, not answered with
        // a parser 400: nginx turns any auth_request status but 2xx/401/403 into a 500 for the
        // client. Without the header the request is judged on what remains (usually 401).
        .ignore_invalid_headers(true);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEPALIVE))
        // Bounds per connection: a Check message is at most 1 MiB (see ext_authz::grpc), so
        // these cap what one peer can make the edge buffer at about H2_STREAMS MiB.
        .max_concurrent_streams(H2_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .max_send_buf_size(H2_MAX_SEND_BUF)
        .initial_connection_window_size(H2_CONNECTION_WINDOW);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Forward-auth answers are tiny; Nagle would add up to 40 ms to each.
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            let response = handler(req);
            async move { Ok::<_, Infallible>(response.await) }
        });
        let io = TokioIo::new(stream);
        match protocol {
            Protocol::Http1 => {
                let conn = graceful.watch(http1.serve_connection(io, service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            Protocol::Http2 => {
                let conn = graceful.watch(http2.serve_connection(io, service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!(?drain, "drain timeout: closing remaining connections");
        }
    }
}
