//! What happens in a run, as a sequence of events: each one an [`Envelope`] numbered by the
//! engine (`seq` from 0), stamped, and placed in the step tree (`step_id`, `parent_step_id`).
//! The events are the run's record: its state is a fold over them ([`super::state`]), the SSE
//! stream sends them as they are, and they serialise both ways so that a store can keep them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::{RunSummary, StepSummary};

/// One event, as streamed (`data:` of SSE, with `event:` its `type`) and as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The run.
    pub run_id: String,
    /// Its place in the run, from 0, without gaps.
    pub seq: u64,
    /// When it happened (RFC 3339, UTC).
    pub at: String,
    /// The step it belongs to (none for the run's own events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    /// That step's parent (a planner's or supervisor's step, for their workers' steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_step_id: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened. The `type` names are the SSE event names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// The run began.
    #[serde(rename = "run.started")]
    RunStarted {
        /// The workflow it walks.
        workflow: String,
    },
    /// A step began.
    #[serde(rename = "agent.started")]
    AgentStarted {
        /// The agent.
        agent: String,
        /// Its role.
        role: String,
        /// The model it is configured with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// The branch of a fan-out it runs on (its own name, or the route that took it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
    },
    /// More of a step's answer, as the model produces it.
    #[serde(rename = "message.delta")]
    MessageDelta {
        /// The agent.
        agent: String,
        /// The text.
        delta: String,
    },
    /// The step's text so far is withdrawn (a structured answer that did not match its schema
    /// is asked for again): a reader drops what it showed of this step's answer.
    #[serde(rename = "message.retracted")]
    MessageRetracted {
        /// The agent.
        agent: String,
        /// Why.
        reason: String,
    },
    /// A model call ended (answered, failed or cut off), with what it used.
    #[serde(rename = "model.call")]
    ModelCall(ModelCall),
    /// The model called a tool.
    #[serde(rename = "tool.call")]
    ToolCall {
        /// The agent.
        agent: String,
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// The MCP server that serves it (none for a tool the agent does not have).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<String>,
        /// The arguments as sent.
        arguments: Value,
    },
    /// A tool call ended.
    #[serde(rename = "tool.result")]
    ToolResult {
        /// The agent.
        agent: String,
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// Its result, when it ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        /// Its error, when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// How long it took.
        duration_ms: u64,
    },
    /// A step decided something: a classifier's route, an aggregator's tally, a planner's
    /// plan, a supervisor's round.
    #[serde(rename = "agent.decided")]
    AgentDecided {
        /// The agent.
        agent: String,
        /// What it decided.
        decision: Decision,
    },
    /// A step ended: its summary, as the run's state has it.
    #[serde(rename = "agent.finished")]
    AgentFinished(StepSummary),
    /// The run ended: always the last event, whatever happened.
    #[serde(rename = "run.finished")]
    RunFinished(RunSummary),
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "run.started",
            Self::AgentStarted { .. } => "agent.started",
            Self::MessageDelta { .. } => "message.delta",
            Self::MessageRetracted { .. } => "message.retracted",
            Self::ModelCall(_) => "model.call",
            Self::ToolCall { .. } => "tool.call",
            Self::ToolResult { .. } => "tool.result",
            Self::AgentDecided { .. } => "agent.decided",
            Self::AgentFinished(_) => "agent.finished",
            Self::RunFinished(_) => "run.finished",
        }
    }
}

/// One model call's outcome and cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCall {
    /// The agent.
    pub agent: String,
    /// The model as configured.
    pub model: String,
    /// The provider (OpenTelemetry's name).
    pub provider: String,
    /// `ok`, the error's type, or `cancelled` when the call was cut off.
    pub status: String,
    /// Why the model stopped, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Prompt tokens charged.
    pub input_tokens: u64,
    /// Answer tokens charged.
    pub output_tokens: u64,
    /// The tools the model could call in this call, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_offered: Vec<String>,
    /// The tokens are counted from the text (about four characters a token), because the
    /// provider's count never arrived.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
    /// How long it took.
    pub duration_ms: u64,
}

/// What a step decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// A classifier's route.
    Route {
        /// The categories taken.
        categories: Vec<String>,
        /// The model's confidence in the best one (1 for a keyword match).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        /// The model's reasoning, when it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasoning: Option<String>,
        /// `model`, `keywords` (no model call) or `fallback` (below the threshold or no match).
        by: String,
    },
    /// An aggregator's strategy and outcome.
    Tally {
        /// The strategy.
        strategy: String,
        /// `winner`, `tie`, `no_majority`, `not_unanimous` or `no_votes` for the votes;
        /// `merged` for the others.
        outcome: String,
        /// Each distinct answer with its votes (or weight) and sources, most first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tally: Vec<Value>,
        /// The sources that failed, by name, with their errors.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failed: Vec<Value>,
        /// Disagreements a consensus named.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        disagreements: Vec<String>,
    },
    /// A planner's plan (again after a failed step, with `replanned`).
    Plan {
        /// The steps: `{description, worker?}`.
        steps: Vec<Value>,
        /// A new plan from a failed step on.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replanned: bool,
    },
    /// A supervisor's round: a worker and its task, or the answer.
    Round {
        /// From 1.
        round: u32,
        /// The worker it delegated to (none when it answered).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<String>,
        /// The task it gave.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<String>,
        /// It answered this round.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        finished: bool,
    },
}
