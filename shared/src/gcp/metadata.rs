//! The metadata server (`computeMetadata/v1`), as Cloud Run and GKE Workload Identity serve it.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use crate::config::Env;
use crate::outbound::{Call, OutboundError, Request, Url};

/// `GCE_METADATA_HOST`: the metadata server's host[:port], as Google's client libraries read it.
pub const GCE_METADATA_HOST: &str = "GCE_METADATA_HOST";
/// Where the metadata server is when `GCE_METADATA_HOST` is unset.
const DEFAULT_HOST: &str = "metadata.google.internal";

/// Largest answer read: metadata values are ids, names and tokens of a few KiB at most.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why a metadata read failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Could not reach it (not on Google Cloud, or `GCE_METADATA_HOST` is wrong), or it did
    /// not answer in time.
    #[error("metadata server unreachable: {0}")]
    Unreachable(#[from] OutboundError),
    /// `GCE_METADATA_HOST` does not make a URL.
    #[error("metadata server address {0:?} does not make a URL")]
    BadBase(String),
    /// It answered with an error status.
    #[error("metadata server answered {status} for {path}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The path asked for.
        path: String,
    },
    /// The answer lacked `Metadata-Flavor: Google`: something else answered.
    #[error("the answer for {0} did not come from a metadata server (no Metadata-Flavor: Google)")]
    NotMetadata(String),
}

/// The metadata server's base URL, `http://HOST` (from `GCE_METADATA_HOST`).
pub fn base_url(env: &Env) -> String {
    format!(
        "http://{}",
        env.get(GCE_METADATA_HOST).unwrap_or(DEFAULT_HOST)
    )
}

/// `GET {base}/computeMetadata/v1/{path}` with the required `Metadata-Flavor` header, within
/// `timeout`.
pub async fn get(base: &str, path: &str, timeout: Duration) -> Result<String, MetadataError> {
    let url = Url::parse(&format!("{base}/computeMetadata/v1/{path}"))
        .map_err(|_| MetadataError::BadBase(base.to_owned()))?;
    let call = Call::new(timeout, MAX_ANSWER_BYTES);
    let response = Request::get(url)
        .header(
            HeaderName::from_static("metadata-flavor"),
            HeaderValue::from_static("Google"),
        )
        .send(&call)
        .await?;
    let status = response.status();
    if !status.is_success() {
        return Err(MetadataError::Status {
            status: status.as_u16(),
            path: path.to_owned(),
        });
    }
    if response
        .headers()
        .get("metadata-flavor")
        .is_none_or(|v| v != "Google")
    {
        return Err(MetadataError::NotMetadata(path.to_owned()));
    }
    let body = response.body_bytes().await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}
