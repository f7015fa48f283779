//! End-to-end tracing: the real orchestrate and mcp-tool binaries export OTLP/HTTP to a
//! loopback receiver (`e2e::otlp`, the OTLP/HTTP protobuf encoding of the OTLP
//! specification). One `/v1/run` that calls a tool over Streamable HTTP is one trace across
//! both processes, with the GenAI and MCP span names, the MCP client span as the parent of
//! mcp-tool's server span (through `params._meta`), and log lines that carry the trace. An
//! incoming `traceparent` or `X-Cloud-Trace-Context` is continued; spans of a run finished
//! just before SIGTERM are sent before the process exits.

use std::time::Duration;

use e2e::google::{ACCESS_TOKEN, FakeGoogle, SecretAnswer};
use e2e::model::{FakeModel, Reply};
use e2e::orchestrate::{self, openai_service, post_run, react_yaml};
use e2e::otlp::{CLIENT, INTERNAL, Receiver, SERVER, Span};
use e2e::{DEFAULT_GRACE_PERIOD, EXIT_SLACK, TempDir, TestApp, clients};
use serde_json::{Value, json};

const PROJECT: &str = "trace-test-project";
const SPANS_TIMEOUT: Duration = Duration::from_secs(20);

/// The variables that point a function at `receiver`, spans sent within 100 ms.
fn otel_env(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("GOOGLE_CLOUD_PROJECT", PROJECT.into()),
    ]
}

fn as_refs<'a>(envs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    envs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn find<'a>(spans: &'a [Span], service: &str, name: &str) -> Option<&'a Span> {
    spans
        .iter()
        .find(|s| s.service == service && s.name == name)
}

fn get<'a>(spans: &'a [Span], service: &str, name: &str) -> &'a Span {
    find(spans, service, name).unwrap_or_else(|| {
        let names: Vec<String> = spans
            .iter()
            .map(|s| format!("{}: {}", s.service, s.name))
            .collect();
        panic!("no span {name:?} from {service}; received: {names:#?}")
    })
}

/// The trace ids that `app`'s JSON log lines carry (`logging.googleapis.com/trace`).
fn logged_traces(app: &TestApp) -> Vec<String> {
    app.log_json()
        .iter()
        .filter_map(|l| {
            l["logging.googleapis.com/trace"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// A completed run of the react agent that calls mcp-tool's `echo` once, through orchestrate
/// and a real mcp-tool, both started with `env`. `transport` is the MCP server's YAML after
/// its name, `{addr}` standing for mcp-tool's address.
struct EchoRun {
    tools: TestApp,
    app: TestApp,
    _model: FakeModel,
    _dir: TempDir,
}

async fn echo_run(env: &[(&'static str, String)], transport: &str) -> EchoRun {
    let tools = tokio::task::block_in_place(|| TestApp::spawn("mcp-tool", &as_refs(env)));
    let model = FakeModel::openai(vec![
        Reply::call("echo", json!({"text": "hi"})),
        Reply::text("done"),
    ]);
    let dir = TempDir::new();
    let server = format!(
        "  - name: tools\n    {}\n",
        transport.replace("{addr}", &tools.addr.to_string())
    );
    let yaml = react_yaml(&openai_service(&model), Some(&server), "");
    let app = orchestrate::spawn(&dir, &yaml, &as_refs(env));
    let (status, result) = post_run(&app, json!({"input": "echo hi"})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "completed", "{result}");
    EchoRun {
        tools,
        app,
        _model: model,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_with_a_tool_call_is_one_trace_across_both_processes() {
    let receiver = Receiver::start();
    let env = otel_env(&receiver);
    let run = echo_run(&env, "transport: http\n    url: http://{addr}/mcp").await;
    let (tools, app) = (&run.tools, &run.app);

    let spans = tokio::task::block_in_place(|| {
        receiver.wait_for(
            "the run's spans from both processes",
            SPANS_TIMEOUT,
            |spans| {
                find(spans, "orchestrate", "POST /v1/run").is_some()
                    && find(spans, "mcp-tool", "tools/call echo").is_some()
                    && spans.iter().filter(|s| s.name == "chat fake-model").count() >= 2
                    && spans
                        .iter()
                        .filter(|s| s.service == "mcp-tool" && s.name == "POST /mcp")
                        .count()
                        >= 3
            },
        )
    });
    let root = get(&spans, "orchestrate", "POST /v1/run");
    assert_eq!(root.kind, SERVER);
    assert!(
        root.parent_span_id.is_empty(),
        "no incoming trace: a root span"
    );
    assert_eq!(root.attr("http.route"), Some("/v1/run"));
    assert_eq!(root.attr("http.response.status_code"), Some("200"));
    let trace = root.trace_id.clone();
    let in_trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
    let named = |service: &str, name: &str| {
        in_trace
            .iter()
            .copied()
            .find(|s| s.service == service && s.name == name)
            .unwrap_or_else(|| panic!("no {name:?} from {service} in trace {trace}: {in_trace:#?}"))
    };

    let agent = named("orchestrate", "invoke_agent assistant");
    assert_eq!(agent.kind, INTERNAL);
    assert_eq!(agent.attr("gen_ai.agent.name"), Some("assistant"));
    assert_eq!(agent.parent_span_id, root.span_id);

    let chats: Vec<&&Span> = in_trace
        .iter()
        .filter(|s| s.name == "chat fake-model")
        .collect();
    assert_eq!(chats.len(), 2, "two model calls");
    for chat in &chats {
        assert_eq!(chat.kind, CLIENT);
        assert_eq!(chat.parent_span_id, agent.span_id);
        assert_eq!(chat.attr("gen_ai.operation.name"), Some("chat"));
        assert_eq!(chat.attr("gen_ai.request.model"), Some("fake-model"));
        assert_eq!(chat.attr("gen_ai.provider.name"), Some("openai_compatible"));
        assert_eq!(chat.attr("server.address"), Some("127.0.0.1"));
        assert!(chat.attr("server.port").is_some());
        assert!(chat.attr("gen_ai.usage.input_tokens").is_some(), "{chat:?}");
        assert!(
            chat.attr("gen_ai.usage.output_tokens").is_some(),
            "{chat:?}"
        );
        // The model call's HTTP request is its child.
        assert!(
            in_trace
                .iter()
                .any(|s| s.name == "POST" && s.kind == CLIENT && s.parent_span_id == chat.span_id),
            "no HTTP client span under {chat:?}"
        );
    }
    // No prompt or answer text in any attribute.
    for span in &in_trace {
        for value in span.attributes.values() {
            assert!(!value.contains("echo hi"), "prompt text in {span:?}");
        }
    }

    let execute = named("orchestrate", "execute_tool echo");
    assert_eq!(execute.kind, INTERNAL);
    assert_eq!(execute.parent_span_id, agent.span_id);
    assert_eq!(execute.attr("gen_ai.tool.name"), Some("echo"));
    let client = named("orchestrate", "tools/call echo");
    assert_eq!(client.kind, CLIENT);
    assert_eq!(client.parent_span_id, execute.span_id);
    assert_eq!(client.attr("mcp.method.name"), Some("tools/call"));

    // Across the process boundary: mcp-tool's spans are in the same trace, its `tools/call`
    // SERVER span a child of orchestrate's CLIENT span (parent from `params._meta`), and its
    // HTTP server span a child of it too (parent from the `traceparent` header).
    let server = named("mcp-tool", "tools/call echo");
    assert_eq!(server.kind, SERVER);
    assert_eq!(server.parent_span_id, client.span_id);
    assert_eq!(server.attr("mcp.method.name"), Some("tools/call"));
    assert_eq!(server.attr("gen_ai.tool.name"), Some("echo"));
    let post = in_trace
        .iter()
        .find(|s| {
            s.service == "mcp-tool" && s.name == "POST /mcp" && s.parent_span_id == client.span_id
        })
        .unwrap_or_else(|| panic!("no POST /mcp under {client:?}: {in_trace:#?}"));
    assert_eq!(post.kind, SERVER);
    // The connection's handshake (`server/discover`, or `initialize` with the context in its
    // `params._meta` too) and `tools/list` continue the trace as well: every POST mcp-tool
    // served is a child of one of orchestrate's spans, none a root of a trace of its own.
    let posts: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service == "mcp-tool" && s.name == "POST /mcp")
        .collect();
    assert!(posts.len() >= 3, "handshake, listing and call: {posts:#?}");
    for p in &posts {
        assert_eq!(p.trace_id, trace, "a POST outside the run's trace: {p:?}");
        assert!(
            in_trace
                .iter()
                .any(|s| s.service == "orchestrate" && s.span_id == p.parent_span_id),
            "a POST whose parent is not orchestrate's: {p:?}"
        );
    }
    assert_eq!(
        server.resource.get("service.name").map(String::as_str),
        Some("mcp-tool")
    );

    // Both processes' log lines carry the trace.
    let want = format!("projects/{PROJECT}/traces/{trace}");
    let orchestrate_traces = logged_traces(app);
    assert!(
        orchestrate_traces.contains(&want),
        "orchestrate logs: {orchestrate_traces:?}"
    );
    let line = app.wait_for_log("the run's request line", |l| {
        l["httpRequest"]["requestUrl"] == "/v1/run"
    });
    assert_eq!(
        line["logging.googleapis.com/trace"],
        want.as_str(),
        "{line}"
    );
    assert_eq!(
        line["logging.googleapis.com/spanId"],
        root.span_id.as_str(),
        "{line}"
    );
    assert_eq!(line["logging.googleapis.com/trace_sampled"], true, "{line}");
    let tool_traces = logged_traces(tools);
    assert!(
        tool_traces.contains(&want),
        "mcp-tool logs: {tool_traces:?}"
    );
}

/// orchestrate with one react agent (no tools) on `model`, exporting to `receiver`.
fn spawn_plain(
    dir: &TempDir,
    model: &FakeModel,
    receiver: &Receiver,
    extra: &[(&'static str, String)],
) -> TestApp {
    let mut env = otel_env(receiver);
    env.extend_from_slice(extra);
    let yaml = react_yaml(&openai_service(model), None, "");
    orchestrate::spawn(dir, &yaml, &as_refs(&env))
}

async fn run_with_header(app: &TestApp, name: &str, value: &str) -> Value {
    let r = clients::http1()
        .post(app.url("/v1/run"))
        .header(name, value)
        .json(&json!({"input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_traceparent_is_continued_and_x_cloud_trace_context_accepted() {
    let receiver = Receiver::start();
    let model = FakeModel::openai(vec![Reply::text("one"), Reply::text("two")]);
    let dir = TempDir::new();
    let app = spawn_plain(&dir, &model, &receiver, &[]);

    let w3c_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{w3c_trace}-00f067aa0ba902b7-01");
    run_with_header(&app, "traceparent", &traceparent).await;
    // Google's header: the span id is decimal (291 = 0x123).
    let cloud_trace = "105445aa7843bc8bf206b12000100000";
    run_with_header(
        &app,
        "x-cloud-trace-context",
        &format!("{cloud_trace}/291;o=1"),
    )
    .await;

    let spans = tokio::task::block_in_place(|| {
        receiver.wait_for("both runs' server spans", SPANS_TIMEOUT, |spans| {
            spans.iter().filter(|s| s.name == "POST /v1/run").count() >= 2
                && spans.iter().filter(|s| s.name == "chat fake-model").count() >= 2
        })
    });
    let server = |trace: &str| {
        spans
            .iter()
            .find(|s| s.name == "POST /v1/run" && s.trace_id == trace)
            .unwrap_or_else(|| panic!("no server span in trace {trace}: {spans:#?}"))
    };
    let w3c = server(w3c_trace);
    assert_eq!(w3c.parent_span_id, "00f067aa0ba902b7");
    assert!(
        spans
            .iter()
            .any(|s| s.name == "chat fake-model" && s.trace_id == w3c_trace)
    );
    let google = server(cloud_trace);
    assert_eq!(google.parent_span_id, "0000000000000123");
    assert!(
        spans
            .iter()
            .any(|s| s.name == "chat fake-model" && s.trace_id == cloud_trace)
    );

    // The model call carried the trace on to the model server.
    let sent = model.traceparents();
    assert!(
        sent.iter()
            .flatten()
            .any(|t| t.starts_with(&format!("00-{w3c_trace}-"))),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_a_run_finished_just_before_sigterm_arrive_before_exit() {
    let receiver = Receiver::start();
    let model = FakeModel::openai(vec![Reply::text("bye")]);
    let dir = TempDir::new();
    // A minute between scheduled exports: only the flush after the drain can send them.
    let mut app = spawn_plain(
        &dir,
        &model,
        &receiver,
        &[("OTEL_BSP_SCHEDULE_DELAY", "60000".into())],
    );
    let (status, result) = post_run(&app, json!({"input": "hi"})).await;
    assert_eq!(status, 200, "{result}");
    assert!(
        receiver.spans().is_empty(),
        "nothing sent before the schedule or shutdown"
    );
    app.sigterm();
    let exit = tokio::task::block_in_place(|| app.wait_exit(DEFAULT_GRACE_PERIOD + EXIT_SLACK));
    assert!(exit.success(), "{exit:?}");
    // Received before the process exited: no waiting here.
    let spans = receiver.spans();
    for name in [
        "POST /v1/run",
        "invoke_agent assistant",
        "chat fake-model",
        "POST",
    ] {
        assert!(
            spans.iter().any(|s| s.name == name),
            "{name:?} not received before exit: {spans:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_carry_secret_headers_and_google_credentials_for_cloud_trace() {
    // Cloud Trace's OTLP endpoint wants an OAuth access token, `x-goog-user-project` and
    // `gcp.project_id`; here the loopback receiver stands in for telemetry.googleapis.com and
    // the fake metadata server hands out the token (as on Cloud Run).
    let google = FakeGoogle::start(
        PROJECT,
        &[(
            "otel-key",
            SecretAnswer::Value("key-from-secret-manager".into()),
        )],
        Duration::ZERO,
    );
    let receiver = Receiver::start();
    let model = FakeModel::openai(vec![Reply::text("hi")]);
    let dir = TempDir::new();
    let extra = [
        ("OTEL_EXPORTER_OTLP_GOOGLE_AUTH", "true".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-otel-key=sm://otel-key".to_owned(),
        ),
        ("GCE_METADATA_HOST", google.metadata_host()),
        ("SECRET_MANAGER_ENDPOINT", google.endpoint()),
    ];
    let app = spawn_plain(&dir, &model, &receiver, &extra);
    let (status, result) = post_run(&app, json!({"input": "hi"})).await;
    assert_eq!(status, 200, "{result}");
    let spans = tokio::task::block_in_place(|| {
        receiver.wait_for("the run's server span", SPANS_TIMEOUT, |spans| {
            find(spans, "orchestrate", "POST /v1/run").is_some()
        })
    });
    let root = get(&spans, "orchestrate", "POST /v1/run");
    assert_eq!(
        root.resource.get("gcp.project_id").map(String::as_str),
        Some(PROJECT)
    );
    let requests = receiver.requests();
    let head = requests.last().unwrap();
    assert!(
        head.contains("x-otel-key: key-from-secret-manager\r\n"),
        "the secret, not its reference: {head}"
    );
    assert!(
        head.contains(&format!(
            "authorization: bearer {}\r\n",
            ACCESS_TOKEN.to_ascii_lowercase()
        )),
        "{head}"
    );
    assert!(
        head.contains(&format!("x-goog-user-project: {PROJECT}\r\n")),
        "{head}"
    );
    assert!(
        head.contains("content-type: application/x-protobuf"),
        "{head}"
    );
}

#[test]
fn a_bad_otel_value_stops_start_up_naming_the_variable() {
    for (var, value) in [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_PROPAGATORS", "b3"),
    ] {
        let out = e2e::run("mcp-tool", &[], &[(var, value)], Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("{var}=\"{value}\"")), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_export_and_a_tool_call_over_mcp_grpc_share_the_trace() {
    let receiver = Receiver::start_grpc();
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-otel-key=grpc-key".to_owned(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("GOOGLE_CLOUD_PROJECT", PROJECT.to_owned()),
    ];
    // Held until the spans are in.
    let _run = echo_run(&env, "transport: grpc\n    address: http://{addr}").await;
    let spans = tokio::task::block_in_place(|| {
        receiver.wait_for("the run's spans over OTLP/gRPC", SPANS_TIMEOUT, |spans| {
            find(spans, "orchestrate", "POST /v1/run").is_some()
                && find(spans, "mcp-tool", "tools/call echo").is_some()
        })
    });
    let trace = &get(&spans, "orchestrate", "POST /v1/run").trace_id;
    let client = get(&spans, "orchestrate", "tools/call echo");
    assert_eq!(&client.trace_id, trace);
    assert_eq!(client.kind, CLIENT);
    // mcp.proto has no `_meta`: the context travels in the call's `traceparent` metadata,
    // so mcp-tool's gRPC server span is the client span's child and its `tools/call` the
    // server span's.
    let rpc = get(&spans, "mcp-tool", "mcp.MCPService/CallTool");
    assert_eq!(rpc.kind, SERVER);
    assert_eq!(&rpc.trace_id, trace);
    assert_eq!(rpc.parent_span_id, client.span_id);
    assert_eq!(rpc.attr("rpc.system"), Some("grpc"));
    let server = get(&spans, "mcp-tool", "tools/call echo");
    assert_eq!(server.kind, SERVER);
    assert_eq!(server.parent_span_id, rpc.span_id);
    let metadata = receiver.requests();
    assert!(
        metadata
            .iter()
            .all(|m| m.contains("x-otel-key: grpc-key\r\n")),
        "{metadata:?}"
    );
}
