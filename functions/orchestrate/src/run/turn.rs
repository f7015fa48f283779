//! One model call of a step, and the structured-output path every role's decisions go
//! through. Every call is taken from the step's meter before it is sent and charged after it
//! ends, however it ends: a call cut off (the caller left, the deadline, a failed sibling
//! branch) or failed mid-answer is charged the tokens streamed so far, counted from the text
//! and marked estimated, since the provider's count never arrived.

use aixrun::llm::{
    CallLimits, ChatRequest, Event as ModelEvent, FinishReason, LlmError, Message, Options,
    OutputSchema, ToolCall, ToolChoice, ToolSpec,
};
use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::time::Instant;

use super::budget::Stop;
use super::event::{Event, ModelCall};
use super::journal::Answered;
use super::recorder::millis;
use super::step::{Step, StepEnd};
use crate::config::ModelService;

/// What one model call produced.
pub(crate) struct Turn {
    /// Its text.
    pub(crate) text: String,
    /// Its tool calls.
    pub(crate) calls: Vec<ToolCall>,
    /// Its journal key (its tool calls' keys are under it).
    pub(crate) key: String,
}

/// Makes one model call for `step`: `messages` with `tools`, constrained to `schema` when
/// given; its text is streamed as `message.delta` when `stream`. An answer cut at a token
/// limit is an error: the budget's when the budget set the limit, else the model's.
pub(crate) async fn model_turn(
    step: &Step<'_>,
    service: &ModelService,
    messages: &[Message],
    tools: &[ToolSpec],
    schema: Option<OutputSchema>,
    stream: bool,
) -> Result<Turn, StepEnd> {
    model_turn_choosing(step, service, messages, tools, None, schema, stream).await
}

/// [`model_turn`] with a `tool_choice` (`None`: the server's default).
pub(crate) async fn model_turn_choosing(
    step: &Step<'_>,
    service: &ModelService,
    messages: &[Message],
    tools: &[ToolSpec],
    tool_choice: Option<ToolChoice>,
    schema: Option<OutputSchema>,
    stream: bool,
) -> Result<Turn, StepEnd> {
    let key = step.next_turn_key();
    step.meter
        .take_model_call()
        .map_err(|stop| StepEnd::Stopped(stop, None))?;
    // A turn an earlier attempt of the run was answered: its answer, not a second call.
    if let Some(answered) = step.run.journal.recall::<Answered>(&key) {
        step.meter
            .add_tokens(answered.input_tokens, answered.output_tokens);
        return Ok(Turn {
            text: answered.text,
            calls: answered.calls.into_iter().map(Into::into).collect(),
            key,
        });
    }
    let cap = step.meter.output_tokens_left();
    let request = ChatRequest {
        model: service.model.clone(),
        messages: messages.to_vec(),
        tools: tools.to_vec(),
        tool_choice,
        output_schema: schema,
        options: Options {
            max_output_tokens: u32::try_from(cap).ok(),
            ..service.options.clone()
        },
        ollama: service.ollama.clone(),
    };
    let limits = CallLimits {
        total: step.meter.remaining(),
        ..CallLimits::default()
    };
    let model = step.run.engine.models.get(service);
    // What the model may call: `none` offers nothing, a named tool only itself.
    let offered = tools
        .iter()
        .filter(|t| match &request.tool_choice {
            Some(ToolChoice::None) => false,
            Some(ToolChoice::Tool(name)) => &t.name == name,
            _ => true,
        })
        .map(|t| t.name.clone())
        .collect();
    let mut charge = Charge {
        step,
        offered,
        model: &service.model,
        provider: model.provider(),
        started: Instant::now(),
        prompt_chars: request.messages.iter().map(message_chars).sum(),
        text_chars: 0,
        ended: false,
        charged: (0, 0),
    };
    let failed = |e: LlmError| {
        if step.meter.remaining().is_zero() {
            StepEnd::Stopped(step.meter.out_of_time(), None)
        } else {
            StepEnd::Failed(e.to_string())
        }
    };
    let mut answer = match model.chat(&request, &limits).await {
        Ok(answer) => answer,
        Err(e) => {
            charge.end(e.error_type(), None, None);
            return Err(failed(e));
        }
    };
    let mut turn = Turn {
        text: String::new(),
        calls: Vec::new(),
        key,
    };
    while let Some(event) = answer.next().await {
        match event {
            Ok(ModelEvent::Text(delta)) => {
                charge.text_chars += delta.len();
                turn.text.push_str(&delta);
                if stream {
                    step.record(Event::MessageDelta {
                        agent: step.agent.name.clone(),
                        delta,
                    });
                }
            }
            Ok(ModelEvent::Thinking(delta)) => charge.text_chars += delta.len(),
            Ok(ModelEvent::ToolCall(call)) => {
                charge.text_chars += call.name.len() + call.arguments.to_text().len();
                turn.calls.push(call);
            }
            Ok(ModelEvent::Done(finish)) => {
                let reported = match (finish.usage.input_tokens, finish.usage.output_tokens) {
                    (Some(input), Some(output)) => Some((input, output)),
                    _ => None,
                };
                charge.end("ok", Some(finish.reason.as_str().to_owned()), reported);
                if let Some(stop) = step.meter.over_tokens() {
                    return Err(StepEnd::Stopped(stop, None));
                }
                if finish.reason == FinishReason::Length {
                    return Err(cut(step, cap));
                }
                if step.run.journal.is_durable() {
                    let (input_tokens, output_tokens) = charge.charged;
                    let answered = Answered {
                        text: turn.text.clone(),
                        calls: turn.calls.iter().map(Into::into).collect(),
                        input_tokens,
                        output_tokens,
                    };
                    let recorder = step.run.recorder;
                    if let Err(e) = step
                        .run
                        .journal
                        .save(recorder, turn.key.clone(), &answered)
                        .await
                    {
                        return Err(StepEnd::Failed(format!("the run store failed: {e}")));
                    }
                }
                return Ok(turn);
            }
            Err(e) => {
                charge.end(e.error_type(), None, None);
                return Err(failed(e));
            }
        }
    }
    charge.end("incomplete", None, None);
    Err(StepEnd::Failed(
        "the model's answer ended without a final event".to_owned(),
    ))
}

/// The error for an answer cut at a token limit.
fn cut(step: &Step<'_>, cap: u64) -> StepEnd {
    if step.meter.output_tokens_left() == 0 {
        let stop = step.meter.take_model_call().err().unwrap_or_else(|| {
            Stop::budget(format!("the answer reached the {cap} output tokens left"))
        });
        return StepEnd::Stopped(stop, None);
    }
    StepEnd::Failed(
        "the model's answer was cut at its token limit (finish_reason: length)".to_owned(),
    )
}

/// Charges one model call when it ends, or, if it never does (dropped), when the turn is.
struct Charge<'a> {
    step: &'a Step<'a>,
    offered: Vec<String>,
    model: &'a str,
    provider: &'static str,
    started: Instant,
    prompt_chars: usize,
    text_chars: usize,
    ended: bool,
    /// The tokens charged, once ended.
    charged: (u64, u64),
}

impl Charge<'_> {
    /// Charges the call: the provider's counts when `reported`, else counted from the text.
    fn end(&mut self, status: &str, finish_reason: Option<String>, reported: Option<(u64, u64)>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let (input, output, estimated) = match reported {
            Some((input, output)) => (input, output, false),
            None => (tokens(self.prompt_chars), tokens(self.text_chars), true),
        };
        self.step.meter.add_tokens(input, output);
        self.charged = (input, output);
        self.step.record(Event::ModelCall(ModelCall {
            agent: self.step.agent.name.clone(),
            model: self.model.to_owned(),
            provider: self.provider.to_owned(),
            status: status.to_owned(),
            finish_reason,
            tools_offered: std::mem::take(&mut self.offered),
            input_tokens: input,
            output_tokens: output,
            estimated,
            duration_ms: millis(self.started.elapsed()),
        }));
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.end("cancelled", None, None);
    }
}

/// About four characters a token (OpenAI's rule of thumb), at least one for any text.
fn tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

fn message_chars(m: &Message) -> usize {
    match m {
        Message::System(t) | Message::User(t) => t.len(),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            content.len()
                + tool_calls
                    .iter()
                    .map(|c| c.name.len() + c.arguments.to_text().len())
                    .sum::<usize>()
        }
        Message::Tool { content, .. } => content.len(),
    }
}

/// Asks `step`'s model for an answer matching `schema` (named `name`), with one retry that
/// quotes the problem; a retried answer that was streamed is retracted first.
pub(crate) async fn structured(
    step: &Step<'_>,
    service: &ModelService,
    mut messages: Vec<Message>,
    name: &str,
    schema: &Value,
    stream: bool,
) -> Result<Value, StepEnd> {
    let output_schema = OutputSchema {
        name: sanitize(name),
        schema: schema.clone(),
    };
    let mut retried = false;
    loop {
        let turn = model_turn(
            step,
            service,
            &messages,
            &[],
            Some(output_schema.clone()),
            stream,
        )
        .await?;
        match check(schema, &turn.text) {
            Ok(value) => return Ok(value),
            Err(problem) if !retried => {
                retried = true;
                retry(step, &mut messages, turn.text, &problem, stream);
            }
            Err(problem) => {
                return Err(StepEnd::Failed(format!(
                    "the answer does not match its JSON Schema after one retry: {problem}"
                )));
            }
        }
    }
}

/// Takes back a streamed answer that did not match its schema and asks again.
pub(crate) fn retry(
    step: &Step<'_>,
    messages: &mut Vec<Message>,
    answer: String,
    problem: &str,
    streamed: bool,
) {
    if streamed {
        step.record(Event::MessageRetracted {
            agent: step.agent.name.clone(),
            reason: format!("the answer does not match its JSON Schema: {problem}"),
        });
    }
    messages.push(Message::Assistant {
        content: answer,
        tool_calls: Vec::new(),
    });
    messages.push(Message::User(format!(
        "Your answer does not match the required JSON Schema: {problem}. \
         Answer again with JSON that matches it."
    )));
}

/// Parses and validates a structured answer; the problem, when it does not match.
pub(crate) fn check(schema: &Value, text: &str) -> Result<Value, String> {
    let value: Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let schema = aixrun::schema::Schema::compile(schema)?;
    schema.validate(&value).map_err(|e| e.to_string())?;
    Ok(value)
}

/// A name valid for OpenAI's `json_schema.name` (letters, digits, `_`, `-`).
pub(crate) fn sanitize(name: &str) -> String {
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
