//! The tool registry both transports call: deterministic listing, argument validation against
//! each tool's JSON Schema before the handler runs, per-tool timeout and concurrency limit, a
//! cap on result size, metrics and one log line per call.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use aixrun::schema::Schema;
use futures_util::FutureExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as MetricsRegistry;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::tool::{CallContext, Content, Tool};

/// Deepest nesting a tool's schema may have.
const MAX_SCHEMA_DEPTH: usize = 32;
/// Largest a tool's schema may be, serialized.
const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// A call that could not be made: a protocol error (JSON-RPC `-32602`, gRPC
/// NOT_FOUND / INVALID_ARGUMENT), as opposed to a tool that ran and failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No tool by that name.
    #[error("unknown tool {0:?}")]
    UnknownTool(String),
    /// The arguments don't match the tool's input schema.
    #[error("invalid arguments for {tool}: {message} (at {path})")]
    InvalidArguments {
        /// Tool name.
        tool: String,
        /// JSON Pointer to the failing value (`/` for the whole object).
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The result of a call that ran: content, structured content, and whether it is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    /// Content blocks.
    pub content: Vec<Content>,
    /// Structured result, if any.
    pub structured: Option<Value>,
    /// True when the tool failed, timed out, or its result was too large.
    pub is_error: bool,
}

impl CallOutcome {
    fn error(message: String) -> Self {
        Self {
            content: vec![Content::text(message)],
            structured: None,
            is_error: true,
        }
    }
}

/// A schema the registry refused at start-up.
#[derive(Debug, thiserror::Error)]
#[error("tool {tool}: {problem}")]
pub struct SchemaError {
    tool: String,
    problem: String,
}

struct Entry {
    tool: Tool,
    /// This tool's series, resolved on first use (a series appears once it has a sample).
    series: Series,
    /// Compiled on the tool's first call: compiling (which validates the schema against the
    /// 2020-12 meta-schema) is most of a cold start's work otherwise.
    validator: OnceLock<Result<Schema, String>>,
    slots: Arc<Semaphore>,
}

impl Entry {
    fn validator(&self) -> Result<&Schema, &str> {
        self.validator
            .get_or_init(|| compile(&self.tool.input_schema))
            .as_ref()
            .map_err(String::as_str)
    }
}

/// Compiles an input schema (2020-12 unless it names its draft); a `$ref` outside the schema
/// fails here instead of being fetched.
fn compile(schema: &Value) -> Result<Schema, String> {
    Schema::compile(schema).map_err(|e| format!("input schema: {e}"))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
}

/// `aixgo_mcp_tool_calls_total{tool,status}` and `aixgo_mcp_tool_call_duration_seconds{tool}`.
#[derive(Clone)]
struct ToolMetrics {
    calls: Family<CallLabels, Counter>,
    duration: Family<ToolLabels, Histogram, fn() -> Histogram>,
}

/// What a call can end as, in `status` label order.
const STATUSES: [&str; 5] = [
    "success",
    "error",
    "timeout",
    "invalid_arguments",
    "unknown_tool",
];

/// One tool label's series: the calls counter per status and the duration histogram, looked
/// up in the families once instead of a label set being built and hashed on every call.
#[derive(Default)]
struct Series {
    calls: [OnceLock<Counter>; STATUSES.len()],
    duration: OnceLock<Histogram>,
}

impl Series {
    fn record(&self, metrics: &ToolMetrics, tool: &str, status: &'static str, seconds: f64) {
        let calls = match STATUSES.iter().position(|s| *s == status) {
            Some(i) => self.calls[i].get_or_init(|| {
                metrics
                    .calls
                    .get_or_create(&CallLabels {
                        tool: tool.to_owned(),
                        status,
                    })
                    .clone()
            }),
            None => &metrics
                .calls
                .get_or_create(&CallLabels {
                    tool: tool.to_owned(),
                    status,
                })
                .clone(),
        };
        calls.inc();
        self.duration
            .get_or_init(|| {
                metrics
                    .duration
                    .get_or_create(&ToolLabels {
                        tool: tool.to_owned(),
                    })
                    .clone()
            })
            .observe(seconds);
    }
}

/// Every tool this instance serves.
pub struct Registry {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    max_result_bytes: usize,
    metrics: ToolMetrics,
    /// The series of calls naming no tool (`tool="unknown"`).
    unknown: Series,
}

/// Where a call came from, for the log line.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// MCP over Streamable HTTP.
    Http,
    /// `mcp.MCPService` over gRPC or gRPC-Web.
    Grpc,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
        }
    }
}

impl Registry {
    /// Checks every tool's schema is an object schema of bounded depth and size, and registers
    /// the call metrics. Schemas are compiled on first use; [`Self::compile_all`] compiles them
    /// now (tests do, for every built-in tool).
    pub fn new(
        tools: Vec<Tool>,
        max_result_bytes: usize,
        metrics_registry: &mut MetricsRegistry,
    ) -> Result<Self, SchemaError> {
        let metrics = ToolMetrics {
            calls: Family::default(),
            duration: Family::new_with_constructor(aixrun::metrics::duration_histogram),
        };
        metrics_registry.register(
            "aixgo_mcp_tool_calls",
            "MCP tool calls by tool and outcome",
            metrics.calls.clone(),
        );
        metrics_registry.register(
            "aixgo_mcp_tool_call_duration_seconds",
            "MCP tool call duration in seconds by tool",
            metrics.duration.clone(),
        );
        let mut tools = tools;
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        let mut entries = Vec::with_capacity(tools.len());
        let mut index = HashMap::new();
        for tool in tools {
            let problem = |problem: String| SchemaError {
                tool: tool.name.clone(),
                problem,
            };
            if index.contains_key(&tool.name) {
                return Err(problem("registered twice".into()));
            }
            check_bounds(&tool.input_schema).map_err(problem)?;
            index.insert(tool.name.clone(), entries.len());
            entries.push(Entry {
                series: Series::default(),
                slots: Arc::new(Semaphore::new(tool.max_concurrency.max(1))),
                tool,
                validator: OnceLock::new(),
            });
        }
        Ok(Self {
            entries,
            index,
            max_result_bytes,
            metrics,
            unknown: Series::default(),
        })
    }

    /// Compiles every schema now, failing on the first that doesn't compile.
    pub fn compile_all(&self) -> Result<(), SchemaError> {
        for entry in &self.entries {
            entry.validator().map_err(|problem| SchemaError {
                tool: entry.tool.name.clone(),
                problem: problem.to_owned(),
            })?;
        }
        Ok(())
    }

    /// Tools in name order.
    pub fn tools(&self) -> impl Iterator<Item = &Tool> {
        self.entries.iter().map(|e| &e.tool)
    }

    /// Looks a tool up by name.
    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.index.get(name).map(|&i| &self.entries[i].tool)
    }

    /// Validates and runs one call. `Err` is a protocol error; a tool failure, timeout or
    /// oversized result is an `Ok` outcome with `is_error` set.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        ctx: CallContext,
        transport: Transport,
    ) -> Result<CallOutcome, CallError> {
        let start = Instant::now();
        let entry = self.index.get(name).map(|&i| &self.entries[i]);
        let result = match entry {
            Some(entry) => self.run(entry, name, arguments, ctx).await,
            None => Err(CallError::UnknownTool(name.to_owned())),
        };
        let elapsed = start.elapsed();
        let status = match &result {
            Err(CallError::UnknownTool(_)) => "unknown_tool",
            Err(CallError::InvalidArguments { .. }) => "invalid_arguments",
            Ok((_, status)) => *status,
        };
        let seconds = elapsed.as_secs_f64();
        match entry {
            Some(entry) => entry.series.record(&self.metrics, name, status, seconds),
            None => self
                .unknown
                .record(&self.metrics, "unknown", status, seconds),
        }
        // Never the arguments: they may hold secrets or personal data.
        tracing::info!(
            tool = name,
            status,
            transport = transport.as_str(),
            duration_ms = elapsed.as_secs_f64() * 1e3,
            "tool call {name}: {status}"
        );
        result.map(|(outcome, _)| outcome)
    }

    async fn run(
        &self,
        entry: &Entry,
        name: &str,
        arguments: Option<Map<String, Value>>,
        ctx: CallContext,
    ) -> Result<(CallOutcome, &'static str), CallError> {
        let validator = match entry.validator() {
            Ok(v) => v,
            Err(problem) => {
                tracing::error!(tool = name, problem, "tool schema does not compile");
                let message = format!("tool {name} is misconfigured on this server: {problem}");
                return Ok((CallOutcome::error(message), "error"));
            }
        };
        let args = arguments.unwrap_or_default();
        let instance = Value::Object(args);
        if let Err(invalid) = validator.validate(&instance) {
            // The message never holds the failing value: it may be a secret, and it reaches logs.
            return Err(CallError::InvalidArguments {
                tool: name.to_owned(),
                path: invalid.path,
                message: invalid.message,
            });
        }
        let Value::Object(args) = instance else {
            unreachable!("constructed as an object above")
        };
        let tool = &entry.tool;
        let run = async {
            // Waiting for a slot counts against the timeout: a saturated tool times out
            // rather than queueing without bound.
            let _permit = entry.slots.acquire().await;
            AssertUnwindSafe((tool.handler)(args, ctx))
                .catch_unwind()
                .await
        };
        let outcome = match tokio::time::timeout(tool.timeout, run).await {
            Err(_) => (
                CallOutcome::error(format!(
                    "tool {name} timed out after {:?}: try a smaller request or try again later",
                    tool.timeout
                )),
                "timeout",
            ),
            Ok(Err(_panic)) => {
                tracing::error!(tool = name, "tool handler panicked");
                (
                    CallOutcome::error(format!("tool {name} failed unexpectedly")),
                    "error",
                )
            }
            Ok(Ok(Err(e))) => (CallOutcome::error(e.0), "error"),
            Ok(Ok(Ok(output))) => {
                let size = result_size(&output.content, output.structured.as_ref());
                if size > self.max_result_bytes {
                    (
                        CallOutcome::error(format!(
                            "tool {name} returned {size} bytes, over the {} byte result cap: ask for less",
                            self.max_result_bytes
                        )),
                        "error",
                    )
                } else {
                    (
                        CallOutcome {
                            content: output.content,
                            structured: output.structured,
                            is_error: false,
                        },
                        "success",
                    )
                }
            }
        };
        Ok(outcome)
    }
}

/// The result's size as JSON, counted as it is serialized rather than buffered.
fn result_size(content: &[Content], structured: Option<&Value>) -> usize {
    let content = json_len(content);
    let structured = structured.map_or(0, json_len);
    content.saturating_add(structured)
}

fn json_len(value: &(impl serde::Serialize + ?Sized)) -> usize {
    let mut counter = ByteCount(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// A writer that only counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_bounds(schema: &Value) -> Result<(), String> {
    fn depth(v: &Value) -> usize {
        match v {
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    if !schema.is_object() {
        return Err("input schema is not a JSON object".into());
    }
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err("input schema must have \"type\": \"object\"".into());
    }
    let d = depth(schema);
    if d > MAX_SCHEMA_DEPTH {
        return Err(format!(
            "input schema nests {d} levels, over {MAX_SCHEMA_DEPTH}"
        ));
    }
    let size = serde_json::to_vec(schema).map_or(usize::MAX, |v| v.len());
    if size > MAX_SCHEMA_BYTES {
        return Err(format!(
            "input schema is {size} bytes, over {MAX_SCHEMA_BYTES}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::{ToolError, ToolOutput};
    use serde_json::json;
    use std::time::Duration;

    fn registry(tools: Vec<Tool>) -> Registry {
        Registry::new(tools, 1024, &mut MetricsRegistry::default()).unwrap()
    }

    fn obj(v: Value) -> Option<Map<String, Value>> {
        v.as_object().cloned()
    }

    fn echo() -> Tool {
        Tool::new(
            "echo",
            "echo",
            json!({"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}),
            |args, _| async move { Ok(ToolOutput::text(args["text"].as_str().unwrap_or_default())) },
        )
    }

    #[tokio::test]
    async fn lists_in_name_order() {
        let mut b = echo();
        b.name = "b".into();
        let mut a = echo();
        a.name = "a".into();
        let r = registry(vec![b, a]);
        let names: Vec<&str> = r.tools().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[tokio::test]
    async fn invalid_arguments_name_the_path() {
        let r = registry(vec![echo()]);
        let e = r
            .call(
                "echo",
                obj(json!({"text": 5})),
                CallContext::default(),
                Transport::Http,
            )
            .await
            .unwrap_err();
        match e {
            CallError::InvalidArguments { path, .. } => assert_eq!(path, "/text"),
            other => panic!("{other:?}"),
        }
        let e = r
            .call("nope", None, CallContext::default(), Transport::Http)
            .await
            .unwrap_err();
        assert_eq!(e, CallError::UnknownTool("nope".into()));
    }

    #[tokio::test]
    async fn failures_timeouts_and_big_results_are_error_results() {
        let failing = Tool::new("fail", "", json!({"type":"object"}), |_, _| async {
            Err(ToolError::new("upstream said no"))
        });
        let slow = Tool::new("slow", "", json!({"type":"object"}), |_, _| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(ToolOutput::text("late"))
        })
        .timeout(Duration::from_millis(20));
        let big = Tool::new("big", "", json!({"type":"object"}), |_, _| async {
            Ok(ToolOutput::text("x".repeat(4096)))
        });
        let panics = Tool::new("panics", "", json!({"type":"object"}), |_, _| async {
            panic!("boom")
        });
        let r = registry(vec![failing, slow, big, panics]);
        for (name, needle) in [
            ("fail", "upstream said no"),
            ("slow", "timed out"),
            ("big", "result cap"),
            ("panics", "failed unexpectedly"),
        ] {
            let out = r
                .call(name, None, CallContext::default(), Transport::Grpc)
                .await
                .unwrap();
            assert!(out.is_error, "{name}");
            let Content::Text { text } = &out.content[0] else {
                panic!()
            };
            assert!(text.contains(needle), "{name}: {text}");
        }
    }

    #[test]
    fn refuses_remote_refs_and_non_object_schemas() {
        let remote = Tool::new(
            "r",
            "",
            json!({"type":"object","properties":{"a":{"$ref":"https://example.com/s.json"}}}),
            |_, _| async { Ok(ToolOutput::default()) },
        );
        let r = Registry::new(vec![remote], 1, &mut MetricsRegistry::default()).unwrap();
        assert!(r.compile_all().is_err());
        let not_object = Tool::new("n", "", json!({"type":"string"}), |_, _| async {
            Ok(ToolOutput::default())
        });
        assert!(Registry::new(vec![not_object], 1, &mut MetricsRegistry::default()).is_err());
    }
}
