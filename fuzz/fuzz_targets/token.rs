//! `auth_token::verify`, `verify_foreign`, `peek_kid` and `peek_issuer` on arbitrary tokens.
//!
//! Input: one mode byte, then either a raw token (even mode) or `header JSON \0 payload JSON`
//! (odd mode), which is signed with the fuzz key first so the fuzzer reaches payload parsing and
//! the claim rules behind the signature check. Beyond "no panic", a token that verifies must be
//! one every strict reader agrees on: JSON-object header and payload, no `crit`, a known `kid`,
//! the configured issuer, audience and time window. The foreign path (other issuers' tokens) is
//! held to the same: a token it accepts has an `iss`, an accepted `aud` and an `exp` in range.
#![no_main]

use auth_fuzz::{validation, KEYS, NOW};
use auth_token::{peek_issuer, peek_kid, verify, verify_foreign, ForeignValidation, MAX_TOKEN_LEN};
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
    check_foreign(token);
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

fn check_foreign(token: &str) {
    let own = validation();
    let validation = ForeignValidation {
        algorithms: own.algorithms.clone(),
        issuer: own.issuer.clone(),
        audiences: vec![own.audience.clone(), "other".into()],
        leeway_secs: own.leeway_secs,
    };
    let issuer = peek_issuer(token);
    let Ok(claims) = verify_foreign(token, &KEYS, &validation, NOW) else {
        return;
    };
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert_eq!(
        issuer,
        Ok(Some(validation.issuer.clone())),
        "peek_issuer disagrees"
    );
    assert_eq!(claims["iss"], validation.issuer.as_str());
    let exp = claims["exp"]
        .as_i64()
        .expect("a verified foreign token has an integer exp");
    assert!(exp.saturating_add(validation.leeway_secs) >= NOW);
    let accepted = |a: &serde_json::Value| {
        a.as_str()
            .is_some_and(|a| validation.audiences.iter().any(|w| w == a))
    };
    match &claims["aud"] {
        serde_json::Value::Array(list) => assert!(list.iter().any(accepted)),
        one => assert!(accepted(one)),
    }
}
