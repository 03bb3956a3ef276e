//! Signing keys, their rotation, and the published JWKS.
//!
//! The private key lives at `JWT_PRIVATE_KEY_PATH` (the old service's variable). In the embedded
//! default a missing key is generated on first start and written with mode 0600 next to its public
//! half; with `ENV=prod` a missing key stops start-up instead, because silently minting a new key in
//! production would log every user out.
//!
//! Rotation (`auth-accounts rotate-keys`, e.g. from a cron job) works on files beside the key:
//! `jwt-next.pem` is the next key, published in the JWKS before it signs anything, so every edge
//! already has it when it takes over; on rotation the current key's public half moves to
//! `retired/<kid>.pem`, the next key becomes current and a new next key is made. Retired keys stay
//! published and accepted until every token they signed has expired (access lifetime + leeway after
//! retirement), then they are deleted. Running processes reload the files every few seconds.
//! `JWT_RETIRED_KEYS_DIR` moves `retired/` elsewhere (Kubernetes: its own Secret, since a Secret
//! volume has no subdirectories).
//! Extra public keys (`JWT_ADDITIONAL_PUBLIC_KEY_PATHS`) are always published and accepted.

use std::path::{Path, PathBuf};

use auth_token::{JwkSet, KeySet, SigningKey, Validation, VerifyingKey};

use crate::config::Config;

/// A key file that cannot be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Which file, and why.
    #[error("signing key {path}: {reason}")]
    Load {
        /// The key file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

fn load_err(path: &Path, reason: impl ToString) -> KeyError {
    KeyError::Load {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// In production the signing key must not be readable by every local user (JWT_PRIVATE_KEY_PATH;
/// a Kubernetes Secret volume needs `defaultMode: 0400` or `0440`, its default is 0644).
fn refuse_world_readable(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|e| load_err(path, e))?
            .permissions()
            .mode();
        if mode & 0o004 != 0 {
            return Err(load_err(
                path,
                format!(
                    "JWT_PRIVATE_KEY_PATH is readable by every user (mode {:o}) when ENV=prod: \
                     chmod o-r (0600, or 0440 for a group)",
                    mode & 0o777
                ),
            ));
        }
    }
    Ok(())
}

/// The keys in use: the one that signs, every one that verifies, and the JWKS published.
pub struct Keys {
    /// The current signing key.
    pub signing: SigningKey,
    /// The current, upcoming and retired public keys: what a token may be signed with.
    pub verifying: KeySet,
    /// Issuer, audience, algorithms and leeway a token is checked against.
    pub validation: Validation,
    /// The JWKS document, serialised once: it only changes with the key files.
    pub jwks: JwkSet,
}

impl Keys {
    /// Loads the keys; outside production a missing signing key is generated and written.
    pub fn load(config: &Config) -> Result<Self, KeyError> {
        Self::load_with(config, true)
    }

    /// Loads the keys without writing anything: `Ok(None)` when there is no signing key yet (it
    /// would be generated at start in development). For `auth-accounts check`.
    pub fn read(config: &Config) -> Result<Option<Self>, KeyError> {
        if !config.tokens.private_key_path.exists() && !config.production {
            return Ok(None);
        }
        Self::load_with(config, false).map(Some)
    }

    fn load_with(config: &Config, write: bool) -> Result<Self, KeyError> {
        let path = &config.tokens.private_key_path;
        if config.production && path.exists() {
            refuse_world_readable(path)?;
        }
        let signing = if path.exists() {
            read_signing(path, config)?
        } else if config.production || !write {
            return Err(load_err(
                path,
                "missing (keys are generated only when ENV=dev)",
            ));
        } else {
            let key =
                SigningKey::generate(config.tokens.algorithm).map_err(|e| load_err(path, e))?;
            write_private(path, &key.to_pkcs8_pem().map_err(|e| load_err(path, e))?)?;
            tracing::warn!(path = %path.display(), kid = key.kid(), "generated a new signing key (development mode)");
            key
        };
        let public = &config.tokens.public_key_path;
        if write && !public.exists() {
            let pem = signing.public_pem().map_err(|e| load_err(public, e))?;
            if let Err(err) = write_file(public, &pem, 0o644) {
                // Only a convenience copy for other tools: the JWKS is the real publication.
                tracing::warn!(path = %public.display(), error = %err, "could not write the public key");
            }
        }
        let mut verifying = KeySet::new();
        verifying.insert(signing.verifying_key());
        let next = next_path(config);
        if next.exists() {
            verifying.insert(read_signing(&next, config)?.verifying_key());
        }
        let now = chrono::Utc::now().timestamp();
        let lifetime = config.token_lifetime();
        for (retired, retired_at) in retired_keys(config) {
            if lifetime.is_past_horizon(retired_at, now) {
                continue;
            }
            verifying.insert(read_public(&retired, config)?);
        }
        for extra in &config.tokens.additional_public_keys {
            verifying.insert(read_public(extra, config)?);
        }
        let mut validation =
            Validation::new(config.tokens.issuer.clone(), config.tokens.audience.clone());
        // Only the algorithms of keys we hold; a key's algorithm must also match the token's.
        let mut algorithms: Vec<auth_token::Algorithm> = Vec::new();
        for kid in verifying.kids() {
            if let Some(key) = verifying.get(kid) {
                if !algorithms.contains(&key.algorithm()) {
                    algorithms.push(key.algorithm());
                }
            }
        }
        validation.algorithms = algorithms;
        validation.leeway_secs = config.tokens.leeway;
        let jwks = verifying.to_jwks();
        Ok(Self {
            signing,
            verifying,
            validation,
            jwks,
        })
    }

    /// The kids of everything published, sorted (compared to detect a change on disk).
    pub fn fingerprint(&self) -> Vec<String> {
        self.verifying.kids().map(str::to_string).collect()
    }
}

fn read_signing(path: &Path, config: &Config) -> Result<SigningKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|e| load_err(path, e))?;
    SigningKey::from_pem(&pem, config.tokens.algorithm).map_err(|e| load_err(path, e))
}

fn read_public(path: &Path, config: &Config) -> Result<VerifyingKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|e| load_err(path, e))?;
    VerifyingKey::from_public_pem(&pem, config.tokens.algorithm)
        .or_else(|first| {
            // A retired or extra key may use another algorithm than the current one.
            auth_token::Algorithm::ALL
                .into_iter()
                .find_map(|alg| VerifyingKey::from_public_pem(&pem, alg).ok())
                .ok_or(first)
        })
        .map_err(|e| load_err(path, e))
}

fn key_dir(config: &Config) -> PathBuf {
    config
        .tokens
        .private_key_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn next_path(config: &Config) -> PathBuf {
    key_dir(config).join("jwt-next.pem")
}

/// Retired public keys with their retirement time (the file's modification time).
fn retired_keys(config: &Config) -> Vec<(PathBuf, i64)> {
    let Ok(entries) = std::fs::read_dir(&config.tokens.retired_keys_dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pem"))
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            let at = modified
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs();
            Some((e.path(), i64::try_from(at).ok()?))
        })
        .collect()
}

/// Seconds since the signing key file was written (by `rotate-keys`, which writes a new file, or
/// by whoever updated the secret), for the key-age metric and its alert. `None` if unreadable.
pub fn signing_key_age(config: &Config, now: i64) -> Option<i64> {
    let modified = std::fs::metadata(&config.tokens.private_key_path)
        .ok()?
        .modified()
        .ok()?;
    let at = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some((now - i64::try_from(at).ok()?).max(0))
}

#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
/// What a rotation did (the `keys.rotated` event's payload).
pub struct Rotation {
    /// The key that stopped signing (still published until its tokens expire).
    pub retired_kid: String,
    /// The key that signs from now on.
    pub current_kid: String,
    /// The key published now that signs at the next rotation.
    pub next_kid: String,
}

/// Rotates the keys on disk: current -> retired (public half), next -> current, new next.
/// Safe to run while replicas serve: each file is replaced by a rename.
pub fn rotate(config: &Config) -> Result<Rotation, KeyError> {
    let current_path = &config.tokens.private_key_path;
    let current = read_signing(current_path, config)?;
    let next_file = next_path(config);
    let promoted = if next_file.exists() {
        read_signing(&next_file, config)?
    } else {
        // First rotation: there was no pre-published key, so the new one signs at once. Edges fetch
        // it on first sight of its kid.
        SigningKey::generate(config.tokens.algorithm).map_err(|e| load_err(&next_file, e))?
    };
    let retired_dir = &config.tokens.retired_keys_dir;
    let retired_file = retired_dir.join(format!("{}.pem", current.kid()));
    let public = current
        .public_pem()
        .map_err(|e| load_err(&retired_file, e))?;
    replace_file(&retired_file, &public, 0o644)?;
    let promoted_pem = promoted
        .to_pkcs8_pem()
        .map_err(|e| load_err(current_path, e))?;
    replace_file(current_path, &promoted_pem, 0o600)?;
    let public_path = &config.tokens.public_key_path;
    let promoted_public = promoted
        .public_pem()
        .map_err(|e| load_err(public_path, e))?;
    replace_file(public_path, &promoted_public, 0o644)?;
    let new_next =
        SigningKey::generate(config.tokens.algorithm).map_err(|e| load_err(&next_file, e))?;
    replace_file(
        &next_file,
        &new_next
            .to_pkcs8_pem()
            .map_err(|e| load_err(&next_file, e))?,
        0o600,
    )?;
    // Retired keys whose tokens have all expired are of no further use.
    let now = chrono::Utc::now().timestamp();
    for (path, at) in retired_keys(config) {
        if config.token_lifetime().is_past_horizon(at, now) {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(Rotation {
        retired_kid: current.kid().to_string(),
        current_kid: promoted.kid().to_string(),
        next_kid: new_next.kid().to_string(),
    })
}

/// Writes to a temporary file and renames it over `path`, so a reader sees the old or the new file.
fn replace_file(path: &Path, contents: &str, mode: u32) -> Result<(), KeyError> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    write_file(&tmp, contents, mode).map_err(|e| load_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| load_err(path, e))
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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use auth_token::Algorithm;

    #[test]
    fn production_refuses_a_world_readable_signing_key() {
        let dir = std::env::temp_dir().join(format!("auth-keys-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let key_path = dir.join("private.pem");
        let key = SigningKey::generate(Algorithm::RS256).unwrap();
        std::fs::write(&key_path, key.to_pkcs8_pem().unwrap()).unwrap();
        let path = key_path.to_str().unwrap();
        let config = Config::from_vars(&crate::config::tests::vars(&[
            ("ENV", "prod"),
            ("REVOCATIONS_TOKEN", "feed-token-0123456789"),
            ("FRONTEND_URL", "https://app.example.com"),
            ("JWT_PRIVATE_KEY_PATH", path),
            (
                "JWT_PUBLIC_KEY_PATH",
                dir.join("public.pem").to_str().unwrap(),
            ),
        ]))
        .unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Keys::read(&config).err().expect("refused");
        assert!(e.to_string().contains("JWT_PRIVATE_KEY_PATH"), "{e}");
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(Keys::read(&config).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
