//! `mcp.MCPService` over gRPC (and gRPC-Web, through the runtime): the same registry as the
//! HTTP transport, in the seed's wire format plus the added JSON fields.

use aixrun::telemetry::spans;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tracing::Instrument as _;

use aixrun_proto::mcp::{self as pb, mcp_service_server::McpService};
use aixrun_proto::mcp_json::{CONTENT_TYPES, from_pb_fields, to_flat_schema, to_pb_content};
use futures_util::Stream;
use serde_json::{Map, Value as Json};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use aixrun::error::{ApiError, ErrorKind};

use crate::registry::{CallError, CallOutcome, Registry, Transport};
use crate::tool::{BoxFuture, CallContext, Reporter, Tool};

/// Progress messages buffered per streaming call before the tool waits for the client.
const STREAM_BUFFER: usize = 16;

/// The gRPC service: cheap to clone, as each streaming call's task holds one.
#[derive(Clone)]
pub struct Service {
    registry: Arc<Registry>,
    tools: Arc<[pb::Tool]>,
    version: Arc<str>,
}

impl Service {
    /// Serves `registry`; the tool list is converted once.
    pub fn new(registry: Arc<Registry>, version: &str) -> Self {
        let tools = registry.tools().map(to_pb_tool).collect();
        Self {
            registry,
            tools,
            version: version.into(),
        }
    }

    async fn call(
        &self,
        request: pb::CallToolRequest,
        ctx: CallContext,
    ) -> Result<pb::CallToolResponse, Status> {
        let args = arguments(request.arguments_json, request.arguments)?;
        // A child of the gRPC server span, whose parent came in the `traceparent` metadata
        // (mcp.proto's request has no `_meta`).
        let span = spans::mcp_tools_call(spans::Side::Server, &request.name, "grpc");
        let outcome = self
            .registry
            .call(&request.name, Some(args), ctx, Transport::Grpc)
            .instrument(span.clone())
            .await;
        record(&span, &outcome);
        outcome.map(to_pb_response).map_err(to_status)
    }
}

/// A tool's failure (`isError`) or a refused call on the `tools/call` span.
fn record(span: &tracing::Span, outcome: &Result<crate::registry::CallOutcome, CallError>) {
    match outcome {
        Ok(o) if o.is_error => spans::record_error(span, "tool_error"),
        Ok(_) => {}
        Err(e) => {
            let code = to_status_code(e);
            span.record("rpc.response.status_code", code);
            spans::record_error(span, code);
        }
    }
}

fn to_status_code(e: &CallError) -> &'static str {
    match e {
        CallError::UnknownTool(_) => "NOT_FOUND",
        CallError::InvalidArguments { .. } => "INVALID_ARGUMENT",
    }
}

#[tonic::async_trait]
impl McpService for Service {
    async fn initialize(
        &self,
        _request: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::InitializeResponse>, Status> {
        Ok(Response::new(pb::InitializeResponse {
            protocol_version: "2025-11-25".into(),
            server_info: Some(pb::ServerInfo {
                name: "aixrun-mcp-tool".into(),
                version: self.version.to_string(),
            }),
            capabilities: Some(pb::Capabilities {
                // StreamCallTool streams progress; dropping the call cancels the tool;
                // tools report progress through it.
                supports_streaming: true,
                supports_cancellation: true,
                supports_progress: true,
                supported_content_types: CONTENT_TYPES.iter().map(|s| (*s).to_owned()).collect(),
            }),
            instructions: String::new(),
        }))
    }

    async fn list_tools(
        &self,
        _request: Request<pb::ListToolsRequest>,
    ) -> Result<Response<pb::ListToolsResponse>, Status> {
        Ok(Response::new(pb::ListToolsResponse {
            tools: self.tools.to_vec(),
            next_cursor: String::new(),
        }))
    }

    async fn call_tool(
        &self,
        request: Request<pb::CallToolRequest>,
    ) -> Result<Response<pb::CallToolResponse>, Status> {
        self.call(request.into_inner(), CallContext::default())
            .await
            .map(Response::new)
    }

    type StreamCallToolStream = CallStream;

    async fn stream_call_tool(
        &self,
        request: Request<pb::CallToolRequest>,
    ) -> Result<Response<Self::StreamCallToolStream>, Status> {
        let request = request.into_inner();
        // Protocol errors come back as the call's status, before any message.
        let args = arguments(request.arguments_json.clone(), request.arguments.clone())?;
        if self.registry.get(&request.name).is_none() {
            return Err(to_status(CallError::UnknownTool(request.name)));
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let reporter = StreamReporter { tx: tx.clone() };
        let service = self.clone();
        let span = spans::mcp_tools_call(spans::Side::Server, &request.name, "grpc");
        let task = tokio::spawn(async move {
            let outcome = service
                .registry
                .call(
                    &request.name,
                    Some(args),
                    CallContext::with_reporter(Arc::new(reporter)),
                    Transport::Grpc,
                )
                .instrument(span.clone())
                .await;
            record(&span, &outcome);
            drop(span);
            let result = outcome.map(to_pb_response).map_err(to_status);
            let _ = tx.send(result).await;
        });
        Ok(Response::new(CallStream {
            rx,
            task: task.abort_handle(),
        }))
    }

    async fn ping(
        &self,
        request: Request<pb::PingRequest>,
    ) -> Result<Response<pb::PingResponse>, Status> {
        Ok(Response::new(pb::PingResponse {
            timestamp: request.into_inner().timestamp,
            status: "ok".into(),
        }))
    }
}

/// The messages of one streaming call; dropping it (the client went away) stops the tool.
pub struct CallStream {
    rx: mpsc::Receiver<Result<pb::CallToolResponse, Status>>,
    task: tokio::task::AbortHandle,
}

impl Stream for CallStream {
    type Item = Result<pb::CallToolResponse, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for CallStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct StreamReporter {
    tx: mpsc::Sender<Result<pb::CallToolResponse, Status>>,
}

impl Reporter for StreamReporter {
    fn progress(
        &self,
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    ) -> BoxFuture<()> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let update = pb::CallToolResponse {
                progress: Some(pb::Progress {
                    progress,
                    total: total.unwrap_or(0.0),
                    message: message.unwrap_or_default(),
                }),
                ..Default::default()
            };
            let _ = tx.send(Ok(update)).await;
        })
    }

    /// gRPC has no log channel to the caller; tool log messages go nowhere here.
    fn log(&self, _level: &str, _data: Json) -> BoxFuture<()> {
        Box::pin(async {})
    }
}

/// Through the runtime's one error table: NOT_FOUND, INVALID_ARGUMENT.
fn to_status(e: CallError) -> Status {
    let kind = match e {
        CallError::UnknownTool(_) => ErrorKind::NotFound,
        CallError::InvalidArguments { .. } => ErrorKind::BadRequest,
    };
    ApiError::new(kind, e.to_string()).to_status()
}

/// The call's arguments: `arguments_json` when set, else the `arguments` map.
fn arguments(json: String, map: HashMap<String, pb::Value>) -> Result<Map<String, Json>, Status> {
    if json.trim().is_empty() {
        return Ok(from_pb_fields(map));
    }
    match serde_json::from_str::<Json>(&json) {
        Ok(Json::Object(args)) => Ok(args),
        Ok(_) => Err(Status::invalid_argument(
            "arguments_json is not a JSON object",
        )),
        Err(e) => Err(Status::invalid_argument(format!(
            "arguments_json is not valid JSON: {e}"
        ))),
    }
}

fn to_pb_response(outcome: CallOutcome) -> pb::CallToolResponse {
    pb::CallToolResponse {
        content: outcome.content.into_iter().map(to_pb_content).collect(),
        is_error: outcome.is_error,
        structured_content_json: outcome
            .structured
            .map(|v| v.to_string())
            .unwrap_or_default(),
        progress: None,
    }
}

fn to_pb_tool(tool: &Tool) -> pb::Tool {
    let json_text = |v: &Option<Json>| v.as_ref().map(Json::to_string).unwrap_or_default();
    pb::Tool {
        name: tool.name.clone(),
        description: tool.description.clone(),
        input_schema: Some(to_flat_schema(&tool.input_schema)),
        title: tool.title.clone().unwrap_or_default(),
        input_schema_json: tool.input_schema.to_string(),
        output_schema_json: json_text(&tool.output_schema),
        annotations_json: json_text(&tool.annotations),
    }
}
