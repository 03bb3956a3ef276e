//! The signed identity assertion section ([`crate::assertion`]): on when
//! `AUTH_EDGE_ASSERTION_KEY_FILE` names the edge's own private key (PKCS#8 PEM, Ed25519 or P-256);
//! `AUTH_EDGE_ASSERTION_ALGORITHM`, `AUTH_EDGE_ASSERTION_HEADER`, `AUTH_EDGE_ASSERTION_TTL_SECONDS`,
//! `AUTH_EDGE_ASSERTION_ISSUER` and `AUTH_EDGE_ASSERTION_AUDIENCE` shape it and are refused without
//! the key.

use std::sync::Arc;

use auth_token::{Algorithm, SigningKey};

use super::vars::{err, ConfigError, Vars};
use crate::assertion::AssertionSigner;
use crate::identity::HeaderNames;

const SHAPING: [&str; 5] = [
    "AUTH_EDGE_ASSERTION_ALGORITHM",
    "AUTH_EDGE_ASSERTION_HEADER",
    "AUTH_EDGE_ASSERTION_TTL_SECONDS",
    "AUTH_EDGE_ASSERTION_ISSUER",
    "AUTH_EDGE_ASSERTION_AUDIENCE",
];

/// The signer, if configured, and `names` with the assertion's header added.
pub(super) fn parse(
    v: &Vars<'_>,
    names: HeaderNames,
) -> Result<(HeaderNames, Option<Arc<AssertionSigner>>), ConfigError> {
    const KEY: &str = "AUTH_EDGE_ASSERTION_KEY_FILE";
    let Some(path) = v.get(KEY) else {
        if let Some(var) = SHAPING.iter().find(|var| v.get(var).is_some()) {
            return Err(err(var, format!("only used with {KEY}")));
        }
        return Ok((names, None));
    };
    let alg = match v.or("AUTH_EDGE_ASSERTION_ALGORITHM", "EdDSA") {
        "EdDSA" => Algorithm::EdDSA,
        "ES256" => Algorithm::ES256,
        other => {
            return Err(err(
                "AUTH_EDGE_ASSERTION_ALGORITHM",
                format!("{other:?}: use EdDSA or ES256"),
            ))
        }
    };
    let pem = std::fs::read_to_string(path).map_err(|e| err(KEY, format!("{path}: {e}")))?;
    // The error says what is wrong, never what the file holds.
    let key = SigningKey::from_pem(&pem, alg).map_err(|_| {
        err(
            KEY,
            format!("{path}: not a PKCS#8 PEM private key for {alg}"),
        )
    })?;
    let names = names
        .with_assertion(v.or("AUTH_EDGE_ASSERTION_HEADER", "X-Identity-Assertion"))
        .map_err(|m| err("AUTH_EDGE_ASSERTION_HEADER", m))?;
    let header = names
        .assertion()
        .cloned()
        .ok_or_else(|| err("AUTH_EDGE_ASSERTION_HEADER", "missing"))?;
    let ttl = v.number("AUTH_EDGE_ASSERTION_TTL_SECONDS", 60, 10, 900)?;
    let signer = AssertionSigner::new(
        key,
        header,
        i64::try_from(ttl).unwrap_or(60),
        v.or("AUTH_EDGE_ASSERTION_ISSUER", "auth-edge").to_owned(),
        v.get("AUTH_EDGE_ASSERTION_AUDIENCE").map(str::to_owned),
    )
    .map_err(|m| err(KEY, m))?;
    Ok((names, Some(Arc::new(signer))))
}
