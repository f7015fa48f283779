//! `sm://` values resolved from Secret Manager before the port opens, on the real binaries,
//! against `e2e::google::FakeGoogle` (the metadata server's and Secret Manager's wire formats
//! as platform.md documents them; `the_fakes_answer_googles_own_python_clients` checks them
//! with Google's official Python clients).

use std::time::Duration;

use e2e::google::{ACCESS_TOKEN, FakeGoogle, SecretAnswer};
use e2e::model::{FakeModel, Reply};
use e2e::orchestrate::{self, post_run};
use e2e::python::{interpreter, run_script};
use e2e::{TempDir, WAIT_TIMEOUT, run};
use serde_json::json;

const KEY: &str = "sk-from-secret-manager";
const PROMPT_A: &str = "prompt-part-one";
const PROMPT_B: &str = "prompt-part-two";

/// A react agent whose model key and prompt come from `${...}` of three `sm://` variables.
fn yaml(model: &FakeModel) -> String {
    format!(
        "model_services:\n  - name: fake\n    provider: openai_compatible\n    model: fake-model\n    \
         config:\n      address: {}\n      api_key: ${{MODEL_KEY}}\n\
         agents:\n  - name: assistant\n    role: react\n    model: fake\n    \
         prompt: \"${{PROMPT_A}} ${{PROMPT_B}}\"\n",
        model.base()
    )
}

fn google_env(google: &FakeGoogle) -> Vec<(&'static str, String)> {
    vec![
        ("GCE_METADATA_HOST", google.metadata_host()),
        ("SECRET_MANAGER_ENDPOINT", google.endpoint()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sm_variables_are_resolved_before_the_port_opens() {
    let google = FakeGoogle::start(
        "test-project",
        &[
            ("model-key", SecretAnswer::Value(KEY.into())),
            ("prompt-a", SecretAnswer::Value(PROMPT_A.into())),
            (
                "prompt-b",
                SecretAnswer::UnavailableThen(2, PROMPT_B.into()),
            ),
        ],
        Duration::ZERO,
    );
    let model = FakeModel::openai(vec![Reply::text("hello")]);
    let dir = TempDir::new();
    let env = google_env(&google);
    let mut envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    envs.extend([
        ("MODEL_KEY", "sm://model-key"),
        (
            "PROMPT_A",
            "sm://projects/other-project/secrets/prompt-a/versions/3",
        ),
        ("PROMPT_B", "sm://prompt-b#latest"),
    ]);
    let app = orchestrate::spawn(&dir, &yaml(&model), &envs);
    let (_, result) = post_run(&app, json!({"input": "hi"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    // The function saw the values: the key signs the model call, the prompt is the secrets'.
    assert_eq!(
        model.authorizations()[0].as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(
        model.requests()[0]["messages"][0]["content"],
        format!("{PROMPT_A} {PROMPT_B}")
    );
    // Read as documented: the project from the metadata server unless the reference names one,
    // with the metadata server's access token; the two 503s were retried.
    let reads: Vec<String> = google
        .requests()
        .into_iter()
        .filter(|r| r.contains(":access"))
        .collect();
    assert!(
        reads
            .iter()
            .all(|r| r.contains(&format!("[Bearer {ACCESS_TOKEN}]"))),
        "{reads:?}"
    );
    assert!(
        reads
            .iter()
            .any(|r| r
                .contains("/v1/projects/test-project/secrets/model-key/versions/latest:access"))
    );
    assert!(
        reads
            .iter()
            .any(|r| r.contains("/v1/projects/other-project/secrets/prompt-a/versions/3:access"))
    );
    let b_reads = reads.iter().filter(|r| r.contains("prompt-b")).count();
    assert_eq!(b_reads, 3, "two 503s, then the value: {reads:?}");
    // No value in any output.
    let logs = app.logs().join("\n");
    for value in [KEY, PROMPT_A, PROMPT_B] {
        assert!(!logs.contains(value), "{value} reached the log:\n{logs}");
    }
}

/// Starts `health` (the smallest function) with `HF_TOKEN=reference` and returns its stderr,
/// asserting it exited with `code`.
fn failing_start(google: &FakeGoogle, reference: &str, code: i32) -> String {
    let env = google_env(google);
    let mut envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    envs.extend([
        ("HF_TOKEN", reference),
        ("GOOGLE_CLOUD_PROJECT", "test-project"),
        ("SECRET_TIMEOUT", "1s"),
        ("PORT", "0"),
    ]);
    let out = run("health", &[], &envs, WAIT_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{reference}: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !stdout.contains("sk-") && !stderr.contains("sk-"),
        "a value was printed"
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_secret_stops_start_up_with_one_line_naming_it() {
    let google = FakeGoogle::start(
        "test-project",
        &[
            ("corrupt", SecretAnswer::WrongChecksum("sk-corrupt".into())),
            (
                "forbidden",
                SecretAnswer::Error(
                    403,
                    "PERMISSION_DENIED",
                    "Permission 'secretmanager.versions.access' denied for resource 'projects/test-project/secrets/forbidden/versions/latest' (or it may not exist).".into(),
                ),
            ),
            ("slow", SecretAnswer::Hang),
        ],
        Duration::ZERO,
    );
    for (reference, says) in [
        ("sm://corrupt", "dataCrc32c"),
        ("sm://forbidden", "403 PERMISSION_DENIED"),
        ("sm://missing", "404 NOT_FOUND"),
        ("sm://slow", "did not answer within 1 s"),
    ] {
        let stderr = tokio::task::block_in_place(|| failing_start(&google, reference, 1));
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let last = lines.last().copied().unwrap_or_default();
        assert!(
            last.starts_with("health: HF_TOKEN="),
            "{reference}: {stderr}"
        );
        let secret = reference.trim_start_matches("sm://");
        assert!(
            last.contains(&format!(
                "projects/test-project/secrets/{secret}/versions/latest"
            )),
            "{reference}: {last}"
        );
        assert!(last.contains(says), "{reference}: {last}");
        assert!(!stderr.contains("sk-corrupt"), "{stderr}");
    }
    // A malformed reference is a configuration error: exit 2, before anything is fetched.
    let reads = google.secret_reads();
    let stderr = tokio::task::block_in_place(|| failing_start(&google, "sm://bad name", 2));
    assert!(stderr.contains("HF_TOKEN=\"sm://bad name\""), "{stderr}");
    assert_eq!(google.secret_reads(), reads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python peers: run scripts/test-peers.sh"]
async fn the_fakes_answer_googles_own_python_clients() {
    // google-auth's compute-engine credentials and google-cloud-secret-manager's REST client,
    // pointed at the fake, read the same token and secret that the functions read.
    let Some(python) = interpreter() else {
        return;
    };
    let google = FakeGoogle::start(
        "test-project",
        &[("checked", SecretAnswer::Value("value-for-python".into()))],
        Duration::ZERO,
    );
    let script = r#"
import os, sys
import google.auth.compute_engine
import google.auth.transport.requests
from google.cloud import secretmanager
creds = google.auth.compute_engine.Credentials()
creds.refresh(google.auth.transport.requests.Request())
client = secretmanager.SecretManagerServiceClient(
    credentials=creds, transport="rest",
    client_options={"api_endpoint": os.environ["SECRET_MANAGER_ENDPOINT"]})
answer = client.access_secret_version(name="projects/test-project/secrets/checked/versions/latest")
def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF
assert answer.payload.data_crc32c == crc32c(answer.payload.data)
print(creds.token, answer.payload.data.decode())
"#;
    let metadata = google.metadata_host();
    let endpoint = google.endpoint();
    let stdout = tokio::task::block_in_place(|| {
        run_script(
            &python,
            script,
            &[
                ("GCE_METADATA_HOST", metadata.as_str()),
                ("GCE_METADATA_IP", metadata.as_str()),
                ("SECRET_MANAGER_ENDPOINT", endpoint.as_str()),
            ],
        )
    });
    assert_eq!(stdout.trim(), format!("{ACCESS_TOKEN} value-for-python"));
}

/// A configuration whose model key and prompt are literal `sm://` values in the YAML itself.
fn literal_yaml(model: &FakeModel, key: &str) -> String {
    format!(
        "model_services:\n  - name: fake\n    provider: openai_compatible\n    model: fake-model\n    \
         config:\n      address: {}\n      api_key: {key}\n\
         agents:\n  - name: assistant\n    role: react\n    model: fake\n    \
         prompt: 'sm://projects/other-project/secrets/prompt-a/versions/3'\n",
        model.base()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_sm_values_in_orchestrates_config_are_resolved_like_variables() {
    let google = FakeGoogle::start(
        "test-project",
        &[
            ("model-key", SecretAnswer::Value(KEY.into())),
            (
                "prompt-a",
                SecretAnswer::UnavailableThen(1, PROMPT_A.into()),
            ),
        ],
        Duration::ZERO,
    );
    let model = FakeModel::openai(vec![Reply::text("hello")]);
    let dir = TempDir::new();
    let env = google_env(&google);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = orchestrate::spawn(&dir, &literal_yaml(&model, "sm://model-key"), &envs);
    let (_, result) = post_run(&app, json!({"input": "hi"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(
        model.authorizations()[0].as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(model.requests()[0]["messages"][0]["content"], PROMPT_A);
    let reads: Vec<String> = google
        .requests()
        .into_iter()
        .filter(|r| r.contains(":access"))
        .collect();
    assert!(
        reads
            .iter()
            .any(|r| r
                .contains("/v1/projects/test-project/secrets/model-key/versions/latest:access")),
        "{reads:?}"
    );
    assert_eq!(
        reads.iter().filter(|r| r.contains("prompt-a")).count(),
        2,
        "{reads:?}"
    );
    let logs = app.logs().join("\n");
    for value in [KEY, PROMPT_A] {
        assert!(!logs.contains(value), "{value} reached the log:\n{logs}");
    }
}

#[test]
fn a_literal_sm_value_that_cant_be_read_stops_orchestrate_naming_the_key() {
    let google = FakeGoogle::start(
        "test-project",
        &[
            (
                "forbidden",
                SecretAnswer::Error(403, "PERMISSION_DENIED", "Permission denied.".into()),
            ),
            ("prompt-a", SecretAnswer::Value(PROMPT_A.into())),
        ],
        Duration::ZERO,
    );
    let model = FakeModel::openai(vec![]);
    let dir = TempDir::new();
    let start = |key: &str| {
        let path = dir.path().join("orchestrate.yaml");
        std::fs::write(&path, literal_yaml(&model, key)).unwrap();
        let path = path.display().to_string();
        let env = google_env(&google);
        let mut envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        envs.extend([("ORCHESTRATE_CONFIG", path.as_str()), ("PORT", "0")]);
        let out = run("orchestrate", &[], &envs, WAIT_TIMEOUT);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr, path)
    };
    // Unreadable: exit 1, one line naming the file, the key, the secret and Google's answer.
    let (code, stderr, path) = start("sm://forbidden");
    assert_eq!(code, Some(1), "{stderr}");
    let last = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "orchestrate: ORCHESTRATE_CONFIG={path}: model_services[0].config.api_key=sm://forbidden: \
             projects/test-project/secrets/forbidden/versions/latest: 403 PERMISSION_DENIED"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(PROMPT_A), "{stderr}");
    // Malformed: a configuration error at its line and column, exit 2, nothing fetched.
    let reads = google.secret_reads();
    let (code, stderr, path) = start("sm://bad name");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{path}:7:"))
            && stderr.contains("model_services[0].config.api_key"),
        "{stderr}"
    );
    assert_eq!(google.secret_reads(), reads);
}
