//! The fixture tools the official MCP conformance suite calls (`npx conformance server`),
//! each returning exactly what its scenario specifies. Off unless configured.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::tool::{Content, Tool, ToolError, ToolOutput};

/// A 1x1 red PNG.
const RED_PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xdd, 0x8d, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A WAV header with no samples: the smallest valid audio file.
fn silent_wav() -> Vec<u8> {
    let mut wav = Vec::with_capacity(44);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&36u32.to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&0u32.to_le_bytes());
    wav
}

fn no_args() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

fn image() -> Content {
    Content::Image {
        data: STANDARD.encode(RED_PIXEL_PNG),
        mime_type: "image/png".into(),
    }
}

/// The conformance fixture tools.
pub fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "test_simple_text",
            "Returns simple text.",
            no_args(),
            |_, _| async {
                Ok(ToolOutput::text(
                    "This is a simple text response for testing.",
                ))
            },
        ),
        Tool::new(
            "test_image_content",
            "Returns a 1x1 PNG.",
            no_args(),
            |_, _| async {
                Ok(ToolOutput {
                    content: vec![image()],
                    structured: None,
                })
            },
        ),
        Tool::new(
            "test_audio_content",
            "Returns a WAV file.",
            no_args(),
            |_, _| async {
                Ok(ToolOutput {
                    content: vec![Content::Audio {
                        data: STANDARD.encode(silent_wav()),
                        mime_type: "audio/wav".into(),
                    }],
                    structured: None,
                })
            },
        ),
        Tool::new(
            "test_embedded_resource",
            "Returns an embedded resource.",
            no_args(),
            |_, _| async {
                Ok(ToolOutput {
                    content: vec![Content::Resource {
                        resource: json!({
                            "uri": "test://embedded-resource",
                            "mimeType": "text/plain",
                            "text": "This is an embedded resource content."
                        }),
                    }],
                    structured: None,
                })
            },
        ),
        Tool::new(
            "test_multiple_content_types",
            "Returns text, an image and a resource.",
            no_args(),
            |_, _| async {
                Ok(ToolOutput {
                    content: vec![
                        Content::text("Multiple content types test:"),
                        image(),
                        Content::Resource {
                            resource: json!({
                                "uri": "test://mixed-content-resource",
                                "mimeType": "application/json",
                                "text": "{\"test\":\"data\",\"value\":123}"
                            }),
                        },
                    ],
                    structured: None,
                })
            },
        ),
        Tool::new(
            "test_tool_with_logging",
            "Sends three log notifications while it runs.",
            no_args(),
            |_, ctx| async move {
                ctx.log("info", json!("Tool execution started")).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                ctx.log("info", json!("Tool processing data")).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                ctx.log("info", json!("Tool execution completed")).await;
                Ok(ToolOutput::text("Tool with logging executed successfully"))
            },
        ),
        // 2026-07-28 `server-stateless` calls this without `_meta` logLevel and expects no
        // `notifications/message`.
        Tool::new(
            "test_logging_tool",
            "Sends one info log notification, if the request asked for logs.",
            no_args(),
            |_, ctx| async move {
                ctx.log("info", json!("test_logging_tool ran")).await;
                Ok(ToolOutput::text("Logging tool executed"))
            },
        ),
        Tool::new(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100.",
            no_args(),
            |_, ctx| async move {
                for (i, p) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    ctx.progress(p, Some(100.0), None).await;
                }
                Ok(ToolOutput::text("Tool with progress executed successfully"))
            },
        ),
        Tool::new(
            "test_error_handling",
            "Always fails.",
            no_args(),
            |_, _| async {
                Err(ToolError::new(
                    "This tool intentionally returns an error for testing",
                ))
            },
        ),
        Tool::new(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            // The schema of conformance 0.2.0's scenario (a superset of 0.1.x's): SEP-1613's
            // `$schema`/`$defs`/`additionalProperties` plus SEP-2106's `$anchor`, composition and
            // conditional keywords, all of which must reach tools/list unchanged.
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "$anchor": "addressDef",
                        "type": "object",
                        "properties": {
                            "street": {"type": "string"},
                            "city": {"type": "string"}
                        }
                    }
                },
                "properties": {
                    "name": {"type": "string"},
                    "address": {"$ref": "#/$defs/address"},
                    "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                    "phone": {"type": "string"},
                    "email": {"type": "string"}
                },
                "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
                "if": {
                    "properties": {"contactMethod": {"const": "phone"}},
                    "required": ["contactMethod"]
                },
                "then": {"required": ["phone"]},
                "else": {"required": ["email"]},
                "additionalProperties": false
            }),
            |args, _| async move { Ok(ToolOutput::text(Value::Object(args).to_string())) },
        ),
    ]
}
