//! Key material parsing: PEM (and the DER inside it), JWK and JWKS, as `auth-token` loads them
//! for accounts (key files) and the edge (`AUTH_EDGE_JWKS_FILE`, the JWKS URL).
//!
//! Input: one mode byte, then text (PEM, JWK or JWKS) or raw DER that the target wraps in a PEM
//! block itself, so DER mutations are not wasted on breaking the base64. A key that loads must
//! survive a round trip (JWK and PEM) with the same `kid` and algorithm.
#![no_main]

use auth_fuzz::pem;
use auth_token::{Algorithm, Jwk, JwkSet, KeySet, SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;

const ALGS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
const PUBLIC_LABELS: [&str; 2] = ["PUBLIC KEY", "RSA PUBLIC KEY"];
const PRIVATE_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            // Raw DER in each PEM block kind.
            for label in PUBLIC_LABELS {
                public_pem(&pem(label, rest));
            }
            for label in PRIVATE_LABELS {
                private_pem(&pem(label, rest));
            }
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                public_pem(text);
                private_pem(text);
            }
        }
        2 => {
            if let Ok(jwk) = serde_json::from_slice::<Jwk>(rest) {
                if let Ok(key) = VerifyingKey::from_jwk(&jwk) {
                    round_trip(&key);
                }
            }
        }
        _ => {
            if let Ok(set) = serde_json::from_slice::<JwkSet>(rest) {
                let (keys, _errors) = KeySet::from_jwks(&set);
                assert!(keys.len() <= set.keys.len());
                let again = KeySet::from_jwks(&keys.to_jwks()).0;
                assert_eq!(
                    again.kids().collect::<Vec<_>>(),
                    keys.kids().collect::<Vec<_>>()
                );
            }
        }
    }
});

fn public_pem(text: &str) {
    for alg in ALGS {
        if let Ok(key) = VerifyingKey::from_public_pem(text, alg) {
            assert_eq!(key.algorithm(), alg);
            round_trip(&key);
        }
    }
}

fn private_pem(text: &str) {
    for alg in ALGS {
        if let Ok(key) = SigningKey::from_pem(text, alg) {
            assert_eq!(key.algorithm(), alg);
            let public = key.verifying_key();
            assert_eq!(public.kid(), key.kid());
            round_trip(&public);
            let again = SigningKey::from_pem(&key.to_pkcs8_pem().expect("encodes"), alg)
                .expect("own PKCS#8 output loads");
            assert_eq!(again.kid(), key.kid());
        }
    }
}

fn round_trip(key: &VerifyingKey) {
    let from_jwk = VerifyingKey::from_jwk(&key.to_jwk()).expect("own JWK output loads");
    assert_eq!(from_jwk.kid(), key.kid());
    assert_eq!(from_jwk.algorithm(), key.algorithm());
    assert_eq!(from_jwk.thumbprint(), key.thumbprint());
    let pem = key.to_public_pem().expect("encodes");
    let from_pem =
        VerifyingKey::from_public_pem(&pem, key.algorithm()).expect("own PEM output loads");
    assert_eq!(from_pem.thumbprint(), key.thumbprint());
}
