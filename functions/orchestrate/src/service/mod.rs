//! The run service: what every door (HTTP today; gRPC, A2A and CloudEvents next) asks of
//! runs. It owns the request policy ([`request`]), the registry of the runs this instance
//! executes, and the life of a durable run: submitted to the store, executed under a lease by
//! whichever instance gets it (this one's task tracker, or a Pub/Sub delivery), followed from
//! any instance through the store, cancelled from any instance, resumed after a crash from its
//! journal, and continued as the next turn of its session.

pub mod queue;
pub mod request;
pub mod session;
pub mod start;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aixrun::error::{ApiError, ErrorKind};
use aixrun::server::Shutdown;
use futures_util::Stream;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::run::journal::{Verdict, verdict_key};
use crate::run::{
    Attempt, Continuity, Engine, Envelope, Event, Interruptions, Journal, Persist, RunSpec,
    RunSummary, Status, Stop, now,
};
use crate::store::{
    Claim, Created, Lease, LeaseOutcome, RunFilter, RunPage, RunRecord, RunStatus, RunStore,
    Session, StoreError, epoch_ms,
};
pub use request::{IfBusy, OnDisconnect, RunRequest};

/// How often an executing instance looks for a cancel asked elsewhere.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// How long after a lease's end a waiting delivery asks for it: the holder's clock and this
/// one's may differ a little.
const LEASE_MARGIN: Duration = Duration::from_millis(200);
/// Events read from the store at a time.
const EVENT_PAGE: usize = 500;

/// The service.
pub struct RunService {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The store.
    pub store: Arc<dyn RunStore>,
    /// Where this instance's background runs are tracked (SIGTERM's drain waits for them).
    pub tasks: TaskTracker,
    /// SIGTERM.
    pub shutdown: Shutdown,
    /// This instance, as a lease holder.
    pub instance: String,
    /// How long a lease lasts unless renewed.
    pub lease_ttl: Duration,
    /// Where background runs are queued (`RUNS_TOPIC`); `None`: this instance's tracker.
    pub queue: Option<Arc<dyn Queue>>,
    /// The runs this instance executes now, by id.
    running: Mutex<HashMap<String, CancellationToken>>,
}

/// A queue of runs to execute: each message names a run, and its delivery executes it.
#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    /// Queues run `id` (a new run, a resumed one, or a continuation).
    async fn publish(&self, id: &str) -> Result<(), String>;
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Executed {
    /// The run ended (here, or before this delivery).
    Finished(Box<RunRecord>),
    /// It stopped at a checkpoint to go on in another delivery.
    Suspended,
    /// This instance executes it already (a duplicate delivery): nothing was done.
    HeldHere,
    /// Another holder's lease still runs: nothing was done.
    HeldElsewhere(Lease),
}

fn unavailable(e: &StoreError) -> ApiError {
    match e {
        StoreError::Unavailable { .. } => {
            ApiError::new(ErrorKind::Unavailable, e.to_string()).retry_after(5)
        }
        StoreError::Invalid { .. } => ApiError::new(ErrorKind::BadRequest, e.to_string()),
        StoreError::Failed { .. } => ApiError::new(ErrorKind::Internal, e.to_string()),
    }
}

/// A run this instance executes, in the registry until dropped (however the execution ends).
struct Running<'a> {
    service: &'a RunService,
    id: String,
    /// Cancels the execution (a cancel asked here, or seen in the store).
    cancel: CancellationToken,
}

impl<'a> Running<'a> {
    /// Registers run `id`, or `None` when this instance executes it already.
    fn claim(service: &'a RunService, id: &str) -> Option<Self> {
        let cancel = CancellationToken::new();
        match service.registry().entry(id.to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => return None,
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(cancel.clone()),
        };
        Some(Self {
            service,
            id: id.to_owned(),
            cancel,
        })
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.service.registry().remove(&self.id);
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("no run {id:?}"))
}

impl RunService {
    /// A service on `store`.
    pub fn new(
        engine: Arc<Engine>,
        store: Arc<dyn RunStore>,
        tasks: TaskTracker,
        shutdown: Shutdown,
        lease_ttl: Duration,
    ) -> Self {
        Self {
            engine,
            store,
            tasks,
            shutdown,
            instance: format!("i-{}", &crate::run::run_id()[..12]),
            lease_ttl,
            queue: None,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a new run for `request` (or finds the one `idempotency_key` made before, the
    /// `bool` then `false`), claiming its session. Nothing executes it yet: see
    /// [`Self::dispatch`].
    pub async fn submit(
        &self,
        request: &RunRequest,
        idempotency_key: Option<&str>,
        wait_until: Option<Instant>,
    ) -> Result<(RunRecord, bool), ApiError> {
        let run_id = crate::run::run_id();
        if let Some(session) = &request.session_id {
            self.claim(session, &run_id, request.if_busy, wait_until)
                .await?;
        }
        let at = now();
        let record = RunRecord {
            run_id: run_id.clone(),
            workflow: request.workflow.clone(),
            status: RunStatus::Submitted,
            request: request.stored(),
            session_id: request.session_id.clone(),
            created_at: at.clone(),
            updated_at: at,
            last_seq: None,
            result: None,
            cancel_requested: false,
            lease: None,
            attempts: 0,
            spent_ms: 0,
        };
        let created = self.store.create(&record, idempotency_key).await;
        let release = |created_new: bool| async move {
            if !created_new && let Some(session) = &request.session_id {
                let _ = self.store.end_turn(session, &run_id, None).await;
            }
        };
        match created {
            Ok(Created::New) => Ok((record, true)),
            Ok(Created::Existing(existing)) => {
                release(false).await;
                Ok((*existing, false))
            }
            Err(e) => {
                release(false).await;
                Err(unavailable(&e))
            }
        }
    }

    /// Claims `session` for `run_id`: 409 naming the run that holds it, or with `wait`, waits
    /// for it until `wait_until`.
    async fn claim(
        &self,
        session: &str,
        run_id: &str,
        if_busy: IfBusy,
        wait_until: Option<Instant>,
    ) -> Result<(), ApiError> {
        loop {
            match self.store.claim_session(session, run_id).await {
                Ok(Claim::Claimed(_)) => return Ok(()),
                Ok(Claim::Busy { run_id: other }) => {
                    let can_wait = if_busy == IfBusy::Wait
                        && wait_until.is_none_or(|at| Instant::now() + CANCEL_POLL < at);
                    if !can_wait {
                        return Err(ApiError::new(
                            ErrorKind::Conflict,
                            format!(
                                "session {session:?} is busy with run {other}; retry when it \
                                 ends, or send \"if_busy\": \"wait\""
                            ),
                        ));
                    }
                    tokio::time::sleep(CANCEL_POLL).await;
                }
                Err(e) => return Err(unavailable(&e)),
            }
        }
    }

    /// Has run `id` executed: published to the run queue when there is one (a push delivery
    /// then executes it inside its own request, as request-based billing requires), else in
    /// this instance's task tracker (local work, or an instance that keeps its CPU between
    /// requests). Returns once the run is queued: a 503 when the queue is down.
    pub async fn dispatch(self: &Arc<Self>, id: &str) -> Result<(), ApiError> {
        if let Some(queue) = &self.queue {
            return queue.publish(id).await.map_err(|e| {
                ApiError::new(
                    ErrorKind::Unavailable,
                    format!("the run queue is unavailable: {e}"),
                )
                .retry_after(5)
            });
        }
        let service = Arc::clone(self);
        let id = id.to_owned();
        self.tasks.spawn(async move {
            if let Err(e) = service.execute(&id, None).await {
                tracing::error!(run_id = id, "the run could not execute: {}", e.message);
            }
        });
        Ok(())
    }

    /// Executes run `id` under a lease until it ends or, when `suspend_at` comes (the
    /// delivering request's deadline), until it stops at a checkpoint for the next delivery.
    /// A run another instance holds is left alone.
    pub async fn execute(
        &self,
        id: &str,
        suspend_at: Option<Instant>,
    ) -> Result<Executed, ApiError> {
        // The store's lease keeps other instances out; the registry keeps out a second
        // delivery to this one (a push redelivered while this instance still answers it), to
        // which the store would grant this instance's lease again. Claimed before the lease
        // is asked for, so that two deliveries here cannot both pass.
        let Some(running) = Running::claim(self, id) else {
            return Ok(Executed::HeldHere);
        };
        let record = match self
            .store
            .lease(id, &self.instance, self.lease_ttl)
            .await
            .map_err(|e| unavailable(&e))?
        {
            LeaseOutcome::Acquired(record) => record,
            LeaseOutcome::Held(lease) => return Ok(Executed::HeldElsewhere(lease)),
            LeaseOutcome::Finished(record) => return Ok(Executed::Finished(Box::new(record))),
            LeaseOutcome::NotFound => return Err(not_found(id)),
        };
        let started = Instant::now();
        let outcome = self
            .attempt(&record, running.cancel.clone(), suspend_at)
            .await;
        drop(running);
        let spent = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, executed) = match outcome {
            Ok(Attempt::Suspended) => (RunStatus::Suspended, Executed::Suspended),
            Ok(Attempt::Finished(result)) => {
                // A paused run keeps its session until it ends.
                if let Some(session) = &record.session_id
                    && result.summary.status != Status::InputRequired
                {
                    let turn = session::turn(id, &record.request["input"], &result.summary);
                    if let Err(e) = self.store.end_turn(session, id, turn).await {
                        tracing::error!(run_id = id, "the session's turn was not stored: {e}");
                    }
                }
                let mut done = record.clone();
                done.status = result.summary.status.into();
                done.result = Some(result.summary);
                (done.status, Executed::Finished(Box::new(done)))
            }
            Err(e) => {
                // A run that can never execute here (its workflow is gone) ends failed; one
                // the store could not load waits for the next delivery.
                if e.kind == ErrorKind::Unavailable {
                    let _ = self
                        .store
                        .end_attempt(id, &self.instance, RunStatus::Suspended, spent)
                        .await;
                } else {
                    self.finish_idle(id, Status::Failed, e.message.clone())
                        .await?;
                }
                return Err(e);
            }
        };
        self.store
            .end_attempt(id, &self.instance, status, spent)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(executed)
    }

    /// Executes run `id` for a queue delivery whose request ends at `deadline`: a run that
    /// must stop before it (or at SIGTERM) is suspended at a checkpoint and published again,
    /// so that the next delivery, on any instance, goes on from there.
    pub async fn deliver(
        self: &Arc<Self>,
        id: &str,
        deadline: Option<Instant>,
    ) -> Result<Executed, ApiError> {
        // Stop early enough to save and publish before the platform's deadline.
        let suspend_at = deadline.map(|at| {
            let left = at.saturating_duration_since(Instant::now());
            at - (left / 10).min(Duration::from_secs(10))
        });
        // A delivery that finds the run held may be a duplicate of a live execution, or the
        // redelivery of one whose instance died a moment ago, before its lease ran out: it
        // waits up to one and a half leases, taking the run over if the lease lapses (the
        // holder stopped renewing it), and acknowledges if the holder is still alive then.
        // It sleeps until the lease's end rather than asking again and again.
        let patience = Instant::now() + self.lease_ttl + self.lease_ttl / 2;
        let executed = loop {
            let executed = self.execute(id, suspend_at).await?;
            let Executed::HeldElsewhere(lease) = &executed else {
                break executed;
            };
            let ends_in = Duration::from_millis(lease.until_ms.saturating_sub(epoch_ms()));
            let wake = Instant::now() + ends_in + LEASE_MARGIN;
            if wake > patience || suspend_at.is_some_and(|at| wake + self.lease_ttl / 3 > at) {
                break executed;
            }
            tokio::time::sleep_until(wake).await;
        };
        if executed == Executed::Suspended {
            self.dispatch(id).await?;
        }
        Ok(executed)
    }

    /// One attempt at `record`, with what earlier attempts saved.
    async fn attempt(
        &self,
        record: &RunRecord,
        cancel: CancellationToken,
        suspend_at: Option<Instant>,
    ) -> Result<Attempt, ApiError> {
        let id = record.run_id.as_str();
        let request = self.stored_request(record)?;
        // A first attempt has nothing saved to go on from: two round trips spared.
        let (past, recalled) = if record.attempts <= 1 {
            (Vec::new(), HashMap::new())
        } else {
            let past = self.all_events(id).await?;
            (
                past,
                self.store.journal(id).await.map_err(|e| unavailable(&e))?,
            )
        };
        let history = match &record.session_id {
            Some(session) => match self.store.session(session).await {
                Ok(Some(s)) => session::history(&s, self.engine.orchestration.session_max_turns),
                Ok(None) => Vec::new(),
                Err(e) => return Err(unavailable(&e)),
            },
            None => Vec::new(),
        };
        let spec = RunSpec {
            run_id: id.to_owned(),
            workflow: request.workflow.clone(),
            input: request.input.clone(),
            budget: request.budget,
            deadline: request.deadline(Duration::from_millis(record.spent_ms), None, None),
        };
        let persist: Arc<dyn Persist> = Arc::new(StorePersist {
            store: self.store.clone(),
            run_id: id.to_owned(),
        });
        let continuity = Continuity {
            journal: Journal::durable(recalled, persist),
            past,
            history,
        };
        if record.cancel_requested {
            cancel.cancel();
        }
        let keeper = self.keep(id, cancel.clone());
        let stop = Interruptions {
            cancel,
            shutdown: self.shutdown.clone(),
        };
        let attempt = self
            .engine
            .attempt(spec, None, stop, continuity, suspend_at);
        let outcome = tokio::select! {
            outcome = attempt => outcome,
            never = keeper => match never {},
        };
        Ok(outcome)
    }

    /// While run `id` executes here: renews its lease, and cancels it when a cancel was asked
    /// elsewhere or another instance took the lease over. Never ends by itself.
    async fn keep(&self, id: &str, cancel: CancellationToken) -> std::convert::Infallible {
        let renew_every = self.lease_ttl / 3;
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(CANCEL_POLL.min(renew_every)).await;
            if let Ok(Some(record)) = self.store.get(id).await
                && record.cancel_requested
            {
                cancel.cancel();
            }
            if last_renewal.elapsed() >= renew_every {
                match self.store.lease(id, &self.instance, self.lease_ttl).await {
                    Ok(LeaseOutcome::Acquired(_)) => last_renewal = Instant::now(),
                    Ok(LeaseOutcome::Held(lease)) => {
                        let holder = lease.holder;
                        tracing::warn!(run_id = id, holder, "the run's lease was taken over");
                        cancel.cancel();
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(run_id = id, "the run's lease was not renewed: {e}"),
                }
            }
        }
    }

    fn stored_request(&self, record: &RunRecord) -> Result<RunRequest, ApiError> {
        let Value::Object(fields) = &record.request else {
            return Err(ApiError::new(
                ErrorKind::Internal,
                format!("run {} has no stored request", record.run_id),
            ));
        };
        RunRequest::parse(&self.engine.orchestration, fields).map_err(|e| {
            ApiError::new(
                ErrorKind::Internal,
                format!(
                    "run {} can no longer run here: {} (was the configuration changed?)",
                    record.run_id, e.message
                ),
            )
        })
    }

    async fn all_events(&self, id: &str) -> Result<Vec<Envelope>, ApiError> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map(|e: &Envelope| e.seq);
            let page = self
                .store
                .events(id, after, EVENT_PAGE)
                .await
                .map_err(|e| unavailable(&e))?;
            let more = page.len() == EVENT_PAGE;
            all.extend(page);
            if !more {
                return Ok(all);
            }
        }
    }

    /// The run `id` (a paused run past its approval timeout is cancelled first).
    pub async fn get(&self, id: &str) -> Result<RunRecord, ApiError> {
        let record = match self.store.get(id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(not_found(id)),
            Err(e) => return Err(unavailable(&e)),
        };
        if self.expire_if_due(&record).await? {
            return Box::pin(self.get(id)).await;
        }
        Ok(record)
    }

    /// Runs matching `filter`.
    pub async fn list(&self, filter: &RunFilter) -> Result<RunPage, ApiError> {
        self.store.list(filter).await.map_err(|e| unavailable(&e))
    }

    /// Cancels run `id` from any instance: the one executing it stops within a second; a run
    /// nobody executes (submitted, suspended) ends `cancelled` here. 409 for a run that ended.
    pub async fn cancel(&self, id: &str) -> Result<RunRecord, ApiError> {
        let record = match self.store.request_cancel(id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(not_found(id)),
            Err(e) => return Err(unavailable(&e)),
        };
        if record.status.is_final() {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "run {id} has ended ({}); there is nothing to cancel",
                    record.status.as_str()
                ),
            ));
        }
        if let Some(token) = self.registry().get(id) {
            token.cancel();
            return Ok(record);
        }
        // Nobody executes it (submitted, suspended, paused): it ends here, under the lease so
        // that no delivery starts it meanwhile.
        self.finish_idle(id, Status::Cancelled, Stop::Cancelled.message())
            .await?;
        self.get(id).await
    }

    /// Ends run `id`, which no instance executes, with `status`: its `run.finished` (the
    /// last summary it had, or an empty one) is committed after its last event, and its
    /// session is released. Nothing happens when another instance holds the run.
    async fn finish_idle(&self, id: &str, status: Status, error: String) -> Result<(), ApiError> {
        let record = match self
            .store
            .lease(id, &self.instance, self.lease_ttl)
            .await
            .map_err(|e| unavailable(&e))?
        {
            LeaseOutcome::Acquired(record) => record,
            LeaseOutcome::NotFound => return Err(not_found(id)),
            LeaseOutcome::Held(_) | LeaseOutcome::Finished(_) => return Ok(()),
        };
        let mut summary = record.result.clone().unwrap_or_else(|| RunSummary {
            workflow: record.workflow.clone(),
            status,
            output: Value::Null,
            error: None,
            steps: Vec::new(),
            usage: Default::default(),
            duration_ms: record.spent_ms,
            pending: Vec::new(),
        });
        summary.status = status;
        summary.error = Some(error);
        summary.pending.clear();
        let envelope = Envelope {
            run_id: id.to_owned(),
            seq: record.last_seq.map_or(0, |s| s + 1),
            at: now(),
            step_id: None,
            parent_step_id: None,
            event: Event::RunFinished(summary),
        };
        let committed = self.store.commit(id, &[envelope], &[]).await;
        if let Some(session) = &record.session_id {
            let _ = self.store.end_turn(session, id, None).await;
        }
        let _ = self
            .store
            .end_attempt(id, &self.instance, RunStatus::from(status), 0)
            .await;
        committed.map_err(|e| unavailable(&e))
    }

    /// Answers run `id`'s pending approvals: `approve` and `deny` name them by
    /// `approval_id`; a denied call goes back to the model as a tool error with `message`.
    /// The run then goes on, on whichever instance executes it. 409 unless the run waits for
    /// approval; a run that waited past its agent's `approval.timeout` is cancelled instead.
    pub async fn resume(
        &self,
        id: &str,
        approve: &[String],
        deny: &[String],
        message: Option<String>,
    ) -> Result<RunRecord, ApiError> {
        let record = self.get(id).await?;
        if record.status != RunStatus::Stopped(Status::InputRequired) {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "run {id} is not waiting for approval (it is {})",
                    record.status.as_str()
                ),
            ));
        }
        let pending = record
            .result
            .as_ref()
            .map(|r| r.pending.clone())
            .unwrap_or_default();
        let known: Vec<&str> = pending.iter().map(|p| p.approval_id.as_str()).collect();
        for asked in approve.iter().chain(deny) {
            if !known.contains(&asked.as_str()) {
                return Err(ApiError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "run {id} has no pending approval {asked:?}; pending: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        if let Some(both) = approve.iter().find(|a| deny.contains(a)) {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                format!("{both:?} is both approved and denied"),
            ));
        }
        if approve.is_empty() && deny.is_empty() {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                format!("approve or deny at least one of: {}", known.join(", ")),
            ));
        }
        let verdicts: Vec<(String, Value)> = approve
            .iter()
            .map(|a| (a, true))
            .chain(deny.iter().map(|d| (d, false)))
            .map(|(key, approved)| {
                let verdict = Verdict {
                    approved,
                    message: (!approved).then(|| message.clone()).flatten(),
                };
                (
                    verdict_key(key),
                    serde_json::to_value(verdict).unwrap_or(Value::Null),
                )
            })
            .collect();
        self.store
            .commit(id, &[], &verdicts)
            .await
            .map_err(|e| unavailable(&e))?;
        self.store
            .end_attempt(id, "", RunStatus::Submitted, 0)
            .await
            .map_err(|e| unavailable(&e))?;
        self.get(id).await
    }

    /// Whether paused run `record` waited longer than its agents' `approval.timeout`.
    pub fn approval_expired(&self, record: &RunRecord) -> Option<Duration> {
        if record.status != RunStatus::Stopped(Status::InputRequired) {
            return None;
        }
        let pending = &record.result.as_ref()?.pending;
        let timeout = pending
            .iter()
            .filter_map(|p| self.engine.orchestration.agents.get(&p.agent))
            .filter_map(|a| a.approval.as_ref().map(|g| g.timeout))
            .min()?;
        let paused_at = time::OffsetDateTime::parse(
            &record.updated_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        let waited = time::OffsetDateTime::now_utc() - paused_at;
        (waited > timeout).then_some(timeout)
    }

    /// Cancels paused run `record` when it waited too long; whether it did.
    pub async fn expire_if_due(&self, record: &RunRecord) -> Result<bool, ApiError> {
        let Some(timeout) = self.approval_expired(record) else {
            return Ok(false);
        };
        self.finish_idle(
            &record.run_id,
            Status::Cancelled,
            format!(
                "nobody approved or denied its tool calls within approval.timeout ({}s)",
                timeout.as_secs()
            ),
        )
        .await?;
        Ok(true)
    }

    /// The session `id`.
    pub async fn session(&self, id: &str) -> Result<Option<Session>, ApiError> {
        self.store.session(id).await.map_err(|e| unavailable(&e))
    }

    /// Deletes session `id`: 409 while a run holds it.
    pub async fn delete_session(&self, id: &str) -> Result<bool, ApiError> {
        if let Some(session) = self.session(id).await?
            && let Some(run) = session.active_run
        {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!("session {id:?} is busy with run {run}; cancel it or wait"),
            ));
        }
        self.store
            .delete_session(id)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// Run `id`'s events after `after`, from the store, as they come: ends after
    /// `run.finished` (or when the run has ended and everything was read).
    pub fn follow(
        self: &Arc<Self>,
        id: &str,
        after: Option<u64>,
    ) -> impl Stream<Item = Result<Envelope, StoreError>> + Send + 'static {
        let service = Arc::clone(self);
        let id = id.to_owned();
        futures_util::stream::unfold(
            (
                service,
                id,
                after,
                Vec::<Envelope>::new().into_iter(),
                false,
            ),
            |(service, id, mut after, mut buffered, mut done)| async move {
                loop {
                    if let Some(envelope) = buffered.next() {
                        after = Some(envelope.seq);
                        if matches!(envelope.event, Event::RunFinished(_)) {
                            done = true;
                        }
                        return Some((Ok(envelope), (service, id, after, buffered, done)));
                    }
                    if done {
                        return None;
                    }
                    match service.store.events(&id, after, EVENT_PAGE).await {
                        Err(e) => {
                            return Some((Err(e), (service, id, after, buffered, true)));
                        }
                        Ok(page) if !page.is_empty() => buffered = page.into_iter(),
                        Ok(_) => {
                            match service.store.get(&id).await {
                                Ok(Some(r)) if r.status.is_final() && r.last_seq == after => {
                                    return None;
                                }
                                Ok(None) => return None,
                                _ => {}
                            }
                            service
                                .store
                                .wait_events(&id, after, Duration::from_secs(1))
                                .await;
                        }
                    }
                }
            },
        )
    }
}

/// A durable run's commits, into the store.
struct StorePersist {
    store: Arc<dyn RunStore>,
    run_id: String,
}

impl Persist for StorePersist {
    fn commit(
        &self,
        events: Vec<Envelope>,
        entries: Vec<(String, Value)>,
    ) -> crate::run::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.store
                .commit(&self.run_id, &events, &entries)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
