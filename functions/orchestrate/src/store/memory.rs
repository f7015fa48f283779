//! The default store: everything in this process, for one instance and local work. Bounded:
//! past `RUN_STORE_MAX_RUNS` runs, the oldest finished ones (with their events) go first; runs
//! still going are never evicted. Followers of a run are woken as its events are committed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

use super::lease::epoch_ms;
use super::{
    Claim, Created, LeaseOutcome, RunFilter, RunPage, RunRecord, RunStatus, RunStore, Session,
    SessionTurn, StoreError,
};
use crate::run::{Envelope, Event, now};

/// One run and what it keeps.
struct Entry {
    record: RunRecord,
    events: Vec<Envelope>,
    journal: HashMap<String, Value>,
    /// Commits so far: what orders runs for listing (newest first) and eviction.
    order: u64,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct Inner {
    runs: HashMap<String, Entry>,
    keys: HashMap<String, String>,
    sessions: HashMap<String, Session>,
    created: u64,
}

/// The memory store.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_runs: usize,
}

impl MemoryStore {
    /// A store holding at most `max_runs` runs.
    pub fn new(max_runs: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_runs: max_runs.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Drops the oldest finished runs beyond `max`.
    fn evict(&mut self, max: usize) {
        if self.runs.len() <= max {
            return;
        }
        let mut finished: Vec<(u64, String)> = self
            .runs
            .iter()
            .filter(|(_, e)| e.record.status.is_final())
            .map(|(id, e)| (e.order, id.clone()))
            .collect();
        finished.sort_unstable();
        let excess = self.runs.len() - max;
        for (_, id) in finished.into_iter().take(excess) {
            self.runs.remove(&id);
            self.keys.retain(|_, run| run != &id);
        }
    }
}

#[async_trait]
impl RunStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn create(&self, run: &RunRecord, key: Option<&str>) -> Result<Created, StoreError> {
        let mut inner = self.lock();
        if let Some(key) = key
            && let Some(existing) = inner.keys.get(key).and_then(|id| inner.runs.get(id))
        {
            return Ok(Created::Existing(Box::new(existing.record.clone())));
        }
        inner.created += 1;
        let order = inner.created;
        inner.runs.insert(
            run.run_id.clone(),
            Entry {
                record: run.clone(),
                events: Vec::new(),
                journal: HashMap::new(),
                order,
                notify: Arc::new(Notify::new()),
            },
        );
        if let Some(key) = key {
            inner.keys.insert(key.to_owned(), run.run_id.clone());
        }
        inner.evict(self.max_runs);
        Ok(Created::New)
    }

    async fn get(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.lock().runs.get(id).map(|e| e.record.clone()))
    }

    async fn list(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        let inner = self.lock();
        // Newest first; the page token is the `order` to continue below.
        let below: u64 = match filter.page_token.as_deref().filter(|t| !t.is_empty()) {
            None => u64::MAX,
            Some(token) => token.parse().map_err(|_| StoreError::Invalid {
                store: "memory",
                reason: format!(
                    "page_token {token:?} is not one this listing gave (start again without one)"
                ),
            })?,
        };
        let mut matching: BTreeMap<std::cmp::Reverse<u64>, &RunRecord> = BTreeMap::new();
        for entry in inner.runs.values() {
            let r = &entry.record;
            if entry.order < below
                && filter
                    .session_id
                    .as_ref()
                    .is_none_or(|s| r.session_id.as_ref() == Some(s))
                && filter.status.is_none_or(|s| r.status == s)
            {
                matching.insert(std::cmp::Reverse(entry.order), r);
            }
        }
        let size = filter.page_size.clamp(1, 100);
        let more = matching.len() > size;
        let page: Vec<(u64, RunRecord)> = matching
            .into_iter()
            .take(size)
            .map(|(o, r)| (o.0, r.clone()))
            .collect();
        let next_page_token = if more {
            page.last().map(|(o, _)| o.to_string())
        } else {
            None
        };
        Ok(RunPage {
            runs: page.into_iter().map(|(_, r)| r).collect(),
            next_page_token,
        })
    }

    async fn commit(
        &self,
        id: &str,
        events: &[Envelope],
        entries: &[(String, Value)],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Some(entry) = inner.runs.get_mut(id) else {
            return Err(StoreError::Failed {
                store: "memory",
                reason: format!("no run {id} to commit to (evicted?)"),
            });
        };
        for envelope in events {
            // A resumed run's commits may repeat what is stored: keep one of each `seq`.
            if entry
                .record
                .last_seq
                .is_some_and(|last| envelope.seq <= last)
            {
                continue;
            }
            entry.record.last_seq = Some(envelope.seq);
            if let Event::RunFinished(summary) = &envelope.event {
                entry.record.status = summary.status.into();
                entry.record.result = Some(summary.clone());
                entry.record.lease = None;
            }
            entry.events.push(envelope.clone());
        }
        for (key, value) in entries {
            entry.journal.insert(key.clone(), value.clone());
        }
        entry.record.updated_at = now();
        entry.notify.notify_waiters();
        Ok(())
    }

    async fn events(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let inner = self.lock();
        let Some(entry) = inner.runs.get(id) else {
            return Ok(Vec::new());
        };
        let start = after.map_or(0, |a| entry.events.partition_point(|e| e.seq <= a));
        Ok(entry.events[start..].iter().take(limit).cloned().collect())
    }

    async fn journal(&self, id: &str) -> Result<HashMap<String, Value>, StoreError> {
        Ok(self
            .lock()
            .runs
            .get(id)
            .map(|e| e.journal.clone())
            .unwrap_or_default())
    }

    async fn end_attempt(
        &self,
        id: &str,
        holder: &str,
        status: RunStatus,
        spent_ms: u64,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(entry) = inner.runs.get_mut(id) {
            entry.record.end_attempt(holder, status, spent_ms);
            entry.notify.notify_waiters();
        }
        Ok(())
    }

    async fn request_cancel(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let mut inner = self.lock();
        let Some(entry) = inner.runs.get_mut(id) else {
            return Ok(None);
        };
        if !entry.record.status.is_final() {
            entry.record.cancel_requested = true;
            entry.record.updated_at = now();
        }
        Ok(Some(entry.record.clone()))
    }

    async fn lease(
        &self,
        id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StoreError> {
        let mut inner = self.lock();
        let Some(entry) = inner.runs.get_mut(id) else {
            return Ok(LeaseOutcome::NotFound);
        };
        match entry.record.take_lease(holder, ttl, epoch_ms()) {
            Ok(_) => Ok(LeaseOutcome::Acquired(entry.record.clone())),
            Err(refused) => Ok(refused.outcome(entry.record.clone())),
        }
    }

    async fn claim_session(&self, id: &str, run_id: &str) -> Result<Claim, StoreError> {
        let mut inner = self.lock();
        let session = inner
            .sessions
            .entry(id.to_owned())
            .or_insert_with(|| Session {
                session_id: id.to_owned(),
                turns: Vec::new(),
                active_run: None,
                updated_at: now(),
            });
        match &session.active_run {
            Some(other) if other != run_id => Ok(Claim::Busy {
                run_id: other.clone(),
            }),
            _ => {
                session.active_run = Some(run_id.to_owned());
                session.updated_at = now();
                Ok(Claim::Claimed(session.clone()))
            }
        }
    }

    async fn end_turn(
        &self,
        id: &str,
        run_id: &str,
        turn: Option<SessionTurn>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(session) = inner.sessions.get_mut(id)
            && session.active_run.as_deref() == Some(run_id)
        {
            session.active_run = None;
            session.turns.extend(turn);
            session.updated_at = now();
        }
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().sessions.remove(id).is_some())
    }

    async fn wait_events(&self, id: &str, after: Option<u64>, timeout: Duration) {
        let changed = |inner: &Inner| {
            inner
                .runs
                .get(id)
                .is_none_or(|e| e.record.last_seq != after || e.record.status.is_final())
        };
        let Some(notify) = self.lock().runs.get(id).map(|e| e.notify.clone()) else {
            return;
        };
        // Registered before the check, so a commit between the two still wakes it.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if changed(&self.lock()) {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }
}
