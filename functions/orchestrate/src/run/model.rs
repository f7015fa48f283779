//! What the run engine needs from a model: one streamed chat call. [`aixrun::llm::Endpoint`]
//! is the real one; [`Scripted`] answers in process, from a function of the request, so that
//! every role is tested (and the engine's own overhead measured) without sockets.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aixrun::llm::{CallLimits, ChatRequest, Event, Finish, FinishReason, LlmError, ToolCall};
use futures_util::Stream;

use super::tools::BoxFuture;
use crate::config::ModelService;

/// A model's answer as it streams: text, tool calls, then one [`Event::Done`].
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<Event, LlmError>> + Send>>;

/// One model to talk to.
pub trait ChatModel: Send + Sync {
    /// Sends `request`; the answer streams. Dropping the stream cancels the call.
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        limits: &'a CallLimits,
    ) -> BoxFuture<'a, Result<ModelStream, LlmError>>;

    /// The provider, as OpenTelemetry names it (metrics, `model.call`).
    fn provider(&self) -> &'static str;
}

impl ChatModel for aixrun::llm::Endpoint {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        limits: &'a CallLimits,
    ) -> BoxFuture<'a, Result<ModelStream, LlmError>> {
        Box::pin(async move {
            let stream = aixrun::llm::Endpoint::chat(self, request, limits).await?;
            let events = futures_util::stream::unfold(stream, |mut s| async move {
                s.next().await.map(|e| (e, s))
            });
            Ok(Box::pin(events) as ModelStream)
        })
    }

    fn provider(&self) -> &'static str {
        aixrun::llm::Endpoint::provider(self).otel_name()
    }
}

/// The models of a deployment: which [`ChatModel`] serves a model service.
pub trait Models: Send + Sync {
    /// The model behind `service`.
    fn get<'a>(&'a self, service: &'a ModelService) -> &'a dyn ChatModel;
}

/// The configured endpoints.
pub struct Endpoints;

impl Models for Endpoints {
    fn get<'a>(&'a self, service: &'a ModelService) -> &'a dyn ChatModel {
        &service.endpoint
    }
}

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Text, streamed word by word, then `stop`.
    Text(String),
    /// Tool calls (name, arguments), then `tool_calls`.
    Calls(Vec<(String, serde_json::Value)>),
    /// Text cut at the token limit (`length`).
    Cut(String),
    /// An error before anything streamed.
    Fail(String),
    /// Text deltas, then the stream hangs until dropped.
    Hang(String),
}

impl Answer {
    /// JSON as the answer's text (a structured answer).
    pub fn json(value: serde_json::Value) -> Self {
        Self::Text(value.to_string())
    }
}

type Script = dyn Fn(&ChatRequest) -> Answer + Send + Sync;

/// A model answering in process: `script` picks each answer from the request; `latency`
/// passes before it; every request is kept, with how many were in flight at its start.
pub struct Scripted {
    script: Box<Script>,
    latency: Duration,
    seen: Mutex<Vec<ChatRequest>>,
    in_flight: Arc<Mutex<(usize, usize)>>,
}

impl Scripted {
    /// Answers each request with `script(request)`.
    pub fn new(script: impl Fn(&ChatRequest) -> Answer + Send + Sync + 'static) -> Self {
        Self {
            script: Box::new(script),
            latency: Duration::ZERO,
            seen: Mutex::new(Vec::new()),
            in_flight: Arc::new(Mutex::new((0, 0))),
        }
    }

    /// Answers after `latency`.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The most requests that were in flight at once.
    pub fn most_at_once(&self) -> usize {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<Mutex<(usize, usize)>>);

impl InFlight {
    fn new(counts: &Arc<Mutex<(usize, usize)>>) -> Self {
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        c.0 += 1;
        c.1 = c.1.max(c.0);
        Self(Arc::clone(counts))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0 -= 1;
    }
}

impl ChatModel for Scripted {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        _limits: &'a CallLimits,
    ) -> BoxFuture<'a, Result<ModelStream, LlmError>> {
        Box::pin(async move {
            let guard = InFlight::new(&self.in_flight);
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(request.clone());
            // The script sees the request when it is made (a benchmark's clock reads it then).
            let answer = (self.script)(request);
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let prompt: usize = request
                .messages
                .iter()
                .map(|m| format!("{m:?}").len())
                .sum();
            let usage = |text: usize| aixrun::llm::Usage {
                input_tokens: Some(prompt as u64 / 4 + 1),
                output_tokens: Some(text as u64 / 4 + 1),
            };
            let done = |reason, text: usize| {
                Event::Done(Finish {
                    reason,
                    usage: usage(text),
                    model: Some(request.model.clone()),
                })
            };
            let words = |text: &str| -> Vec<Result<Event, LlmError>> {
                text.split_inclusive(' ')
                    .map(|w| Ok(Event::Text(w.to_owned())))
                    .collect()
            };
            let events: Vec<Result<Event, LlmError>> = match &answer {
                Answer::Text(text) => {
                    let mut e = words(text);
                    e.push(Ok(done(FinishReason::Stop, text.len())));
                    e
                }
                Answer::Cut(text) => {
                    let mut e = words(text);
                    e.push(Ok(done(FinishReason::Length, text.len())));
                    e
                }
                Answer::Calls(calls) => {
                    let mut e: Vec<_> = calls
                        .iter()
                        .enumerate()
                        .map(|(i, (name, args))| {
                            Ok(Event::ToolCall(ToolCall {
                                id: format!("call_{i}"),
                                name: name.clone(),
                                arguments: aixrun::llm::Arguments::Json(args.clone()),
                            }))
                        })
                        .collect();
                    e.push(Ok(done(FinishReason::ToolCalls, 8)));
                    e
                }
                Answer::Fail(message) => {
                    return Err(LlmError::Status {
                        host: "scripted".into(),
                        status: 500,
                        message: message.clone(),
                    });
                }
                Answer::Hang(text) => {
                    let head = futures_util::stream::iter(words(text));
                    let hang = futures_util::stream::pending();
                    let stream = futures_util::StreamExt::chain(head, hang);
                    return Ok(Box::pin(Guarded(stream, guard)) as ModelStream);
                }
            };
            let stream = futures_util::stream::iter(events);
            Ok(Box::pin(Guarded(stream, guard)) as ModelStream)
        })
    }

    fn provider(&self) -> &'static str {
        "scripted"
    }
}

impl Models for Scripted {
    fn get<'a>(&'a self, _service: &'a ModelService) -> &'a dyn ChatModel {
        self
    }
}

impl Models for Arc<Scripted> {
    fn get<'a>(&'a self, _service: &'a ModelService) -> &'a dyn ChatModel {
        self.as_ref()
    }
}

/// A stream that holds its in-flight count until dropped (the guard is only held).
struct Guarded<S>(S, #[allow(dead_code)] InFlight);

impl<S: Stream + Unpin> Stream for Guarded<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        Pin::new(&mut self.0).poll_next(cx)
    }
}
