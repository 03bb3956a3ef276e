//! The JWS algorithms this crate supports.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A JWS signature algorithm (RFC 7518 / RFC 8037).
///
/// Only asymmetric algorithms exist here on purpose: with no HMAC variant the
/// classic "HS256 signed with the RSA public key" confusion attack cannot be
/// expressed, and `none` is not representable either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048..=8192-bit keys).
    RS256,
    /// ECDSA P-256 with SHA-256, fixed-width 64-byte `r || s` signatures.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    /// The registered JOSE name (`"RS256"`, `"ES256"`, `"EdDSA"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Case-insensitive, for configuration files and environment variables.
    /// Token headers are matched case-sensitively by `verify` (JOSE names are
    /// case-sensitive), which only accepts the exact [`Algorithm::as_str`].
    fn from_str(s: &str) -> Result<Self, Error> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnsupportedAlgorithm(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively() {
        assert_eq!("rs256".parse::<Algorithm>(), Ok(Algorithm::RS256));
        assert_eq!("ES256".parse::<Algorithm>(), Ok(Algorithm::ES256));
        assert_eq!("eddsa".parse::<Algorithm>(), Ok(Algorithm::EdDSA));
    }

    #[test]
    fn rejects_none_hmac_and_unknown() {
        for s in [
            "none", "None", "HS256", "hs512", "RS384", "PS256", "ES384", "",
        ] {
            assert_eq!(
                s.parse::<Algorithm>(),
                Err(Error::UnsupportedAlgorithm(s.to_owned())),
                "{s}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for a in Algorithm::ALL {
            assert_eq!(a.to_string().parse::<Algorithm>(), Ok(a));
        }
    }
}
