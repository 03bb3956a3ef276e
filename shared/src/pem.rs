//! Minimal PEM (RFC 7468) reading and writing; avoids a dependency for ~50 lines.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::Error;

/// All `-----BEGIN X-----` blocks in `text`, as (label, DER) pairs. Text
/// outside blocks is ignored (openssl may prepend an `EC PARAMETERS` block or
/// comments).
pub(crate) fn parse_all(text: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            if l == end {
                closed = true;
                break;
            }
            if l.contains(':') {
                // RFC 1421 headers (Proc-Type/DEK-Info) only appear on
                // encrypted legacy keys, which we do not support.
                return Err(Error::InvalidKey(
                    "encrypted PEM keys are not supported".into(),
                ));
            }
            body.push_str(l);
        }
        if !closed {
            return Err(Error::Malformed("PEM block not terminated"));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|_| Error::Malformed("PEM base64"))?;
        out.push((label.to_owned(), der));
    }
    if out.is_empty() {
        return Err(Error::Malformed("no PEM block"));
    }
    Ok(out)
}

/// Encodes DER as PEM with 64-character lines, as openssl writes it.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // base64 output is ASCII, so splitting on byte boundaries is safe.
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_length() {
        let der: Vec<u8> = (0..=255).collect();
        let pem = encode("PUBLIC KEY", &der);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let crlf = format!("junk\r\n{}", pem.replace('\n', "\r\n"));
        let blocks = parse_all(&crlf).unwrap();
        assert_eq!(blocks, vec![("PUBLIC KEY".to_owned(), der)]);
    }

    #[test]
    fn errors() {
        assert!(parse_all("nothing here").is_err());
        assert!(parse_all("-----BEGIN X-----\nAAAA\n").is_err());
        assert!(parse_all("-----BEGIN X-----\n!!!!\n-----END X-----\n").is_err());
    }
}
