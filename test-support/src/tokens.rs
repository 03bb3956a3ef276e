//! Test keys, minting claims and tokens, forging bad ones, and reading a JWT without verifying it.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use auth_token::{Algorithm, Claims, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::fs::unique;

/// The issuer the test tokens carry (accounts' default).
pub const ISSUER: &str = "auth-service";
/// The audience the test tokens carry (accounts' default).
pub const AUDIENCE: &str = "smart-budget";

// RSA key generation is slow in debug builds: three shared keys (current, next, attacker).

/// The current key.
pub fn key_a() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::generate(Algorithm::RS256).expect("key"))
}

/// The next key (a rotation).
pub fn key_b() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::generate(Algorithm::RS256).expect("key"))
}

/// A key nobody publishes: what a forger signs with.
pub fn attacker_key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::generate(Algorithm::RS256).expect("key"))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Valid claims for a fresh user and session ([`ISSUER`], [`AUDIENCE`], 10 minutes left).
pub fn claims() -> Claims {
    let now = now();
    Claims {
        sub: unique("user").parse().expect("user id"),
        sid: unique("sid").parse().expect("session id"),
        role: auth_token::Role::Moderator,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        iat: now - 5,
        exp: now + 600,
        jti: unique("jti"),
    }
}

/// `claims` signed with `key`.
pub fn sign(claims: &Claims, key: &SigningKey) -> String {
    auth_token::sign(claims, key).expect("sign")
}

/// base64url (no padding) of a JSON value's text: one part of a hand-made JWT.
pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `alg: none`, naming a real kid, with an empty signature.
pub fn none_token(claims: &Claims, kid: &str) -> String {
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": kid});
    format!(
        "{}.{}.",
        b64_json(&header),
        b64_json(&serde_json::to_value(claims).expect("json"))
    )
}

/// The (unverified) header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

/// The (unverified) claims of a JWT.
pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("JWT part");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("JWT part is base64url");
    serde_json::from_slice(&bytes).expect("JWT part is JSON")
}

/// The `kid` in a JWT's header.
pub fn kid(token: &str) -> String {
    jwt_header(token)["kid"]
        .as_str()
        .expect("a kid in the header")
        .to_owned()
}
