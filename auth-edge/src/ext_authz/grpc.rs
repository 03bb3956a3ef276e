//! The gRPC side of ext_authz: one unary method over HTTP/2 cleartext (what Envoy's `envoy_grpc`
//! client speaks to a cluster with `http2_protocol_options`), framed by hand.
//!
//! A unary gRPC call is a POST whose body is one length-prefixed message (1 byte "compressed"
//! flag, 4 bytes big-endian length) and whose answer is one such message followed by a
//! `grpc-status` trailer. That is small enough to implement over hyper's HTTP/2 server directly,
//! which keeps tonic (and its tower/axum stack) out of the binary. We never advertise
//! `grpc-accept-encoding`, so well-behaved clients never compress.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame};
use prost::Message;

use super::proto::CheckRequest;
use crate::verifier::Verifier;

/// The one method served.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// A CheckRequest carries the request's headers (and a body only if the filter is told to send
/// one); 1 MiB is far above any sane header block.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Bound on receiving the request message (Envoy sends it at once; a stalled peer must not hold
/// a stream forever).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `google.rpc.Code` values for transport-level failures.
mod code {
    pub(super) const OK: u16 = 0;
    pub(super) const DEADLINE_EXCEEDED: u16 = 4;
    pub(super) const RESOURCE_EXHAUSTED: u16 = 8;
    pub(super) const UNIMPLEMENTED: u16 = 12;
    pub(super) const INTERNAL: u16 = 13;
}

/// A gRPC response body: at most one data frame, then the trailers.
#[derive(Debug, Default)]
pub struct GrpcBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

fn grpc_response(body: GrpcBody) -> Response<GrpcBody> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// A "trailers-only" answer: the status in the response head, no body.
fn failure(grpc_status: u16, message: &'static str) -> Response<GrpcBody> {
    let mut response = grpc_response(GrpcBody::default());
    let headers = response.headers_mut();
    headers.insert("grpc-status", HeaderValue::from(grpc_status));
    headers.insert("grpc-message", HeaderValue::from_static(message));
    response
}

/// One message, then `grpc-status: 0`.
fn success(message: &impl Message) -> Response<GrpcBody> {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    // encoded_len of a CheckResponse is a few hundred bytes; u32 cannot overflow.
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer with enough capacity cannot fail.
    let _ = message.encode(&mut buf);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code::OK));
    grpc_response(GrpcBody {
        data: Some(buf.freeze()),
        trailers: Some(trailers),
    })
}

/// Why a request message could not be read.
enum ReadError {
    TooLarge,
    Malformed(&'static str),
    Compressed,
    Timeout,
}

/// Reads and unframes exactly one message.
async fn read_message<B>(body: B) -> Result<Bytes, ReadError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = Limited::new(body, MAX_MESSAGE_BYTES + 5);
    let collected = match tokio::time::timeout(READ_TIMEOUT, limited.collect()).await {
        Err(_) => return Err(ReadError::Timeout),
        Ok(Err(e)) => {
            return Err(if e.is::<http_body_util::LengthLimitError>() {
                ReadError::TooLarge
            } else {
                ReadError::Malformed("request body could not be read")
            })
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let Some((head, rest)) = collected.split_first_chunk::<5>() else {
        return Err(ReadError::Malformed("truncated message"));
    };
    if head[0] != 0 {
        return Err(ReadError::Compressed);
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len != rest.len() {
        // A unary request carries exactly one message.
        return Err(ReadError::Malformed(
            "message length does not match the body",
        ));
    }
    Ok(collected.slice(5..))
}

/// Answers one HTTP/2 request on the gRPC listener.
pub async fn handle<B>(verifier: Arc<Verifier>, request: Request<B>) -> Response<GrpcBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if request.method() != Method::POST || request.uri().path() != CHECK_PATH {
        return failure(code::UNIMPLEMENTED, "unknown method");
    }
    let is_grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if !is_grpc {
        // The gRPC spec's answer to a non-gRPC client.
        let mut response = Response::new(GrpcBody::default());
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return response;
    }
    let (parts, body) = request.into_parts();
    let request_peer = Request::from_parts(parts, ());
    let message = match read_message(body).await {
        Ok(message) => message,
        Err(ReadError::TooLarge) => return failure(code::RESOURCE_EXHAUSTED, "message too large"),
        Err(ReadError::Compressed) => {
            return failure(code::UNIMPLEMENTED, "compression is not supported")
        }
        Err(ReadError::Timeout) => return failure(code::DEADLINE_EXCEEDED, "request timed out"),
        Err(ReadError::Malformed(why)) => return failure(code::INTERNAL, why),
    };
    let peer = crate::server::Peer::ip_of(&request_peer);
    let check = match CheckRequest::decode(message) {
        Ok(check) => check,
        Err(e) => {
            tracing::debug!(error = %e, "undecodable CheckRequest");
            return failure(code::INTERNAL, "invalid CheckRequest");
        }
    };
    success(&super::check(&verifier, &check, peer).await)
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;
    use crate::config::{Config, KeySource};

    fn verifier() -> Arc<Verifier> {
        Arc::new(Verifier::new(
            Config::for_tests(KeySource::File("/nonexistent".into())).verifier,
        ))
    }

    fn framed(message: &[u8], flag: u8) -> Bytes {
        let mut b = BytesMut::new();
        b.put_u8(flag);
        b.put_u32(u32::try_from(message.len()).unwrap());
        b.put_slice(message);
        b.freeze()
    }

    fn call(path: &str, body: Bytes) -> Request<Full<Bytes>> {
        Request::post(path)
            .header("content-type", "application/grpc")
            .body(Full::new(body))
            .unwrap()
    }

    async fn body_and_trailers(r: Response<GrpcBody>) -> (Bytes, Option<HeaderMap>) {
        let collected = r.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (collected.to_bytes(), trailers)
    }

    #[tokio::test]
    async fn answers_check_with_a_framed_message_and_ok_trailer() {
        // No keys: the decision is "unavailable", which is still a successful gRPC call.
        let r = handle(verifier(), call(CHECK_PATH, framed(&[], 0))).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/grpc");
        let (body, trailers) = body_and_trailers(r).await;
        assert_eq!(trailers.unwrap()["grpc-status"], "0");
        assert_eq!(body[0], 0);
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, body.len() - 5);
        let answer = super::super::proto::CheckResponse::decode(&body[5..]).unwrap();
        // No token in an empty request.
        assert_eq!(
            answer.status.unwrap().code,
            super::super::code::UNAUTHENTICATED
        );
    }

    #[tokio::test]
    async fn transport_errors_are_grpc_statuses() {
        let status = |r: &Response<GrpcBody>| r.headers()["grpc-status"].clone();
        let r = handle(verifier(), call("/other.Service/Check", Bytes::new())).await;
        assert_eq!(status(&r), "12");
        let r = handle(verifier(), call(CHECK_PATH, framed(b"x", 1))).await;
        assert_eq!(status(&r), "12", "compressed");
        let r = handle(verifier(), call(CHECK_PATH, Bytes::from_static(&[0, 0]))).await;
        assert_eq!(status(&r), "13", "truncated");
        let mut wrong_len = framed(b"abc", 0).to_vec();
        wrong_len.push(0);
        let r = handle(verifier(), call(CHECK_PATH, wrong_len.into())).await;
        assert_eq!(status(&r), "13", "length mismatch");
        let r = handle(verifier(), call(CHECK_PATH, framed(&[0xff, 0xff], 0))).await;
        assert_eq!(status(&r), "13", "not protobuf");
        let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
        let r = handle(verifier(), call(CHECK_PATH, framed(&big, 0))).await;
        assert_eq!(status(&r), "8");
        let not_grpc = Request::post(CHECK_PATH)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = handle(verifier(), not_grpc).await;
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
