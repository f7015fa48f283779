//! The `classifier` agent: routes its input to the successors of one category (or, with
//! `multi_label`, of every category above the threshold), and passes the input on unchanged.
//! The model answers `{category, confidence, reasoning}` constrained to the category names;
//! below `confidence_threshold`, or with no category, the route is `fallback`. With
//! `keywords_first`, an input whose keywords match exactly one category is routed without a
//! model call.

use aixrun::llm::Message;
use serde_json::{Value, json};

use crate::config::Classifier;
use crate::run::event::Decision;
use crate::run::step::{Input, Step, StepEnd};
use crate::run::turn::structured;

/// Classifies `input` and routes it.
pub(crate) async fn run(step: &Step<'_>, config: &Classifier, input: &Input) -> StepEnd {
    let passed_on = input.value();
    let text = input.text();
    if config.keywords_first
        && let [only] = keyword_matches(config, &text).as_slice()
    {
        return route(
            step,
            passed_on,
            vec![(*only).to_owned()],
            Some(1.0),
            None,
            "keywords",
        );
    }
    let Some(service) = &step.agent.model else {
        return StepEnd::Failed("a classifier needs a model".to_owned());
    };
    let schema = schema(config);
    let messages = vec![
        Message::System(step.prompt_then(&instructions(config))),
        Message::User(text),
    ];
    let answer = match structured(step, service, messages, &step.agent.name, &schema, false).await {
        Ok(answer) => answer,
        Err(end) => return end,
    };
    let reasoning = answer["reasoning"].as_str().map(str::to_owned);
    let picked: Vec<(String, f64)> = if config.multi_label {
        answer["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["name"].as_str()?.to_owned(), c["confidence"].as_f64()?)))
            .collect()
    } else {
        answer["category"]
            .as_str()
            .map(|c| (c.to_owned(), answer["confidence"].as_f64().unwrap_or(0.0)))
            .into_iter()
            .collect()
    };
    let best = picked
        .iter()
        .map(|(_, c)| *c)
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))));
    let mut above: Vec<String> = Vec::new();
    for (name, confidence) in &picked {
        if *confidence >= config.confidence_threshold && !above.contains(name) {
            above.push(name.clone());
        }
    }
    if !config.multi_label {
        above.truncate(1);
    }
    if !above.is_empty() {
        return route(step, passed_on, above, best, reasoning, "model");
    }
    match &config.fallback {
        Some(fallback) => route(
            step,
            passed_on,
            vec![fallback.clone()],
            best,
            reasoning,
            "fallback",
        ),
        None => StepEnd::Failed(format!(
            "no category reached confidence_threshold {} (the model answered {}) and no fallback is configured",
            config.confidence_threshold,
            if picked.is_empty() {
                "none".to_owned()
            } else {
                picked
                    .iter()
                    .map(|(n, c)| format!("{n} {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
    }
}

fn route(
    step: &Step<'_>,
    output: Value,
    categories: Vec<String>,
    confidence: Option<f64>,
    reasoning: Option<String>,
    by: &str,
) -> StepEnd {
    step.decide(Decision::Route {
        categories: categories.clone(),
        confidence,
        reasoning,
        by: by.to_owned(),
    });
    StepEnd::Done {
        output,
        routes: Some(categories),
    }
}

/// The categories whose keywords occur in `text` as whole words, ignoring case.
pub(crate) fn keyword_matches<'c>(config: &'c Classifier, text: &str) -> Vec<&'c str> {
    let text = text.to_lowercase();
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    config
        .categories
        .iter()
        .filter(|c| {
            c.keywords.iter().any(|k| {
                let parts: Vec<&str> = k
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .collect();
                !parts.is_empty() && words.windows(parts.len()).any(|w| w == parts.as_slice())
            })
        })
        .map(|c| c.name.as_str())
        .collect()
}

/// The longest reasoning asked for: a sentence or two. Servers that turn the schema into a
/// grammar (llama.cpp, vLLM) stop a small model from reasoning until its token limit.
const REASONING_CHARS: u32 = 300;

/// The answer's JSON Schema: the category names as an enum.
fn schema(config: &Classifier) -> Value {
    let names: Vec<&str> = config.categories.iter().map(|c| c.name.as_str()).collect();
    let confidence = json!({"type": "number", "minimum": 0, "maximum": 1});
    if config.multi_label {
        json!({
            "type": "object",
            "properties": {
                "categories": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"enum": names}, "confidence": confidence},
                        "required": ["name", "confidence"]
                    }
                },
                "reasoning": {"type": "string", "maxLength": REASONING_CHARS}
            },
            "required": ["categories"]
        })
    } else {
        json!({
            "type": "object",
            "properties": {
                "category": {"enum": names},
                "confidence": confidence,
                "reasoning": {"type": "string", "maxLength": REASONING_CHARS}
            },
            "required": ["category", "confidence"]
        })
    }
}

/// What the model is asked, after the agent's own prompt.
fn instructions(config: &Classifier) -> String {
    let mut text = String::new();
    text.push_str(if config.multi_label {
        "Classify the user's message into every category that applies, each with your confidence from 0 to 1. The categories:\n"
    } else {
        "Classify the user's message into one category, with your confidence from 0 to 1. The categories:\n"
    });
    for c in &config.categories {
        text.push_str(&format!("- {}", c.name));
        if let Some(d) = &c.description {
            text.push_str(&format!(": {d}"));
        }
        if !c.examples.is_empty() {
            text.push_str(&format!(" (for example: {})", c.examples.join("; ")));
        }
        text.push('\n');
    }
    text.push_str("Answer with JSON only.");
    text
}
