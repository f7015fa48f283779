//! The `react` agent: the model sees the agent's tools, calls them, reads their results (or
//! their errors, as tool messages it can act on) and answers. Several calls in one turn run at
//! once, bounded per run, and their results go back in the model's order. A tool call the model
//! gets wrong is a tool error for the model, never a failed run. With an `output_schema` the
//! answer is requested as structured output, validated, and retried once with the error.

use std::time::Duration;

use aixrun::llm::{
    Arguments, CallLimits, ChatRequest, Event, Message, Options, OutputSchema, ToolCall, ToolSpec,
};
use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::budget::Stop;
use super::report::{RunEvent, ToolCallRecord};
use super::tools::{AgentTool, BoxFuture, ToolReply};
use super::{StepContext, StepEnd};
use crate::config::Agent;

/// Runs one react step on `input`, recording what it does into `ctx.progress`.
pub(super) async fn run(ctx: &StepContext<'_>, agent: &Agent, input: &Value) -> StepEnd {
    let Some(service) = &agent.model else {
        return StepEnd::Failed(format!("agent {} has no model", agent.name));
    };
    let tools = match ctx.tools.list(agent).await {
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
    messages.push(Message::User(as_text(input)));
    let output_schema = agent.output_schema.as_ref().map(|schema| OutputSchema {
        name: format!("{}_answer", sanitize(&agent.name)),
        schema: schema.clone(),
    });
    let mut schema_retried = false;
    for _ in 0..agent.max_iterations {
        if let Err(stop) = ctx.meter.take_model_call() {
            return StepEnd::Stopped(stop);
        }
        ctx.progress.model_call_started(&agent.name);
        let request = ChatRequest {
            model: service.model.clone(),
            messages: messages.clone(),
            tools: specs.clone(),
            output_schema: output_schema.clone(),
            options: Options {
                max_output_tokens: u32::try_from(ctx.meter.output_tokens_left()).ok(),
                ..service.options.clone()
            },
            ollama: service.ollama.clone(),
        };
        let limits = CallLimits {
            total: ctx.meter.remaining(),
            ..CallLimits::default()
        };
        let turn = match model_turn(ctx, agent, &service.endpoint, &request, &limits).await {
            Ok(turn) => turn,
            Err(end) => return end,
        };
        if let Some(stop) = ctx.meter.over_tokens() {
            return StepEnd::Stopped(stop);
        }
        if turn.calls.is_empty() {
            let Some(schema) = &agent.output_schema else {
                return StepEnd::Done(Value::String(turn.text));
            };
            match check_structured(schema, &turn.text) {
                Ok(value) => return StepEnd::Done(value),
                Err(problem) if !schema_retried => {
                    schema_retried = true;
                    ctx.progress.reset_text(&agent.name);
                    messages.push(Message::Assistant {
                        content: turn.text,
                        tool_calls: Vec::new(),
                    });
                    messages.push(Message::User(format!(
                        "Your answer does not match the required JSON Schema: {problem}. \
                         Answer again with JSON that matches it."
                    )));
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
        let replies = match run_calls(ctx, agent, &tools, &turn.calls).await {
            Ok(replies) => replies,
            Err(stop) => return StepEnd::Stopped(stop),
        };
        for (call, reply) in turn.calls.iter().zip(replies) {
            messages.push(Message::Tool {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content: reply.text,
            });
        }
    }
    StepEnd::Stopped(Stop::Budget(format!(
        "max_iterations ({}) reached without a final answer",
        agent.max_iterations
    )))
}

/// What one model turn produced.
struct Turn {
    text: String,
    calls: Vec<ToolCall>,
}

async fn model_turn(
    ctx: &StepContext<'_>,
    agent: &Agent,
    endpoint: &aixrun::llm::Endpoint,
    request: &ChatRequest,
    limits: &CallLimits,
) -> Result<Turn, StepEnd> {
    let started = Instant::now();
    // A call cut short by the run's own deadline is the deadline, not a model failure.
    let failed = |e: aixrun::llm::LlmError| {
        if ctx.meter.remaining().is_zero() {
            StepEnd::Stopped(Stop::Deadline)
        } else {
            StepEnd::Failed(e.to_string())
        }
    };
    let mut stream = endpoint.chat(request, limits).await.map_err(failed)?;
    let mut turn = Turn {
        text: String::new(),
        calls: Vec::new(),
    };
    let model = request.model.as_str();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Text(delta)) => {
                turn.text.push_str(&delta);
                ctx.progress.push_text(&agent.name, &delta);
                ctx.emit(RunEvent::MessageDelta {
                    agent: agent.name.clone(),
                    delta,
                })
                .await;
            }
            Ok(Event::Thinking(_)) => {}
            Ok(Event::ToolCall(call)) => turn.calls.push(call),
            Ok(Event::Done(finish)) => {
                let input = finish.usage.input_tokens.unwrap_or(0);
                let output = finish.usage.output_tokens.unwrap_or(0);
                ctx.meter.add_tokens(input, output);
                ctx.progress.model_call(
                    &agent.name,
                    finish.model.as_deref().unwrap_or(model),
                    input,
                    output,
                );
                ctx.metrics.model_call(
                    endpoint.provider().otel_name(),
                    model,
                    "ok",
                    input,
                    output,
                    started.elapsed(),
                );
                return Ok(turn);
            }
            Err(e) => {
                ctx.metrics.model_call(
                    endpoint.provider().otel_name(),
                    model,
                    e.error_type(),
                    0,
                    0,
                    started.elapsed(),
                );
                return Err(failed(e));
            }
        }
    }
    Err(StepEnd::Failed(format!(
        "the model stream from {} ended without a final event",
        stream.host()
    )))
}

/// Runs one turn's tool calls, at most `tool_concurrency` at once, results in the model's
/// order. A budget or deadline stop ends the turn (in-flight calls are dropped: cancelled).
async fn run_calls(
    ctx: &StepContext<'_>,
    agent: &Agent,
    tools: &[AgentTool],
    calls: &[ToolCall],
) -> Result<Vec<ToolReply>, Stop> {
    for _ in calls {
        ctx.meter.take_tool_call()?;
    }
    // Boxed and collected first: a lazy `map` closure here makes the run's future fail the
    // `Send` check (a known higher-ranked lifetime limitation).
    let mut futures: Vec<BoxFuture<'_, ToolReply>> = Vec::with_capacity(calls.len());
    for call in calls {
        futures.push(Box::pin(one_call(ctx, agent, tools, call)));
    }
    // `buffered` yields in the model's order whatever order the calls finish in.
    let done: Vec<ToolReply> = futures_util::stream::iter(futures)
        .buffered(ctx.tool_concurrency.max(1))
        .collect()
        .await;
    Ok(done)
}

async fn one_call(
    ctx: &StepContext<'_>,
    agent: &Agent,
    tools: &[AgentTool],
    call: &ToolCall,
) -> ToolReply {
    let started = Instant::now();
    let arguments = match &call.arguments {
        Arguments::Json(v) => v.clone(),
        Arguments::Invalid { raw, .. } => Value::String(raw.clone()),
    };
    ctx.emit(RunEvent::ToolCall {
        agent: agent.name.clone(),
        id: call.id.clone(),
        name: call.name.clone(),
        arguments: arguments.clone(),
    })
    .await;
    let at = ctx.progress.tool_started(ToolCallRecord {
        id: call.id.clone(),
        name: call.name.clone(),
        arguments: arguments.clone(),
        result: None,
        error: None,
        duration_ms: 0,
    });
    let reply = match (tools.iter().find(|t| t.name == call.name), &call.arguments) {
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
            let left = ctx.meter.remaining();
            let timeout = tool.timeout.min(left);
            let span = aixrun::telemetry::spans::execute_tool(&call.name, &call.id, "function");
            let mut reply = ctx
                .tools
                .call(tool, args, timeout)
                .instrument(span.clone())
                .await;
            // A call bounded by the run's time can time out a moment before the run's own
            // deadline fires: it was cut off by the deadline, and says so.
            if reply.is_error && left < tool.timeout && ctx.meter.remaining().is_zero() {
                reply = ToolReply::error(format!("cancelled: {}", Stop::Deadline.message()));
            }
            if reply.is_error {
                aixrun::telemetry::spans::record_error(&span, "tool_error");
            }
            reply
        }
    };
    let duration = started.elapsed();
    let server = tools
        .iter()
        .find(|t| t.name == call.name)
        .map_or("unknown", |t| t.server.as_str());
    ctx.metrics.tool_call(
        server,
        &call.name,
        if reply.is_error { "error" } else { "success" },
    );
    let record = ToolCallRecord {
        id: call.id.clone(),
        name: call.name.clone(),
        arguments,
        result: (!reply.is_error).then(|| reply.text.clone()),
        error: reply.is_error.then(|| reply.text.clone()),
        duration_ms: millis(duration),
    };
    ctx.emit(RunEvent::ToolResult {
        agent: agent.name.clone(),
        id: record.id.clone(),
        name: record.name.clone(),
        result: record.result.clone(),
        error: record.error.clone(),
        duration_ms: record.duration_ms,
    })
    .await;
    ctx.progress.tool_finished(at, record);
    reply
}

/// Parses and validates a structured answer; the problem, when it does not match.
fn check_structured(schema: &Value, text: &str) -> Result<Value, String> {
    let value: Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let schema = aixrun::schema::Schema::compile(schema)?;
    schema.validate(&value).map_err(|e| e.to_string())?;
    Ok(value)
}

/// The input as the user message: text as is, anything else as JSON.
fn as_text(input: &Value) -> String {
    match input {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A name valid for OpenAI's `json_schema.name` (letters, digits, `_`, `-`).
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a logger step does: records its input and passes it on.
pub(super) fn log(agent: &Agent, input: &Value, run_id: &str, payloads: bool) -> Value {
    if payloads {
        tracing::info!(run_id, agent = agent.name, input = %input, "logger");
    } else {
        tracing::info!(run_id, agent = agent.name, "logger");
    }
    input.clone()
}
