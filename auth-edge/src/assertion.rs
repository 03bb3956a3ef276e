//! The signed identity assertion: for upstreams that must not trust unsigned headers (anything on
//! the network path could have set `X-User-Id`), the edge also forwards a short-lived JWT it signs
//! itself (Oathkeeper's `id_token` mutator, Istio's `outputPayloadToHeader`). The upstream checks it
//! against the edge's JWKS, served on the admin port at `/.well-known/jwks.json`.
//!
//! The token: header `{"alg","typ":"identity+jwt","kid"}` (never `at+jwt`: it can never pass as an
//! access token), claims `iss` (`AUTH_EDGE_ASSERTION_ISSUER`), `aud` (`AUTH_EDGE_ASSERTION_AUDIENCE`,
//! when set), `sub`, `sid`, `role`, `iat`, and `exp` = `iat` + `AUTH_EDGE_ASSERTION_TTL_SECONDS`, never
//! later than the access token's own `exp`. EdDSA or ES256 only: signing happens on the request
//! path, and one assertion is reused for half its lifetime by every request of the same token
//! (it lives beside the verified identity in the token cache).

use http::{HeaderName, HeaderValue};
use serde_json::json;

use auth_token::{Algorithm, JwkSet, SigningKey};

use crate::identity::Identity;

/// The JOSE `typ` of an assertion.
pub const ASSERTION_TYPE: &str = "identity+jwt";

/// Signs identity assertions with the edge's own key.
pub struct AssertionSigner {
    key: SigningKey,
    header: HeaderName,
    ttl_secs: i64,
    issuer: String,
    audience: Option<String>,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key prints as its kid only (SigningKey's own Debug).
        f.debug_struct("AssertionSigner")
            .field("kid", &self.key.kid())
            .field("header", &self.header)
            .field("ttl_secs", &self.ttl_secs)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl AssertionSigner {
    /// A signer with `key` (EdDSA or ES256), sending the assertion in `header`.
    pub fn new(
        key: SigningKey,
        header: HeaderName,
        ttl_secs: i64,
        issuer: String,
        audience: Option<String>,
    ) -> Result<AssertionSigner, String> {
        if !matches!(key.algorithm(), Algorithm::EdDSA | Algorithm::ES256) {
            return Err(format!(
                "{} signs too slowly for every request: use an Ed25519 or P-256 key",
                key.algorithm()
            ));
        }
        Ok(AssertionSigner {
            key,
            header,
            ttl_secs,
            issuer,
            audience,
        })
    }

    /// The header the assertion travels in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The public key, as served on the admin port.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.key.public_jwk()],
        }
    }

    /// Makes sure `identity` carries an assertion valid for at least half the lifetime: reuses
    /// the one it has, or signs a new one. On a signing failure (not expected with a loaded key)
    /// the identity keeps none, and the upstream gets no assertion: it refuses, never trusts.
    pub fn refresh(&self, identity: &Identity, now: i64) {
        identity.refresh_assertion(now, self.ttl_secs / 2, || self.sign(identity, now));
    }

    /// A new assertion for `identity` at `now`: its expiry and the header value.
    fn sign(&self, identity: &Identity, now: i64) -> Option<(i64, HeaderValue)> {
        let exp = (now + self.ttl_secs).min(identity.exp());
        let mut claims = json!({
            "iss": self.issuer,
            "sub": identity.user_id(),
            // A foreign token may have no session id or role: then the assertion has none.
            "sid": Some(identity.session_id()).filter(|s| !s.is_empty()),
            "role": identity.role(),
            "iat": now,
            "exp": exp,
        });
        if let Some(aud) = &self.audience {
            claims["aud"] = json!(aud);
        }
        if let Some(claims) = claims.as_object_mut() {
            claims.retain(|_, v| !v.is_null());
        }
        match auth_token::sign_typed(&claims, ASSERTION_TYPE, &self.key)
            .ok()
            .and_then(|token| HeaderValue::from_str(&token).ok())
        {
            Some(value) => Some((exp, value)),
            None => {
                tracing::error!("identity assertion could not be signed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn signer(alg: Algorithm) -> Result<AssertionSigner, String> {
        AssertionSigner::new(
            SigningKey::generate(alg).unwrap(),
            HeaderName::from_static("x-identity-assertion"),
            60,
            "auth-edge".into(),
            Some("orders".into()),
        )
    }

    fn part(token: &str, i: usize) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let raw = b64.decode(token.split('.').nth(i).unwrap()).unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    #[test]
    fn assertions_are_short_lived_typed_and_reused() {
        let s = signer(Algorithm::EdDSA).unwrap();
        let id = Identity::for_tests("u1");
        let now = crate::clock::unix_now();
        assert!(id.assertion().is_none());
        s.refresh(&id, now);
        let first = id.assertion().unwrap();
        let token = first.to_str().unwrap();
        let header = part(token, 0);
        assert_eq!(header["typ"], ASSERTION_TYPE);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], s.jwks().keys[0].kid.clone().unwrap());
        let claims = part(token, 1);
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["sid"], "u1");
        assert_eq!(claims["role"], 1);
        assert_eq!(claims["iss"], "auth-edge");
        assert_eq!(claims["aud"], "orders");
        assert_eq!(claims["exp"].as_i64().unwrap() - now, 60);

        // Reused within half the lifetime, renewed after.
        s.refresh(&id, now + 29);
        assert_eq!(id.assertion().unwrap(), first);
        s.refresh(&id, now + 31);
        assert_ne!(id.assertion().unwrap(), first);
        // Never outlives the access token (for_tests: exp = now + 600).
        s.refresh(&id, now + 590);
        let claims = part(id.assertion().unwrap().to_str().unwrap(), 1);
        assert_eq!(claims["exp"].as_i64().unwrap(), id.exp());
    }

    #[test]
    fn only_fast_algorithms() {
        assert!(signer(Algorithm::ES256).is_ok());
        assert!(signer(Algorithm::RS256).is_err());
    }
}
