//! A throwaway certificate authority, made with the `openssl` command line.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use crate::fs::TempDir;

/// A throwaway certificate authority and a server certificate it signed for `127.0.0.1` and
/// `localhost`, in a temp dir removed on drop.
#[derive(Debug)]
pub struct TestCa {
    /// Where `ca.pem`, `server.pem` and `server.key` are.
    pub dir: TempDir,
}

impl TestCa {
    /// Makes the CA and the server certificate (P-256 keys, valid for two days).
    #[allow(clippy::new_without_default)] // each call makes a new CA: not a default value
    pub fn new() -> TestCa {
        let dir = TempDir::new("ca");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (run scripts/test)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let ca = [
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=auth-test-ca",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ];
        run(&[&["req", "-x509"][..], &ec, &ca].concat());
        dir.write(
            "ext.cnf",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        );
        let csr = [
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ];
        run(&[&["req"][..], &ec, &csr].concat());
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        TestCa { dir }
    }

    /// The CA certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (PEM).
    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server certificate's private key (PEM).
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// A TLS acceptor presenting the server certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(self.cert_file())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(self.key_file()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}
