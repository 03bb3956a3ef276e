//! The few DER structures we must read or write ourselves: SubjectPublicKeyInfo
//! and PKCS#1 `RSAPublicKey`. aws-lc-rs validates the key material we extract,
//! so this only needs to be strict about structure, not about math.

use crate::Error;

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// rsaEncryption, 1.2.840.113549.1.1.1
pub(crate) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1
pub(crate) const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1 / secp256r1, 1.2.840.10045.3.1.7
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// id-Ed25519, 1.3.101.112
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const BAD: Error = Error::Malformed("DER");

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn read(&mut self, want_tag: u8) -> Result<&'a [u8], Error> {
        let (&tag, rest) = self.0.split_first().ok_or(BAD)?;
        if tag != want_tag {
            return Err(BAD);
        }
        let (&first, mut rest) = rest.split_first().ok_or(BAD)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            // Long form; more than 3 length octets would be > 16 MiB, which
            // no public key needs.
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 3 || rest.len() < n {
                return Err(BAD);
            }
            let (len_bytes, after) = rest.split_at(n);
            rest = after;
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            // DER requires the minimal form.
            if len < 0x80 || len_bytes[0] == 0 {
                return Err(BAD);
            }
            len
        };
        if rest.len() < len {
            return Err(BAD);
        }
        let (value, after) = rest.split_at(len);
        self.0 = after;
        Ok(value)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn finish(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(BAD)
        }
    }
}

/// A positive INTEGER's magnitude without leading zero octets.
fn read_uint<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], Error> {
    let v = r.read(TAG_INTEGER)?;
    match v {
        [] => Err(BAD),
        [first, ..] if first & 0x80 != 0 => Err(BAD), // negative
        [0, rest @ ..] => {
            if rest.first().is_some_and(|b| b & 0x80 == 0) {
                Err(BAD) // non-minimal
            } else {
                Ok(rest)
            }
        }
        _ => Ok(v),
    }
}

/// Parsed SubjectPublicKeyInfo: algorithm OID, optional curve OID, key bits.
pub(crate) struct Spki<'a> {
    pub(crate) algorithm: &'a [u8],
    pub(crate) curve: Option<&'a [u8]>,
    pub(crate) key: &'a [u8],
}

pub(crate) fn parse_spki(der: &[u8]) -> Result<Spki<'_>, Error> {
    let mut outer = Reader(der);
    let mut seq = Reader(outer.read(TAG_SEQUENCE)?);
    outer.finish()?;
    let mut alg_id = Reader(seq.read(TAG_SEQUENCE)?);
    let algorithm = alg_id.read(TAG_OID)?;
    let mut curve = None;
    if !alg_id.is_empty() {
        match alg_id.0.first() {
            Some(&TAG_NULL) => {
                if !alg_id.read(TAG_NULL)?.is_empty() {
                    return Err(BAD);
                }
            }
            Some(&TAG_OID) => curve = Some(alg_id.read(TAG_OID)?),
            _ => return Err(BAD),
        }
    }
    alg_id.finish()?;
    let bits = seq.read(TAG_BIT_STRING)?;
    seq.finish()?;
    // The first octet counts unused bits; key material is whole octets.
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(BAD),
    };
    Ok(Spki {
        algorithm,
        curve,
        key,
    })
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`,
/// returning (n, e) as minimal big-endian magnitudes.
pub(crate) fn parse_rsa_public_key(der: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let mut outer = Reader(der);
    let mut seq = Reader(outer.read(TAG_SEQUENCE)?);
    outer.finish()?;
    let n = read_uint(&mut seq)?;
    let e = read_uint(&mut seq)?;
    seq.finish()?;
    Ok((n, e))
}

fn write_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
}

fn write_uint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let mut v = Vec::with_capacity(magnitude.len() + 1);
    // A set high bit would read as negative, so prefix a zero octet.
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(magnitude);
    write_tlv(out, TAG_INTEGER, &v);
}

/// Encodes PKCS#1 `RSAPublicKey` from minimal big-endian n and e.
pub(crate) fn encode_rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    write_uint(&mut body, n);
    write_uint(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, TAG_SEQUENCE, &body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_public_key_round_trip() {
        let n: Vec<u8> = std::iter::once(0xc1).chain([7u8; 300]).collect();
        let e = [1u8, 0, 1];
        let der = encode_rsa_public_key(&n, &e);
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
