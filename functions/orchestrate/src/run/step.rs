//! One step: an agent's run on an input, in its place in the step tree, with its own meter.
//! The graph runs the workflow's agents as steps; planners and supervisors run their workers
//! as child steps. Every step starts with `agent.started` and ends with `agent.finished`,
//! whatever ends it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aixrun::llm::Message;

use serde_json::{Map, Value};
use tracing::Instrument as _;

use super::Engine;
use super::budget::{Meter, Stop};
use super::event::{Decision, Event};
use super::journal::{self, Completed, Journal, Started};
use super::recorder::{Recorder, StepPlace};
use super::roles;
use super::state::Status;
use super::tools::BoxFuture;
use crate::config::Agent;

/// What every step of one run shares.
pub(crate) struct RunCtx<'a> {
    /// The deployment.
    pub(crate) engine: &'a Engine,
    /// The run's record.
    pub(crate) recorder: &'a Recorder,
    /// The run's meter.
    pub(crate) meter: Arc<Meter>,
    /// What earlier attempts did, and where this one saves.
    pub(crate) journal: &'a Journal,
    /// The session's earlier turns, which react agents see before the task.
    pub(crate) history: &'a [Message],
}

/// One step in progress.
pub(crate) struct Step<'a> {
    /// The run.
    pub(crate) run: &'a RunCtx<'a>,
    /// Its agent.
    pub(crate) agent: &'a Agent,
    /// Its place in the tree.
    pub(crate) place: StepPlace,
    /// Its meter (a child of its parent's).
    pub(crate) meter: Arc<Meter>,
    /// It runs its agent's react loop whatever the agent's role (a planner doing a step of
    /// its plan itself).
    pub(crate) as_react: bool,
    /// Its place in the walk, the journal's key ([`journal`]).
    pub(crate) path: String,
    /// Child steps started so far.
    children: AtomicUsize,
    /// Model turns started so far.
    turns: AtomicUsize,
}

impl Step<'_> {
    /// The journal key of the next model turn.
    pub(crate) fn next_turn_key(&self) -> String {
        journal::turn_key(&self.path, self.turns.fetch_add(1, Ordering::Relaxed))
    }

    /// Records an event of this step.
    pub(crate) fn record(&self, event: Event) {
        self.run.recorder.record(Some(&self.place), event);
    }

    /// The agent's own prompt (when it has one), a blank line, then `instructions`: what a
    /// role asks its model, after what the user configured.
    pub(crate) fn prompt_then(&self, instructions: &str) -> String {
        match &self.agent.prompt {
            Some(prompt) => format!("{}\n\n{instructions}", prompt.trim()),
            None => instructions.to_owned(),
        }
    }

    /// What worker `name` does, for this step's model: the first line of its prompt.
    pub(crate) fn worker_summary(&self, name: &str) -> &str {
        self.run
            .engine
            .orchestration
            .agents
            .get(name)
            .and_then(|a| a.prompt.as_deref())
            .and_then(|p| p.lines().next())
            .unwrap_or("")
            .trim()
    }

    /// Records a decision of this step.
    pub(crate) fn decide(&self, decision: Decision) {
        self.record(Event::AgentDecided {
            agent: self.agent.name.clone(),
            decision,
        });
    }
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StepEnd {
    /// With this output; a classifier also names the routes it takes.
    Done {
        /// The output.
        output: Value,
        /// The categories routed to (classifiers only).
        routes: Option<Vec<String>>,
    },
    /// A limit, a cancel or a shutdown stopped it, with its best output when it has one (else
    /// its text so far).
    Stopped(Stop, Option<Value>),
    /// The model, a tool server or the workflow failed.
    Failed(String),
}

impl StepEnd {
    /// Done with `output`.
    pub(crate) fn done(output: Value) -> Self {
        Self::Done {
            output,
            routes: None,
        }
    }
}

/// What a step takes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input {
    /// One value: the run's input, the one agent that fed it, or a worker's task.
    One(Value),
    /// Several agents fed it: their outputs by name in the order they finished, and the
    /// agents that failed (with `on_error: continue`) with their errors.
    Many {
        /// Outputs in arrival order.
        outputs: Vec<(String, Value)>,
        /// Failures.
        failed: Vec<(String, String)>,
    },
}

impl Input {
    /// As one JSON value: the value, or an object of the outputs by agent (with `failed`).
    pub(crate) fn value(&self) -> Value {
        match self {
            Self::One(v) => v.clone(),
            Self::Many { outputs, failed } => {
                let mut map: Map<String, Value> = outputs.iter().cloned().collect();
                if !failed.is_empty() {
                    let failed: Map<String, Value> = failed
                        .iter()
                        .map(|(a, e)| (a.clone(), Value::String(e.clone())))
                        .collect();
                    map.insert("failed".to_owned(), Value::Object(failed));
                }
                Value::Object(map)
            }
        }
    }

    /// As a message for a model: text as is, anything else as JSON.
    pub(crate) fn text(&self) -> String {
        as_text(&self.value())
    }
}

/// A value as text for a model: a string as is, anything else as JSON.
pub fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs `agent` on `input` as a step under `parent` (a top-level step when `None`), on
/// `branch` of a fan-out when given; `as_react` runs the agent's react loop whatever its role.
/// Boxed: planners and supervisors run steps inside theirs.
pub(crate) fn run_step<'a>(
    run: &'a RunCtx<'a>,
    agent: &'a Agent,
    input: &'a Input,
    parent: Option<&'a Step<'a>>,
    branch: Option<String>,
    as_react: bool,
) -> BoxFuture<'a, StepEnd> {
    Box::pin(async move {
        let path = journal::child_path(
            parent.map(|p| (p.path.as_str(), p.children.fetch_add(1, Ordering::Relaxed))),
            &agent.name,
        );
        let parent_meter = parent.map_or(&run.meter, |p| &p.meter);
        // A step an earlier attempt completed answers as it did, its spending charged above.
        if let Some(done) = run.journal.recall::<Completed>(&journal::end_key(&path)) {
            parent_meter.charge(&done.usage);
            return StepEnd::Done {
                output: done.output,
                routes: done.routes,
            };
        }
        let place = match run.journal.recall::<Started>(&journal::step_key(&path)) {
            // A step an earlier attempt started goes on under its id.
            Some(started) if run.recorder.is_open(&started.step_id) => StepPlace {
                id: started.step_id,
                parent: parent.map(|p| p.place.id.clone()),
            },
            _ => {
                let place = run.recorder.start_step(
                    parent.map(|p| &p.place),
                    &agent.name,
                    if as_react { "react" } else { agent.role.name() },
                    agent.model.as_ref().map(|m| m.model.clone()),
                    branch,
                );
                let saved = async {
                    if !run.journal.is_durable() {
                        return Ok(());
                    }
                    let started = Started {
                        step_id: place.id.clone(),
                    };
                    let key = journal::step_key(&path);
                    run.journal.save(run.recorder, key, &started).await
                };
                if let Err(e) = saved.await {
                    let error = format!("the run store failed: {e}");
                    run.recorder
                        .finish_step(&place, Status::Failed, None, Some(error.clone()));
                    return StepEnd::Failed(error);
                }
                place
            }
        };
        let meter = Meter::child(parent_meter, &agent.name, agent.budget);
        let step = Step {
            run,
            agent,
            place,
            meter,
            as_react,
            path,
            children: AtomicUsize::new(0),
            turns: AtomicUsize::new(0),
        };
        let span = aixrun::telemetry::spans::invoke_agent(&agent.name, run.recorder.run_id());
        let work = roles::run(&step, input).instrument(span.clone());
        let end = tokio::select! {
            end = work => end,
            () = tokio::time::sleep_until(step.meter.deadline()) => {
                StepEnd::Stopped(step.meter.out_of_time(), None)
            }
        };
        // A step waiting for approval stays open: the run's next attempt goes on with it.
        if matches!(end, StepEnd::Stopped(Stop::Paused(_), _)) {
            return end;
        }
        let (status, output, error) = match &end {
            StepEnd::Done { output, .. } => (Status::Completed, Some(output.clone()), None),
            StepEnd::Stopped(stop, output) => {
                aixrun::telemetry::spans::record_error(&span, "stopped");
                (stop.status(), output.clone(), Some(stop.message()))
            }
            StepEnd::Failed(e) => {
                aixrun::telemetry::spans::record_error(&span, "failed");
                (Status::Failed, None, Some(e.clone()))
            }
        };
        run.recorder.finish_step(&step.place, status, output, error);
        if let StepEnd::Done { output, routes } = &end
            && run.journal.is_durable()
        {
            let usage = run
                .recorder
                .with_state(|s| s.step(&step.place.id).map(|r| r.summary.usage))
                .unwrap_or_default();
            let done = Completed {
                output: output.clone(),
                routes: routes.clone(),
                usage,
            };
            if let Err(e) = run
                .journal
                .save(run.recorder, journal::end_key(&step.path), &done)
                .await
            {
                return StepEnd::Failed(format!("the run store failed: {e}"));
            }
        }
        end
    })
}
