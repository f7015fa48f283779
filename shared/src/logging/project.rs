//! The Google Cloud project id that trace fields of log lines need: from
//! `GOOGLE_CLOUD_PROJECT`, or looked up once from the metadata server when the first traced
//! request arrives (never at start-up, never in the background).

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::OnceCell;

static PROJECT_ID: OnceLock<String> = OnceLock::new();
static LOOKUP: OnceCell<()> = OnceCell::const_new();

/// How long the one metadata lookup may take before logs go without the project.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// Sets the project id (from configuration).
pub fn set(project: String) {
    let _ = PROJECT_ID.set(project);
}

/// The project id, if known.
pub fn get() -> Option<&'static str> {
    PROJECT_ID.get().map(String::as_str)
}

/// Makes sure the lookup has run once: the first caller asks the metadata server at
/// `metadata_base`, everyone else waits for that answer or finds it already there.
pub async fn ensure(metadata_base: &str) {
    if get().is_some() {
        return;
    }
    LOOKUP
        .get_or_init(|| async {
            let lookup =
                crate::gcp::metadata::get(metadata_base, "project/project-id", LOOKUP_TIMEOUT);
            match lookup.await {
                Ok(project) => set(project.trim().to_owned()),
                Err(e) => {
                    tracing::warn!(error = %e, "project id unknown: log lines carry no trace fields; set GOOGLE_CLOUD_PROJECT")
                }
            }
        })
        .await;
}
