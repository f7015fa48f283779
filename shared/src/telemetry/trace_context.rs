//! Incoming trace context: W3C `traceparent`, else Google's `X-Cloud-Trace-Context`.

use http::HeaderMap;

/// The trace a request belongs to, as Cloud Logging wants it (hex ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// Whether the caller sampled this trace.
    pub sampled: bool,
}

impl TraceContext {
    /// Reads `traceparent` first (what Cloud Run and OpenTelemetry send), then
    /// `X-Cloud-Trace-Context`; `None` when neither is present and valid.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        get("traceparent")
            .and_then(Self::from_traceparent)
            .or_else(|| get("x-cloud-trace-context").and_then(Self::from_cloud_trace))
    }

    /// `00-<32 hex trace>-<16 hex span>-<2 hex flags>`; all-zero ids are invalid.
    pub fn from_traceparent(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || !is_hex(version) {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        if trace.len() != 32 || !is_hex(trace) || trace.bytes().all(|b| b == b'0') {
            return None;
        }
        if span.len() != 16 || !is_hex(span) || span.bytes().all(|b| b == b'0') {
            return None;
        }
        let flags = u8::from_str_radix(flags.get(..2)?, 16).ok()?;
        Some(Self {
            trace_id: trace.to_ascii_lowercase(),
            span_id: span.to_ascii_lowercase(),
            sampled: flags & 1 == 1,
        })
    }

    /// `TRACE_ID/SPAN_ID;o=1` where SPAN_ID is a decimal u64 (written out as hex).
    pub fn from_cloud_trace(value: &str) -> Option<Self> {
        let (trace, rest) = value.trim().split_once('/').unwrap_or((value.trim(), ""));
        if trace.len() != 32 || !is_hex(trace) {
            return None;
        }
        let (span, options) = rest.split_once(';').unwrap_or((rest, ""));
        let span: u64 = if span.is_empty() {
            0
        } else {
            span.parse().ok()?
        };
        Some(Self {
            trace_id: trace.to_ascii_lowercase(),
            span_id: format!("{span:016x}"),
            sampled: options.trim() == "o=1",
        })
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent() {
        let t = TraceContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id, "00f067aa0ba902b7");
        assert!(t.sampled);
        assert!(TraceContext::from_traceparent("00-0000-00f067aa0ba902b7-01").is_none());
        assert!(
            TraceContext::from_traceparent(
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
            )
            .is_none()
        );
    }

    #[test]
    fn cloud_trace_span_is_decimal() {
        let t = TraceContext::from_cloud_trace("105445aa7843bc8bf206b12000100000/255;o=1").unwrap();
        assert_eq!(t.span_id, "00000000000000ff");
        assert!(t.sampled);
        let t = TraceContext::from_cloud_trace("105445aa7843bc8bf206b12000100000/1;o=0").unwrap();
        assert!(!t.sampled);
        assert!(TraceContext::from_cloud_trace("nothex/1").is_none());
    }
}
