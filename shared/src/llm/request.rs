//! What a caller asks a model for, in provider-neutral types: the conversation, the tools it
//! may call, an optional output schema and the sampling options.

use std::time::Duration;

use serde_json::Value;

use super::event::ToolCall;

/// One chat request.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    /// The provider's model id (`qwen3:0.6b`, `gpt-4o-mini`, `meta-llama/Llama-3.1-8B-Instruct`).
    pub model: String,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Whether the model must, may or must not call them; `None`: the server's default
    /// (`auto` when tools are offered). Sent only with tools.
    pub tool_choice: Option<ToolChoice>,
    /// When set, the answer must be JSON matching this schema.
    pub output_schema: Option<OutputSchema>,
    /// Sampling options.
    pub options: Options,
    /// Settings only Ollama's native API reads (ignored by OpenAI-compatible servers).
    pub ollama: OllamaOptions,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Instructions.
    System(String),
    /// What the user said.
    User(String),
    /// What the model said before: its text and the tools it called.
    Assistant {
        /// Its text (may be empty when it only called tools).
        content: String,
        /// The calls it made, as received (ids included, so the results can refer to them).
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call.
    Tool {
        /// The id of the call this answers ([`ToolCall::id`]).
        call_id: String,
        /// The tool's name (Ollama matches results by name).
        name: String,
        /// The result as text (an error the model should see is a result too).
        content: String,
    },
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// A JSON Schema object describing its arguments.
    pub parameters: Value,
}

/// Whether the model calls a tool. OpenAI-compatible servers get it as `tool_choice`; Ollama's
/// native API has no such field, so there `None` offers no tools, `Tool` offers only that one,
/// and `Required` cannot be enforced by the server (the caller checks the answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// The model must call at least one tool.
    Required,
    /// The model must not call a tool.
    None,
    /// The model must call this tool.
    Tool(String),
}

impl ToolChoice {
    /// From configuration: `auto`, `required`, `none`, or a tool's name.
    pub fn parse(raw: &str) -> Self {
        match raw.trim() {
            "auto" => Self::Auto,
            "required" => Self::Required,
            "none" => Self::None,
            name => Self::Tool(name.to_owned()),
        }
    }

    /// As written in configuration.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Auto => "auto",
            Self::Required => "required",
            Self::None => "none",
            Self::Tool(name) => name,
        }
    }
}

/// A JSON Schema the answer must match.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSchema {
    /// A name for it (OpenAI requires one: letters, digits, `_` and `-`).
    pub name: String,
    /// The schema.
    pub schema: Value,
}

/// Sampling options; unset ones are left to the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// The most tokens the answer may have.
    pub max_output_tokens: Option<u32>,
    /// A seed, for repeatable sampling where the server supports it.
    pub seed: Option<i64>,
}

/// Settings of Ollama's native API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OllamaOptions {
    /// How long the model stays loaded after this request.
    pub keep_alive: Option<KeepAlive>,
    /// Whether (and how hard) a thinking model thinks; its thoughts arrive as
    /// [`super::Event::Thinking`].
    pub think: Option<Think>,
}

/// Ollama's `keep_alive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Keep the model loaded this long.
    For(Duration),
    /// Keep it loaded until the server stops.
    Forever,
    /// Unload it as soon as the answer ends.
    UnloadNow,
}

impl KeepAlive {
    /// Ollama reads a number as seconds and a negative one as forever.
    pub(super) fn to_json(self) -> Value {
        match self {
            Self::For(d) => serde_json::json!(d.as_secs_f64()),
            Self::Forever => serde_json::json!(-1),
            Self::UnloadNow => serde_json::json!(0),
        }
    }
}

/// Ollama's `think`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Think {
    /// On or off.
    Enabled(bool),
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
}

impl Think {
    pub(super) fn to_json(self) -> Value {
        match self {
            Self::Enabled(on) => Value::Bool(on),
            Self::Low => "low".into(),
            Self::Medium => "medium".into(),
            Self::High => "high".into(),
        }
    }
}
