//! MCP over Streamable HTTP at `POST /mcp`, end to end: the official Rust SDK client (rmcp) in
//! both protocol eras (legacy `initialize` negotiating 2025-11-25, and 2026-07-28 with
//! `server/discover`), the transport rules checked on the wire with raw requests, DNS-rebinding
//! protection, the tool-call metrics and the tool-call log line.

use std::net::SocketAddr;

use e2e::clients::http1;
use e2e::mcp::{
    self, CONFORMANCE, Era, LEGACY_VERSION, MODERN_VERSION, call, config_file, exchange,
    initialize, logs_so_far, modern_headers, only_text, raw_post, request, with_modern_meta,
};
use e2e::metrics::{parse, promtool_check, value};
use e2e::{TempDir, TestApp};
use serde_json::{Value, json};

const INVALID_PARAMS: i32 = -32602;
const HEADER_MISMATCH: i32 = -32020;
const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;

/// The conformance fixture that reports progress 0, 50 and 100 around two 50 ms sleeps.
const PROGRESS_TOOL: &str = "test_tool_with_progress";
/// The conformance fixture that always fails.
const ERROR_TOOL: &str = "test_error_handling";
const ERROR_TOOL_MESSAGE: &str = "This tool intentionally returns an error for testing";

/// mcp-tool with the conformance fixtures.
fn spawn_with_fixtures() -> TestApp {
    TestApp::spawn("mcp-tool", &[CONFORMANCE])
}

fn names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

fn assert_sorted(names: &[String]) {
    let mut sorted = names.to_vec();
    sorted.sort();
    assert_eq!(names, sorted, "tools/list is in name order");
}

// ---------------------------------------------------------------------------------------------
// The SDK client, both eras.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_client_lists_echo_and_get_weather_in_name_order_in_both_eras() {
    let app = TestApp::spawn("mcp-tool", &[]);
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        let tools = client.list_all_tools().await.unwrap();
        let names = names(&tools);
        assert_sorted(&names);
        for expected in ["echo", "get_weather"] {
            assert!(names.iter().any(|n| n == expected), "{era:?}: {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.starts_with("test_")),
            "{era:?}: fixtures are off by default: {names:?}"
        );
        let echo = tools.iter().find(|t| t.name == "echo").unwrap();
        assert_eq!(echo.input_schema["type"], "object", "{era:?}");
        assert_eq!(echo.input_schema["properties"]["text"]["type"], "string");
        assert_eq!(echo.input_schema["required"], json!(["text"]));
        let _ = client.cancel().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_client_lists_the_conformance_fixtures_in_name_order_when_enabled_in_both_eras() {
    let app = spawn_with_fixtures();
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        let names = names(&client.list_all_tools().await.unwrap());
        assert_sorted(&names);
        for expected in [
            "echo",
            "get_weather",
            "json_schema_2020_12_tool",
            "test_audio_content",
            "test_embedded_resource",
            ERROR_TOOL,
            "test_image_content",
            "test_multiple_content_types",
            "test_simple_text",
            "test_tool_with_logging",
            PROGRESS_TOOL,
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{era:?}: {expected} missing from {names:?}"
            );
        }
        let _ = client.cancel().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_client_echo_returns_its_text_in_both_eras() {
    let app = TestApp::spawn("mcp-tool", &[]);
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        let text = format!("héllo, wörld ✓ ({era:?})");
        let result = call(&client, "echo", json!({"text": text})).await.unwrap();
        assert_eq!(only_text(&result), text, "{era:?}: {result}");
        assert_ne!(result["isError"], true, "{era:?}: {result}");
        let _ = client.cancel().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_client_invalid_arguments_are_a_32602_error_naming_the_path_in_both_eras() {
    let app = TestApp::spawn("mcp-tool", &[]);
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        let error = call(&client, "echo", json!({"text": 5}))
            .await
            .expect_err("a number where the schema wants a string");
        assert_eq!(error.code.0, INVALID_PARAMS, "{era:?}: {error:?}");
        assert!(error.message.contains("/text"), "{era:?}: {error:?}");
        let data = error.data.clone().unwrap_or_default();
        assert_eq!(data["path"], "/text", "{era:?}: {error:?}");
        assert_eq!(data["tool"], "echo", "{era:?}: {error:?}");
        let _ = client.cancel().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_client_unknown_tool_is_a_32602_error_in_both_eras() {
    let app = TestApp::spawn("mcp-tool", &[]);
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        let error = call(&client, "no_such_tool", json!({}))
            .await
            .expect_err("no tool by that name");
        assert_eq!(error.code.0, INVALID_PARAMS, "{era:?}: {error:?}");
        assert!(error.message.contains("no_such_tool"), "{era:?}: {error:?}");
        let _ = client.cancel().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_client_tool_failure_is_an_error_result_with_its_message_in_both_eras() {
    let app = spawn_with_fixtures();
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        let result = call(&client, ERROR_TOOL, json!({})).await.unwrap();
        assert_eq!(result["isError"], true, "{era:?}: {result}");
        assert_eq!(only_text(&result), ERROR_TOOL_MESSAGE, "{era:?}");
        let _ = client.cancel().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_client_timeout_is_an_error_result_naming_the_timeout_in_both_eras() {
    let dir = TempDir::new();
    let path = config_file(&dir, "limits: {test_tool_with_progress: {timeout: 30ms}}\n");
    let app = TestApp::spawn("mcp-tool", &[CONFORMANCE, ("MCP_TOOL_CONFIG", &path)]);
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        // The tool sleeps 100 ms in all, so it can never finish within 30 ms.
        let result = call(&client, PROGRESS_TOOL, json!({})).await.unwrap();
        assert_eq!(result["isError"], true, "{era:?}: {result}");
        let text = only_text(&result);
        assert!(text.contains("timed out"), "{era:?}: {text}");
        assert!(text.contains("30ms"), "names the timeout: {text}");
        assert!(text.contains(PROGRESS_TOOL), "names the tool: {text}");
        let _ = client.cancel().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_client_receives_three_progress_notifications_in_both_eras() {
    let app = spawn_with_fixtures();
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        // The SDK puts a progress token on every request.
        let result = call(&client, PROGRESS_TOOL, json!({})).await.unwrap();
        assert_ne!(result["isError"], true, "{era:?}: {result}");
        assert_eq!(
            only_text(&result),
            "Tool with progress executed successfully"
        );
        let seen = client.service().wait_progress(3).await;
        assert_eq!(seen.len(), 3, "{era:?}: {seen:?}");
        // The SDK hands each notification to the handler on its own task, so the order they
        // reach it is not the wire order (checked with raw requests below).
        let mut progress: Vec<f64> = seen.iter().map(|p| p.progress).collect();
        progress.sort_by(f64::total_cmp);
        assert_eq!(progress, [0.0, 50.0, 100.0], "{era:?}: {seen:?}");
        assert!(seen.iter().all(|p| p.total == Some(100.0)), "{seen:?}");
        let token = &seen[0].progress_token;
        assert!(seen.iter().all(|p| &p.progress_token == token), "{seen:?}");
        let _ = client.cancel().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Progress on the wire, transport rules: raw requests.

/// A `tools/call` of the progress fixture with progress token `token`, in `era`'s shape.
fn progress_call(era: Era, token: &str) -> (Vec<(String, String)>, Value) {
    let params = json!({"name": PROGRESS_TOOL, "arguments": {}});
    match era {
        Era::Legacy => {
            let mut params = params;
            params["_meta"] = json!({"progressToken": token});
            (
                vec![("MCP-Protocol-Version".into(), LEGACY_VERSION.into())],
                request(7, "tools/call", params),
            )
        }
        Era::Modern => {
            let mut params = with_modern_meta(params, MODERN_VERSION);
            params["_meta"]["progressToken"] = json!(token);
            (
                modern_headers(MODERN_VERSION, "tools/call", Some(PROGRESS_TOOL)),
                request(7, "tools/call", params),
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_notifications_stream_in_increasing_order_before_the_result_in_both_eras() {
    let app = spawn_with_fixtures();
    let http = http1();
    for era in Era::BOTH {
        let (headers, body) = progress_call(era, "tok-1");
        let r = mcp::post(&http, &app, &headers, &body).await;
        assert_eq!(r.status(), 200, "{era:?}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{era:?}: notifications need an event stream: {content_type}"
        );
        let messages = mcp::messages(&content_type, &r.text().await.unwrap());
        let (result, notifications) = messages.split_last().expect("at least the result");
        let progress: Vec<f64> = notifications
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .map(|m| {
                assert_eq!(m["params"]["progressToken"], "tok-1", "{m}");
                assert_eq!(m["params"]["total"], 100.0, "{m}");
                m["params"]["progress"].as_f64().unwrap()
            })
            .collect();
        assert_eq!(progress, [0.0, 50.0, 100.0], "{era:?}: {messages:#?}");
        assert_eq!(
            result["id"], 7,
            "{era:?}: the result comes last: {messages:#?}"
        );
        assert_eq!(
            result["result"]["content"][0]["text"],
            "Tool with progress executed successfully"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_delete_on_the_mcp_path_are_405_allowing_post() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let http = http1();
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = http
            .request(method.clone(), app.url(mcp::PATH))
            .header("accept", "text/event-stream")
            .header("MCP-Protocol-Version", LEGACY_VERSION)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        let allow = r
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("{method}: 405 without Allow"))
            .to_str()
            .unwrap();
        assert!(allow.contains("POST"), "{method}: Allow: {allow}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_request_whose_mcp_method_header_contradicts_the_body_is_400_with_32020() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let http = http1();
    let body = request(3, "tools/list", with_modern_meta(json!({}), MODERN_VERSION));
    // Matching headers: answered.
    let (status, messages) = exchange(
        &http,
        &app,
        &modern_headers(MODERN_VERSION, "tools/list", None),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{messages:?}");
    assert!(messages[0]["result"]["tools"].is_array(), "{messages:?}");
    // The list is fixed per instance: clients may cache it for five minutes.
    assert_eq!(messages[0]["result"]["ttlMs"], 300_000, "{messages:?}");
    // A middlebox routing on Mcp-Method would see a different request than the server.
    let (status, messages) = exchange(
        &http,
        &app,
        &modern_headers(MODERN_VERSION, "tools/call", None),
        &body,
    )
    .await;
    assert_eq!(status, 400, "{messages:?}");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0]["error"]["code"], HEADER_MISMATCH,
        "{messages:?}"
    );
    assert_eq!(messages[0]["id"], 3, "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_request_with_an_unsupported_protocol_version_is_400_with_32022_listing_supported() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let version = "2099-01-01";
    let body = request(4, "tools/list", with_modern_meta(json!({}), version));
    let (status, messages) = exchange(
        &http1(),
        &app,
        &modern_headers(version, "tools/list", None),
        &body,
    )
    .await;
    assert_eq!(status, 400, "{messages:?}");
    let error = &messages[0]["error"];
    assert_eq!(error["code"], UNSUPPORTED_PROTOCOL_VERSION, "{messages:?}");
    let supported: Vec<&str> = error["data"]["supported"]
        .as_array()
        .unwrap_or_else(|| panic!("data.supported is not an array: {error}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(supported.contains(&MODERN_VERSION), "{supported:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialized_notification_is_accepted_with_202_and_an_empty_body() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let r = mcp::post(
        &http1(),
        &app,
        &[("MCP-Protocol-Version".into(), LEGACY_VERSION.into())],
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.bytes().await.unwrap().len(), 0, "202 has no body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_initialize_answers_without_a_session_id() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let r = mcp::post(&http1(), &app, &[], &initialize(1)).await;
    assert_eq!(r.status(), 200);
    // Stateless by design: Cloud Run may send the next request to any instance.
    assert!(
        r.headers().get("mcp-session-id").is_none(),
        "no Mcp-Session-Id: {:?}",
        r.headers()
    );
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    let messages = mcp::messages(&content_type, &r.text().await.unwrap());
    let result = &messages[0]["result"];
    assert_eq!(result["protocolVersion"], LEGACY_VERSION, "{messages:?}");
    assert_eq!(
        result["serverInfo"]["name"], "aixrun-mcp-tool",
        "{messages:?}"
    );
    assert!(result["capabilities"]["tools"].is_object(), "{messages:?}");
}

// ---------------------------------------------------------------------------------------------
// DNS rebinding.

/// POSTs `initialize` with `Host: host` and `headers`, returning the status.
async fn status_of(addr: SocketAddr, host: &str, headers: &[(&str, &str)]) -> u16 {
    let host = host.to_owned();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        raw_post(addr, &host, &headers, &initialize(1).to_string()).status
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_bind_refuses_a_foreign_host_header() {
    let app = TestApp::spawn("mcp-tool", &[("HOST", "127.0.0.1")]);
    let own = app.addr.to_string();
    assert_eq!(status_of(app.addr, &own, &[]).await, 200, "Host: {own}");
    let localhost = format!("localhost:{}", app.addr.port());
    assert_eq!(status_of(app.addr, &localhost, &[]).await, 200);
    assert_eq!(status_of(app.addr, "evil.example", &[]).await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_bind_refuses_a_foreign_origin_and_allows_a_localhost_one() {
    let app = TestApp::spawn("mcp-tool", &[("HOST", "127.0.0.1")]);
    let own = app.addr.to_string();
    let evil = status_of(app.addr, &own, &[("Origin", "http://evil.example")]).await;
    assert_eq!(evil, 403);
    let local = status_of(app.addr, &own, &[("Origin", "http://localhost:1234")]).await;
    assert_eq!(local, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_interfaces_bind_accepts_any_host_and_only_the_configured_origins() {
    let app = TestApp::spawn(
        "mcp-tool",
        &[
            ("HOST", "0.0.0.0"),
            ("MCP_ALLOWED_ORIGINS", "https://app.example.com"),
        ],
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], app.addr.port()));
    for host in [
        "evil.example",
        "my-service-abc123-uc.a.run.app",
        "127.0.0.1",
    ] {
        assert_eq!(status_of(addr, host, &[]).await, 200, "Host: {host}");
    }
    let host = "my-service-abc123-uc.a.run.app";
    let evil = status_of(addr, host, &[("Origin", "http://evil.example")]).await;
    assert_eq!(evil, 403, "an Origin not in MCP_ALLOWED_ORIGINS");
    let local = status_of(addr, host, &[("Origin", "http://localhost:1234")]).await;
    assert_eq!(local, 403, "localhost is not trusted off loopback");
    let listed = status_of(addr, host, &[("Origin", "https://app.example.com")]).await;
    assert_eq!(listed, 200, "the Origin in MCP_ALLOWED_ORIGINS");
}

// ---------------------------------------------------------------------------------------------
// Metrics and logs.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_counted_by_tool_and_outcome() {
    let dir = TempDir::new();
    let path = config_file(&dir, "limits: {test_tool_with_progress: {timeout: 30ms}}\n");
    let app = TestApp::spawn("mcp-tool", &[CONFORMANCE, ("MCP_TOOL_CONFIG", &path)]);
    let client = Era::Legacy.connect(&app).await;
    call(&client, "echo", json!({"text": "hi"})).await.unwrap();
    call(&client, "no_such_tool", json!({})).await.unwrap_err();
    call(&client, "echo", json!({"text": 5})).await.unwrap_err();
    let timed_out = call(&client, PROGRESS_TOOL, json!({})).await.unwrap();
    assert_eq!(timed_out["isError"], true);
    let failed = call(&client, ERROR_TOOL, json!({})).await.unwrap();
    assert_eq!(failed["isError"], true);
    let _ = client.cancel().await;

    let r = http1().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let samples = parse(&text);
    let calls = "aixgo_mcp_tool_calls_total";
    for (tool, status) in [
        ("echo", "success"),
        ("unknown", "unknown_tool"),
        ("echo", "invalid_arguments"),
        (PROGRESS_TOOL, "timeout"),
        (ERROR_TOOL, "error"),
    ] {
        assert_eq!(
            value(&samples, calls, &[("tool", tool), ("status", status)]),
            Some(1.0),
            "{calls}{{tool={tool:?},status={status:?}}} in:\n{text}"
        );
    }
    assert!(
        !text.contains("no_such_tool"),
        "an unknown name is not a label value (bounded cardinality):\n{text}"
    );
    let count = value(
        &samples,
        "aixgo_mcp_tool_call_duration_seconds_count",
        &[("tool", "echo")],
    );
    assert!(count.is_some_and(|c| c >= 1.0), "{count:?} in:\n{text}");
    promtool_check(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_call_log_line_names_the_tool_and_outcome_but_never_the_arguments() {
    const SECRET: &str = "s3cr3t-value";
    let app = TestApp::spawn("mcp-tool", &[]);
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        let result = call(&client, "echo", json!({"text": SECRET}))
            .await
            .unwrap();
        assert_eq!(only_text(&result), SECRET);
        // Refused arguments are not logged either.
        call(&client, "echo", json!({"text": SECRET, "extra": SECRET}))
            .await
            .unwrap_err();
        let _ = client.cancel().await;
    }
    let line = tokio::task::block_in_place(|| {
        app.wait_for_log("tool call echo: success", |v| {
            v["message"] == "tool call echo: success"
        })
    });
    assert_eq!(line["tool"], "echo", "{line}");
    assert_eq!(line["status"], "success", "{line}");
    assert_eq!(line["transport"], "http", "{line}");
    tokio::task::block_in_place(|| {
        app.wait_for_log("tool call echo: invalid_arguments", |v| {
            v["message"] == "tool call echo: invalid_arguments"
        })
    });
    let leaks: Vec<String> = logs_so_far(&app)
        .await
        .into_iter()
        .filter(|l| l.contains(SECRET))
        .collect();
    assert!(leaks.is_empty(), "arguments in the logs: {leaks:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_argument_values_never_reach_the_logs() {
    const SECRET: &str = "s3cr3t-value";
    let app = TestApp::spawn("mcp-tool", &[]);
    for era in Era::BOTH {
        let client = era.connect(&app).await;
        // A secret where the schema wants a string: the value itself is what is wrong.
        let error = call(&client, "echo", json!({"text": [SECRET]}))
            .await
            .unwrap_err();
        assert_eq!(error.code.0, INVALID_PARAMS, "{era:?}: {error:?}");
        let _ = client.cancel().await;
    }
    tokio::task::block_in_place(|| {
        app.wait_for_log("tool call echo: invalid_arguments", |v| {
            v["message"] == "tool call echo: invalid_arguments"
        })
    });
    let leaks: Vec<String> = logs_so_far(&app)
        .await
        .into_iter()
        .filter(|l| l.contains(SECRET))
        .collect();
    assert!(leaks.is_empty(), "argument values in the logs: {leaks:#?}");
}
