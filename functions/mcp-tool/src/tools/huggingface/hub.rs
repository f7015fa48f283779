//! `hf_model_search`: find models on the Hub (`GET /api/models`), public data that needs no
//! token (one is sent when present, which also shows the caller's private models).

use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{Auth, Client, Request};
use super::{HF_MODEL_SEARCH, Spec, object_schema, parse_args};
use crate::tool::{Args, CallContext, Content, Tool, ToolError, ToolOutput};

const DESCRIPTION: &str = "Search the Hugging Face Hub for models by name or keyword, \
optionally only those for one task (pipeline tag such as text-classification, \
feature-extraction, summarization, text-generation). Use it to find a model id for the other \
hf_ tools.";

const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 50;
const SORTS: [&str; 3] = ["downloads", "likes", "lastModified"];

pub(super) fn tool(client: &Arc<Client>) -> Tool {
    let input_schema = object_schema(
        json!({
            "query": {
                "type": "string", "minLength": 1, "maxLength": 200,
                "description": "Words to look for in model ids, e.g. \"sentiment\" or \"bge\"."
            },
            "limit": {
                "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                "description": "Most models to return."
            },
            "task": {
                "type": "string", "pattern": "^[a-z0-9-]{1,64}$",
                "description": "Only models for this task (Hub pipeline tag), e.g. \
                    text-classification."
            },
            "sort": {
                "type": "string", "enum": SORTS, "default": "downloads",
                "description": "Order, highest first."
            }
        }),
        &["query"],
    );
    let output_schema = object_schema(
        json!({
            "models": {
                "type": "array",
                "description": "Matching models in the order asked for.",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "Model id (owner/name)."},
                        // Left out when the Hub doesn't say (single types, no nulls).
                        "task": {"type": "string", "description": "Pipeline tag, when set."},
                        "downloads": {"type": "integer", "description": "Recent downloads, when known."},
                        "likes": {"type": "integer", "description": "Likes, when known."}
                    },
                    "required": ["id"],
                    "additionalProperties": false
                }
            }
        }),
        &["models"],
    );
    Spec {
        name: HF_MODEL_SEARCH,
        title: "Hugging Face model search",
        description: DESCRIPTION,
        input_schema,
        output_schema,
    }
    .build(client, run)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    limit: Option<u32>,
    task: Option<String>,
    sort: Option<String>,
}

/// One `/api/models` entry; recent Hub versions send `id`, older ones `modelId`.
#[derive(Debug, Deserialize)]
struct HubModel {
    id: Option<String>,
    #[serde(rename = "modelId")]
    model_id: Option<String>,
    pipeline_tag: Option<String>,
    downloads: Option<u64>,
    likes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Found {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    downloads: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    likes: Option<u64>,
}

async fn run(client: Arc<Client>, args: Args, ctx: CallContext) -> Result<ToolOutput, ToolError> {
    let args: SearchArgs = parse_args(args)?;
    let sort = args.sort.as_deref().unwrap_or(SORTS[0]);
    if !SORTS.contains(&sort) {
        return Err(ToolError::new(format!(
            "sort must be one of {}",
            SORTS.join(", ")
        )));
    }
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut url = client.endpoint(&client.settings.hub_url, "api/models")?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("search", args.query.trim())
            .append_pair("limit", &limit.to_string())
            .append_pair("sort", sort)
            .append_pair("direction", "-1");
        if let Some(task) = &args.task {
            query.append_pair("pipeline_tag", task);
        }
    }
    let request = Request {
        method: Method::GET,
        url,
        body: None,
        model: None,
        auth: Auth::IfPresent,
    };
    let models: Vec<HubModel> = client.send(request, &ctx).await?;
    let found: Vec<Found> = models
        .into_iter()
        .filter_map(|m| {
            Some(Found {
                id: m.id.or(m.model_id)?,
                task: m.pipeline_tag,
                downloads: m.downloads,
                likes: m.likes,
            })
        })
        .take(limit as usize)
        .collect();
    Ok(ToolOutput {
        content: vec![Content::text(listing(&args.query, &found))],
        structured: Some(json!({"models": found})),
    })
}

/// "Models matching ...:" then one numbered line per model.
fn listing(query: &str, found: &[Found]) -> String {
    if found.is_empty() {
        return format!("No models on the Hub match {query:?}; try fewer or other words.");
    }
    let mut text = format!("Models matching {query:?}:");
    for (i, model) in found.iter().enumerate() {
        let count = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
        text.push_str(&format!(
            "\n{}. {} ({}, {} downloads, {} likes)",
            i + 1,
            model.id,
            model.task.as_deref().unwrap_or("no task tag"),
            count(model.downloads),
            count(model.likes)
        ));
    }
    text
}
