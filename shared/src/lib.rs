//! The access-token format shared by the accounts service (which signs) and
//! the edge verifier (which verifies on every request).
//!
//! Tokens are JWS compact serializations (RFC 7515) following the RFC 9068
//! access-token profile (`typ: at+jwt`), signed with RS256, ES256 or EdDSA.
//! Besides the token itself, every other contract between the two services
//! lives here, so they cannot drift apart: how a request carries its token,
//! the revocation feed's messages and names, and the token lifetime policy.
//! JOSE is implemented directly over `aws-lc-rs`, `base64` and `serde_json`
//! (DER structures through RustCrypto's `spki` and `pkcs1`):
//! the surface we need is small, and owning it lets us be strict (exact
//! algorithm pinning per key, canonical base64url, required `typ`/`kid`).
//! There is no I/O and nothing async; fetching JWKS or reading key files is
//! the caller's job.
//!
//! Modules (all items are re-exported at the crate root):
//! - `names`: cookie and header names and the token `typ`.
//! - `credentials`: [`access_token`], the one rule for reading a request's
//!   token (Bearer header or cookie, refusals), and its table of cases.
//! - `revocation_feed`: [`FeedMessage`], [`Revocation`], the stream path and
//!   the Redis key and channel.
//! - `trace`: [`TraceParent`] (W3C Trace Context) and [`request_id`], the
//!   correlation both services log and pass on.
//! - `lifetime`: [`TokenLifetime`] (access TTL, leeway, revocation horizon)
//!   and [`accepted_until`].
//! - `alg`: [`Algorithm`].
//! - `claims`: [`Claims`] and the [`Validation`] policy.
//! - `ids`: [`UserId`], [`SessionId`], [`Kid`], [`Role`] (parsed, never
//!   defaulted: an out-of-range role is an error).
//! - `keys`: [`SigningKey`], [`VerifyingKey`], [`KeySet`]; public keys are
//!   parsed once on load, never per verification.
//! - `jwk`: [`Jwk`], [`JwkSet`] and RFC 7638 thumbprints (used as `kid`).
//! - `jwt`: [`sign`], [`verify`], [`peek_kid`], [`peek_issuer`].
//! - `foreign`: [`verify_foreign`] and [`ForeignValidation`]: other issuers' tokens (no `sid`
//!   or `role` of ours) under the same JOSE checks, returned as a claims map.
//! - `error`: [`Error`].
//! - `b64`, `pem`, `asn1` (private): strict encodings.
//!
//! ```
//! use auth_token::{sign, verify, Algorithm, Claims, KeySet, Role, SigningKey, Validation};
//!
//! let key = SigningKey::generate(Algorithm::EdDSA)?;
//! let claims = Claims {
//!     sub: "u1".parse()?, sid: "s1".parse()?, role: Role::Admin, iss: "accounts".into(),
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
mod asn1;
mod b64;
mod claims;
mod credentials;
mod error;
mod foreign;
mod ids;
mod jwk;
mod jwt;
mod keys;
mod lifetime;
mod names;
mod pem;
mod revocation_feed;
mod trace;

pub use alg::Algorithm;
pub use claims::{Claims, Validation};
#[doc(hidden)]
pub use credentials::cases as credential_cases;
pub use credentials::{access_token, Credential, CredentialError, TokenSource};
pub use error::Error;
pub use foreign::{verify_foreign, ForeignValidation};
pub use ids::{Kid, Role, SessionId, UserId, MAX_ID_LEN};
pub use jwk::{Jwk, JwkSet};
#[doc(hidden)]
pub use jwt::sign_payload;
pub use jwt::{peek_issuer, peek_kid, sign, sign_typed, verify, MAX_TOKEN_LEN};
pub use keys::{KeySet, SigningKey, VerifyingKey};
pub use lifetime::{accepted_until, TokenLifetime};
pub use names::{
    ACCESS_COOKIE, ACCESS_TOKEN_TYPE, HEADER_SESSION_ID, HEADER_USER_ID, HEADER_USER_ROLE,
    REFRESH_COOKIE,
};
pub use revocation_feed::{
    FeedMessage, Revocation, REDIS_REVOCATIONS_CHANNEL, REDIS_REVOKED_SET,
    REVOCATION_STREAM_CONTENT_TYPE, REVOCATION_STREAM_PATH,
};
pub use trace::{request_id, TraceParent, MAX_REQUEST_ID_LEN, REQUEST_ID, TRACEPARENT};
