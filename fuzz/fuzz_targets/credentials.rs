//! Credential extraction: `auth_token::access_token`, the one rule every service uses to read the
//! access token of a request from its `Authorization` and `Cookie` header values.
//!
//! Input: header lines `name: value`, separated by `\n`. What comes out must be a non-empty
//! substring of one of the request's values, free of whitespace and separators, and from the
//! header when the header carried it.
#![no_main]

use auth_token::{access_token, TokenSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut authorization: Vec<&[u8]> = Vec::new();
    let mut cookies: Vec<&[u8]> = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii_start());
        if name.eq_ignore_ascii_case(b"authorization") {
            authorization.push(value);
        } else if name.eq_ignore_ascii_case(b"cookie") {
            cookies.push(value);
        }
    }
    let Ok(Some(credential)) = access_token(
        authorization.iter().copied(),
        cookies.iter().copied(),
        "access_token",
    ) else {
        return;
    };
    let token = credential.token;
    assert!(!token.is_empty());
    assert!(
        !token
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b';' || b == b','),
        "{token:?}"
    );
    let within = |values: &[&[u8]]| {
        values
            .iter()
            .any(|v| v.windows(token.len()).any(|w| w == token.as_bytes()))
    };
    match credential.source {
        TokenSource::Header => assert!(within(&authorization)),
        TokenSource::Cookie => assert!(within(&cookies)),
    }
});
