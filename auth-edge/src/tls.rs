//! The TLS client for the edge's trust channels: `https://` JWKS and revocation stream URLs and
//! `rediss://` Redis. rustls on aws-lc-rs (the stack the rest of the workspace uses), trusting the
//! system's roots plus, optionally, the certificates of one PEM file (`AUTH_EDGE_CA_FILE`: a
//! private CA for in-cluster services).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why the TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file cannot be read, or holds no certificate.
    #[error("{path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Setup(#[from] rustls::Error),
}

/// A shareable TLS client configuration (cheap to clone).
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    /// The extra CA file's PEM, for the Redis client (which builds its own configuration).
    ca_pem: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("extra_ca", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for TlsClient {
    /// The system's roots only.
    fn default() -> Self {
        TlsClient::load(None).unwrap_or_else(|e| unreachable!("no CA file, no error: {e}"))
    }
}

impl TlsClient {
    /// The system's roots, plus every certificate in `ca_file`.
    pub fn load(ca_file: Option<&Path>) -> Result<TlsClient, TlsError> {
        // Redis builds its own rustls configuration from the process-wide default provider;
        // make it ours (another crate may have installed it first: that is fine too).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped (a missing bundle means no system roots,
        // which only matters if a public CA is needed).
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        let ca_pem = match ca_file {
            None => None,
            Some(path) => {
                let bad = |reason: String| TlsError::CaFile {
                    path: path.to_owned(),
                    reason,
                };
                let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
                if certs.is_empty() {
                    return Err(bad("no certificate in the file".into()));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| bad(format!("unusable certificate: {e}")))?;
                }
                Some(Arc::from(pem))
            }
        };
        let mut config = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsClient {
            config: Arc::new(config),
            ca_pem,
        })
    }

    /// Wraps a connected stream in TLS for `host` (a DNS name or an IP literal).
    pub async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a valid TLS server name",
            )
        })?;
        TlsConnector::from(self.config.clone())
            .connect(name, stream)
            .await
    }

    /// The extra CA certificates (PEM), if a CA file was given.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("auth-edge-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = TlsClient::load(Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
        let missing = dir.join("missing.pem");
        assert!(TlsClient::load(Some(&missing)).is_err());
        assert!(TlsClient::load(None).unwrap().ca_pem().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
