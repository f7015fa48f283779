//! `mcp.MCPService` end to end: the generated tonic client over a real h2c connection, the
//! same calls as gRPC-Web over HTTP/1.1 (binary and text), and the seed's documented `grpcurl`
//! troubleshooting commands.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aixrun_proto::mcp as pb;
use aixrun_proto::mcp::mcp_service_client::McpServiceClient;
use e2e::clients::grpc_channel;
use e2e::mcp::{CONFORMANCE, config_file, grpc_web_message, grpc_web_request};
use e2e::{TempDir, TestApp, grpc_web};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

const PROGRESS_TOOL: &str = "test_tool_with_progress";
const ERROR_TOOL: &str = "test_error_handling";

async fn client(app: &TestApp) -> McpServiceClient<Channel> {
    McpServiceClient::new(grpc_channel(app.addr).await)
}

/// Every tool, over gRPC.
async fn list_tools(app: &TestApp) -> Vec<pb::Tool> {
    client(app)
        .await
        .list_tools(pb::ListToolsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tools
}

fn string_value(s: &str) -> pb::Value {
    pb::Value {
        kind: Some(pb::value::Kind::StringValue(s.to_owned())),
    }
}

fn number_value(n: f64) -> pb::Value {
    pb::Value {
        kind: Some(pb::value::Kind::NumberValue(n)),
    }
}

/// A call with the seed's `arguments` map.
fn call_with_map(name: &str, arguments: &[(&str, pb::Value)]) -> pb::CallToolRequest {
    pb::CallToolRequest {
        name: name.to_owned(),
        arguments: arguments
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<HashMap<_, _>>(),
        arguments_json: String::new(),
    }
}

/// A call with `arguments_json`.
fn call_with_json(name: &str, arguments: &Value) -> pb::CallToolRequest {
    pb::CallToolRequest {
        name: name.to_owned(),
        arguments: HashMap::new(),
        arguments_json: arguments.to_string(),
    }
}

/// The text of a response's only content block.
fn only_text(response: &pb::CallToolResponse) -> &str {
    assert_eq!(response.content.len(), 1, "one content block: {response:?}");
    assert_eq!(response.content[0].r#type, "text", "{response:?}");
    &response.content[0].text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_reports_the_server_and_what_it_supports() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let r = client(&app)
        .await
        .initialize(pb::InitializeRequest {
            protocol_version: "2025-11-25".into(),
            client_info: Some(pb::ClientInfo {
                name: "e2e".into(),
                version: "0.0.0".into(),
            }),
            capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    let info = r.server_info.expect("server_info");
    assert_eq!(info.name, "aixrun-mcp-tool");
    assert!(!info.version.is_empty());
    assert!(!r.protocol_version.is_empty());
    let caps = r.capabilities.expect("capabilities");
    assert!(caps.supports_streaming, "{caps:?}");
    assert!(
        caps.supported_content_types.iter().any(|t| t == "text"),
        "{caps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_echoes_the_timestamp_with_status_ok() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap();
    let r = client(&app)
        .await
        .ping(pb::PingRequest { timestamp })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.timestamp, timestamp);
    assert_eq!(r.status, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tools_is_sorted_with_the_seed_schema_and_the_full_json_schema() {
    let app = TestApp::spawn("mcp-tool", &[CONFORMANCE]);
    let tools = list_tools(&app).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "in name order");
    for expected in ["echo", "get_weather", PROGRESS_TOOL, ERROR_TOOL] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }

    let echo = tools.iter().find(|t| t.name == "echo").unwrap();
    assert!(!echo.description.is_empty());
    // The seed's flat view.
    let schema = echo.input_schema.as_ref().expect("input_schema");
    assert_eq!(schema.r#type, "object");
    assert_eq!(schema.properties["text"].r#type, "string");
    assert_eq!(schema.required, ["text"]);
    // The full schema, as JSON text, agreeing with the flat view.
    let full: Value = serde_json::from_str(&echo.input_schema_json)
        .unwrap_or_else(|e| panic!("input_schema_json is not JSON ({e}): {echo:?}"));
    assert_eq!(
        full,
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The text to return."}
            },
            "required": ["text"],
            "additionalProperties": false
        })
    );
    assert_eq!(
        schema.properties["text"].description,
        full["properties"]["text"]["description"]
    );
    for tool in &tools {
        let parsed: Value = serde_json::from_str(&tool.input_schema_json)
            .unwrap_or_else(|e| panic!("{}: input_schema_json ({e})", tool.name));
        assert_eq!(parsed["type"], "object", "{}", tool.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_tool_echo_works_with_the_seed_arguments_map_and_with_arguments_json() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let mut client = client(&app).await;
    let r = client
        .call_tool(call_with_map(
            "echo",
            &[("text", string_value("from the map"))],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.is_error, "{r:?}");
    assert_eq!(only_text(&r), "from the map");
    assert!(r.progress.is_none(), "{r:?}");

    let r = client
        .call_tool(call_with_json("echo", &json!({"text": "from JSON ✓"})))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.is_error, "{r:?}");
    assert_eq!(only_text(&r), "from JSON ✓");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_tool_with_invalid_arguments_is_invalid_argument_naming_the_path() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let mut client = client(&app).await;
    for request in [
        call_with_map("echo", &[("text", number_value(5.0))]),
        call_with_json("echo", &json!({"text": 5})),
    ] {
        let status = client.call_tool(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("/text"), "{status:?}");
    }
    let status = client
        .call_tool(call_with_json("echo", &json!(["not", "an", "object"])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_tool_of_an_unknown_tool_is_not_found() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let status = client(&app)
        .await
        .call_tool(call_with_map("no_such_tool", &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("no_such_tool"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_tool_failure_is_an_error_result_with_its_message() {
    let app = TestApp::spawn("mcp-tool", &[CONFORMANCE]);
    let r = client(&app)
        .await
        .call_tool(call_with_map(ERROR_TOOL, &[]))
        .await
        .unwrap()
        .into_inner();
    assert!(r.is_error, "{r:?}");
    assert_eq!(
        only_text(&r),
        "This tool intentionally returns an error for testing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_tool_timeout_is_an_error_result_naming_the_timeout() {
    let dir = TempDir::new();
    let path = config_file(&dir, "limits: {test_tool_with_progress: {timeout: 30ms}}\n");
    let app = TestApp::spawn("mcp-tool", &[CONFORMANCE, ("MCP_TOOL_CONFIG", &path)]);
    let mut client = client(&app).await;
    // The tool sleeps 100 ms in all, so it can never finish within 30 ms.
    let r = client
        .call_tool(call_with_map(PROGRESS_TOOL, &[]))
        .await
        .unwrap()
        .into_inner();
    assert!(r.is_error, "{r:?}");
    let text = only_text(&r);
    assert!(text.contains("timed out"), "{text}");
    assert!(text.contains("30ms"), "names the timeout: {text}");

    // Streamed, the timeout is the final message too.
    let messages: Vec<pb::CallToolResponse> = client
        .stream_call_tool(call_with_map(PROGRESS_TOOL, &[]))
        .await
        .unwrap()
        .into_inner()
        .map(|m| m.expect("stream message"))
        .collect()
        .await;
    let last = messages.last().expect("a final message");
    assert!(last.is_error && last.progress.is_none(), "{messages:?}");
    assert!(only_text(last).contains("timed out"), "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_call_tool_sends_increasing_progress_then_the_result() {
    let app = TestApp::spawn("mcp-tool", &[CONFORMANCE]);
    let messages: Vec<pb::CallToolResponse> = client(&app)
        .await
        .stream_call_tool(call_with_map(PROGRESS_TOOL, &[]))
        .await
        .unwrap()
        .into_inner()
        .map(|m| m.expect("stream message"))
        .collect()
        .await;
    let (last, updates) = messages.split_last().expect("at least the result");
    assert!(updates.len() >= 3, "three progress messages: {messages:?}");
    let progress: Vec<f64> = updates
        .iter()
        .map(|m| {
            assert!(m.content.is_empty(), "progress carries no content: {m:?}");
            m.progress.as_ref().expect("progress set").progress
        })
        .collect();
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "increasing: {progress:?}"
    );
    assert_eq!(progress, [0.0, 50.0, 100.0]);
    assert!(
        updates
            .iter()
            .all(|m| m.progress.as_ref().unwrap().total == 100.0),
        "{updates:?}"
    );
    assert!(
        last.progress.is_none(),
        "the result has no progress: {last:?}"
    );
    assert!(!last.is_error, "{last:?}");
    assert_eq!(only_text(last), "Tool with progress executed successfully");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_call_tool_of_an_unknown_tool_is_not_found() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let mut client = client(&app).await;
    let status = match client
        .stream_call_tool(call_with_map("no_such_tool", &[]))
        .await
    {
        Err(status) => status,
        // A server may also send the status as the stream's end, before any message.
        Ok(stream) => {
            let mut stream = stream.into_inner();
            match stream.next().await {
                Some(Err(status)) => status,
                other => panic!("expected NOT_FOUND, got {other:?}"),
            }
        }
    };
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

// ---------------------------------------------------------------------------------------------
// gRPC-Web over HTTP/1.1.

/// POSTs one message to `/mcp.MCPService/{method}` as gRPC-Web (binary or text) and returns
/// the response headers and the parsed body.
async fn grpc_web_call(
    app: &TestApp,
    method: &str,
    message: &impl prost::Message,
    text: bool,
) -> (reqwest::header::HeaderMap, grpc_web::Reply) {
    let url = app.url(&format!("/mcp.MCPService/{method}"));
    grpc_web::post(url, grpc_web_request(message), text).await
}

/// grpc-status from the trailer frame, or from the headers of a trailers-only response.
fn grpc_status(headers: &reqwest::header::HeaderMap, reply: &grpc_web::Reply) -> String {
    reply
        .trailer("grpc-status")
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get("grpc-status")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("no grpc-status: {headers:?} {reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_lists_tools_and_calls_echo_in_binary_and_text_form() {
    let app = TestApp::spawn("mcp-tool", &[]);
    for text in [false, true] {
        let (_, reply) =
            grpc_web_call(&app, "ListTools", &pb::ListToolsRequest::default(), text).await;
        assert!(reply.has_trailer_frame, "{reply:?}");
        assert_eq!(reply.trailer("grpc-status"), Some("0"), "{reply:?}");
        let tools: pb::ListToolsResponse = grpc_web_message(&reply);
        let names: Vec<&str> = tools.tools.iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"echo"), "{names:?}");

        let request = call_with_map("echo", &[("text", string_value("over gRPC-Web"))]);
        let (_, reply) = grpc_web_call(&app, "CallTool", &request, text).await;
        assert!(reply.has_trailer_frame, "{reply:?}");
        assert_eq!(reply.trailer("grpc-status"), Some("0"), "{reply:?}");
        let response: pb::CallToolResponse = grpc_web_message(&reply);
        assert!(!response.is_error, "{response:?}");
        assert_eq!(only_text(&response), "over gRPC-Web", "text form: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_invalid_arguments_carry_grpc_status_3() {
    let app = TestApp::spawn("mcp-tool", &[]);
    for text in [false, true] {
        let request = call_with_map("echo", &[("text", number_value(5.0))]);
        let (headers, reply) = grpc_web_call(&app, "CallTool", &request, text).await;
        assert!(reply.messages.is_empty(), "no response message: {reply:?}");
        assert_eq!(grpc_status(&headers, &reply), "3", "{headers:?} {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_unknown_tool_is_status_5_and_failures_and_timeouts_are_error_results() {
    let dir = TempDir::new();
    let path = config_file(&dir, "limits: {test_tool_with_progress: {timeout: 30ms}}\n");
    let app = TestApp::spawn("mcp-tool", &[CONFORMANCE, ("MCP_TOOL_CONFIG", &path)]);
    for text in [false, true] {
        let (headers, reply) =
            grpc_web_call(&app, "CallTool", &call_with_map("no_such_tool", &[]), text).await;
        assert!(reply.messages.is_empty(), "no response message: {reply:?}");
        assert_eq!(grpc_status(&headers, &reply), "5", "{headers:?} {reply:?}");

        for (tool, needle) in [
            ("test_error_handling", "intentionally returns an error"),
            (PROGRESS_TOOL, "timed out after 30ms"),
        ] {
            let (_, reply) = grpc_web_call(&app, "CallTool", &call_with_map(tool, &[]), text).await;
            assert_eq!(reply.trailer("grpc-status"), Some("0"), "{tool}: {reply:?}");
            let response: pb::CallToolResponse = grpc_web_message(&reply);
            assert!(response.is_error, "{tool}: {response:?}");
            assert!(
                only_text(&response).contains(needle),
                "{tool}: {response:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The seed's troubleshooting commands.

/// Runs `grpcurl -plaintext FLAGS ADDR REST` against `app` (grpcurl from PATH, else the one
/// `scripts/test-peers.sh` puts in the test virtualenv); panics when there is none, since the
/// test asking for it is run only on purpose (it is ignored by default).
fn grpcurl(app: &TestApp, flags: &[&str], rest: &[&str]) -> Option<std::process::Output> {
    let out = std::process::Command::new(e2e::python::peer_tool("grpcurl"))
        .args(["-plaintext", "-max-time", "20"])
        .args(flags)
        .arg(app.addr.to_string())
        .args(rest)
        .output();
    match out {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "grpcurl is neither on PATH nor in the test virtualenv: run scripts/test-peers.sh"
            )
        }
        Err(e) => panic!("run grpcurl: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs grpcurl: run scripts/test-peers.sh"]
async fn grpcurl_lists_the_service_and_pings_it() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let list = tokio::task::block_in_place(|| grpcurl(&app, &[], &["list"]));
    let Some(list) = list else { return };
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "grpcurl list: {list:?}");
    assert!(
        stdout.lines().any(|l| l.trim() == "mcp.MCPService"),
        "{stdout}"
    );

    let ping = tokio::task::block_in_place(|| {
        grpcurl(
            &app,
            &["-d", r#"{"timestamp": 1234567890}"#],
            &["mcp.MCPService/Ping"],
        )
    })
    .expect("grpcurl was there a moment ago");
    assert!(ping.status.success(), "grpcurl Ping: {ping:?}");
    let answer: Value = serde_json::from_slice(&ping.stdout)
        .unwrap_or_else(|e| panic!("grpcurl output is not JSON ({e}): {ping:?}"));
    // int64 is a JSON string in the canonical proto3 JSON mapping.
    assert_eq!(answer["timestamp"], "1234567890", "{answer}");
    assert_eq!(answer["status"], "ok", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_tool_call_log_line_names_the_tool_and_outcome_but_never_the_arguments() {
    const SECRET: &str = "s3cr3t-value";
    let app = TestApp::spawn("mcp-tool", &[]);
    let mut client = client(&app).await;
    let r = client
        .call_tool(call_with_map("echo", &[("text", string_value(SECRET))]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only_text(&r), SECRET);
    // Refused: the value itself is what is wrong, and the caller is told so.
    let status = client
        .call_tool(call_with_json("echo", &json!({"text": [SECRET]})))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let logs = e2e::mcp::logs_so_far(&app).await;
    let line = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "tool call echo: success")
        .unwrap_or_else(|| panic!("no tool call line in:\n{}", logs.join("\n")));
    assert_eq!(line["tool"], "echo", "{line}");
    assert_eq!(line["status"], "success", "{line}");
    assert_eq!(line["transport"], "grpc", "{line}");
    let leaks: Vec<&String> = logs.iter().filter(|l| l.contains(SECRET)).collect();
    assert!(leaks.is_empty(), "arguments in the logs: {leaks:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_streamable_http_serve_the_same_tools_with_the_same_schemas() {
    let app = TestApp::spawn("mcp-tool", &[CONFORMANCE]);
    let grpc_tools = list_tools(&app).await;
    let mcp = e2e::mcp::Era::Legacy.connect(&app).await;
    let mcp_tools = mcp.list_all_tools().await.unwrap();
    let _ = mcp.cancel().await;
    let grpc_names: Vec<&str> = grpc_tools.iter().map(|t| t.name.as_str()).collect();
    let mcp_names: Vec<&str> = mcp_tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(grpc_names, mcp_names, "same tools, same order");
    for (g, m) in grpc_tools.iter().zip(&mcp_tools) {
        let grpc_schema: Value = serde_json::from_str(&g.input_schema_json).unwrap();
        let mcp_schema = Value::Object((*m.input_schema).clone());
        assert_eq!(grpc_schema, mcp_schema, "{}", g.name);
        assert_eq!(Some(g.description.as_str()), m.description.as_deref());
    }
}
