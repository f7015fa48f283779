//! Async clients for the tests.

use std::time::Duration;

/// A reqwest client builder, after installing the functions' TLS provider (reqwest is built
/// without one of its own: building a client first would panic).
pub fn builder() -> reqwest::ClientBuilder {
    aixrun::crypto::install_provider();
    reqwest::Client::builder()
}

/// A reqwest client speaking HTTP/1.1 only.
pub fn http1() -> reqwest::Client {
    builder()
        .http1_only()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

/// A reqwest client speaking h2c with prior knowledge.
pub fn h2c() -> reqwest::Client {
    builder()
        .http2_prior_knowledge()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

/// A tonic channel (h2c) to `addr`.
pub async fn grpc_channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("gRPC connect")
}
