//! A run's state as a fold over its events: the step tree, each step's output so far, tool
//! calls and usage (a step's usage includes its children's), and the run's totals. The
//! recorder folds each event as it is recorded; a store can fold the same events read back.
//! The summaries in `agent.finished` and `run.finished` are snapshots of this state.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::event::{Decision, Envelope, Event};

/// How a run, or one step, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Still going (a step's status in a snapshot taken before it ended).
    Running,
    /// Every step finished.
    Completed,
    /// A token, model-call, tool-call or round limit was reached: the output is what was
    /// produced.
    BudgetExhausted,
    /// The wall-time limit (or the caller's deadline) was reached.
    Deadline,
    /// A model, tool server or configuration problem ended it.
    Failed,
    /// The caller went away (or cancelled).
    Cancelled,
    /// The instance is shutting down (SIGTERM).
    Interrupted,
    /// Paused: tool calls wait for a person's approval (`POST /v1/runs/{id}:resume`).
    InputRequired,
}

impl Status {
    /// Every status.
    pub const ALL: [Self; 8] = [
        Self::Running,
        Self::Completed,
        Self::BudgetExhausted,
        Self::Deadline,
        Self::Failed,
        Self::Cancelled,
        Self::Interrupted,
        Self::InputRequired,
    ];

    /// The metric label and the `status` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Deadline => "deadline",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
            Self::InputRequired => "input_required",
        }
    }
}

/// Tokens and calls a run (or one step) used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens over every model call.
    pub input_tokens: u64,
    /// Answer tokens over every model call.
    pub output_tokens: u64,
    /// Model calls (answered, failed or cut off).
    pub model_calls: u32,
    /// Tool calls.
    pub tool_calls: u32,
    /// Some tokens were counted from the text because the provider's count never arrived
    /// (a call cut off or failed mid-answer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl Usage {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.model_calls += other.model_calls;
        self.tool_calls += other.tool_calls;
        self.estimated |= other.estimated;
    }
}

/// One tool call a step made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    /// The model's id for the call.
    pub id: String,
    /// The tool's name as the model called it.
    pub name: String,
    /// The MCP server that serves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The arguments as the model sent them (JSON, or the invalid text).
    pub arguments: Value,
    /// The tool's result as text, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Why it failed (unknown tool, invalid arguments, the tool's own error, a timeout, or
    /// `cancelled: ...` when the step ended while it ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
}

/// One step as `agent.finished` reports it (and, with its place in the tree, as the result's
/// `steps` list it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    /// The agent.
    pub agent: String,
    /// Its role.
    pub role: String,
    /// The model it is configured with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// How it ended.
    pub status: Status,
    /// Its output (the text so far, for a step that did not finish).
    pub output: Value,
    /// Why the model's last answer ended (`stop`, `length`, `tool_calls`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// What it used, its children's included.
    pub usage: Usage,
    /// The tools its model could call, by name: with no `tool_calls`, the model answered
    /// without using any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_offered: Vec<String>,
    /// Its tool calls, in the model's order.
    pub tool_calls: Vec<ToolCallRecord>,
    /// What it decided: a route, a tally, a plan, rounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
    /// How long it took.
    pub duration_ms: u64,
    /// Why it did not complete, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One step of a run, in the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Its id in the run.
    pub step_id: String,
    /// The step it works for (a planner's or supervisor's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_step_id: Option<String>,
    /// The fan-out branch it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// What it did.
    #[serde(flatten)]
    pub summary: StepSummary,
}

/// What `run.finished` reports (the JSON answer is this with the run's id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The workflow it walked.
    pub workflow: String,
    /// How it ended.
    pub status: Status,
    /// The workflow exit's output (partial, or the branches' outputs by agent, when the run
    /// did not complete).
    pub output: Value,
    /// Why it did not complete, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every step, in the order they started.
    pub steps: Vec<StepRecord>,
    /// The totals.
    pub usage: Usage,
    /// Wall time.
    pub duration_ms: u64,
    /// The tool calls waiting for approval (status `input_required`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingApproval>,
}

/// A tool call that waits for a person's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    /// What `:resume` names it by (unique in the run).
    pub approval_id: String,
    /// The step that made it.
    pub step_id: String,
    /// Its agent.
    pub agent: String,
    /// The tool.
    pub tool: String,
    /// The model's id for the call.
    pub call_id: String,
    /// Its arguments.
    pub arguments: Value,
}

/// The answer of `POST /v1/run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// This run's id (also in every log line about it).
    pub run_id: String,
    /// The rest.
    #[serde(flatten)]
    pub summary: RunSummary,
}

/// The fold.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    /// The workflow, once `run.started` is seen.
    pub workflow: String,
    /// Steps in the order they started, each with whether it ended.
    pub steps: Vec<(StepRecord, bool)>,
    /// The run's totals.
    pub usage: Usage,
    /// The last event folded.
    pub last_seq: Option<u64>,
}

impl RunState {
    /// Folds one event in.
    pub fn apply(&mut self, envelope: &Envelope) {
        self.last_seq = Some(envelope.seq);
        let id = envelope.step_id.as_deref();
        match &envelope.event {
            Event::RunStarted { workflow } => self.workflow.clone_from(workflow),
            Event::AgentStarted {
                agent,
                role,
                model,
                branch,
            } => self.steps.push((
                StepRecord {
                    step_id: id.unwrap_or_default().to_owned(),
                    parent_step_id: envelope.parent_step_id.clone(),
                    branch: branch.clone(),
                    summary: StepSummary {
                        agent: agent.clone(),
                        role: role.clone(),
                        model: model.clone(),
                        status: Status::Running,
                        output: Value::String(String::new()),
                        finish_reason: None,
                        usage: Usage::default(),
                        tools_offered: Vec::new(),
                        tool_calls: Vec::new(),
                        decisions: Vec::new(),
                        duration_ms: 0,
                        error: None,
                    },
                },
                false,
            )),
            Event::MessageDelta { delta, .. } => {
                if let Some(step) = self.step_mut(id)
                    && let Value::String(text) = &mut step.output
                {
                    text.push_str(delta);
                }
            }
            Event::MessageRetracted { .. } => {
                if let Some(step) = self.step_mut(id) {
                    step.output = Value::String(String::new());
                }
            }
            Event::ModelCall(call) => {
                let usage = Usage {
                    input_tokens: call.input_tokens,
                    output_tokens: call.output_tokens,
                    model_calls: 1,
                    tool_calls: 0,
                    estimated: call.estimated,
                };
                if let Some(step) = self.step_mut(id) {
                    step.finish_reason.clone_from(&call.finish_reason);
                    for tool in &call.tools_offered {
                        if !step.tools_offered.contains(tool) {
                            step.tools_offered.push(tool.clone());
                        }
                    }
                }
                self.charge(id, &usage);
            }
            Event::ToolCall {
                id: call,
                name,
                server,
                arguments,
                ..
            } => {
                if let Some(step) = self.step_mut(id) {
                    step.tool_calls.push(ToolCallRecord {
                        id: call.clone(),
                        name: name.clone(),
                        server: server.clone(),
                        arguments: arguments.clone(),
                        result: None,
                        error: None,
                        duration_ms: 0,
                    });
                }
                let usage = Usage {
                    tool_calls: 1,
                    ..Usage::default()
                };
                self.charge(id, &usage);
            }
            Event::ToolResult {
                id: call,
                result,
                error,
                duration_ms,
                ..
            } => {
                if let Some(record) = self.step_mut(id).and_then(|s| {
                    s.tool_calls
                        .iter_mut()
                        .rev()
                        .find(|c| &c.id == call && c.result.is_none() && c.error.is_none())
                }) {
                    record.result.clone_from(result);
                    record.error.clone_from(error);
                    record.duration_ms = *duration_ms;
                }
            }
            Event::AgentDecided { decision, .. } => {
                if let Some(step) = self.step_mut(id) {
                    step.decisions.push(decision.clone());
                }
            }
            Event::AgentFinished(summary) => {
                if let Some((step, ended)) = self.find_mut(id) {
                    step.summary = summary.clone();
                    *ended = true;
                }
            }
            Event::RunFinished(_) => {}
        }
    }

    /// The step `id`, as it stands.
    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps
            .iter()
            .find(|(s, _)| s.step_id == id)
            .map(|(s, _)| s)
    }

    /// The steps that started and have not ended, latest first.
    pub fn open_steps(&self) -> Vec<StepRecord> {
        self.steps
            .iter()
            .rev()
            .filter(|(_, ended)| !ended)
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Every step, in the order they started.
    pub fn records(&self) -> Vec<StepRecord> {
        self.steps.iter().map(|(s, _)| s.clone()).collect()
    }

    fn find_mut(&mut self, id: Option<&str>) -> Option<(&mut StepRecord, &mut bool)> {
        let id = id?;
        self.steps
            .iter_mut()
            .find(|(s, _)| s.step_id == id)
            .map(|(s, e)| (s, e))
    }

    fn step_mut(&mut self, id: Option<&str>) -> Option<&mut StepSummary> {
        self.find_mut(id).map(|(s, _)| &mut s.summary)
    }

    /// Charges `usage` to step `id`, each of its ancestors and the run.
    fn charge(&mut self, id: Option<&str>, usage: &Usage) {
        self.usage.add(usage);
        let mut next = id.map(str::to_owned);
        while let Some(current) = next {
            let Some((step, _)) = self.find_mut(Some(&current)) else {
                break;
            };
            step.summary.usage.add(usage);
            next = step.parent_step_id.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::ModelCall;
    use super::*;

    fn envelope(seq: u64, step: Option<&str>, parent: Option<&str>, event: Event) -> Envelope {
        Envelope {
            run_id: "r".into(),
            seq,
            at: "2026-12-07T00:00:00Z".into(),
            step_id: step.map(Into::into),
            parent_step_id: parent.map(Into::into),
            event,
        }
    }

    #[test]
    fn usage_is_charged_to_the_step_its_ancestors_and_the_run_and_survives_a_round_trip() {
        let started = |agent: &str| Event::AgentStarted {
            agent: agent.into(),
            role: "react".into(),
            model: None,
            branch: None,
        };
        let call = Event::ModelCall(ModelCall {
            agent: "w".into(),
            model: "m".into(),
            provider: "ollama".into(),
            status: "ok".into(),
            finish_reason: Some("stop".into()),
            tools_offered: vec!["echo".into()],
            input_tokens: 10,
            output_tokens: 5,
            estimated: false,
            duration_ms: 1,
        });
        let events = vec![
            envelope(
                0,
                None,
                None,
                Event::RunStarted {
                    workflow: "w".into(),
                },
            ),
            envelope(1, Some("s1"), None, started("p")),
            envelope(2, Some("s2"), Some("s1"), started("w")),
            envelope(
                3,
                Some("s2"),
                Some("s1"),
                Event::MessageDelta {
                    agent: "w".into(),
                    delta: "hi".into(),
                },
            ),
            envelope(4, Some("s2"), Some("s1"), call),
        ];
        let mut state = RunState::default();
        for e in &events {
            let text = serde_json::to_string(e).unwrap();
            let back: Envelope = serde_json::from_str(&text).unwrap();
            assert_eq!(&back, e, "{text}");
            state.apply(&back);
        }
        assert_eq!(state.usage.model_calls, 1);
        assert_eq!(state.step("s1").unwrap().summary.usage.input_tokens, 10);
        assert_eq!(state.step("s2").unwrap().summary.output, "hi");
        assert_eq!(state.step("s2").unwrap().summary.tools_offered, ["echo"]);
        assert_eq!(state.open_steps().len(), 2);
        assert_eq!(state.last_seq, Some(4));
    }
}
