//! The Envoy ext_authz decoder: the hand-written `CheckRequest` protobuf messages
//! (`auth-edge/src/ext_authz/proto.rs`) and the extraction of the request headers the decision
//! reads, from either of Envoy's header encodings (`auth-edge/src/ext_authz/headers.rs`).
//!
//! Input: a `CheckRequest` message (what follows the 5-byte gRPC frame header). Beyond "no
//! panic": decoding is stable under re-encoding, only `authorization` and `cookie` are extracted,
//! each extracted value is one the request carried, and the token read from them is what
//! `token_from_headers` reads for any edge front end.
#![no_main]

use auth_fuzz::headers::{credential_headers, has_identity_headers};
use auth_fuzz::proto::CheckRequest;
use auth_fuzz::request::IDENTITY_HEADERS;
use http::header::{AUTHORIZATION, COOKIE};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = CheckRequest::decode(data) else {
        return;
    };
    let again = CheckRequest::decode(request.encode_to_vec().as_slice()).expect("own encoding");
    assert_eq!(again, request);

    let headers = credential_headers(&request);
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    let Some(http) = http else {
        assert!(headers.is_empty());
        assert!(!has_identity_headers(&request));
        return;
    };
    // Every value the request carried under a name, in both encodings.
    let carried = |name: &str| -> Vec<Vec<u8>> {
        let plain = http
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes().to_vec());
        let raw = http
            .header_map
            .iter()
            .flat_map(|m| &m.headers)
            .filter_map(|h| {
                h.key.eq_ignore_ascii_case(name).then(|| {
                    if h.raw_value.is_empty() {
                        h.value.as_bytes().to_vec()
                    } else {
                        h.raw_value.clone()
                    }
                })
            });
        plain.chain(raw).collect()
    };
    for name in headers.keys() {
        assert!(name == AUTHORIZATION || name == COOKIE, "extracted {name}");
        let carried = carried(name.as_str());
        for value in headers.get_all(name) {
            assert!(carried.iter().any(|c| c.as_slice() == value.as_bytes()));
        }
    }
    let identity = IDENTITY_HEADERS.iter().any(|h| {
        http.headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case(h.as_str()))
            || http
                .header_map
                .iter()
                .flat_map(|m| &m.headers)
                .any(|v| v.key.eq_ignore_ascii_case(h.as_str()))
    });
    assert_eq!(has_identity_headers(&request), identity);
    let _ = auth_fuzz::request::token_from_headers(&headers, "access_token");
});
