//! The health routes in the seed's format: `/health/live`, `/health/ready` and `/health`.

use e2e::TestApp;
use e2e::clients::http1;
use serde_json::{Value, json};

async fn get_json(app: &TestApp, path: &str) -> (u16, String, Value) {
    let r = http1().get(app.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    (status, content_type, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_body_is_exactly_alive() {
    let app = TestApp::spawn("orchestrate", &[]);
    let (status, content_type, body) = get_json(&app, "/health/live").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(body, json!({"status": "alive"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_body_is_exactly_ready() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let (status, content_type, body) = get_json(&app, "/health/ready").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(body, json!({"status": "ready"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_health_matches_the_seed_format() {
    // mcp-tool registers no checks (orchestrate checks its models).
    let app = TestApp::spawn("mcp-tool", &[]);
    let (status, content_type, body) = get_json(&app, "/health").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    e2e::seed::assert_health_format(&body);
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"), "{body}");
    assert_eq!(body["checks"], json!({}), "mcp-tool registers no checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_health_names_the_platform_service_when_set() {
    let app = TestApp::spawn(
        "orchestrate",
        &[
            ("K_SERVICE", "orchestrate"),
            ("K_REVISION", "orchestrate-00001-abc"),
            ("K_CONFIGURATION", "orchestrate"),
            ("GOOGLE_CLOUD_PROJECT", "test-proj"),
        ],
    );
    let (status, _, body) = get_json(&app, "/health").await;
    assert_eq!(status, 200);
    e2e::seed::assert_health_format(&body);
    assert_eq!(body["service"], "orchestrate", "{body}");
    assert_eq!(body["revision"], "orchestrate-00001-abc", "{body}");
    assert_eq!(body["configuration"], "orchestrate", "{body}");
}
