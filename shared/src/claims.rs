//! Access-token claims and the policy they are validated against.

use serde::{Deserialize, Serialize};

use crate::{Algorithm, Error, Role, SessionId, UserId};

/// The claims of an access token.
///
/// `sid` (session id) and `role` are private claims; the rest are the
/// registered claims RFC 9068 requires. Times are Unix seconds. The typed
/// fields are checked when a token is read, so a verified token's `sub` is a
/// usable header value and its `role` one of the three known roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: UserId,
    /// Session id, so the edge can tie a request to a revocable session.
    pub sid: SessionId,
    /// User role.
    pub role: Role,
    /// Issuer.
    pub iss: String,
    /// Audience. On output of `verify` this is the configured audience.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// Token id.
    pub jti: String,
}

/// `aud` may be a string or an array of strings (RFC 7519 section 4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(a) => a == wanted,
            Audience::Many(list) => list.iter().any(|a| a == wanted),
        }
    }
}

/// What a received token's payload must contain. Kept separate from
/// [`Claims`] so the wire form (array `aud`, optional `nbf`) does not leak
/// into the type callers use. serde rejects duplicate members here, so a
/// payload cannot carry two different `sub`s that other parsers might read
/// differently.
#[derive(Deserialize)]
pub(crate) struct ReceivedClaims {
    sub: UserId,
    sid: SessionId,
    role: Role,
    iss: String,
    aud: Audience,
    iat: i64,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    jti: String,
}

impl ReceivedClaims {
    /// Applies the time, issuer and audience rules. Only called once the
    /// signature has been verified.
    pub(crate) fn validate(self, v: &Validation, now: i64) -> Result<Claims, Error> {
        let leeway = v.leeway_secs.max(0);
        if now > v.accepted_until(self.exp) {
            return Err(Error::Expired);
        }
        // A token "issued in the future" means clock skew beyond the leeway or
        // a forged iat; either way it is not valid yet.
        let not_before = self.nbf.map_or(self.iat, |nbf| nbf.max(self.iat));
        if not_before > now.saturating_add(leeway) {
            return Err(Error::NotYetValid);
        }
        if self.iss != v.issuer {
            return Err(Error::WrongIssuer);
        }
        if !self.aud.contains(&v.audience) {
            return Err(Error::WrongAudience);
        }
        Ok(Claims {
            sub: self.sub,
            sid: self.sid,
            role: self.role,
            iss: self.iss,
            aud: v.audience.clone(),
            iat: self.iat,
            exp: self.exp,
            jti: self.jti,
        })
    }
}

/// Verification policy.
#[derive(Clone, Debug)]
pub struct Validation {
    /// Algorithms accepted in token headers (each key also pins its own).
    pub algorithms: Vec<Algorithm>,
    /// Required `iss`, compared exactly.
    pub issuer: String,
    /// Audience that `aud` must contain.
    pub audience: String,
    /// Allowed clock skew for `exp` / `iat` / `nbf`, in seconds.
    pub leeway_secs: i64,
}

impl Validation {
    /// RS256 only, 30 s leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Validation {
            algorithms: vec![Algorithm::RS256],
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: 30,
        }
    }

    /// The last second a token expiring at `exp` is accepted (`exp` + leeway); caches of
    /// verified tokens must not keep an entry past it.
    pub fn accepted_until(&self, exp: i64) -> i64 {
        crate::lifetime::accepted_until(exp, self.leeway_secs)
    }
}
