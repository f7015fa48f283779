//! Helpers for the `mcp-tool` tests: the official Rust SDK client (rmcp over Streamable HTTP)
//! in either protocol era, hand-made JSON-RPC requests for the transport rules a client library
//! hides, Server-Sent Events parsing, and `mcp.MCPService` messages in gRPC-Web frames.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ErrorData, Implementation,
    ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{
    ClientLifecycleMode, NotificationContext, RoleClient, RunningService,
    serve_client_with_lifecycle,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ServiceError, ServiceExt as _};
use serde_json::{Value, json};

use crate::{TempDir, TestApp, WAIT_TIMEOUT, grpc_web};

/// The MCP endpoint's path.
pub const PATH: &str = "/mcp";
/// The legacy revision the server negotiates with `initialize`.
pub const LEGACY_VERSION: &str = "2025-11-25";
/// The stateless revision (`server/discover`, per-request `_meta`, standard headers).
pub const MODERN_VERSION: &str = "2026-07-28";

/// Environment that turns on the conformance suite's `test_*` fixture tools.
pub const CONFORMANCE: (&str, &str) = ("MCP_CONFORMANCE_TOOLS", "true");

/// The two protocol eras a client may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// `initialize` / `notifications/initialized`, negotiating 2025-11-25.
    Legacy,
    /// `server/discover` and 2026-07-28 per-request metadata.
    Modern,
}

impl Era {
    /// Both eras, legacy first.
    pub const BOTH: [Self; 2] = [Self::Legacy, Self::Modern];

    /// The protocol version the era negotiates.
    pub fn version(self) -> &'static str {
        match self {
            Self::Legacy => LEGACY_VERSION,
            Self::Modern => MODERN_VERSION,
        }
    }

    /// Connects the SDK client to `app`'s `/mcp`: plain `serve` (legacy `initialize`) or
    /// `serve_client_with_lifecycle` with `Discover` preferring 2026-07-28. Asserts the
    /// negotiated version.
    pub async fn connect(self, app: &TestApp) -> Client {
        let recorder = Recorder::default();
        let http = crate::clients::builder()
            .no_proxy()
            .timeout(WAIT_TIMEOUT)
            .build()
            .expect("reqwest client");
        let transport = StreamableHttpClientTransport::with_client(
            http,
            StreamableHttpClientTransportConfig::with_uri(app.url(PATH)),
        );
        let client = match self {
            Self::Legacy => recorder.serve(transport).await,
            Self::Modern => {
                serve_client_with_lifecycle(
                    recorder,
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
            }
        }
        .unwrap_or_else(|e| panic!("{self:?} client could not connect: {e}"));
        let info = client.peer_info().expect("server info after the handshake");
        assert_eq!(
            info.protocol_version.as_str(),
            self.version(),
            "{self:?} negotiated {info:?}"
        );
        client
    }
}

/// The SDK client with our handler.
pub type Client = RunningService<RoleClient, Recorder>;

/// A client handler that records the progress notifications it receives.
#[derive(Clone, Default)]
pub struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

impl Recorder {
    /// Waits (up to [`WAIT_TIMEOUT`]) until at least `n` progress notifications arrived and
    /// returns them in arrival order.
    pub async fn wait_progress(&self, n: usize) -> Vec<ProgressNotificationParam> {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            let seen = self.progress.lock().unwrap().clone();
            if seen.len() >= n || Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Calls `name` with `arguments` (a JSON object) through the SDK. `Ok` is the result as JSON
/// (`content`, `isError`...), `Err` the JSON-RPC error the server answered with.
pub async fn call(client: &Client, name: &str, arguments: Value) -> Result<Value, ErrorData> {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be a JSON object: {arguments}");
    };
    let params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
    match client.call_tool(params).await {
        Ok(result) => Ok(serde_json::to_value(result).expect("result to JSON")),
        Err(ServiceError::McpError(e)) => Err(e),
        Err(e) => panic!("tools/call {name} failed outside JSON-RPC: {e}"),
    }
}

/// The text of a result's only content block.
pub fn only_text(result: &Value) -> &str {
    let content = result["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content array: {result}"));
    assert_eq!(content.len(), 1, "one content block: {result}");
    assert_eq!(content[0]["type"], "text", "{result}");
    content[0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("text block without text: {result}"))
}

/// Writes `yaml` as `mcp-tool.yaml` in `dir` and returns its path (for `MCP_TOOL_CONFIG`).
pub fn config_file(dir: &TempDir, yaml: &str) -> String {
    let path = dir.path().join("mcp-tool.yaml");
    std::fs::write(&path, yaml).expect("write config file");
    path.display().to_string()
}

/// A JSON-RPC request.
pub fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// `params` with the 2026-07-28 per-request `_meta` (protocol version `version`, client info
/// and capabilities) merged in.
pub fn with_modern_meta(params: Value, version: &str) -> Value {
    let mut params = params;
    let info = Implementation::new("e2e-raw", "0.0.0");
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": info,
        "io.modelcontextprotocol/clientCapabilities": ClientCapabilities::default(),
    });
    params
}

/// The headers a 2026-07-28 client sends for `method` (and `name`, for `tools/call`).
pub fn modern_headers(version: &str, method: &str, name: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("MCP-Protocol-Version".to_owned(), version.to_owned()),
        ("Mcp-Method".to_owned(), method.to_owned()),
    ];
    if let Some(name) = name {
        headers.push(("Mcp-Name".to_owned(), name.to_owned()));
    }
    headers
}

/// POSTs `body` to `/mcp` with the Accept and Content-Type every Streamable HTTP client sends,
/// plus `headers`.
pub async fn post(
    client: &reqwest::Client,
    app: &TestApp,
    headers: &[(String, String)],
    body: &Value,
) -> reqwest::Response {
    let mut request = client
        .post(app.url(PATH))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request
        .body(body.to_string())
        .send()
        .await
        .expect("POST /mcp")
}

/// The JSON-RPC messages of a response body: the JSON object of an `application/json` answer,
/// or the `data` of each Server-Sent Event of a `text/event-stream` one, in order.
pub fn messages(content_type: &str, body: &str) -> Vec<Value> {
    if content_type.starts_with("text/event-stream") {
        sse_data(body)
            .iter()
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("event data {d:?}: {e}")))
            .collect()
    } else {
        vec![
            serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("body is not JSON ({e}): {body:?}")),
        ]
    }
}

/// The `data` of each event of a Server-Sent Events stream (multi-line data joined with `\n`).
pub fn sse_data(stream: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    for line in stream.lines() {
        if line.is_empty() {
            if let Some(d) = data.take() {
                events.push(d);
            }
            continue;
        }
        if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    if let Some(d) = data {
        events.push(d);
    }
    events
}

/// POSTs `body` (see [`post`]) and returns the status and the JSON-RPC messages of the answer.
pub async fn exchange(
    client: &reqwest::Client,
    app: &TestApp,
    headers: &[(String, String)],
    body: &Value,
) -> (u16, Vec<Value>) {
    let r = post(client, app, headers, body).await;
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = r.text().await.expect("response body");
    (status, messages(&content_type, &text))
}

/// One `mcp.MCPService` request as a gRPC-Web body (a single data frame).
pub fn grpc_web_request(message: &impl Message) -> Vec<u8> {
    grpc_web::frame(grpc_web::DATA, &message.encode_to_vec())
}

/// Decodes the single message of a gRPC-Web reply as `M`.
pub fn grpc_web_message<M: Message + Default>(reply: &grpc_web::Reply) -> M {
    assert_eq!(reply.messages.len(), 1, "one response message: {reply:?}");
    M::decode(reply.messages[0].as_slice()).expect("decode response message")
}

/// POSTs `body` to `/mcp` over a raw HTTP/1.1 connection to `addr` with exactly this `Host`
/// header and `headers` (for DNS-rebinding checks, where a client library would pick the Host
/// itself). Blocking: call it from `spawn_blocking`.
pub fn raw_post(
    addr: std::net::SocketAddr,
    host: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> crate::http::RawResponse {
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    crate::http::request(addr, "POST", PATH, host, &all, body.as_bytes()).expect("exchange")
}

/// A legacy `initialize` request body.
pub fn initialize(id: u64) -> Value {
    request(
        id,
        "initialize",
        json!({
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "e2e-raw", "version": "0.0.0"}
        }),
    )
}

/// Every stdout line `app` wrote while handling the requests made so far: one more request
/// (`GET /metrics?barrier=N`) is sent and its request log line awaited, so that every line
/// logged before it (stdout is one ordered stream) has been read.
pub async fn logs_so_far(app: &TestApp) -> Vec<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static BARRIER: AtomicUsize = AtomicUsize::new(0);
    let path = format!(
        "/metrics?barrier={}",
        BARRIER.fetch_add(1, Ordering::SeqCst)
    );
    let r = crate::clients::http1()
        .get(app.url(&path))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(r.status(), 200);
    tokio::task::block_in_place(|| {
        app.wait_for_log(&format!("for GET {path}"), |v| {
            v["httpRequest"]["requestUrl"] == path.as_str()
        })
    });
    app.logs()
}
