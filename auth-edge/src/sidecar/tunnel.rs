//! Authenticated upgrades (WebSocket) tunnelled by the sidecar itself, so that a connection
//! authorised before its session was revoked is closed when the revocation arrives.
//!
//! Pingora proxies upgraded connections well, but once upgraded none of our code runs until a
//! byte arrives: an idle WebSocket whose session was revoked would live on. So for an upgrade
//! request that carries an identity, the sidecar makes the handshake with the upstream itself
//! (hyper's HTTP/1 client, with the same identity headers as any forwarded request), relays the
//! answer, and after a `101` relays the bytes both ways while it waits on the revocation set.
//! When the session is revoked, or (fail-closed) once revocations have not been heard from for
//! longer than the staleness bound, it writes a Close frame to each side at a frame boundary
//! (1008 "session revoked", 1013 "revocations unknown"; framing is tracked, never decoded) and
//! closes both connections. A revocation reaches an open tunnel as fast as it reaches the
//! verifier: the set wakes the tunnels it concerns (a `watch` channel), no polling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, TRANSFER_ENCODING, UPGRADE};
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frames::{self, FrameCursor};
use crate::metrics::CloseReason;
use crate::revocations::FailMode;
use crate::verifier::Verifier;

/// How often an open tunnel checks that revocations are still being heard (fail-closed mode).
const STALENESS_CHECK: Duration = Duration::from_secs(1);
/// Relay buffer for upstream-to-client bytes.
const RELAY_BUFFER: usize = 16 * 1024;

/// The Close frame for `reason` (masked with `mask` towards the application).
fn close_frame(reason: CloseReason, mask: Option<[u8; 4]>) -> Vec<u8> {
    match reason {
        CloseReason::Revoked => {
            frames::close_frame(frames::POLICY_VIOLATION, "session revoked", mask)
        }
        CloseReason::Stale => {
            frames::close_frame(frames::TRY_AGAIN_LATER, "revocations unknown", mask)
        }
    }
}

/// What an open tunnel watches: its session in the verifier's revocation set.
pub(super) struct Watch {
    /// The verifier (revocation set, staleness, metrics).
    pub(super) verifier: Arc<Verifier>,
    /// The session id the tunnel was authorised with (empty: a foreign token without one; only
    /// staleness applies then).
    pub(super) sid: String,
}

impl Watch {
    fn check(&self) -> Option<CloseReason> {
        if !self.sid.is_empty() && self.verifier.revocations().is_revoked(&self.sid) {
            return Some(CloseReason::Revoked);
        }
        if self.verifier.staleness_policy().mode == FailMode::Closed
            && self.verifier.revocations_stale()
        {
            return Some(CloseReason::Stale);
        }
        None
    }
}

/// Whether a request asks for a WebSocket (the only upgrade whose framing we can close cleanly;
/// other protocols are closed without a Close frame).
fn is_websocket(request: &RequestHeader) -> bool {
    request
        .headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// Tunnels one upgrade request (already authorised, `request` already carrying our identity
/// headers) to `upstream`, and answers the client. Returns once both sides are closed.
pub(super) async fn run(
    session: &mut Session,
    request: RequestHeader,
    upstream: SocketAddr,
    watch: Watch,
    request_id: &str,
) -> pingora::Result<()> {
    // An upgraded connection is never reused; a refused upgrade closes too (simplest, and rare).
    session.set_keepalive(None);
    // Subscribe before the handshake: a revocation that lands during it still wakes us.
    let mut revocations = watch.verifier.revocations().subscribe();
    let websocket = is_websocket(&request);
    let mut response = match handshake(upstream, request).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %e, %upstream, "upgrade: upstream handshake failed");
            return session.respond_error(502).await;
        }
    };
    let mut header = ResponseHeader::build(response.status(), Some(response.headers().len() + 1))?;
    for (name, value) in response.headers() {
        header.append_header(name.clone(), value.clone())?;
    }
    if !header.headers.contains_key(auth_token::REQUEST_ID) {
        header.insert_header(auth_token::REQUEST_ID, request_id)?;
    }
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Refused (a 4xx from the application, say): relay its answer as a plain response.
        for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
            header.remove_header(&name);
        }
        session
            .write_response_header(Box::new(header), false)
            .await?;
        let body = response.body_mut();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| upstream_error("reading the refusal", &e))?;
            if let Ok(data) = frame.into_data() {
                session.write_response_body(Some(data), false).await?;
            }
        }
        return session.write_response_body(None, true).await;
    }
    session
        .write_response_header(Box::new(header), false)
        .await?;
    let upgraded = hyper::upgrade::on(&mut response)
        .await
        .map_err(|e| upstream_error("upgrading", &e))?;
    let metrics = watch.verifier.metrics_handle();
    metrics.tunnel_opened();
    let closed = relay(
        session,
        TokioIo::new(upgraded),
        &watch,
        &mut revocations,
        websocket,
    )
    .await;
    metrics.tunnel_closed(closed);
    if let Some(reason) = closed {
        tracing::info!(reason = reason.label(), "closed an upgraded connection");
    }
    // The client may already be gone; nothing is left to tell it.
    let _ = session.write_response_body(None, true).await;
    Ok(())
}

fn upstream_error(doing: &str, e: &hyper::Error) -> Box<pingora::Error> {
    pingora::Error::explain(
        pingora::ErrorType::ReadError,
        format!("upgrade: {doing}: {e}"),
    )
}

/// The upstream's answer to the upgrade request.
async fn handshake(
    upstream: SocketAddr,
    request: RequestHeader,
) -> Result<hyper::Response<Incoming>, String> {
    let tcp = tokio::time::timeout(
        super::UPSTREAM_CONNECT_TIMEOUT,
        TcpStream::connect(upstream),
    )
    .await
    .map_err(|_| "connect timed out".to_owned())?
    .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "upgrade: upstream connection ended");
        }
    });
    let mut parts: http::request::Parts = request.into();
    parts.version = http::Version::HTTP_11;
    let request = http::Request::from_parts(parts, Empty::<Bytes>::new());
    tokio::time::timeout(super::UPSTREAM_READ_TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| "no answer in time".to_owned())?
        .map_err(|e| format!("request: {e}"))
}

/// Relays bytes both ways until either side closes (None) or the watch closes the tunnel.
async fn relay(
    session: &mut Session,
    upstream: TokioIo<hyper::upgrade::Upgraded>,
    watch: &Watch,
    revocations: &mut tokio::sync::watch::Receiver<u64>,
    websocket: bool,
) -> Option<CloseReason> {
    let (mut up_read, mut up_write) = tokio::io::split(upstream);
    let (mut to_client, mut to_upstream) = (FrameCursor::default(), FrameCursor::default());
    let mut buf = vec![0u8; RELAY_BUFFER];
    let mut tick = tokio::time::interval(STALENESS_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut client_open = true;
    let mut closed = watch.check();
    while closed.is_none() {
        tokio::select! {
            body = session.read_request_body(), if client_open => match body {
                Ok(Some(data)) => {
                    to_upstream.feed(&data);
                    if up_write.write_all(&data).await.is_err() {
                        return None;
                    }
                }
                Ok(None) => {
                    // The client finished sending; the upstream may still answer.
                    client_open = false;
                    let _ = up_write.shutdown().await;
                }
                Err(_) => return None,
            },
            read = up_read.read(&mut buf) => match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    to_client.feed(&buf[..n]);
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    if session.write_response_body(Some(data), false).await.is_err() {
                        return None;
                    }
                }
            },
            changed = revocations.changed() => {
                if changed.is_ok() {
                    closed = watch.check();
                }
            }
            _ = tick.tick() => closed = watch.check(),
        }
    }
    let reason = closed?;
    if websocket {
        if to_client.at_boundary() {
            let frame = Bytes::from(close_frame(reason, None));
            let _ = session.write_response_body(Some(frame), false).await;
        }
        if to_upstream.at_boundary() {
            let mut mask = [0u8; 4];
            let _ = aws_lc_rs::rand::fill(&mut mask);
            let _ = up_write.write_all(&close_frame(reason, Some(mask))).await;
        }
    }
    let _ = up_write.shutdown().await;
    Some(reason)
}
