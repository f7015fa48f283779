//! `hf_chat`: one chat completion through the Inference Providers router (OpenAI-compatible
//! `POST /chat/completions`, no streaming).

use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client::{Auth, Client, Request};
use super::{
    CHAT_MODEL_PATTERN, HF_CHAT, Spec, check_input_size, object_schema, parse_args, pick_model,
};
use crate::tool::{Args, CallContext, Content, Tool, ToolError, ToolOutput};

const DESCRIPTION: &str = "Generate text with an open model on Hugging Face (chat completion \
through Inference Providers). Give either `prompt` (one user message) or `messages` (a \
conversation); `system` sets the instructions. Returns the model's reply.";

const DEFAULT_MAX_TOKENS: u32 = 512;
const MAX_TOKENS: u32 = 8192;

pub(super) fn tool(client: &Arc<Client>) -> Tool {
    let settings = &client.settings;
    let chars = settings.max_input_chars;
    let input_schema = object_schema(
        json!({
            "prompt": {
                "type": "string", "minLength": 1, "maxLength": chars,
                "description": "The user's message. Give this or `messages`, not both."
            },
            "messages": {
                "type": "array", "minItems": 1,
                "description": "The conversation so far, oldest first. Give this or `prompt`.",
                "items": {
                    "type": "object",
                    "properties": {
                        "role": {
                            "type": "string", "enum": ["system", "user", "assistant"],
                            "description": "Who wrote the message."
                        },
                        "content": {"type": "string", "description": "The message text."}
                    },
                    "required": ["role", "content"],
                    "additionalProperties": false
                }
            },
            "system": {
                "type": "string", "maxLength": chars,
                "description": "Instructions for the model, sent first as a system message."
            },
            "model": {
                "type": "string", "pattern": CHAT_MODEL_PATTERN,
                "description": format!(
                    "Hub model id, optionally with :provider or :fastest/:cheapest. Default: {}.",
                    settings.chat_model
                )
            },
            "max_tokens": {
                "type": "integer", "minimum": 1, "maximum": MAX_TOKENS,
                "default": DEFAULT_MAX_TOKENS,
                "description": "Most tokens to generate."
            },
            "temperature": {
                "type": "number", "minimum": 0, "maximum": 2,
                "description": "Sampling temperature: 0 is most deterministic."
            }
        }),
        &[],
    );
    let output_schema = object_schema(
        json!({
            "model": {"type": "string", "description": "Model asked."},
            "text": {"type": "string", "description": "The reply."},
            // Left out when the server doesn't say: single types suit every function-calling
            // dialect (Gemini's declarations reject type arrays).
            "finish_reason": {
                "type": "string",
                "description": "Why generation stopped (stop, length, ...), when the server says."
            },
            "usage": {
                "type": "object",
                "description": "Token counts (prompt_tokens, completion_tokens, total_tokens), \
                    when the server sends them."
            }
        }),
        &["model", "text"],
    );
    Spec {
        name: HF_CHAT,
        title: "Hugging Face chat",
        description: DESCRIPTION,
        input_schema,
        output_schema,
    }
    .build(client, run)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatArgs {
    prompt: Option<String>,
    messages: Option<Vec<Message>>,
    system: Option<String>,
    model: Option<String>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    role: Role,
    content: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Reply,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Reply {
    content: Option<String>,
}

async fn run(client: Arc<Client>, args: Args, ctx: CallContext) -> Result<ToolOutput, ToolError> {
    let args: ChatArgs = parse_args(args)?;
    let model = pick_model(args.model, &client.settings.chat_model, true)?;
    let messages = conversation(args.prompt, args.messages, args.system)?;
    check_input_size(
        &client.settings,
        messages.iter().map(|m| m.content.chars().count()).sum(),
    )?;
    let mut body = json!({
        "model": model,
        "messages": messages,
        "max_tokens": args.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).clamp(1, MAX_TOKENS),
        "stream": false,
    });
    if let Some(t) = args.temperature {
        body["temperature"] = json!(t);
    }
    let request = Request {
        method: Method::POST,
        url: client.endpoint(&client.settings.router_url, "chat/completions")?,
        body: Some(&body),
        model: Some(&model),
        auth: Auth::Required,
    };
    let completion: Completion = client.send(request, &ctx).await?;
    let choice =
        completion.choices.into_iter().next().ok_or_else(|| {
            ToolError::new(format!("model {model} returned no answer; try again"))
        })?;
    let text = choice.message.content.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ToolError::new(format!(
            "model {model} returned no text (finish reason: {}); try again, or raise max_tokens",
            choice.finish_reason.as_deref().unwrap_or("none")
        )));
    }
    let mut structured = json!({"model": model, "text": text});
    if let Some(reason) = choice.finish_reason {
        structured["finish_reason"] = json!(reason);
    }
    if let Some(usage) = completion.usage.filter(Value::is_object) {
        structured["usage"] = usage;
    }
    Ok(ToolOutput {
        content: vec![Content::text(text)],
        structured: Some(structured),
    })
}

/// The messages to send: exactly one of `prompt` and `messages`, with `system` first.
fn conversation(
    prompt: Option<String>,
    messages: Option<Vec<Message>>,
    system: Option<String>,
) -> Result<Vec<Message>, ToolError> {
    let mut conversation = match (prompt, messages) {
        (Some(prompt), None) => vec![Message {
            role: Role::User,
            content: prompt,
        }],
        (None, Some(messages)) if !messages.is_empty() => messages,
        (Some(_), Some(_)) => {
            return Err(ToolError::new(
                "give either `prompt` or `messages`, not both",
            ));
        }
        _ => {
            return Err(ToolError::new(
                "nothing to answer: give `prompt` (a string) or `messages` (a non-empty list)",
            ));
        }
    };
    if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
        conversation.insert(
            0,
            Message {
                role: Role::System,
                content: system,
            },
        );
    }
    Ok(conversation)
}
