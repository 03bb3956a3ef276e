//! The two DER structures keys need: SubjectPublicKeyInfo (RFC 5280) and PKCS#1
//! `RSAPublicKey` (RFC 8017), read and written with RustCrypto's `spki` and `pkcs1` crates
//! (strict DER: minimal lengths and integers, no trailing data). aws-lc-rs validates the key
//! material itself; this module only takes the structures apart and puts RSA keys back together.

use pkcs1::der::asn1::UintRef;
use pkcs1::der::{Decode as _, Encode as _};
use pkcs1::RsaPublicKey;
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

use crate::Error;

/// rsaEncryption
pub(crate) const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey
pub(crate) const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// prime256v1 / secp256r1
pub(crate) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// id-Ed25519
pub(crate) const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

const BAD: Error = Error::Malformed("DER");

/// Parsed SubjectPublicKeyInfo: algorithm OID, optional curve OID (absent or NULL parameters
/// are `None`), key bits.
pub(crate) struct Spki<'a> {
    pub(crate) algorithm: ObjectIdentifier,
    pub(crate) curve: Option<ObjectIdentifier>,
    pub(crate) key: &'a [u8],
}

pub(crate) fn parse_spki(der: &[u8]) -> Result<Spki<'_>, Error> {
    let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| BAD)?;
    let (algorithm, curve) = spki.algorithm.oids().map_err(|_| BAD)?;
    // Key material is whole octets (no unused bits).
    let key = spki.subject_public_key.as_bytes().ok_or(BAD)?;
    Ok(Spki {
        algorithm,
        curve,
        key,
    })
}

/// PKCS#1 `RSAPublicKey`, returning (n, e) as minimal big-endian magnitudes.
pub(crate) fn parse_rsa_public_key(der: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let key = RsaPublicKey::from_der(der).map_err(|_| BAD)?;
    Ok((key.modulus.as_bytes(), key.public_exponent.as_bytes()))
}

/// Encodes PKCS#1 `RSAPublicKey` from big-endian n and e.
pub(crate) fn encode_rsa_public_key(n: &[u8], e: &[u8]) -> Result<Vec<u8>, Error> {
    let key = RsaPublicKey {
        modulus: UintRef::new(n).map_err(|_| BAD)?,
        public_exponent: UintRef::new(e).map_err(|_| BAD)?,
    };
    key.to_der().map_err(|_| BAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_public_key_round_trip() {
        let n: Vec<u8> = std::iter::once(0xc1).chain([7u8; 300]).collect();
        let e = [1u8, 0, 1];
        let der = encode_rsa_public_key(&n, &e).unwrap();
        assert_eq!(parse_rsa_public_key(&der).unwrap(), (&n[..], &e[..]));
        // Trailing garbage is rejected.
        let mut bad = der.clone();
        bad.push(0);
        assert!(parse_rsa_public_key(&bad).is_err());
    }

    #[test]
    fn rejects_negative_and_non_minimal_integers() {
        assert!(parse_rsa_public_key(&[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x03]).is_err());
        assert!(
            parse_rsa_public_key(&[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x03]).is_err()
        );
        assert!(parse_rsa_public_key(&[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03]).is_ok());
    }

    #[test]
    fn rejects_non_minimal_length() {
        // Long-form length for a short value.
        assert!(
            parse_rsa_public_key(&[0x30, 0x81, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03]).is_err()
        );
    }
}
