//! `hf_summarize`: abstractive summarization on the hf-inference task API.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, json};

use super::client::Client;
use super::{
    HF_SUMMARIZE, Spec, check_input_size, model_property, object_schema, parse_args, pick_model,
};
use crate::tool::{Args, CallContext, Content, Tool, ToolError, ToolOutput};

const DESCRIPTION: &str = "Summarize a text with a Hugging Face summarization model (by \
default BART fine-tuned on news). Lengths are in tokens (about 3/4 of a word each).";

const MAX_LENGTH: u64 = 1024;

pub(super) fn tool(client: &Arc<Client>) -> Tool {
    let settings = &client.settings;
    let input_schema = object_schema(
        json!({
            "text": {
                "type": "string", "minLength": 1, "maxLength": settings.max_input_chars,
                "description": "The text to summarize."
            },
            "max_length": {
                "type": "integer", "minimum": 1, "maximum": MAX_LENGTH,
                "description": "Longest summary, in tokens (the model's default when omitted)."
            },
            "min_length": {
                "type": "integer", "minimum": 0, "maximum": MAX_LENGTH,
                "description": "Shortest summary, in tokens; not more than max_length."
            },
            "model": model_property(&settings.summarization_model)
        }),
        &["text"],
    );
    let output_schema = object_schema(
        json!({
            "model": {"type": "string", "description": "Model that answered."},
            "summary": {"type": "string", "description": "The summary."}
        }),
        &["model", "summary"],
    );
    Spec {
        name: HF_SUMMARIZE,
        title: "Hugging Face summarization",
        description: DESCRIPTION,
        input_schema,
        output_schema,
    }
    .build(client, run)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummarizeArgs {
    text: String,
    max_length: Option<u64>,
    min_length: Option<u64>,
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Summary {
    summary_text: String,
}

/// `[{summary_text}]` (one per input), or the bare object some deployments send.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Answer {
    List(Vec<Summary>),
    One(Summary),
}

async fn run(client: Arc<Client>, args: Args, ctx: CallContext) -> Result<ToolOutput, ToolError> {
    let args: SummarizeArgs = parse_args(args)?;
    let model = pick_model(args.model, &client.settings.summarization_model, false)?;
    check_input_size(&client.settings, args.text.chars().count())?;
    if let (Some(min), Some(max)) = (args.min_length, args.max_length)
        && min > max
    {
        return Err(ToolError::new(format!(
            "min_length ({min}) is larger than max_length ({max})"
        )));
    }
    let mut parameters = Map::new();
    if let Some(max) = args.max_length {
        parameters.insert("max_length".to_owned(), json!(max));
    }
    if let Some(min) = args.min_length {
        parameters.insert("min_length".to_owned(), json!(min));
    }
    let mut body = json!({"inputs": args.text});
    if !parameters.is_empty() {
        body["parameters"] = parameters.into();
    }
    let summary = match client.task(&model, &body, &ctx).await? {
        Answer::List(list) => list.into_iter().next().map(|s| s.summary_text),
        Answer::One(one) => Some(one.summary_text),
    }
    .filter(|s| !s.trim().is_empty())
    .ok_or_else(|| {
        ToolError::new(format!(
            "model {model} returned no summary; check that it is a summarization model"
        ))
    })?;
    Ok(ToolOutput {
        content: vec![Content::text(summary.clone())],
        structured: Some(json!({"model": model, "summary": summary})),
    })
}
