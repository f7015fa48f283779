//! What a run remembers so that any instance can take it over: its events, and a journal of
//! what its steps already did, written to the run store before the run goes on.
//!
//! A resumed run walks its workflow again from the start, and every step asks the journal
//! first: a step that completed answers with its recorded output (its usage charged to the
//! meters above it, and no events: they are in the stream already); a model turn that was
//! answered is not asked again; a tool call whose result was recorded is not made again. A
//! step's place in the walk is its *path* (`writer`, `planner/writer#0`: the agent's name,
//! under its parent's path with the child's number), which the same walk on the same answers
//! reproduces, so the journal's keys need no step ids. What was in flight when the instance
//! died runs again: a model call from its start, a tool call with the same idempotency key.
//!
//! Every save commits the events recorded since the last commit with the journal entry, in
//! order, so the store's events and its journal never disagree. Between saves, the engine
//! flushes events every [`FLUSH_EVERY`] for readers following the run from other instances.
//! A run without a store ([`Journal::none`]) saves nothing and costs nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aixrun::llm::{Arguments, ToolCall};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::event::Envelope;
use super::recorder::Recorder;
use super::state::Usage;
use super::tools::{BoxFuture, ToolReply};

/// How often a durable run's events are written between saves.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Where a durable run's record goes (the run store, through the run service).
pub trait Persist: Send + Sync {
    /// Stores `events` (contiguous, in order, possibly none) and the journal `entries`, all
    /// or nothing. An error says what failed (the store's name and why).
    fn commit(
        &self,
        events: Vec<Envelope>,
        entries: Vec<(String, Value)>,
    ) -> BoxFuture<'_, Result<(), String>>;
}

/// One run's journal: what an earlier attempt recorded, and where this one saves.
pub struct Journal {
    recalled: HashMap<String, Value>,
    persist: Option<Arc<dyn Persist>>,
    /// Commits go one at a time, so the store's events arrive in `seq` order (a reader that
    /// follows `seq > last` never skips a later commit's events).
    commits: tokio::sync::Mutex<()>,
}

impl Journal {
    /// No store: nothing recalled, nothing saved.
    pub fn none() -> Self {
        Self {
            recalled: HashMap::new(),
            persist: None,
            commits: tokio::sync::Mutex::new(()),
        }
    }

    /// A durable run's journal: what was saved before (`recalled`), and where to save.
    pub fn durable(recalled: HashMap<String, Value>, persist: Arc<dyn Persist>) -> Self {
        Self {
            recalled,
            persist: Some(persist),
            commits: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether the run is saved as it goes.
    pub fn is_durable(&self) -> bool {
        self.persist.is_some()
    }

    /// Whether an earlier attempt saved anything (this run is a resumption).
    pub fn is_resumed(&self) -> bool {
        !self.recalled.is_empty()
    }

    /// What an earlier attempt saved under `key`, as `T`.
    pub(crate) fn recall<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Option<T> {
        let value = self.recalled.get(key)?;
        serde_json::from_value(value.clone()).ok()
    }

    /// Saves `value` under `key` with every event recorded so far, before the run goes on.
    pub(crate) async fn save<T: Serialize>(
        &self,
        recorder: &Recorder,
        key: String,
        value: &T,
    ) -> Result<(), String> {
        let Some(persist) = &self.persist else {
            return Ok(());
        };
        let value = serde_json::to_value(value).map_err(|e| e.to_string())?;
        let _one_at_a_time = self.commits.lock().await;
        let events = recorder.take_pending();
        let result = persist.commit(events.clone(), vec![(key, value)]).await;
        if result.is_err() {
            recorder.restore_pending(events);
        }
        result
    }

    /// Writes the events recorded since the last commit (none: nothing to do).
    pub(crate) async fn flush(&self, recorder: &Recorder) -> Result<(), String> {
        let Some(persist) = &self.persist else {
            return Ok(());
        };
        let _one_at_a_time = self.commits.lock().await;
        let events = recorder.take_pending();
        if events.is_empty() {
            return Ok(());
        }
        let result = persist.commit(events.clone(), Vec::new()).await;
        if result.is_err() {
            recorder.restore_pending(events);
        }
        result
    }
}

/// A step's path under its parent's: `name` at the top, `parent/name#k` for a parent's k-th
/// child step.
pub(crate) fn child_path(parent: Option<(&str, usize)>, agent: &str) -> String {
    match parent {
        None => agent.to_owned(),
        Some((path, k)) => format!("{path}/{agent}#{k}"),
    }
}

/// The key of a step's start (its id) and of its end.
pub(crate) fn step_key(path: &str) -> String {
    format!("{path}@start")
}

/// The key of a completed step.
pub(crate) fn end_key(path: &str) -> String {
    format!("{path}@end")
}

/// The key of a step's n-th model turn.
pub(crate) fn turn_key(path: &str, n: usize) -> String {
    format!("{path}@m{n}")
}

/// The key of the i-th tool call of a turn.
pub(crate) fn call_key(turn: &str, i: usize) -> String {
    format!("{turn}/t{i}")
}

/// The key of a person's verdict on a gated tool call.
pub fn verdict_key(call: &str) -> String {
    format!("{call}@verdict")
}

/// A person's verdict on a tool call that waited for approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// Approved (else denied).
    pub approved: bool,
    /// What they said, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A step that started: its id, reused when it is resumed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Started {
    pub(crate) step_id: String,
}

/// A step that completed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Completed {
    pub(crate) output: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) routes: Option<Vec<String>>,
    pub(crate) usage: Usage,
}

/// A model turn that was answered.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Answered {
    pub(crate) text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) calls: Vec<Call>,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

/// A tool call as the model made it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Call {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The arguments, or the text that was not JSON.
    pub(crate) arguments: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) invalid: Option<String>,
}

impl From<&ToolCall> for Call {
    fn from(call: &ToolCall) -> Self {
        let (arguments, invalid) = match &call.arguments {
            Arguments::Json(v) => (v.clone(), None),
            Arguments::Invalid { raw, error } => (Value::String(raw.clone()), Some(error.clone())),
        };
        Self {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments,
            invalid,
        }
    }
}

impl From<Call> for ToolCall {
    fn from(call: Call) -> Self {
        let arguments = match (call.invalid, call.arguments) {
            (Some(error), Value::String(raw)) => Arguments::Invalid { raw, error },
            (_, v) => Arguments::Json(v),
        };
        Self {
            id: call.id,
            name: call.name,
            arguments,
        }
    }
}

/// A tool call's reply, as the model read it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Replied {
    pub(crate) text: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) is_error: bool,
}

impl From<&ToolReply> for Replied {
    fn from(reply: &ToolReply) -> Self {
        Self {
            text: reply.text.clone(),
            is_error: reply.is_error,
        }
    }
}

impl From<Replied> for ToolReply {
    fn from(r: Replied) -> Self {
        Self {
            text: r.text,
            is_error: r.is_error,
        }
    }
}
