//! Helpers shared by the fuzz targets: fixed test keys (never used outside fuzzing), a token
//! signer for structure-aware inputs, and the edge's parsers.
//!
//! The edge's parsers are compiled in from their source files rather than through the
//! `auth-edge` crate: its library brings pingora, redis, hyper and tokio, which would make the
//! instrumented build several times longer than everything fuzzed here. Each included file depends
//! only on `std`, `http`, `prost`, `serde` and `auth-token`, and is the file the edge compiles.
//!
//! Keys are fixed (not generated per run) so that the committed corpus, whose tokens are signed
//! with the Ed25519 key below, keeps reaching past the signature check on every run.

use std::sync::LazyLock;

use auth_token::{Algorithm, Jwk, KeySet, SigningKey, Validation, VerifyingKey};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// The "current time" every target verifies at; corpus tokens are issued around it.
pub const NOW: i64 = 1_700_000_000;
/// Issuer and audience of [`validation`].
pub const ISSUER: &str = "accounts";
/// See [`ISSUER`].
pub const AUDIENCE: &str = "edge";

/// Seed of the fuzz-only Ed25519 key (public: this key signs nothing real).
const ED25519_SEED: [u8; 32] = [7; 32];

/// The fuzz-only Ed25519 key pair, as aws-lc-rs and as auth-token see it.
pub struct TestKey {
    pair: Ed25519KeyPair,
    /// The same key as an `auth-token` signing key (its `kid` is the RFC 7638 thumbprint).
    pub signing: SigningKey,
}

/// The Ed25519 key the corpus tokens are signed with.
pub static ED25519: LazyLock<TestKey> = LazyLock::new(|| {
    let pair = Ed25519KeyPair::from_seed_unchecked(&ED25519_SEED).expect("seed");
    let der = pair.to_pkcs8v1().expect("pkcs8");
    let pem = pem("PRIVATE KEY", der.as_ref());
    let signing = SigningKey::from_pem(&pem, Algorithm::EdDSA).expect("fuzz key loads");
    assert_eq!(
        signing.public_jwk().x.as_deref(),
        Some(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()).as_str())
    );
    TestKey { pair, signing }
});

/// Every key the token target verifies against: the Ed25519 key above, the RSA key of RFC 7638
/// section 3.1 and the P-256 key of the token crate's test data (public halves only: tokens for those
/// reach the signature check and fail it).
pub static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    let mut keys = KeySet::new();
    keys.insert(ED25519.signing.verifying_key());
    let rsa = Jwk {
        kty: "RSA".into(),
        n: Some(RFC7638_N.into()),
        e: Some("AQAB".into()),
        ..Jwk::default()
    };
    keys.insert(VerifyingKey::from_jwk(&rsa).expect("RFC 7638 example key loads"));
    // A P-256 key from the token crate's test data (a fixed, valid point).
    keys.insert(
        VerifyingKey::from_public_pem(
            include_str!("../../shared/testdata/p256_spki.pem"),
            Algorithm::ES256,
        )
        .expect("P-256 test key loads"),
    );
    keys
});

const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

/// The policy every target verifies with: all three algorithms, 30 s leeway.
pub fn validation() -> Validation {
    let mut v = Validation::new(ISSUER, AUDIENCE);
    v.algorithms = vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
    v
}

/// A compact JWS over arbitrary header and payload bytes, signed with the Ed25519 test key: lets
/// the fuzzer reach everything after the signature check (payload parsing, claim rules).
pub fn sign_raw(header: &[u8], payload: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let sig = ED25519.pair.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
    token
}

/// PEM text for `der` under `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// `auth-edge/src/public_paths.rs`: the sidecar's public path prefixes.
#[path = "../../auth-edge/src/public_paths.rs"]
pub mod public_paths;

/// `auth-edge/src/ext_authz/proto.rs`: the Envoy ext_authz messages.
#[path = "../../auth-edge/src/ext_authz/proto.rs"]
pub mod proto;
