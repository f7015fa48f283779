//! `probe`, which every function binary answers (`aixrun::probe`): the container health check of
//! images without a shell, and with `--id-token` the post-deploy smoke test of services that
//! demand Google ID tokens. Against the real mcp-tool with `AUTH_MODE=google` and its health
//! paths closed (as Cloud Run's invoker check closes them): the probe passes with a token
//! minted by the loopback metadata server (`e2e::google`) and is refused without one, over
//! HTTP and gRPC; the health aggregator's targets use the same tokens (`HEALTH_TARGETS_AUTH`).

use std::time::{Duration, Instant};

use e2e::clients::http1;
use e2e::google::{FakeGoogle, SERVICE_ACCOUNT};
use e2e::jwks::{JwksServer, TestKey};
use e2e::{TestApp, closed_port, run};
use serde_json::Value;

const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// `binary probe args...` with exactly `envs`: exit code and the single stdout line.
fn probe(binary: &str, args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut all = vec!["probe"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--timeout", "5s"]);
    let out = run(binary, &all, envs, PROBE_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{binary}: one stdout line: {out:?}");
    (out.status.code(), lines[0].to_owned())
}

#[test]
fn every_function_binary_answers_probe() {
    let tools = TestApp::spawn("mcp-tool", &[]);
    for binary in ["orchestrate", "mcp-tool", "health"] {
        let (code, line) = probe(binary, &[&tools.base], &[]);
        assert_eq!(code, Some(0), "{binary}: {line}");
        assert!(
            line.starts_with(&format!("ok {}/health/ready: 200 OK", tools.base)),
            "{binary}: {line}"
        );
        let (code, line) = probe(binary, &["--grpc", &tools.base], &[]);
        assert_eq!(code, Some(0), "{binary}: {line}");
        assert!(line.contains("SERVING"), "{binary}: {line}");
        let gone = format!("http://127.0.0.1:{}", closed_port());
        let (code, line) = probe(binary, &[&gone], &[]);
        assert_eq!(code, Some(1), "{binary}: {line}");
        assert!(line.starts_with("fail "), "{binary}: {line}");
        // Bad arguments: exit 2, the usage on stderr naming the binary, nothing served.
        let out = run(binary, &["probe", "--bogus"], &[], PROBE_TIMEOUT);
        assert_eq!(out.status.code(), Some(2), "{binary}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("usage: {binary} probe URL")),
            "{binary}: {stderr}"
        );
    }
}

/// A key set publishing the minting key, the metadata server minting with it, and mcp-tool
/// accepting only the runtime service account's tokens for its own origin, with only
/// `/health/live` open. Returns them with that origin once mcp-tool is live.
fn closed_tools() -> (JwksServer, FakeGoogle, TestApp, String) {
    let key = TestKey::rsa("mds-key-1");
    let jwks = JwksServer::start(&[&key]);
    let google = FakeGoogle::minting("test-project", key);
    let port = closed_port().to_string();
    let origin = format!("http://127.0.0.1:{port}");
    let url = jwks.url();
    let tools = TestApp::start(
        "mcp-tool",
        &[
            ("PORT", port.as_str()),
            ("AUTH_MODE", "google"),
            ("AUTH_AUDIENCES", origin.as_str()),
            ("GOOGLE_JWKS_URL", url.as_str()),
            ("AUTH_ALLOWED_PRINCIPALS", SERVICE_ACCOUNT),
            ("AUTH_OPEN_PATHS", "/health/live"),
        ],
    );
    let deadline = Instant::now() + PROBE_TIMEOUT;
    while !e2e::http::get(tools.addr, "/health/live").is_ok_and(|r| r.status == 200) {
        assert!(Instant::now() < deadline, "mcp-tool not live");
        std::thread::sleep(Duration::from_millis(50));
    }
    (jwks, google, tools, origin)
}

#[test]
fn id_token_probe_passes_where_a_plain_probe_is_refused() {
    let (_jwks, google, _tools, origin) = closed_tools();
    let host = google.metadata_host();
    let envs = [("GCE_METADATA_HOST", host.as_str())];

    let (code, line) = probe("health", &["--id-token", &origin], &envs);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("ok "), "{line}");
    assert_eq!(google.minted(), vec![(origin.clone(), Some("full".into()))]);
    let (code, line) = probe("mcp-tool", &["--grpc", "--id-token", &origin], &envs);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.contains("SERVING"), "{line}");
    assert_eq!(google.mints_for(&origin), 2, "one mint per probe process");

    let (code, line) = probe("health", &[&origin], &envs);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains("401"), "{line}");
    let (code, line) = probe("health", &["--grpc", &origin], &envs);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains("Unauthenticated"), "{line}");
    // A token for another audience is refused too.
    let (code, line) = probe(
        "health",
        &["--id-token", "--audience", "https://other.run.app", &origin],
        &envs,
    );
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains("401"), "{line}");
    assert_eq!(google.mints_for("https://other.run.app"), 1);
    // Without a metadata server (nor any other credentials) the probe says why.
    let gone = format!("127.0.0.1:{}", closed_port());
    let (code, line) = probe(
        "health",
        &["--id-token", &origin],
        &[("GCE_METADATA_HOST", gone.as_str())],
    );
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains("no ID token for audience"), "{line}");
    assert!(!line.contains("eyJ"), "no token is ever printed: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregator_checks_targets_with_id_tokens() {
    let (_jwks, google, _tools, origin) = tokio::task::block_in_place(closed_tools);
    let host = google.metadata_host();
    let targets = format!("http={origin},grpc=grpc://{}", &origin["http://".len()..]);
    let status = |auth: &'static str| {
        let (targets, host) = (targets.clone(), host.clone());
        async move {
            let health = tokio::task::block_in_place(|| {
                TestApp::spawn(
                    "health",
                    &[
                        ("HEALTH_TARGETS", targets.as_str()),
                        ("HEALTH_TARGET_TIMEOUT", "5s"),
                        ("HEALTH_TARGETS_AUTH", auth),
                        ("GCE_METADATA_HOST", host.as_str()),
                    ],
                )
            });
            let body: Value = http1()
                .get(health.url("/health"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["checks"].clone()
        }
    };
    let checks = status("id_token").await;
    assert_eq!(checks["http"]["status"], "healthy", "{checks}");
    assert_eq!(checks["grpc"]["status"], "healthy", "{checks}");
    assert_eq!(google.mints_for(&origin), 1, "one token for both targets");
    let checks = status("none").await;
    assert_eq!(checks["http"]["status"], "unhealthy", "{checks}");
    assert!(
        checks["http"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("401")),
        "{checks}"
    );
    assert_eq!(checks["grpc"]["status"], "unhealthy", "{checks}");
}
