//! The `http` transport: MCP over Streamable HTTP to any standards-compliant server, through
//! the official SDK's client (rmcp). The first connection probes 2026-07-28 with
//! `server/discover` and falls back to the 2025-11-25 `initialize` handshake when the server
//! answers as a legacy one (rmcp's `ClientLifecycleMode::Auto`, like the Python SDK's auto
//! mode); the era that worked is remembered, so reconnections go straight to it.
//!
//! Cancellation is rmcp's when the call's future is dropped: it sends
//! `notifications/cancelled` with the request id, and its HTTP worker closes the request's
//! response stream, which is the cancel on 2026-07-28 servers.

mod client;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument as _;

use rmcp::ServiceError;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ErrorCode, Implementation,
    PaginatedRequestParams, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, RoleClient, RunningService, serve_client_with_lifecycle};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;

use super::auth::AuthProvider;
use super::error::redact;
use super::grpc::host_of;
use super::tls::TlsFiles;
use super::{Arguments, Content, McpError, McpServer, ToolInfo, ToolList, ToolResult};
use client::AuthedClient;

/// Longest a connection handshake plus a whole listing may take.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest JSON response or SSE event accepted (a tool result).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Longest server message quoted in an error.
const MAX_QUOTED: usize = 500;
/// Most pages one listing follows: a server repeating cursors cannot keep us looping.
const MAX_PAGES: usize = 100;

/// The protocol era a server was found to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28: stateless, `server/discover`.
    Modern,
    /// 2025-11-25 and older: `initialize` handshake.
    Legacy,
}

type Connection = RunningService<RoleClient, ClientConfig>;

/// One server reached over Streamable HTTP.
pub struct HttpServer {
    name: String,
    /// "name (host)", for messages.
    label: String,
    url: String,
    host: String,
    client: AuthedClient,
    era: Mutex<Option<Era>>,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

impl HttpServer {
    /// A client for the MCP endpoint at `url` (`http://` or `https://` with `tls`). Nothing
    /// is sent until the first list or call.
    pub fn new(
        name: &str,
        url: &str,
        tls: &TlsFiles,
        auth: Option<Arc<dyn AuthProvider>>,
    ) -> Result<Self, McpError> {
        let host = host_of(url);
        let label = format!("{name} ({host})");
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(McpError::Config {
                server: label,
                problem: "the MCP URL must start with http:// or https://".into(),
            });
        }
        let client = AuthedClient::new(url, tls, auth).map_err(|problem| McpError::Config {
            server: label.clone(),
            problem,
        })?;
        Ok(Self {
            name: name.to_owned(),
            label,
            url: url.to_owned(),
            host,
            client,
            era: Mutex::new(None),
            connection: tokio::sync::Mutex::new(None),
        })
    }

    /// Skips the probe: the server is known to speak `era` (from configuration, or from a
    /// previous run).
    pub fn with_era(self, era: Era) -> Self {
        *self.era.lock().unwrap_or_else(|e| e.into_inner()) = Some(era);
        self
    }

    /// The era the server answered in, once connected.
    pub fn era(&self) -> Option<Era> {
        *self.era.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn quote(&self, message: &str) -> String {
        let message = redact(message, &self.url, &self.host);
        match message.char_indices().nth(MAX_QUOTED) {
            Some((end, _)) => format!("{}...", &message[..end]),
            None => message,
        }
    }

    /// The open connection, or a new one in the remembered era (probing when none is known).
    async fn connection(&self) -> Result<Arc<Connection>, McpError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref()
            && !connection.is_transport_closed()
        {
            return Ok(connection.clone());
        }
        let lifecycle = match self.era() {
            None => ClientLifecycleMode::Auto {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                legacy_version: Some(ProtocolVersion::V_2025_11_25),
            },
            Some(Era::Modern) => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
            Some(Era::Legacy) => ClientLifecycleMode::Initialize,
        };
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str())
            .max_json_response_size(MAX_RESPONSE_BYTES);
        let mut config = config;
        config.max_sse_event_size = MAX_RESPONSE_BYTES;
        let transport = StreamableHttpClientTransport::with_client(self.client.clone(), config);
        let mut info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("aixrun-orchestrate", env!("CARGO_PKG_VERSION")),
        );
        // The caller's trace (a `tools/call` span, or the listing agent's) continues into the
        // handshake: `initialize` carries it in `params._meta` (and so in its POST's headers);
        // `server/discover`, whose `_meta` rmcp writes, in the headers only.
        let meta = aixrun::telemetry::spans::meta_of(&tracing::Span::current());
        if !meta.is_empty() {
            info.meta = Some(request_meta(meta.clone()));
            self.client.set_connecting(Some(meta));
        }
        // On a task of its own, outside the caller's span: rmcp's long-lived tasks take the
        // current span as theirs, which would keep the agent's and the request's spans open
        // (never ended, never exported). Aborted if the caller gives up.
        let mut connecting = AbortOnDrop(tokio::spawn(serve_client_with_lifecycle(
            info, transport, lifecycle,
        )));
        let connected = (&mut connecting.0).await;
        self.client.set_connecting(None);
        let connection = connected
            .map_err(|e| McpError::Transport {
                server: self.label.clone(),
                problem: format!("could not connect: {e}"),
            })?
            .map_err(|e| McpError::Transport {
                server: self.label.clone(),
                problem: format!("could not connect: {}", self.quote(&e.to_string())),
            })?;
        let version = connection
            .peer_info()
            .map(|info| info.protocol_version.clone());
        let era = match version {
            Some(v) if !v.has_initialize() => Era::Modern,
            _ => Era::Legacy,
        };
        *self.era.lock().unwrap_or_else(|e| e.into_inner()) = Some(era);
        tracing::debug!(server = %self.name, ?era, "MCP server connected");
        let connection = Arc::new(connection);
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Forgets a connection whose transport failed, so that the next use reconnects.
    async fn forget(&self, error: &ServiceError) {
        if matches!(
            error,
            ServiceError::TransportClosed | ServiceError::TransportSend(_)
        ) {
            *self.connection.lock().await = None;
        }
    }

    fn service_error(&self, tool: Option<&str>, error: ServiceError) -> McpError {
        let server = self.label.clone();
        match error {
            // Tools' protocol errors are all -32602 (server/tools.mdx, "Error Handling"):
            // unknown tool and invalid arguments differ only by their message.
            ServiceError::McpError(e) if e.code == ErrorCode::INVALID_PARAMS && tool.is_some() => {
                let tool = tool.unwrap_or_default().to_owned();
                let lower = e.message.to_lowercase();
                if lower.contains("unknown tool") || lower.contains("not found") {
                    McpError::UnknownTool { server, tool }
                } else {
                    McpError::InvalidArguments {
                        server,
                        tool,
                        message: self.quote(&e.message),
                    }
                }
            }
            ServiceError::McpError(e) => McpError::Protocol {
                server,
                problem: format!("JSON-RPC error {}: {}", e.code.0, self.quote(&e.message)),
            },
            ServiceError::Timeout { timeout } => McpError::Timeout { server, timeout },
            e @ (ServiceError::TransportClosed | ServiceError::TransportSend(_)) => {
                McpError::Transport {
                    server,
                    problem: self.quote(&e.to_string()),
                }
            }
            e => McpError::Protocol {
                server,
                problem: self.quote(&e.to_string()),
            },
        }
    }

    fn timed_out(&self, timeout: Duration) -> McpError {
        McpError::Timeout {
            server: self.label.clone(),
            timeout,
        }
    }

    async fn list(&self) -> Result<ToolList, McpError> {
        let connection = self.connection().await?;
        let (items, ttl_ms) = match self.list_pages(&connection).await {
            Ok(merged) => merged,
            Err(e) => {
                self.forget(&e).await;
                return Err(self.service_error(None, e));
            }
        };
        let mut tools = Vec::with_capacity(items.len());
        for tool in items {
            match to_tool_info(serde_json::to_value(tool).unwrap_or_default()) {
                Some(info) => tools.push(info),
                None => tracing::warn!(server = %self.name, "skipped a tool without a name"),
            }
        }
        Ok(ToolList {
            tools: tools.into(),
            ttl: ttl_ms.map(Duration::from_millis),
        })
    }

    /// Every page of `tools/list`, each request carrying the caller's trace context in
    /// `params._meta` (and so in its POST's headers, see `client.rs`), as `tools/call` does.
    /// The list's TTL is the shortest page's, `None` if any page gave none.
    async fn list_pages(
        &self,
        connection: &Connection,
    ) -> Result<(Vec<rmcp::model::Tool>, Option<u64>), ServiceError> {
        let meta = aixrun::telemetry::spans::meta_of(&tracing::Span::current());
        let mut items = Vec::new();
        let mut ttl: Option<Option<u64>> = None;
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let mut params = PaginatedRequestParams::default().with_cursor(cursor);
            if !meta.is_empty() {
                params.meta = Some(request_meta(meta.clone()));
            }
            let page = connection.peer().list_tools(Some(params)).await?;
            let page_ttl = page.ttl_ms;
            ttl = Some(match ttl {
                None => page_ttl,
                Some(before) => before.zip(page_ttl).map(|(a, b)| a.min(b)),
            });
            items.extend(page.tools);
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok((items, ttl.flatten()));
            }
        }
        Err(ServiceError::McpError(
            rmcp::model::ErrorData::internal_error(
                format!("tool list longer than {MAX_PAGES} pages"),
                None,
            ),
        ))
    }

    async fn call(
        &self,
        tool: &str,
        arguments: Arguments,
        idempotency_key: Option<&str>,
    ) -> Result<ToolResult, McpError> {
        use aixrun::telemetry::spans;
        let span = spans::mcp_tools_call(spans::Side::Client, tool, "http");
        span.record("server.address", self.host.as_str());
        let connection = self.connection().instrument(span.clone()).await?;
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        // The trace travels in `params._meta` (MCP's convention), and the transport copies it
        // into the POST's headers (see `client.rs`): rmcp sends from its own task.
        let mut meta = spans::meta_of(&span);
        if let Some(key) = idempotency_key {
            meta.insert(
                super::IDEMPOTENCY_META.to_owned(),
                Value::String(key.to_owned()),
            );
        }
        if !meta.is_empty() {
            params.meta = Some(request_meta(meta));
        }
        let outcome = match connection
            .peer()
            .call_tool(params)
            .instrument(span.clone())
            .await
        {
            Ok(result) => Ok(to_tool_result(
                serde_json::to_value(result).unwrap_or_default(),
            )),
            Err(e) => {
                self.forget(&e).await;
                Err(self.service_error(Some(tool), e))
            }
        };
        match &outcome {
            Ok(result) if result.is_error => spans::record_error(&span, "tool_error"),
            Ok(_) => {}
            Err(e) => spans::record_error(&span, e.error_type()),
        }
        outcome
    }
}

#[async_trait::async_trait]
impl McpServer for HttpServer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn list_tools(&self) -> Result<ToolList, McpError> {
        tokio::time::timeout(LIST_TIMEOUT, self.list())
            .await
            .map_err(|_| self.timed_out(LIST_TIMEOUT))?
    }

    async fn call_tool(
        &self,
        tool: &str,
        arguments: Arguments,
        timeout: Duration,
        idempotency_key: Option<&str>,
    ) -> Result<ToolResult, McpError> {
        // Dropping the inner future on timeout is the same cancel as the caller dropping ours.
        tokio::time::timeout(timeout, self.call(tool, arguments, idempotency_key))
            .await
            .map_err(|_| self.timed_out(timeout))?
    }
}

/// A tool as `tools/list` gives it (schema.mdx `Tool`); `None` without a name.
fn to_tool_info(tool: Value) -> Option<ToolInfo> {
    let text = |key: &str| tool.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(ToolInfo {
        name: text("name")?,
        title: text("title"),
        description: text("description").unwrap_or_default(),
        input_schema: tool
            .get("inputSchema")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type": "object"})),
        output_schema: tool.get("outputSchema").cloned(),
        annotations: tool.get("annotations").cloned(),
    })
}

/// A `CallToolResult` (schema.mdx): content blocks this client doesn't know become their
/// JSON text rather than being lost.
fn to_tool_result(result: Value) -> ToolResult {
    let content = result
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .map(|block| {
                    serde_json::from_value::<Content>(block.clone())
                        .unwrap_or_else(|_| Content::text(block.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    ToolResult {
        content,
        structured_content: result.get("structuredContent").cloned(),
        is_error: result
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

/// Trace context (`traceparent`, `tracestate`) as a request's `params._meta`.
fn request_meta(meta: serde_json::Map<String, Value>) -> rmcp::model::RequestMetaObject {
    rmcp::model::RequestMetaObject(rmcp::model::MetaObject(meta))
}

/// A task aborted when its handle is dropped (the caller's future was cancelled).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `CallToolResult` example of server/tools.mdx, with a block type from a later
    /// revision this client doesn't know.
    #[test]
    fn results_keep_every_block() {
        let result = to_tool_result(json!({
            "content": [
                {"type": "text", "text": "72F"},
                {"type": "image", "data": "AQID", "mimeType": "image/png"},
                {"type": "hologram", "x": 1}
            ],
            "structuredContent": {"temperature": 72},
            "isError": false
        }));
        assert_eq!(result.content[0], Content::text("72F"));
        assert!(matches!(result.content[1], Content::Image { .. }));
        assert_eq!(
            result.content[2],
            Content::text(r#"{"type":"hologram","x":1}"#)
        );
        assert_eq!(result.structured_content, Some(json!({"temperature": 72})));
        assert!(!result.is_error);
    }
}
