//! What a model stream yields: text and thinking deltas, whole tool calls, and one final event
//! with the finish reason, the token usage and the model that answered.

use serde_json::Value;

/// One event of a [`super::ChatStream`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// More of the answer's text.
    Text(String),
    /// More of the model's thinking (Ollama with `think`).
    Thinking(String),
    /// A complete tool call.
    ToolCall(ToolCall),
    /// The answer is complete: always the last event of a stream that did not fail.
    Done(Finish),
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The server's id for it, or `call_<n>` (n from 1 in the order of the answer) when the
    /// server sent none.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// Its arguments.
    pub arguments: Arguments,
}

/// A tool call's arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Arguments {
    /// Valid JSON (normally an object).
    Json(Value),
    /// The model sent text that is not JSON: kept so that the caller can tell the model what
    /// was wrong and let it try again.
    Invalid {
        /// The text as sent.
        raw: String,
        /// Why it is not JSON (serde's message, with line and column).
        error: String,
    },
}

impl Arguments {
    /// Parses `raw`, keeping it with the error when it is not JSON. Empty text is `{}`: some
    /// servers send no arguments for a tool that takes none.
    pub fn parse(raw: &str) -> Self {
        if raw.trim().is_empty() {
            return Self::Json(Value::Object(serde_json::Map::new()));
        }
        match serde_json::from_str(raw) {
            Ok(value) => Self::Json(value),
            Err(e) => Self::Invalid {
                raw: raw.to_owned(),
                error: e.to_string(),
            },
        }
    }

    /// The arguments as JSON text, as OpenAI-compatible servers expect them back (the raw text
    /// when it was invalid).
    pub fn to_text(&self) -> String {
        match self {
            Self::Json(value) => value.to_string(),
            Self::Invalid { raw, .. } => raw.clone(),
        }
    }
}

/// How an answer ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// Why it ended.
    pub reason: FinishReason,
    /// Tokens counted, when the server said.
    pub usage: Usage,
    /// The model that answered, as the server names it.
    pub model: Option<String>,
}

/// Why an answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// The model finished its answer.
    Stop,
    /// It reached the output token limit.
    Length,
    /// It called tools and waits for their results. Ollama says `stop` in that case; it is
    /// reported as `ToolCalls` here so that callers need not know the provider.
    ToolCalls,
    /// The provider's content filter stopped it.
    ContentFilter,
    /// Anything else, as the server said it (Ollama's `load`, `unload`), or `unknown` when it
    /// said nothing.
    Other(String),
}

impl FinishReason {
    /// The name used by OpenTelemetry's `gen_ai.response.finish_reasons`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
            Self::Other(other) => other,
        }
    }

    pub(super) fn from_wire(reason: &str) -> Self {
        match reason {
            "stop" => Self::Stop,
            "length" => Self::Length,
            "tool_calls" | "function_call" => Self::ToolCalls,
            "content_filter" => Self::ContentFilter,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Tokens used by one model call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens of the prompt (Ollama's `prompt_eval_count`, OpenAI's `prompt_tokens`).
    pub input_tokens: Option<u64>,
    /// Tokens of the answer (`eval_count`, `completion_tokens`).
    pub output_tokens: Option<u64>,
}
