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
mod metrics;
pub mod model;
mod recorder;
mod roles;
pub mod state;
mod step;
mod tools;
mod turn;

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
pub use metrics::RunMetrics;
pub use model::{ChatModel, Endpoints, Models};
pub use state::{RunResult, RunSummary, Status, StepRecord, ToolCallRecord, Usage};
pub use tools::{AgentTool, BoxFuture, ToolReply, Tools};

use crate::config::{Budget, Orchestration, Workflow};
pub use recorder::now;
use recorder::{Recorder, millis};
use step::RunCtx;

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

/// How the walk ended.
#[derive(Debug)]
enum Ending {
    Completed,
    Failed(String),
    Stopped(Stop),
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
        let started = Instant::now();
        let recorder = Recorder::new(
            &spec.run_id,
            events,
            self.metrics.clone(),
            self.log_payloads,
        );
        recorder.record_run(Event::RunStarted {
            workflow: spec.workflow.clone(),
        });
        let ctx = RunCtx {
            engine: self,
            recorder: &recorder,
            meter: Meter::new(spec.budget, spec.deadline),
        };
        let workflow = self.workflow(&spec.workflow);
        let walk = async {
            match workflow {
                Some(workflow) => graph::walk(&ctx, workflow, spec.input.clone()).await,
                None => Ending::Failed(format!("no workflow {:?}", spec.workflow)),
            }
        };
        // Dropping the walk drops every branch's model stream and tool call: cancelled.
        let ending = tokio::select! {
            ending = walk => ending,
            () = stop.cancel.cancelled() => Ending::Stopped(Stop::Cancelled),
            () = stop.shutdown.signalled() => Ending::Stopped(Stop::Interrupted),
            () = tokio::time::sleep_until(spec.deadline) => Ending::Stopped(Stop::Deadline),
        };
        let (status, error) = match &ending {
            Ending::Completed => (Status::Completed, None),
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
            Ending::Stopped(stop) => recorder.finish_open_steps(status, &stop.message()),
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
        };
        recorder.record_run(Event::RunFinished(summary.clone()));
        RunResult {
            run_id: spec.run_id,
            summary,
        }
    }
}
