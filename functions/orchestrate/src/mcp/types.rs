//! What the transports return, in one transport-independent shape: tool descriptions with
//! their full JSON Schemas, and call results (content blocks, structured content, `isError`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// One tool of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    /// The name the server knows it by.
    pub name: String,
    /// Human-readable title, if any.
    pub title: Option<String>,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: Value,
    /// JSON Schema of `structured_content`, when the tool declares one.
    pub output_schema: Option<Value>,
    /// MCP annotations (`readOnlyHint`, ...), if any.
    pub annotations: Option<Value>,
}

/// A server's tool list and, when it gave one (`ttlMs`), how long it stays fresh.
#[derive(Debug, Clone)]
pub struct ToolList {
    /// The tools, in the server's order.
    pub tools: Arc<[ToolInfo]>,
    /// Freshness the server announced; `None` means "use the default".
    pub ttl: Option<Duration>,
}

/// One content block of a result, in MCP's wire shape: the workspace's one content model,
/// which mcp-tool's tools return and the gRPC transport reads from `mcp.Content`.
pub use aixrun_proto::mcp_json::Content;

/// The result of a call that ran. `is_error` results are the tool's own failures, which the
/// model reads; protocol problems are [`crate::mcp::McpError`]s instead.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolResult {
    /// Content blocks, in order.
    pub content: Vec<Content>,
    /// Structured result, if the tool returned one.
    pub structured_content: Option<Value>,
    /// True when the tool failed.
    pub is_error: bool,
}

impl ToolResult {
    /// The text blocks joined by newlines (what a text-only model sees).
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|c| match c {
                Content::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
