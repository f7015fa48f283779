//! A tracing layer that writes each event as one Cloud Logging JSON object per line:
//! `severity`, `message`, `time`, the event's fields, `httpRequest` (from `httpRequest.*`
//! fields) and the trace fields of the enclosing request span.
//!
//! Written here because the crate that did this (tracing-stackdriver) is unmaintained and,
//! with the current tracing/OpenTelemetry stack, silently drops trace ids.

use std::fmt;
use std::io::Write;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::project;

/// Field names a request span carries; see [`super::request_span`].
pub(crate) const TRACE_ID: &str = "trace_id";
pub(crate) const SPAN_ID: &str = "span_id";
pub(crate) const TRACE_SAMPLED: &str = "trace_sampled";
const HTTP_REQUEST_PREFIX: &str = "httpRequest.";
/// Keys every entry writes itself.
const RESERVED: [&str; 5] = ["message", "severity", "time", "target", "httpRequest"];

/// The Cloud Logging layer, writing to whatever `W` makes (stdout in production).
pub struct CloudLogging<W> {
    make_writer: W,
    labels: Map<String, Value>,
}

impl<W> CloudLogging<W> {
    /// Writes through `make_writer`, adding `labels` to every entry when not empty.
    pub fn new(make_writer: W, labels: Map<String, Value>) -> Self {
        Self {
            make_writer,
            labels,
        }
    }
}

/// Trace fields stored on a request span.
#[derive(Default, Clone)]
struct SpanTrace {
    trace_id: Option<String>,
    span_id: Option<String>,
    sampled: bool,
}

impl Visit for SpanTrace {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            TRACE_ID => self.trace_id = Some(value.to_owned()),
            SPAN_ID => self.span_id = Some(value.to_owned()),
            _ => {}
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == TRACE_SAMPLED {
            self.sampled = value;
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// An event's fields written straight into JSON: `httpRequest.*` fields into their own object,
/// the rest into the entry. No intermediate map: this runs on every request's log line.
#[derive(Default)]
struct Fields {
    message: String,
    entry: Vec<u8>,
    http_request: Vec<u8>,
}

impl Fields {
    fn write(&mut self, name: &str, value: impl serde::Serialize) {
        // The entry's own keys win over event fields of the same name.
        if RESERVED.contains(&name) {
            return;
        }
        let (out, key) = match name.strip_prefix(HTTP_REQUEST_PREFIX) {
            Some(key) => (&mut self.http_request, key),
            None => (&mut self.entry, name),
        };
        out.push(b',');
        push_json(out, key);
        out.push(b':');
        push_json(out, value);
    }
}

/// Appends `value` as JSON. Serializing a string, number or bool into a `Vec` cannot fail.
fn push_json(out: &mut Vec<u8>, value: impl serde::Serialize) {
    let _ = serde_json::to_writer(out, &value);
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else {
            self.write(field.name(), value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field.name(), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.write(field.name(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field.name(), value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.message, "{value:?}");
        } else {
            self.write(field.name(), format!("{value:?}"));
        }
    }
}

/// With tracing on: the trace and span of the innermost OpenTelemetry span around the event.
fn otel_trace<S>(event: &Event<'_>, ctx: &Context<'_, S>) -> Option<SpanTrace>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    use opentelemetry::trace::TraceContextExt as _;
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let scope = ctx.event_scope(event)?;
    for span in scope {
        let Some(cx) = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch) else {
            continue;
        };
        let span_ref = cx.span();
        let sc = span_ref.span_context();
        if sc.is_valid() {
            return Some(SpanTrace {
                trace_id: Some(sc.trace_id().to_string()),
                span_id: Some(sc.span_id().to_string()),
                sampled: sc.is_sampled(),
            });
        }
    }
    None
}

fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

impl<S, W> Layer<S> for CloudLogging<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut trace = SpanTrace::default();
        attrs.record(&mut trace);
        if trace.trace_id.is_some()
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(trace);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields {
            entry: Vec::with_capacity(256),
            ..Fields::default()
        };
        event.record(&mut fields);
        let mut line = Vec::with_capacity(384 + fields.entry.len() + fields.http_request.len());
        line.extend_from_slice(b"{\"severity\":");
        push_json(&mut line, severity(meta.level()));
        line.extend_from_slice(b",\"message\":");
        push_json(&mut line, &fields.message);
        line.extend_from_slice(b",\"time\":");
        push_json(
            &mut line,
            OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
        );
        line.extend_from_slice(b",\"target\":");
        push_json(&mut line, meta.target());
        if !fields.http_request.is_empty() {
            // The object's fields were written each with a leading comma; the first becomes `{`.
            fields.http_request[0] = b'{';
            line.extend_from_slice(b",\"httpRequest\":");
            line.extend_from_slice(&fields.http_request);
            line.push(b'}');
        }
        let trace = if crate::telemetry::enabled() {
            otel_trace(event, &ctx)
        } else {
            ctx.event_scope(event).and_then(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| span.extensions().get::<SpanTrace>().cloned())
                    .last()
            })
        };
        if let (Some(trace), Some(project)) = (trace, project::get()) {
            if let Some(trace_id) = trace.trace_id {
                line.extend_from_slice(b",\"logging.googleapis.com/trace\":");
                push_json(&mut line, format!("projects/{project}/traces/{trace_id}"));
            }
            if let Some(span_id) = trace.span_id {
                line.extend_from_slice(b",\"logging.googleapis.com/spanId\":");
                push_json(&mut line, span_id);
            }
            line.extend_from_slice(b",\"logging.googleapis.com/trace_sampled\":");
            push_json(&mut line, trace.sampled);
        }
        if !self.labels.is_empty() {
            line.extend_from_slice(b",\"logging.googleapis.com/labels\":");
            push_json(&mut line, &self.labels);
        }
        line.extend_from_slice(&fields.entry);
        line.extend_from_slice(b"}\n");
        // One write per line so that lines from concurrent tasks never interleave.
        let _ = self.make_writer.make_writer().write_all(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn an_event_is_one_cloud_logging_json_line() {
        let capture = Capture::default();
        let subscriber =
            tracing_subscriber::registry().with(CloudLogging::new(capture.clone(), Map::new()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                httpRequest.status = 404u64,
                httpRequest.requestMethod = "GET",
                tool = "echo \"quoted\"",
                severity = "overridden?",
                "GET /nope {}",
                404
            );
        });
        let out = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.matches('\n').count(), 1, "{out}");
        let v: Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(v["severity"], "WARNING");
        assert_eq!(v["message"], "GET /nope 404");
        assert_eq!(v["httpRequest"]["status"], 404);
        assert_eq!(v["httpRequest"]["requestMethod"], "GET");
        assert_eq!(v["tool"], "echo \"quoted\"");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
