//! JSON Web Keys (RFC 7517) and thumbprints (RFC 7638).

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::b64;

/// A public JSON Web Key. Only the members needed for RSA, EC P-256 and
/// Ed25519 verification keys are modelled; unknown members are ignored on
/// input so that keys carrying e.g. `x5c` or `key_ops` still load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// Intended use; `sig` or absent for keys we accept.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// JWS algorithm the key is meant for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Key id, matched against the token header `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// RSA modulus (base64url, big-endian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent (base64url, big-endian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve: `P-256` (EC) or `Ed25519` (OKP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate, or the Ed25519 public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// A JWK Set document (RFC 7517 section 5), as served at `/.well-known/jwks.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys, in the order given.
    pub keys: Vec<Jwk>,
}

/// RFC 7638 thumbprint of the canonical JSON of a key's required members:
/// base64url(SHA-256(json)). The caller builds `canonical_json` with members
/// in lexicographic order and no whitespace; values are base64url or fixed
/// names, so they never need JSON escaping.
pub(crate) fn thumbprint(canonical_json: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, canonical_json.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_absent_members_and_ignores_unknown_ones() {
        let jwk = Jwk {
            kty: "OKP".into(),
            use_: Some("sig".into()),
            crv: Some("Ed25519".into()),
            x: Some("abc".into()),
            ..Jwk::default()
        };
        let json = serde_json::to_string(&jwk).unwrap();
        assert_eq!(
            json,
            r#"{"kty":"OKP","use":"sig","crv":"Ed25519","x":"abc"}"#
        );
        let back: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","use":"sig","crv":"Ed25519","x":"abc","key_ops":["verify"],"x5c":[]}"#,
        )
        .unwrap();
        assert_eq!(back, jwk);
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let json = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(
            thumbprint(&json),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
