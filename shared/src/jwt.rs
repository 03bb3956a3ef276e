//! JWS compact serialization: `sign`, `sign_typed`, `verify`, `peek_kid`.

use serde::{Deserialize, Serialize};

use crate::claims::ReceivedClaims;
use crate::{b64, Claims, Error, KeySet, Kid, SigningKey, Validation, ACCESS_TOKEN_TYPE};

/// Longest token accepted. Ours are well under 1 KiB; the cap bounds the
/// work an attacker can make the edge do before any signature check.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Serialize)]
struct OutHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct InHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    // Checked like every kid (visible ASCII, bounded), so an attacker's kid can neither reach
    // logs with control characters nor be arbitrarily long.
    #[serde(default)]
    kid: Option<Kid>,
    // RFC 7515 4.1.11: a token naming critical extensions we do not
    // implement must be rejected, so notice the member at all, even as
    // `"crit": null` (which an `Option` would read as absent).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` for any value, `null` included: the member is there.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// Parses a JOSE header or claims set, which must be a JSON object (RFC 7515 4, RFC 7519 7.2).
/// serde would also read a struct from a JSON array of its fields in order, a form other JOSE
/// libraries refuse: two readers must never disagree about a token.
/// It must also be UTF-8 throughout (RFC 8259 8.1) with every number in range: serde_json does
/// not check what it skips (unknown members), and another reader would refuse the token. So the
/// whole text is read once as a generic value (the strict check; verification only, cache
/// misses) and once into `T` (which refuses duplicate members).
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(json: &[u8]) -> Option<T> {
    if json.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let text = std::str::from_utf8(json).ok()?;
    serde_json::from_str::<serde_json::Value>(text).ok()?;
    serde_json::from_str(text).ok()
}

/// Signs `claims` as a compact JWS with header `{"alg","typ":"at+jwt","kid"}`.
pub fn sign(claims: &Claims, key: &SigningKey) -> Result<String, Error> {
    let payload = serde_json::to_vec(claims).map_err(|_| Error::Malformed("claims"))?;
    sign_with_header(&payload, key)
}

/// Signs an arbitrary JSON payload under the standard header. Only for tests that need tokens
/// [`Claims`] cannot express (an empty `sid`, an out-of-range `role`), to check they are refused.
#[doc(hidden)]
pub fn sign_payload(payload: &serde_json::Value, key: &SigningKey) -> Result<String, Error> {
    let payload = serde_json::to_vec(payload).map_err(|_| Error::Malformed("claims"))?;
    sign_with_header(&payload, key)
}

/// Signs a JSON object under `{"alg","typ":typ,"kid"}`: for JWTs that are not access tokens
/// (the edge's identity assertions). A `typ` other than `at+jwt` keeps [`verify`] from ever
/// accepting one as an access token, whichever keys it trusts.
pub fn sign_typed(
    payload: &serde_json::Value,
    typ: &str,
    key: &SigningKey,
) -> Result<String, Error> {
    if !payload.is_object() || typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) {
        return Err(Error::Malformed("typed payload"));
    }
    let payload = serde_json::to_vec(payload).map_err(|_| Error::Malformed("claims"))?;
    sign_with_type(&payload, typ, key)
}

fn sign_with_header(payload: &[u8], key: &SigningKey) -> Result<String, Error> {
    sign_with_type(payload, ACCESS_TOKEN_TYPE, key)
}

fn sign_with_type(payload: &[u8], typ: &str, key: &SigningKey) -> Result<String, Error> {
    let header = OutHeader {
        alg: key.algorithm().as_str(),
        typ,
        kid: key.kid(),
    };
    let header = serde_json::to_vec(&header).map_err(|_| Error::Malformed("header"))?;
    sign_raw(&header, payload, key)
}

/// Signs arbitrary header/payload JSON; `sign` and tests build on it.
pub(crate) fn sign_raw(header: &[u8], payload: &[u8], key: &SigningKey) -> Result<String, Error> {
    let mut token = b64::encode(header);
    token.push('.');
    token.push_str(&b64::encode(payload));
    let sig = key.sign_bytes(token.as_bytes())?;
    token.push('.');
    token.push_str(&b64::encode(&sig));
    Ok(token)
}

struct Parts<'a> {
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
    header: InHeader,
}

fn split(token: &str) -> Result<Parts<'_>, Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::Malformed("token too long"));
    }
    // header.payload is the signing input, borrowed from the token so
    // nothing is copied before the signature check.
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or(Error::Malformed("token must have 3 parts"))?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(Error::Malformed("token must have 3 parts"))?;
    if payload.contains('.') {
        return Err(Error::Malformed("token must have 3 parts"));
    }
    let header_json = b64::decode(header).ok_or(Error::Malformed("header base64url"))?;
    let header: InHeader = json_object(&header_json).ok_or(Error::Malformed("header JSON"))?;
    Ok(Parts {
        signing_input,
        payload,
        signature,
        header,
    })
}

/// The header `kid`, without verifying anything. For deciding whether an
/// unknown kid warrants refetching the JWKS; never trust anything else from
/// an unverified token.
pub fn peek_kid(token: &str) -> Result<Option<Kid>, Error> {
    Ok(split(token)?.header.kid)
}

/// Verifies a compact JWS access token and returns its claims.
///
/// Order matters: everything decided from the header (algorithm, type, key)
/// is checked first, then the signature, and only then is the payload parsed
/// and its claims trusted.
pub fn verify(
    token: &str,
    keys: &KeySet,
    validation: &Validation,
    now_unix: i64,
) -> Result<Claims, Error> {
    // RFC 9068 section 4: validators must check typ, which keeps other JWTs
    // from the same issuer (ID tokens, ...) from being used as access tokens.
    let payload = verified_payload(token, keys, &validation.algorithms, |typ| {
        matches!(typ, Some(t) if t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
            || t.eq_ignore_ascii_case("application/at+jwt"))
    })?;
    let received: ReceivedClaims = json_object(&payload).ok_or(Error::Malformed("claims"))?;
    received.validate(validation, now_unix)
}

/// The JOSE checks every verification shares: the header (algorithm pinned by the key, `typ`
/// by `typ_ok`, no `crit`, a known `kid`), then the signature; returns the decoded payload,
/// not yet parsed. [`verify`] and [`crate::verify_foreign`] differ only in what follows.
pub(crate) fn verified_payload(
    token: &str,
    keys: &KeySet,
    algorithms: &[crate::Algorithm],
    typ_ok: impl FnOnce(Option<&str>) -> bool,
) -> Result<Vec<u8>, Error> {
    let parts = split(token)?;
    let header = &parts.header;

    // JOSE algorithm names are case-sensitive; only the exact registered name
    // counts. `none`, HS* and anything else never parse to an Algorithm.
    let alg: crate::Algorithm = header.alg.parse()?;
    if alg.as_str() != header.alg {
        return Err(Error::UnsupportedAlgorithm(header.alg.clone()));
    }
    if !algorithms.contains(&alg) {
        return Err(Error::AlgorithmNotAllowed(header.alg.clone()));
    }
    if header.crit {
        return Err(Error::Malformed("unsupported crit header"));
    }
    if !typ_ok(header.typ.as_deref()) {
        return Err(Error::WrongType);
    }
    let kid = header.kid.as_ref().ok_or(Error::MissingKid)?.as_str();
    let key = keys
        .get(kid)
        .ok_or_else(|| Error::UnknownKey(kid.to_owned()))?;
    // The key, not the token, decides the algorithm: a token may not pick a
    // different algorithm for a key than the one the key was loaded for.
    if key.algorithm() != alg {
        return Err(Error::AlgorithmNotAllowed(format!(
            "{} token for {} key {kid}",
            header.alg,
            key.algorithm()
        )));
    }
    let sig = b64::decode(parts.signature).ok_or(Error::BadSignature)?;
    if !key.verify_signature(parts.signing_input.as_bytes(), &sig) {
        return Err(Error::BadSignature);
    }
    b64::decode(parts.payload).ok_or(Error::Malformed("payload base64url"))
}

/// The payload's `iss`, without verifying anything: only for choosing which issuer's keys and
/// policy to verify the token with (the verification then checks `iss` again). None when the
/// payload has no string `iss`.
pub fn peek_issuer(token: &str) -> Result<Option<String>, Error> {
    #[derive(Deserialize)]
    struct Iss {
        #[serde(default)]
        iss: Option<serde_json::Value>,
    }
    let parts = split(token)?;
    let payload = b64::decode(parts.payload).ok_or(Error::Malformed("payload base64url"))?;
    let peeked: Iss = json_object(&payload).ok_or(Error::Malformed("claims"))?;
    Ok(match peeked.iss {
        Some(serde_json::Value::String(iss)) => Some(iss),
        _ => None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use aws_lc_rs::hmac;
    use serde_json::{json, Value};

    use super::*;
    use crate::{Algorithm, VerifyingKey};

    const NOW: i64 = 1_700_000_000;

    /// RSA key generation is slow in debug builds; share one key per algorithm (with the
    /// `foreign` tests too).
    pub(crate) fn key(alg: Algorithm) -> &'static SigningKey {
        static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            Algorithm::ALL
                .into_iter()
                .map(|a| SigningKey::generate(a).unwrap())
                .collect()
        });
        keys.iter().find(|k| k.algorithm() == alg).unwrap()
    }

    pub(crate) fn all_keys() -> KeySet {
        Algorithm::ALL
            .into_iter()
            .map(|a| key(a).verifying_key())
            .collect()
    }

    fn claims() -> Claims {
        Claims {
            sub: "user-1".parse().unwrap(),
            sid: "session-1".parse().unwrap(),
            role: crate::Role::Moderator,
            iss: "https://accounts.example".into(),
            aud: "edge".into(),
            iat: NOW - 10,
            exp: NOW + 900,
            jti: "jti-1".into(),
        }
    }

    fn validation() -> Validation {
        let mut v = Validation::new("https://accounts.example", "edge");
        v.algorithms = Algorithm::ALL.to_vec();
        v
    }

    fn header(alg: &str, kid: &str) -> Value {
        json!({"alg": alg, "typ": "at+jwt", "kid": kid})
    }

    fn claims_json() -> Value {
        serde_json::to_value(claims()).unwrap()
    }

    /// Signs arbitrary header and payload JSON with a real key.
    fn forge(header: &Value, payload: &Value, key: &SigningKey) -> String {
        sign_raw(
            &serde_json::to_vec(header).unwrap(),
            &serde_json::to_vec(payload).unwrap(),
            key,
        )
        .unwrap()
    }

    fn check(token: &str) -> Result<Claims, Error> {
        verify(token, &all_keys(), &validation(), NOW)
    }

    #[test]
    fn round_trip_each_algorithm() {
        for alg in Algorithm::ALL {
            let token = sign(&claims(), key(alg)).unwrap();
            assert_eq!(check(&token), Ok(claims()), "{alg}");
            // Only the key's own algorithm is allowed by a one-algorithm policy.
            let mut v = validation();
            v.algorithms = vec![alg];
            assert_eq!(verify(&token, &all_keys(), &v, NOW), Ok(claims()));
            let head: Value =
                serde_json::from_slice(&b64::decode(token.split('.').next().unwrap()).unwrap())
                    .unwrap();
            assert_eq!(head, header(alg.as_str(), key(alg).kid()));
        }
        // ES256 signatures are the fixed 64-byte r||s form, not DER.
        let token = sign(&claims(), key(Algorithm::ES256)).unwrap();
        let sig = b64::decode(token.rsplit('.').next().unwrap()).unwrap();
        assert_eq!(sig.len(), 64);
    }

    #[test]
    fn default_validation_is_rs256_only() {
        let v = Validation::new("https://accounts.example", "edge");
        assert_eq!(v.algorithms, vec![Algorithm::RS256]);
        assert_eq!(v.leeway_secs, 30);
        let es = sign(&claims(), key(Algorithm::ES256)).unwrap();
        assert_eq!(
            verify(&es, &all_keys(), &v, NOW),
            Err(Error::AlgorithmNotAllowed("ES256".into()))
        );
        let rs = sign(&claims(), key(Algorithm::RS256)).unwrap();
        assert_eq!(verify(&rs, &all_keys(), &v, NOW), Ok(claims()));
    }

    #[test]
    fn tampering_is_detected() {
        for alg in Algorithm::ALL {
            let token = sign(&claims(), key(alg)).unwrap();
            let parts: Vec<&str> = token.split('.').collect();

            let mut elevated = claims_json();
            elevated["role"] = json!(99);
            let payload = b64::encode(&serde_json::to_vec(&elevated).unwrap());
            let swapped = format!("{}.{}.{}", parts[0], payload, parts[2]);
            assert_eq!(check(&swapped), Err(Error::BadSignature), "{alg} payload");

            let mut sig = b64::decode(parts[2]).unwrap();
            sig[5] ^= 1;
            let flipped = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&sig));
            assert_eq!(check(&flipped), Err(Error::BadSignature), "{alg} signature");

            let truncated = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&sig[..10]));
            assert_eq!(
                check(&truncated),
                Err(Error::BadSignature),
                "{alg} truncated"
            );

            let empty = format!("{}.{}.", parts[0], parts[1]);
            assert_eq!(check(&empty), Err(Error::BadSignature), "{alg} empty");
        }
    }

    #[test]
    fn kid_rules() {
        let token = sign(&claims(), key(Algorithm::EdDSA)).unwrap();
        // A set without the signing key.
        let others: KeySet = [key(Algorithm::RS256).verifying_key()]
            .into_iter()
            .collect();
        assert_eq!(
            verify(&token, &others, &validation(), NOW),
            Err(Error::UnknownKey(key(Algorithm::EdDSA).kid().into()))
        );
        // Another Ed25519 key published under the same kid must not verify.
        let impostor = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let jwk = crate::Jwk {
            kid: Some(key(Algorithm::EdDSA).kid().into()),
            ..impostor.public_jwk()
        };
        let set: KeySet = [VerifyingKey::from_jwk(&jwk).unwrap()]
            .into_iter()
            .collect();
        assert_eq!(
            verify(&token, &set, &validation(), NOW),
            Err(Error::BadSignature)
        );
        // No kid at all.
        let no_kid = forge(
            &json!({"alg": "EdDSA", "typ": "at+jwt"}),
            &claims_json(),
            key(Algorithm::EdDSA),
        );
        assert_eq!(check(&no_kid), Err(Error::MissingKid));
        assert_eq!(peek_kid(&no_kid), Ok(None));
        assert_eq!(
            peek_kid(&token),
            Ok(Some(key(Algorithm::EdDSA).kid().parse().unwrap()))
        );
        // A kid that is no usable id makes the header malformed.
        let bad_kid = forge(
            &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "a\nb"}),
            &claims_json(),
            key(Algorithm::EdDSA),
        );
        assert_eq!(check(&bad_kid), Err(Error::Malformed("header JSON")));
    }

    #[test]
    fn alg_none_is_rejected() {
        let rsa_kid = key(Algorithm::RS256).kid();
        for name in ["none", "None", "NONE"] {
            let token = format!(
                "{}.{}.",
                b64::encode(&serde_json::to_vec(&header(name, rsa_kid)).unwrap()),
                b64::encode(&serde_json::to_vec(&claims_json()).unwrap()),
            );
            assert_eq!(check(&token), Err(Error::UnsupportedAlgorithm(name.into())));
        }
    }

    #[test]
    fn hmac_key_confusion_is_rejected() {
        // The classic attack: HS256 "signed" with the RSA public key as the
        // HMAC secret, naming the RSA key's kid.
        let rsa = key(Algorithm::RS256);
        let head = b64::encode(&serde_json::to_vec(&header("HS256", rsa.kid())).unwrap());
        let body = b64::encode(&serde_json::to_vec(&claims_json()).unwrap());
        let input = format!("{head}.{body}");
        let pem = rsa.public_pem().unwrap();
        let secrets: [Vec<u8>; 2] = [pem.clone().into_bytes(), pem.trim_end().as_bytes().to_vec()];
        for secret in secrets {
            let tag = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, &secret),
                input.as_bytes(),
            );
            let token = format!("{input}.{}", b64::encode(tag.as_ref()));
            assert_eq!(
                check(&token),
                Err(Error::UnsupportedAlgorithm("HS256".into()))
            );
        }
        for name in ["HS384", "HS512", "RS512", "PS256", "ES384"] {
            let token = forge(&header(name, rsa.kid()), &claims_json(), rsa);
            assert_eq!(check(&token), Err(Error::UnsupportedAlgorithm(name.into())));
        }
    }

    #[test]
    fn algorithm_must_match_the_key_exactly() {
        // A genuine ES256 signature presented under the RSA key's kid.
        let ec = key(Algorithm::ES256);
        let token = forge(
            &header("ES256", key(Algorithm::RS256).kid()),
            &claims_json(),
            ec,
        );
        assert!(matches!(check(&token), Err(Error::AlgorithmNotAllowed(_))));
        // Lower-case names are not the registered JOSE name.
        let token = forge(&header("es256", ec.kid()), &claims_json(), ec);
        assert_eq!(
            check(&token),
            Err(Error::UnsupportedAlgorithm("es256".into()))
        );
        // Unknown critical extensions.
        let mut head = header("ES256", ec.kid());
        head["crit"] = json!(["exp"]);
        assert_eq!(
            check(&forge(&head, &claims_json(), ec)),
            Err(Error::Malformed("unsupported crit header"))
        );
        // `"crit": null` was read as no crit at all (the token fuzz target asserts this).
        head["crit"] = Value::Null;
        assert_eq!(
            check(&forge(&head, &claims_json(), ec)),
            Err(Error::Malformed("unsupported crit header"))
        );
    }

    /// serde reads a struct from a JSON array of its fields, so `["EdDSA","at+jwt","kid"]` passed
    /// as a header and an array of claims as a payload (the token fuzz target asserts this).
    #[test]
    fn header_and_payload_must_be_json_objects() {
        let k = key(Algorithm::EdDSA);
        let object_header = serde_json::to_vec(&header("EdDSA", k.kid())).unwrap();
        let array_header = serde_json::to_vec(&json!(["EdDSA", "at+jwt", k.kid()])).unwrap();
        let claims = serde_json::to_vec(&claims_json()).unwrap();
        let c = claims_json();
        let array_claims = serde_json::to_vec(&json!([
            c["sub"], c["sid"], c["role"], c["iss"], c["aud"], c["iat"], c["exp"], null, c["jti"]
        ]))
        .unwrap();
        assert!(check(&sign_raw(&object_header, &claims, k).unwrap()).is_ok());
        assert_eq!(
            check(&sign_raw(&array_header, &claims, k).unwrap()),
            Err(Error::Malformed("header JSON"))
        );
        assert_eq!(
            check(&sign_raw(&object_header, &array_claims, k).unwrap()),
            Err(Error::Malformed("claims"))
        );
        assert_eq!(
            peek_kid(&sign_raw(&array_header, &claims, k).unwrap()),
            Err(Error::Malformed("header JSON"))
        );
    }

    /// Found by the token fuzz target: invalid UTF-8 inside an unknown member's string was
    /// skipped by serde_json, so the token verified although no JSON reader would accept it.
    #[test]
    fn header_and_payload_must_be_utf8() {
        let k = key(Algorithm::EdDSA);
        let mut bad_header = format!(
            r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}","x":[""#,
            k.kid()
        )
        .into_bytes();
        bad_header.extend_from_slice(b"\xadxp\"]}");
        let claims = serde_json::to_vec(&claims_json()).unwrap();
        assert_eq!(
            check(&sign_raw(&bad_header, &claims, k).unwrap()),
            Err(Error::Malformed("header JSON"))
        );
        let object_header = serde_json::to_vec(&header("EdDSA", k.kid())).unwrap();
        let mut bad_claims = claims[..claims.len() - 1].to_vec();
        bad_claims.extend_from_slice(b",\"x\":\"\xff\"}");
        assert_eq!(
            check(&sign_raw(&object_header, &bad_claims, k).unwrap()),
            Err(Error::Malformed("claims"))
        );
        // Also found by fuzzing: a number no JSON reader can hold, in an unknown member.
        let mut huge = claims[..claims.len() - 1].to_vec();
        huge.extend_from_slice(b",\"x\":1e400}");
        assert_eq!(
            check(&sign_raw(&object_header, &huge, k).unwrap()),
            Err(Error::Malformed("claims"))
        );
    }

    #[test]
    fn typ_rules() {
        let k = key(Algorithm::EdDSA);
        let with_typ = |typ: Option<&str>| {
            let mut h = json!({"alg": "EdDSA", "kid": k.kid()});
            if let Some(t) = typ {
                h["typ"] = json!(t);
            }
            check(&forge(&h, &claims_json(), k))
        };
        assert_eq!(with_typ(None), Err(Error::WrongType));
        assert_eq!(with_typ(Some("JWT")), Err(Error::WrongType));
        assert_eq!(with_typ(Some("")), Err(Error::WrongType));
        assert_eq!(with_typ(Some("at+jwt")), Ok(claims()));
        assert_eq!(with_typ(Some("AT+JWT")), Ok(claims()));
        assert_eq!(with_typ(Some("application/at+jwt")), Ok(claims()));
    }

    #[test]
    fn expiry_and_leeway() {
        let k = key(Algorithm::EdDSA);
        let at = |exp: i64, iat: i64, leeway: i64| {
            let c = Claims {
                exp,
                iat,
                ..claims()
            };
            let mut v = validation();
            v.leeway_secs = leeway;
            verify(&sign(&c, k).unwrap(), &all_keys(), &v, NOW)
        };
        assert!(at(NOW, NOW - 60, 0).is_ok(), "exp == now is still valid");
        assert_eq!(at(NOW - 1, NOW - 60, 0), Err(Error::Expired));
        assert!(at(NOW - 30, NOW - 60, 30).is_ok(), "within leeway");
        assert_eq!(at(NOW - 31, NOW - 60, 30), Err(Error::Expired));
        assert!(at(NOW + 900, NOW + 30, 30).is_ok(), "iat within leeway");
        assert_eq!(at(NOW + 900, NOW + 31, 30), Err(Error::NotYetValid));
        assert_eq!(at(NOW + 900, NOW + 1, 0), Err(Error::NotYetValid));
        // Extreme values do not overflow.
        assert!(at(i64::MAX, NOW, i64::MAX).is_ok());
        assert_eq!(at(i64::MIN, NOW, 30), Err(Error::Expired));
        // nbf in the future.
        let mut payload = claims_json();
        payload["nbf"] = json!(NOW + 120);
        let token = forge(&header("EdDSA", k.kid()), &payload, k);
        assert_eq!(check(&token), Err(Error::NotYetValid));
    }

    #[test]
    fn issuer_and_audience() {
        let k = key(Algorithm::ES256);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut payload = claims_json();
            f(&mut payload);
            check(&forge(&header("ES256", k.kid()), &payload, k))
        };
        assert_eq!(
            with(&|p| p["iss"] = json!("https://evil.example")),
            Err(Error::WrongIssuer)
        );
        assert_eq!(
            with(&|p| p["iss"] = json!("https://accounts.example/")),
            Err(Error::WrongIssuer)
        );
        assert_eq!(
            with(&|p| p["aud"] = json!("other")),
            Err(Error::WrongAudience)
        );
        assert_eq!(
            with(&|p| p["aud"] = json!(["a", "edge", "b"])),
            Ok(claims())
        );
        assert_eq!(
            with(&|p| p["aud"] = json!(["a", "b"])),
            Err(Error::WrongAudience)
        );
        assert_eq!(with(&|p| p["aud"] = json!([])), Err(Error::WrongAudience));
        assert_eq!(
            with(&|p| p["aud"] = json!(7)),
            Err(Error::Malformed("claims"))
        );
        // Extra claims are ignored; missing or duplicated required ones are not.
        assert_eq!(with(&|p| p["scope"] = json!("x")), Ok(claims()));
        assert_eq!(
            with(&|p| {
                p.as_object_mut().unwrap().remove("exp");
            }),
            Err(Error::Malformed("claims"))
        );
        let dup = br#"{"sub":"a","sub":"b","sid":"s","role":1,"iss":"https://accounts.example","aud":"edge","iat":1,"exp":9999999999,"jti":"j"}"#;
        let head = serde_json::to_vec(&header("ES256", k.kid())).unwrap();
        assert_eq!(
            check(&sign_raw(&head, dup, k).unwrap()),
            Err(Error::Malformed("claims"))
        );
    }

    #[test]
    fn structural_rejections() {
        let token = sign(&claims(), key(Algorithm::EdDSA)).unwrap();
        let too_long = format!("{token}{}", "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(check(&too_long), Err(Error::Malformed("token too long")));
        assert_eq!(peek_kid(&too_long), Err(Error::Malformed("token too long")));
        let (two, _) = token.rsplit_once('.').unwrap();
        assert!(matches!(check(two), Err(Error::Malformed(_))));
        assert!(matches!(
            check(&format!("{token}.x")),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(check(""), Err(Error::Malformed(_))));
        assert!(matches!(check(".."), Err(Error::Malformed(_))));
        // Padding or standard-alphabet characters anywhere make it invalid.
        let parts: Vec<&str> = token.split('.').collect();
        let padded_sig = format!("{}.{}.{}=", parts[0], parts[1], parts[2]);
        assert_eq!(check(&padded_sig), Err(Error::BadSignature));
        let padded_head = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
        assert!(matches!(check(&padded_head), Err(Error::Malformed(_))));
        let std_alphabet = token.replace('-', "+").replace('_', "/");
        if std_alphabet != token {
            assert!(check(&std_alphabet).is_err());
        }
        assert!(matches!(peek_kid("abc"), Err(Error::Malformed(_))));
    }

    #[test]
    fn verifies_tokens_for_keys_loaded_from_jwks() {
        let jwks = all_keys().to_jwks();
        let json = serde_json::to_string(&jwks).unwrap();
        let (set, errors) = KeySet::from_jwks(&serde_json::from_str(&json).unwrap());
        assert!(errors.is_empty());
        for alg in Algorithm::ALL {
            let token = sign(&claims(), key(alg)).unwrap();
            assert_eq!(verify(&token, &set, &validation(), NOW), Ok(claims()));
        }
    }

    #[test]
    fn typed_tokens_are_never_access_tokens() {
        let key = SigningKey::generate(crate::Algorithm::EdDSA).unwrap();
        let now = 1_700_000_000;
        let payload = json!({"iss": "iss", "aud": "aud", "sub": "u", "sid": "s", "role": 1,
                             "iat": now, "exp": now + 60, "jti": "j"});
        let token = sign_typed(&payload, "identity+jwt", &key).unwrap();
        let header: Value =
            serde_json::from_slice(&crate::b64::decode(token.split('.').next().unwrap()).unwrap())
                .unwrap();
        assert_eq!(header["typ"], "identity+jwt");
        assert_eq!(header["kid"], key.kid());
        let mut keys = KeySet::new();
        keys.insert(key.verifying_key());
        let mut validation = Validation::new("iss", "aud");
        validation.algorithms = vec![crate::Algorithm::EdDSA];
        assert_eq!(
            verify(&token, &keys, &validation, now).unwrap_err(),
            Error::WrongType
        );
        assert!(sign_typed(&payload, "AT+JWT", &key).is_err());
        assert!(sign_typed(&json!([1]), "identity+jwt", &key).is_err());
    }
}
