//! The store's variables.

use std::time::Duration;

use aixrun::config::{ConfigError, Env};

/// `RUN_STORE`: `memory` (the default) or `firestore`.
pub const RUN_STORE: &str = "RUN_STORE";
/// `RUN_STORE_MAX_RUNS`: how many runs the memory store keeps (default 1000).
pub const RUN_STORE_MAX_RUNS: &str = "RUN_STORE_MAX_RUNS";
/// `RUN_TTL`: how long a finished run and an idle session are kept (default 7 days; Firestore
/// deletes them through a TTL policy on `expire_at`).
pub const RUN_TTL: &str = "RUN_TTL";
/// `RUN_LEASE_TTL`: how long an executing instance's claim on a run lasts unless renewed
/// (default 30 s; renewed every third of it): after a crash, another instance may take the
/// run over once it passes.
pub const RUN_LEASE_TTL: &str = "RUN_LEASE_TTL";

/// Which store, and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The back end.
    pub kind: StoreKind,
    /// How long finished runs and idle sessions are kept.
    pub ttl: Duration,
    /// How long a lease lasts unless renewed.
    pub lease_ttl: Duration,
}

/// The back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process, at most this many runs.
    Memory {
        /// `RUN_STORE_MAX_RUNS`.
        max_runs: usize,
    },
    /// Firestore.
    Firestore,
}

impl StoreConfig {
    /// Reads the variables; a bad value is one line naming it and what it takes.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let kind = match env.get(RUN_STORE).map(str::trim) {
            None | Some("" | "memory") => StoreKind::Memory {
                max_runs: env.parse_or(RUN_STORE_MAX_RUNS, 1000, "a whole number of runs")?,
            },
            Some("firestore") => StoreKind::Firestore,
            Some(other) => {
                return Err(ConfigError::new(
                    RUN_STORE,
                    other,
                    "unknown store".to_owned(),
                    "memory or firestore",
                ));
            }
        };
        let ttl = env.duration_or(RUN_TTL, Duration::from_secs(7 * 24 * 3600))?;
        let lease_ttl = env.duration_or(RUN_LEASE_TTL, Duration::from_secs(30))?;
        if lease_ttl < Duration::from_secs(1) {
            return Err(ConfigError::new(
                RUN_LEASE_TTL,
                env.get(RUN_LEASE_TTL).unwrap_or_default(),
                "too short to be renewed".to_owned(),
                "a duration of at least 1s, such as 30s",
            ));
        }
        Ok(Self {
            kind,
            ttl,
            lease_ttl,
        })
    }
}
