//! Loopback fakes of outside APIs. Each test file builds an axum router that reproduces one
//! service's documented request checks and response formats; this module serves it on
//! 127.0.0.1:0, records every request that arrives, and calls tools the way the registry does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use mcp_tool::tool::{CallContext, Tool, ToolError, ToolOutput};
use serde_json::Value;

/// Largest request body a fake reads.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: HashMap<String, String>,
    pub(crate) authorization: Option<String>,
    /// The body as JSON; `None` when empty.
    pub(crate) body: Option<Value>,
}

/// A fake serving on a loopback port until the test ends.
pub(crate) struct Fake {
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Fake {
    /// Serves `router` on 127.0.0.1:0, recording each request before the router sees it.
    pub(crate) async fn start(router: Router) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&log);
        let app = router.layer(middleware::from_fn(move |request: Request, next: Next| {
            let log = Arc::clone(&recorder);
            async move {
                let (parts, body) = request.into_parts();
                let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
                    return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "body too large")
                        .into_response();
                };
                let uri = reqwest::Url::parse(&format!("http://fake{}", parts.uri))
                    .expect("request target");
                log.lock().unwrap().push(Received {
                    method: parts.method.to_string(),
                    path: uri.path().to_owned(),
                    query: uri.query_pairs().into_owned().collect(),
                    authorization: parts
                        .headers
                        .get(axum::http::header::AUTHORIZATION)
                        .map(|v| v.to_str().unwrap_or("<not text>").to_owned()),
                    body: serde_json::from_slice(&bytes).ok(),
                });
                next.run(Request::from_parts(parts, Body::from(bytes)))
                    .await
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, log }
    }

    /// Every request so far, oldest first.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

/// A JSON response with this status.
pub(crate) fn json(status: u16, body: Value) -> Response {
    let status = axum::http::StatusCode::from_u16(status).expect("status code");
    (status, axum::Json(body)).into_response()
}

/// Size of a [`huge`] body: far past any tool's response cap.
pub(crate) const HUGE_BYTES: usize = 300 * 1024 * 1024;
const HUGE_CHUNK_BYTES: usize = 64 * 1024;

/// A 200 JSON answer of [`HUGE_BYTES`] (a `[` then blanks) sent chunked, as a runaway upstream
/// would. It is generated lazily from one shared chunk, never held in memory; `sent` counts the
/// bytes handed to the connection.
pub(crate) fn huge(sent: Arc<AtomicUsize>) -> Response {
    let chunk = axum::body::Bytes::from(vec![b' '; HUGE_CHUNK_BYTES]);
    let chunks = (0..HUGE_BYTES / HUGE_CHUNK_BYTES).map(move |i| {
        sent.fetch_add(HUGE_CHUNK_BYTES, Ordering::SeqCst);
        let bytes = if i == 0 {
            axum::body::Bytes::from_static(b"[")
        } else {
            chunk.clone()
        };
        Ok::<_, std::convert::Infallible>(bytes)
    });
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The tool called `name`.
pub(crate) fn find<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

/// Whether the tool's input schema accepts `args` (the registry's check before each call).
pub(crate) fn schema_accepts(tool: &Tool, args: &Value) -> bool {
    aixrun::schema::Schema::compile(&tool.input_schema)
        .expect("input schema compiles")
        .validate(args)
        .is_ok()
}

/// Calls a tool as the registry would: the arguments must pass its input schema; a structured
/// result must match its output schema.
pub(crate) async fn call(tools: &[Tool], name: &str, args: Value) -> Result<ToolOutput, ToolError> {
    let tool = find(tools, name);
    assert!(schema_accepts(tool, &args), "{name}: schema rejects {args}");
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let output = (tool.handler)(args, CallContext::default()).await?;
    if let (Some(schema), Some(value)) = (&tool.output_schema, &output.structured) {
        let validator = aixrun::schema::Schema::compile(schema).expect("output schema compiles");
        if let Err(e) = validator.validate(value) {
            panic!("{name}: output {value} breaks its schema: {e}");
        }
    }
    Ok(output)
}

/// The text of the first content block.
pub(crate) fn text(output: &ToolOutput) -> &str {
    match output.content.first() {
        Some(mcp_tool::tool::Content::Text { text }) => text,
        other => panic!("expected a text block, got {other:?}"),
    }
}
