//! Logs: one Cloud Logging JSON object per stdout line, `httpRequest` on request lines, and the
//! trace fields from `traceparent` or `X-Cloud-Trace-Context` with the project id from
//! `GOOGLE_CLOUD_PROJECT` or, on the platform, the metadata server.

use std::time::Duration;

use e2e::clients::{grpc_channel, http1};
use e2e::formats::is_rfc3339;
use e2e::metadata::FakeMetadataServer;
use e2e::{DEFAULT_GRACE_PERIOD, EXIT_SLACK, TestApp, http};
use serde_json::Value;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE: &str = "logging.googleapis.com/trace";
const SPAN: &str = "logging.googleapis.com/spanId";
const SAMPLED: &str = "logging.googleapis.com/trace_sampled";

/// Waits for the request line of `GET {url}`.
fn request_line(app: &TestApp, url: &str) -> Value {
    app.wait_for_log(&format!("for GET {url}"), |v| {
        v["httpRequest"]["requestUrl"] == url && v["httpRequest"]["requestMethod"] == "GET"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stdout_line_is_one_cloud_logging_json_object() {
    let mut app = TestApp::spawn("orchestrate", &[("LOG_LEVEL", "debug")]);
    let http = http1();
    for path in ["/health", "/health/ready", "/metrics", "/nope"] {
        http.get(app.url(path)).send().await.unwrap();
    }
    let mut grpc = HealthClient::new(grpc_channel(app.addr).await);
    grpc.check(HealthCheckRequest::default()).await.unwrap();
    drop(grpc);
    app.sigterm();
    // The harness's default grace period is 8s.
    let status = tokio::task::block_in_place(|| app.wait_exit(DEFAULT_GRACE_PERIOD + EXIT_SLACK));
    assert_eq!(status.code(), Some(0));
    let stderr = tokio::task::block_in_place(|| app.stderr(Duration::from_secs(1)));
    assert_eq!(stderr, "", "a clean run writes nothing to stderr");

    let lines = app.logs();
    assert!(lines.len() >= 6, "start, requests, drain, exit: {lines:#?}");
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {line}"));
        let severity = obj["severity"].as_str().unwrap_or_default();
        assert!(
            ["DEBUG", "INFO", "WARNING", "ERROR"].contains(&severity),
            "severity {severity:?}: {line}"
        );
        assert!(obj["message"].is_string(), "message: {line}");
        assert!(
            obj["time"].as_str().is_some_and(is_rfc3339),
            "time is not RFC 3339: {line}"
        );
    }
    let messages: Vec<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    for expected in [
        "listening on",
        "GET /nope 404",
        "draining",
        "drained; exiting",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(expected)),
            "no {expected:?} line in {messages:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_lines_carry_http_request_fields() {
    let app = TestApp::spawn("orchestrate", &[("LOG_LEVEL", "info")]);
    http1()
        .get(app.url("/nope?x=1"))
        .header("user-agent", "e2e-agent/1.0")
        .send()
        .await
        .unwrap();
    let line = request_line(&app, "/nope?x=1");
    let r = &line["httpRequest"];
    assert_eq!(line["severity"], "INFO", "{line}");
    assert_eq!(r["status"], 404, "{line}");
    assert_eq!(r["userAgent"], "e2e-agent/1.0", "{line}");
    assert_eq!(r["remoteIp"], "127.0.0.1", "{line}");
    assert_eq!(r["protocol"], "HTTP/1.1", "{line}");
    let latency = r["latency"].as_str().unwrap_or_default();
    let seconds = latency
        .strip_suffix('s')
        .unwrap_or_else(|| panic!("latency {latency:?}"));
    assert!(
        seconds.parse::<f64>().is_ok_and(|s| s >= 0.0),
        "latency {latency:?} is not a number of seconds"
    );
    // Off the platform and without a project id there is nothing to attach a trace to.
    assert!(line.get(TRACE).is_none(), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_probes_log_at_debug_and_misses_at_info() {
    let app = TestApp::spawn("orchestrate", &[("LOG_LEVEL", "debug")]);
    let http = http1();
    http.get(app.url("/health/live")).send().await.unwrap();
    http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(request_line(&app, "/health/live")["severity"], "DEBUG");
    assert_eq!(request_line(&app, "/nope")["severity"], "INFO");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_puts_trace_fields_on_the_request_line() {
    let app = TestApp::spawn("orchestrate", &[("GOOGLE_CLOUD_PROJECT", "test-proj")]);
    let r = http1()
        .get(app.url("/nope"))
        .header("traceparent", TRACEPARENT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let line = request_line(&app, "/nope");
    assert_eq!(line["httpRequest"]["status"], 404, "{line}");
    assert_eq!(
        line[TRACE],
        format!("projects/test-proj/traces/{TRACE_ID}"),
        "{line}"
    );
    assert_eq!(line[SPAN], "00f067aa0ba902b7", "{line}");
    assert_eq!(line[SAMPLED], true, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_cloud_trace_context_puts_trace_fields_on_the_request_line() {
    let app = TestApp::spawn("orchestrate", &[("GOOGLE_CLOUD_PROJECT", "test-proj")]);
    let span_decimal: u64 = 1_234_567_890_123;
    http1()
        .get(app.url("/nope"))
        .header(
            "x-cloud-trace-context",
            format!("{TRACE_ID}/{span_decimal};o=1"),
        )
        .send()
        .await
        .unwrap();
    let line = request_line(&app, "/nope");
    assert_eq!(line["httpRequest"]["status"], 404, "{line}");
    assert_eq!(
        line[TRACE],
        format!("projects/test-proj/traces/{TRACE_ID}"),
        "{line}"
    );
    // The decimal span id, written as 16 hex digits.
    assert_eq!(line[SPAN], "0000011f71fb04cb", "{line}");
    assert_eq!(format!("{span_decimal:016x}"), "0000011f71fb04cb");
    assert_eq!(line[SAMPLED], true, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_platform_the_project_id_comes_from_the_metadata_server() {
    // The fake reproduces the documented wire format of the GCE metadata server: it answers
    // GET /computeMetadata/v1/project/project-id with the bare id and `Metadata-Flavor: Google`,
    // and 403 to requests without the `Metadata-Flavor: Google` header.
    let metadata = FakeMetadataServer::start("meta-proj");
    let refused = tokio::task::spawn_blocking({
        let addr = metadata.addr;
        move || http::get(addr, "/computeMetadata/v1/project/project-id").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(refused.status, 403, "the fake insists on Metadata-Flavor");

    let host = metadata.addr.to_string();
    let app = TestApp::spawn(
        "orchestrate",
        &[
            ("K_SERVICE", "svc"),
            ("K_REVISION", "svc-00001-abc"),
            ("GOOGLE_CLOUD_PROJECT", ""),
            ("GCE_METADATA_HOST", &host),
        ],
    );
    let http = http1();
    for path in ["/nope", "/nope-again"] {
        let r = http
            .get(app.url(path))
            .header("traceparent", TRACEPARENT)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    for path in ["/nope", "/nope-again"] {
        let line = request_line(&app, path);
        assert_eq!(
            line[TRACE],
            format!("projects/meta-proj/traces/{TRACE_ID}"),
            "{line}"
        );
        assert_eq!(line[SPAN], "00f067aa0ba902b7", "{line}");
        assert_eq!(line[SAMPLED], true, "{line}");
        assert_eq!(
            line["logging.googleapis.com/labels"]["k_revision"], "svc-00001-abc",
            "{line}"
        );
    }
    let requests = metadata.requests();
    let lookups: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("GET /computeMetadata/v1/project/project-id "))
        .collect();
    assert_eq!(
        lookups.len(),
        2,
        "our own 403 probe plus one lookup: {requests:#?}"
    );
    assert!(
        lookups[1]
            .lines()
            .any(|l| l.eq_ignore_ascii_case("metadata-flavor: Google")),
        "the runtime sends Metadata-Flavor: Google: {:?}",
        lookups[1]
    );
}
