//! OpenAI-compatible chat completions (OpenAI, xAI, Hugging Face's router, vLLM, llama.cpp's
//! server, Ollama's `/v1`): the request body, and the server-sent events of a streamed answer
//! (`data: {chunk}` lines ending `data: [DONE]`, tool calls in fragments merged by `index`,
//! the usage in an extra chunk with `choices: []`, errors as a `data:` payload with `error`).

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::{LlmError, one_line};
use super::event::{Arguments, Event, Finish, FinishReason, ToolCall, Usage};
use super::request::{ChatRequest, Message, ToolChoice};
use super::stream::Decode;

/// Which field carries the output token limit. OpenAI's own API reads
/// `max_completion_tokens` and refuses `max_tokens` for its reasoning models; other servers
/// differ (Ollama's `/v1` and older llama.cpp builds read only `max_tokens`, vLLM either), so
/// they get both with the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MaxTokens {
    CompletionOnly,
    Both,
}

/// The JSON body of a streamed chat completion.
pub(super) fn body(request: &ChatRequest, max_tokens: MaxTokens) -> Value {
    let mut obj = Map::new();
    obj.insert("model".into(), request.model.clone().into());
    let messages: Vec<Value> = request.messages.iter().map(message).collect();
    obj.insert("messages".into(), messages.into());
    obj.insert("stream".into(), true.into());
    obj.insert("stream_options".into(), json!({"include_usage": true}));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        obj.insert("tools".into(), tools.into());
        let choice = match &request.tool_choice {
            None => None,
            Some(ToolChoice::Tool(name)) => {
                Some(json!({"type": "function", "function": {"name": name}}))
            }
            Some(choice) => Some(Value::from(choice.as_str())),
        };
        if let Some(choice) = choice {
            obj.insert("tool_choice".into(), choice);
        }
    }
    if let Some(schema) = &request.output_schema {
        obj.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {
                "name": schema.name, "schema": schema.schema, "strict": true}}),
        );
    }
    let o = &request.options;
    if let Some(n) = o.max_output_tokens {
        obj.insert("max_completion_tokens".into(), n.into());
        if max_tokens == MaxTokens::Both {
            obj.insert("max_tokens".into(), n.into());
        }
    }
    if let Some(t) = o.temperature {
        obj.insert("temperature".into(), json!(t));
    }
    if let Some(s) = o.seed {
        obj.insert("seed".into(), s.into());
    }
    obj.into()
}

fn message(m: &Message) -> Value {
    match m {
        Message::System(text) => json!({"role": "system", "content": text}),
        Message::User(text) => json!({"role": "user", "content": text}),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            if tool_calls.is_empty() {
                return json!({"role": "assistant", "content": content});
            }
            let calls: Vec<Value> = tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments.to_text()}})
                })
                .collect();
            // With tool calls and no text, OpenAI wants `content: null`, not "".
            let content = if content.is_empty() {
                Value::Null
            } else {
                content.clone().into()
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Message::Tool {
            call_id, content, ..
        } => json!({"role": "tool", "tool_call_id": call_id, "content": content}),
    }
}

/// The message of an error body: `{"error": {"message": ...}}`, `{"error": "..."}` or
/// `{"message": ...}`, with its `type` or `code` when given.
pub(super) fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    error_text(v.get("error").unwrap_or(&v))
}

fn error_text(error: &Value) -> Option<String> {
    match error {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => {
            let message = o.get("message")?.as_str()?.to_owned();
            let kind = o
                .get("code")
                .filter(|c| !c.is_null())
                .or_else(|| o.get("type"))
                .map(|k| k.as_str().map_or_else(|| k.to_string(), str::to_owned));
            Some(match kind {
                Some(k) if !k.is_empty() => format!("{message} ({k})"),
                _ => message,
            })
        }
        _ => None,
    }
}

#[derive(Deserialize)]
struct Chunk {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    /// vLLM's, llama.cpp's and DeepSeek's name for the model's thinking.
    reasoning_content: Option<String>,
    tool_calls: Option<Vec<ToolDelta>>,
}

#[derive(Deserialize)]
struct ToolDelta {
    index: Option<u32>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

#[derive(Debug, Default)]
struct Partial {
    id: Option<String>,
    name: String,
    arguments: String,
}

/// The server-sent-events decoder.
#[derive(Debug)]
pub(super) struct Decoder {
    host: String,
    line: usize,
    calls: BTreeMap<u32, Partial>,
    emitted: usize,
    reason: Option<FinishReason>,
    usage: Usage,
    model: Option<String>,
    done: bool,
}

impl Decoder {
    pub(super) fn new(host: String) -> Self {
        Self {
            host,
            line: 0,
            calls: BTreeMap::new(),
            emitted: 0,
            reason: None,
            usage: Usage::default(),
            model: None,
            done: false,
        }
    }

    fn chunk(&mut self, payload: &str, out: &mut VecDeque<Event>) -> Result<(), LlmError> {
        let chunk: Chunk = serde_json::from_str(payload).map_err(|e| LlmError::Protocol {
            host: self.host.clone(),
            problem: format!("line {} is not a chat completion chunk: {e}", self.line),
        })?;
        if let Some(error) = chunk.error {
            return Err(self.mid_stream(&error));
        }
        if chunk.model.is_some() {
            self.model = chunk.model;
        }
        if let Some(u) = chunk.usage {
            self.usage = Usage {
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
            };
        }
        // Only the first choice is read: requests never ask for more (`n` is not sent).
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(());
        };
        if let Some(delta) = choice.delta {
            if let Some(t) = delta.reasoning_content.filter(|t| !t.is_empty()) {
                out.push_back(Event::Thinking(t));
            }
            if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
                out.push_back(Event::Text(t));
            }
            for fragment in delta.tool_calls.unwrap_or_default() {
                // A server that sends each call whole may leave out `index`: each is a new call.
                let index = fragment
                    .index
                    .unwrap_or_else(|| self.calls.keys().next_back().map_or(0, |last| last + 1));
                let partial = self.calls.entry(index).or_default();
                if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
                    partial.id = Some(id);
                }
                if let Some(f) = fragment.function {
                    if let Some(name) = f.name {
                        partial.name.push_str(&name);
                    }
                    if let Some(args) = f.arguments {
                        partial.arguments.push_str(&args);
                    }
                }
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.flush_calls(out);
            self.reason = Some(FinishReason::from_wire(&reason));
        }
        Ok(())
    }

    /// The assembled tool calls, in index order, once the choice has finished.
    fn flush_calls(&mut self, out: &mut VecDeque<Event>) {
        for (_, call) in std::mem::take(&mut self.calls) {
            self.emitted += 1;
            out.push_back(Event::ToolCall(ToolCall {
                id: call.id.unwrap_or_else(|| format!("call_{}", self.emitted)),
                name: call.name,
                arguments: Arguments::parse(&call.arguments),
            }));
        }
    }

    fn finish(&mut self, out: &mut VecDeque<Event>) {
        self.done = true;
        self.flush_calls(out);
        let reason = match self.reason.take() {
            // Some servers say `stop` after tool calls.
            Some(FinishReason::Stop) | None if self.emitted > 0 => FinishReason::ToolCalls,
            Some(r) => r,
            None => FinishReason::Other("unknown".into()),
        };
        out.push_back(Event::Done(Finish {
            reason,
            usage: self.usage,
            model: self.model.take(),
        }));
    }

    fn mid_stream(&self, error: &Value) -> LlmError {
        LlmError::Model {
            host: self.host.clone(),
            message: one_line(&error_text(error).unwrap_or_else(|| error.to_string())),
        }
    }
}

impl Decode for Decoder {
    fn line(&mut self, text: &str, out: &mut VecDeque<Event>) -> Result<(), LlmError> {
        self.line += 1;
        if self.done {
            return Ok(());
        }
        // Server-sent events: a field is `name: value` (one optional space); lines starting
        // with `:` are comments (keep-alive pings); other fields and lines without a colon are
        // ignored, as the SSE spec says. Old llama.cpp builds send a bare `error: {...}` line.
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => return Ok(()),
        };
        match field {
            "data" if value.trim() == "[DONE]" => {
                self.finish(out);
                Ok(())
            }
            "data" if value.trim().is_empty() => Ok(()),
            "data" => self.chunk(value, out),
            "error" => {
                let error = serde_json::from_str(value).unwrap_or(Value::String(value.into()));
                Err(self.mid_stream(&error))
            }
            _ => Ok(()),
        }
    }

    fn end(&mut self, out: &mut VecDeque<Event>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        // A finished choice whose `[DONE]` never came is still a whole answer (only the usage
        // chunk may be missing); anything less is not.
        if self.reason.is_some() {
            self.finish(out);
            return Ok(());
        }
        Err(LlmError::Interrupted {
            host: self.host.clone(),
            problem: Some("no finish_reason and no [DONE]".into()),
        })
    }
}
