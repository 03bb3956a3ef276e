//! The access-token format shared by the accounts service (which signs) and
//! the edge verifier (which verifies on every request).
//!
//! Tokens are JWS compact serializations (RFC 7515) following the RFC 9068
//! access-token profile (`typ: at+jwt`), signed with RS256, ES256 or EdDSA.
//! JOSE is implemented directly over `aws-lc-rs`, `base64` and `serde_json`:
//! the surface we need is small, and owning it lets us be strict (exact
//! algorithm pinning per key, canonical base64url, required `typ`/`kid`).
//! There is no I/O and nothing async; fetching JWKS or reading key files is
//! the caller's job.
//!
//! Modules (all items are re-exported at the crate root):
//! - `names`: cookie and header names and the token `typ`.
//! - `alg`: [`Algorithm`].
//! - `claims`: [`Claims`] and the [`Validation`] policy.
//! - `keys`: [`SigningKey`], [`VerifyingKey`], [`KeySet`]; public keys are
//!   parsed once on load, never per verification.
//! - `jwk`: [`Jwk`], [`JwkSet`] and RFC 7638 thumbprints (used as `kid`).
//! - `jwt`: [`sign`], [`verify`], [`peek_kid`].
//! - `error`: [`Error`].
//! - `b64`, `pem`, `der` (private): strict encodings.
//!
//! ```
//! use auth_token::{sign, verify, Algorithm, Claims, KeySet, SigningKey, Validation};
//!
//! let key = SigningKey::generate(Algorithm::EdDSA)?;
//! let claims = Claims {
//!     sub: "u1".into(), sid: "s1".into(), role: 1, iss: "accounts".into(),
//!     aud: "edge".into(), iat: 1_000, exp: 1_900, jti: "j1".into(),
//! };
//! let token = sign(&claims, &key)?;
//!
//! let mut keys = KeySet::new();
//! keys.insert(key.verifying_key());
//! let mut validation = Validation::new("accounts", "edge");
//! validation.algorithms = vec![Algorithm::EdDSA];
//! assert_eq!(verify(&token, &keys, &validation, 1_100)?, claims);
//! # Ok::<(), auth_token::Error>(())
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod alg;
mod b64;
mod claims;
mod der;
mod error;
mod jwk;
mod jwt;
mod keys;
mod names;
mod pem;

pub use alg::Algorithm;
pub use claims::{Claims, Validation};
pub use error::Error;
pub use jwk::{Jwk, JwkSet};
pub use jwt::{peek_kid, sign, verify, MAX_TOKEN_LEN};
pub use keys::{KeySet, SigningKey, VerifyingKey};
pub use names::{
    ACCESS_COOKIE, ACCESS_TOKEN_TYPE, HEADER_SESSION_ID, HEADER_USER_ID, HEADER_USER_ROLE,
    REFRESH_COOKIE,
};
