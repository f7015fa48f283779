//! The run store: what must outlive an instance (runs, their events and journals, sessions,
//! leases and idempotency keys), behind one trait with two back ends chosen by `RUN_STORE`:
//! [`memory`] (the default: one instance, bounded) and [`firestore`] (Google's serverless
//! document store, over its REST API).
//!
//! Every operation that two instances could race on is decided by the store, never by a lock
//! in one process: creating a run under an idempotency key, claiming a session for a run,
//! taking a run's lease. Whatever a caller is told is done is in the store first.

pub mod config;
pub mod firestore;
mod lease;
pub mod memory;
mod record;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

pub use config::{RUN_LEASE_TTL, RUN_STORE, RUN_STORE_MAX_RUNS, RUN_TTL, StoreConfig, StoreKind};
pub use lease::epoch_ms;
pub use record::{Lease, RunFilter, RunPage, RunRecord, RunStatus, Session, SessionTurn};

use crate::run::Envelope;

/// Opens the configured store. Nothing is asked of Firestore here: start-up stays fast, and
/// a store that is down is reported by the requests that need it (503, naming it).
pub async fn open(
    config: &StoreConfig,
    env: &aixrun::config::Env,
) -> Result<std::sync::Arc<dyn RunStore>, aixrun::StartupError> {
    match config.kind {
        StoreKind::Memory { max_runs } => {
            Ok(std::sync::Arc::new(memory::MemoryStore::new(max_runs)))
        }
        StoreKind::Firestore => Ok(std::sync::Arc::new(firestore::FirestoreStore::new(
            env.clone(),
            config,
        ))),
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The store did not answer, or answered that it could not now (the caller answers 503
    /// and tries again later).
    #[error("the run store ({store}) is unavailable: {reason}")]
    Unavailable {
        /// `memory` or `firestore`.
        store: &'static str,
        /// What happened.
        reason: String,
    },
    /// The caller asked for something the store cannot mean, such as a page token it never
    /// gave (the caller answers 400).
    #[error("{reason}")]
    Invalid {
        /// `memory` or `firestore`.
        store: &'static str,
        /// What was wrong, and what to do instead.
        reason: String,
    },
    /// Anything else: a bug or a misconfiguration (the caller answers 500).
    #[error("the run store ({store}) failed: {reason}")]
    Failed {
        /// `memory` or `firestore`.
        store: &'static str,
        /// What happened.
        reason: String,
    },
}

/// What creating a run did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// The run is new.
    New,
    /// The idempotency key was used before: that run.
    Existing(Box<RunRecord>),
}

/// What claiming a session for a run did.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The run holds the session; its earlier turns.
    Claimed(Session),
    /// Another run holds it.
    Busy {
        /// That run.
        run_id: String,
    },
}

/// What asking for a run's lease did.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseOutcome {
    /// Taken: the run as it is now.
    Acquired(RunRecord),
    /// Another holder has it, renewed in time: who, and until when.
    Held(Lease),
    /// The run has ended: nothing to do.
    Finished(RunRecord),
    /// No such run.
    NotFound,
}

/// The store.
#[async_trait]
pub trait RunStore: Send + Sync + 'static {
    /// `memory` or `firestore`, for messages.
    fn name(&self) -> &'static str;

    /// Creates `run`. Under an idempotency `key` already used, creates nothing and answers
    /// the run created with it.
    async fn create(&self, run: &RunRecord, key: Option<&str>) -> Result<Created, StoreError>;

    /// The run `id`.
    async fn get(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Runs matching `filter`, newest first, a page at a time.
    async fn list(&self, filter: &RunFilter) -> Result<RunPage, StoreError>;

    /// Stores a run's `events` (contiguous, in order) and journal `entries` in one commit; a
    /// `run.finished` among the events also stores the run's status and result.
    async fn commit(
        &self,
        id: &str,
        events: &[Envelope],
        entries: &[(String, Value)],
    ) -> Result<(), StoreError>;

    /// The run's events after `after` (all from the first when `None`), at most `limit`.
    async fn events(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError>;

    /// The run's journal.
    async fn journal(&self, id: &str) -> Result<HashMap<String, Value>, StoreError>;

    /// Ends `holder`'s attempt at the run: releases its lease, adds `spent_ms` to the run's
    /// active time, and sets `status` unless the run has ended already.
    async fn end_attempt(
        &self,
        id: &str,
        holder: &str,
        status: RunStatus,
        spent_ms: u64,
    ) -> Result<(), StoreError>;

    /// Asks the run to stop: the instance executing it sees `cancel_requested` at its next
    /// look. A run not yet executing (submitted, suspended, paused) is cancelled at once.
    async fn request_cancel(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Takes the run's lease for `holder` until `ttl` from now, unless another holder's is
    /// still valid; renews it when `holder` holds it already.
    async fn lease(
        &self,
        id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StoreError>;

    /// Claims session `id` for run `run_id` (creating the session), unless another run holds
    /// it.
    async fn claim_session(&self, id: &str, run_id: &str) -> Result<Claim, StoreError>;

    /// Releases session `id` from `run_id`, appending `turn` when the run gave one.
    async fn end_turn(
        &self,
        id: &str,
        run_id: &str,
        turn: Option<SessionTurn>,
    ) -> Result<(), StoreError>;

    /// The session `id`.
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError>;

    /// Deletes session `id`; whether it existed.
    async fn delete_session(&self, id: &str) -> Result<bool, StoreError>;

    /// Waits until run `id` may have new events after `after`, at most `timeout` (a store that
    /// can't tell polls).
    async fn wait_events(&self, id: &str, after: Option<u64>, timeout: Duration) {
        let _ = (id, after);
        tokio::time::sleep(timeout.min(Duration::from_millis(250))).await;
    }
}
