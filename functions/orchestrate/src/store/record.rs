//! What the store keeps about a run and a session, as the API shows it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run::{RunSummary, Status};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, not yet executing.
    Submitted,
    /// An instance is executing it.
    Running,
    /// Stopped at a checkpoint (the request's deadline, SIGTERM): the next delivery goes on.
    Suspended,
    /// Every step finished.
    Completed,
    /// A limit was reached.
    BudgetExhausted,
    /// Its time ran out.
    Deadline,
    /// A model, tool server or configuration problem ended it.
    Failed,
    /// Cancelled.
    Cancelled,
    /// The instance stopped and the run could not be kept (a run without a store).
    Interrupted,
    /// Paused until its pending tool calls are approved or denied.
    InputRequired,
}

impl RunStatus {
    /// The `status` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Running => "running",
            Self::Suspended => "suspended",
            Self::Completed => "completed",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Deadline => "deadline",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
            Self::InputRequired => "input_required",
        }
    }

    /// Parses the `status` field.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Submitted,
            Self::Running,
            Self::Suspended,
            Self::Completed,
            Self::BudgetExhausted,
            Self::Deadline,
            Self::Failed,
            Self::Cancelled,
            Self::Interrupted,
            Self::InputRequired,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the run has ended for good.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Self::Submitted | Self::Running | Self::Suspended | Self::InputRequired
        )
    }
}

impl From<Status> for RunStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Running => Self::Running,
            Status::Completed => Self::Completed,
            Status::BudgetExhausted => Self::BudgetExhausted,
            Status::Deadline => Self::Deadline,
            Status::Failed => Self::Failed,
            Status::Cancelled => Self::Cancelled,
            Status::Interrupted => Self::Interrupted,
            Status::InputRequired => Self::InputRequired,
        }
    }
}

/// Who executes a run, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The instance.
    pub holder: String,
    /// Until when (milliseconds since the Unix epoch).
    pub until_ms: u64,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its id.
    pub run_id: String,
    /// Its workflow.
    pub workflow: String,
    /// Where it is.
    pub status: RunStatus,
    /// The request that started it (`input`, `workflow`, `budget`, `metadata`,
    /// `session_id`), as accepted.
    pub request: Value,
    /// The session it continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// When it was accepted (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
    /// The last event stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// Its result, once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RunSummary>,
    /// Someone asked it to stop.
    #[serde(default)]
    pub cancel_requested: bool,
    /// Who executes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Deliveries that executed it (1 for a run that ran once).
    #[serde(default)]
    pub attempts: u32,
    /// Time spent executing over every attempt (milliseconds): what its wall-time budget
    /// counts (time waiting in a queue or paused does not).
    #[serde(default)]
    pub spent_ms: u64,
}

/// Which runs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only this session's.
    pub session_id: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// At most this many (1-100).
    pub page_size: usize,
    /// Where the previous page ended.
    pub page_token: Option<String>,
}

/// One page of runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    /// The runs, newest first.
    pub runs: Vec<RunRecord>,
    /// The next page's token, when there is one.
    pub next_page_token: Option<String>,
}

/// One finished turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTurn {
    /// The run.
    pub run_id: String,
    /// The user's input, as text.
    pub input: String,
    /// The final answer, as text.
    pub output: String,
    /// The tools the run called, by name, summarised for later turns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// When it finished (RFC 3339).
    pub at: String,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Its id.
    pub session_id: String,
    /// Its turns, oldest first.
    pub turns: Vec<SessionTurn>,
    /// The run that holds it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_run: Option<String>,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}
