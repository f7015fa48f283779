//! A streamed answer: chunks cut into lines, lines decoded by the provider's wire format into
//! [`Event`]s, with the first-token timeout before output starts and the gap timeout after.
//! Dropping the stream drops the HTTP response, which closes its connection.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::error::LlmError;
use super::event::Event;
use super::{ollama, openai};
use crate::outbound::{Chunks, OutboundError};

/// Decodes one wire format, line by line.
pub(super) trait Decode {
    /// One complete line (without its line break).
    fn line(&mut self, line: &str, out: &mut VecDeque<Event>) -> Result<(), LlmError>;
    /// The body ended: the final event, or why the answer is incomplete.
    fn end(&mut self, out: &mut VecDeque<Event>) -> Result<(), LlmError>;
}

#[derive(Debug)]
pub(super) enum Decoder {
    Ollama(ollama::Decoder),
    OpenAi(openai::Decoder),
}

impl Decoder {
    fn get(&mut self) -> &mut dyn Decode {
        match self {
            Self::Ollama(d) => d,
            Self::OpenAi(d) => d,
        }
    }
}

/// The events of one model answer, read with [`ChatStream::next`].
#[derive(Debug)]
pub struct ChatStream {
    chunks: Chunks,
    decoder: Decoder,
    host: String,
    pending: Vec<u8>,
    events: VecDeque<Event>,
    /// Until output starts: when the first token must have arrived.
    first_token_by: Option<Instant>,
    first_token: Duration,
    gap: Duration,
    ended: bool,
    failed: Option<LlmError>,
    /// The call's `chat` span (disabled when tracing is off); it ends with the stream.
    span: tracing::Span,
}

impl ChatStream {
    pub(super) fn new(
        chunks: Chunks,
        decoder: Decoder,
        first_token_by: Instant,
        first_token: Duration,
        gap: Duration,
    ) -> Self {
        Self {
            host: chunks.host().to_owned(),
            chunks,
            decoder,
            pending: Vec::new(),
            events: VecDeque::new(),
            first_token_by: Some(first_token_by),
            first_token,
            gap,
            ended: false,
            failed: None,
            span: tracing::Span::none(),
        }
    }

    /// Carries the call's span until the stream is dropped.
    pub(super) fn with_span(mut self, span: tracing::Span) -> Self {
        self.span = span;
        self
    }

    /// The `host[:port]` answering.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The next event; `None` after [`Event::Done`] or after an error.
    pub async fn next(&mut self) -> Option<Result<Event, LlmError>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                if let Event::Done(finish) = &event {
                    self.ended = true;
                    self.events.clear();
                    self.failed = None;
                    record_finish(&self.span, finish);
                }
                return Some(Ok(event));
            }
            if let Some(e) = self.failed.take() {
                record_error(&self.span, &e);
                return Some(Err(e));
            }
            if self.ended {
                return None;
            }
            if let Err(e) = self.read().await {
                // Events decoded before the failure in the same read go out first: output
                // the model produced is kept even when its stream then breaks.
                self.ended = true;
                self.failed = Some(e);
            }
        }
    }

    /// Reads one chunk and decodes its complete lines.
    async fn read(&mut self) -> Result<(), LlmError> {
        if let Some(by) = self.first_token_by {
            let left = by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.no_first_token());
            }
            self.chunks.set_gap(left);
        }
        match self.chunks.next().await {
            Some(Ok(bytes)) => {
                self.pending.extend_from_slice(&bytes);
                while let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.pending.drain(..=at).collect();
                    self.decode(&line[..line.len() - 1])?;
                }
                Ok(())
            }
            None => {
                let rest = std::mem::take(&mut self.pending);
                if !rest.is_empty() {
                    self.decode(&rest)?;
                }
                self.decoder.get().end(&mut self.events)
            }
            Some(Err(e)) => Err(self.outbound(e)),
        }
    }

    fn decode(&mut self, line: &[u8]) -> Result<(), LlmError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = std::str::from_utf8(line).map_err(|e| LlmError::Protocol {
            host: self.host.clone(),
            problem: format!("a line is not UTF-8: {e}"),
        })?;
        let before = self.events.len();
        self.decoder.get().line(line, &mut self.events)?;
        let output = self.events.iter().skip(before).any(|e| match e {
            Event::Text(t) | Event::Thinking(t) => !t.is_empty(),
            Event::ToolCall(_) | Event::Done(_) => true,
        });
        if output && self.first_token_by.take().is_some() {
            self.chunks.set_gap(self.gap);
        }
        Ok(())
    }

    fn no_first_token(&self) -> LlmError {
        LlmError::NoFirstToken {
            host: self.host.clone(),
            after: self.first_token,
        }
    }

    fn outbound(&self, e: OutboundError) -> LlmError {
        match e {
            OutboundError::Stalled { .. } if self.first_token_by.is_some() => self.no_first_token(),
            OutboundError::Stalled { host, gap } => LlmError::Stalled { host, gap },
            OutboundError::TimedOut { host, after } => LlmError::TimedOut { host, after },
            OutboundError::Body { host, problem } => LlmError::Interrupted {
                host,
                problem: Some(problem),
            },
            other => LlmError::Outbound(other),
        }
    }
}

/// The answer's model, finish reason and token counts on the `chat` span.
fn record_finish(span: &tracing::Span, finish: &super::Finish) {
    if span.is_disabled() {
        return;
    }
    if let Some(model) = &finish.model {
        span.record("gen_ai.response.model", model.as_str());
    }
    let reason = match &finish.reason {
        super::FinishReason::Stop => "stop",
        super::FinishReason::Length => "length",
        super::FinishReason::ToolCalls => "tool_calls",
        super::FinishReason::ContentFilter => "content_filter",
        super::FinishReason::Other(other) => other.as_str(),
    };
    // An array in the conventions; a tracing field holds one string.
    span.record("gen_ai.response.finish_reasons", reason);
    if let Some(n) = finish.usage.input_tokens {
        span.record("gen_ai.usage.input_tokens", n);
    }
    if let Some(n) = finish.usage.output_tokens {
        span.record("gen_ai.usage.output_tokens", n);
    }
}

/// A failed call: `error.type` and the error status on its span.
pub(super) fn record_error(span: &tracing::Span, error: &LlmError) {
    span.record("otel.status_code", "error");
    span.record("error.type", error.error_type());
}
