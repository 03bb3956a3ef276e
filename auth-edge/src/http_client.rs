//! A minimal HTTP(S) GET client: one connection per request over hyper's http1 connection API,
//! TLS from [`crate::tls`] for `https://`.
//!
//! The edge makes two kinds of outgoing requests, both rare: a JWKS fetch (every few minutes)
//! and the long-lived revocation stream. Neither benefits from pooling, and a pooled client (or
//! reqwest) would add dependencies to the binary that sits in front of every request.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, Uri};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::tls::TlsClient;

/// Why an outgoing request failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// DNS, connect or I/O failure.
    #[error("connection failed: {0}")]
    Connect(#[from] std::io::Error),
    /// HTTP protocol failure.
    #[error("http error: {0}")]
    Http(#[from] hyper::Error),
    /// The server did not answer in time.
    #[error("timed out")]
    Timeout,
    /// A non-2xx answer.
    #[error("unexpected status {0}")]
    Status(http::StatusCode),
    /// The answer could not be used.
    #[error("bad response: {0}")]
    Body(String),
    /// The URL cannot be requested (no host, bad header value).
    #[error("bad request: {0}")]
    Request(String),
}

/// Sends `GET uri` and returns the response head once it arrives (within `timeout`); the body
/// streams afterwards and the caller bounds it. `bearer` adds `Authorization: Bearer ...`.
pub async fn get(
    uri: &Uri,
    tls: &TlsClient,
    accept: &'static str,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<Response<Incoming>, FetchError> {
    tokio::time::timeout(timeout, get_inner(uri, tls, accept, bearer))
        .await
        .map_err(|_| FetchError::Timeout)?
}

async fn get_inner(
    uri: &Uri,
    tls: &TlsClient,
    accept: &'static str,
    bearer: Option<&str>,
) -> Result<Response<Incoming>, FetchError> {
    let authority = uri
        .authority()
        .ok_or_else(|| FetchError::Request("URL has no host".into()))?;
    // `Uri::host` keeps the brackets of an IPv6 literal; the resolver wants them off.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let https = uri.scheme_str() == Some("https");
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    let mut sender = if https {
        // A certificate the roots do not vouch for is an I/O error naming the reason.
        handshake(TokioIo::new(tls.connect(host, stream).await?)).await?
    } else {
        handshake(TokioIo::new(stream)).await?
    };

    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::get(path)
        .header(header::HOST, authority.as_str())
        .header(header::ACCEPT, accept)
        .header(
            header::USER_AGENT,
            concat!("auth-edge/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Request(e.to_string()))?;
    if let Some(token) = bearer {
        let mut value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| FetchError::Request("token is not a valid header value".into()))?;
        value.set_sensitive(true);
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    Ok(response)
}

/// The HTTP/1 handshake over any stream; the connection task ends when the response body is
/// finished or dropped.
async fn handshake<T>(
    io: T,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, FetchError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "outgoing connection ended with an error");
        }
    });
    Ok(sender)
}
