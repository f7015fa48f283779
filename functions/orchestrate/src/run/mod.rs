//! The run engine: a workflow is a graph of agents, a run is one walk of it. Every entry point
//! (`POST /v1/run` as JSON or SSE today; CloudEvents, gRPC and A2A later) drives the same
//! [`Engine::run`], which bounds the walk by its budget and deadline, stops at once when the
//! caller cancels or the instance shuts down, and always ends with a [`RunResult`] holding the
//! output it has. Nothing about a run outlives it.

mod budget;
mod metrics;
mod react;
mod report;
mod tools;

use std::sync::{Arc, Mutex};
use tracing::Instrument as _;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use budget::{Meter, Stop, lowered};
pub use metrics::RunMetrics;
pub use report::{RunEvent, RunResult, Status, StepRecord, ToolCallRecord, Usage};
pub use tools::{AgentTool, BoxFuture, ToolReply, Tools};

use crate::config::{Agent, Budget, Orchestration, Role, Workflow};
use react::millis;

/// What a run needs from the deployment.
pub struct Engine {
    /// The validated configuration.
    pub orchestration: Arc<Orchestration>,
    /// The MCP tools.
    pub tools: Arc<dyn Tools>,
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
    /// The first step's input.
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
        events: Option<mpsc::Sender<RunEvent>>,
        stop: Interruptions,
    ) -> RunResult {
        let started = Instant::now();
        let emitter = Emitter { tx: events };
        emitter
            .emit(RunEvent::RunStarted {
                run_id: spec.run_id.clone(),
                workflow: spec.workflow.clone(),
            })
            .await;
        let progress = Progress::default();
        let meter = Meter::new(spec.budget, spec.deadline);
        let ctx = StepContext {
            meter: &meter,
            tools: self.tools.as_ref(),
            progress: &progress,
            emitter: &emitter,
            metrics: &self.metrics,
            tool_concurrency: self.orchestration.defaults.tool_concurrency,
            run_id: &spec.run_id,
            log_payloads: self.log_payloads,
        };
        let walk = async {
            match self.workflow(&spec.workflow) {
                Some(workflow) => self.walk(&ctx, workflow, spec.input.clone()).await,
                None => Ending::Failed(format!("no workflow {:?}", spec.workflow)),
            }
        };
        // Dropping the walk drops the model stream and any tool call in flight: cancelled.
        let ending = tokio::select! {
            ending = walk => ending,
            () = stop.cancel.cancelled() => Ending::Stopped(Stop::Cancelled),
            () = stop.shutdown.signalled() => Ending::Stopped(Stop::Interrupted),
            () = tokio::time::sleep_until(spec.deadline) => Ending::Stopped(Stop::Deadline),
        };
        let (status, error) = match &ending {
            Ending::Completed => (Status::Completed, None),
            Ending::Failed(e) => (Status::Failed, Some(e.clone())),
            Ending::Stopped(stop) => (
                match stop {
                    Stop::Budget(_) => Status::BudgetExhausted,
                    Stop::Deadline => Status::Deadline,
                    Stop::Cancelled => Status::Cancelled,
                    Stop::Interrupted => Status::Interrupted,
                },
                Some(stop.message()),
            ),
        };
        if let Some(step) = progress.finish_current(error.clone()) {
            self.step_ended(&spec.run_id, &step);
            emitter.emit(RunEvent::AgentFinished(step)).await;
        }
        let steps = progress.steps();
        let output = steps.last().map_or(Value::Null, |s| s.output.clone());
        let result = RunResult {
            run_id: spec.run_id.clone(),
            workflow: spec.workflow.clone(),
            status,
            output,
            error,
            usage: meter.used(),
            steps,
            duration_ms: millis(started.elapsed()),
        };
        self.metrics.run(&spec.workflow, status.as_str());
        tracing::info!(
            run_id = spec.run_id,
            workflow = spec.workflow,
            status = status.as_str(),
            duration_ms = result.duration_ms,
            input_tokens = result.usage.input_tokens,
            output_tokens = result.usage.output_tokens,
            model_calls = result.usage.model_calls,
            tool_calls = result.usage.tool_calls,
            "run finished"
        );
        emitter.emit(RunEvent::RunFinished(result.clone())).await;
        result
    }

    /// Walks the workflow's steps in order, each step's output the next one's input.
    async fn walk(&self, ctx: &StepContext<'_>, workflow: &Workflow, input: Value) -> Ending {
        let mut input = input;
        for agent in &workflow.steps {
            ctx.emit(RunEvent::AgentStarted {
                agent: agent.name.clone(),
                role: role_name(agent.role),
            })
            .await;
            ctx.metrics.agent_message(&agent.name, "input");
            ctx.progress.begin(agent);
            let span = aixrun::telemetry::spans::invoke_agent(&agent.name, ctx.run_id);
            let end = match agent.role {
                Role::React => {
                    react::run(ctx, agent, &input)
                        .instrument(span.clone())
                        .await
                }
                Role::Logger => {
                    let _entered = span.enter();
                    StepEnd::Done(react::log(agent, &input, ctx.run_id, ctx.log_payloads))
                }
            };
            match &end {
                StepEnd::Done(_) => {}
                StepEnd::Stopped(_) => aixrun::telemetry::spans::record_error(&span, "stopped"),
                StepEnd::Failed(_) => aixrun::telemetry::spans::record_error(&span, "failed"),
            }
            drop(span);
            match end {
                StepEnd::Done(output) => {
                    let step = ctx.progress.finish(output.clone(), None);
                    self.step_ended(ctx.run_id, &step);
                    ctx.emit(RunEvent::AgentFinished(step)).await;
                    input = output;
                }
                StepEnd::Stopped(stop) => return Ending::Stopped(stop),
                StepEnd::Failed(e) => return Ending::Failed(e),
            }
        }
        Ending::Completed
    }

    fn step_ended(&self, run_id: &str, step: &StepRecord) {
        let kind = if step.error.is_some() {
            "error"
        } else {
            "output"
        };
        self.metrics.agent_message(&step.agent, kind);
        self.metrics
            .agent_step(&step.agent, millis_duration(step.duration_ms));
        tracing::info!(
            run_id,
            agent = step.agent,
            role = step.role,
            model = step.model.as_deref(),
            duration_ms = step.duration_ms,
            input_tokens = step.usage.input_tokens,
            output_tokens = step.usage.output_tokens,
            tool_calls = step.tool_calls.len(),
            error = step.error.as_deref(),
            "step finished"
        );
    }
}

fn millis_duration(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::React => "react",
        Role::Logger => "logger",
    }
}

/// How the walk ended.
enum Ending {
    Completed,
    Failed(String),
    Stopped(Stop),
}

/// How one step ended.
pub(crate) enum StepEnd {
    /// With this output.
    Done(Value),
    /// A limit, a cancel or a shutdown stopped it.
    Stopped(Stop),
    /// The model or a server failed.
    Failed(String),
}

/// What a step works with.
pub(crate) struct StepContext<'a> {
    meter: &'a Meter,
    tools: &'a dyn Tools,
    progress: &'a Progress,
    emitter: &'a Emitter,
    metrics: &'a RunMetrics,
    tool_concurrency: usize,
    run_id: &'a str,
    log_payloads: bool,
}

impl StepContext<'_> {
    async fn emit(&self, event: RunEvent) {
        self.emitter.emit(event).await;
    }
}

/// Sends a streamed run's events; a JSON run has none to send.
pub(crate) struct Emitter {
    tx: Option<mpsc::Sender<RunEvent>>,
}

impl Emitter {
    async fn emit(&self, event: RunEvent) {
        if let Some(tx) = &self.tx {
            // A closed receiver means the caller left; the cancel token ends the run.
            let _ = tx.send(event).await;
        }
    }
}

/// The steps so far and the one in progress, kept outside the walk so that a run stopped in the
/// middle still reports what it did.
#[derive(Default)]
pub(crate) struct Progress {
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    done: Vec<StepRecord>,
    current: Option<(Instant, StepRecord)>,
    /// Tool calls of the current step still running: (index in its `tool_calls`, start).
    in_flight: Vec<(usize, Instant)>,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self, agent: &Agent) {
        self.lock().current = Some((
            Instant::now(),
            StepRecord {
                agent: agent.name.clone(),
                role: role_name(agent.role),
                model: agent.model.as_ref().map(|m| m.model.clone()),
                output: Value::String(String::new()),
                usage: Usage::default(),
                tool_calls: Vec::new(),
                duration_ms: 0,
                error: None,
            },
        ));
    }

    fn with_current(&self, f: impl FnOnce(&mut StepRecord)) {
        if let Some((_, step)) = self.lock().current.as_mut() {
            f(step);
        }
    }

    fn push_text(&self, _agent: &str, delta: &str) {
        self.with_current(|step| {
            if let Value::String(text) = &mut step.output {
                text.push_str(delta);
            }
        });
    }

    fn reset_text(&self, _agent: &str) {
        self.with_current(|step| step.output = Value::String(String::new()));
    }

    /// Counts a model call as soon as it is made, so a failed one counts too (as the run's
    /// meter counts it).
    fn model_call_started(&self, _agent: &str) {
        self.with_current(|step| step.usage.model_calls += 1);
    }

    fn model_call(&self, _agent: &str, model: &str, input: u64, output: u64) {
        self.with_current(|step| {
            step.model = Some(model.to_owned());
            step.usage.input_tokens += input;
            step.usage.output_tokens += output;
        });
    }

    /// A tool call began: it is listed at once (in the model's order), so that a run stopped
    /// while it runs reports it as cancelled. Returns its place, for [`Self::tool_finished`].
    fn tool_started(&self, record: ToolCallRecord) -> usize {
        let mut state = self.lock();
        let state = &mut *state;
        let Some((_, step)) = state.current.as_mut() else {
            return usize::MAX;
        };
        step.usage.tool_calls += 1;
        step.tool_calls.push(record);
        let at = step.tool_calls.len() - 1;
        state.in_flight.push((at, Instant::now()));
        at
    }

    fn tool_finished(&self, at: usize, record: ToolCallRecord) {
        let mut state = self.lock();
        state.in_flight.retain(|(i, _)| *i != at);
        if let Some(slot) = state
            .current
            .as_mut()
            .and_then(|(_, step)| step.tool_calls.get_mut(at))
        {
            *slot = record;
        }
    }

    /// Ends the current step with `output`.
    fn finish(&self, output: Value, error: Option<String>) -> StepRecord {
        let mut state = self.lock();
        let (started, mut step) = state.current.take().unwrap_or_else(|| {
            (
                Instant::now(),
                StepRecord {
                    agent: String::new(),
                    role: "react",
                    model: None,
                    output: Value::Null,
                    usage: Usage::default(),
                    tool_calls: Vec::new(),
                    duration_ms: 0,
                    error: None,
                },
            )
        });
        // Calls still running were cut off by whatever ended the step.
        for (at, call_started) in std::mem::take(&mut state.in_flight) {
            if let Some(call) = step.tool_calls.get_mut(at) {
                call.error = Some(format!(
                    "cancelled: {}",
                    error.as_deref().unwrap_or("the step ended")
                ));
                call.duration_ms = millis(call_started.elapsed());
            }
        }
        step.output = output;
        step.error = error;
        step.duration_ms = millis(started.elapsed());
        state.done.push(step.clone());
        step
    }

    /// Ends a step stopped in the middle, keeping its partial output.
    fn finish_current(&self, error: Option<String>) -> Option<StepRecord> {
        let output = {
            let state = self.lock();
            let (_, step) = state.current.as_ref()?;
            step.output.clone()
        };
        Some(self.finish(output, error))
    }

    fn steps(&self) -> Vec<StepRecord> {
        self.lock().done.clone()
    }
}
