//! The one place a run's facts are written. Each event gets its number and time here, is
//! folded into the run's state, counted in the metrics and logged once, and sent to the
//! stream (when the run is streamed). Everything else (the SSE writer, the JSON result, the
//! summaries in `agent.finished` and `run.finished`) reads the state this builds.
//!
//! Recording never waits: the stream's channel is unbounded, and what it can hold is bounded
//! by the run's own budget (its tokens, calls and steps). So an event can be recorded from
//! anywhere, a drop guard included, in the order it happened.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::event::{Envelope, Event};
use super::metrics::RunMetrics;
use super::state::{RunState, Status, StepSummary};

/// Where a step is in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepPlace {
    /// Its id.
    pub(crate) id: String,
    /// Its parent's.
    pub(crate) parent: Option<String>,
}

/// One run's recorder.
pub(crate) struct Recorder {
    run_id: String,
    inner: Mutex<Inner>,
    sink: Option<UnboundedSender<Envelope>>,
    metrics: RunMetrics,
    log_payloads: bool,
}

struct Inner {
    next_seq: u64,
    next_step: u64,
    state: RunState,
    /// When each open step started.
    clocks: Vec<(String, Instant)>,
    /// A durable run's events not yet committed to the store (`None`: not durable).
    pending: Option<Vec<Envelope>>,
}

impl Recorder {
    /// A recorder for run `run_id`, streaming to `sink` when given.
    pub(crate) fn new(
        run_id: &str,
        sink: Option<UnboundedSender<Envelope>>,
        metrics: RunMetrics,
        log_payloads: bool,
    ) -> Self {
        Self {
            run_id: run_id.to_owned(),
            inner: Mutex::new(Inner {
                next_seq: 0,
                next_step: 1,
                state: RunState::default(),
                clocks: Vec::new(),
                pending: None,
            }),
            sink,
            metrics,
            log_payloads,
        }
    }

    /// Keeps every event from now on until [`Self::take_pending`] takes it to the store;
    /// `past` are the events an earlier attempt of the run committed: they are folded into
    /// the state, and numbering and step ids go on after them.
    pub(crate) fn durable(self, past: &[Envelope]) -> Self {
        {
            let mut inner = self.lock();
            inner.pending = Some(Vec::new());
            for envelope in past {
                inner.state.apply(envelope);
                inner.next_seq = envelope.seq + 1;
                if let Some(n) = envelope
                    .step_id
                    .as_deref()
                    .and_then(|id| id.strip_prefix('s'))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    inner.next_step = inner.next_step.max(n + 1);
                }
            }
            // Steps still open were cut off with the earlier attempt: their clocks restart.
            let open: Vec<String> = inner
                .state
                .open_steps()
                .into_iter()
                .map(|s| s.step_id)
                .collect();
            inner.clocks = open.into_iter().map(|id| (id, Instant::now())).collect();
        }
        self
    }

    /// The events recorded since the last call, for the store.
    pub(crate) fn take_pending(&self) -> Vec<Envelope> {
        self.lock()
            .pending
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Puts back events a failed commit did not store, before any recorded since.
    pub(crate) fn restore_pending(&self, mut events: Vec<Envelope>) {
        if let Some(pending) = self.lock().pending.as_mut() {
            events.append(pending);
            *pending = events;
        }
    }

    /// Whether step `id` started and has not ended (an earlier attempt's step to go on with).
    pub(crate) fn is_open(&self, id: &str) -> bool {
        self.with_state(|s| s.open_steps().iter().any(|step| step.step_id == id))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The run's id.
    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Whether payloads may be logged.
    pub(crate) fn log_payloads(&self) -> bool {
        self.log_payloads
    }

    /// Reads the state.
    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&RunState) -> T) -> T {
        f(&self.lock().state)
    }

    /// Records a run-level event.
    pub(crate) fn record_run(&self, event: Event) {
        self.record(None, event);
    }

    /// Records `event` of step `place` (or of the run).
    pub(crate) fn record(&self, place: Option<&StepPlace>, event: Event) {
        let envelope = {
            let mut inner = self.lock();
            let envelope = Envelope {
                run_id: self.run_id.clone(),
                seq: inner.next_seq,
                at: now(),
                step_id: place.map(|p| p.id.clone()),
                parent_step_id: place.and_then(|p| p.parent.clone()),
                event,
            };
            inner.next_seq += 1;
            inner.state.apply(&envelope);
            if let Some(pending) = inner.pending.as_mut() {
                pending.push(envelope.clone());
            }
            // Sent under the lock: the stream's order is the numbering's.
            if let Some(sink) = &self.sink {
                // A closed receiver means the caller left; the cancel token ends the run.
                let _ = sink.send(envelope.clone());
            }
            envelope
        };
        self.observe(&envelope);
    }

    /// Starts a step of `agent` under `parent`: its id, and `agent.started`.
    pub(crate) fn start_step(
        &self,
        parent: Option<&StepPlace>,
        agent: &str,
        role: &str,
        model: Option<String>,
        branch: Option<String>,
    ) -> StepPlace {
        let place = {
            let mut inner = self.lock();
            let id = format!("s{}", inner.next_step);
            inner.next_step += 1;
            inner.clocks.push((id.clone(), Instant::now()));
            StepPlace {
                id,
                parent: parent.map(|p| p.id.clone()),
            }
        };
        self.record(
            Some(&place),
            Event::AgentStarted {
                agent: agent.to_owned(),
                role: role.to_owned(),
                model,
                branch,
            },
        );
        place
    }

    /// Ends step `place`: its summary as the state has it, with `status`, `output` (`None`:
    /// the text so far) and `error`; tool calls still running are marked cut off.
    pub(crate) fn finish_step(
        &self,
        place: &StepPlace,
        status: Status,
        output: Option<Value>,
        error: Option<String>,
    ) {
        let summary = {
            let mut inner = self.lock();
            let started = inner
                .clocks
                .iter()
                .position(|(id, _)| id == &place.id)
                .map(|i| inner.clocks.swap_remove(i).1);
            let Some(step) = inner.state.step(&place.id) else {
                return;
            };
            let mut summary: StepSummary = step.summary.clone();
            summary.status = status;
            if let Some(output) = output {
                summary.output = output;
            }
            summary.error = error;
            summary.duration_ms = started.map_or(0, |s| millis(s.elapsed()));
            let why = summary.error.as_deref().unwrap_or("the step ended");
            for call in &mut summary.tool_calls {
                if call.result.is_none() && call.error.is_none() {
                    call.error = Some(format!("cancelled: {why}"));
                }
            }
            summary
        };
        self.record(Some(place), Event::AgentFinished(summary));
    }

    /// Ends every step still open (the run was stopped while they ran), children first.
    pub(crate) fn finish_open_steps(&self, status: Status, error: &str) {
        let open = self.with_state(RunState::open_steps);
        for step in open {
            let place = StepPlace {
                id: step.step_id,
                parent: step.parent_step_id,
            };
            self.finish_step(&place, status, None, Some(error.to_owned()));
        }
    }

    /// Metrics and logs: each fact counted once, where it is recorded.
    fn observe(&self, envelope: &Envelope) {
        let run_id = self.run_id.as_str();
        match &envelope.event {
            Event::AgentStarted { agent, .. } => self.metrics.agent_message(agent, "input"),
            Event::ModelCall(call) => self.metrics.model_call(
                &call.provider,
                &call.model,
                &call.status,
                call.input_tokens,
                call.output_tokens,
                Duration::from_millis(call.duration_ms),
            ),
            Event::ToolResult {
                id, name, error, ..
            } => {
                let server = self.with_state(|s| {
                    envelope
                        .step_id
                        .as_deref()
                        .and_then(|step| s.step(step))
                        .and_then(|step| step.summary.tool_calls.iter().find(|c| &c.id == id))
                        .and_then(|c| c.server.clone())
                });
                self.metrics.tool_call(
                    server.as_deref().unwrap_or("unknown"),
                    name,
                    if error.is_some() { "error" } else { "success" },
                );
            }
            Event::AgentFinished(step) => {
                let kind = if step.error.is_some() {
                    "error"
                } else {
                    "output"
                };
                self.metrics.agent_message(&step.agent, kind);
                self.metrics
                    .agent_step(&step.agent, Duration::from_millis(step.duration_ms));
                // A model that answers without the tools it was given may have made the answer
                // up: the line says so.
                let message = if step.tool_calls.is_empty() && !step.tools_offered.is_empty() {
                    "step finished without calling any of the tools offered"
                } else {
                    "step finished"
                };
                tracing::info!(
                    run_id,
                    step_id = envelope.step_id.as_deref(),
                    parent_step_id = envelope.parent_step_id.as_deref(),
                    agent = step.agent,
                    role = step.role,
                    model = step.model.as_deref(),
                    status = step.status.as_str(),
                    duration_ms = step.duration_ms,
                    input_tokens = step.usage.input_tokens,
                    output_tokens = step.usage.output_tokens,
                    tools_offered = step.tools_offered.len(),
                    tool_calls = step.tool_calls.len(),
                    error = step.error.as_deref(),
                    "{message}"
                );
            }
            Event::RunFinished(run) => {
                self.metrics.run(
                    &run.workflow,
                    run.status.as_str(),
                    Duration::from_millis(run.duration_ms),
                );
                tracing::info!(
                    run_id,
                    workflow = run.workflow,
                    status = run.status.as_str(),
                    duration_ms = run.duration_ms,
                    input_tokens = run.usage.input_tokens,
                    output_tokens = run.usage.output_tokens,
                    model_calls = run.usage.model_calls,
                    tool_calls = run.usage.tool_calls,
                    "run finished"
                );
            }
            _ => {}
        }
    }
}

/// Now, as events are stamped (RFC 3339, UTC).
pub fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Whole milliseconds.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
