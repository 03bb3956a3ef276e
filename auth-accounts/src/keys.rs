//! Signing keys and the published JWKS.
//!
//! The private key lives at `JWT_PRIVATE_KEY_PATH` (the old service's variable). In the embedded
//! default a missing key is generated on first start and written with mode 0600 next to its public
//! half; with `ENV=prod` a missing key stops start-up instead, because silently minting a new key in
//! production would log every user out. Extra public keys (`JWT_ADDITIONAL_PUBLIC_KEY_PATHS`) stay in
//! the JWKS and verify, which is how a key change keeps already issued tokens valid.

use std::path::Path;

use auth_token::{JwkSet, KeySet, SigningKey, Validation, VerifyingKey};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {path}: {reason}")]
    Load { path: String, reason: String },
}

fn load_err(path: &Path, reason: impl ToString) -> KeyError {
    KeyError::Load {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

pub struct Keys {
    pub signing: SigningKey,
    pub verifying: KeySet,
    pub validation: Validation,
    /// The JWKS document, serialised once: it only changes with the key files.
    pub jwks: JwkSet,
}

impl Keys {
    pub fn load(config: &Config) -> Result<Self, KeyError> {
        let path = &config.jwt_private_key_path;
        let signing = if path.exists() {
            let pem = std::fs::read_to_string(path).map_err(|e| load_err(path, e))?;
            SigningKey::from_pem(&pem, config.jwt_algorithm).map_err(|e| load_err(path, e))?
        } else if config.production {
            return Err(load_err(
                path,
                "missing (keys are generated only when ENV=dev)",
            ));
        } else {
            let key = SigningKey::generate(config.jwt_algorithm).map_err(|e| load_err(path, e))?;
            write_private(path, &key.to_pkcs8_pem().map_err(|e| load_err(path, e))?)?;
            tracing::warn!(path = %path.display(), kid = key.kid(), "generated a new signing key (development mode)");
            key
        };
        let public = &config.jwt_public_key_path;
        if !public.exists() {
            let pem = signing.public_pem().map_err(|e| load_err(public, e))?;
            if let Err(err) = write_file(public, &pem, 0o644) {
                // Only a convenience copy for other tools: the JWKS is the real publication.
                tracing::warn!(path = %public.display(), error = %err, "could not write the public key");
            }
        }
        let mut verifying = KeySet::new();
        verifying.insert(signing.verifying_key());
        for extra in &config.jwt_additional_public_keys {
            let pem = std::fs::read_to_string(extra).map_err(|e| load_err(extra, e))?;
            let key = VerifyingKey::from_public_pem(&pem, config.jwt_algorithm)
                .or_else(|first| {
                    // The extra key may use another algorithm than the current one.
                    [
                        auth_token::Algorithm::RS256,
                        auth_token::Algorithm::ES256,
                        auth_token::Algorithm::EdDSA,
                    ]
                    .into_iter()
                    .find_map(|alg| VerifyingKey::from_public_pem(&pem, alg).ok())
                    .ok_or(first)
                })
                .map_err(|e| load_err(extra, e))?;
            verifying.insert(key);
        }
        let mut validation =
            Validation::new(config.jwt_issuer.clone(), config.jwt_audience.clone());
        validation.algorithms = vec![
            auth_token::Algorithm::RS256,
            auth_token::Algorithm::ES256,
            auth_token::Algorithm::EdDSA,
        ];
        validation.leeway_secs = config.jwt_leeway;
        let jwks = verifying.to_jwks();
        Ok(Self {
            signing,
            verifying,
            validation,
            jwks,
        })
    }
}

fn write_private(path: &Path, pem: &str) -> Result<(), KeyError> {
    write_file(path, pem, 0o600).map_err(|e| load_err(path, e))
}

fn write_file(path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // create_new + mode: the private key is never readable by others, not even for an instant.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}
