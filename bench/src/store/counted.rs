//! A run store that passes every call on to another and counts, per operation, the calls, the
//! Firestore round trips, commits and document writes they made, the events they carried and
//! the time they took. Runs go one at a time, so a call's counts are the store's counters
//! after it minus before (the run service's cancel poll may overlap a commit now and then:
//! the per-run totals, taken around whole runs, are exact).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestrate::run::Envelope;
use orchestrate::store::firestore::{FirestoreStore, Stats};
use orchestrate::store::{
    Claim, Created, LeaseOutcome, RunFilter, RunPage, RunRecord, RunStatus, RunStore, Session,
    SessionTurn, StoreError,
};
use serde_json::Value;

/// What the calls of one operation did, summed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Op {
    pub(crate) calls: u64,
    pub(crate) round_trips: u64,
    pub(crate) commits: u64,
    pub(crate) writes: u64,
    pub(crate) events: u64,
    pub(crate) times: Vec<Duration>,
}

/// The store being measured, and the counts.
pub(crate) struct Counted {
    inner: Arc<dyn RunStore>,
    firestore: Option<Arc<FirestoreStore>>,
    ops: Mutex<BTreeMap<&'static str, Op>>,
    /// When the first commit since [`Counted::arm`] ended, with the counters then.
    first_commit: Mutex<Option<(Instant, Stats)>>,
}

impl Counted {
    pub(crate) fn memory(store: Arc<dyn RunStore>) -> Self {
        Self {
            inner: store,
            firestore: None,
            ops: Mutex::new(BTreeMap::new()),
            first_commit: Mutex::new(None),
        }
    }

    pub(crate) fn firestore(store: Arc<FirestoreStore>) -> Self {
        Self {
            inner: store.clone(),
            firestore: Some(store),
            ops: Mutex::new(BTreeMap::new()),
            first_commit: Mutex::new(None),
        }
    }

    /// The Firestore store's counters (zero for the memory store).
    pub(crate) fn stats(&self) -> Stats {
        self.firestore
            .as_ref()
            .map(|f| f.stats())
            .unwrap_or_default()
    }

    /// Forgets the last first commit: the next one is recorded.
    pub(crate) fn arm(&self) {
        *self.first_commit.lock().unwrap() = None;
    }

    /// When the first commit since [`Self::arm`] ended, and the counters then.
    pub(crate) fn first_commit(&self) -> Option<(Instant, Stats)> {
        *self.first_commit.lock().unwrap()
    }

    /// The counts so far, and starts again.
    pub(crate) fn take(&self) -> BTreeMap<&'static str, Op> {
        std::mem::take(&mut *self.ops.lock().unwrap())
    }

    async fn count<T>(
        &self,
        op: &'static str,
        events: usize,
        call: impl std::future::Future<Output = T>,
    ) -> T {
        let (before, started) = (self.stats(), Instant::now());
        let out = call.await;
        let (after, took) = (self.stats(), started.elapsed());
        let mut ops = self.ops.lock().unwrap();
        let o = ops.entry(op).or_default();
        o.calls += 1;
        o.round_trips += after.round_trips - before.round_trips;
        o.commits += after.commits - before.commits;
        o.writes += after.writes - before.writes;
        o.events += events as u64;
        o.times.push(took);
        out
    }
}

/// The commit of a node boundary (journal entries with the events since the last commit).
pub(crate) const BOUNDARY: &str = "commit: node boundary (journal + events)";
/// A commit of events alone (the periodic flush, and the run's end).
pub(crate) const BATCH: &str = "commit: event batch (events only)";

#[async_trait::async_trait]
impl RunStore for Counted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn create(&self, run: &RunRecord, key: Option<&str>) -> Result<Created, StoreError> {
        self.count("create", 0, self.inner.create(run, key)).await
    }

    async fn get(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.count("get", 0, self.inner.get(id)).await
    }

    async fn list(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        self.count("list", 0, self.inner.list(filter)).await
    }

    async fn commit(
        &self,
        id: &str,
        events: &[Envelope],
        entries: &[(String, Value)],
    ) -> Result<(), StoreError> {
        let op = if entries.is_empty() { BATCH } else { BOUNDARY };
        let out = self
            .count(op, events.len(), self.inner.commit(id, events, entries))
            .await;
        if out.is_ok() && !events.is_empty() {
            let stats = self.stats();
            self.first_commit
                .lock()
                .unwrap()
                .get_or_insert((Instant::now(), stats));
        }
        out
    }

    async fn events(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.count("events", 0, self.inner.events(id, after, limit))
            .await
    }

    async fn journal(&self, id: &str) -> Result<HashMap<String, Value>, StoreError> {
        self.count("journal", 0, self.inner.journal(id)).await
    }

    async fn end_attempt(
        &self,
        id: &str,
        holder: &str,
        status: RunStatus,
        spent_ms: u64,
    ) -> Result<(), StoreError> {
        let call = self.inner.end_attempt(id, holder, status, spent_ms);
        self.count("end_attempt", 0, call).await
    }

    async fn request_cancel(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.count("request_cancel", 0, self.inner.request_cancel(id))
            .await
    }

    async fn lease(
        &self,
        id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StoreError> {
        self.count("lease", 0, self.inner.lease(id, holder, ttl))
            .await
    }

    async fn claim_session(&self, id: &str, run_id: &str) -> Result<Claim, StoreError> {
        self.count("claim_session", 0, self.inner.claim_session(id, run_id))
            .await
    }

    async fn end_turn(
        &self,
        id: &str,
        run_id: &str,
        turn: Option<SessionTurn>,
    ) -> Result<(), StoreError> {
        self.count("end_turn", 0, self.inner.end_turn(id, run_id, turn))
            .await
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.count("session", 0, self.inner.session(id)).await
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        self.count("delete_session", 0, self.inner.delete_session(id))
            .await
    }

    async fn wait_events(&self, id: &str, after: Option<u64>, timeout: Duration) {
        self.inner.wait_events(id, after, timeout).await;
    }
}
