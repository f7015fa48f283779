//! What a run reports, as it goes and at its end: the events of its stream (`run.started` …
//! `run.finished`) and the result a JSON caller gets. Both are built from the same records, so
//! a streamed run and a JSON run of the same work say the same thing.

use serde::Serialize;
use serde_json::Value;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every step finished.
    Completed,
    /// A token, model-call or tool-call limit was reached: the output is what was produced.
    BudgetExhausted,
    /// The wall-time limit (or the caller's deadline) was reached.
    Deadline,
    /// A model or configuration problem ended it.
    Failed,
    /// The caller went away (or cancelled).
    Cancelled,
    /// The instance is shutting down (SIGTERM).
    Interrupted,
}

impl Status {
    /// The metric label and the `status` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Deadline => "deadline",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }
}

/// Tokens and calls a run (or one step) used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens over every model call.
    pub input_tokens: u64,
    /// Answer tokens over every model call.
    pub output_tokens: u64,
    /// Model calls.
    pub model_calls: u32,
    /// Tool calls.
    pub tool_calls: u32,
}

impl Usage {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.model_calls += other.model_calls;
        self.tool_calls += other.tool_calls;
    }
}

/// One tool call a step made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallRecord {
    /// The model's id for the call.
    pub id: String,
    /// The tool's name as the model called it.
    pub name: String,
    /// The arguments as the model sent them (JSON, or the invalid text).
    pub arguments: Value,
    /// The tool's result as text, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Why it failed (unknown tool, invalid arguments, the tool's own error, a timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
}

/// One agent step of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// The agent.
    pub agent: String,
    /// Its role.
    pub role: &'static str,
    /// The model it used, as the server named it (or as configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Its output.
    pub output: Value,
    /// What it used.
    pub usage: Usage,
    /// Its tool calls, in the model's order.
    pub tool_calls: Vec<ToolCallRecord>,
    /// How long it took.
    pub duration_ms: u64,
    /// Why it did not finish, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer of `POST /v1/run`, and the data of `run.finished`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    /// This run's id (also in every log line about it).
    pub run_id: String,
    /// The workflow it walked.
    pub workflow: String,
    /// How it ended.
    pub status: Status,
    /// The last step's output (partial when the run did not complete).
    pub output: Value,
    /// Why it did not complete, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every step, in order.
    pub steps: Vec<StepRecord>,
    /// The totals.
    pub usage: Usage,
    /// Wall time.
    pub duration_ms: u64,
}

/// One event of a streamed run. Its `name()` is the SSE `event:` and its JSON the `data:`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RunEvent {
    /// The run began.
    RunStarted {
        /// Its id.
        run_id: String,
        /// Its workflow.
        workflow: String,
    },
    /// A step began.
    AgentStarted {
        /// The agent.
        agent: String,
        /// Its role.
        role: &'static str,
    },
    /// More of a step's answer, as the model produces it.
    MessageDelta {
        /// The agent.
        agent: String,
        /// The text.
        delta: String,
    },
    /// The model called a tool.
    ToolCall {
        /// The agent.
        agent: String,
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// The arguments as sent.
        arguments: Value,
    },
    /// A tool call ended.
    ToolResult {
        /// The agent.
        agent: String,
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// Its result, when it ran.
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        /// Its error, when it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// How long it took.
        duration_ms: u64,
    },
    /// A step ended.
    AgentFinished(StepRecord),
    /// The run ended: always the last event, whatever happened.
    RunFinished(RunResult),
}

impl RunEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "run.started",
            Self::AgentStarted { .. } => "agent.started",
            Self::MessageDelta { .. } => "message.delta",
            Self::ToolCall { .. } => "tool.call",
            Self::ToolResult { .. } => "tool.result",
            Self::AgentFinished(_) => "agent.finished",
            Self::RunFinished(_) => "run.finished",
        }
    }
}
