//! Optional TLS on the listener (rustls), for clusters without a mesh in front: ALPN offers h2
//! and http/1.1; a client CA bundle turns on mutual TLS.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use super::config::{self, TlsConfig};
use crate::config::ConfigError;
use crate::error::StartupError;

/// Reads the PEM files and builds the acceptor; any problem names the variable and file.
pub(crate) fn acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, StartupError> {
    let bad = |var: &str, path: &std::path::Path, problem: String, expected: &str| {
        StartupError::Config(ConfigError::new(
            var,
            &path.display().to_string(),
            problem,
            expected,
        ))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| {
            bad(
                config::TLS_CERT_FILE,
                &tls.cert_file,
                e.to_string(),
                "a readable PEM certificate chain",
            )
        })?;
    if certs.is_empty() {
        return Err(bad(
            config::TLS_CERT_FILE,
            &tls.cert_file,
            "no certificate in the file".into(),
            "a readable PEM certificate chain",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| {
        bad(
            config::TLS_KEY_FILE,
            &tls.key_file,
            e.to_string(),
            "a readable PEM private key (PKCS#8, PKCS#1 or SEC1)",
        )
    })?;
    let builder = ServerConfig::builder();
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| {
                    bad(
                        config::TLS_CLIENT_CA_FILE,
                        path,
                        e.to_string(),
                        "a readable PEM bundle of CA certificates",
                    )
                })?;
            for ca in cas {
                roots.add(ca).map_err(|e| {
                    bad(
                        config::TLS_CLIENT_CA_FILE,
                        path,
                        e.to_string(),
                        "valid CA certificates",
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| {
                    bad(
                        config::TLS_CLIENT_CA_FILE,
                        path,
                        e.to_string(),
                        "at least one CA certificate",
                    )
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_single_cert(certs, key).map_err(|e| {
        bad(
            config::TLS_KEY_FILE,
            &tls.key_file,
            e.to_string(),
            "the private key of the certificate in TLS_CERT_FILE",
        )
    })?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}
