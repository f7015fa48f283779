//! Google Cloud APIs reached over HTTP.

pub mod metadata;
