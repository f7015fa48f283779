//! Google Cloud APIs reached over HTTP.

pub mod metadata;
pub mod secrets;
