//! The Envoy ext_authz decoder: the hand-written `CheckRequest` protobuf messages
//! (`auth-edge/src/ext_authz/proto.rs`), and the credential rule applied to the headers they
//! carry in either of Envoy's encodings.
//!
//! Input: a `CheckRequest` message (what follows the 5-byte gRPC frame header). Beyond "no
//! panic": decoding is stable under re-encoding.
#![no_main]

use auth_fuzz::proto::CheckRequest;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = CheckRequest::decode(data) else {
        return;
    };
    let again = CheckRequest::decode(request.encode_to_vec().as_slice()).expect("own encoding");
    assert_eq!(again, request);
    let Some(http) = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
    else {
        return;
    };
    let values = |name: &str| -> Vec<&[u8]> {
        let plain = http
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes());
        let raw = http
            .header_map
            .iter()
            .flat_map(|m| &m.headers)
            .filter_map(|h| {
                h.key
                    .eq_ignore_ascii_case(name)
                    .then_some(if h.raw_value.is_empty() {
                        h.value.as_bytes()
                    } else {
                        h.raw_value.as_slice()
                    })
            });
        plain.chain(raw).collect()
    };
    let _ = auth_token::access_token(values("authorization"), values("cookie"), "access_token");
});
