//! What a run request may say, checked once for every door: the fields, the workflow, the
//! budget (only lowered), the deadlines, the session and what a disconnect does.

use std::time::Duration;

use aixrun::error::{ApiError, ErrorKind};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::config::{Budget, Orchestration};
use crate::run::lowered;

/// The fields a run request may have.
pub const FIELDS: [&str; 9] = [
    "input",
    "workflow",
    "metadata",
    "budget",
    "stream",
    "deadline_ms",
    "session_id",
    "on_disconnect",
    "if_busy",
];

/// Taken off the request's deadline so that a run answers before the platform's 504.
const MAX_DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// What a caller that goes away does to its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDisconnect {
    /// Cancels it (`/v1/run`'s default).
    Cancel,
    /// Lets it go on; the caller can follow its events again (needs the store).
    Continue,
}

/// What a run on a session that is busy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfBusy {
    /// Refused: 409 naming the running one.
    Reject,
    /// Waits for it to finish (within the request's deadline).
    Wait,
}

/// A checked run request.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The entries' input.
    pub input: Value,
    /// The workflow.
    pub workflow: String,
    /// The caller's metadata, kept with the run.
    pub metadata: Option<Value>,
    /// The budget as asked (kept so that a resumed run asks the same).
    pub asked_budget: Option<Value>,
    /// The budget: the configured one, lowered by the request.
    pub budget: Budget,
    /// `stream` as given.
    pub stream: Option<bool>,
    /// `deadline_ms` as given.
    pub deadline_ms: Option<u64>,
    /// The conversation it continues.
    pub session_id: Option<String>,
    /// What a disconnect does (`None`: the door's default).
    pub on_disconnect: Option<OnDisconnect>,
    /// What a busy session does.
    pub if_busy: IfBusy,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::BadRequest, message)
}

impl RunRequest {
    /// The workflow `fields` ask for, as [`Self::parse`] resolves it (the default when none
    /// is named), or what they name when it is not one; empty when they name nothing usable.
    /// For a refusal's log line and stream, which name the workflow even when parsing failed.
    pub fn workflow_named(orchestration: &Orchestration, fields: &Map<String, Value>) -> String {
        workflow(orchestration, fields.get("workflow")).unwrap_or_else(|_| {
            fields
                .get("workflow")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
    }

    /// Checks `fields` against `orchestration`: a 400 saying what is wrong, or 404 for an
    /// unknown workflow.
    pub fn parse(
        orchestration: &Orchestration,
        fields: &Map<String, Value>,
    ) -> Result<Self, ApiError> {
        if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(bad(format!(
                "unknown field {unknown:?}; expected {}",
                FIELDS.join(", ")
            )));
        }
        let input = match fields.get("input") {
            Some(v @ (Value::String(_) | Value::Object(_))) => v.clone(),
            Some(_) => return Err(bad("input must be a string or an object")),
            None => return Err(bad("input is required (a string or an object)")),
        };
        let workflow = workflow(orchestration, fields.get("workflow"))?;
        let metadata = match fields.get("metadata") {
            None | Some(Value::Null) => None,
            Some(m @ Value::Object(_)) => Some(m.clone()),
            Some(_) => return Err(bad("metadata must be an object")),
        };
        let asked_budget = fields.get("budget").cloned();
        let budget = match &asked_budget {
            None => orchestration.defaults.budget,
            Some(asked) => lowered(orchestration.defaults.budget, asked).map_err(bad)?,
        };
        let stream = match fields.get("stream") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(bad("stream must be true or false")),
        };
        let deadline_ms = match fields.get("deadline_ms") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| bad("deadline_ms must be a whole number of milliseconds"))?,
            ),
        };
        let session_id = match fields.get("session_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if valid_id(s) => Some(s.clone()),
            Some(_) => {
                return Err(bad(
                    "session_id must be 1-128 characters of letters, digits, '-', '_' or '.'",
                ));
            }
        };
        let on_disconnect = match fields.get("on_disconnect").and_then(Value::as_str) {
            None if fields.get("on_disconnect").is_none_or(Value::is_null) => None,
            Some("cancel") => Some(OnDisconnect::Cancel),
            Some("continue") => Some(OnDisconnect::Continue),
            _ => return Err(bad("on_disconnect must be \"cancel\" or \"continue\"")),
        };
        let if_busy = match fields.get("if_busy").and_then(Value::as_str) {
            None if fields.get("if_busy").is_none_or(Value::is_null) => IfBusy::Reject,
            Some("reject") => IfBusy::Reject,
            Some("wait") => IfBusy::Wait,
            _ => return Err(bad("if_busy must be \"reject\" or \"wait\"")),
        };
        Ok(Self {
            input,
            workflow,
            metadata,
            asked_budget,
            budget,
            stream,
            deadline_ms,
            session_id,
            on_disconnect,
            if_busy,
        })
    }

    /// What the store keeps of it, enough to run it again anywhere.
    pub fn stored(&self) -> Value {
        let mut stored = Map::new();
        stored.insert("input".to_owned(), self.input.clone());
        stored.insert("workflow".to_owned(), Value::String(self.workflow.clone()));
        if let Some(m) = &self.metadata {
            stored.insert("metadata".to_owned(), m.clone());
        }
        if let Some(b) = &self.asked_budget {
            stored.insert("budget".to_owned(), b.clone());
        }
        if let Some(s) = &self.session_id {
            stored.insert("session_id".to_owned(), Value::String(s.clone()));
        }
        Value::Object(stored)
    }

    /// When a run started now must answer: its wall time less `spent`, shortened by the
    /// route's deadline (less a margin to answer in) and the caller's own (`grpc-timeout`,
    /// `deadline_ms`).
    pub fn deadline(
        &self,
        spent: Duration,
        route: Option<Duration>,
        caller: Option<Duration>,
    ) -> Instant {
        let now = Instant::now();
        let mut deadline = now + self.budget.wall_time.saturating_sub(spent);
        if let Some(left) = route {
            let margin = MAX_DEADLINE_MARGIN.min(left / 10);
            deadline = deadline.min(now + left.saturating_sub(margin));
        }
        if let Some(timeout) = caller {
            deadline = deadline.min(now + timeout);
        }
        if let Some(ms) = self.deadline_ms {
            deadline = deadline.min(now + Duration::from_millis(ms));
        }
        deadline
    }
}

/// Whether `id` may name a session or run (it becomes a document id).
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.starts_with("__")
        && id != "."
        && id != ".."
}

fn workflow(orchestration: &Orchestration, asked: Option<&Value>) -> Result<String, ApiError> {
    let names = || {
        orchestration
            .workflows
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let workflow = match asked {
        Some(Value::String(name)) => name.clone(),
        Some(_) => return Err(bad("workflow must be a string")),
        None if orchestration.workflows.len() == 1 => orchestration
            .workflows
            .keys()
            .next()
            .cloned()
            .unwrap_or_default(),
        None if orchestration.workflows.contains_key("default") => "default".to_owned(),
        None => return Err(bad(format!("workflow is required: one of {}", names()))),
    };
    if !orchestration.workflows.contains_key(&workflow) {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "unknown workflow {workflow:?}; the workflows are {}",
                names()
            ),
        ));
    }
    Ok(workflow)
}
