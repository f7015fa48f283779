//! The `health` function: it aggregates the readiness of real functions (HTTP and gRPC
//! targets), and `health probe` exits 0 or 1 for one URL.

use std::time::Duration;

use e2e::clients::{grpc_channel, http1};
use e2e::metrics::{parse, value};
use e2e::upstream::Upstream;
use e2e::{DEFAULT_GRACE_PERIOD, EXIT_SLACK, InFlight, TestApp, closed_port, run};
use serde_json::{Value, json};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// `health probe args...`: exit code and the single stdout line.
fn probe(args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["probe"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--timeout", "5s"]);
    let out = run("health", &all, &[], PROBE_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one stdout line: {out:?}");
    (out.status.code(), lines[0].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregator_reports_each_target_and_degrades_when_one_is_down() {
    let orch = TestApp::spawn("orchestrate", &[]);
    let mcp = TestApp::spawn("mcp-tool", &[]);
    let targets = format!(
        "orch=http://{},mcp=grpc://{},gone=http://127.0.0.1:{}",
        orch.addr,
        mcp.addr,
        closed_port()
    );
    // Generous per-target timeout for a loaded machine (the runtime caps a check at 5s).
    let health = TestApp::spawn(
        "health",
        &[
            ("HEALTH_TARGETS", &targets),
            ("HEALTH_TARGET_TIMEOUT", "5s"),
        ],
    );

    let r = http1().get(health.url("/health")).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "a non-critical target down degrades, still 200"
    );
    let body: Value = r.json().await.unwrap();
    e2e::seed::assert_health_format(&body);
    assert_eq!(body["status"], "degraded", "{body}");
    let checks = &body["checks"];
    assert_eq!(checks["orch"]["status"], "healthy", "{body}");
    assert_eq!(checks["mcp"]["status"], "healthy", "{body}");
    assert_eq!(checks["gone"]["status"], "unhealthy", "{body}");
    assert!(
        checks["gone"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot connect")),
        "{body}"
    );
    assert_eq!(checks.as_object().unwrap().len(), 3, "{body}");

    let r = http1()
        .get(health.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "non-critical targets don't affect readiness"
    );

    let text = http1()
        .get(health.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse(&text);
    for (target, up) in [("orch", 1.0), ("mcp", 1.0), ("gone", 0.0)] {
        assert_eq!(
            value(&samples, "aixgo_dependency_up", &[("target", target)]),
            Some(up),
            "aixgo_dependency_up{{target={target:?}}} in:\n{text}"
        );
        let count = value(
            &samples,
            "aixgo_dependency_check_duration_seconds_count",
            &[("target", target)],
        );
        assert!(count >= Some(1.0), "{target}: {count:?}\n{text}");
    }
    e2e::metrics::promtool_check(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_targets_down_make_the_aggregator_unready() {
    let gone = format!("gone=http://127.0.0.1:{}", closed_port());
    let health = TestApp::start(
        "health",
        &[
            ("HEALTH_TARGETS", &gone),
            ("HEALTH_TARGETS_CRITICAL", "true"),
        ],
    );
    let http = http1();
    let r = http.get(health.url("/health/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "not ready", "reason": "critical check failing: gone"})
    );
    let r = http.get(health.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    e2e::seed::assert_health_format(&body);
    assert_eq!(body["status"], "unhealthy", "{body}");
    // Liveness is not readiness.
    let r = http.get(health.url("/health/live")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let mut grpc = HealthClient::new(grpc_channel(health.addr).await);
    let status = grpc
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);
}

#[test]
fn probe_exits_0_against_a_ready_function() {
    let app = TestApp::spawn("orchestrate", &[]);
    let (code, line) = probe(&[&app.base]);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("ok "), "{line}");
}

#[test]
fn grpc_probe_exits_0_against_a_ready_function() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let (code, line) = probe(&["--grpc", &app.base]);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("ok "), "{line}");
    assert!(line.contains("SERVING"), "{line}");
}

#[test]
fn probe_exits_1_against_a_stopped_function() {
    let mut app = TestApp::spawn("orchestrate", &[]);
    app.sigterm();
    assert_eq!(
        app.wait_exit(DEFAULT_GRACE_PERIOD + EXIT_SLACK).code(),
        Some(0)
    );
    for args in [vec![app.base.as_str()], vec!["--grpc", app.base.as_str()]] {
        let (code, line) = probe(&args);
        assert_eq!(code, Some(1), "{args:?}: {line}");
        assert!(line.starts_with("fail "), "{line}");
    }
}

/// A draining function closes its listener at once, so a probe sees connection refused (or,
/// had it raced the close, a 503 "draining"): either way it must exit 1. To probe while the
/// function is really still draining, not already gone, an in-flight request holds the drain
/// open until both probes have run.
#[test]
fn probe_exits_1_against_a_draining_function() {
    let mut app = TestApp::spawn("orchestrate", &[("SHUTDOWN_GRACE_PERIOD", "20s")]);
    let held = InFlight::open(app.addr);
    app.sigterm();
    app.wait_draining();
    for args in [vec![app.base.as_str()], vec!["--grpc", app.base.as_str()]] {
        let (code, line) = probe(&args);
        assert_eq!(code, Some(1), "{args:?}: {line}");
        assert!(line.starts_with("fail "), "{line}");
    }
    assert!(
        app.is_running(),
        "the probes ran while the function drained"
    );
    let r = held.finish().expect("the in-flight request completes");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        app.wait_exit(Duration::from_secs(20) + EXIT_SLACK).code(),
        Some(0)
    );
}

/// A non-critical target that never answers must not hold up readiness: `/health/ready` only
/// looks at critical checks. The client gives up long before the target's timeout would end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_answers_while_a_non_critical_target_hangs() {
    let hung = Upstream::hanging();
    let targets = format!("hung=http://{}", hung.addr);
    let health = TestApp::start(
        "health",
        &[
            ("HEALTH_TARGETS", &targets),
            ("HEALTH_TARGET_TIMEOUT", "30s"),
        ],
    );
    let quick = e2e::clients::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = quick
            .get(health.url("/health/ready"))
            .send()
            .await
            .expect("readiness answers without waiting for the hung target");
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ready"}));
    }
    let mut grpc = HealthClient::new(grpc_channel(health.addr).await);
    let status = tokio::time::timeout(
        Duration::from_secs(3),
        grpc.check(HealthCheckRequest::default()),
    )
    .await
    .expect("gRPC health answers without waiting for the hung target")
    .unwrap()
    .into_inner()
    .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    assert!(hung.heads().is_empty(), "readiness never asked the target");
}

/// A target that answers 3xx (a login redirect, a moved service) is not ready, and the redirect
/// is not followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirecting_target_is_not_ready() {
    let login = Upstream::answering("302 Found", "Location: /login\r\n", "");
    let targets = format!("login=http://{}", login.addr);
    let health = TestApp::start(
        "health",
        &[
            ("HEALTH_TARGETS", &targets),
            ("HEALTH_TARGETS_CRITICAL", "true"),
        ],
    );
    let http = http1();
    let r = http.get(health.url("/health/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "not ready", "reason": "critical check failing: login"})
    );
    let body: Value = http
        .get(health.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let check = &body["checks"]["login"];
    assert_eq!(check["status"], "unhealthy", "{body}");
    assert!(
        check["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("302 Found: redirects are not followed")),
        "{body}"
    );
    assert!(
        login
            .heads()
            .iter()
            .all(|h| h.starts_with("GET /health/ready ")),
        "never followed to /login: {:?}",
        login.heads()
    );

    let (code, line) = probe(&[&login.base()]);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains("302 Found"), "{line}");
}

/// Userinfo and query strings of target URLs are sent (userinfo as basic authentication) but
/// never shown: not in `/health`, not in the logs, not in `health probe` output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_credentials_never_appear() {
    const SECRETS: [&str; 6] = ["admin", "s3cret", "t0ken", "bob", "hunter2", "k3y"];
    let up = Upstream::answering("200 OK", "", "{\"status\":\"ready\"}");
    let (ok, gone) = (
        format!("http://admin:s3cret@{}/health/ready?token=t0ken", up.addr),
        format!("http://bob:hunter2@127.0.0.1:{}/?key=k3y", closed_port()),
    );
    let targets = format!("up={ok},gone={gone}");
    let health = TestApp::spawn("health", &[("HEALTH_TARGETS", &targets)]);
    let text = http1()
        .get(health.url("/health"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["checks"]["up"]["status"], "healthy", "{body}");
    assert_eq!(body["checks"]["gone"]["status"], "unhealthy", "{body}");
    let [head] = up.heads().try_into().unwrap();
    assert!(
        head.to_lowercase().contains("authorization: basic"),
        "the userinfo was sent as basic authentication: {head}"
    );

    let mut shown = vec![text];
    shown.extend(health.logs());
    for url in [&ok, &gone] {
        let (_, line) = probe(&[url]);
        shown.push(line);
    }
    for text in &shown {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret:?} shown in: {text}");
        }
    }
}
