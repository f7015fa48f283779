//! TLS settings of one MCP server, shared by the gRPC and HTTP transports: a CA to trust
//! instead of the public roots (private deployments), and a client certificate and key for
//! mutual TLS. Files are read once, when the server's client is built.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a server's TLS material lives. All optional: with none, `https` servers are checked
/// against the system's roots and no client certificate is sent.
#[derive(Clone, Default)]
pub struct TlsFiles {
    /// PEM CA certificate(s); when set, only these are trusted.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain, for mutual TLS (needs `key`).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

// Paths only; never the key's contents.
impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key.as_ref().map(|_| "<path set>"))
            .finish()
    }
}

/// The files' contents, checked for completeness.
pub(crate) struct TlsMaterial {
    pub(crate) ca: Option<Vec<u8>>,
    /// Certificate chain and key, both PEM.
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsFiles {
    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }

    /// Reads the files. A certificate without a key (or the reverse) is an error, as is an
    /// unreadable file (named by path; its contents never appear).
    pub(crate) fn read(&self) -> Result<TlsMaterial, String> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map_err(|e| format!("{what} file {}: {e}", path.display()))
        };
        let ca = self.ca.as_deref().map(|p| read("CA", p)).transpose()?;
        let identity = match (&self.cert, &self.key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                Some((read("client certificate", cert)?, read("client key", key)?))
            }
            (Some(_), None) => return Err("a client certificate needs its key file too".into()),
            (None, Some(_)) => return Err("a client key needs its certificate file too".into()),
        };
        Ok(TlsMaterial { ca, identity })
    }
}

impl TlsMaterial {
    /// tonic's TLS config: the CA alone when given, else the system's roots.
    pub(crate) fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = match &self.ca {
            Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)),
            None => aixrun::crypto::grpc_client_tls(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        config
    }

    /// Applies the material to a reqwest client builder.
    pub(crate) fn reqwest(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, String> {
        if let Some(ca) = &self.ca {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|_| "the CA file holds no PEM certificate".to_owned())?;
            builder = builder.tls_certs_only(certs);
        }
        if let Some((cert, key)) = &self.identity {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            // reqwest's message could quote nothing secret, but keep it ours anyway.
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|_| "the client certificate or key is not valid PEM".to_owned())?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_an_identity_is_refused() {
        let files = TlsFiles {
            cert: Some("/nonexistent/cert.pem".into()),
            ..TlsFiles::default()
        };
        let err = files.read().err().unwrap();
        assert!(err.contains("needs its key"), "{err}");
    }

    #[test]
    fn unreadable_files_are_named() {
        let files = TlsFiles {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let err = files.read().err().unwrap();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        assert!(format!("{files:?}").contains("ca.pem"));
    }
}
