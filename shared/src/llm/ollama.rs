//! Ollama's native `/api/chat`: the request body, and the streamed NDJSON answer (one JSON
//! object a line; tool calls whole, arguments as objects, ids often missing; token counts on
//! the final `done` line; an `{"error": ...}` line when it fails after the answer began).

use std::collections::VecDeque;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::{LlmError, one_line};
use super::event::{Arguments, Event, Finish, FinishReason, ToolCall, Usage};
use super::request::{ChatRequest, Message, ToolChoice};
use super::stream::Decode;

/// The JSON body of a streamed `/api/chat` request.
pub(super) fn body(request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(message).collect();
    let mut obj = Map::new();
    obj.insert("model".into(), request.model.clone().into());
    obj.insert("messages".into(), messages.into());
    obj.insert("stream".into(), true.into());
    // `/api/chat` has no `tool_choice`: `none` offers no tools and a named tool only that one;
    // `required` can't be asked for (the caller sees whether a tool was called).
    let offered = request.tools.iter().filter(|t| match &request.tool_choice {
        Some(ToolChoice::None) => false,
        Some(ToolChoice::Tool(name)) => &t.name == name,
        _ => true,
    });
    let offered: Vec<_> = offered.collect();
    if !offered.is_empty() {
        let tools: Vec<Value> = offered
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        obj.insert("tools".into(), tools.into());
    }
    if let Some(schema) = &request.output_schema {
        obj.insert("format".into(), schema.schema.clone());
    }
    let mut options = Map::new();
    let o = &request.options;
    if let Some(t) = o.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(n) = o.max_output_tokens {
        options.insert("num_predict".into(), json!(n));
    }
    if let Some(s) = o.seed {
        options.insert("seed".into(), json!(s));
    }
    if !options.is_empty() {
        obj.insert("options".into(), options.into());
    }
    if let Some(k) = request.ollama.keep_alive {
        obj.insert("keep_alive".into(), k.to_json());
    }
    if let Some(t) = request.ollama.think {
        obj.insert("think".into(), t.to_json());
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
            let mut v = json!({"role": "assistant", "content": content});
            if !tool_calls.is_empty() {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| {
                        // Ollama takes arguments as an object; invalid text goes back as a
                        // string so that the model still sees what it sent.
                        let arguments = match &c.arguments {
                            Arguments::Json(v) => v.clone(),
                            Arguments::Invalid { raw, .. } => Value::String(raw.clone()),
                        };
                        json!({"id": c.id, "function": {"name": c.name, "arguments": arguments}})
                    })
                    .collect();
                v["tool_calls"] = calls.into();
            }
            v
        }
        Message::Tool {
            call_id,
            name,
            content,
        } => {
            json!({"role": "tool", "content": content, "tool_name": name, "tool_call_id": call_id})
        }
    }
}

/// The message of an HTTP error answer (`{"error": "..."}`), if it has one.
pub(super) fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Some(match v.get("error")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

#[derive(Deserialize)]
struct Line {
    model: Option<String>,
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct LineMessage {
    content: Option<String>,
    thinking: Option<String>,
    tool_calls: Option<Vec<WireCall>>,
}

#[derive(Deserialize)]
struct WireCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// The NDJSON decoder.
#[derive(Debug)]
pub(super) struct Decoder {
    host: String,
    line: usize,
    calls: usize,
    done: bool,
}

impl Decoder {
    pub(super) fn new(host: String) -> Self {
        Self {
            host,
            line: 0,
            calls: 0,
            done: false,
        }
    }
}

impl Decode for Decoder {
    fn line(&mut self, text: &str, out: &mut VecDeque<Event>) -> Result<(), LlmError> {
        self.line += 1;
        if self.done || text.trim().is_empty() {
            return Ok(());
        }
        let line: Line = serde_json::from_str(text).map_err(|e| LlmError::Protocol {
            host: self.host.clone(),
            problem: format!("line {} is not an Ollama chat object: {e}", self.line),
        })?;
        if let Some(error) = line.error {
            let message = match error {
                Value::String(s) => s,
                other => other.to_string(),
            };
            return Err(LlmError::Model {
                host: self.host.clone(),
                message: one_line(&message),
            });
        }
        if let Some(m) = line.message {
            if let Some(t) = m.thinking.filter(|t| !t.is_empty()) {
                out.push_back(Event::Thinking(t));
            }
            if let Some(t) = m.content.filter(|t| !t.is_empty()) {
                out.push_back(Event::Text(t));
            }
            for call in m.tool_calls.unwrap_or_default() {
                self.calls += 1;
                let arguments = match call.function.arguments {
                    // Some builds send the arguments as JSON text, as OpenAI does.
                    Value::String(raw) => Arguments::parse(&raw),
                    Value::Null => Arguments::Json(Value::Object(Map::new())),
                    v => Arguments::Json(v),
                };
                out.push_back(Event::ToolCall(ToolCall {
                    id: call
                        .id
                        .filter(|id| !id.is_empty())
                        .unwrap_or_else(|| format!("call_{}", self.calls)),
                    name: call.function.name,
                    arguments,
                }));
            }
        }
        if line.done {
            self.done = true;
            let reason = match line.done_reason.as_deref() {
                None | Some("stop") if self.calls > 0 => FinishReason::ToolCalls,
                None => FinishReason::Other("unknown".into()),
                Some(r) => FinishReason::from_wire(r),
            };
            out.push_back(Event::Done(Finish {
                reason,
                usage: Usage {
                    input_tokens: line.prompt_eval_count,
                    output_tokens: line.eval_count,
                },
                model: line.model,
            }));
        }
        Ok(())
    }

    fn end(&mut self, _out: &mut VecDeque<Event>) -> Result<(), LlmError> {
        if self.done {
            Ok(())
        } else {
            Err(LlmError::Interrupted {
                host: self.host.clone(),
                problem: Some("no final line with \"done\": true".into()),
            })
        }
    }
}
