//! Driving the real `orchestrate` binary: a config file written for the test, `POST /v1/run`
//! as JSON or as a stream, and YAML snippets for the loopback model servers.

use std::time::Duration;

use serde_json::Value;

use crate::model::FakeModel;
use crate::{TempDir, TestApp, WAIT_TIMEOUT, clients};

/// A `model_services` entry named `fake` on `model` speaking the OpenAI format.
pub fn openai_service(model: &FakeModel) -> String {
    format!(
        "  - name: fake\n    provider: openai_compatible\n    model: fake-model\n    \
         config:\n      address: {}\n",
        model.base()
    )
}

/// A `model_services` entry named `fake` on `model` speaking Ollama's native format (its
/// `config` mapping last, so that a test can add keys to it).
pub fn ollama_service(model: &FakeModel) -> String {
    format!(
        "  - name: fake\n    provider: ollama\n    model: fake-model\n    config:\n      address: {}\n",
        model.origin()
    )
}

/// orchestrate with `yaml` as its `ORCHESTRATE_CONFIG`, and `extra` variables.
pub fn spawn(dir: &TempDir, yaml: &str, extra: &[(&str, &str)]) -> TestApp {
    let path = dir.path().join("orchestrate.yaml");
    std::fs::write(&path, yaml).unwrap();
    let path = path.display().to_string();
    let mut envs = vec![("ORCHESTRATE_CONFIG", path.as_str())];
    envs.extend_from_slice(extra);
    tokio::task::block_in_place(|| TestApp::spawn("orchestrate", &envs))
}

/// A react agent `assistant` on the `fake` model service (`service`), using the MCP server
/// `tools` when `server` (an `mcp_servers` entry) is given.
pub fn react_yaml(service: &str, server: Option<&str>, agent_extra: &str) -> String {
    let (servers, uses) = match server {
        Some(s) => (format!("mcp_servers:\n{s}"), "    mcp_servers: [tools]\n"),
        None => (String::new(), ""),
    };
    format!(
        "{servers}model_services:\n{service}agents:\n  - name: assistant\n    role: react\n    \
         model: fake\n{uses}{agent_extra}"
    )
}

/// `POST /v1/run` as JSON: (status, body).
pub async fn post_run(app: &TestApp, body: Value) -> (u16, Value) {
    let r = clients::http1()
        .post(app.url("/v1/run"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// `POST /v1/run` asking for server-sent events; asserts the 200.
pub async fn stream_run(app: &TestApp, body: Value) -> reqwest::Response {
    let r = clients::http1()
        .post(app.url("/v1/run"))
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r
}

/// Polls `done` until it holds, failing with `what` after [`WAIT_TIMEOUT`].
pub async fn wait_until(done: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The path of `examples/NAME.yaml`, a configuration shipped at the repository's root.
pub fn example(name: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root");
    let path = root.join("examples").join(format!("{name}.yaml"));
    assert!(path.is_file(), "no example {}", path.display());
    path.display().to_string()
}

/// orchestrate on the shipped example `name` as it is (`examples/NAME.yaml`), its
/// `${ORCHESTRATE_MODEL}` naming `fake-model` on the fake Ollama `model`, with `extra` variables.
pub fn spawn_example(name: &str, model: &FakeModel, extra: &[(&str, &str)]) -> TestApp {
    let path = example(name);
    let origin = model.origin();
    let mut envs = vec![
        ("ORCHESTRATE_CONFIG", path.as_str()),
        ("ORCHESTRATE_MODEL", "ollama:fake-model"),
        ("OLLAMA_URL", origin.as_str()),
    ];
    envs.extend_from_slice(extra);
    tokio::task::block_in_place(|| TestApp::spawn("orchestrate", &envs))
}

/// How tests that need the emulators are marked, and what a missing one says.
pub const NEEDS_EMULATORS: &str =
    "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\"";

/// The emulators' variables, which `scripts/emulators.sh` exports, to pass to an instance: a
/// test without them fails naming the command, never passes by skipping.
pub fn emulator_vars() -> Vec<(String, String)> {
    [
        "FIRESTORE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
        "GOOGLE_CLOUD_PROJECT",
    ]
    .iter()
    .map(|var| match std::env::var(var) {
        Ok(v) if !v.is_empty() => ((*var).to_owned(), v),
        _ => panic!("{var} is unset; this test {NEEDS_EMULATORS}"),
    })
    .collect()
}
