//! The one path every Hugging Face request takes: token, time budget, waiting for a loading
//! model, capped reading within the tools' byte budget, typed decoding, and HTTP failures
//! turned into messages that say what to do.

use std::time::Duration;

use aixrun::outbound::{
    ByteBudget, Call, Method, OutboundError, Request as Outbound, Response, StatusCode, Url,
};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{HF_TOKEN, HUGGINGFACE_API_KEY, Settings, Token};
use crate::tool::{CallContext, ToolError};

/// Largest successful response read (token-level embeddings of a full batch are the big ones).
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Response bytes all Hugging Face calls of an instance may hold at once: two answers at the
/// cap, or the default 64 concurrent calls' usual answers (tens of KiB) many times over.
const BYTE_BUDGET: usize = 2 * MAX_RESPONSE_BYTES;
/// Error bodies are only quoted, so only their start is read.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;
/// Upstream messages quoted to the model are cut to this many characters.
const MAX_QUOTED_CHARS: usize = 300;
/// Longest single wait for a loading model; its estimate is often pessimistic.
const MAX_LOADING_WAIT: Duration = Duration::from_secs(10);
/// Wait when a loading model gives no estimate.
const DEFAULT_LOADING_WAIT: Duration = Duration::from_secs(2);
const MIN_LOADING_WAIT: Duration = Duration::from_millis(100);
/// Time that must remain after a wait for the retry to be worth sending.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

/// Whether a request needs the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Auth {
    /// Refuse to send without a token (the inference APIs reject anonymous calls).
    Required,
    /// Send the token when there is one (Hub reads, self-hosted servers).
    IfPresent,
}

/// One request, described so it can be sent again while a model loads.
pub(super) struct Request<'a> {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) body: Option<&'a Value>,
    /// The model concerned, for messages about it.
    pub(super) model: Option<&'a str>,
    pub(super) auth: Auth,
}

/// Settings, token and byte budget, shared by the tools' handlers.
pub(super) struct Client {
    pub(super) settings: Settings,
    token: Option<Token>,
    budget: ByteBudget,
}

impl Client {
    pub(super) fn new(settings: Settings, token: Option<Token>) -> Self {
        Self {
            settings,
            token,
            budget: ByteBudget::new(BYTE_BUDGET),
        }
    }

    /// `{base}/{path}` as a URL; a bad base is the operator's problem, and the message says so.
    pub(super) fn endpoint(&self, base: &str, path: &str) -> Result<Url, ToolError> {
        let url = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        Url::parse(&url).map_err(|e| {
            ToolError::new(format!(
                "the Hugging Face tools are misconfigured ({url:?} is not a URL: {e}); tell the \
                 operator"
            ))
        })
    }

    /// Sends `request` and decodes the JSON answer. A model that is loading (503 with
    /// `estimated_time`) is waited for and asked again while the tool's time budget lasts.
    pub(super) async fn send<T: DeserializeOwned>(
        &self,
        request: Request<'_>,
        ctx: &CallContext,
    ) -> Result<T, ToolError> {
        if request.auth == Auth::Required && self.token.is_none() {
            return Err(token_missing());
        }
        let timeout = self.settings.timeout();
        // Stop a little before the registry's limit so the model gets our message instead.
        let margin = (timeout / 10).min(Duration::from_secs(1));
        let call = Call::new(timeout - margin, MAX_RESPONSE_BYTES).budget(&self.budget);
        loop {
            let response = self
                .build(&request)
                .send(&call)
                .await
                .map_err(|e| self.transport_error(&e, timeout, request.model))?;
            let status = response.status();
            if status.is_success() {
                return response
                    .body_json()
                    .await
                    .map_err(|e| self.transport_error(&e, timeout, request.model));
            }
            let failure = self.failure(response).await;
            let Some(estimate) = failure.loading_estimate(status) else {
                return Err(self.status_error(status, &failure, request.model));
            };
            let Some(wait) = loading_wait(estimate, call.remaining()) else {
                return Err(still_loading(request.model, estimate));
            };
            let note = format!(
                "{} is loading on Hugging Face; asking again in {:.1} s",
                request.model.unwrap_or("the model"),
                wait.as_secs_f64()
            );
            tracing::debug!(model = request.model, ?wait, "hugging face model loading");
            ctx.log("info", Value::String(note)).await;
            tokio::time::sleep(wait).await;
        }
    }

    /// `POST {inference_url}/{model}`: the hf-inference task APIs, which need the token.
    pub(super) async fn task<T: DeserializeOwned>(
        &self,
        model: &str,
        body: &Value,
        ctx: &CallContext,
    ) -> Result<T, ToolError> {
        let request = Request {
            method: Method::POST,
            url: self.endpoint(&self.settings.inference_url, model)?,
            body: Some(body),
            model: Some(model),
            auth: Auth::Required,
        };
        self.send(request, ctx).await
    }

    fn build(&self, request: &Request<'_>) -> Outbound {
        let mut outbound = Outbound::new(request.method.clone(), request.url.clone());
        if let Some(body) = request.body {
            outbound = outbound.json(body);
        }
        if let Some(token) = &self.token {
            // Marked sensitive, so it is never printed.
            outbound = outbound.bearer(token.expose());
        }
        outbound
    }

    /// Reads what a failed response says; a body that can't be read just says nothing.
    async fn failure(&self, response: Response) -> Failure {
        let retry_after = retry_after(response.headers());
        let body = response.body_prefix(MAX_ERROR_BODY_BYTES).await;
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let message = parsed
            .message()
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
        Failure {
            message: self.scrub(truncate(&message)),
            estimated_time: parsed.estimated_time,
            retry_after,
        }
    }

    fn status_error(
        &self,
        status: StatusCode,
        failure: &Failure,
        model: Option<&str>,
    ) -> ToolError {
        let said = if failure.message.is_empty() {
            String::new()
        } else {
            format!(": {}", failure.message)
        };
        let message = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.token.is_none() => {
                return token_missing();
            }
            StatusCode::UNAUTHORIZED => format!(
                "Hugging Face rejected the access token (HTTP 401{said}): check that \
                 {HF_TOKEN} or {HUGGINGFACE_API_KEY} holds a valid token"
            ),
            StatusCode::FORBIDDEN => format!(
                "the Hugging Face token may not use {} (HTTP 403{said}): gated models need \
                 access granted on their Hub page, and fine-grained tokens need the \"Make calls \
                 to Inference Providers\" permission",
                model.unwrap_or("this endpoint")
            ),
            StatusCode::NOT_FOUND => match model {
                Some(model) => {
                    format!("model {model} not found on Hugging Face (check the model id)")
                }
                None => format!("not found on Hugging Face (HTTP 404{said})"),
            },
            StatusCode::TOO_MANY_REQUESTS => match failure.retry_after {
                Some(secs) => format!("rate limited by Hugging Face; retry after {secs} s"),
                None => "rate limited by Hugging Face; retry in a minute".to_owned(),
            },
            _ => {
                let advice = if status.is_server_error() {
                    "; try again later"
                } else {
                    ""
                };
                format!(
                    "Hugging Face returned HTTP {}{}{said}{advice}",
                    status.as_u16(),
                    for_model(model)
                )
            }
        };
        ToolError::new(message)
    }

    /// What the model is told when the exchange itself failed: the host and the problem (the
    /// outbound error never carries the URL), scrubbed of the token in case a server echoed it.
    fn transport_error(
        &self,
        error: &OutboundError,
        timeout: Duration,
        model: Option<&str>,
    ) -> ToolError {
        let message = match error {
            e if e.is_timeout() => format!(
                "Hugging Face did not answer within {} s: try again, or use a smaller model or a \
                 shorter input",
                timeout.as_secs_f64()
            ),
            OutboundError::TooLarge { limit, .. } => format!(
                "the answer from Hugging Face is larger than {} MiB: send fewer or shorter inputs",
                limit / (1024 * 1024)
            ),
            OutboundError::Busy { .. } => "this server is busy reading other large answers from \
                 Hugging Face; try again in a moment"
                .to_owned(),
            OutboundError::Decode { problem, .. } => format!(
                "Hugging Face sent an answer this tool does not understand{} ({problem}); the \
                 model may not support this task",
                for_model(model)
            ),
            other => format!("could not reach Hugging Face ({other}); try again later"),
        };
        ToolError::new(self.scrub(message))
    }

    /// Removes the token from text that came from elsewhere, in case a server echoed it.
    fn scrub(&self, text: String) -> String {
        match &self.token {
            Some(token) if !token.expose().is_empty() && text.contains(token.expose()) => {
                text.replace(token.expose(), "***")
            }
            _ => text,
        }
    }
}

fn token_missing() -> ToolError {
    ToolError::new(format!(
        "Hugging Face token missing: set {HF_TOKEN} or {HUGGINGFACE_API_KEY} on the server"
    ))
}

fn still_loading(model: Option<&str>, estimate: Option<f64>) -> ToolError {
    let again = match estimate {
        Some(secs) if secs.is_finite() && secs > 0.0 => format!("in about {} s", secs.ceil()),
        _ => "in a minute".to_owned(),
    };
    ToolError::new(format!(
        "{} is still loading on Hugging Face; try again {again}",
        model.map_or_else(|| "the model".to_owned(), |m| format!("model {m}"))
    ))
}

fn for_model(model: Option<&str>) -> String {
    model.map(|m| format!(" for model {m}")).unwrap_or_default()
}

/// How long to wait before asking a loading model again, or `None` when the budget left can't
/// hold a useful wait and a retry.
fn loading_wait(estimate: Option<f64>, remaining: Duration) -> Option<Duration> {
    let wanted = estimate
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .unwrap_or(DEFAULT_LOADING_WAIT)
        .clamp(MIN_LOADING_WAIT, MAX_LOADING_WAIT);
    let available = remaining.checked_sub(MIN_ATTEMPT)?;
    (available >= MIN_LOADING_WAIT).then(|| wanted.min(available))
}

/// `Retry-After` in seconds (the HTTP-date form is rare here and falls back to advice).
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What a failed response said.
#[derive(Debug)]
struct Failure {
    message: String,
    estimated_time: Option<f64>,
    retry_after: Option<u64>,
}

impl Failure {
    /// `Some(estimate)` when this is a model still loading (503 naming it, or with an estimate).
    fn loading_estimate(&self, status: StatusCode) -> Option<Option<f64>> {
        let loading = status == StatusCode::SERVICE_UNAVAILABLE
            && (self.estimated_time.is_some() || self.message.contains("loading"));
        loading.then_some(self.estimated_time)
    }
}

/// The error shapes Hugging Face services use: hf-inference `{"error": "..."}` (a list of
/// strings for invalid parameters), OpenAI-style `{"error": {"message"}}` from the router, TGI
/// `{"error", "error_type"}`, and FastAPI `{"detail"}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    error: Option<Value>,
    message: Option<String>,
    detail: Option<Value>,
    estimated_time: Option<f64>,
}

impl ErrorBody {
    fn message(&self) -> Option<String> {
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => Some(
                items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        self.error
            .as_ref()
            .and_then(text)
            .or_else(|| self.message.clone())
            .or_else(|| {
                self.detail
                    .as_ref()
                    .map(|d| text(d).unwrap_or_else(|| d.to_string()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(body: Value) -> Option<String> {
        serde_json::from_value::<ErrorBody>(body).unwrap().message()
    }

    #[test]
    fn error_shapes() {
        assert_eq!(message(json!({"error": "boom"})).unwrap(), "boom");
        assert_eq!(message(json!({"error": ["a", "b"]})).unwrap(), "a; b");
        assert_eq!(
            message(json!({"error": {"message": "m", "type": "t"}})).unwrap(),
            "m"
        );
        assert_eq!(message(json!({"detail": "d"})).unwrap(), "d");
        assert_eq!(message(json!({})), None);
    }

    #[test]
    fn loading_waits_fit_the_budget() {
        let secs = Duration::from_secs;
        assert_eq!(
            loading_wait(Some(0.2), secs(60)),
            Some(Duration::from_millis(200))
        );
        assert_eq!(loading_wait(Some(300.0), secs(60)), Some(MAX_LOADING_WAIT));
        assert_eq!(loading_wait(None, secs(60)), Some(DEFAULT_LOADING_WAIT));
        assert_eq!(
            loading_wait(Some(20.0), secs(1)),
            Some(secs(1) - MIN_ATTEMPT)
        );
        assert_eq!(loading_wait(Some(20.0), Duration::from_millis(300)), None);
        assert_eq!(
            loading_wait(Some(-1.0), secs(60)),
            Some(DEFAULT_LOADING_WAIT)
        );
    }

    #[test]
    fn scrubbing_and_truncation() {
        let client = Client::new(Settings::default(), Some(Token::new("hf_secret")));
        assert_eq!(
            client.scrub("bad token hf_secret".to_owned()),
            "bad token ***"
        );
        let long = "x".repeat(1000);
        assert_eq!(truncate(&long).chars().count(), MAX_QUOTED_CHARS + 1);
        assert_eq!(truncate("short"), "short");
    }
}
