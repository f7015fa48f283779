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

#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Map<String, Value>,
    http_request: Map<String, Value>,
}

impl Fields {
    fn insert(&mut self, name: &str, value: Value) {
        if name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if let Some(key) = name.strip_prefix(HTTP_REQUEST_PREFIX) {
            self.http_request.insert(key.to_owned(), value);
        } else {
            self.fields.insert(name.to_owned(), value);
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field.name(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field.name(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field.name(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field.name(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field.name(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field.name(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field.name(), Value::from(format!("{value:?}")));
    }
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
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut entry = Map::new();
        entry.insert("severity".into(), severity(meta.level()).into());
        entry.insert(
            "message".into(),
            fields.message.take().unwrap_or_default().into(),
        );
        entry.insert(
            "time".into(),
            OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default()
                .into(),
        );
        entry.insert("target".into(), meta.target().into());
        if !fields.http_request.is_empty() {
            entry.insert(
                "httpRequest".into(),
                Value::Object(std::mem::take(&mut fields.http_request)),
            );
        }
        let trace = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .filter_map(|span| span.extensions().get::<SpanTrace>().cloned())
                .last()
        });
        if let (Some(trace), Some(project)) = (trace, project::get()) {
            if let Some(trace_id) = trace.trace_id {
                entry.insert(
                    "logging.googleapis.com/trace".into(),
                    format!("projects/{project}/traces/{trace_id}").into(),
                );
            }
            if let Some(span_id) = trace.span_id {
                entry.insert("logging.googleapis.com/spanId".into(), span_id.into());
            }
            entry.insert(
                "logging.googleapis.com/trace_sampled".into(),
                trace.sampled.into(),
            );
        }
        if !self.labels.is_empty() {
            entry.insert(
                "logging.googleapis.com/labels".into(),
                Value::Object(self.labels.clone()),
            );
        }
        for (k, v) in fields.fields {
            entry.entry(k).or_insert(v);
        }
        let mut line = serde_json::to_vec(&Value::Object(entry)).unwrap_or_default();
        line.push(b'\n');
        // One write per line so that lines from concurrent tasks never interleave.
        let _ = self.make_writer.make_writer().write_all(&line);
    }
}
