//! `GET /metrics`: the seed's series with bounded labels after REST, gRPC and gRPC-Web traffic.

use e2e::clients::{grpc_channel, http1};
use e2e::metrics::{Sample, parse, promtool_check, value};
use e2e::{TestApp, grpc_web};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const CHECK: &str = "/grpc.health.v1.Health/Check";

/// Some of every kind of traffic: REST hits and misses, gRPC OK and NotFound, gRPC-Web.
async fn traffic(app: &TestApp) {
    let http = http1();
    for _ in 0..2 {
        let r = http.get(app.url("/health/ready")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    for path in ["/nope-123", "/nope-456/deeper?q=1"] {
        let r = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let mut grpc = HealthClient::new(grpc_channel(app.addr).await);
    grpc.check(HealthCheckRequest {
        service: String::new(),
    })
    .await
    .unwrap();
    grpc.check(HealthCheckRequest {
        service: "no.such.Service".to_owned(),
    })
    .await
    .unwrap_err();
    let r = http
        .post(app.url(CHECK))
        .header("content-type", "application/grpc-web+proto")
        .body(grpc_web::health_check_body(""))
        .send()
        .await
        .unwrap();
    let reply = grpc_web::parse(&r.bytes().await.unwrap());
    assert_eq!(reply.trailer("grpc-status"), Some("0"));
}

async fn scrape(app: &TestApp) -> (String, String) {
    let r = http1().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, r.text().await.unwrap())
}

fn at_least(samples: &[Sample], name: &str, labels: &[(&str, &str)], min: f64) {
    let v = value(samples, name, labels)
        .unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{samples:#?}"));
    assert!(v >= min, "{name}{labels:?} = {v}, expected >= {min}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_rest_and_grpc_traffic_have_the_seed_series() {
    let app = TestApp::spawn("orchestrate", &[]);
    traffic(&app).await;
    let (content_type, text) = scrape(&app).await;
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(content_type.contains("version=0.0.4"), "{content_type}");
    let s = parse(&text);

    let ready = [("method", "GET"), ("path", "/health/ready")];
    at_least(
        &s,
        "aixgo_http_requests_total",
        &[ready[0], ready[1], ("status", "200")],
        2.0,
    );
    at_least(
        &s,
        "aixgo_http_requests_total",
        &[("method", "GET"), ("path", "unmatched"), ("status", "404")],
        2.0,
    );
    at_least(&s, "aixgo_http_request_duration_seconds_count", &ready, 2.0);
    at_least(
        &s,
        "aixgo_http_request_duration_seconds_bucket",
        &[ready[0], ready[1], ("le", "+Inf")],
        2.0,
    );
    assert!(value(&s, "aixgo_http_request_duration_seconds_sum", &ready).is_some());

    // One native gRPC call and one gRPC-Web call succeeded; one native call was NotFound.
    at_least(
        &s,
        "aixgo_grpc_requests_total",
        &[("method", CHECK), ("status", "OK")],
        2.0,
    );
    at_least(
        &s,
        "aixgo_grpc_requests_total",
        &[("method", CHECK), ("status", "NotFound")],
        1.0,
    );
    at_least(
        &s,
        "aixgo_grpc_request_duration_seconds_count",
        &[("method", CHECK)],
        3.0,
    );

    at_least(&s, "aixgo_active_connections", &[], 1.0);
    at_least(&s, "aixgo_memory_usage_bytes", &[], 1.0);
    at_least(&s, "aixgo_goroutines", &[], 1.0);
    at_least(&s, "process_cpu_seconds_total", &[], 0.0);
    at_least(&s, "process_resident_memory_bytes", &[], 1.0);
    at_least(&s, "process_start_time_seconds", &[], 1.0e9);
    at_least(&s, "process_open_fds", &[], 1.0);

    assert!(
        !text.contains("nope"),
        "a raw request path leaked into a label:\n{text}"
    );
    promtool_check(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_paths_never_become_label_values() {
    let app = TestApp::spawn("orchestrate", &[]);
    let http = http1();
    for i in 0..25 {
        let r = http
            .get(app.url(&format!("/nope-{i}/x")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let (_, text) = scrape(&app).await;
    let paths: std::collections::BTreeSet<String> = parse(&text)
        .into_iter()
        .filter_map(|s| s.labels.get("path").cloned())
        .collect();
    let allowed = [
        "unmatched",
        "/health/ready",
        "/health/live",
        "/health",
        "/metrics",
    ];
    assert!(
        paths.iter().all(|p| allowed.contains(&p.as_str())),
        "path labels: {paths:?}"
    );
    at_least(
        &parse(&text),
        "aixgo_http_requests_total",
        &[("method", "GET"), ("path", "unmatched"), ("status", "404")],
        25.0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_is_served_when_the_scraper_asks_for_it() {
    let app = TestApp::spawn("orchestrate", &[]);
    let r = http1()
        .get(app.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_are_counted_only_as_grpc_requests() {
    let app = TestApp::spawn("orchestrate", &[]);
    traffic(&app).await;
    let (_, text) = scrape(&app).await;
    let s = parse(&text);
    let leaked: Vec<&Sample> = s
        .iter()
        .filter(|s| s.name.starts_with("aixgo_http_request"))
        .filter(|s| {
            s.labels
                .get("path")
                .is_some_and(|p| p.starts_with("/grpc."))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "gRPC calls counted as HTTP requests: {leaked:#?}"
    );
}
