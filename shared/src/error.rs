//! The single error type of the crate.

/// Why a token or key was rejected.
///
/// Variants carry no secret material, so they are safe to log. Callers at
/// the edge should still answer every verification failure with the same
/// generic 401 and keep the detail for logs.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input is not structurally valid (bad base64url, JSON, PEM, DER, ...).
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    /// The algorithm is not one this crate implements (includes `none` and HS*).
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The algorithm is implemented but not allowed here (by the validation
    /// policy, or because it does not match the selected key).
    #[error("algorithm not allowed: {0}")]
    AlgorithmNotAllowed(String),
    /// No key with this `kid` is known.
    #[error("unknown key id: {0}")]
    UnknownKey(String),
    /// The token header has no `kid`.
    #[error("token header has no kid")]
    MissingKid,
    /// The signature does not verify under the selected key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `iat` (or `nbf`) is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` differs from the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// The header `typ` is missing or is not `at+jwt`.
    #[error("wrong token type")]
    WrongType,
    /// A key could not be parsed or is not acceptable (size, curve, usage...).
    #[error("invalid key: {0}")]
    InvalidKey(String),
}
