//! Strict base64url (RFC 7515 section 2: no padding).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Decodes unpadded base64url. The engine rejects `=` padding, the standard
/// alphabet's `+`/`/`, whitespace and non-zero trailing bits, so every
/// accepted string has exactly one encoding: a token cannot be altered
/// without changing the signed bytes.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict() {
        assert_eq!(decode("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(decode("_-8"), Some(vec![0xff, 0xef]));
        assert_eq!(decode("AQ"), Some(vec![1]));
        assert_eq!(decode("AQ=="), None, "padding");
        assert_eq!(decode("/+8"), None, "standard alphabet");
        assert_eq!(decode("AR"), None, "non-zero trailing bits");
        assert_eq!(decode("AQ B"), None, "whitespace");
        assert_eq!(decode("A"), None, "impossible length");
    }
}
