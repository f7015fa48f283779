//! What the store keeps about a run and a session, as the API shows it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run::{RunSummary, Status};

/// Where a run is in its life: before, during and between attempts, or stopped with the
/// status its last attempt ended with (written as that status: `completed`, `input_required`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Accepted, not yet executing.
    Submitted,
    /// An instance is executing it.
    Running,
    /// Stopped at a checkpoint (the request's deadline, SIGTERM): the next delivery goes on.
    Suspended,
    /// Its last attempt ended so: for good, or (`InputRequired`) until its pending tool calls
    /// are approved or denied.
    Stopped(Status),
}

impl RunStatus {
    /// The `status` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Running | Self::Stopped(Status::Running) => "running",
            Self::Suspended => "suspended",
            Self::Stopped(status) => status.as_str(),
        }
    }

    /// Parses the `status` field.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "submitted" => Some(Self::Submitted),
            "running" => Some(Self::Running),
            "suspended" => Some(Self::Suspended),
            _ => Status::ALL
                .into_iter()
                .find(|st| st.as_str() == s)
                .map(Self::Stopped),
        }
    }

    /// Whether the run has ended for good.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Stopped(s) if !matches!(s, Status::Running | Status::InputRequired))
    }
}

impl From<Status> for RunStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Running => Self::Running,
            other => Self::Stopped(other),
        }
    }
}

impl Serialize for RunStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown run status {s:?}")))
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
