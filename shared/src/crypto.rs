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

use tokio_rustls::rustls::crypto::{CryptoProvider, ring};

/// Installs ring as the process-wide rustls provider, unless one is installed already. Cheap
/// and idempotent: call it before building any TLS client or server configuration.
pub fn install_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race to another thread installing the same provider is fine.
        let _ = ring::default_provider().install_default();
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
