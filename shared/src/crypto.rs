//! The one TLS crypto provider of every function: rustls' ring provider, used by the listener
//! (tokio-rustls), tonic's channels and reqwest alike. aws-lc-rs, the default of all three, cost
//! about 0.6 MiB more in every binary (health: 0.63 MiB; aws-lc's code and tables are 0.83 MiB)
//! and a C build; the workspace manifest enables only ring (`tls-ring`, `ring`,
//! `rustls-no-provider`). What ring lacks: the post-quantum hybrid key exchange
//! (X25519MLKEM768) that aws-lc-rs offers first; TLS 1.3 with X25519 remains the default.
//!
//! reqwest built without its own provider panics when a client is built before a process-wide
//! default is installed: [`crate::run`] installs it first thing, and every place that builds a
//! client outside of it (libraries, tests) calls [`install_provider`] too.
//!
//! JWT signatures (incoming Google ID tokens and IAP assertions) are checked with ring too:
//! jsonwebtoken's own backends are aws-lc-rs or RustCrypto (54 more crates), so it gets a small
//! provider of ours that verifies the two algorithms we accept, RS256 and ES256, and nothing
//! else. google-cloud-auth signs with the rustls provider installed here.

use jsonwebtoken::crypto::{CryptoProvider as JwtProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind as JwtErrorKind};
use jsonwebtoken::signature::{Error as SignatureError, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring as rustls_ring};

/// Installs ring as the process-wide rustls provider and JWT verifier, unless they are
/// installed already. Cheap and idempotent: call it before building any TLS client or server
/// configuration.
pub fn install_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race to another thread installing the same provider is fine.
        let _ = rustls_ring::default_provider().install_default();
    }
    // Fails only when installed already (by an earlier call): nothing to do then.
    let _ = JWT_PROVIDER.install_default();
}

/// TLS of a gRPC client channel to a public endpoint: the system's trust store (the
/// `SSL_CERT_FILE` bundle in the images), the one reqwest's verifier reads too, so gRPC and
/// HTTP calls trust the same roots.
pub fn grpc_client_tls() -> tonic::transport::ClientTlsConfig {
    tonic::transport::ClientTlsConfig::new().with_native_roots()
}

/// jsonwebtoken's provider: verification of RS256 and ES256 on ring, no signing.
static JWT_PROVIDER: JwtProvider = JwtProvider {
    signer_factory: no_signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(unsupported()),
        rsa_pub_components_from_public_key: |_| Err(unsupported()),
        ec_pub_components_from_private_key: |_, _| Err(unsupported()),
        ed_pub_components_from_private_key: |_, _| Err(unsupported()),
        compute_digest: |_, _| Err(unsupported()),
    },
};

fn unsupported() -> JwtError {
    JwtErrorKind::Provider(
        "not supported by aixrun's JWT provider (RS256, ES256 verification only)".into(),
    )
    .into()
}

fn no_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>, JwtError> {
    Err(unsupported())
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, JwtError> {
    let family = match algorithm {
        Algorithm::RS256 => AlgorithmFamily::Rsa,
        Algorithm::ES256 => AlgorithmFamily::Ec,
        _ => return Err(JwtErrorKind::InvalidAlgorithm.into()),
    };
    if key.family() != family {
        return Err(JwtErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        key: key.clone(),
    }))
}

struct RingVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), SignatureError> {
        let checked = match (self.algorithm, self.key.kind()) {
            (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
                RsaPublicKeyComponents { n, e }.verify(
                    &RSA_PKCS1_2048_8192_SHA256,
                    message,
                    signature,
                )
            }
            // A PKCS#1 RSAPublicKey in DER (from a PEM key).
            (Algorithm::RS256, DecodingKeyKind::SecretOrDer(der)) => {
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).verify(message, signature)
            }
            // The uncompressed point 04 || x || y (from a JWK's x and y).
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(message, signature)
            }
            _ => return Err(SignatureError::new()),
        };
        checked.map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_once_and_stays() {
        install_provider();
        let first = CryptoProvider::get_default().expect("installed");
        install_provider();
        let second = CryptoProvider::get_default().expect("still installed");
        assert!(std::sync::Arc::ptr_eq(first, second));
        assert!(!first.cipher_suites.is_empty());
        // A reqwest client builds with it (reqwest has no provider of its own here).
        reqwest::Client::builder().build().expect("client");
    }
}
