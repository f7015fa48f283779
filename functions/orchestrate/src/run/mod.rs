//! The run engine: a workflow is a graph of agents, a run is one walk of it. Every entry point
//! (`POST /v1/run` as JSON or SSE today; CloudEvents, gRPC and A2A later) drives the same
//! [`Engine::run`], which bounds the walk by its budget and deadline, stops every branch at
//! once when the caller cancels or the instance shuts down, and always ends with a
//! [`RunResult`] holding the output it has.
//!
//! - [`event`]: what happens, as numbered envelopes; [`state`]: the run as a fold over them;
//!   [`recorder`]: the one writer of both, and of the metrics and logs they imply.
//! - [`graph`]: the walk; [`step`]: one agent's step in the tree; [`roles`]: one module per
//!   role; [`turn`]: one model call and the structured-output path.
//! - [`budget`]: the meters; [`model`] and [`tools`]: what the engine needs from models and
//!   MCP servers, each with an in-process stand-in for tests and benchmarks.

mod budget;
pub mod event;
mod graph;
mod id;
mod in_process;
pub mod journal;
mod metrics;
pub mod model;
mod recorder;
mod roles;
pub mod state;
mod step;
mod tools;
mod turn;

#[cfg(test)]
mod resume_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use budget::{Meter, Stop, lowered};
pub use event::{Envelope, Event};
pub use id::run_id;
pub use in_process::Echo;
pub use journal::{Journal, Persist};
pub use metrics::RunMetrics;
pub use model::{ChatModel, Endpoints, Models};
pub use state::{
    PendingApproval, RunResult, RunSummary, Status, StepRecord, ToolCallRecord, Usage,
};
pub use tools::{AgentTool, BoxFuture, ToolReply, Tools};

use crate::config::{Budget, Orchestration, Workflow};
pub use recorder::now;
use recorder::{Recorder, millis};
use step::RunCtx;
pub use step::as_text as step_text;

/// What a run needs from the deployment.
pub struct Engine {
    /// The validated configuration.
    pub orchestration: Arc<Orchestration>,
    /// The MCP tools.
    pub tools: Arc<dyn Tools>,
    /// The models.
    pub models: Arc<dyn Models>,
    /// Where runs are counted.
    pub metrics: RunMetrics,
    /// Whether inputs and outputs may be logged (`LOG_PAYLOADS`).
    pub log_payloads: bool,
}

/// One run to make.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Its id.
    pub run_id: String,
    /// The workflow's name (checked to exist).
    pub workflow: String,
    /// The entries' input.
    pub input: Value,
    /// Its limits (the configured ones, lowered by the request).
    pub budget: Budget,
    /// When it must have answered (the wall-time budget, the caller's deadline and the
    /// platform's request deadline, whichever is first).
    pub deadline: Instant,
}

/// What ends a run besides its own walk.
pub struct Interruptions {
    /// The caller went away or cancelled.
    pub cancel: CancellationToken,
    /// The instance is shutting down.
    pub shutdown: aixrun::server::Shutdown,
}

/// How one attempt at a run ended.
#[derive(Debug)]
pub enum Attempt {
    /// The run ended (`run.finished` recorded, and committed when durable).
    Finished(RunResult),
    /// A durable run stopped at a checkpoint to go on elsewhere: the instance is shutting
    /// down, or `suspend_at` came. Its events are committed; nothing was finished.
    Suspended,
}

/// What a run carries over from before it: its journal and events (an earlier attempt's, for
/// a resumed run), and its session's earlier turns.
pub struct Continuity {
    /// Where it saves, and what an earlier attempt saved.
    pub journal: Journal,
    /// The events an earlier attempt committed (none for a new run).
    pub past: Vec<Envelope>,
    /// The session's earlier turns, as messages (user inputs and final answers).
    pub history: Vec<aixrun::llm::Message>,
}

impl Continuity {
    /// A run on its own: no store, no session.
    pub fn none() -> Self {
        Self {
            journal: Journal::none(),
            past: Vec::new(),
            history: Vec::new(),
        }
    }
}

/// How the walk ended.
#[derive(Debug)]
enum Ending {
    Completed,
    Failed(String),
    Stopped(Stop),
    /// A durable run stops here to go on in another attempt.
    Suspended,
}

impl Engine {
    /// The workflow named `name`.
    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.orchestration.workflows.get(name)
    }

    /// Runs `spec`, sending its events to `events` (if streamed), and returns its result.
    /// `run.finished` is always the last event sent.
    pub async fn run(
        &self,
        spec: RunSpec,
        events: Option<UnboundedSender<Envelope>>,
        stop: Interruptions,
    ) -> RunResult {
        let (run_id, workflow) = (spec.run_id.clone(), spec.workflow.clone());
        match self
            .attempt(spec, events, stop, Continuity::none(), None)
            .await
        {
            Attempt::Finished(result) => result,
            // Only a durable run is suspended; kept total all the same.
            Attempt::Suspended => RunResult {
                run_id,
                summary: RunSummary {
                    workflow,
                    status: Status::Interrupted,
                    output: Value::Null,
                    error: Some(Stop::Interrupted.message()),
                    steps: Vec::new(),
                    usage: Usage::default(),
                    duration_ms: 0,
                    pending: Vec::new(),
                },
            },
        }
    }

    /// One attempt at a run that carries `continuity`: a durable run whose instance shuts
    /// down, or that reaches `suspend_at` (the request's deadline), stops at once with every
    /// completed model turn and tool call saved, and is [`Attempt::Suspended`]; the next
    /// attempt goes on from its journal.
    pub async fn attempt(
        &self,
        spec: RunSpec,
        events: Option<UnboundedSender<Envelope>>,
        stop: Interruptions,
        continuity: Continuity,
        suspend_at: Option<Instant>,
    ) -> Attempt {
        let started = Instant::now();
        let Continuity {
            journal,
            past,
            history,
        } = continuity;
        let mut recorder = Recorder::new(
            &spec.run_id,
            events,
            self.metrics.clone(),
            self.log_payloads,
        );
        if journal.is_durable() {
            recorder = recorder.durable(&past);
        }
        if past.is_empty() {
            recorder.record_run(Event::RunStarted {
                workflow: spec.workflow.clone(),
            });
        }
        let ctx = RunCtx {
            engine: self,
            recorder: &recorder,
            meter: Meter::new(spec.budget, spec.deadline),
            journal: &journal,
            history: &history,
        };
        let workflow = self.workflow(&spec.workflow);
        let walk = async {
            match workflow {
                Some(workflow) => graph::walk(&ctx, workflow, spec.input.clone()).await,
                None => Ending::Failed(format!("no workflow {:?}", spec.workflow)),
            }
        };
        // A durable run's events reach the store between saves too, for readers elsewhere.
        let flusher = async {
            if !journal.is_durable() {
                return std::future::pending().await;
            }
            loop {
                tokio::time::sleep(journal::FLUSH_EVERY).await;
                if let Err(e) = journal.flush(&recorder).await {
                    tracing::warn!(run_id = spec.run_id, "the run's events wait: {e}");
                }
            }
        };
        let walk = async {
            tokio::select! {
                ending = walk => ending,
                never = flusher => never,
            }
        };
        // Dropping the walk drops every branch's model stream and tool call: cancelled.
        let durable = journal.is_durable();
        let suspend = async {
            match suspend_at {
                Some(at) if durable && at < spec.deadline => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        let ending = tokio::select! {
            ending = walk => ending,
            () = stop.cancel.cancelled() => Ending::Stopped(Stop::Cancelled),
            () = stop.shutdown.signalled() => Ending::Stopped(Stop::Interrupted),
            () = tokio::time::sleep_until(spec.deadline) => Ending::Stopped(Stop::Deadline),
            () = suspend => Ending::Suspended,
        };
        if durable
            && matches!(
                ending,
                Ending::Suspended | Ending::Stopped(Stop::Interrupted)
            )
        {
            if let Err(e) = journal.flush(&recorder).await {
                tracing::error!(
                    run_id = spec.run_id,
                    "the run's last events were not stored: {e}"
                );
            }
            return Attempt::Suspended;
        }
        let (status, error) = match &ending {
            Ending::Completed => (Status::Completed, None),
            Ending::Suspended => (Status::Interrupted, Some(Stop::Interrupted.message())),
            Ending::Failed(e) => (Status::Failed, Some(e.clone())),
            Ending::Stopped(stop) => (stop.status(), Some(stop.message())),
        };
        // Steps still open were cut off: by the stop itself, or, when a branch failed, by
        // that failure (they did not fail themselves).
        match &ending {
            Ending::Completed => recorder.finish_open_steps(
                Status::Cancelled,
                "cancelled: the workflow's exit answered first",
            ),
            Ending::Failed(e) => {
                recorder.finish_open_steps(Status::Cancelled, &format!("cancelled: {e}"));
            }
            // A paused run's steps stay open: its next attempt goes on with them.
            Ending::Stopped(Stop::Paused(_)) => {}
            Ending::Stopped(stop) => recorder.finish_open_steps(status, &stop.message()),
            Ending::Suspended => {
                recorder.finish_open_steps(status, &Stop::Interrupted.message());
            }
        }
        let (steps, usage) = recorder.with_state(|s| (s.records(), s.usage));
        let output = workflow.map_or(Value::Null, |w| graph::output(w, &steps));
        let summary = RunSummary {
            workflow: spec.workflow.clone(),
            status,
            output,
            error,
            steps,
            usage,
            duration_ms: millis(started.elapsed()),
            pending: match ending {
                Ending::Stopped(Stop::Paused(pending)) => pending,
                _ => Vec::new(),
            },
        };
        recorder.record_run(Event::RunFinished(summary.clone()));
        if let Err(e) = journal.flush(&recorder).await {
            tracing::error!(run_id = spec.run_id, "the run's end was not stored: {e}");
        }
        Attempt::Finished(RunResult {
            run_id: spec.run_id,
            summary,
        })
    }
}
