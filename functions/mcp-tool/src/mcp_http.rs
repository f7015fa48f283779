//! MCP over Streamable HTTP at `POST /mcp`, both protocol eras, through the official SDK
//! (`rmcp`): the 2026-07-28 stateless protocol (`server/discover`, per-request `_meta`, header
//! checks) and the legacy `initialize` handshake (2025-06-18, 2025-11-25).
//!
//! Served without sessions: Cloud Run sends each request to any instance and scales to zero,
//! so no state may live in one instance's memory. Legacy clients get no `MCP-Session-Id` (the
//! specification makes it optional) and every request stands alone.

// Logging is deprecated in the 2026-07-28 revision (SEP-2577) but part of the legacy revisions
// this server still serves, and the conformance suite checks it there.
#![allow(deprecated)]

use aixrun::telemetry::{propagation, spans};
use std::sync::Arc;
use tracing::Instrument as _;

use axum::Router;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    ListToolsResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ProtocolVersion, ResultType, ServerConfig,
    SetLevelRequestParams,
};
use rmcp::service::{Peer, RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};

use crate::registry::{CallError, CallOutcome, Registry, Transport};
use crate::tool::{BoxFuture, CallContext, Content, Reporter};

/// `ttlMs` of `tools/list` (2026-07-28): five minutes.
const TOOL_LIST_TTL_MS: u64 = 5 * 60 * 1000;
/// The MCP path.
pub const PATH: &str = "/mcp";

/// The `rmcp` server handler over the tool registry.
#[derive(Clone)]
pub struct McpHandler {
    registry: Arc<Registry>,
    tools: Arc<ListToolsResult>,
    info: Arc<ServerConfig>,
}

impl McpHandler {
    /// Prepares the tool list and server identity once, so each request only clones them.
    pub fn new(registry: Arc<Registry>, version: &str) -> Result<Self, serde_json::Error> {
        let tools = registry
            .tools()
            .map(|t| {
                let mut tool = json!({
                    "name": t.name,
                    "description": t.description,
                    "inputSchema": t.input_schema,
                });
                if let Some(title) = &t.title {
                    tool["title"] = json!(title);
                }
                if let Some(schema) = &t.output_schema {
                    tool["outputSchema"] = schema.clone();
                }
                if let Some(annotations) = &t.annotations {
                    tool["annotations"] = annotations.clone();
                }
                tool
            })
            .collect::<Vec<Value>>();
        let mut tools: ListToolsResult = serde_json::from_value(json!({ "tools": tools }))?;
        // 2026-07-28 requires `resultType: "complete"`; deserializing leaves it unset (rmcp's
        // constructors set it), and rmcp strips it again for legacy peers.
        tools.result_type = Some(ResultType::COMPLETE);
        // The list is fixed for the life of an instance (it comes from the config read at
        // start-up), so clients may keep it a while instead of asking before every call; a
        // new revision's list is seen within this bound.
        tools.ttl_ms = Some(TOOL_LIST_TTL_MS);
        let info: ServerConfig = serde_json::from_value(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {"listChanged": false}, "logging": {}},
            "serverInfo": {"name": "aixrun-mcp-tool", "title": "aixrun MCP tool server", "version": version},
            "instructions": "Tools served by aixrun mcp-tool. Call tools/list to see them."
        }))?;
        Ok(Self {
            registry,
            tools: Arc::new(tools),
            info: Arc::new(info),
        })
    }
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        (*self.info).clone()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok((*self.tools).clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // 2026-07-28: no `notifications/message` unless the request's `_meta` asks for a level
        // (and then only at or above it). Legacy: every message, as no session keeps a
        // `logging/setLevel` level.
        let modern = context
            .protocol_version()
            .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let min_log_level = if modern {
            context.meta.log_level()
        } else {
            Some(LoggingLevel::Debug)
        };
        let reporter = HttpReporter {
            peer: context.peer.clone(),
            progress_token: context.meta.get_progress_token(),
            min_log_level,
        };
        let span = server_span(&request.name, &context);
        let call = self
            .registry
            .call(
                &request.name,
                request.arguments,
                CallContext::with_reporter(Arc::new(reporter)),
                Transport::Http,
            )
            .instrument(span.clone());
        // A client that cancels or closes the stream stops the work.
        let outcome = tokio::select! {
            outcome = call => outcome,
            () = context.ct.cancelled() => {
                spans::record_error(&span, "cancelled");
                return Err(ErrorData::internal_error("request cancelled", None));
            }
        };
        match &outcome {
            Ok(o) if o.is_error => spans::record_error(&span, "tool_error"),
            Ok(_) => {}
            Err(_) => {
                // JSON-RPC's invalid params.
                span.record("rpc.response.status_code", "-32602");
                spans::record_error(&span, "-32602");
            }
        }
        drop(span);
        match outcome {
            Ok(outcome) => to_result(outcome).map(CallToolResponse::from),
            Err(e @ CallError::UnknownTool(_)) => Err(ErrorData::invalid_params(
                e.to_string(),
                Some(json!({"tool": request.name})),
            )),
            Err(CallError::InvalidArguments {
                tool,
                path,
                message,
            }) => Err(ErrorData::invalid_params(
                format!("invalid arguments for {tool} at {path}: {message}"),
                Some(json!({"tool": tool, "path": path})),
            )),
        }
    }

    /// Accepted so clients can call it, but with no sessions there is nothing to keep the level
    /// in: tools send their few log messages at the level they choose.
    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }
}

/// The rmcp result, built directly: `CallOutcome` already has MCP's shape, and a round trip
/// through `serde_json::Value` cost more than the rest of the handler.
fn to_result(outcome: CallOutcome) -> Result<CallToolResult, ErrorData> {
    let content = outcome
        .content
        .into_iter()
        .map(to_block)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ErrorData::internal_error(format!("tool result: {e}"), None))?;
    // Both constructors set `resultType: "complete"`, required by 2026-07-28 and stripped by
    // rmcp for legacy peers.
    let mut result = if outcome.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    result.structured_content = outcome.structured;
    Ok(result)
}

fn to_block(content: Content) -> Result<ContentBlock, serde_json::Error> {
    Ok(match content {
        Content::Text { text } => ContentBlock::text(text),
        Content::Image { data, mime_type } => ContentBlock::image(data, mime_type),
        Content::Audio { data, mime_type } => ContentBlock::audio(data, mime_type),
        // Free-form: rmcp checks it is a resource (`uri` with `text` or `blob`).
        Content::Resource { resource } => ContentBlock::resource(serde_json::from_value(resource)?),
        Content::ResourceLink { link } => {
            ContentBlock::resource_link(serde_json::from_value(Value::Object(link))?)
        }
    })
}

/// Sends a call's progress and log messages as MCP notifications (rmcp switches the response
/// to an event stream when a handler notifies before answering).
struct HttpReporter {
    peer: Peer<RoleServer>,
    progress_token: Option<ProgressToken>,
    /// The least severe level sent; `None` sends no log messages.
    min_log_level: Option<LoggingLevel>,
}

impl Reporter for HttpReporter {
    fn progress(
        &self,
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    ) -> BoxFuture<()> {
        let Some(token) = self.progress_token.clone() else {
            return Box::pin(async {});
        };
        let peer = self.peer.clone();
        Box::pin(async move {
            let mut param = ProgressNotificationParam::new(token, progress);
            param.total = total;
            param.message = message;
            let _ = peer.notify_progress(param).await;
        })
    }

    fn log(&self, level: &str, data: Value) -> BoxFuture<()> {
        let level = match level {
            "debug" => LoggingLevel::Debug,
            "notice" => LoggingLevel::Notice,
            "warning" => LoggingLevel::Warning,
            "error" => LoggingLevel::Error,
            _ => LoggingLevel::Info,
        };
        // Declared from least to most severe, so the discriminant orders severity.
        if self
            .min_log_level
            .is_none_or(|min| (level as u8) < (min as u8))
        {
            return Box::pin(async {});
        }
        let peer = self.peer.clone();
        Box::pin(async move {
            let _ = peer
                .notify_logging_message(LoggingMessageNotificationParam::new(level, data))
                .await;
        })
    }
}

/// The `/mcp` route. Host and Origin are checked by the runtime's access guard in front of
/// every route, so rmcp's own checks are off.
pub fn router(handler: McpHandler, max_body_bytes: usize) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(max_body_bytes)
        .disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new().route_service(PATH, service)
}

/// The `tools/call {tool}` SERVER span. Its parent is the trace context the client put in
/// `params._meta` (MCP's convention), else the request's `traceparent` header.
fn server_span(tool: &str, context: &RequestContext<RoleServer>) -> tracing::Span {
    let span = spans::mcp_tools_call(spans::Side::Server, tool, "http");
    if span.is_disabled() {
        return span;
    }
    let parent = propagation::from_meta(&context.meta.0.0).or_else(|| {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| propagation::extract(&parts.headers))
    });
    if let Some(parent) = parent {
        spans::set_parent(&span, parent);
    }
    if let Some(version) = context.protocol_version() {
        span.record("mcp.protocol.version", version.as_str());
    }
    span.record("jsonrpc.request.id", context.id.to_string());
    span
}
