//! Envoy external authorization over gRPC (`envoy.service.auth.v3.Authorization/Check`), served
//! on `AUTH_EDGE_GRPC_LISTEN`.
//!
//! The same [`Decision`] as the forward-auth endpoint, rendered in Envoy's terms: an OK
//! `CheckResponse` whose `ok_response.headers` overwrite `x-user-id`, `x-session-id` and
//! `x-user-role` on the upstream request, or a denial carrying the HTTP status (401, or 503 while
//! no keys are loaded), `no-store` and the RFC 6750 challenge for the client; a browser's
//! navigation sent to the login page is a denial with `302` and `Location`, its return URL made
//! of the request attributes `scheme`, `host` and `path` when Envoy is a trusted proxy.
//!
//! - [`proto`]: the hand-written protobuf messages.
//! - [`grpc`]: the HTTP/2 listener and gRPC framing.

pub mod grpc;
pub mod proto;

use std::net::IpAddr;

use http::header::{ACCEPT, AUTHORIZATION, COOKIE, HOST, ORIGIN, REFERER};
use http::{HeaderName, HeaderValue, Method};

use crate::browser::OriginalUrl;
use crate::decision::{Access, Decision, Redirect, Rejection};
use crate::identity::{self, HeaderNames, Identity, IdentityHeaders};
use crate::verifier::{RequestView, Verifier};
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
    /// Denied: a good credential from the wrong place (a cross-site request).
    pub const PERMISSION_DENIED: i32 = 7;
    /// Denied: the edge cannot decide (no keys loaded).
    pub const UNAVAILABLE: i32 = 14;
}

/// The HTTP request Envoy asks about, if the check carries one.
fn http_request(request: &CheckRequest) -> Option<&proto::HttpRequest> {
    request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
}

/// The headers the decision reads: the credentials, what the CSRF check needs, and what tells
/// a navigation or a CORS preflight ([`crate::browser`]). `:authority` is Envoy's name for the
/// request's host.
static DECISION_HEADERS: [(&str, HeaderName); 13] = [
    ("authorization", AUTHORIZATION),
    ("cookie", COOKIE),
    ("origin", ORIGIN),
    ("referer", REFERER),
    ("accept", ACCEPT),
    ("sec-fetch-site", HeaderName::from_static("sec-fetch-site")),
    ("sec-fetch-mode", HeaderName::from_static("sec-fetch-mode")),
    ("sec-fetch-dest", HeaderName::from_static("sec-fetch-dest")),
    ("sec-fetch-user", HeaderName::from_static("sec-fetch-user")),
    (
        "access-control-request-method",
        HeaderName::from_static("access-control-request-method"),
    ),
    ("host", HOST),
    (":authority", HOST),
    (
        "x-forwarded-host",
        HeaderName::from_static("x-forwarded-host"),
    ),
];

/// The method of the request Envoy asks about (GET when the check carries none).
pub fn request_method(request: &CheckRequest) -> Method {
    http_request(request)
        .and_then(|http| Method::from_bytes(http.method.as_bytes()).ok())
        .unwrap_or(Method::GET)
}

/// The request headers the decision needs, from either header encoding Envoy may use. Only
/// `DECISION_HEADERS` are copied: the verifier reads nothing else, and copying every header
/// of every request would cost more than the check itself on a cache hit.
pub fn credential_headers(request: &CheckRequest) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    let Some(http) = http_request(request) else {
        return headers;
    };
    let mut add = |name: &str, value: &[u8]| {
        let Some((_, name)) = DECISION_HEADERS
            .iter()
            .find(|(known, _)| name.eq_ignore_ascii_case(known))
        else {
            return;
        };
        let name = name.clone();
        // A value that is not a valid header value cannot carry a usable token either.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    };
    for (name, value) in &http.headers {
        add(name, value.as_bytes());
    }
    if let Some(map) = &http.header_map {
        for h in &map.headers {
            let value = if h.raw_value.is_empty() {
                h.value.as_bytes()
            } else {
                &h.raw_value
            };
            add(&h.key, value);
        }
    }
    if !http.host.is_empty() && !headers.contains_key(HOST) {
        if let Ok(value) = HeaderValue::from_str(&http.host) {
            headers.insert(HOST, value);
        }
    }
    headers
}

/// Whether the request to authorize carries client-sent identity headers (worth a debug line:
/// Envoy replaces them, but someone tried).
fn has_identity_headers(request: &CheckRequest, names: &HeaderNames) -> bool {
    let Some(http) = http_request(request) else {
        return false;
    };
    http.headers.keys().any(|k| names.matches(k))
        || http
            .header_map
            .as_ref()
            .is_some_and(|m| m.headers.iter().any(|h| names.matches(&h.key)))
}

/// The original URL from Envoy's request attributes, for the login redirect's return URL.
fn original_url(request: &CheckRequest) -> Option<OriginalUrl<'_>> {
    let http = http_request(request)?;
    Some(OriginalUrl {
        scheme: &http.scheme,
        authority: &http.host,
        path_and_query: &http.path,
    })
}

/// Decides one `Check` call from Envoy at `peer`.
pub async fn check(
    verifier: &Verifier,
    request: &CheckRequest,
    peer: Option<IpAddr>,
) -> CheckResponse {
    if has_identity_headers(request, verifier.header_names()) {
        tracing::debug!("request carries client-sent identity headers (Envoy overwrites them)");
    }
    let headers = credential_headers(request);
    let method = request_method(request);
    let view = RequestView {
        headers: &headers,
        method: &method,
        original_url: if verifier.browser().reads_return_url(peer) {
            original_url(request)
        } else {
            None
        },
    };
    let decision = verifier.decide_request(&view, Access::Required).await;
    render_for(
        &decision,
        &request_header_names(request),
        verifier.header_names(),
    )
}

/// The header names of the checked request, from either of Envoy's two encodings.
fn request_header_names(request: &CheckRequest) -> Vec<String> {
    let Some(http) = http_request(request) else {
        return Vec::new();
    };
    let mut names: Vec<String> = http.headers.keys().cloned().collect();
    if let Some(map) = http.header_map.as_ref() {
        names.extend(map.headers.iter().map(|h| h.key.clone()));
    }
    names
}

/// The `CheckResponse` for a decision on a request carrying headers named `request_headers`:
/// besides ours, every underscore variant of an identity header it carries is removed.
pub fn render_for(
    decision: &Decision,
    request_headers: &[String],
    names: &HeaderNames,
) -> CheckResponse {
    match decision {
        Decision::Allow(_) | Decision::Anonymous => {
            allow_for(decision.identity(), request_headers, names)
        }
        Decision::Deny(rejection) => deny(rejection),
        Decision::Redirect(redirect) => redirect_to_login(redirect),
    }
}

/// The `CheckResponse` for a decision, with the default identity header names.
pub fn render(decision: &Decision) -> CheckResponse {
    render_for(decision, &[], &HeaderNames::default())
}

/// The identity rule in Envoy's terms, collected by [`identity::strip_then_set`]: a header we
/// set goes out with `OVERWRITE_IF_EXISTS_OR_ADD`, which removes every client-sent value of that
/// name before adding ours; a header we strip without setting goes into `headers_to_remove`.
/// The two never name the same header: Envoy applies removals after the sets (ext_authz.cc,
/// `onComplete`), so listing a set header there would delete the identity we just set.
#[derive(Default)]
struct EnvoyHeaders {
    set: Vec<HeaderValueOption>,
    remove: Vec<String>,
    /// The names of the headers of the checked request (Envoy sends them lower-cased).
    request: Vec<String>,
}

impl IdentityHeaders for EnvoyHeaders {
    type Error = std::convert::Infallible;

    fn remove(&mut self, name: &HeaderName) -> bool {
        self.remove.push(name.as_str().to_owned());
        // Envoy holds the request: whether the client sent one is logged by `check`.
        false
    }

    fn names_where(&self, keep: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.request.iter().filter(|n| keep(n)).cloned().collect()
    }

    fn remove_named(&mut self, name: &str) -> bool {
        // An underscore variant is never a header we set, so it may always go to the removals.
        if !self.remove.iter().any(|n| n == name) {
            self.remove.push(name.to_owned());
        }
        true
    }

    fn set(&mut self, name: &HeaderName, value: HeaderValue) -> Result<(), Self::Error> {
        self.remove.retain(|n| n != name.as_str());
        // Identity values come from verified claims already checked to be header-safe; a
        // non-UTF-8 one cannot occur, and would be sent empty rather than lossy.
        self.set.push(HeaderValueOption::overwrite(
            name.as_str(),
            value.to_str().unwrap_or_default(),
        ));
        Ok(())
    }
}

/// An OK answer: the (default) identity headers overwritten with `identity`'s values (or all
/// removed, for an anonymous request).
pub fn allow(identity: Option<&Identity>) -> CheckResponse {
    allow_for(identity, &[], &HeaderNames::default())
}

fn allow_for(
    identity: Option<&Identity>,
    request_headers: &[String],
    names: &HeaderNames,
) -> CheckResponse {
    let mut headers = EnvoyHeaders {
        request: request_headers.to_vec(),
        ..EnvoyHeaders::default()
    };
    let Ok(_) = identity::strip_then_set(&mut headers, identity, names);
    CheckResponse {
        status: Some(Status {
            code: code::OK,
            message: String::new(),
        }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: headers.set,
            headers_to_remove: headers.remove,
        })),
    }
}

/// A denial: the HTTP status for the client (401 or 503), `no-store` and the challenge.
pub fn deny(rejection: &Rejection) -> CheckResponse {
    denied(rejection.status(), rejection.response_headers())
}

/// A navigation sent to the login page: `302`, `no-store` and `Location` for the browser.
pub fn redirect_to_login(redirect: &Redirect) -> CheckResponse {
    denied(Redirect::STATUS, redirect.response_headers())
}

fn denied(
    status: http::StatusCode,
    headers: impl Iterator<Item = (HeaderName, HeaderValue)>,
) -> CheckResponse {
    let headers = headers
        .map(|(name, value)| {
            HeaderValueOption::overwrite(name.as_str(), value.to_str().unwrap_or_default())
        })
        .collect();
    let grpc_code = match status {
        http::StatusCode::SERVICE_UNAVAILABLE => code::UNAVAILABLE,
        http::StatusCode::FORBIDDEN => code::PERMISSION_DENIED,
        _ => code::UNAUTHENTICATED,
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
    use prost::Message;

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

    fn ok_headers(r: CheckResponse) -> (Vec<(String, String, i32)>, Vec<String>) {
        assert_eq!(r.status.unwrap().code, code::OK);
        let Some(HttpResponse::OkResponse(ok)) = r.http_response else {
            panic!("not ok")
        };
        let set = ok
            .headers
            .iter()
            .map(|h| {
                let v = h.header.as_ref().unwrap();
                (v.key.clone(), v.value.clone(), h.append_action)
            })
            .collect();
        (set, ok.headers_to_remove)
    }

    #[test]
    fn allow_overwrites_and_never_removes_what_it_sets() {
        let id = crate::identity::Identity::for_tests("u1");
        let (set, removed) = ok_headers(allow(Some(&id)));
        let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
        let set: Vec<(&str, &str, i32)> = set
            .iter()
            .map(|(k, v, a)| (k.as_str(), v.as_str(), *a))
            .collect();
        assert_eq!(
            set,
            [
                ("x-user-id", "u1", overwrite),
                ("x-session-id", "u1", overwrite),
                ("x-user-role", "1", overwrite)
            ]
        );
        // Envoy removes after setting: listing them here would drop our own values (checked
        // against Envoy 1.40 in the gRPC peer test).
        assert!(removed.is_empty());

        // Anonymous: nothing set, every identity header removed.
        let (set, removed) = ok_headers(render(&Decision::Anonymous));
        assert!(set.is_empty());
        assert_eq!(removed, ["x-user-id", "x-session-id", "x-user-role"]);

        // Underscore variants the request carries are removed too, beside our own values.
        let sent = [
            "x_user_id".to_owned(),
            "x-session_id".to_owned(),
            "x_other".to_owned(),
        ];
        let (set, removed) = ok_headers(render_for(
            &Decision::Allow(std::sync::Arc::new(id)),
            &sent,
            &HeaderNames::default(),
        ));
        assert_eq!(set.len(), 3);
        assert_eq!(removed, ["x_user_id", "x-session_id"]);
        let (_, removed) = ok_headers(render_for(
            &Decision::Anonymous,
            &sent,
            &HeaderNames::default(),
        ));
        assert_eq!(
            removed,
            [
                "x_user_id",
                "x-session_id",
                "x-user-id",
                "x-session-id",
                "x-user-role"
            ]
        );
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

        let r = render(&Decision::Redirect(Redirect {
            location: http::HeaderValue::from_static("https://login.example/?rd=x"),
            rejection: Rejection::Missing,
        }));
        assert_eq!(r.status.unwrap().code, code::UNAUTHENTICATED);
        let Some(HttpResponse::DeniedResponse(d)) = r.http_response else {
            panic!("not denied")
        };
        assert_eq!(d.status.unwrap().code, 302);
        let location = d
            .headers
            .iter()
            .find_map(|h| h.header.as_ref().filter(|h| h.key == "location"))
            .unwrap();
        assert_eq!(location.value, "https://login.example/?rd=x");

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
        assert_eq!(h.len(), 2, "only the decision's headers are copied");
        assert_eq!(h[COOKIE], "a=1; access_token=t");
        assert_eq!(h[AUTHORIZATION], "Bearer raw");
        assert!(has_identity_headers(&request, &HeaderNames::default()));
        assert!(credential_headers(&CheckRequest::default()).is_empty());
    }

    #[test]
    fn the_csrf_check_sees_method_origin_and_authority() {
        let mut http = super::proto::HttpRequest {
            method: "POST".into(),
            ..Default::default()
        };
        for (k, v) in [
            (":authority", "api.example.com"),
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
            ("x-other", "dropped"),
        ] {
            http.headers.insert(k.into(), v.into());
        }
        let request = CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(super::proto::Request { http: Some(http) }),
            }),
        };
        let h = credential_headers(&request);
        assert_eq!(h[HOST], "api.example.com");
        assert_eq!(h[ORIGIN], "https://evil.example");
        assert_eq!(h["sec-fetch-site"], "cross-site");
        assert_eq!(h.len(), 3);
        assert_eq!(request_method(&request), Method::POST);
        assert_eq!(request_method(&CheckRequest::default()), Method::GET);

        let r = deny(&Rejection::CrossSite);
        assert_eq!(r.status.unwrap().code, code::PERMISSION_DENIED);
        let Some(HttpResponse::DeniedResponse(d)) = r.http_response else {
            panic!("not denied")
        };
        assert_eq!(d.status.unwrap().code, 403);
    }
}
