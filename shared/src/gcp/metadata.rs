//! The metadata server (`computeMetadata/v1`), as Cloud Run and GKE Workload Identity serve it.

/// Why a metadata read failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Could not reach it (not on Google Cloud, or `GCE_METADATA_HOST` is wrong).
    #[error("metadata server unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
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

/// `GET {base}/computeMetadata/v1/{path}` with the required `Metadata-Flavor` header.
pub async fn get(base: &str, path: &str) -> Result<String, MetadataError> {
    let url = format!("{base}/computeMetadata/v1/{path}");
    let response = crate::http_client::get()
        .get(url)
        .header("Metadata-Flavor", "Google")
        .send()
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
    Ok(response.text().await?)
}
