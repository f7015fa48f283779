//! The Hugging Face tools against a loopback fake of the router, the hf-inference task API,
//! the Hub and a Text Embeddings Inference server.

mod fakes;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fakes::{Fake, HUGE_BYTES, call, find, huge, json, schema_accepts, text};
use mcp_tool::tool::{CallContext, ToolError, ToolOutput};
use mcp_tool::tools::huggingface::{Settings, Token, tools};
use serde_json::{Value, json};
use std::collections::HashMap;

const TOKEN: &str = "hf_fake_0123456789abcdef";
const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";
const TOKEN_LEVEL: &str = "google-bert/bert-base-uncased";
const SST2: &str = "distilbert/distilbert-base-uncased-finetuned-sst-2-english";
const FLAT_CLASSIFIER: &str = "cardiffnlp/twitter-roberta-base-sentiment-latest";
const MNLI: &str = "facebook/bart-large-mnli";
const FLAT_ZERO_SHOT: &str = "MoritzLaurer/deberta-v3-large-zeroshot-v2.0";
const BART_CNN: &str = "facebook/bart-large-cnn";
const LOADS_ONCE: &str = "cold/loads-once";
const LOADS_FOREVER: &str = "cold/loads-forever";
const BUSY: &str = "busy/rate-limited";
const NLPTOWN: &str = "nlptown/bert-base-multilingual-uncased-sentiment";

#[derive(Default)]
struct FakeState {
    /// Calls of `LOADS_ONCE` so far: the first one finds it loading.
    cold_calls: AtomicUsize,
}

type Shared = State<Arc<FakeState>>;

/// Reproduces, from Hugging Face's documentation (Inference Providers, the hf-inference task
/// specs, TGI, TEI and the Hub API):
/// - `POST /v1/chat/completions` (router, OpenAI-compatible): Bearer token required, body needs
///   `model` and non-empty `messages` of `{role, content}`; answers `chat.completion` objects;
///   validation errors are 422 `{"error", "error_type": "validation"}` as TGI sends them.
/// - `POST /hf-inference/models/{model}`: Bearer token required, body `{"inputs", "parameters"?}`;
///   answers per task in the documented shapes (both the current and the older ones);
///   503 `{"error": "Model X is currently loading", "estimated_time"}` while loading;
///   429 with `Retry-After`; 404 `{"error": "Model X does not exist"}`; missing parameters are
///   400 with a list of messages.
/// - `GET /api/models?search&limit&sort&direction&pipeline_tag` (Hub): token optional but must
///   be valid when sent; answers a list of `{_id, id, modelId, pipeline_tag, downloads, likes,
///   tags, ...}`.
/// - `POST /embed` (TEI): no auth, `{"inputs": string | [strings]}` → `[[f32]]`.
///
/// Any request with a wrong token gets 401 `{"error": "Invalid credentials in Authorization
/// header"}`.
fn hugging_face() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/hf-inference/models/{*model}", post(task))
        .route("/api/models", get(search))
        .route("/embed", post(tei_embed))
        .with_state(Arc::new(FakeState::default()))
}

/// An error answer in the services' JSON format (`{"error": ...}`).
struct Failure(u16, Value);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        json(self.0, self.1)
    }
}

type Answer = Result<Response, Failure>;

fn error(status: u16, message: impl Into<Value>) -> Failure {
    Failure(status, json!({"error": message.into()}))
}

/// TGI's validation error.
fn invalid(message: &str) -> Failure {
    Failure(
        422,
        json!({"error": format!("Input validation error: {message}"), "error_type": "validation"}),
    )
}

/// 401 unless the request carries `Bearer TOKEN`; where the token is optional, a request
/// without one passes too.
fn check_token(headers: &HeaderMap, required: bool) -> Result<(), Failure> {
    match headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some(value) if value == format!("Bearer {TOKEN}") => Ok(()),
        None if !required => Ok(()),
        _ => Err(error(401, "Invalid credentials in Authorization header")),
    }
}

/// The body as JSON, refusing what the real services refuse.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Failure> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return Err(error(
            415,
            "Expected request with `Content-Type: application/json`",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        error(
            400,
            format!("Failed to parse the request body as JSON: {e}"),
        )
    })
}

async fn chat(headers: HeaderMap, body: Bytes) -> Answer {
    check_token(&headers, true)?;
    let body = json_body(&headers, &body)?;
    let Some(model) = body["model"].as_str().filter(|m| !m.is_empty()) else {
        return Err(invalid("`model` is required"));
    };
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err(invalid("`messages` must be a non-empty array"));
    };
    let well_formed = messages.iter().all(|m| {
        matches!(
            m["role"].as_str(),
            Some("system" | "user" | "assistant" | "tool")
        ) && m["content"].is_string()
    });
    if !well_formed {
        return Err(invalid(
            "each message needs a role (system, user, assistant, tool) and content",
        ));
    }
    if body["stream"] == json!(true) {
        return Err(invalid("this fake does not stream"));
    }
    if body["max_tokens"].as_u64() == Some(0) {
        return Err(invalid("`max_tokens` must be strictly positive"));
    }
    let last = messages.last().unwrap()["content"].as_str().unwrap();
    Ok(json(
        200,
        json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_750_000_000,
            "model": model.to_lowercase(),
            "choices": [{
                "index": 0, "logprobs": null, "finish_reason": "stop",
                "message": {"role": "assistant", "content": format!("You said: {last}")}
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        }),
    ))
}

async fn task(
    State(state): Shared,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    check_token(&headers, true)?;
    let body = json_body(&headers, &body)?;
    let (inputs, parameters) = (&body["inputs"], &body["parameters"]);
    if inputs.is_null() {
        return Err(error(400, json!(["Error in `inputs`: field required"])));
    }
    let loading = |estimate: f64| {
        Failure(
            503,
            json!({"error": format!("Model {model} is currently loading"), "estimated_time": estimate}),
        )
    };
    let answer = match model.as_str() {
        MINILM => sentence_embeddings(inputs),
        TOKEN_LEVEL => token_embeddings(inputs),
        SST2 => json!([sentiment(inputs, parameters)]),
        FLAT_CLASSIFIER => Value::Array(sentiment(inputs, parameters)),
        MNLI | FLAT_ZERO_SHOT => zero_shot(&model, inputs, parameters)?,
        BART_CNN => {
            let first = inputs
                .as_str()
                .unwrap_or("")
                .split(". ")
                .next()
                .unwrap_or("");
            json!([{"summary_text": format!("{first}.")}])
        }
        LOADS_ONCE if state.cold_calls.fetch_add(1, Ordering::SeqCst) == 0 => {
            return Err(loading(0.2));
        }
        LOADS_ONCE => json!([[{"label": "POSITIVE", "score": 0.99}]]),
        LOADS_FOREVER => return Err(loading(20.0)),
        BUSY => {
            let limited = error(
                429,
                "Rate limit reached. You reached free usage limit (reset hourly). Please subscribe to a plan at https://huggingface.co/pricing to use the API at this rate",
            );
            return Ok(([(header::RETRY_AFTER, "7")], limited).into_response());
        }
        other => return Err(error(404, format!("Model {other} does not exist"))),
    };
    Ok(json(200, answer))
}

/// A vector per text from its length: 1-D for a string, 2-D for a list (sentence-transformers).
fn sentence_embeddings(inputs: &Value) -> Value {
    let vector = |t: &Value| {
        let n = t.as_str().unwrap_or("").len() as f64;
        json!([n, 0.5, -0.5, 1.0])
    };
    match inputs {
        Value::Array(texts) => texts.iter().map(vector).collect(),
        one => vector(one),
    }
}

/// One vector `[i, 1, 2]` per word i: 1 x tokens x 3 for a string, n x tokens x 3 for a list
/// (a model without pooling through the feature-extraction pipeline).
fn token_embeddings(inputs: &Value) -> Value {
    let tokens = |t: &Value| -> Value {
        let words = t.as_str().unwrap_or("").split_whitespace().count();
        (0..words).map(|i| json!([i as f64, 1.0, 2.0])).collect()
    };
    match inputs {
        Value::Array(texts) => texts.iter().map(tokens).collect(),
        one => json!([tokens(one)]),
    }
}

/// Unsorted on purpose: the tool must sort. Honours `parameters.top_k` like the real API.
fn sentiment(inputs: &Value, parameters: &Value) -> Vec<Value> {
    let positive = if inputs.as_str().unwrap_or("").contains("love") {
        0.98
    } else {
        0.1
    };
    let mut labels = vec![
        json!({"label": "NEGATIVE", "score": 1.0 - positive}),
        json!({"label": "POSITIVE", "score": positive}),
    ];
    if let Some(k) = parameters["top_k"].as_u64() {
        let score = |v: &Value| v["score"].as_f64().unwrap();
        labels.sort_by(|a, b| score(b).total_cmp(&score(a)));
        labels.truncate(k as usize);
    }
    labels
}

/// Later candidates score higher (scores sum to 1 unless multi_label), so sorting shows.
/// `MNLI` answers in the pipeline's columns, the other model as a list of pairs.
fn zero_shot(model: &str, inputs: &Value, parameters: &Value) -> Result<Value, Failure> {
    let Some(labels) = parameters["candidate_labels"]
        .as_array()
        .filter(|l| !l.is_empty())
    else {
        return Err(error(
            400,
            json!(["Error in `parameters.candidate_labels`: field required"]),
        ));
    };
    let multi = parameters["multi_label"].as_bool().unwrap_or(false);
    let total: f64 = (1..=labels.len()).sum::<usize>() as f64;
    let scores: Vec<f64> = (1..=labels.len())
        .map(|i| if multi { 0.9 } else { i as f64 / total })
        .collect();
    if model == MNLI {
        return Ok(json!({"sequence": inputs, "labels": labels, "scores": scores}));
    }
    Ok(labels
        .iter()
        .zip(&scores)
        .map(|(l, s)| json!({"label": l, "score": s}))
        .collect())
}

async fn search(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Answer {
    check_token(&headers, false)?;
    let limit = q
        .get("limit")
        .map_or(Ok(1000), |l| l.parse::<usize>())
        .map_err(|_| error(400, "\"limit\" must be a number"))?;
    let sort = q.get("sort").map_or("downloads", String::as_str);
    if ![
        "downloads",
        "likes",
        "lastModified",
        "trendingScore",
        "createdAt",
    ]
    .contains(&sort)
    {
        return Err(error(400, format!("Invalid sort parameter: {sort}")));
    }
    if q.get("direction").is_some_and(|d| d != "-1" && d != "1") {
        return Err(error(400, "\"direction\" must be 1 or -1"));
    }
    let model = |id: &str, task: &str, downloads: u64, likes: u64| {
        json!({
            "_id": "65f0c0ffee", "id": id, "modelId": id, "likes": likes, "downloads": downloads,
            "trendingScore": 3, "private": false, "pipeline_tag": task, "library_name": "transformers",
            "tags": ["transformers", "pytorch", task], "createdAt": "2022-03-02T23:29:04.000Z"
        })
    };
    let mut models = vec![
        model(SST2, "text-classification", 3_000_000, 800),
        model(FLAT_CLASSIFIER, "text-classification", 2_000_000, 900),
        model(NLPTOWN, "text-classification", 1_000_000, 400),
        model("some/sentiment-summarizer", "summarization", 10, 1),
    ];
    let search = q
        .get("search")
        .map(|s| s.to_lowercase())
        .unwrap_or_default();
    // The Hub matches `search` against model ids only.
    models.retain(|m| m["id"].as_str().unwrap().to_lowercase().contains(&search));
    if let Some(task) = q.get("pipeline_tag") {
        models.retain(|m| m["pipeline_tag"] == task.as_str());
    }
    models.sort_by_key(|m| std::cmp::Reverse(m[sort].as_u64().unwrap_or(0)));
    models.truncate(limit);
    Ok(json(200, Value::Array(models)))
}

async fn tei_embed(headers: HeaderMap, body: Bytes) -> Answer {
    let body = json_body(&headers, &body)?;
    let count = match &body["inputs"] {
        Value::String(_) => 1,
        Value::Array(texts) if texts.iter().all(Value::is_string) => texts.len(),
        _ => return Err(invalid("`inputs` must be a string or a list of strings")),
    };
    Ok(json(200, vec![json!([0.25, 0.5, 0.75]); count].into()))
}

fn settings(base: &str) -> Settings {
    Settings {
        router_url: format!("{base}/v1"),
        inference_url: format!("{base}/hf-inference/models"),
        hub_url: base.to_owned(),
        ..Settings::default()
    }
}

/// The tools with the right token, pointed at `fake`.
fn hf(fake: &Fake) -> Vec<mcp_tool::tool::Tool> {
    tools(&settings(&fake.url), Some(Token::new(TOKEN)))
}

async fn run(fake: &Fake, name: &str, args: Value) -> Result<ToolOutput, ToolError> {
    call(&hf(fake), name, args).await
}

fn structured(out: &ToolOutput) -> &Value {
    out.structured.as_ref().expect("structured result")
}

#[tokio::test]
async fn chat_with_a_prompt() {
    let fake = Fake::start(hugging_face()).await;
    let out = run(&fake, "hf_chat", json!({"prompt": "Hello"}))
        .await
        .unwrap();
    assert_eq!(text(&out), "You said: Hello");
    let s = structured(&out);
    assert_eq!(s["model"], "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(s["finish_reason"], "stop");
    assert_eq!(s["usage"]["total_tokens"], 17);

    let [request] = fake.received().try_into().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        request.body.unwrap(),
        json!({
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "messages": [{"role": "user", "content": "Hello"}],
            "max_tokens": 512,
            "stream": false
        })
    );
}

#[tokio::test]
async fn chat_with_messages_system_and_options() {
    let fake = Fake::start(hugging_face()).await;
    let args = json!({
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Capital of France?"}
        ],
        "system": "Answer briefly.",
        "model": "Qwen/Qwen2.5-7B-Instruct:fastest",
        "max_tokens": 64,
        "temperature": 0.2
    });
    let out = run(&fake, "hf_chat", args).await.unwrap();
    assert_eq!(text(&out), "You said: Capital of France?");
    assert_eq!(
        structured(&out)["model"],
        "Qwen/Qwen2.5-7B-Instruct:fastest"
    );
    let body = fake.received()[0].body.clone().unwrap();
    assert_eq!(body["model"], "Qwen/Qwen2.5-7B-Instruct:fastest");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Answer briefly."})
    );
    assert_eq!(body["messages"].as_array().unwrap().len(), 4);
    assert_eq!(
        (body["max_tokens"].clone(), body["temperature"].clone()),
        (json!(64), json!(0.2))
    );
}

#[tokio::test]
async fn chat_needs_exactly_one_of_prompt_and_messages() {
    let fake = Fake::start(hugging_face()).await;
    let both = json!({"prompt": "a", "messages": [{"role": "user", "content": "b"}]});
    let err = run(&fake, "hf_chat", both).await.unwrap_err();
    assert!(err.0.contains("not both"), "{err}");
    let err = run(&fake, "hf_chat", json!({"system": "x"}))
        .await
        .unwrap_err();
    assert!(err.0.contains("give `prompt`"), "{err}");
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn embeds_a_string_and_a_list() {
    let fake = Fake::start(hugging_face()).await;
    let out = run(&fake, "hf_embed", json!({"inputs": "hello"}))
        .await
        .unwrap();
    assert_eq!(
        structured(&out)["embeddings"],
        json!([[5.0, 0.5, -0.5, 1.0]])
    );
    assert_eq!(structured(&out)["dimensions"], 4);
    assert_eq!(
        text(&out),
        format!("1 embedding of 4 dimensions from {MINILM}")
    );

    let out = run(&fake, "hf_embed", json!({"inputs": ["a", "bb"]}))
        .await
        .unwrap();
    assert_eq!(
        structured(&out)["embeddings"],
        json!([[1.0, 0.5, -0.5, 1.0], [2.0, 0.5, -0.5, 1.0]])
    );
    assert_eq!(
        text(&out),
        format!("2 embeddings of 4 dimensions from {MINILM}")
    );

    let requests = fake.received();
    assert_eq!(requests[0].path, format!("/hf-inference/models/{MINILM}"));
    assert_eq!(requests[0].body, Some(json!({"inputs": "hello"})));
    assert_eq!(requests[1].body, Some(json!({"inputs": ["a", "bb"]})));
}

#[tokio::test]
async fn token_level_embeddings_are_mean_pooled() {
    let fake = Fake::start(hugging_face()).await;
    let args = json!({"inputs": ["one two three", "solo"], "model": TOKEN_LEVEL});
    let out = run(&fake, "hf_embed", args).await.unwrap();
    // Words i = 0..n give [i, 1, 2]: the mean of i is (n - 1) / 2.
    assert_eq!(
        structured(&out)["embeddings"],
        json!([[1.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    );
    let args = json!({"inputs": "a b", "model": TOKEN_LEVEL});
    let out = run(&fake, "hf_embed", args).await.unwrap();
    assert_eq!(structured(&out)["embeddings"], json!([[0.5, 1.0, 2.0]]));
}

#[tokio::test]
async fn embeddings_from_a_self_hosted_tei() {
    let fake = Fake::start(hugging_face()).await;
    let settings = Settings {
        embeddings_url: Some(fake.url.clone()),
        enabled: Some(true),
        ..settings(&fake.url)
    };
    // TEI needs no token.
    let all = tools(&settings, None);
    let out = call(&all, "hf_embed", json!({"inputs": "hello"}))
        .await
        .unwrap();
    assert_eq!(structured(&out)["embeddings"], json!([[0.25, 0.5, 0.75]]));
    let [request] = fake.received().try_into().unwrap();
    assert_eq!(request.path, "/embed");
    assert_eq!(request.body, Some(json!({"inputs": ["hello"]})));
    assert_eq!(request.authorization, None);
    let err = call(
        &all,
        "hf_embed",
        json!({"inputs": "x", "model": "other/model"}),
    )
    .await
    .unwrap_err();
    assert!(err.0.contains("leave out `model`"), "{err}");
}

#[tokio::test]
async fn classify_accepts_both_answer_shapes() {
    let fake = Fake::start(hugging_face()).await;
    let out = run(&fake, "hf_classify", json!({"text": "I love it"}))
        .await
        .unwrap();
    assert_eq!(
        structured(&out)["labels"],
        json!([{"label": "POSITIVE", "score": 0.98}, {"label": "NEGATIVE", "score": 1.0 - 0.98}])
    );
    assert!(text(&out).starts_with("POSITIVE 0.980"), "{}", text(&out));

    let args = json!({"text": "meh", "model": FLAT_CLASSIFIER, "top_k": 1});
    let out = run(&fake, "hf_classify", args).await.unwrap();
    assert_eq!(
        structured(&out)["labels"],
        json!([{"label": "NEGATIVE", "score": 0.9}])
    );
    assert_eq!(structured(&out)["model"], FLAT_CLASSIFIER);
    let body = fake.received()[1].body.clone().unwrap();
    assert_eq!(body, json!({"inputs": "meh", "parameters": {"top_k": 1}}));
}

#[tokio::test]
async fn zero_shot_accepts_both_answer_shapes() {
    let fake = Fake::start(hugging_face()).await;
    let labels = json!(["billing", "bug", "praise"]);
    let out = run(
        &fake,
        "hf_zero_shot",
        json!({"text": "It crashes", "labels": labels}),
    )
    .await
    .unwrap();
    let got = &structured(&out)["labels"];
    assert_eq!(got[0]["label"], "praise");
    assert_eq!(got[2]["label"], "billing");
    assert_eq!(structured(&out)["model"], MNLI);

    let args =
        json!({"text": "x", "labels": ["a", "b"], "multi_label": true, "model": FLAT_ZERO_SHOT});
    let out = run(&fake, "hf_zero_shot", args).await.unwrap();
    assert_eq!(structured(&out)["labels"].as_array().unwrap().len(), 2);
    let requests = fake.received();
    assert_eq!(
        requests[0].body,
        Some(
            json!({"inputs": "It crashes", "parameters": {"candidate_labels": labels, "multi_label": false}})
        )
    );
    assert_eq!(
        requests[1].body.as_ref().unwrap()["parameters"]["multi_label"],
        true
    );
}

#[tokio::test]
async fn summarizes_with_length_limits() {
    let fake = Fake::start(hugging_face()).await;
    let args =
        json!({"text": "First point. Second point. Third.", "max_length": 60, "min_length": 5});
    let out = run(&fake, "hf_summarize", args).await.unwrap();
    assert_eq!(text(&out), "First point.");
    assert_eq!(
        structured(&out),
        &json!({"model": BART_CNN, "summary": "First point."})
    );
    let [request] = fake.received().try_into().unwrap();
    assert_eq!(request.path, format!("/hf-inference/models/{BART_CNN}"));
    assert_eq!(
        request.body.unwrap()["parameters"],
        json!({"max_length": 60, "min_length": 5})
    );

    let args = json!({"text": "x", "max_length": 5, "min_length": 10});
    let err = run(&fake, "hf_summarize", args).await.unwrap_err();
    assert!(
        err.0
            .contains("min_length (10) is larger than max_length (5)"),
        "{err}"
    );
}

#[tokio::test]
async fn searches_the_hub_without_a_token() {
    let fake = Fake::start(hugging_face()).await;
    let settings = Settings {
        enabled: Some(true),
        ..settings(&fake.url)
    };
    let all = tools(&settings, None);
    let args =
        json!({"query": "sentiment", "task": "text-classification", "sort": "likes", "limit": 2});
    let out = call(&all, "hf_model_search", args).await.unwrap();
    assert_eq!(
        structured(&out)["models"],
        json!([
            {"id": FLAT_CLASSIFIER, "task": "text-classification", "downloads": 2_000_000, "likes": 900},
            {"id": NLPTOWN, "task": "text-classification", "downloads": 1_000_000, "likes": 400}
        ])
    );
    assert!(
        text(&out).contains(&format!("1. {FLAT_CLASSIFIER} (text-classification")),
        "{}",
        text(&out)
    );
    let [request] = fake.received().try_into().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/api/models")
    );
    let expected = [
        ("search", "sentiment"),
        ("limit", "2"),
        ("sort", "likes"),
        ("direction", "-1"),
        ("pipeline_tag", "text-classification"),
    ];
    for (key, value) in expected {
        assert_eq!(
            request.query.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    assert_eq!(request.authorization, None);

    let out = call(&all, "hf_model_search", json!({"query": "zzz-nothing"}))
        .await
        .unwrap();
    assert_eq!(structured(&out)["models"], json!([]));
    assert!(text(&out).starts_with("No models"));
}

#[tokio::test]
async fn waits_for_a_loading_model_then_answers() {
    let fake = Fake::start(hugging_face()).await;
    let out = run(
        &fake,
        "hf_classify",
        json!({"text": "hi", "model": LOADS_ONCE}),
    )
    .await
    .unwrap();
    assert_eq!(structured(&out)["labels"][0]["label"], "POSITIVE");
    assert_eq!(fake.received().len(), 2, "asked again after the 503");
}

#[tokio::test]
async fn a_model_that_keeps_loading_ends_within_the_time_limit() {
    let fake = Fake::start(hugging_face()).await;
    let settings = Settings {
        timeout_secs: 1.0,
        ..settings(&fake.url)
    };
    let all = tools(&settings, Some(Token::new(TOKEN)));
    let err = call(
        &all,
        "hf_classify",
        json!({"text": "hi", "model": LOADS_FOREVER}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.0,
        format!("model {LOADS_FOREVER} is still loading on Hugging Face; try again in about 20 s")
    );
    assert!(
        fake.received().len() >= 2,
        "retried while the budget allowed"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_a_timeout_result() {
    let slow = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "[]"
    });
    let fake = Fake::start(slow).await;
    let settings = Settings {
        timeout_secs: 1.0,
        ..settings(&fake.url)
    };
    let all = tools(&settings, Some(Token::new(TOKEN)));
    let err = call(&all, "hf_classify", json!({"text": "hi"}))
        .await
        .unwrap_err();
    assert_eq!(
        err.0,
        "Hugging Face did not answer within 1 s: try again, or use a smaller model or a shorter \
         input"
    );
}

/// An upstream that answers 300 MiB (a runaway server, or a proxy's endless stream): the
/// tools stop reading at their cap.
#[tokio::test]
async fn a_huge_answer_is_cut_off_at_the_cap() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let runaway = Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move { huge(counter) }
    });
    let fake = Fake::start(runaway).await;
    for (name, args) in [
        ("hf_embed", json!({"inputs": ["a", "b"]})),
        ("hf_model_search", json!({"query": "bert"})),
    ] {
        let err = run(&fake, name, args).await.unwrap_err();
        assert_eq!(
            err.0,
            "the answer from Hugging Face is larger than 32 MiB: send fewer or shorter inputs",
            "{name}"
        );
    }
    assert!(
        sent.load(Ordering::SeqCst) < HUGE_BYTES / 2,
        "the fake stopped being read"
    );
}

#[tokio::test]
async fn a_rejected_token_is_named_but_never_shown() {
    let fake = Fake::start(hugging_face()).await;
    let wrong = "hf_wrong_token_do_not_print";
    let all = tools(&settings(&fake.url), Some(Token::new(wrong)));
    for (name, args) in [
        ("hf_chat", json!({"prompt": "hi"})),
        ("hf_embed", json!({"inputs": "hi"})),
    ] {
        let err = call(&all, name, args).await.unwrap_err();
        assert!(
            err.0.contains("rejected the access token") && err.0.contains("HF_TOKEN"),
            "{err}"
        );
        assert!(!err.0.contains(wrong), "{err}");
    }
    assert!(!format!("{:?}", Token::new(wrong)).contains(wrong));
}

#[tokio::test]
async fn unknown_model_is_reported_as_not_found() {
    let fake = Fake::start(hugging_face()).await;
    let args = json!({"text": "hi", "model": "nobody/nothing"});
    let err = run(&fake, "hf_classify", args).await.unwrap_err();
    assert_eq!(
        err.0,
        "model nobody/nothing not found on Hugging Face (check the model id)"
    );
}

#[tokio::test]
async fn rate_limits_pass_on_retry_after() {
    let fake = Fake::start(hugging_face()).await;
    let err = run(&fake, "hf_summarize", json!({"text": "hi", "model": BUSY}))
        .await
        .unwrap_err();
    assert_eq!(err.0, "rate limited by Hugging Face; retry after 7 s");
}

#[tokio::test]
async fn a_missing_token_is_a_clear_error_and_nothing_is_sent() {
    let fake = Fake::start(hugging_face()).await;
    assert!(
        tools(&settings(&fake.url), None).is_empty(),
        "off without a token unless enabled"
    );
    let settings = Settings {
        enabled: Some(true),
        ..settings(&fake.url)
    };
    let all = tools(&settings, None);
    assert_eq!(all.len(), 6);
    for (name, args) in [
        ("hf_chat", json!({"prompt": "hi"})),
        ("hf_embed", json!({"inputs": "hi"})),
        ("hf_classify", json!({"text": "hi"})),
        ("hf_zero_shot", json!({"text": "hi", "labels": ["a"]})),
        ("hf_summarize", json!({"text": "hi"})),
    ] {
        let err = call(&all, name, args).await.unwrap_err();
        assert_eq!(
            err.0,
            "Hugging Face token missing: set HF_TOKEN or HUGGINGFACE_API_KEY on the server"
        );
    }
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn oversized_inputs_and_bad_model_ids_are_refused_locally() {
    let fake = Fake::start(hugging_face()).await;
    let settings = Settings {
        max_input_chars: 10,
        ..settings(&fake.url)
    };
    let all = tools(&settings, Some(Token::new(TOKEN)));
    let err = call(&all, "hf_embed", json!({"inputs": ["123456", "789012"]}))
        .await
        .unwrap_err();
    assert!(
        err.0.contains("12 characters") && err.0.contains("at most 10"),
        "{err}"
    );

    // The schema refuses ids that could reach other API paths; so does the handler without it.
    let classify = find(&all, "hf_classify");
    let sneaky = json!({"text": "hi", "model": "../../api/whoami-v2"});
    assert!(!schema_accepts(classify, &sneaky));
    let Value::Object(args) = sneaky else {
        unreachable!()
    };
    let err = (classify.handler)(args, CallContext::default())
        .await
        .unwrap_err();
    assert!(err.0.contains("is not a Hugging Face model id"), "{err}");
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn every_tool_is_read_only_titled_and_strict() {
    let all = tools(&Settings::default(), Some(Token::new(TOKEN)));
    let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "hf_chat",
            "hf_embed",
            "hf_classify",
            "hf_zero_shot",
            "hf_summarize",
            "hf_model_search"
        ]
    );
    for tool in &all {
        assert!(tool.title.is_some(), "{}", tool.name);
        assert_eq!(
            tool.annotations,
            Some(json!({"readOnlyHint": true, "openWorldHint": true}))
        );
        assert_eq!(tool.timeout, Duration::from_secs(60));
        assert_eq!(tool.input_schema["additionalProperties"], false);
        for (property, schema) in tool.input_schema["properties"].as_object().unwrap() {
            assert!(
                schema["description"].is_string(),
                "{}.{property}",
                tool.name
            );
        }
    }
    assert!(!schema_accepts(
        find(&all, "hf_chat"),
        &json!({"prompt": "x", "max_tokens": 9000})
    ));
    assert!(!schema_accepts(
        find(&all, "hf_zero_shot"),
        &json!({"text": "x", "labels": []})
    ));
    assert!(!schema_accepts(
        find(&all, "hf_model_search"),
        &json!({"query": "x", "sort": "trending"})
    ));
}
