//! `auth_token::verify` and `peek_kid` on arbitrary tokens.
//!
//! Input: one mode byte, then either a raw token (even mode) or `header JSON \0 payload JSON`
//! (odd mode), which is signed with the fuzz key first so the fuzzer reaches payload parsing and
//! the claim rules behind the signature check. Beyond "no panic", a token that verifies must be
//! one every strict reader agrees on: JSON-object header and payload, no `crit`, a known `kid`,
//! the configured issuer, audience and time window.
#![no_main]

use auth_fuzz::{validation, KEYS, NOW};
use auth_token::{peek_kid, verify, MAX_TOKEN_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            check(token);
        }
    } else {
        let (header, payload) = match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b"{}"[..]),
        };
        check(&auth_fuzz::sign_raw(header, payload));
    }
});

fn check(token: &str) {
    let validation = validation();
    let kid = peek_kid(token);
    let verified = verify(token, &KEYS, &validation, NOW);
    if kid.is_err() {
        assert!(verified.is_err(), "verify accepted what peek_kid refused");
    }
    let Ok(claims) = verified else {
        return;
    };
    assert!(token.len() <= MAX_TOKEN_LEN);
    let kid = kid
        .expect("checked above")
        .expect("a verified token names its key");
    assert!(KEYS.get(kid.as_str()).is_some());
    assert_eq!(claims.iss, validation.issuer);
    assert_eq!(claims.aud, validation.audience);
    assert!(claims.exp.saturating_add(validation.leeway_secs) >= NOW);
    assert!(claims.iat <= NOW.saturating_add(validation.leeway_secs));
    let mut parts = token.split('.');
    for part in ["header", "payload"] {
        let json = URL_SAFE_NO_PAD
            .decode(parts.next().expect("three parts"))
            .expect("verified part is base64url");
        let value: serde_json::Value =
            serde_json::from_slice(&json).expect("verified part is JSON");
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("verified {part} is not a JSON object: {value}"));
        if part == "header" {
            assert!(!object.contains_key("crit"), "verified a header with crit");
        }
    }
}
