//! Resume after a crash, per store: a run's executing "instance" (a run service of its own) is
//! dropped during the second agent's first model call, as SIGKILL leaves it: no end of
//! attempt, its lease still set. Once the lease has lapsed, a second service (another instance
//! id) gets the redelivery and executes the run. Measured from that call: the model asked
//! again (the lease taken, what the run had saved read back, the first agent answered from the
//! journal: the resume's own cost), the first new event committed (after that model answer),
//! and the run's end; and the store round trips before the model was asked.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestrate::run::{Engine, Status};
use orchestrate::service::{Executed, RunRequest, RunService};
use orchestrate::store::{RunStatus, RunStore};
use serde_json::{Value, json};

use crate::counted::Counted;

/// Short, so that the benchmark does not wait long for each lapse.
const LEASE: Duration = Duration::from_millis(300);

/// The crash point and the resume's clock, both read from the scripted model's requests.
#[derive(Default)]
pub(crate) struct Clock {
    /// Requests since [`Clock::crash_at`]; at the set one, `reached` is notified.
    calls: AtomicUsize,
    crash_at: AtomicUsize,
    reached: tokio::sync::Notify,
    /// Set: the next request is timed.
    armed: AtomicBool,
    first: Mutex<Option<(Instant, u64)>>,
    /// The store's round trips so far, read when the model is asked.
    trips: Mutex<Option<Arc<Counted>>>,
}

impl Clock {
    /// Called by the scripted model on every request.
    pub(crate) fn asked(&self) {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.crash_at.load(Ordering::SeqCst) {
            self.reached.notify_one();
        }
        if self.armed.swap(false, Ordering::SeqCst) {
            let trips = self
                .trips
                .lock()
                .unwrap()
                .as_ref()
                .map_or(0, |s| s.stats().round_trips);
            *self.first.lock().unwrap() = Some((Instant::now(), trips));
        }
    }

    /// Notifies `reached` at the `n`th request from now.
    fn crash_at(&self, n: usize) {
        self.calls.store(0, Ordering::SeqCst);
        self.crash_at.store(n, Ordering::SeqCst);
    }

    fn arm(&self, store: &Arc<Counted>) {
        *self.first.lock().unwrap() = None;
        *self.trips.lock().unwrap() = Some(store.clone());
        self.armed.store(true, Ordering::SeqCst);
    }
}

/// One resume's times and the round trips before the model was asked again.
pub(crate) struct Resume {
    pub(crate) model_asked: Duration,
    pub(crate) first_event: Duration,
    pub(crate) completed: Duration,
    pub(crate) round_trips: u64,
}

fn service(engine: &Arc<Engine>, store: &Arc<Counted>) -> Arc<RunService> {
    Arc::new(RunService::new(
        engine.clone(),
        store.clone(),
        tokio_util::task::TaskTracker::new(),
        aixrun::server::Shutdown::default(),
        LEASE,
    ))
}

/// Crashes one run in its second agent and resumes it on another service; `clock` is the one
/// `engine`'s model calls.
pub(crate) async fn once(
    engine: &Arc<Engine>,
    clock: &Clock,
    store: &Arc<Counted>,
) -> Result<Resume, String> {
    let Value::Object(fields) = json!({"input": "Where is my refund?"}) else {
        unreachable!()
    };
    let crashed = service(engine, store);
    let request =
        RunRequest::parse(&crashed.engine.orchestration, &fields).map_err(|e| e.message)?;
    let (record, _) = crashed
        .submit(&request, None, None)
        .await
        .map_err(|e| e.message)?;
    let id = record.run_id.clone();
    // The first agent asks twice (a tool call, then its answer); the third request is the
    // second agent's first, made once its start is saved.
    clock.crash_at(3);
    let executing = tokio::spawn({
        let (crashed, id) = (crashed.clone(), id.clone());
        async move { crashed.execute(&id, None).await }
    });
    if tokio::time::timeout(Duration::from_secs(10), clock.reached.notified())
        .await
        .is_err()
    {
        return Err(format!("run {id}: the second agent never asked the model"));
    }
    executing.abort();
    let _ = executing.await;
    let lease = store
        .get(&id)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|r| r.lease)
        .ok_or_else(|| format!("run {id}: no lease left by the crashed attempt"))?;
    let now_ms = orchestrate::store::epoch_ms();
    tokio::time::sleep(Duration::from_millis(
        lease.until_ms.saturating_sub(now_ms) + 5,
    ))
    .await;
    let redelivered = service(engine, store);
    store.arm();
    clock.arm(store);
    let before = store.stats();
    let started = Instant::now();
    let executed = redelivered
        .execute(&id, None)
        .await
        .map_err(|e| e.message)?;
    let completed = started.elapsed();
    match executed {
        Executed::Finished(r)
            if r.status == RunStatus::Stopped(Status::Completed) && r.attempts == 2 => {}
        other => return Err(format!("run {id}: the resume ended {other:?}")),
    }
    let (at, _) = store
        .first_commit()
        .ok_or_else(|| format!("run {id}: the resume committed nothing"))?;
    let (asked, trips) = clock
        .first
        .lock()
        .unwrap()
        .ok_or_else(|| format!("run {id}: the resume never asked the model"))?;
    Ok(Resume {
        model_asked: asked.saturating_duration_since(started),
        first_event: at.saturating_duration_since(started),
        completed,
        round_trips: trips - before.round_trips,
    })
}
