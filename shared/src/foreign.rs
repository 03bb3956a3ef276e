//! Tokens of other issuers (a company IdP, an OpenID provider): the same JOSE checks as
//! [`crate::verify`], a generic claims map instead of [`crate::Claims`].
//!
//! Third-party access tokens carry no `sid`/`role` of ours and often say `typ: JWT` (or nothing),
//! so they cannot be [`crate::Claims`]. What stays as strict: the algorithm is pinned by the key,
//! the key is found by `kid`, `crit` is refused, the signature is checked before anything in the
//! payload is trusted, `exp` is required, `nbf`/`iat` may not lie in the future (with the
//! leeway), `iss` must match exactly and `aud` (a string or an array) must name one of the
//! accepted audiences. Header and payload have the same size, UTF-8 and JSON-object rules, and
//! a payload member may not appear twice. Which claim is the user id is the caller's business.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::jwt::{json_object, verified_payload};
use crate::{Algorithm, Error, KeySet, ACCESS_TOKEN_TYPE};

/// What another issuer's token must satisfy.
#[derive(Clone, Debug)]
pub struct ForeignValidation {
    /// Algorithms accepted in token headers (each key also pins its own).
    pub algorithms: Vec<Algorithm>,
    /// Required `iss`, compared exactly.
    pub issuer: String,
    /// `aud` must name at least one of these (never empty: [`verify_foreign`] refuses every
    /// token then).
    pub audiences: Vec<String>,
    /// Allowed clock skew for `exp` / `iat` / `nbf`, in seconds.
    pub leeway_secs: i64,
}

impl ForeignValidation {
    /// RS256 only, 30 s leeway.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> ForeignValidation {
        ForeignValidation {
            algorithms: vec![Algorithm::RS256],
            issuer: issuer.into(),
            audiences,
            leeway_secs: 30,
        }
    }
}

/// `typ` of a foreign access token: absent, `JWT` (most providers) or `at+jwt` (RFC 9068).
fn foreign_typ(typ: Option<&str>) -> bool {
    match typ {
        None => true,
        Some(t) => {
            t.eq_ignore_ascii_case("JWT")
                || t.eq_ignore_ascii_case("application/jwt")
                || t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
                || t.eq_ignore_ascii_case("application/at+jwt")
        }
    }
}

/// A JSON object whose members are all different (serde_json's own map keeps the last of two,
/// which another reader might not: the user id must be the one every reader sees).
struct UniqueMap(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueMap, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueMap(map))
            }
        }
        d.deserialize_map(V)
    }
}

/// A numeric date claim: None when absent, an error when present but not an integer.
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, Error> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(Error::Malformed(name)),
    }
}

/// Verifies another issuer's compact JWS and returns its payload as a map. See the module docs
/// for what is checked; the signature is checked before the payload is read.
pub fn verify_foreign(
    token: &str,
    keys: &KeySet,
    validation: &ForeignValidation,
    now_unix: i64,
) -> Result<Map<String, Value>, Error> {
    let payload = verified_payload(token, keys, &validation.algorithms, foreign_typ)?;
    let UniqueMap(claims) = json_object(&payload).ok_or(Error::Malformed("claims"))?;
    let leeway = validation.leeway_secs.max(0);
    let exp = time_claim(&claims, "exp")?.ok_or(Error::Malformed("exp"))?;
    if now_unix > crate::lifetime::accepted_until(exp, leeway) {
        return Err(Error::Expired);
    }
    let not_before = [time_claim(&claims, "nbf")?, time_claim(&claims, "iat")?]
        .into_iter()
        .flatten()
        .max();
    if not_before.is_some_and(|nb| nb > now_unix.saturating_add(leeway)) {
        return Err(Error::NotYetValid);
    }
    if claims.get("iss").and_then(Value::as_str) != Some(validation.issuer.as_str()) {
        return Err(Error::WrongIssuer);
    }
    let accepted = |a: &Value| {
        a.as_str()
            .is_some_and(|a| validation.audiences.iter().any(|w| w == a))
    };
    let aud_ok = match claims.get("aud") {
        Some(Value::Array(list)) => list.iter().any(accepted),
        Some(one) => accepted(one),
        None => false,
    };
    if !aud_ok {
        return Err(Error::WrongAudience);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jwt::sign_raw;
    use crate::jwt::tests::{all_keys as keys, key};

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://idp.example";

    fn validation() -> ForeignValidation {
        let mut v = ForeignValidation::new(ISS, vec!["api".into(), "other".into()]);
        v.algorithms = vec![Algorithm::RS256, Algorithm::ES256];
        v
    }

    fn payload() -> Value {
        json!({"iss": ISS, "sub": "alice", "aud": "api", "iat": NOW - 5, "exp": NOW + 300})
    }

    fn token_with(header: &Value, payload: &Value, alg: Algorithm) -> String {
        sign_raw(
            &serde_json::to_vec(header).unwrap(),
            &serde_json::to_vec(payload).unwrap(),
            key(alg),
        )
        .unwrap()
    }

    fn token(payload: &Value) -> String {
        let k = key(Algorithm::RS256);
        token_with(
            &json!({"alg": "RS256", "typ": "JWT", "kid": k.kid()}),
            payload,
            Algorithm::RS256,
        )
    }

    fn check(token: &str) -> Result<Map<String, Value>, Error> {
        verify_foreign(token, &keys(), &validation(), NOW)
    }

    #[test]
    fn a_provider_token_verifies_to_its_claims() {
        let claims = check(&token(&payload())).unwrap();
        assert_eq!(claims.get("sub"), Some(&json!("alice")));
        // No sid, no role, no jti: nothing of ours is required.
        assert!(claims.get("sid").is_none());
        // aud as an array naming one accepted audience among others.
        let mut p = payload();
        p["aud"] = json!(["someone-else", "other"]);
        assert!(check(&token(&p)).is_ok());
        // ES256 is allowed by this policy; EdDSA is not.
        let es = key(Algorithm::ES256);
        let t = token_with(
            &json!({"alg": "ES256", "kid": es.kid()}),
            &payload(),
            Algorithm::ES256,
        );
        assert!(check(&t).is_ok(), "no typ at all is fine");
        let ed = key(Algorithm::EdDSA);
        let t = token_with(
            &json!({"alg": "EdDSA", "kid": ed.kid()}),
            &payload(),
            Algorithm::EdDSA,
        );
        assert_eq!(check(&t), Err(Error::AlgorithmNotAllowed("EdDSA".into())));
    }

    #[test]
    fn issuer_audience_and_times_are_checked() {
        let with = |name: &str, value: Value| {
            let mut p = payload();
            p[name] = value;
            check(&token(&p))
        };
        assert_eq!(
            with("iss", json!("https://evil.example")),
            Err(Error::WrongIssuer)
        );
        assert_eq!(with("iss", json!(7)), Err(Error::WrongIssuer));
        assert_eq!(with("aud", json!("foreign")), Err(Error::WrongAudience));
        assert_eq!(with("aud", json!(["x", "y"])), Err(Error::WrongAudience));
        assert_eq!(with("aud", json!([])), Err(Error::WrongAudience));
        assert_eq!(with("exp", json!(NOW - 31)), Err(Error::Expired));
        assert!(with("exp", json!(NOW - 29)).is_ok(), "within the leeway");
        assert_eq!(with("exp", json!("soon")), Err(Error::Malformed("exp")));
        assert_eq!(with("nbf", json!(NOW + 60)), Err(Error::NotYetValid));
        assert_eq!(with("iat", json!(NOW + 60)), Err(Error::NotYetValid));
        let mut p = payload();
        p.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(&token(&p)), Err(Error::Malformed("exp")));
        let mut p = payload();
        p.as_object_mut().unwrap().remove("aud");
        assert_eq!(check(&token(&p)), Err(Error::WrongAudience));
    }

    #[test]
    fn jose_rules_are_those_of_our_own_tokens() {
        let k = key(Algorithm::RS256);
        let head = |typ: &str| json!({"alg": "RS256", "typ": typ, "kid": k.kid()});
        for typ in ["JWT", "jwt", "at+jwt", "application/at+jwt"] {
            assert!(check(&token_with(&head(typ), &payload(), Algorithm::RS256)).is_ok());
        }
        for typ in ["id+jwt", "JOSE", ""] {
            let t = token_with(&head(typ), &payload(), Algorithm::RS256);
            assert_eq!(check(&t), Err(Error::WrongType), "{typ}");
        }
        let t = token_with(&json!({"alg": "RS256"}), &payload(), Algorithm::RS256);
        assert_eq!(check(&t), Err(Error::MissingKid));
        let t = token_with(
            &json!({"alg": "RS256", "kid": "nope"}),
            &payload(),
            Algorithm::RS256,
        );
        assert_eq!(check(&t), Err(Error::UnknownKey("nope".into())));
        let t = token_with(
            &json!({"alg": "none", "kid": k.kid()}),
            &payload(),
            Algorithm::RS256,
        );
        assert_eq!(check(&t), Err(Error::UnsupportedAlgorithm("none".into())));
        let t = token_with(
            &json!({"alg": "RS256", "kid": k.kid(), "crit": ["exp"]}),
            &payload(),
            Algorithm::RS256,
        );
        assert_eq!(check(&t), Err(Error::Malformed("unsupported crit header")));
        // Our own keys' pinning: an ES256 header naming the RSA key.
        let t = token_with(
            &json!({"alg": "ES256", "kid": k.kid()}),
            &payload(),
            Algorithm::ES256,
        );
        assert!(matches!(check(&t), Err(Error::AlgorithmNotAllowed(_))));
        // A flipped payload byte breaks the signature.
        let good = token(&payload());
        let parts: Vec<&str> = good.split('.').collect();
        let mut p = payload();
        p["sub"] = json!("mallory");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            crate::b64::encode(&serde_json::to_vec(&p).unwrap()),
            parts[2]
        );
        assert_eq!(check(&forged), Err(Error::BadSignature));
        assert!(check(&"a".repeat(crate::MAX_TOKEN_LEN + 1)).is_err());
    }

    #[test]
    fn duplicate_and_non_object_payloads_are_refused() {
        let k = key(Algorithm::RS256);
        let header = serde_json::to_vec(&json!({"alg": "RS256", "kid": k.kid()})).unwrap();
        let dup = format!(
            r#"{{"iss":"{ISS}","sub":"alice","sub":"mallory","aud":"api","exp":{}}}"#,
            NOW + 60
        );
        let t = sign_raw(&header, dup.as_bytes(), k).unwrap();
        assert_eq!(check(&t), Err(Error::Malformed("claims")));
        let t = sign_raw(&header, b"[1,2]", k).unwrap();
        assert_eq!(check(&t), Err(Error::Malformed("claims")));
    }

    #[test]
    fn peek_issuer_reads_without_verifying() {
        assert_eq!(crate::peek_issuer(&token(&payload())), Ok(Some(ISS.into())));
        let mut p = payload();
        p["iss"] = json!(3);
        assert_eq!(crate::peek_issuer(&token(&p)), Ok(None));
        assert!(crate::peek_issuer("not a token").is_err());
    }
}
