//! `hf_embed`: text embeddings, from the hf-inference feature-extraction API or a self-hosted
//! Text Embeddings Inference server (`POST /embed`).
//!
//! Sentence-embedding models answer one vector per input (a bare vector for a string input).
//! Models without a pooling layer answer one vector per token, sometimes inside an extra batch
//! level: those are mean-pooled into one vector per input, so callers always get one each.

use std::fmt;
use std::sync::Arc;

use reqwest::Method;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::client::{Auth, Client, Request};
use super::{
    HF_EMBED, Spec, check_input_size, model_property, object_schema, parse_args, pick_model,
};
use crate::tool::{Args, CallContext, Content, Tool, ToolError, ToolOutput};

const DESCRIPTION: &str = "Turn text into embedding vectors (feature extraction) with a \
sentence-embedding model on Hugging Face, for semantic search, clustering or similarity. \
`inputs` is one string or a list of up to 64; the answer has one vector per input.";

const MAX_INPUTS: usize = 64;

pub(super) fn tool(client: &Arc<Client>) -> Tool {
    let settings = &client.settings;
    let text = json!({"type": "string", "maxLength": settings.max_input_chars});
    let input_schema = object_schema(
        json!({
            "inputs": {
                "description": "The text to embed: one string, or a list of 1 to 64 strings.",
                "anyOf": [
                    text,
                    {"type": "array", "items": text, "minItems": 1, "maxItems": MAX_INPUTS}
                ]
            },
            "model": model_property(&settings.embedding_model)
        }),
        &["inputs"],
    );
    let output_schema = object_schema(
        json!({
            "model": {"type": "string", "description": "Model that answered."},
            "dimensions": {"type": "integer", "description": "Length of each vector."},
            "embeddings": {
                "type": "array",
                "description": "One vector per input, in input order.",
                "items": {"type": "array", "items": {"type": "number"}}
            }
        }),
        &["model", "dimensions", "embeddings"],
    );
    Spec {
        name: HF_EMBED,
        title: "Hugging Face embeddings",
        description: DESCRIPTION,
        input_schema,
        output_schema,
    }
    .build(client, run)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedArgs {
    inputs: Inputs,
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Inputs {
    One(String),
    Many(Vec<String>),
}

impl Inputs {
    fn texts(&self) -> &[String] {
        match self {
            Self::One(text) => std::slice::from_ref(text),
            Self::Many(texts) => texts,
        }
    }

    /// The inputs as the caller gave them: the answer's shape depends on it.
    fn to_value(&self) -> Value {
        match self {
            Self::One(text) => json!(text),
            Self::Many(texts) => json!(texts),
        }
    }
}

async fn run(client: Arc<Client>, args: Args, ctx: CallContext) -> Result<ToolOutput, ToolError> {
    let args: EmbedArgs = parse_args(args)?;
    let texts = args.inputs.texts();
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(ToolError::new(format!(
            "inputs must hold 1 to {MAX_INPUTS} strings; split larger batches into several calls"
        )));
    }
    check_input_size(
        &client.settings,
        texts.iter().map(|t| t.chars().count()).sum(),
    )?;
    let settings = &client.settings;
    let tei = settings.embeddings_url.as_deref();
    let model = match tei {
        // A TEI server serves the one model it was started with.
        Some(_)
            if args
                .model
                .as_ref()
                .is_some_and(|m| *m != settings.embedding_model) =>
        {
            return Err(ToolError::new(format!(
                "this server embeds with {} only: leave out `model`",
                settings.embedding_model
            )));
        }
        Some(_) => settings.embedding_model.clone(),
        None => pick_model(args.model, &settings.embedding_model, false)?,
    };
    let (url, body, auth) = match tei {
        // TEI takes a list (and answers one) even for one string, and needs no Hub token.
        Some(base) => (
            client.endpoint(base, "embed")?,
            json!({"inputs": texts}),
            Auth::IfPresent,
        ),
        None => (
            client.endpoint(&settings.inference_url, &model)?,
            json!({"inputs": args.inputs.to_value()}),
            Auth::Required,
        ),
    };
    let request = Request {
        method: Method::POST,
        url,
        body: Some(&body),
        model: Some(&model),
        auth,
    };
    let answer: Tensor = client.send(request, &ctx).await?;
    let single = tei.is_none() && matches!(args.inputs, Inputs::One(_));
    let vectors = vectors(answer, texts.len(), single).map_err(|problem| {
        ToolError::new(format!(
            "model {model} did not answer with embeddings ({problem}); pick a \
             feature-extraction model (hf_model_search with task feature-extraction)"
        ))
    })?;
    let dimensions = vectors.first().map_or(0, Vec::len);
    let summary = format!(
        "{} embedding{} of {dimensions} dimensions from {model}",
        vectors.len(),
        if vectors.len() == 1 { "" } else { "s" }
    );
    Ok(ToolOutput {
        content: vec![Content::text(summary)],
        structured: Some(json!({"model": model, "dimensions": dimensions, "embeddings": vectors})),
    })
}

/// An embeddings answer as it arrives: lists nested one to three deep around lists of numbers.
/// Decoded straight from the body, a vector takes 4 bytes a number (a `serde_json::Value` tree
/// takes 32 and more), and what is not a list is only named, for the message.
#[derive(Debug, PartialEq)]
enum Tensor {
    /// A list of numbers (empty lists too).
    Vector(Vec<f32>),
    /// A list of lists.
    Lists(Vec<Tensor>),
    /// Anything else: what it was.
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Tensor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TensorVisitor)
    }
}

struct TensorVisitor;

impl<'de> Visitor<'de> for TensorVisitor {
    type Value = Tensor;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of numbers or of lists")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tensor, A::Error> {
        // The first element says which kind of list this is.
        match seq.next_element::<First>()? {
            None => Ok(Tensor::Vector(Vec::new())),
            Some(First::Number(n)) => {
                let mut numbers = vec![n];
                while let Some(n) = seq.next_element::<f32>()? {
                    numbers.push(n);
                }
                Ok(Tensor::Vector(numbers))
            }
            Some(First::Tensor(t)) => {
                let mut lists = vec![t];
                while let Some(t) = seq.next_element::<Tensor>()? {
                    lists.push(t);
                }
                Ok(Tensor::Lists(lists))
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tensor, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Tensor::Other("an object"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Tensor, E> {
        Ok(Tensor::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Tensor, E> {
        Ok(Tensor::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Tensor, E> {
        Ok(Tensor::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Tensor, E> {
        Ok(Tensor::Other("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Tensor, E> {
        Ok(Tensor::Other("a string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Tensor, E> {
        Ok(Tensor::Other("null"))
    }
}

/// The first element of a list: a number (a vector follows) or anything else.
enum First {
    Number(f32),
    Tensor(Tensor),
}

impl<'de> Deserialize<'de> for First {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstVisitor;
        impl<'de> Visitor<'de> for FirstVisitor {
            type Value = First;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a list")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<First, E> {
                Ok(First::Number(n as f32))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<First, E> {
                Ok(First::Number(n as f32))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<First, E> {
                // Embeddings are f32 in every Hugging Face server; f64 would only double the size.
                Ok(First::Number(n as f32))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<First, A::Error> {
                TensorVisitor.visit_seq(seq).map(First::Tensor)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<First, A::Error> {
                TensorVisitor.visit_map(map).map(First::Tensor)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<First, E> {
                TensorVisitor.visit_bool(v).map(First::Tensor)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<First, E> {
                TensorVisitor.visit_str(v).map(First::Tensor)
            }
            fn visit_unit<E: de::Error>(self) -> Result<First, E> {
                TensorVisitor.visit_unit().map(First::Tensor)
            }
        }
        deserializer.deserialize_any(FirstVisitor)
    }
}

impl Tensor {
    fn kind(&self) -> &'static str {
        match self {
            Self::Vector(_) | Self::Lists(_) => "a list",
            Self::Other(kind) => kind,
        }
    }
}

/// One vector per input from the answer: `single` means the answer covers one string input
/// and is not wrapped in a list of inputs.
fn vectors(answer: Tensor, count: usize, single: bool) -> Result<Vec<Vec<f32>>, String> {
    let items = match answer {
        _ if single => vec![answer],
        Tensor::Lists(items) if items.len() == count => items,
        Tensor::Lists(items) => {
            return Err(format!("{} vectors for {count} inputs", items.len()));
        }
        Tensor::Vector(_) => {
            return Err(format!("one vector for {count} inputs"));
        }
        other => return Err(format!("expected a list, got {}", other.kind())),
    };
    let vectors = items.into_iter().map(pool).collect::<Result<Vec<_>, _>>()?;
    same_length(&vectors)?;
    Ok(vectors)
}

/// A vector as is, or the mean of the vectors inside a nested list (token-level output).
fn pool(value: Tensor) -> Result<Vec<f32>, String> {
    let rows = match value {
        Tensor::Vector(numbers) if numbers.is_empty() => return Err("an empty vector".to_owned()),
        Tensor::Vector(numbers) => return Ok(numbers),
        Tensor::Lists(rows) => rows,
        other => return Err(format!("expected a list of numbers, got {}", other.kind())),
    };
    let rows = rows.into_iter().map(pool).collect::<Result<Vec<_>, _>>()?;
    let width = same_length(&rows)?;
    let mut mean = vec![0.0_f32; width];
    for row in &rows {
        for (sum, x) in mean.iter_mut().zip(row) {
            *sum += x;
        }
    }
    let n = rows.len() as f32;
    Ok(mean.into_iter().map(|sum| sum / n).collect())
}

/// The common length of `vectors`, or an error when they differ.
fn same_length(vectors: &[Vec<f32>]) -> Result<usize, String> {
    let width = vectors.first().map_or(0, Vec::len);
    match vectors.iter().find(|v| v.len() != width) {
        Some(other) => Err(format!("vectors of {width} and {} dimensions", other.len())),
        None => Ok(width),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer as the client decodes it from the body.
    fn t(value: Value) -> Tensor {
        Tensor::deserialize(value).unwrap()
    }

    #[test]
    fn decoding_keeps_vectors_flat_and_names_the_rest() {
        assert_eq!(t(json!([1, 2.5])), Tensor::Vector(vec![1.0, 2.5]));
        assert_eq!(
            t(json!([[1], []])),
            Tensor::Lists(vec![Tensor::Vector(vec![1.0]), Tensor::Vector(vec![])])
        );
        assert_eq!(t(json!({"error": "x"})), Tensor::Other("an object"));
        assert_eq!(
            t(json!([[1], 2])),
            Tensor::Lists(vec![Tensor::Vector(vec![1.0]), Tensor::Other("a number")])
        );
        // A vector that goes on with something else is no vector at all.
        assert!(serde_json::from_str::<Tensor>("[1, [2]]").is_err());
    }

    #[test]
    fn shapes() {
        assert_eq!(vectors(t(json!([1, 2])), 1, true).unwrap(), [[1.0, 2.0]]);
        assert_eq!(
            vectors(t(json!([[1, 2], [3, 4]])), 2, false).unwrap(),
            [[1.0, 2.0], [3.0, 4.0]]
        );
        // Token level for one string: tokens x dims, or 1 x tokens x dims.
        assert_eq!(
            vectors(t(json!([[1, 2], [3, 4]])), 1, true).unwrap(),
            [[2.0, 3.0]]
        );
        assert_eq!(
            vectors(t(json!([[[1, 2], [3, 4]]])), 1, true).unwrap(),
            [[2.0, 3.0]]
        );
        // Token level for a batch: inputs x tokens x dims.
        let batch = json!([[[1, 1], [3, 3]], [[0, 2]]]);
        assert_eq!(
            vectors(t(batch), 2, false).unwrap(),
            [[2.0, 2.0], [0.0, 2.0]]
        );
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(
            vectors(t(json!([[1, 2]])), 2, false)
                .unwrap_err()
                .contains("1 vectors for 2")
        );
        assert!(vectors(t(json!([[1, 2], [3]])), 2, false).is_err());
        assert!(vectors(t(json!({"error": "x"})), 1, true).is_err());
        assert!(vectors(t(json!([])), 1, true).is_err());
        assert!(vectors(t(json!([["a"]])), 1, false).is_err());
        assert!(vectors(t(json!([1, 2])), 2, false).is_err());
    }
}
