//! The one outgoing HTTP client, built on first use: building it loads TLS roots, which is
//! start-up work a request may never need.

use std::sync::OnceLock;
use std::time::Duration;

static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();

/// The shared client (connection pools are per client, so every caller shares one).
pub fn get() -> &'static reqwest::Client {
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("aixrun/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}
