//! Model providers behind one interface: a [`ChatRequest`] sent to an [`Endpoint`] (Ollama's
//! native API or any OpenAI-compatible chat completions server) becomes a [`ChatStream`] of
//! [`Event`]s. Calls go through [`crate::outbound`]; they are retried (connection errors, 429,
//! 503) only before the answer starts, and bounded by [`CallLimits`].
//!
//! ```no_run
//! # async fn example() -> Result<(), aixrun::llm::LlmError> {
//! use aixrun::llm::{CallLimits, ChatRequest, Endpoint, Event, Message, Provider};
//! use aixrun::outbound::Url;
//!
//! let ollama = Endpoint::new(Provider::Ollama, Url::parse("http://localhost:11434").unwrap(), None);
//! let request = ChatRequest {
//!     model: "qwen3:0.6b".into(),
//!     messages: vec![Message::User("Hello".into())],
//!     ..ChatRequest::default()
//! };
//! let mut stream = ollama.chat(&request, &CallLimits::default()).await?;
//! while let Some(event) = stream.next().await {
//!     match event? {
//!         Event::Text(t) => print!("{t}"),
//!         Event::Done(finish) => println!("\n{:?}", finish.usage),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod config;
mod error;
mod event;
mod limits;
mod ollama;
mod openai;
mod probe;
mod request;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::time::Instant;

pub use crate::outbound::RetryPolicy;
pub use config::{ApiKey, Provider, ollama_url};
pub use error::LlmError;
pub use event::{Arguments, Event, Finish, FinishReason, ToolCall, Usage};
pub use limits::CallLimits;
pub use request::{
    ChatRequest, KeepAlive, Message, OllamaOptions, Options, OutputSchema, Think, ToolChoice,
    ToolSpec,
};
pub use stream::ChatStream;

use crate::config::{ConfigError, Env};
use crate::outbound::{
    AuthProvider, Call, OutboundError, Request, Response, StatusCode, Url, with_refresh,
};
use error::one_line;
use stream::Decoder;

/// Longest wait for the body of an error answer, which is only quoted.
const ERROR_BODY_WAIT: Duration = Duration::from_secs(5);
/// The most of an error body that is read.
const ERROR_BODY_BYTES: usize = 4096;

/// Where a model is served and how to sign in: a provider, its base URL, its key, and an
/// identity ([`Endpoint::with_auth`]: a Google ID token for a model served on Cloud Run behind
/// IAM). `Debug` shows the key as `***`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    provider: Provider,
    base: Url,
    key: Option<ApiKey>,
    auth: Option<Arc<dyn AuthProvider>>,
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Self) -> bool {
        self.provider == other.provider
            && self.base == other.base
            && self.key == other.key
            && match (&self.auth, &other.auth) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || format!("{a:?}") == format!("{b:?}"),
                _ => false,
            }
    }
}

impl Endpoint {
    /// A provider at `base` (Ollama: `http://host:11434`; OpenAI-compatible: the URL that
    /// `/chat/completions` is under, such as `https://api.openai.com/v1`).
    pub fn new(provider: Provider, base: Url, key: Option<ApiKey>) -> Self {
        Self {
            provider,
            base,
            key,
            auth: None,
        }
    }

    /// Signs every request with `auth`'s header too (a Google ID token for the server's
    /// audience). Sent as `Authorization`, or as `X-Serverless-Authorization` when an API key
    /// takes `Authorization` (Cloud Run checks either and passes the key on). A 401 drops the
    /// token, mints one and sends the request once more, before any of the answer is read.
    pub fn with_auth(mut self, auth: Arc<dyn AuthProvider>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The identity sent, if any.
    pub fn auth(&self) -> Option<&Arc<dyn AuthProvider>> {
        self.auth.as_ref()
    }

    /// The endpoint for `provider` from configuration: `address`, else (`openai` and
    /// `openai_compatible`) `OPENAI_BASE_URL`, else the provider's default (Ollama:
    /// [`ollama_url`]'s rules); and `key` or the provider's key variables (`OPENAI_API_KEY` for
    /// an `OPENAI_BASE_URL` server). A provider's public API without a key, and an
    /// OpenAI-compatible server without an address, are errors naming what to set.
    pub fn from_config(
        provider: Provider,
        address: Option<&str>,
        key: Option<ApiKey>,
        env: &Env,
    ) -> Result<Self, ConfigError> {
        let address = address.map(str::trim).filter(|a| !a.is_empty());
        if provider == Provider::Ollama {
            return Ok(Self::new(provider, ollama_url(address, env)?, key));
        }
        // Where OpenAI clients are pointed at another server; its key, if any, is OpenAI's.
        let base_url = matches!(provider, Provider::OpenAi | Provider::OpenAiCompatible)
            .then(|| env.get(config::OPENAI_BASE_URL))
            .flatten()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        let (address, source) = match (address, base_url) {
            (Some(a), _) => (Some(a), "config.address"),
            (None, Some(a)) => (Some(a), config::OPENAI_BASE_URL),
            (None, None) => (None, "config.address"),
        };
        let key_vars = if source == config::OPENAI_BASE_URL {
            Provider::OpenAi.key_vars()
        } else {
            provider.key_vars()
        };
        let key = key.or_else(|| ApiKey::from_env(env, key_vars));
        let raw = match (address, provider.default_url()) {
            (Some(a), _) => a,
            (None, Some(default)) => {
                if key.is_none() {
                    return Err(ConfigError::new(
                        provider
                            .key_vars()
                            .first()
                            .copied()
                            .unwrap_or("config.api_key"),
                        "",
                        format!("{} needs an API key", provider.name()),
                        format!(
                            "{} or config.api_key{}",
                            provider.key_vars().join(" or "),
                            if provider == Provider::OpenAi {
                                " (or OPENAI_BASE_URL for another OpenAI-compatible server)"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                default
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "config.address",
                    "",
                    format!("{} has no default address", provider.name()),
                    format!(
                        "the server's base URL, such as http://vllm:8000/v1, in config.address or {}",
                        config::OPENAI_BASE_URL
                    ),
                ));
            }
        };
        let base = Url::parse(raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                ConfigError::new(
                    source,
                    raw,
                    "not an http(s) URL",
                    "a base URL such as https://api.openai.com/v1",
                )
            })?;
        Ok(Self::new(provider, base, key))
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Whether a key is sent.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Sends `request` and returns its answer as a stream once the server has accepted it.
    /// Connection errors, 429 and 503 are retried with backoff (honouring `Retry-After`) while
    /// `limits.total` allows; every other refusal is an error at once.
    ///
    /// With tracing on, the call is a CLIENT span `chat {model}` (OpenTelemetry's GenAI
    /// conventions) that lasts until the stream ends, with the usage the answer reports.
    /// Neither the prompt nor the answer is recorded.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        limits: &CallLimits,
    ) -> Result<ChatStream, LlmError> {
        if !crate::telemetry::enabled() {
            return self.chat_untraced(request, limits).await;
        }
        use tracing::Instrument as _;
        let span = self.chat_span(&request.model);
        match self
            .chat_untraced(request, limits)
            .instrument(span.clone())
            .await
        {
            Ok(stream) => Ok(stream.with_span(span)),
            Err(e) => {
                stream::record_error(&span, &e);
                Err(e)
            }
        }
    }

    fn chat_span(&self, model: &str) -> tracing::Span {
        use tracing::field::Empty;
        tracing::info_span!(
            "chat",
            otel.name = format!("chat {model}"),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = self.provider.otel_name(),
            gen_ai.request.model = model,
            gen_ai.response.model = Empty,
            gen_ai.response.finish_reasons = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            server.address = self.base.host_str().unwrap_or_default(),
            server.port = self.base.port_or_known_default().unwrap_or_default(),
            error.type = Empty,
        )
    }

    async fn chat_untraced(
        &self,
        request: &ChatRequest,
        limits: &CallLimits,
    ) -> Result<ChatStream, LlmError> {
        let (path, body, accept) = match self.provider {
            Provider::Ollama => ("api/chat", ollama::body(request), "application/x-ndjson"),
            Provider::OpenAi => (
                "chat/completions",
                openai::body(request, openai::MaxTokens::CompletionOnly),
                "text/event-stream",
            ),
            _ => (
                "chat/completions",
                openai::body(request, openai::MaxTokens::Both),
                "text/event-stream",
            ),
        };
        let url = join(&self.base, path);
        let call = Call::new(limits.total, limits.max_bytes).connect_timeout(limits.connect);
        let mut attempt = 1;
        loop {
            let first_token_by = Instant::now() + limits.first_token;
            // A refused ID token is minted again and the request sent once more: a 401 is
            // the answer's head, so nothing was streamed to the caller yet.
            let sent = with_refresh(
                self.auth.as_deref(),
                |identity| self.send(&url, &body, accept, &call, limits.first_token, identity),
                |sent| matches!(sent, Ok(r) if r.status() == StatusCode::UNAUTHORIZED),
            );
            let failure = match sent.await {
                Ok(response) if response.status().is_success() => {
                    let host = response.host().to_owned();
                    let decoder = match self.provider {
                        Provider::Ollama => Decoder::Ollama(ollama::Decoder::new(host)),
                        _ => Decoder::OpenAi(openai::Decoder::new(host)),
                    };
                    let chunks = response.into_chunks(limits.first_token);
                    return Ok(ChatStream::new(
                        chunks,
                        decoder,
                        first_token_by,
                        limits.first_token,
                        limits.gap,
                    ));
                }
                Ok(response) => {
                    let status = response.status();
                    let wait = crate::outbound::retry_after(response.headers());
                    let error = self.refusal(response, &request.model).await;
                    let retryable = matches!(
                        status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    );
                    if !retryable {
                        return Err(error);
                    }
                    (error, wait)
                }
                Err(e @ LlmError::Connect { .. }) => (e, None),
                Err(e) => return Err(e),
            };
            let (error, wait) = failure;
            if attempt >= limits.retry.max_attempts {
                return Err(error);
            }
            let wait = wait.unwrap_or_else(|| limits.retry.backoff(attempt));
            if wait >= call.remaining() {
                return Err(error);
            }
            tracing::debug!(%error, attempt, wait_ms = wait.as_millis() as u64, "model call retried");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn send(
        &self,
        url: &Url,
        body: &Value,
        accept: &'static str,
        call: &Call,
        first_token: Duration,
        identity: Option<HeaderValue>,
    ) -> Result<Response, LlmError> {
        let request = Request::post(url.clone())
            .json(body)
            .header(ACCEPT, HeaderValue::from_static(accept));
        let request = self.sign(request, identity);
        // Ollama sends its headers only once the model is loaded: that wait is the first
        // token's, not the connection's.
        match tokio::time::timeout(first_token, request.send(call)).await {
            Err(_) => Err(LlmError::NoFirstToken {
                host: crate::outbound::host_of(url),
                after: first_token,
            }),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(OutboundError::Connect { host, problem })) => {
                Err(LlmError::Connect { host, problem })
            }
            Ok(Err(OutboundError::TimedOut { host, after })) => {
                Err(LlmError::TimedOut { host, after })
            }
            Ok(Err(e)) => Err(LlmError::Outbound(e)),
        }
    }

    /// The error for a non-2xx answer, quoting the server's message (key redacted).
    async fn refusal(&self, response: Response, model: &str) -> LlmError {
        let host = response.host().to_owned();
        let status = response.status();
        let body = tokio::time::timeout(ERROR_BODY_WAIT, response.body_prefix(ERROR_BODY_BYTES))
            .await
            .unwrap_or_default();
        let message = match self.provider {
            Provider::Ollama => ollama::error_message(&body),
            _ => openai::error_message(&body),
        };
        if self.provider == Provider::Ollama && status == StatusCode::NOT_FOUND && message.is_some()
        {
            return LlmError::ModelNotFound {
                host,
                model: model.to_owned(),
            };
        }
        let message = message
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned())
            .trim()
            .to_owned();
        let message = match &self.key {
            Some(key) => key.redact(&message),
            None => message,
        };
        let message = if message.is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else {
            one_line(&message)
        };
        LlmError::Status {
            host,
            status: status.as_u16(),
            message,
        }
    }
}

impl Endpoint {
    /// `request` with the key as `Authorization: Bearer`, and the identity `header` as
    /// `Authorization`, or as `X-Serverless-Authorization` when the key holds `Authorization`.
    fn sign(&self, mut request: Request, identity: Option<HeaderValue>) -> Request {
        if let Some(key) = &self.key {
            request = request.bearer(key.expose());
        }
        if let Some(identity) = identity {
            let name = if self.key.is_some() {
                HeaderName::from_static("x-serverless-authorization")
            } else {
                AUTHORIZATION
            };
            request = request.header(name, identity);
        }
        request
    }
}

/// `base` with `path` appended below it (`Url::join` would replace a last segment without a
/// trailing slash, turning `/v1` + `chat/completions` into `/chat/completions`).
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}
