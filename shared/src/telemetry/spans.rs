//! Span constructors shared by the functions (OpenTelemetry's GenAI and MCP conventions), so
//! that names and attributes are written in one place. Each returns a disabled span when
//! tracing is off. No prompt, argument or result text is ever recorded.

use tracing::Span;
use tracing::field::Empty;

/// Which side of an MCP request a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// `tools/call {tool}`: one MCP `tools/call` request, CLIENT (orchestrate) or SERVER (mcp-tool).
/// `transport` is `http` (Streamable HTTP, JSON-RPC) or `grpc` (`mcp.MCPService`).
pub fn mcp_tools_call(side: Side, tool: &str, transport: &'static str) -> Span {
    if !super::enabled() {
        return Span::none();
    }
    let kind = match side {
        Side::Client => "client",
        Side::Server => "server",
    };
    tracing::info_span!(
        "mcp",
        otel.name = format!("tools/call {tool}"),
        otel.kind = kind,
        otel.status_code = Empty,
        mcp.method.name = "tools/call",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        network.transport = "tcp",
        network.protocol.name = transport,
        server.address = Empty,
        mcp.protocol.version = Empty,
        jsonrpc.request.id = Empty,
        rpc.response.status_code = Empty,
        error.type = Empty,
    )
}

/// `execute_tool {tool}`: the agent running one tool call (INTERNAL), around the MCP call.
pub fn execute_tool(tool: &str, call_id: &str, tool_type: &'static str) -> Span {
    if !super::enabled() {
        return Span::none();
    }
    tracing::info_span!(
        "execute_tool",
        otel.name = format!("execute_tool {tool}"),
        otel.kind = "internal",
        otel.status_code = Empty,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        gen_ai.tool.call.id = call_id,
        gen_ai.tool.type = tool_type,
        error.type = Empty,
    )
}

/// `invoke_agent {agent}`: one agent's step of a run (INTERNAL).
pub fn invoke_agent(agent: &str, run_id: &str) -> Span {
    if !super::enabled() {
        return Span::none();
    }
    tracing::info_span!(
        "invoke_agent",
        otel.name = format!("invoke_agent {agent}"),
        otel.kind = "internal",
        otel.status_code = Empty,
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = agent,
        gen_ai.conversation.id = run_id,
        error.type = Empty,
    )
}

/// A gRPC call (`{service}/{method}`, CLIENT) to `server_address`; put its context in the
/// call's metadata with [`super::propagation::inject_current_metadata`] inside it.
pub fn grpc_client(rpc: &str, server_address: &str) -> Span {
    if !super::enabled() {
        return Span::none();
    }
    let (service, method) = rpc.split_once('/').unwrap_or((rpc, ""));
    tracing::info_span!(
        "grpc",
        otel.name = rpc,
        otel.kind = "client",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        server.address = server_address,
        error.type = Empty,
    )
}

/// Marks `span` failed with `error_type` (`tool_error` for a tool result with `isError`).
pub fn record_error(span: &Span, error_type: &str) {
    span.record("otel.status_code", "error");
    span.record("error.type", error_type);
}

/// Makes `parent` (from headers or `_meta`) the parent of `span`; call before the span is
/// entered or logged in.
pub fn set_parent(span: &Span, parent: opentelemetry::Context) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let _ = span.set_parent(parent);
}

/// `span`'s context as MCP `_meta` entries (empty when tracing is off).
pub fn meta_of(span: &Span) -> serde_json::Map<String, serde_json::Value> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !super::enabled() || span.is_disabled() {
        return serde_json::Map::new();
    }
    super::propagation::to_meta(&span.context())
}
