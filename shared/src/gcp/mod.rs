//! Google Cloud APIs reached over HTTP.

pub mod idtoken;
pub mod metadata;
pub mod secrets;
