//! Starting a run for a door that waits for it (`POST /v1/run`, the gRPC `Run` and
//! `RunStream`): the checks every such door makes first, and the run's events as a stream that
//! cancels the run when it is dropped (the caller went away) unless the caller asked it to
//! continue. A run on its own executes here without the store; a session's turn, or a run
//! asked to continue, goes through the store so that it can be followed, got and cancelled
//! from any instance.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aixrun::error::{ApiError, ErrorKind};
use futures_util::{Stream, StreamExt as _};
use serde_json::{Map, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{OnDisconnect, RunRequest, RunService};
use crate::reachability::Reachability;
use crate::run::{Envelope, Event, Interruptions, RunSpec};
use crate::store::StoreError;

/// A run that passed the checks: the request, and the run it asks for when it runs here.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The checked request.
    pub request: RunRequest,
    /// The run, with a new id and its deadline.
    pub spec: RunSpec,
}

impl Admitted {
    /// Whether the run goes through the store: a session's turn, or a run that must outlive
    /// its caller.
    pub fn stored(&self) -> bool {
        self.request.session_id.is_some()
            || self.request.on_disconnect == Some(OnDisconnect::Continue)
    }
}

/// A stored run's events as they come, for as long as its caller holds them.
pub type StoredEvents = Pin<Box<dyn Stream<Item = Result<Envelope, StoreError>> + Send>>;

/// A stored run a caller follows: dropping `events` before `run.finished` cancels it, unless
/// the caller asked it to continue.
pub struct Attached {
    /// Its id.
    pub run_id: String,
    /// Its events from the store, ending after `run.finished`.
    pub events: StoredEvents,
}

impl RunService {
    /// Checks a run request's JSON `fields` ([`RunRequest::parse`]) and that the workflow's
    /// models answer (503 when one does not); the run's deadline is the first of its wall
    /// time, the door's own deadline `route` less a margin to answer in, and the caller's
    /// `caller`.
    pub async fn admit(
        &self,
        models: &Reachability,
        fields: &Map<String, Value>,
        route: Option<Duration>,
        caller: Option<Duration>,
    ) -> Result<Admitted, ApiError> {
        let orchestration = &self.engine.orchestration;
        let request = RunRequest::parse(orchestration, fields)?;
        let spec = RunSpec {
            run_id: crate::run::run_id(),
            workflow: request.workflow.clone(),
            input: request.input.clone(),
            budget: request.budget,
            deadline: request.deadline(Duration::ZERO, route, caller),
        };
        if let Some(found) = self.engine.workflow(&spec.workflow)
            && let Err(why) = models.workflow(found, orchestration).await
        {
            return Err(ApiError::new(ErrorKind::Unavailable, why).retry_after(5));
        }
        Ok(Admitted { request, spec })
    }

    /// Runs `spec` here, without the store, as its events: the run is a tracked task, and
    /// dropping the stream (the caller left) cancels it. The stream ends after `run.finished`.
    pub fn run_here(
        self: &Arc<Self>,
        spec: RunSpec,
    ) -> impl Stream<Item = Envelope> + Send + 'static {
        // Unbounded: the recorder never waits on a slow client, and what a run can send is
        // bounded by its own budget.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let stop = Interruptions {
            cancel: cancel.clone(),
            shutdown: self.shutdown.clone(),
        };
        let engine = self.engine.clone();
        // In the caller's span: the run's spans belong to the request's trace.
        self.tasks.spawn(
            async move {
                engine.run(spec, Some(tx), stop).await;
            }
            .instrument(tracing::Span::current()),
        );
        let guard = cancel.drop_guard();
        // The stream ends when the run's task drops its sender, after run.finished.
        futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
            let envelope = rx.recv().await?;
            Some((envelope, (rx, guard)))
        })
    }

    /// Stores the run `request` asks for, has it executed ([`Self::dispatch`]) and follows
    /// it. `wait_until` bounds a wait for a busy session.
    pub async fn attach(
        self: &Arc<Self>,
        request: &RunRequest,
        wait_until: Option<Instant>,
    ) -> Result<Attached, ApiError> {
        let (record, _) = self.submit(request, None, wait_until).await?;
        self.dispatch(&record.run_id).await?;
        let guard = CancelOnDrop {
            service: self.clone(),
            run_id: record.run_id.clone(),
            armed: request.on_disconnect != Some(OnDisconnect::Continue),
        };
        // A run that reached its `run.finished` (ended, or paused for approval), or whose
        // events ended, is not cancelled when its caller then goes.
        let events = futures_util::stream::unfold(
            (self.follow(&record.run_id, None).boxed(), guard),
            |(mut events, mut guard)| async move {
                let Some(item) = events.next().await else {
                    guard.disarm();
                    return None;
                };
                if let Ok(Envelope {
                    event: Event::RunFinished(_),
                    ..
                }) = &item
                {
                    guard.disarm();
                }
                Some((item, (events, guard)))
            },
        );
        Ok(Attached {
            run_id: record.run_id,
            events: Box::pin(events),
        })
    }
}

/// Cancels a followed run when its caller leaves before its `run.finished`, unless the
/// caller asked it to continue.
struct CancelOnDrop {
    service: Arc<RunService>,
    run_id: String,
    armed: bool,
}

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (service, id) = (self.service.clone(), self.run_id.clone());
        self.service.tasks.spawn(async move {
            let _ = service.cancel(&id).await;
        });
    }
}
