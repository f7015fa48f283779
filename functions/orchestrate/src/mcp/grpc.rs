//! The `grpc` transport: a tonic client of `mcp.MCPService`. Full JSON Schemas come from the
//! added `input_schema_json` / `output_schema_json` fields, falling back to the seed's flat
//! `Schema` for servers built from the seed's proto; arguments go as `arguments_json` (plus
//! the seed's `arguments` map for such servers). The call's timeout is its gRPC deadline, and
//! dropping the call's future resets the HTTP/2 stream, which the server sees as a cancel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Instrument as _;

use aixrun_proto::mcp::{self as pb, mcp_service_client::McpServiceClient};
use aixrun_proto::mcp_json::{from_flat_schema, from_pb_content, to_pb_fields};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::auth::{AuthProvider, with_refresh};
use super::tls::TlsFiles;
use super::{Arguments, McpError, McpServer, ToolInfo, ToolList, ToolResult};

/// Longest a whole listing (every page) may take.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the TCP and TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most pages one listing follows: a server repeating cursors cannot keep us looping.
const MAX_PAGES: usize = 100;
/// Largest message accepted from the server (tool results can be large; tonic's default is
/// 4 MiB).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Longest server message quoted in an error.
const MAX_QUOTED: usize = 500;

/// One server reached over `mcp.MCPService`.
pub struct GrpcServer {
    name: String,
    /// "name (host)", for messages.
    label: String,
    url: String,
    client: McpServiceClient<Channel>,
    auth: Option<Arc<dyn AuthProvider>>,
    /// Set when the last listing had no `input_schema_json`: a server of the seed's proto,
    /// which only reads the `arguments` map.
    seed: AtomicBool,
}

impl GrpcServer {
    /// A client for `url` (`http://` for plaintext h2c, `https://` for TLS with `tls`). The
    /// connection is made on first use (and again after a failure), so building one needs no
    /// reachable server, only a Tokio runtime.
    pub fn new(
        name: &str,
        url: &str,
        tls: &TlsFiles,
        auth: Option<Arc<dyn AuthProvider>>,
    ) -> Result<Self, McpError> {
        let host = host_of(url);
        let label = format!("{name} ({host})");
        let config = |problem: String| McpError::Config {
            server: label.clone(),
            problem,
        };
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|_| config("the gRPC address is not a valid URI".into()))?
            .connect_timeout(CONNECT_TIMEOUT);
        if url.starts_with("https://") {
            let material = tls.read().map_err(config)?;
            endpoint = endpoint
                .tls_config(material.tonic())
                .map_err(|e| config(format!("TLS: {e}")))?;
        } else if !tls.is_empty() {
            return Err(config(
                "TLS files are set but the address is not https://".into(),
            ));
        }
        let client = McpServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            name: name.to_owned(),
            label,
            url: url.to_owned(),
            client,
            auth,
            seed: AtomicBool::new(false),
        })
    }

    /// The request with its deadline, the caller's trace context and `authorization` (from
    /// [`with_refresh`], which asks the provider).
    fn request<T>(
        &self,
        message: T,
        timeout: Duration,
        authorization: Option<http::HeaderValue>,
    ) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        // Sent as `grpc-timeout`: the server stops the work when it passes.
        request.set_timeout(timeout);
        // The caller's span (a `tools/call` CLIENT span for calls) as `traceparent`.
        aixrun::telemetry::propagation::inject_current_metadata(request.metadata_mut());
        if let Some(header) = authorization
            && let Ok(text) = header.to_str()
            && let Ok(mut value) = text.parse::<tonic::metadata::MetadataValue<_>>()
        {
            value.set_sensitive(true);
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// One unary call through [`with_refresh`]: a refused identity token (expired early,
    /// rotated keys) is minted again and the call sent once more. UNAUTHENTICATED is an answer
    /// to the request head: the server ran nothing, so the call is safe to resend.
    async fn unary<T, R, F, Fut>(
        &self,
        message: T,
        timeout: Duration,
        send: F,
    ) -> Result<tonic::Response<R>, Status>
    where
        T: Clone,
        F: Fn(McpServiceClient<Channel>, tonic::Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        with_refresh(
            self.auth.as_deref(),
            |authorization| {
                let request = self.request(message.clone(), timeout, authorization);
                send(self.client.clone(), request)
            },
            |outcome| matches!(outcome, Err(s) if s.code() == Code::Unauthenticated),
        )
        .await
    }

    fn status_error(&self, tool: Option<&str>, status: &Status, timeout: Duration) -> McpError {
        let server = self.label.clone();
        let message = quote(status.message());
        match (status.code(), tool) {
            (Code::NotFound, Some(tool)) => McpError::UnknownTool {
                server,
                tool: tool.to_owned(),
            },
            (Code::InvalidArgument, Some(tool)) => McpError::InvalidArguments {
                server,
                tool: tool.to_owned(),
                message,
            },
            (Code::DeadlineExceeded, _) => McpError::Timeout { server, timeout },
            (Code::Unavailable | Code::Unknown | Code::Cancelled, _) => McpError::Transport {
                server,
                problem: format!("gRPC {:?}: {message}", status.code()),
            },
            (code, _) => McpError::Protocol {
                server,
                problem: format!("gRPC {code:?}: {message}"),
            },
        }
    }

    fn timed_out(&self, timeout: Duration) -> McpError {
        McpError::Timeout {
            server: self.label.clone(),
            timeout,
        }
    }

    async fn list_pages(&self) -> Result<ToolList, McpError> {
        let mut tools = Vec::new();
        let mut cursor = String::new();
        let mut seed = false;
        for _ in 0..MAX_PAGES {
            let page = self
                .unary(
                    pb::ListToolsRequest { cursor },
                    LIST_TIMEOUT,
                    |mut client, request| async move { client.list_tools(request).await },
                )
                .await
                .map_err(|s| self.status_error(None, &s, LIST_TIMEOUT))?
                .into_inner();
            for tool in page.tools {
                seed |= tool.input_schema_json.trim().is_empty();
                match to_tool_info(tool) {
                    Ok(info) => tools.push(info),
                    Err(problem) => {
                        tracing::warn!(server = %self.name, "skipped a tool: {problem}")
                    }
                }
            }
            if page.next_cursor.is_empty() {
                self.seed.store(seed, Ordering::Relaxed);
                return Ok(ToolList {
                    tools: tools.into(),
                    ttl: None,
                });
            }
            cursor = page.next_cursor;
        }
        Err(McpError::Protocol {
            server: self.label.clone(),
            problem: format!("tool list longer than {MAX_PAGES} pages"),
        })
    }
}

#[async_trait::async_trait]
impl McpServer for GrpcServer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn list_tools(&self) -> Result<ToolList, McpError> {
        tokio::time::timeout(LIST_TIMEOUT, self.list_pages())
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
        let key = idempotency_key.and_then(|k| k.parse::<tonic::metadata::MetadataValue<_>>().ok());
        let arguments_json = Value::Object(arguments.clone()).to_string();
        let arguments = if self.seed.load(Ordering::Relaxed) {
            to_pb_fields(arguments)
        } else {
            HashMap::new()
        };
        let message = pb::CallToolRequest {
            name: tool.to_owned(),
            arguments,
            arguments_json,
        };
        let call = self.unary(message, timeout, |mut client, mut request| {
            if let Some(key) = &key {
                request
                    .metadata_mut()
                    .insert(super::IDEMPOTENCY_HEADER, key.clone());
            }
            async move { client.call_tool(request).await }
        });
        use aixrun::telemetry::spans;
        let span = spans::mcp_tools_call(spans::Side::Client, tool, "grpc");
        span.record("server.address", host_of(&self.url).as_str());
        // The deadline is also enforced here: a server that ignores `grpc-timeout` still
        // cannot hold the call longer.
        let outcome = async {
            let response = tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| self.timed_out(timeout))?
                .map_err(|s| {
                    span.record("rpc.response.status_code", s.code() as i32);
                    self.status_error(Some(tool), &s, timeout)
                })?
                .into_inner();
            from_pb_result(response).map_err(|problem| McpError::Protocol {
                server: self.label.clone(),
                problem: format!("tool {tool}: {problem}"),
            })
        }
        .instrument(span.clone())
        .await;
        match &outcome {
            Ok(result) if result.is_error => spans::record_error(&span, "tool_error"),
            Ok(_) => {}
            Err(e) => spans::record_error(&span, e.error_type()),
        }
        outcome
    }
}

/// The host of `url` for messages, without userinfo, path or query.
pub(crate) fn host_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| {
            u.authority()
                .map(|a| a.as_str().rsplit('@').next().unwrap_or_default().to_owned())
        })
        .unwrap_or_else(|| "an invalid address".into())
}

fn quote(message: &str) -> String {
    match message.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}...", &message[..end]),
        None => message.to_owned(),
    }
}

fn to_tool_info(tool: pb::Tool) -> Result<ToolInfo, String> {
    let parse = |what: &str, text: &str| -> Result<Option<Value>, String> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| format!("{}: {what} is not JSON: {e}", tool.name))
    };
    let input_schema = match parse("input_schema_json", &tool.input_schema_json)? {
        Some(schema) => schema,
        None => from_flat_schema(tool.input_schema.as_ref()),
    };
    Ok(ToolInfo {
        output_schema: parse("output_schema_json", &tool.output_schema_json)?,
        annotations: parse("annotations_json", &tool.annotations_json)?,
        title: (!tool.title.is_empty()).then(|| tool.title.clone()),
        input_schema,
        description: tool.description,
        name: tool.name,
    })
}

fn from_pb_result(response: pb::CallToolResponse) -> Result<ToolResult, String> {
    let structured_content = if response.structured_content_json.trim().is_empty() {
        None
    } else {
        Some(
            serde_json::from_str(&response.structured_content_json)
                .map_err(|e| format!("structured_content_json is not JSON: {e}"))?,
        )
    };
    Ok(ToolResult {
        content: response.content.into_iter().map(from_pb_content).collect(),
        structured_content,
        is_error: response.is_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aixrun_proto::mcp::value::Kind;
    use serde_json::json;

    /// The seed's proto has only fields 1-3 of `Tool`: the flat schema becomes JSON Schema,
    /// and a whole default comes back an integer, as mcp-tool reads the same double.
    #[test]
    fn seed_flat_schema_becomes_json_schema() {
        let field = |r#type: &str, description: &str, default: Option<f64>| pb::SchemaField {
            r#type: r#type.into(),
            description: description.into(),
            default_value: default.map(|n| pb::Value {
                kind: Some(Kind::NumberValue(n)),
            }),
        };
        let tool = pb::Tool {
            name: "get_weather".into(),
            input_schema: Some(pb::Schema {
                r#type: "object".into(),
                properties: HashMap::from([
                    ("city".to_owned(), field("string", "City name", None)),
                    ("days".to_owned(), field("integer", "", Some(3.0))),
                ]),
                required: vec!["city".into()],
            }),
            ..Default::default()
        };
        let info = to_tool_info(tool).unwrap();
        assert_eq!(
            info.input_schema,
            json!({"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string", "description": "City name"},
                                  "days": {"type": "integer", "default": 3}}})
        );
        assert!(info.input_schema["properties"]["days"]["default"].is_i64());
    }

    #[test]
    fn hosts_drop_userinfo() {
        assert_eq!(
            host_of("https://u:p@tools.example:8443/x?q"),
            "tools.example:8443"
        );
    }
}
