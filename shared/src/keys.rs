//! Signing keys (accounts service), verifying keys and key sets (edge).
//!
//! Every public key is parsed exactly once, into an aws-lc-rs
//! [`ParsedPublicKey`], when it is loaded; `verify` then only runs the
//! signature check. The raw public parameters are kept beside it so the key
//! can be re-exported as JWK/PEM and thumbprinted without touching aws-lc.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair,
};

use crate::jwk::{thumbprint, Jwk, JwkSet};
use crate::{asn1, b64, pem, Algorithm, Error, Kid};

/// Accepted RSA modulus sizes; matches aws-lc-rs `RSA_PKCS1_2048_8192_SHA256`
/// so a key that loads is also a key that can verify.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// Raw public key parameters in JWK form (big-endian, no leading zeros for RSA).
#[derive(Clone, PartialEq, Eq)]
enum PublicParams {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { x: [u8; 32], y: [u8; 32] },
    Ed25519 { x: [u8; 32] },
}

impl PublicParams {
    fn algorithm(&self) -> Algorithm {
        match self {
            PublicParams::Rsa { .. } => Algorithm::RS256,
            PublicParams::P256 { .. } => Algorithm::ES256,
            PublicParams::Ed25519 { .. } => Algorithm::EdDSA,
        }
    }

    /// The JWK with only the key-type and key-material members.
    fn bare_jwk(&self) -> Jwk {
        match self {
            PublicParams::Rsa { n, e } => Jwk {
                kty: "RSA".into(),
                n: Some(b64::encode(n)),
                e: Some(b64::encode(e)),
                ..Jwk::default()
            },
            PublicParams::P256 { x, y } => Jwk {
                kty: "EC".into(),
                crv: Some("P-256".into()),
                x: Some(b64::encode(x)),
                y: Some(b64::encode(y)),
                ..Jwk::default()
            },
            PublicParams::Ed25519 { x } => Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(b64::encode(x)),
                ..Jwk::default()
            },
        }
    }

    /// RFC 7638 thumbprint (RFC 8037 section 2 for OKP): required members only,
    /// lexicographically ordered.
    fn thumbprint(&self) -> String {
        let json = match self {
            PublicParams::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64::encode(e),
                b64::encode(n)
            ),
            PublicParams::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(x),
                b64::encode(y)
            ),
            PublicParams::Ed25519 { x } => {
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    b64::encode(x)
                )
            }
        };
        thumbprint(&json)
    }

    /// The one place a public key is handed to aws-lc-rs for parsing.
    fn parse(&self) -> Result<ParsedPublicKey, Error> {
        let parsed = match self {
            PublicParams::Rsa { n, e } => {
                let bits = rsa_bits(n);
                if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                    return Err(Error::InvalidKey(format!(
                        "RSA modulus is {bits} bits; {RSA_MIN_BITS}..={RSA_MAX_BITS} required"
                    )));
                }
                ParsedPublicKey::new(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    asn1::encode_rsa_public_key(n, e)?,
                )
            }
            PublicParams::P256 { x, y } => {
                let mut point = [0u8; 65];
                point[0] = 0x04; // SEC1 uncompressed
                point[1..33].copy_from_slice(x);
                point[33..].copy_from_slice(y);
                // Rejects points that are not on the curve.
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            }
            PublicParams::Ed25519 { x } => ParsedPublicKey::new(&signature::ED25519, x),
        };
        parsed.map_err(|e| Error::InvalidKey(format!("public key rejected: {e}")))
    }

    fn from_jwk(jwk: &Jwk) -> Result<Self, Error> {
        fn member(v: Option<&str>, name: &str) -> Result<Vec<u8>, Error> {
            let s = v.ok_or_else(|| Error::InvalidKey(format!("JWK member {name} missing")))?;
            b64::decode(s)
                .ok_or_else(|| Error::InvalidKey(format!("JWK member {name} is not base64url")))
        }
        fn fixed32(v: Option<&str>, name: &str) -> Result<[u8; 32], Error> {
            // RFC 7518 6.2.1.2 / RFC 8037: coordinates are full-length octet strings.
            member(v, name)?
                .try_into()
                .map_err(|_| Error::InvalidKey(format!("JWK member {name} must be 32 bytes")))
        }
        match jwk.kty.as_str() {
            "RSA" => {
                // Some encoders prepend a zero octet; tolerate it but keep the
                // minimal form so thumbprints match RFC 7638.
                let n = strip_leading_zeros(member(jwk.n.as_deref(), "n")?);
                let e = strip_leading_zeros(member(jwk.e.as_deref(), "e")?);
                if n.is_empty() || e.is_empty() {
                    return Err(Error::InvalidKey("RSA n/e must be non-zero".into()));
                }
                Ok(PublicParams::Rsa { n, e })
            }
            "EC" => match jwk.crv.as_deref() {
                Some("P-256") => Ok(PublicParams::P256 {
                    x: fixed32(jwk.x.as_deref(), "x")?,
                    y: fixed32(jwk.y.as_deref(), "y")?,
                }),
                other => Err(Error::InvalidKey(format!("unsupported EC curve {other:?}"))),
            },
            "OKP" => match jwk.crv.as_deref() {
                Some("Ed25519") => Ok(PublicParams::Ed25519 {
                    x: fixed32(jwk.x.as_deref(), "x")?,
                }),
                other => Err(Error::InvalidKey(format!(
                    "unsupported OKP curve {other:?}"
                ))),
            },
            // Symmetric ("oct") keys are refused on purpose: the edge must
            // never hold a secret that could mint tokens.
            other => Err(Error::InvalidKey(format!("unsupported kty {other:?}"))),
        }
    }

    fn from_spki(spki_der: &[u8]) -> Result<Self, Error> {
        let spki = asn1::parse_spki(spki_der)?;
        match (spki.algorithm, spki.curve) {
            (asn1::OID_RSA, None) => {
                let (n, e) = asn1::parse_rsa_public_key(spki.key)?;
                Ok(PublicParams::Rsa {
                    n: n.to_vec(),
                    e: e.to_vec(),
                })
            }
            (asn1::OID_EC, Some(asn1::OID_P256)) => Self::from_p256_point(spki.key),
            (asn1::OID_EC, _) => Err(Error::InvalidKey(
                "only the P-256 curve is supported".into(),
            )),
            (asn1::OID_ED25519, None) => Ok(PublicParams::Ed25519 {
                x: spki
                    .key
                    .try_into()
                    .map_err(|_| Error::InvalidKey("Ed25519 key must be 32 bytes".into()))?,
            }),
            _ => Err(Error::InvalidKey("unsupported public key algorithm".into())),
        }
    }

    fn from_p256_point(point: &[u8]) -> Result<Self, Error> {
        match point {
            [0x04, xy @ ..] if xy.len() == 64 => {
                let mut x = [0u8; 32];
                let mut y = [0u8; 32];
                x.copy_from_slice(&xy[..32]);
                y.copy_from_slice(&xy[32..]);
                Ok(PublicParams::P256 { x, y })
            }
            _ => Err(Error::InvalidKey(
                "EC point must be uncompressed P-256".into(),
            )),
        }
    }

    fn from_rsa_pkcs1(der_bytes: &[u8]) -> Result<Self, Error> {
        let (n, e) = asn1::parse_rsa_public_key(der_bytes)?;
        Ok(PublicParams::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..zeros);
    v
}

/// Bit length of a minimal big-endian magnitude.
fn rsa_bits(n: &[u8]) -> usize {
    match n.first() {
        Some(&first) => n.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// A public key that verifies tokens, with its algorithm and `kid`.
#[derive(Clone)]
pub struct VerifyingKey {
    alg: Algorithm,
    kid: Kid,
    params: PublicParams,
    // Arc: cloning a key set (e.g. on JWKS refresh) must not re-parse keys.
    parsed: Arc<ParsedPublicKey>,
}

/// Same algorithm, `kid` and key material (the parsed form follows from those).
impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg && self.kid == other.kid && self.params == other.params
    }
}

impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    fn new(alg: Algorithm, params: PublicParams, kid: Option<String>) -> Result<Self, Error> {
        if params.algorithm() != alg {
            return Err(Error::InvalidKey(format!(
                "{alg} cannot be used with a {} key",
                params.bare_jwk().kty
            )));
        }
        let parsed = Arc::new(params.parse()?);
        let kid = match kid {
            Some(kid) if !kid.is_empty() => {
                Kid::parse(kid).map_err(|_| Error::InvalidKey("kid is not a usable id".into()))?
            }
            _ => Kid::parse(params.thumbprint())?,
        };
        Ok(VerifyingKey {
            alg,
            kid,
            params,
            parsed,
        })
    }

    /// Loads a public JWK: RSA (`n`,`e`), EC P-256 (`crv`,`x`,`y`) or OKP
    /// Ed25519 (`crv`,`x`). The `kid` is the JWK's own if present, else its
    /// RFC 7638 thumbprint. `alg`, if present, must suit the key type; if
    /// absent it is derived (RSA keys get RS256). Keys whose `use` is not
    /// `sig` are refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<VerifyingKey, Error> {
        if let Some(u) = jwk.use_.as_deref() {
            if u != "sig" {
                return Err(Error::InvalidKey(format!("key use {u:?} is not \"sig\"")));
            }
        }
        let params = PublicParams::from_jwk(jwk)?;
        let alg = match jwk.alg.as_deref() {
            Some(a) => a.parse()?,
            None => params.algorithm(),
        };
        VerifyingKey::new(alg, params, jwk.kid.clone())
    }

    /// Loads an SPKI `PUBLIC KEY` PEM (or a PKCS#1 `RSA PUBLIC KEY` PEM for
    /// RS256). The `kid` is the key's RFC 7638 thumbprint.
    pub fn from_public_pem(pem_text: &str, alg: Algorithm) -> Result<VerifyingKey, Error> {
        for (label, der_bytes) in pem::parse_all(pem_text)? {
            let params = match label.as_str() {
                "PUBLIC KEY" => PublicParams::from_spki(&der_bytes)?,
                "RSA PUBLIC KEY" if alg == Algorithm::RS256 => {
                    PublicParams::from_rsa_pkcs1(&der_bytes)?
                }
                _ => continue,
            };
            return VerifyingKey::new(alg, params, None);
        }
        Err(Error::InvalidKey("no suitable public key PEM block".into()))
    }

    /// The key id tokens must name in their header.
    pub fn kid(&self) -> &str {
        self.kid.as_str()
    }

    /// The only algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Public JWK with `kid`, `alg` and `use: "sig"`.
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            use_: Some("sig".into()),
            alg: Some(self.alg.as_str().into()),
            kid: Some(self.kid.to_string()),
            ..self.params.bare_jwk()
        }
    }

    /// The RFC 7638 thumbprint, whatever the configured `kid` is.
    pub fn thumbprint(&self) -> String {
        self.params.thumbprint()
    }

    /// SPKI `PUBLIC KEY` PEM.
    pub fn to_public_pem(&self) -> Result<String, Error> {
        let spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(self.parsed.as_ref())
            .map_err(|_| Error::InvalidKey("cannot encode public key".into()))?;
        Ok(pem::encode("PUBLIC KEY", spki.as_ref()))
    }

    /// Checks a raw JWS signature over `message`.
    pub(crate) fn verify_signature(&self, message: &[u8], sig: &[u8]) -> bool {
        self.parsed.verify_sig(message, sig).is_ok()
    }
}

enum PrivateKey {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key that signs access tokens. Only the accounts service holds one.
pub struct SigningKey {
    private: PrivateKey,
    public: VerifyingKey,
}

impl fmt::Debug for SigningKey {
    // Never print private material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.public.alg)
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

fn rejected(e: impl fmt::Display) -> Error {
    Error::InvalidKey(format!("private key rejected: {e}"))
}

impl SigningKey {
    fn from_private(private: PrivateKey) -> Result<Self, Error> {
        let (alg, params) = match &private {
            PrivateKey::Rsa(kp) => (
                Algorithm::RS256,
                // aws-lc-rs exposes the public key as PKCS#1 RSAPublicKey DER.
                PublicParams::from_rsa_pkcs1(kp.public_key().as_ref())?,
            ),
            PrivateKey::P256(kp) => (
                Algorithm::ES256,
                PublicParams::from_p256_point(kp.public_key().as_ref())?,
            ),
            PrivateKey::Ed25519(kp) => (
                Algorithm::EdDSA,
                PublicParams::Ed25519 {
                    x: kp
                        .public_key()
                        .as_ref()
                        .try_into()
                        .map_err(|_| Error::InvalidKey("Ed25519 public key size".into()))?,
                },
            ),
        };
        let public = VerifyingKey::new(alg, params, None)?;
        Ok(SigningKey { private, public })
    }

    /// A fresh key: RSA 2048, P-256 or Ed25519.
    pub fn generate(alg: Algorithm) -> Result<SigningKey, Error> {
        let private = match alg {
            Algorithm::RS256 => {
                PrivateKey::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(rejected)?)
            }
            Algorithm::ES256 => PrivateKey::P256(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(rejected)?,
            ),
            Algorithm::EdDSA => PrivateKey::Ed25519(Ed25519KeyPair::generate().map_err(rejected)?),
        };
        SigningKey::from_private(private)
    }

    /// Loads a PEM private key: PKCS#8 `PRIVATE KEY` for every algorithm, plus
    /// the traditional openssl formats, PKCS#1 `RSA PRIVATE KEY` (RS256) and
    /// SEC1 `EC PRIVATE KEY` (ES256). Other blocks (e.g. `EC PARAMETERS`) are
    /// skipped.
    pub fn from_pem(pem_text: &str, alg: Algorithm) -> Result<SigningKey, Error> {
        for (label, der_bytes) in pem::parse_all(pem_text)? {
            let private = match (label.as_str(), alg) {
                ("PRIVATE KEY", Algorithm::RS256) => {
                    PrivateKey::Rsa(RsaKeyPair::from_pkcs8(&der_bytes).map_err(rejected)?)
                }
                ("RSA PRIVATE KEY", Algorithm::RS256) => {
                    PrivateKey::Rsa(RsaKeyPair::from_der(&der_bytes).map_err(rejected)?)
                }
                ("PRIVATE KEY", Algorithm::ES256) => PrivateKey::P256(
                    EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &der_bytes,
                    )
                    .map_err(rejected)?,
                ),
                ("EC PRIVATE KEY", Algorithm::ES256) => PrivateKey::P256(
                    EcdsaKeyPair::from_private_key_der(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &der_bytes,
                    )
                    .map_err(rejected)?,
                ),
                ("PRIVATE KEY", Algorithm::EdDSA) => PrivateKey::Ed25519(
                    // Accepts PKCS#8 v1 (what openssl writes) as well as v2.
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der_bytes).map_err(rejected)?,
                ),
                ("ENCRYPTED PRIVATE KEY", _) => {
                    return Err(Error::InvalidKey(
                        "encrypted private keys are not supported".into(),
                    ))
                }
                _ => continue,
            };
            return SigningKey::from_private(private);
        }
        Err(Error::InvalidKey(format!(
            "no {alg} private key PEM block found"
        )))
    }

    /// PKCS#8 v1 `PRIVATE KEY` PEM, readable by openssl and the `cryptography` package.
    pub fn to_pkcs8_pem(&self) -> Result<String, Error> {
        let err = |_| Error::InvalidKey("cannot encode private key".into());
        let der_bytes: Vec<u8> = match &self.private {
            PrivateKey::Rsa(kp) => AsDer::<Pkcs8V1Der>::as_der(kp)
                .map_err(err)?
                .as_ref()
                .to_vec(),
            PrivateKey::P256(kp) => kp.to_pkcs8v1().map_err(err)?.as_ref().to_vec(),
            PrivateKey::Ed25519(kp) => kp.to_pkcs8v1().map_err(err)?.as_ref().to_vec(),
        };
        Ok(pem::encode("PRIVATE KEY", &der_bytes))
    }

    /// SPKI `PUBLIC KEY` PEM of the matching public key.
    pub fn public_pem(&self) -> Result<String, Error> {
        self.public.to_public_pem()
    }

    /// The algorithm tokens are signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.public.alg
    }

    /// RFC 7638 thumbprint of the public key, used as the token `kid`.
    pub fn kid(&self) -> &str {
        self.public.kid.as_str()
    }

    /// The public JWK to publish in the JWKS (`kid`, `alg`, `use: "sig"`).
    pub fn public_jwk(&self) -> Jwk {
        self.public.to_jwk()
    }

    /// The matching verifying key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public.clone()
    }

    /// Raw JWS signature over `message` (ES256: fixed 64-byte `r || s`).
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = |_| Error::InvalidKey("signing failed".into());
        match &self.private {
            PrivateKey::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(failed)?;
                Ok(sig)
            }
            PrivateKey::P256(kp) => Ok(kp
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            PrivateKey::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
        }
    }
}

/// Verifying keys by `kid`. A `BTreeMap` keeps JWKS output and `kids()` in a
/// stable order; sets are tiny, so lookup cost is irrelevant.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: BTreeMap<Kid, VerifyingKey>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key, replacing any key with the same `kid`.
    pub fn insert(&mut self, key: VerifyingKey) {
        self.keys.insert(key.kid.clone(), key);
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Loads every usable key of a JWKS. Unusable keys (unsupported `kty` or
    /// curve, `use` other than `sig`, bad material, duplicate `kid`) are
    /// skipped and reported, so one odd key cannot take the whole set down.
    /// For duplicate kids the first key wins: silently replacing it would let
    /// the order of a JWKS document change which key verifies.
    pub fn from_jwks(set: &JwkSet) -> (KeySet, Vec<Error>) {
        let mut keys = KeySet::new();
        let mut errors = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let label = match &jwk.kid {
                Some(kid) => format!("JWKS key {i} (kid {kid:?})"),
                None => format!("JWKS key {i}"),
            };
            match VerifyingKey::from_jwk(jwk) {
                Ok(key) if keys.keys.contains_key(&key.kid) => {
                    errors.push(Error::InvalidKey(format!("{label}: duplicate kid")));
                }
                Ok(key) => keys.insert(key),
                Err(e) => errors.push(Error::InvalidKey(format!("{label}: {e}"))),
            }
        }
        (keys, errors)
    }

    /// The public JWKS, sorted by `kid`.
    pub fn to_jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.values().map(VerifyingKey::to_jwk).collect(),
        }
    }

    /// The kids, sorted.
    pub fn kids(&self) -> impl Iterator<Item = &str> + '_ {
        self.keys.keys().map(Kid::as_str)
    }
}

impl FromIterator<VerifyingKey> for KeySet {
    fn from_iter<I: IntoIterator<Item = VerifyingKey>>(iter: I) -> Self {
        let mut set = KeySet::new();
        for key in iter {
            set.insert(key);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PKCS1: &str = include_str!("../testdata/rsa2048_pkcs1.pem");
    const RSA_SPKI: &str = include_str!("../testdata/rsa2048_spki.pem");
    const RSA_PKCS1_PUB: &str = include_str!("../testdata/rsa2048_pkcs1_pub.pem");
    const P256_SEC1: &str = include_str!("../testdata/p256_sec1.pem");
    const P256_SPKI: &str = include_str!("../testdata/p256_spki.pem");
    const ED25519_PKCS8: &str = include_str!("../testdata/ed25519_pkcs8.pem");
    const ED25519_SPKI: &str = include_str!("../testdata/ed25519_spki.pem");
    const RSA1024_SPKI: &str = include_str!("../testdata/rsa1024_spki.pem");
    const P384_SPKI: &str = include_str!("../testdata/p384_spki.pem");

    /// RFC 7638 section 3.1 example key.
    pub(crate) const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

    fn rfc7638_jwk() -> Jwk {
        Jwk {
            kty: "RSA".into(),
            n: Some(RFC7638_N.into()),
            e: Some("AQAB".into()),
            ..Jwk::default()
        }
    }

    #[test]
    fn rfc7638_thumbprint_is_the_default_kid() {
        let key = VerifyingKey::from_jwk(&rfc7638_jwk()).unwrap();
        assert_eq!(key.kid(), RFC7638_THUMBPRINT);
        assert_eq!(key.algorithm(), Algorithm::RS256);
        // The RFC's own JWK carries alg and kid; an explicit kid wins but the
        // thumbprint is unchanged.
        let jwk = Jwk {
            alg: Some("RS256".into()),
            kid: Some("2011-04-29".into()),
            ..rfc7638_jwk()
        };
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.kid(), "2011-04-29");
        assert_eq!(key.thumbprint(), RFC7638_THUMBPRINT);
    }

    #[test]
    fn jwk_round_trip_every_algorithm() {
        for alg in Algorithm::ALL {
            let sk = SigningKey::generate(alg).unwrap();
            assert_eq!(sk.algorithm(), alg);
            let jwk = sk.public_jwk();
            assert_eq!(jwk.use_.as_deref(), Some("sig"));
            assert_eq!(jwk.alg.as_deref(), Some(alg.as_str()));
            assert_eq!(jwk.kid.as_deref(), Some(sk.kid()));
            let json = serde_json::to_string(&jwk).unwrap();
            let back: Jwk = serde_json::from_str(&json).unwrap();
            assert_eq!(back, jwk);
            let vk = VerifyingKey::from_jwk(&back).unwrap();
            assert_eq!(vk.to_jwk(), jwk);
            // Without kid/alg/use the same key and kid are derived.
            let bare = Jwk {
                kid: None,
                alg: None,
                use_: None,
                ..jwk.clone()
            };
            let vk = VerifyingKey::from_jwk(&bare).unwrap();
            assert_eq!(vk.kid(), sk.kid());
            assert_eq!(vk.algorithm(), alg);
        }
    }

    #[test]
    fn pem_round_trip_every_algorithm() {
        for alg in Algorithm::ALL {
            let sk = SigningKey::generate(alg).unwrap();
            let pem = sk.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert!(pem.lines().all(|l| l.len() <= 64));
            let again = SigningKey::from_pem(&pem, alg).unwrap();
            assert_eq!(again.kid(), sk.kid());
            let public = sk.public_pem().unwrap();
            assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
            let vk = VerifyingKey::from_public_pem(&public, alg).unwrap();
            assert_eq!(vk.kid(), sk.kid());
            // A key of one type never loads as another algorithm.
            for other in Algorithm::ALL.into_iter().filter(|&o| o != alg) {
                assert!(
                    SigningKey::from_pem(&pem, other).is_err(),
                    "{alg} as {other}"
                );
                assert!(VerifyingKey::from_public_pem(&public, other).is_err());
            }
        }
    }

    #[test]
    fn loads_openssl_traditional_formats() {
        // Public PEMs written by openssl from the same private keys must
        // match ours byte for byte.
        let rsa = SigningKey::from_pem(RSA_PKCS1, Algorithm::RS256).unwrap();
        assert_eq!(rsa.public_pem().unwrap(), RSA_SPKI);
        let from_pkcs1_pub =
            VerifyingKey::from_public_pem(RSA_PKCS1_PUB, Algorithm::RS256).unwrap();
        assert_eq!(from_pkcs1_pub.kid(), rsa.kid());

        let ec = SigningKey::from_pem(P256_SEC1, Algorithm::ES256).unwrap();
        assert_eq!(ec.public_pem().unwrap(), P256_SPKI);
        assert_eq!(
            VerifyingKey::from_public_pem(P256_SPKI, Algorithm::ES256)
                .unwrap()
                .kid(),
            ec.kid()
        );

        let ed = SigningKey::from_pem(ED25519_PKCS8, Algorithm::EdDSA).unwrap();
        assert_eq!(ed.public_pem().unwrap(), ED25519_SPKI);
        assert_eq!(
            VerifyingKey::from_public_pem(ED25519_SPKI, Algorithm::EdDSA)
                .unwrap()
                .kid(),
            ed.kid()
        );
        // PKCS#8 re-export loads back to the same key.
        let again = SigningKey::from_pem(&rsa.to_pkcs8_pem().unwrap(), Algorithm::RS256).unwrap();
        assert_eq!(again.kid(), rsa.kid());
    }

    #[test]
    fn rejects_weak_or_unsupported_public_keys() {
        assert!(matches!(
            VerifyingKey::from_public_pem(RSA1024_SPKI, Algorithm::RS256),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            VerifyingKey::from_public_pem(P384_SPKI, Algorithm::ES256),
            Err(Error::InvalidKey(_))
        ));
        assert!(VerifyingKey::from_public_pem("not pem", Algorithm::RS256).is_err());
        // A PKCS#1 RSA public key is no EC key.
        assert!(VerifyingKey::from_public_pem(RSA_PKCS1_PUB, Algorithm::ES256).is_err());
    }

    #[test]
    fn from_jwk_rejections() {
        let ec = SigningKey::generate(Algorithm::ES256).unwrap().public_jwk();
        let cases: Vec<(&str, Jwk)> = vec![
            (
                "use enc",
                Jwk {
                    use_: Some("enc".into()),
                    ..ec.clone()
                },
            ),
            (
                "oct",
                Jwk {
                    kty: "oct".into(),
                    ..Jwk::default()
                },
            ),
            (
                "P-384",
                Jwk {
                    crv: Some("P-384".into()),
                    ..ec.clone()
                },
            ),
            (
                "alg mismatch",
                Jwk {
                    alg: Some("RS256".into()),
                    ..ec.clone()
                },
            ),
            (
                "alg HS256",
                Jwk {
                    alg: Some("HS256".into()),
                    ..ec.clone()
                },
            ),
            (
                "short x",
                Jwk {
                    x: Some("AQAB".into()),
                    ..ec.clone()
                },
            ),
            (
                "missing y",
                Jwk {
                    y: None,
                    ..ec.clone()
                },
            ),
            (
                "padded x",
                Jwk {
                    x: Some(format!("{}=", ec.x.clone().unwrap())),
                    ..ec.clone()
                },
            ),
            // Swapping x and y gives a point that is not on the curve.
            (
                "off curve",
                Jwk {
                    x: ec.y.clone(),
                    y: ec.x.clone(),
                    ..ec.clone()
                },
            ),
            (
                "X25519",
                Jwk {
                    kty: "OKP".into(),
                    crv: Some("X25519".into()),
                    x: ec.x.clone(),
                    ..Jwk::default()
                },
            ),
            (
                "RSA 1024",
                Jwk {
                    n: Some(b64::encode(&[0xc5; 128])),
                    ..rfc7638_jwk()
                },
            ),
            (
                "RSA no e",
                Jwk {
                    e: None,
                    ..rfc7638_jwk()
                },
            ),
        ];
        for (name, jwk) in cases {
            assert!(
                VerifyingKey::from_jwk(&jwk).is_err(),
                "{name} should be rejected"
            );
        }
    }

    #[test]
    fn from_jwks_skips_unusable_keys_and_reports_why() {
        let rsa = VerifyingKey::from_jwk(&rfc7638_jwk()).unwrap().to_jwk();
        let ec = SigningKey::generate(Algorithm::ES256).unwrap().public_jwk();
        let set = JwkSet {
            keys: vec![
                rsa.clone(),
                Jwk {
                    use_: Some("enc".into()),
                    kid: Some("enc-key".into()),
                    ..ec.clone()
                },
                Jwk {
                    kty: "oct".into(),
                    kid: Some("hmac".into()),
                    ..Jwk::default()
                },
                ec.clone(),
                Jwk {
                    kid: rsa.kid.clone(),
                    ..ec.clone()
                }, // duplicate kid
            ],
        };
        let (keys, errors) = KeySet::from_jwks(&set);
        assert_eq!(keys.len(), 2);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].to_string().contains("enc-key"));
        assert!(errors[1].to_string().contains("hmac"));
        assert!(errors[2].to_string().contains("duplicate"));
        // The first key with a kid wins.
        assert_eq!(
            keys.get(RFC7638_THUMBPRINT).unwrap().algorithm(),
            Algorithm::RS256
        );
        assert!(keys.get("enc-key").is_none());
    }

    #[test]
    fn key_set_is_sorted_and_round_trips_through_jwks() {
        let keys: KeySet = Algorithm::ALL
            .into_iter()
            .map(|a| SigningKey::generate(a).unwrap().verifying_key())
            .collect();
        assert_eq!(keys.len(), 3);
        assert!(!keys.is_empty() && KeySet::new().is_empty());
        let kids: Vec<&str> = keys.kids().collect();
        let mut sorted = kids.clone();
        sorted.sort_unstable();
        assert_eq!(kids, sorted);
        let jwks = keys.to_jwks();
        let json = serde_json::to_string(&jwks).unwrap();
        let (back, errors) = KeySet::from_jwks(&serde_json::from_str(&json).unwrap());
        assert!(errors.is_empty());
        assert_eq!(back.to_jwks(), jwks);
        let listed: Vec<_> = jwks.keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(listed, kids);
    }

    #[test]
    fn debug_hides_private_material() {
        let sk = SigningKey::from_pem(P256_SEC1, Algorithm::ES256).unwrap();
        let dbg = format!("{sk:?}");
        assert!(dbg.contains(sk.kid()));
        assert!(!dbg.to_lowercase().contains("private"));
        assert!(format!("{:?}", sk.verifying_key()).contains(sk.kid()));
    }
}
