//! `echo`: returns its text; the tool the seed's metric examples name, and the benchmark's.

use serde_json::json;

use crate::tool::{Tool, ToolOutput};

/// The `echo` tool.
pub fn tool() -> Tool {
    Tool::new(
        "echo",
        "Returns the given text unchanged. Useful to check that the tool server is reachable.",
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The text to return."}
            },
            "required": ["text"],
            "additionalProperties": false
        }),
        |args, _ctx| async move {
            let text = args
                .get("text")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            Ok(ToolOutput::text(text))
        },
    )
    .title("Echo")
    .annotations(json!({"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false}))
}
