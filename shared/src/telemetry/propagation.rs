//! Trace context across process boundaries: W3C `traceparent`/`tracestate` (and `baggage`)
//! in HTTP headers and gRPC metadata, Google's `X-Cloud-Trace-Context` (decimal span id)
//! accepted on the way in, and MCP's `params._meta` (`traceparent`, `tracestate`).

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, global};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use serde_json::{Map, Value};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{Propagators, TraceContext};

static CLOUD_TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets the process's propagators (phase one).
pub(super) fn install(p: Propagators) {
    let mut list: Vec<Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync>> =
        Vec::new();
    if p.tracecontext {
        list.push(Box::new(TraceContextPropagator::new()));
    }
    if p.baggage {
        list.push(Box::new(BaggagePropagator::new()));
    }
    CLOUD_TRACE.store(p.tracecontext, std::sync::atomic::Ordering::Relaxed);
    global::set_text_map_propagator(TextMapCompositePropagator::new(list));
}

/// The caller's context from request headers: `traceparent` (with `tracestate`, `baggage`),
/// else `X-Cloud-Trace-Context`. `None` when neither carries a valid span.
pub fn extract(headers: &HeaderMap) -> Option<Context> {
    let cx = global::get_text_map_propagator(|p| {
        p.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    if cx.span().span_context().is_valid() {
        return Some(cx);
    }
    if !CLOUD_TRACE.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let cloud = headers
        .get("x-cloud-trace-context")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::from_cloud_trace)?;
    remote(&cloud).map(|sc| cx.with_remote_span_context(sc))
}

fn remote(t: &TraceContext) -> Option<SpanContext> {
    let sc = SpanContext::new(
        TraceId::from_hex(&t.trace_id).ok()?,
        SpanId::from_hex(&t.span_id).ok()?,
        if t.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// Writes `cx` into request headers (`traceparent`, `tracestate`, `baggage`).
pub fn inject(cx: &Context, headers: &mut HeaderMap) {
    global::get_text_map_propagator(|p| {
        p.inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers));
    });
}

/// Writes the current span's context into `headers`, when tracing is on.
pub fn inject_current(headers: &mut HeaderMap) {
    if super::enabled() {
        inject(&tracing::Span::current().context(), headers);
    }
}

/// Writes the current span's context into gRPC metadata, when tracing is on.
pub fn inject_current_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    if !super::enabled() {
        return;
    }
    let mut headers = HeaderMap::new();
    inject(&tracing::Span::current().context(), &mut headers);
    for (name, value) in &headers {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_bytes()),
        ) {
            metadata.insert(key, value);
        }
    }
}

/// `cx` as MCP `_meta` entries (`traceparent`, `tracestate`; `baggage` when configured).
pub fn to_meta(cx: &Context) -> Map<String, Value> {
    let mut meta = MetaMap(Map::new());
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut meta));
    meta.0
}

/// The parent carried in an MCP request's `_meta`, when it carries a valid one.
pub fn from_meta(meta: &Map<String, Value>) -> Option<Context> {
    let cx = global::get_text_map_propagator(|p| p.extract(&MetaRef(meta)));
    cx.span().span_context().is_valid().then_some(cx)
}

struct MetaMap(Map<String, Value>);

impl Injector for MetaMap {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), Value::String(value));
    }
}

struct MetaRef<'a>(&'a Map<String, Value>);

impl Extractor for MetaRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_trace_context_is_a_remote_parent_with_a_decimal_span() {
        install(Propagators {
            tracecontext: true,
            baggage: false,
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-cloud-trace-context",
            "105445aa7843bc8bf206b12000100000/255;o=1".parse().unwrap(),
        );
        let cx = extract(&headers).unwrap();
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "105445aa7843bc8bf206b12000100000"
        );
        assert_eq!(sc.span_id().to_string(), "00000000000000ff");
        assert!(sc.is_sampled() && sc.is_remote());
        let meta = to_meta(&cx);
        assert_eq!(
            meta["traceparent"],
            "00-105445aa7843bc8bf206b12000100000-00000000000000ff-01"
        );
        let back = from_meta(&meta).unwrap();
        assert_eq!(back.span().span_context().span_id(), sc.span_id());
    }
}
