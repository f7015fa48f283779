//! `hf_classify` (text-classification: the model's own labels) and `hf_zero_shot`
//! (zero-shot-classification: labels the caller chooses), both on the hf-inference task API.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use super::client::Client;
use super::{
    HF_CLASSIFY, HF_ZERO_SHOT, Spec, check_input_size, model_property, object_schema, parse_args,
    pick_model,
};
use crate::tool::{Args, CallContext, Content, Tool, ToolError, ToolOutput};

const CLASSIFY_DESCRIPTION: &str = "Classify text with a Hugging Face text-classification model \
(by default sentiment: POSITIVE/NEGATIVE). Returns the model's labels with scores, highest \
first. To choose the labels yourself, use hf_zero_shot.";

const ZERO_SHOT_DESCRIPTION: &str = "Classify text into labels you choose (zero-shot \
classification on Hugging Face), e.g. topics, intents or urgency. Returns each label with a \
score, highest first; with multi_label the scores are independent, otherwise they sum to 1.";

const MAX_TOP_K: u64 = 100;
const MAX_LABELS: usize = 20;

pub(super) fn classify_tool(client: &Arc<Client>) -> Tool {
    let settings = &client.settings;
    let input_schema = object_schema(
        json!({
            "text": text_property(settings.max_input_chars),
            "model": model_property(&settings.classification_model),
            "top_k": {
                "type": "integer", "minimum": 1, "maximum": MAX_TOP_K,
                "description": "Return only the best k labels (default: all)."
            }
        }),
        &["text"],
    );
    Spec {
        name: HF_CLASSIFY,
        title: "Hugging Face text classification",
        description: CLASSIFY_DESCRIPTION,
        input_schema,
        output_schema: labels_output_schema(),
    }
    .build(client, classify)
}

pub(super) fn zero_shot_tool(client: &Arc<Client>) -> Tool {
    let settings = &client.settings;
    let input_schema = object_schema(
        json!({
            "text": text_property(settings.max_input_chars),
            "labels": {
                "type": "array", "minItems": 1, "maxItems": MAX_LABELS, "uniqueItems": true,
                "items": {"type": "string", "minLength": 1, "maxLength": 200},
                "description": "Candidate labels, e.g. [\"billing\", \"bug report\", \"praise\"]."
            },
            "multi_label": {
                "type": "boolean", "default": false,
                "description": "Score each label on its own (several may apply) instead of \
                    choosing between them."
            },
            "model": model_property(&settings.zero_shot_model)
        }),
        &["text", "labels"],
    );
    Spec {
        name: HF_ZERO_SHOT,
        title: "Hugging Face zero-shot classification",
        description: ZERO_SHOT_DESCRIPTION,
        input_schema,
        output_schema: labels_output_schema(),
    }
    .build(client, zero_shot)
}

/// Both tools answer `{model, labels: [{label, score}]}`.
fn labels_output_schema() -> Value {
    object_schema(
        json!({
            "model": {"type": "string", "description": "Model that answered."},
            "labels": {
                "type": "array",
                "description": "Labels with their scores, highest first.",
                "items": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string", "description": "The label."},
                        "score": {"type": "number", "description": "Its score, 0 to 1."}
                    },
                    "required": ["label", "score"],
                    "additionalProperties": false
                }
            }
        }),
        &["model", "labels"],
    )
}

fn text_property(max_chars: usize) -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": max_chars,
        "description": "The text to classify."
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyArgs {
    text: String,
    model: Option<String>,
    top_k: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZeroShotArgs {
    text: String,
    labels: Vec<String>,
    #[serde(default)]
    multi_label: bool,
    model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LabelScore {
    label: String,
    score: f64,
}

/// text-classification answers `[[{label, score}]]` (one list per input) or, from older
/// deployments, `[{label, score}]`: either way, the labels in one list. Decoded straight from
/// the body (an untagged enum would first copy the whole answer into a tree to try each shape).
#[derive(Debug)]
struct Flattened<T>(Vec<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Flattened<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(FlattenedVisitor(PhantomData))
    }
}

struct FlattenedVisitor<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for FlattenedVisitor<T> {
    type Value = Flattened<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of labels, or a list of lists of labels")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Flattened<T>, A::Error> {
        let mut items = Vec::new();
        // The first element says whether the lists are nested.
        match seq.next_element::<ItemOrList<T>>()? {
            None => {}
            Some(ItemOrList::Item(item)) => {
                items.push(item);
                while let Some(item) = seq.next_element::<T>()? {
                    items.push(item);
                }
            }
            Some(ItemOrList::List(list)) => {
                items.extend(list);
                while let Some(list) = seq.next_element::<Vec<T>>()? {
                    items.extend(list);
                }
            }
        }
        Ok(Flattened(items))
    }
}

/// An object (one item) or a list of them.
enum ItemOrList<T> {
    Item(T),
    List(Vec<T>),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for ItemOrList<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for Either<T> {
            type Value = ItemOrList<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a label object or a list of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ItemOrList<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(ItemOrList::Item)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ItemOrList<T>, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element::<T>()? {
                    list.push(item);
                }
                Ok(ItemOrList::List(list))
            }
        }
        deserializer.deserialize_any(Either(PhantomData))
    }
}

/// zero-shot-classification answers `{sequence, labels, scores}` (the transformers pipeline) or
/// `[{label, score}]` (the current task API).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ZeroShotAnswer {
    Columns {
        labels: Vec<String>,
        scores: Vec<f64>,
    },
    Flat(Vec<LabelScore>),
}

async fn classify(
    client: Arc<Client>,
    args: Args,
    ctx: CallContext,
) -> Result<ToolOutput, ToolError> {
    let args: ClassifyArgs = parse_args(args)?;
    let model = pick_model(args.model, &client.settings.classification_model, false)?;
    check_input_size(&client.settings, args.text.chars().count())?;
    let mut body = json!({"inputs": args.text});
    if let Some(k) = args.top_k {
        body["parameters"] = json!({"top_k": k});
    }
    let Flattened(mut labels) = client
        .task::<Flattened<LabelScore>>(&model, &body, &ctx)
        .await?;
    if let Some(k) = args.top_k {
        // Some deployments ignore `top_k`.
        sort(&mut labels);
        labels.truncate(k);
    }
    labels_output(model, labels)
}

async fn zero_shot(
    client: Arc<Client>,
    args: Args,
    ctx: CallContext,
) -> Result<ToolOutput, ToolError> {
    let args: ZeroShotArgs = parse_args(args)?;
    let model = pick_model(args.model, &client.settings.zero_shot_model, false)?;
    if args.labels.is_empty() || args.labels.len() > MAX_LABELS {
        return Err(ToolError::new(format!("give 1 to {MAX_LABELS} labels")));
    }
    let label_chars: usize = args.labels.iter().map(|l| l.chars().count()).sum();
    check_input_size(&client.settings, args.text.chars().count() + label_chars)?;
    let body = json!({
        "inputs": args.text,
        "parameters": {"candidate_labels": args.labels, "multi_label": args.multi_label}
    });
    let labels = match client.task(&model, &body, &ctx).await? {
        ZeroShotAnswer::Columns { labels, scores } if labels.len() == scores.len() => labels
            .into_iter()
            .zip(scores)
            .map(|(label, score)| LabelScore { label, score })
            .collect(),
        ZeroShotAnswer::Columns { labels, scores } => {
            return Err(ToolError::new(format!(
                "model {model} answered {} labels with {} scores; try again or use another model",
                labels.len(),
                scores.len()
            )));
        }
        ZeroShotAnswer::Flat(labels) => labels,
    };
    labels_output(model, labels)
}

fn sort(labels: &mut [LabelScore]) {
    labels.sort_by(|a, b| b.score.total_cmp(&a.score));
}

/// The labels, best first, as text ("POSITIVE 0.999, NEGATIVE 0.001") and structured.
fn labels_output(model: String, mut labels: Vec<LabelScore>) -> Result<ToolOutput, ToolError> {
    if labels.is_empty() {
        return Err(ToolError::new(format!(
            "model {model} returned no labels; check that it is a classification model"
        )));
    }
    sort(&mut labels);
    let text = labels
        .iter()
        .map(|l| format!("{} {:.3}", l.label, l.score))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(ToolOutput {
        content: vec![Content::text(text)],
        structured: Some(json!({"model": model, "labels": labels})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_answer_shapes_decode() {
        let a = LabelScore {
            label: "A".to_owned(),
            score: 0.5,
        };
        let labels = |text: &str| serde_json::from_str::<Flattened<LabelScore>>(text).map(|f| f.0);
        let nested = labels(r#"[[{"label": "A", "score": 0.5}], [{"label": "A", "score": 0.5}]]"#);
        assert_eq!(nested.unwrap(), [a.clone(), a.clone()]);
        let flat = labels(r#"[{"label": "A", "score": 0.5}]"#);
        assert_eq!(flat.unwrap(), [a]);
        assert!(labels("[]").unwrap().is_empty());
        assert!(labels(r#"{"error": "x"}"#).is_err());
        assert!(
            labels(r#"[{"label": "A", "score": 0.5}, [{"label": "A", "score": 0.5}]]"#).is_err()
        );
        let columns: ZeroShotAnswer =
            serde_json::from_value(json!({"sequence": "s", "labels": ["a"], "scores": [1.0]}))
                .unwrap();
        assert!(matches!(columns, ZeroShotAnswer::Columns { .. }));
        let flat: ZeroShotAnswer =
            serde_json::from_value(json!([{"label": "a", "score": 1.0}])).unwrap();
        assert!(matches!(flat, ZeroShotAnswer::Flat(_)));
    }
}
