//! Google Cloud APIs reached over HTTP.

/// `GOOGLE_CLOUD_PROJECT`: the project id written into trace fields of logs, and the project
/// Firestore and Pub/Sub are called in.
pub const GOOGLE_CLOUD_PROJECT: &str = "GOOGLE_CLOUD_PROJECT";

pub mod firestore;
pub mod idtoken;
pub mod metadata;
pub mod pubsub;
pub mod rest;
pub mod secrets;
mod token;
