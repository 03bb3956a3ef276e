//! The request headers carried by a `CheckRequest`, in either encoding Envoy may use (`headers`,
//! or `header_map` with `encode_raw_headers`). Free of the verifier and of I/O, so the fuzz crate
//! (`fuzz/`) compiles this file directly.

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderValue;

use super::proto::{self, CheckRequest};
use crate::request::IDENTITY_HEADERS;

/// The HTTP request Envoy asks about, if the check carries one.
fn http_request(request: &CheckRequest) -> Option<&proto::HttpRequest> {
    request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
}

/// The request headers the decision needs, from either header encoding Envoy may use. Only
/// `authorization` and `cookie` are copied: the verifier reads nothing else, and copying every
/// header of every request would cost more than the check itself on a cache hit.
pub fn credential_headers(request: &CheckRequest) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    let Some(http) = http_request(request) else {
        return headers;
    };
    let mut add = |name: &str, value: &[u8]| {
        let name = if name.eq_ignore_ascii_case(AUTHORIZATION.as_str()) {
            AUTHORIZATION
        } else if name.eq_ignore_ascii_case(COOKIE.as_str()) {
            COOKIE
        } else {
            return;
        };
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
    headers
}

/// Whether the request to authorize carries client-sent identity headers (worth a debug line:
/// Envoy replaces them, but someone tried).
pub fn has_identity_headers(request: &CheckRequest) -> bool {
    let Some(http) = http_request(request) else {
        return false;
    };
    let named = |name: &str| {
        IDENTITY_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_str()))
    };
    http.headers.keys().any(|k| named(k))
        || http
            .header_map
            .as_ref()
            .is_some_and(|m| m.headers.iter().any(|h| named(&h.key)))
}
