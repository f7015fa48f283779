//! Hugging Face tools: chat through the Inference Providers router (OpenAI-compatible), the
//! hf-inference task APIs (embeddings, classification, zero-shot, summarization), embeddings from
//! a self-hosted Text Embeddings Inference server when one is configured, and model search on
//! the Hub.
//!
//! Every request goes through [`client::Client::send`], which adds the token, waits for models
//! that are still loading (within the tool's time limit) and turns HTTP failures into messages
//! the model can act on.

mod chat;
mod classify;
mod client;
mod embed;
mod hub;
mod summarize;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::tool::{Args, CallContext, Tool, ToolError, ToolOutput};
use client::Client;

/// `HF_TOKEN`: the Hub's own name for the access token (read first).
pub const HF_TOKEN: &str = "HF_TOKEN";
/// `HUGGINGFACE_API_KEY`: the name the seed system's manifests used.
pub const HUGGINGFACE_API_KEY: &str = "HUGGINGFACE_API_KEY";

/// Name of the chat tool.
pub const HF_CHAT: &str = "hf_chat";
/// Name of the embeddings tool.
pub const HF_EMBED: &str = "hf_embed";
/// Name of the text-classification tool.
pub const HF_CLASSIFY: &str = "hf_classify";
/// Name of the zero-shot classification tool.
pub const HF_ZERO_SHOT: &str = "hf_zero_shot";
/// Name of the summarization tool.
pub const HF_SUMMARIZE: &str = "hf_summarize";
/// Name of the Hub search tool.
pub const HF_MODEL_SEARCH: &str = "hf_model_search";

const SCHEMA_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// A Hub repository id: `name` or `owner/name`, each part up to 96 characters.
const MODEL_ID_PATTERN: &str =
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$";
/// The same, with the router's optional `:provider` or `:policy` suffix (`:fastest`).
const CHAT_MODEL_PATTERN: &str =
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?(:[a-z0-9-]{1,64})?$";

/// Settings of the Hugging Face tools.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Serve the tools; unset means "when a token is present".
    pub enabled: Option<bool>,
    /// OpenAI-compatible chat base: `POST {router_url}/chat/completions`.
    pub router_url: String,
    /// Task APIs: `POST {inference_url}/{model}`.
    pub inference_url: String,
    /// The Hub: `GET {hub_url}/api/models`.
    pub hub_url: String,
    /// A self-hosted Text Embeddings Inference server (`POST {embeddings_url}/embed`); when
    /// set, `hf_embed` uses it instead of `inference_url`.
    pub embeddings_url: Option<String>,
    /// Model of `hf_chat` when the call names none.
    pub chat_model: String,
    /// Model of `hf_embed` when the call names none (and the model a TEI server serves).
    pub embedding_model: String,
    /// Model of `hf_classify` when the call names none.
    pub classification_model: String,
    /// Model of `hf_zero_shot` when the call names none.
    pub zero_shot_model: String,
    /// Model of `hf_summarize` when the call names none.
    pub summarization_model: String,
    /// Longest a call may take, retries while a model loads included, in seconds.
    pub timeout_secs: f64,
    /// Longest input text a call may send, in characters (all inputs of a call together).
    pub max_input_chars: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: None,
            router_url: "https://router.huggingface.co/v1".to_owned(),
            inference_url: "https://router.huggingface.co/hf-inference/models".to_owned(),
            hub_url: "https://huggingface.co".to_owned(),
            embeddings_url: None,
            chat_model: "meta-llama/Llama-3.1-8B-Instruct".to_owned(),
            embedding_model: "sentence-transformers/all-MiniLM-L6-v2".to_owned(),
            classification_model: "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
                .to_owned(),
            zero_shot_model: "facebook/bart-large-mnli".to_owned(),
            summarization_model: "facebook/bart-large-cnn".to_owned(),
            timeout_secs: 60.0,
            max_input_chars: 100_000,
        }
    }
}

impl Settings {
    /// Checks URLs, model ids and limits; the error names the setting and what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let urls = [
            ("router_url", Some(&self.router_url)),
            ("inference_url", Some(&self.inference_url)),
            ("hub_url", Some(&self.hub_url)),
            ("embeddings_url", self.embeddings_url.as_ref()),
        ];
        for (name, url) in urls {
            let Some(url) = url else { continue };
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(format!("{name}={url:?}: not an http(s) URL")),
            }
        }
        let models = [
            ("chat_model", &self.chat_model, true),
            ("embedding_model", &self.embedding_model, false),
            ("classification_model", &self.classification_model, false),
            ("zero_shot_model", &self.zero_shot_model, false),
            ("summarization_model", &self.summarization_model, false),
        ];
        for (name, model, provider_suffix) in models {
            if !valid_model_id(model, provider_suffix) {
                return Err(format!("{name}={model:?}: not a Hub model id (owner/name)"));
            }
        }
        if seconds(self.timeout_secs).is_none() {
            return Err(format!(
                "timeout_secs={}: must be a positive number of seconds",
                self.timeout_secs
            ));
        }
        if self.max_input_chars == 0 {
            return Err("max_input_chars=0: must be at least 1".to_owned());
        }
        Ok(())
    }

    /// The tools' time limit (the default when the setting is unusable).
    fn timeout(&self) -> Duration {
        seconds(self.timeout_secs)
            .or_else(|| seconds(Self::default().timeout_secs))
            .unwrap_or_default()
    }
}

fn seconds(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
}

/// A Hugging Face access token. It never appears in `Debug` output, logs or error messages.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl Token {
    /// A token with this value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The token from [`HF_TOKEN`], else [`HUGGINGFACE_API_KEY`]; `None` when both are unset.
    pub fn from_env(env: &aixrun::Env) -> Option<Self> {
        env.first_of(&[HF_TOKEN, HUGGINGFACE_API_KEY])
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
            .map(Self::new)
    }

    /// The secret itself, for the `Authorization` header only.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// The Hugging Face tools: all six when enabled (explicitly, or by a token being present),
/// none otherwise. Without a token, `hf_model_search` and TEI embeddings still work; the other
/// tools answer with an error asking for one.
pub fn tools(settings: &Settings, token: Option<Token>) -> Vec<Tool> {
    if !settings.enabled.unwrap_or(token.is_some()) {
        return Vec::new();
    }
    let client = Arc::new(Client::new(settings.clone(), token));
    vec![
        chat::tool(&client),
        embed::tool(&client),
        classify::classify_tool(&client),
        classify::zero_shot_tool(&client),
        summarize::tool(&client),
        hub::tool(&client),
    ]
}

/// What every Hugging Face tool shares: title, annotations, time limit, and a handler that gets
/// the client.
struct Spec<'a> {
    name: &'a str,
    title: &'a str,
    description: &'a str,
    input_schema: Value,
    output_schema: Value,
}

impl Spec<'_> {
    fn build<F, Fut>(self, client: &Arc<Client>, run: F) -> Tool
    where
        F: Fn(Arc<Client>, Args, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
    {
        let timeout = client.settings.timeout();
        let shared = Arc::clone(client);
        Tool::new(
            self.name,
            self.description,
            self.input_schema,
            move |args, ctx| run(Arc::clone(&shared), args, ctx),
        )
        .title(self.title)
        .output_schema(self.output_schema)
        .annotations(json!({"readOnlyHint": true, "openWorldHint": true}))
        .timeout(timeout)
    }
}

/// An object schema (2020-12) that allows exactly `properties`.
fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": SCHEMA_2020_12,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

/// The `model` argument's schema.
fn model_property(default: &str) -> Value {
    json!({
        "type": "string",
        "pattern": MODEL_ID_PATTERN,
        "description": format!("Hub model id (owner/name). Default: {default}.")
    })
}

/// Decodes the arguments into the tool's own type (the registry has validated them already).
fn parse_args<T: DeserializeOwned>(args: Args) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(args))
        .map_err(|e| ToolError::new(format!("invalid arguments: {e}")))
}

/// The model to call: the one asked for, else the default; either must be a Hub id (with an
/// optional `:provider` suffix where `provider_suffix`), which also keeps it from reaching other
/// paths of the API when it is put into a URL.
fn pick_model(
    requested: Option<String>,
    default: &str,
    provider_suffix: bool,
) -> Result<String, ToolError> {
    let model = requested.unwrap_or_else(|| default.to_owned());
    if valid_model_id(&model, provider_suffix) {
        return Ok(model);
    }
    let form = if provider_suffix {
        "owner/name, optionally with :provider"
    } else {
        "owner/name"
    };
    Err(ToolError::new(format!(
        "{model:?} is not a Hugging Face model id: use {form}, e.g. {default}"
    )))
}

/// Checks `id` against [`MODEL_ID_PATTERN`] (or [`CHAT_MODEL_PATTERN`]) without a regex engine.
fn valid_model_id(id: &str, provider_suffix: bool) -> bool {
    let (repo, suffix) = match id.split_once(':') {
        Some((repo, suffix)) if provider_suffix => (repo, Some(suffix)),
        Some(_) => return false,
        None => (id, None),
    };
    let part_ok = |part: &str| {
        part.len() <= 96
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let suffix_ok = suffix.is_none_or(|s| {
        (1..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    let mut parts = repo.split('/');
    let owner_or_name = parts.next().is_some_and(part_ok);
    let rest: Vec<&str> = parts.collect();
    owner_or_name && rest.len() <= 1 && rest.iter().all(|p| part_ok(p)) && suffix_ok
}

/// Refuses inputs longer than `max_input_chars` before anything is sent.
fn check_input_size(settings: &Settings, chars: usize) -> Result<(), ToolError> {
    if chars > settings.max_input_chars {
        return Err(ToolError::new(format!(
            "the input is {chars} characters long; this server accepts at most {}: shorten or \
             split it",
            settings.max_input_chars
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_shows_in_debug() {
        let token = Token::new("hf_secret");
        assert_eq!(format!("{token:?}"), "Token(***)");
        let env = aixrun::Env::from_pairs([(HUGGINGFACE_API_KEY, "b"), (HF_TOKEN, "a")]);
        assert_eq!(Token::from_env(&env).unwrap().expose(), "a");
        let env = aixrun::Env::from_pairs([(HUGGINGFACE_API_KEY, "b")]);
        assert_eq!(Token::from_env(&env).unwrap().expose(), "b");
        assert!(Token::from_env(&aixrun::Env::from_pairs([(HF_TOKEN, " ")])).is_none());
    }

    #[test]
    fn model_ids() {
        for ok in ["gpt2", "facebook/bart-large-cnn", "BAAI/bge-small-en-v1.5"] {
            assert!(valid_model_id(ok, false), "{ok}");
        }
        assert!(valid_model_id(
            "meta-llama/Llama-3.1-8B-Instruct:fastest",
            true
        ));
        let bad = [
            "", "../admin", "a/../b", "a/b/c", "a b", "a/b:x", "/a", "a/", ".a/b",
        ];
        for id in bad {
            assert!(!valid_model_id(id, false), "{id}");
        }
        assert!(!valid_model_id("a/b:", true));
    }

    #[test]
    fn enabled_follows_the_token_unless_set() {
        let settings = Settings::default();
        assert!(tools(&settings, None).is_empty());
        assert_eq!(tools(&settings, Some(Token::new("t"))).len(), 6);
        let off = Settings {
            enabled: Some(false),
            ..Settings::default()
        };
        assert!(tools(&off, Some(Token::new("t"))).is_empty());
    }

    #[test]
    fn schemas_are_valid_and_patterns_agree() {
        use aixrun::schema::Schema;
        let tools = tools(&Settings::default(), Some(Token::new("t")));
        for tool in &tools {
            assert!(Schema::compile(&tool.input_schema).is_ok(), "{}", tool.name);
            let output = tool.output_schema.as_ref().unwrap();
            assert!(Schema::compile(output).is_ok(), "{}", tool.name);
        }
        let pattern = |p: &str| Schema::compile(&json!({"type": "string", "pattern": p}));
        let (plain, chat) = (
            pattern(MODEL_ID_PATTERN).unwrap(),
            pattern(CHAT_MODEL_PATTERN).unwrap(),
        );
        for id in ["gpt2", "a/b", "a/b:fastest", "../x", "a/b/c", "a/b:"] {
            let ok = |s: &Schema| s.validate(&json!(id)).is_ok();
            assert_eq!(ok(&plain), valid_model_id(id, false), "{id}");
            assert_eq!(ok(&chat), valid_model_id(id, true), "{id}");
        }
        assert!(Settings::default().validate().is_ok());
    }
}
