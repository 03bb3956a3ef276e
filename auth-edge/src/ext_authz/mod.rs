//! Envoy external authorization over gRPC (`envoy.service.auth.v3.Authorization/Check`), served
//! on `AUTH_EDGE_GRPC_LISTEN`.
//!
//! The same decision as the forward-auth endpoint, in Envoy's terms: an OK `CheckResponse`
//! whose `ok_response.headers` overwrite `x-user-id`, `x-session-id` and `x-user-role` on the
//! upstream request, or a denial carrying the HTTP status (401, or 503 while no keys are loaded)
//! and the RFC 6750 challenge for the client.
//!
//! - [`proto`]: the hand-written protobuf messages.
//! - [`headers`]: the request headers a `CheckRequest` carries.
//! - [`grpc`]: the HTTP/2 listener and gRPC framing.

pub mod grpc;
pub mod headers;
pub mod proto;

pub use headers::credential_headers;

use http::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue};

use crate::request::IDENTITY_HEADERS;
use crate::verifier::{Rejection, Verifier};
use proto::{
    CheckRequest, CheckResponse, DeniedHttpResponse, HeaderValueOption, HttpResponse, HttpStatus,
    OkHttpResponse, Status,
};

/// `google.rpc.Code` values used in `CheckResponse.status`.
pub mod code {
    /// Allowed.
    pub const OK: i32 = 0;
    /// Denied: no or a bad credential.
    pub const UNAUTHENTICATED: i32 = 16;
    /// Denied: the edge cannot decide (no keys loaded).
    pub const UNAVAILABLE: i32 = 14;
}

/// Decides one `Check` call.
pub async fn check(verifier: &Verifier, request: &CheckRequest) -> CheckResponse {
    if headers::has_identity_headers(request) {
        tracing::debug!("request carries client-sent identity headers (Envoy overwrites them)");
    }
    match verifier.check_headers(&credential_headers(request)).await {
        Ok(identity) => allow(identity.headers()),
        Err(rejection) => {
            tracing::debug!(reason = %rejection, "request not authenticated");
            deny(&rejection)
        }
    }
}

/// An OK answer setting the identity headers.
///
/// Each header is sent with `OVERWRITE_IF_EXISTS_OR_ADD`, which removes every client-sent value
/// of that name before adding ours. The names are deliberately *not* listed in
/// `headers_to_remove` as well: Envoy applies removals after the sets (ext_authz.cc,
/// `onComplete`), so listing them would delete the identity we just set. `headers_to_remove`
/// carries only identity headers the edge does not set (none today; kept so that adding a
/// header to [`IDENTITY_HEADERS`] without a value cannot leak a client's).
pub fn allow(identity: impl Iterator<Item = (&'static HeaderName, HeaderValue)>) -> CheckResponse {
    let mut headers = Vec::with_capacity(IDENTITY_HEADERS.len());
    let mut set = Vec::with_capacity(IDENTITY_HEADERS.len());
    for (name, value) in identity {
        // Identity values come from verified claims already checked to be header-safe; a
        // non-UTF-8 one cannot occur, and would be sent empty rather than lossy.
        headers.push(HeaderValueOption::overwrite(
            name.as_str(),
            value.to_str().unwrap_or_default(),
        ));
        set.push(name);
    }
    let headers_to_remove = IDENTITY_HEADERS
        .iter()
        .filter(|h| !set.contains(h))
        .map(|h| h.as_str().to_owned())
        .collect();
    CheckResponse {
        status: Some(Status {
            code: code::OK,
            message: String::new(),
        }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
        })),
    }
}

/// A denial: the HTTP status for the client (401 or 503), the challenge, `no-store`.
pub fn deny(rejection: &Rejection) -> CheckResponse {
    let status = rejection.status();
    let mut headers = vec![HeaderValueOption::overwrite(
        CACHE_CONTROL.as_str(),
        "no-store",
    )];
    if let Some(challenge) = rejection.www_authenticate() {
        headers.push(HeaderValueOption::overwrite(
            WWW_AUTHENTICATE.as_str(),
            challenge.to_str().unwrap_or_default(),
        ));
    }
    let grpc_code = if status == http::StatusCode::SERVICE_UNAVAILABLE {
        code::UNAVAILABLE
    } else {
        code::UNAUTHENTICATED
    };
    CheckResponse {
        status: Some(Status {
            code: grpc_code,
            // Generic on purpose, like the HTTP answer: the reason is in the debug log.
            message: String::new(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status.as_u16()),
            }),
            headers,
            body: String::new(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use http::header::{AUTHORIZATION, COOKIE};
    use prost::Message;

    use super::headers::has_identity_headers;
    use super::proto::*;
    use super::*;

    /// Hand-encoded wire bytes with envoy's field numbers: CheckRequest.attributes (1) ->
    /// AttributeContext.request (4) -> Request.http (2) -> HttpRequest.headers (3, map entry
    /// key 1 / value 2) and .path (4). Decoding them proves the struct tags match the protos.
    #[test]
    fn decodes_envoy_field_numbers() {
        fn len_field(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag, u8::try_from(body.len()).unwrap()];
            out.extend_from_slice(body);
            out
        }
        let entry = [
            len_field(0x0a, b"authorization"),
            len_field(0x12, b"Bearer tok"),
        ]
        .concat();
        let http = [
            len_field(0x1a, &entry),      // headers = 3
            len_field(0x22, b"/orders"),  // path = 4
            len_field(0x0a, b"req-id-1"), // id = 1 (unknown here: skipped)
        ]
        .concat();
        let request = len_field(0x12, &http); // Request.http = 2
        let attributes = len_field(0x22, &request); // AttributeContext.request = 4
        let wire = len_field(0x0a, &attributes); // CheckRequest.attributes = 1

        let decoded = CheckRequest::decode(wire.as_slice()).unwrap();
        let http = decoded.attributes.unwrap().request.unwrap().http.unwrap();
        assert_eq!(http.path, "/orders");
        assert_eq!(http.headers["authorization"], "Bearer tok");
    }

    #[test]
    fn encodes_envoy_field_numbers() {
        let ok = CheckResponse {
            status: Some(Status {
                code: 0,
                message: String::new(),
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: vec![HeaderValueOption::overwrite("x-user-id", "u")],
                headers_to_remove: vec!["x-a".into()],
            })),
        }
        .encode_to_vec();
        // status (1) empty message, ok_response (3) { headers (2) { header (1) { key 1,
        // value 2 }, append_action (3) = 2 }, headers_to_remove (5) }.
        let expected: Vec<u8> = [
            &[0x0a, 0x00][..],
            &[0x1a, 25, 0x12, 18, 0x0a, 14, 0x0a, 9],
            b"x-user-id",
            &[0x12, 1, b'u', 0x18, 2, 0x2a, 3],
            b"x-a",
        ]
        .concat();
        assert_eq!(ok, expected);

        let denied = deny(&Rejection::Missing).encode_to_vec();
        let back = CheckResponse::decode(denied.as_slice()).unwrap();
        assert_eq!(back.status.unwrap().code, code::UNAUTHENTICATED);
        // denied_response (2) { status (1) { code (1) = 401 } ... }
        assert_eq!(&denied[..2], &[0x0a, 0x02]);
        assert_eq!(&denied[4..10], &[0x12, denied[5], 0x0a, 0x03, 0x08, 0x91]);
    }

    #[test]
    fn allow_overwrites_and_never_removes_what_it_sets() {
        let values = [
            http::HeaderValue::from_static("u1"),
            http::HeaderValue::from_static("s1"),
            http::HeaderValue::from_static("2"),
        ];
        let r = allow(IDENTITY_HEADERS.iter().zip(values.iter().cloned()));
        assert_eq!(r.status.unwrap().code, code::OK);
        let Some(HttpResponse::OkResponse(ok)) = r.http_response else {
            panic!("not ok")
        };
        let set: Vec<(&str, &str, i32)> = ok
            .headers
            .iter()
            .map(|h| {
                let v = h.header.as_ref().unwrap();
                (v.key.as_str(), v.value.as_str(), h.append_action)
            })
            .collect();
        let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
        assert_eq!(
            set,
            [
                ("x-user-id", "u1", overwrite),
                ("x-session-id", "s1", overwrite),
                ("x-user-role", "2", overwrite)
            ]
        );
        // Envoy removes after setting: listing them here would drop our own values (checked
        // against Envoy 1.40 in the gRPC peer test).
        assert!(ok.headers_to_remove.is_empty());
        let partial = allow(IDENTITY_HEADERS.iter().zip(values.iter().cloned()).take(2));
        let Some(HttpResponse::OkResponse(ok)) = partial.http_response else {
            panic!("not ok")
        };
        assert_eq!(ok.headers_to_remove, ["x-user-role"]);
    }

    #[test]
    fn denials_carry_status_and_challenge() {
        let r = deny(&Rejection::Expired);
        let Some(HttpResponse::DeniedResponse(d)) = r.http_response else {
            panic!("not denied")
        };
        assert_eq!(d.status.unwrap().code, 401);
        let challenge = d
            .headers
            .iter()
            .find_map(|h| h.header.as_ref().filter(|h| h.key == "www-authenticate"))
            .unwrap();
        assert_eq!(
            challenge.value,
            "Bearer realm=\"auth\", error=\"invalid_token\""
        );

        let r = deny(&Rejection::Unavailable);
        assert_eq!(r.status.unwrap().code, code::UNAVAILABLE);
        let Some(HttpResponse::DeniedResponse(d)) = r.http_response else {
            panic!("not denied")
        };
        assert_eq!(d.status.unwrap().code, 503);
        assert!(d
            .headers
            .iter()
            .all(|h| h.header.as_ref().unwrap().key != "www-authenticate"));
    }

    #[test]
    fn credentials_from_either_header_encoding() {
        let mut http = super::proto::HttpRequest::default();
        http.headers
            .insert("cookie".into(), "a=1; access_token=t".into());
        http.headers.insert("x-user-id".into(), "admin".into());
        http.header_map = Some(super::proto::HeaderMap {
            headers: vec![super::proto::HeaderValue {
                key: "Authorization".into(),
                value: String::new(),
                raw_value: b"Bearer raw".to_vec(),
            }],
        });
        let request = CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(super::proto::Request { http: Some(http) }),
            }),
        };
        let h = credential_headers(&request);
        assert_eq!(h.len(), 2, "only the credential headers are copied");
        assert_eq!(h[COOKIE], "a=1; access_token=t");
        assert_eq!(h[AUTHORIZATION], "Bearer raw");
        assert!(has_identity_headers(&request));
        assert!(credential_headers(&CheckRequest::default()).is_empty());
    }
}
