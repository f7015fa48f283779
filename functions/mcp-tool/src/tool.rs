//! What a tool is, independent of transport: its description (name, schemas, annotations,
//! limits), its handler, what it returns, and the context it may report progress through.
//! The MCP HTTP layer and the gRPC service both serve the same [`Tool`] values.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

/// Arguments of one call: the JSON object the client sent (already schema-validated).
pub type Args = Map<String, Value>;

/// A boxed future as handlers return it.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A tool's handler.
pub type Handler =
    Arc<dyn Fn(Args, CallContext) -> BoxFuture<Result<ToolOutput, ToolError>> + Send + Sync>;

/// Default time a call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of calls of one tool running at once (per instance).
pub const DEFAULT_CONCURRENCY: usize = 64;

/// One tool.
#[derive(Clone)]
pub struct Tool {
    /// Unique name (`[A-Za-z0-9_.-]{1,128}`).
    pub name: String,
    /// Human-readable title.
    pub title: Option<String>,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema (2020-12) of the arguments object.
    pub input_schema: Value,
    /// JSON Schema of `structuredContent`, when the tool returns it.
    pub output_schema: Option<Value>,
    /// MCP tool annotations (`readOnlyHint`, `openWorldHint`, ...).
    pub annotations: Option<Value>,
    /// Longest a call may run; past it the caller gets an `isError` result naming the timeout.
    pub timeout: Duration,
    /// Calls allowed at once; more wait for a slot (within the timeout).
    pub max_concurrency: usize,
    /// The code that runs.
    pub handler: Handler,
}

impl Tool {
    /// A tool with default limits and no title, output schema or annotations.
    pub fn new<F, Fut>(name: &str, description: &str, input_schema: Value, handler: F) -> Self
    where
        F: Fn(Args, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
    {
        Self {
            name: name.to_owned(),
            title: None,
            description: description.to_owned(),
            input_schema,
            output_schema: None,
            annotations: None,
            timeout: DEFAULT_TIMEOUT,
            max_concurrency: DEFAULT_CONCURRENCY,
            handler: Arc::new(move |args, ctx| Box::pin(handler(args, ctx))),
        }
    }

    /// Sets the title.
    pub fn title(mut self, title: &str) -> Self {
        self.title = Some(title.to_owned());
        self
    }

    /// Sets the output schema.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// Sets the annotations.
    pub fn annotations(mut self, annotations: Value) -> Self {
        self.annotations = Some(annotations);
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// One content block of a result, in MCP's wire shape: the workspace's one content model,
/// which the gRPC service converts to `mcp.Content` and orchestrate reads.
pub use aixrun_proto::mcp_json::Content;

/// What a successful call returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    /// Content blocks, in order.
    pub content: Vec<Content>,
    /// Structured result (matches the output schema when the tool declares one).
    pub structured: Option<Value>,
}

impl ToolOutput {
    /// A single text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![Content::text(text)],
            structured: None,
        }
    }

    /// A structured result, with its JSON text as the content block (for older clients).
    pub fn structured(value: Value) -> Self {
        Self {
            content: vec![Content::text(value.to_string())],
            structured: Some(value),
        }
    }
}

/// A tool failure the model should see (an `isError: true` result): say what went wrong and,
/// where possible, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Where a running call reports progress and log messages; what happens to them depends on
/// the transport (MCP notifications, gRPC stream messages, or nowhere).
pub trait Reporter: Send + Sync {
    /// `notifications/progress`: `progress` so far of `total`, with an optional message.
    fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>)
    -> BoxFuture<()>;
    /// `notifications/message`: a log message at `level` (`debug`, `info`, `warning`, `error`...).
    fn log(&self, level: &str, data: Value) -> BoxFuture<()>;
}

/// Context of one call.
#[derive(Clone, Default)]
pub struct CallContext {
    reporter: Option<Arc<dyn Reporter>>,
}

impl CallContext {
    /// A context that reports through `reporter`.
    pub fn with_reporter(reporter: Arc<dyn Reporter>) -> Self {
        Self {
            reporter: Some(reporter),
        }
    }

    /// Reports progress, if the caller asked for it.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        if let Some(r) = &self.reporter {
            r.progress(progress, total, message).await;
        }
    }

    /// Sends a log message to the caller, if the transport carries them.
    pub async fn log(&self, level: &str, data: Value) {
        if let Some(r) = &self.reporter {
            r.log(level, data).await;
        }
    }
}
