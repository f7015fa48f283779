//! The `react` agent: the model sees the agent's tools, calls them, reads their results (or
//! their errors, as tool messages it can act on) and answers. Several calls in one turn run at
//! once, bounded per run, and their results go back in the model's order. A tool call the model
//! gets wrong is a tool error for the model, never a failed run. With an `output_schema` the
//! answer is requested as structured output, validated, and retried once with the error (the
//! streamed first answer retracted).

use aixrun::llm::{Arguments, Message, OutputSchema, ToolCall, ToolChoice, ToolSpec};
use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::config::Agent;
use crate::run::budget::Stop;
use crate::run::event::Event;
use crate::run::journal::{self, Replied, Verdict};
use crate::run::recorder::millis;
use crate::run::state::PendingApproval;
use crate::run::step::{Step, StepEnd};
use crate::run::tools::{AgentTool, BoxFuture, ToolReply};
use crate::run::turn::{self, model_turn_choosing};

/// Runs `agent`'s loop as `step` on the user message `task`, after `agent`'s prompt.
pub(crate) async fn run(step: &Step<'_>, agent: &Agent, task: String) -> StepEnd {
    let Some(service) = &agent.model else {
        return StepEnd::Failed(format!("agent {} has no model", agent.name));
    };
    let engine = step.run.engine;
    let tools = match engine.tools.list(agent).await {
        Ok(tools) => tools,
        Err(e) => return StepEnd::Failed(format!("listing the tools of {}: {e}", agent.name)),
    };
    let specs: Vec<ToolSpec> = tools
        .iter()
        .map(|t| ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: t.parameters.clone(),
        })
        .collect();
    let mut messages = Vec::new();
    if let Some(prompt) = &agent.prompt {
        messages.push(Message::System(prompt.clone()));
    }
    // The session's earlier turns come before this one's task.
    messages.extend(step.run.history.iter().cloned());
    messages.push(Message::User(task));
    let output_schema = agent.output_schema.as_ref().map(|schema| OutputSchema {
        name: format!("{}_answer", turn::sanitize(&agent.name)),
        schema: schema.clone(),
    });
    if let Some(ToolChoice::Tool(name)) = &agent.tool_choice
        && !specs.iter().any(|t| &t.name == name)
    {
        let names: Vec<&str> = specs.iter().map(|t| t.name.as_str()).collect();
        return StepEnd::Failed(format!(
            "tool_choice names {name:?}, which none of the agent's MCP servers offers (they offer: {})",
            if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            }
        ));
    }
    // `required` or a named tool holds until the model calls one, then the model decides, as
    // OpenAI's Agents SDK does (else every turn would have to call a tool, for ever).
    let mut tool_choice = agent.tool_choice.clone();
    let mut schema_retried = false;
    for _ in 0..agent.max_iterations {
        let turn = match model_turn_choosing(
            step,
            service,
            &messages,
            &specs,
            tool_choice.clone(),
            output_schema.clone(),
            true,
        )
        .await
        {
            Ok(turn) => turn,
            Err(end) => return end,
        };
        let must_call = matches!(
            tool_choice,
            Some(ToolChoice::Required | ToolChoice::Tool(_))
        );
        if turn.calls.is_empty() && must_call {
            // Servers that can't enforce it (Ollama's native API, some llama.cpp builds) let
            // the model answer anyway: that answer is not what was configured.
            return StepEnd::Failed(format!(
                "tool_choice is {}, but the model answered without calling a tool (its server \
                 does not enforce tool_choice)",
                tool_choice.as_ref().map_or("", ToolChoice::as_str)
            ));
        }
        if must_call {
            tool_choice = None;
        }
        if turn.calls.is_empty() {
            let Some(schema) = &agent.output_schema else {
                return StepEnd::done(Value::String(turn.text));
            };
            match turn::check(schema, &turn.text) {
                Ok(value) => return StepEnd::done(value),
                Err(problem) if !schema_retried => {
                    schema_retried = true;
                    turn::retry(step, &mut messages, turn.text, &problem, true);
                    continue;
                }
                Err(problem) => {
                    return StepEnd::Failed(format!(
                        "the answer does not match output_schema after one retry: {problem}"
                    ));
                }
            }
        }
        messages.push(Message::Assistant {
            content: turn.text,
            tool_calls: turn.calls.clone(),
        });
        let replies = match run_calls(step, &tools, &turn.calls, &turn.key).await {
            Ok(replies) => replies,
            Err(end) => return end,
        };
        for (call, reply) in turn.calls.iter().zip(replies) {
            messages.push(Message::Tool {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content: reply.text,
            });
        }
    }
    StepEnd::Stopped(
        Stop::Budget {
            what: format!(
                "max_iterations ({}) reached without a final answer",
                agent.max_iterations
            ),
            agent: Some(agent.name.clone()),
        },
        None,
    )
}

/// Runs one turn's tool calls, at most `tool_concurrency` at once, results in the model's
/// order. A budget or deadline stop ends the turn (in-flight calls are dropped: cancelled).
async fn run_calls(
    step: &Step<'_>,
    tools: &[AgentTool],
    calls: &[ToolCall],
    turn_key: &str,
) -> Result<Vec<ToolReply>, StepEnd> {
    gate(step, tools, calls, turn_key)?;
    for _ in calls {
        step.meter
            .take_tool_call()
            .map_err(|stop| StepEnd::Stopped(stop, None))?;
    }
    // Boxed and collected first: a lazy `map` closure here makes the run's future fail the
    // `Send` check (a known higher-ranked lifetime limitation).
    let mut futures: Vec<BoxFuture<'_, Result<ToolReply, String>>> =
        Vec::with_capacity(calls.len());
    for (i, call) in calls.iter().enumerate() {
        let key = journal::call_key(turn_key, i);
        futures.push(Box::pin(one_call(step, tools, call, key)));
    }
    let concurrency = step.run.engine.orchestration.defaults.tool_concurrency;
    // `buffered` yields in the model's order whatever order the calls finish in.
    let done: Vec<Result<ToolReply, String>> = futures_util::stream::iter(futures)
        .buffered(concurrency.max(1))
        .collect()
        .await;
    done.into_iter()
        .map(|r| r.map_err(|e| StepEnd::Failed(format!("the run store failed: {e}"))))
        .collect()
}

/// Pauses the run when the agent's `approval` gates one of this turn's calls and nobody has
/// said yes or no to it yet; none of the turn's calls is made before. Only a durable run can
/// wait: any other fails the step saying how to make one.
fn gate(
    step: &Step<'_>,
    tools: &[AgentTool],
    calls: &[ToolCall],
    turn_key: &str,
) -> Result<(), StepEnd> {
    let Some(approval) = &step.agent.approval else {
        return Ok(());
    };
    let journal = step.run.journal;
    let pending: Vec<PendingApproval> = calls
        .iter()
        .enumerate()
        .filter_map(|(i, call)| {
            let key = journal::call_key(turn_key, i);
            let tool = tools.iter().find(|t| t.name == call.name)?;
            let waits = approval.gates(&tool.name, tool.annotations.as_ref())
                && journal
                    .recall::<Verdict>(&journal::verdict_key(&key))
                    .is_none()
                && journal.recall::<Replied>(&key).is_none();
            waits.then(|| PendingApproval {
                approval_id: key,
                step_id: step.place.id.clone(),
                agent: step.agent.name.clone(),
                tool: call.name.clone(),
                call_id: call.id.clone(),
                arguments: match &call.arguments {
                    Arguments::Json(v) => v.clone(),
                    Arguments::Invalid { raw, .. } => Value::String(raw.clone()),
                },
            })
        })
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    if !journal.is_durable() {
        let tools: Vec<&str> = pending.iter().map(|p| p.tool.as_str()).collect();
        return Err(StepEnd::Failed(format!(
            "{} needs a person's approval, and only a durable run can wait for it: POST              /v1/runs, or /v1/run with a session_id or \"on_disconnect\": \"continue\"",
            tools.join(", ")
        )));
    }
    Err(StepEnd::Stopped(Stop::Paused(pending), None))
}

async fn one_call(
    step: &Step<'_>,
    tools: &[AgentTool],
    call: &ToolCall,
    key: String,
) -> Result<ToolReply, String> {
    // A call an earlier attempt of the run completed is not made again: its reply stands.
    if let Some(replied) = step.run.journal.recall::<Replied>(&key) {
        return Ok(replied.into());
    }
    let started = Instant::now();
    let agent = &step.agent.name;
    let arguments = match &call.arguments {
        Arguments::Json(v) => v.clone(),
        Arguments::Invalid { raw, .. } => Value::String(raw.clone()),
    };
    let tool = tools.iter().find(|t| t.name == call.name);
    step.record(Event::ToolCall {
        agent: agent.clone(),
        id: call.id.clone(),
        name: call.name.clone(),
        server: tool.map(|t| t.server.clone()),
        arguments,
    });
    let verdict = step
        .run
        .journal
        .recall::<Verdict>(&journal::verdict_key(&key));
    let reply = match (tool, &call.arguments) {
        (Some(_), _) if verdict.as_ref().is_some_and(|v| !v.approved) => {
            let said = verdict
                .and_then(|v| v.message)
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            ToolReply::error(format!("a reviewer denied this call{said}"))
        }
        (None, _) => ToolReply::error(format!(
            "unknown tool {:?}; the tools are: {}",
            call.name,
            tools
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (Some(_), Arguments::Invalid { error, .. }) => {
            ToolReply::error(format!("the arguments are not valid JSON ({error})"))
        }
        (Some(_), Arguments::Json(v)) if !v.is_object() => {
            ToolReply::error("the arguments must be a JSON object")
        }
        (Some(tool), Arguments::Json(v)) => {
            let args = v.as_object().cloned().unwrap_or_default();
            let left = step.meter.remaining();
            let timeout = tool.timeout.min(left);
            let span = aixrun::telemetry::spans::execute_tool(&call.name, &call.id, "function");
            // The step's turn and the call's place in it, not the model's call id: servers
            // that give no ids number each turn's calls from the start, so ids repeat. The
            // same on every attempt at the run (the journal's key, `m{turn}/t{i}`).
            let place = key.rsplit_once('@').map_or(key.as_str(), |(_, p)| p);
            let idempotency_key =
                format!("{}/{}/{place}", step.run.recorder.run_id(), step.place.id);
            let mut reply = step
                .run
                .engine
                .tools
                .call(tool, args, timeout, &idempotency_key)
                .instrument(span.clone())
                .await;
            // A call bounded by the run's time can time out a moment before the run's own
            // deadline fires: it was cut off by the deadline, and says so.
            if reply.is_error && left < tool.timeout && step.meter.remaining().is_zero() {
                reply =
                    ToolReply::error(format!("cancelled: {}", step.meter.out_of_time().message()));
            }
            if reply.is_error {
                aixrun::telemetry::spans::record_error(&span, "tool_error");
            }
            reply
        }
    };
    step.record(Event::ToolResult {
        agent: agent.clone(),
        id: call.id.clone(),
        name: call.name.clone(),
        result: (!reply.is_error).then(|| reply.text.clone()),
        error: reply.is_error.then(|| reply.text.clone()),
        duration_ms: millis(started.elapsed()),
    });
    // Saved before the model reads it: a resumed run never makes this call again.
    if step.run.journal.is_durable() {
        let recorder = step.run.recorder;
        step.run
            .journal
            .save(recorder, key, &Replied::from(&reply))
            .await?;
    }
    Ok(reply)
}
