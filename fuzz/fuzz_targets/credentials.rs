//! Credential extraction: the access token of a request from `Authorization: Bearer` and
//! `Cookie` headers (`auth-edge/src/request.rs`), as every edge front end reads it.
//!
//! Input: header lines `name: value`, separated by `\n`. What comes out must be a non-empty,
//! trimmed substring of one of the request's `authorization` or `cookie` values, and the bearer
//! header must win over the cookie.
#![no_main]

use auth_fuzz::request::{bearer, cookie, token_from_headers};
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const COOKIE_NAME: &str = "access_token";

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(value.trim_ascii_start()),
        ) {
            headers.append(name, value);
        }
    }
    let Some(token) = token_from_headers(&headers, COOKIE_NAME) else {
        return;
    };
    assert!(!token.is_empty());
    assert_eq!(token, token.trim(), "token with surrounding whitespace");
    let from_bearer = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(bearer);
    match from_bearer {
        Some(b) => assert_eq!(token, b, "the bearer header must win"),
        None => assert!(headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|h| cookie(h, COOKIE_NAME) == Some(token) && h.contains(token))),
    }
    // The token is used as a cache key and parsed as a JWS: it never contains the separators
    // that delimit it in its header.
    assert!(!token.contains(';') || from_bearer.is_some());
});
