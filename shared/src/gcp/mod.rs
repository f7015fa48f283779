//! Google Cloud APIs reached over HTTP.

/// `GOOGLE_CLOUD_PROJECT`: the project id written into trace fields of logs.
pub const GOOGLE_CLOUD_PROJECT: &str = "GOOGLE_CLOUD_PROJECT";

pub mod idtoken;
pub mod metadata;
pub mod secrets;
