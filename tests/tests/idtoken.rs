//! Service-to-service identity end to end: orchestrate (`auth: {type: id_token}` on an MCP
//! server) mints Google ID tokens from the loopback metadata server (`e2e::google`, the
//! documented `identity?audience=&format=full` endpoint), and the real mcp-tool with
//! `AUTH_MODE=google` verifies them against the loopback key set that publishes the minting key.
//! Over gRPC and Streamable HTTP: the tool call succeeds, the token was for the server's origin
//! and named the runtime service account, one token serves several runs, and without the token
//! the same call is refused. The fake is also checked against Google's own Python client.

use e2e::google::{FakeGoogle, SERVICE_ACCOUNT};
use e2e::jwks::{JwksServer, TestKey};
use e2e::model::{FakeModel, Reply};
use e2e::orchestrate::{self, ollama_service, openai_service, post_run, react_yaml};
use e2e::python::{interpreter, run_script};
use e2e::{TempDir, TestApp, closed_port};
use serde_json::{Value, json};

/// How many runs share one token.
const RUNS: usize = 3;

/// A key set publishing the minting key, the metadata server minting with it, and mcp-tool
/// accepting only the runtime service account's tokens for its own origin (the audience
/// orchestrate mints for by default). Returns them with that origin.
fn verified_tools() -> (JwksServer, FakeGoogle, TestApp, String) {
    verified_tools_minting(false)
}

/// [`verified_tools`]; with `stale_first`, the first token minted is signed with a key that is
/// not in the set (same `kid`), so mcp-tool refuses it and accepts the next.
fn verified_tools_minting(stale_first: bool) -> (JwksServer, FakeGoogle, TestApp, String) {
    let key = TestKey::rsa("mds-key-1");
    let jwks = JwksServer::start(&[&key]);
    let google = if stale_first {
        FakeGoogle::minting_stale_first("test-project", key, TestKey::rsa("mds-key-1"))
    } else {
        FakeGoogle::minting("test-project", key)
    };
    let port = closed_port().to_string();
    let origin = format!("http://127.0.0.1:{port}");
    let url = jwks.url();
    let tools = tokio::task::block_in_place(|| {
        TestApp::spawn(
            "mcp-tool",
            &[
                ("PORT", port.as_str()),
                ("AUTH_MODE", "google"),
                ("AUTH_AUDIENCES", origin.as_str()),
                ("GOOGLE_JWKS_URL", url.as_str()),
                ("AUTH_ALLOWED_PRINCIPALS", SERVICE_ACCOUNT),
            ],
        )
    });
    (jwks, google, tools, origin)
}

/// The `tools` entry for `transport` (`grpc` or `http`) on `origin`, with `auth` when given.
fn server_yaml(transport: &str, origin: &str, auth: Option<&str>) -> String {
    let target = match transport {
        "grpc" => format!("    address: {origin}\n"),
        _ => format!("    url: {origin}/mcp\n"),
    };
    let auth = auth.map_or_else(String::new, |a| format!("    auth: {a}\n"));
    format!("  - name: tools\n    transport: {transport}\n{target}{auth}")
}

/// Per run: one `echo` call, then an answer.
fn echo_script(runs: usize) -> Vec<Reply> {
    (0..runs)
        .flat_map(|i| {
            [
                Reply::ToolCalls(
                    vec![(
                        "echo".into(),
                        json!({"text": format!("hi {i}")}).to_string(),
                    )],
                    (20, 8),
                ),
                Reply::text("done"),
            ]
        })
        .collect()
}

fn spawn_orchestrate(
    dir: &TempDir,
    model: &FakeModel,
    server: &str,
    google: &FakeGoogle,
) -> TestApp {
    let yaml = react_yaml(&openai_service(model), Some(server), "");
    let host = google.metadata_host();
    orchestrate::spawn(dir, &yaml, &[("GCE_METADATA_HOST", host.as_str())])
}

/// The one tool call of a completed run.
async fn run_echo(app: &TestApp, i: usize) -> Value {
    let (status, result) = post_run(app, json!({"input": format!("echo {i}")})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "completed", "{result}");
    let calls = result["steps"][0]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{result}");
    calls[0].clone()
}

async fn tool_calls_carry_id_tokens(transport: &str) {
    let (jwks, google, tools, origin) = verified_tools();
    let model = FakeModel::openai(echo_script(RUNS));
    let dir = TempDir::new();
    let server = server_yaml(transport, &origin, Some("{type: id_token}"));
    let app = spawn_orchestrate(&dir, &model, &server, &google);
    for i in 0..RUNS {
        let call = run_echo(&app, i).await;
        assert_eq!(call["name"], "echo", "{call}");
        assert!(
            call.get("error").is_none_or(Value::is_null),
            "{transport}: {call}"
        );
        let text = call["result"].as_str().unwrap_or_default();
        assert!(text.contains(&format!("hi {i}")), "{transport}: {call}");
    }
    // One token, minted for the server's origin with the e-mail in it, served every run.
    assert_eq!(
        google.minted(),
        vec![(origin.clone(), Some("full".to_owned()))],
        "{transport}: {:?}",
        google.requests()
    );
    assert_eq!(google.mints_for(&origin), 1);
    assert_eq!(jwks.fetches(), 1, "{transport}: the key set is cached too");
    // mcp-tool verified it and names the service account as the caller.
    let line = tools.wait_for_log("request with the service account", |v| {
        v["principal"] == SERVICE_ACCOUNT
    });
    assert_eq!(line["auth_mode"], "google", "{line}");
    // No output of either process holds a token (JWTs start `eyJ`).
    for logs in [app.logs(), tools.logs()] {
        assert!(
            !logs.iter().any(|l| l.contains("eyJ")),
            "a token was logged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_tool_calls_carry_a_minted_id_token_that_mcp_tool_accepts() {
    tool_calls_carry_id_tokens("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tool_calls_carry_a_minted_id_token_that_mcp_tool_accepts() {
    tool_calls_carry_id_tokens("http").await;
}

/// mcp-tool refuses the first token (bad signature: 401 with a challenge over Streamable HTTP,
/// UNAUTHENTICATED over gRPC); orchestrate drops it, mints one more and sends the request once
/// more, and the run goes on as if nothing happened. Later runs reuse the fresh token.
async fn a_refused_token_is_minted_again_once(transport: &str) {
    let (_jwks, google, tools, origin) = verified_tools_minting(true);
    let model = FakeModel::openai(echo_script(2));
    let dir = TempDir::new();
    let server = server_yaml(transport, &origin, Some("{type: id_token}"));
    let app = spawn_orchestrate(&dir, &model, &server, &google);
    for i in 0..2 {
        let call = run_echo(&app, i).await;
        assert!(
            call.get("error").is_none_or(Value::is_null),
            "{transport}: {call}"
        );
        let text = call["result"].as_str().unwrap_or_default();
        assert!(text.contains(&format!("hi {i}")), "{transport}: {call}");
    }
    // The refused token and its replacement: two mints, not more, for the server's origin.
    assert_eq!(
        google.mints_for(&origin),
        2,
        "{transport}: {:?}",
        google.minted()
    );
    // mcp-tool refused the stale one once (its metrics count the refusal) and then served.
    let host = tools.addr.to_string();
    let metrics = tokio::task::block_in_place(|| {
        e2e::http::request(tools.addr, "GET", "/metrics", &host, &[], b"").unwrap()
    })
    .text();
    let samples = e2e::metrics::parse(&metrics);
    let refusals = match transport {
        "grpc" => e2e::metrics::value(
            &samples,
            "aixgo_grpc_requests_total",
            &[
                ("method", "/mcp.MCPService/ListTools"),
                ("status", "Unauthenticated"),
            ],
        ),
        _ => e2e::metrics::value(
            &samples,
            "aixgo_http_requests_total",
            &[("method", "POST"), ("path", "/mcp"), ("status", "401")],
        ),
    };
    assert_eq!(refusals, Some(1.0), "{transport}: {metrics}");
    tools.wait_for_log("request with the service account", |v| {
        v["principal"] == SERVICE_ACCOUNT
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_a_refused_token_is_minted_again_and_the_call_sent_once_more() {
    a_refused_token_is_minted_again_once("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_refused_token_is_minted_again_and_the_post_sent_once_more() {
    a_refused_token_is_minted_again_once("http").await;
}

/// A model service with `auth: {type: id_token}` (Ollama or vLLM on Cloud Run behind IAM):
/// every chat request carries an ID token for the server's origin (or the configured
/// audience); a 401 (the first token refused) mints one more and resends before any output,
/// and the run completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_calls_carry_id_tokens_and_a_refused_one_is_minted_again() {
    let google = FakeGoogle::minting_stale_first(
        "test-project",
        TestKey::rsa("mds-key-m"),
        TestKey::rsa("mds-key-m"),
    );
    let refused = Reply::Error(
        401,
        "The request was not authenticated.".into(),
        vec![(
            "WWW-Authenticate".into(),
            "Bearer error=\"invalid_token\"".into(),
        )],
    );
    let model = FakeModel::openai(vec![refused, Reply::text("first"), Reply::text("second")]);
    let service = openai_service(&model).replacen(
        "    config:\n",
        "    auth: {type: id_token}\n    config:\n",
        1,
    );
    let dir = TempDir::new();
    let yaml = react_yaml(&service, None, "");
    let host = google.metadata_host();
    let app = orchestrate::spawn(&dir, &yaml, &[("GCE_METADATA_HOST", host.as_str())]);
    for (i, answer) in ["first", "second"].into_iter().enumerate() {
        let (status, result) = post_run(&app, json!({"input": format!("hello {i}")})).await;
        assert_eq!(status, 200, "{result}");
        assert_eq!(result["status"], "completed", "{result}");
        assert!(result.to_string().contains(answer), "{result}");
    }
    let origin = format!("http://{}", model.addr);
    let auths = model.authorizations();
    assert_eq!(auths.len(), 3, "{auths:?}");
    let tokens: Vec<String> = auths
        .iter()
        .map(|a| {
            let a = a.as_deref().expect("every chat request carries a token");
            a.strip_prefix("Bearer ")
                .expect("a bearer token")
                .to_owned()
        })
        .collect();
    for t in &tokens {
        assert_eq!(
            payload(t)["aud"],
            origin.as_str(),
            "minted for the model's origin"
        );
        assert_eq!(payload(t)["email"], SERVICE_ACCOUNT);
    }
    // Refused, then a fresh one, kept for the next run.
    assert_ne!(tokens[0], tokens[1], "the retry carried the same token");
    assert_eq!(tokens[1], tokens[2], "the fresh token was not reused");
    assert_eq!(google.mints_for(&origin), 2, "{:?}", google.minted());
    assert!(
        !app.logs().iter().any(|l| l.contains("eyJ")),
        "a token was logged"
    );
}

/// `audience` overrides the origin; `auth: {type: none}` sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_service_takes_a_configured_audience() {
    let google = FakeGoogle::minting("test-project", TestKey::rsa("mds-key-a"));
    let model = FakeModel::ollama(vec![Reply::text("hi")]);
    let audience = "https://ollama-abc123-ew.a.run.app";
    let service = ollama_service(&model).replacen(
        "    config:\n",
        &format!("    auth: {{type: id_token, audience: {audience}}}\n    config:\n"),
        1,
    );
    let dir = TempDir::new();
    let host = google.metadata_host();
    let app = orchestrate::spawn(
        &dir,
        &react_yaml(&service, None, ""),
        &[("GCE_METADATA_HOST", host.as_str())],
    );
    let (status, result) = post_run(&app, json!({"input": "hello"})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "completed", "{result}");
    let auth = model.authorizations()[0].clone().expect("a token");
    let token = auth.strip_prefix("Bearer ").unwrap();
    assert_eq!(payload(token)["aud"], audience);
    assert_eq!(
        google.minted(),
        vec![(audience.to_owned(), Some("full".to_owned()))]
    );

    let plain = FakeModel::ollama(vec![Reply::text("hi")]);
    let service = ollama_service(&plain).replacen(
        "    config:\n",
        "    auth: {type: none}\n    config:\n",
        1,
    );
    let dir = TempDir::new();
    let app = orchestrate::spawn(
        &dir,
        &react_yaml(&service, None, ""),
        &[("GCE_METADATA_HOST", host.as_str())],
    );
    let (status, result) = post_run(&app, json!({"input": "hello"})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(plain.authorizations(), vec![None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_mcp_tool_refuses_the_calls() {
    for transport in ["grpc", "http"] {
        let (_jwks, google, _tools, origin) = verified_tools();
        let model = FakeModel::openai(echo_script(1));
        let dir = TempDir::new();
        let app = spawn_orchestrate(
            &dir,
            &model,
            &server_yaml(transport, &origin, None),
            &google,
        );
        let (status, result) = post_run(&app, json!({"input": "echo 0"})).await;
        eprintln!("{transport}: {status} {result}");
        // The engine lists the agent's tools before the first model call; the refused listing
        // fails the run (200 with status failed), naming the server and the refusal (gRPC
        // UNAUTHENTICATED; over HTTP rmcp's "Auth required" for the 401), and the model is
        // never called.
        assert_eq!(status, 200, "{transport}: {result}");
        assert_eq!(result["status"], "failed", "{transport}: {result}");
        let error = result["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            error.contains("listing the tools of assistant") && error.contains("mcp server tools"),
            "{transport}: {result}"
        );
        assert!(
            error.contains("unauthenticated") || error.contains("auth required"),
            "{transport}: {result}"
        );
        assert_eq!(result["usage"]["tool_calls"], 0, "{transport}: {result}");
        assert!(
            model.requests().is_empty(),
            "{transport}: the model was called"
        );
        assert!(google.minted().is_empty(), "{transport}: nothing minted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python peers: run scripts/test-peers.sh"]
async fn the_fake_mints_what_googles_python_client_fetches_and_verifies() {
    // google-auth's documented path: `fetch_id_token` finds the metadata server
    // (GCE_METADATA_HOST) and reads the identity endpoint; `verify_token` checks the token
    // against the loopback key set.
    let Some(python) = interpreter() else {
        return;
    };
    let key = TestKey::rsa("mds-key-py");
    let jwks = JwksServer::start(&[&key]);
    let google = FakeGoogle::minting("test-project", key);
    let audience = "https://mcp-tool-abc123-uc.a.run.app";
    let script = r#"
import os
import google.auth.transport.requests
import google.oauth2.id_token
request = google.auth.transport.requests.Request()
audience = os.environ["AUDIENCE"]
token = google.oauth2.id_token.fetch_id_token(request, audience)
claims = google.oauth2.id_token.verify_token(
    token, request, audience=audience, certs_url=os.environ["CERTS_URL"])
assert claims["iss"] == "https://accounts.google.com", claims
assert claims["exp"] - claims["iat"] == 3600, claims
print(claims["aud"], claims["email"], claims["email_verified"])
"#;
    let metadata = google.metadata_host();
    let certs = jwks.url();
    let stdout = tokio::task::block_in_place(|| {
        run_script(
            &python,
            script,
            &[
                ("GCE_METADATA_HOST", metadata.as_str()),
                ("GCE_METADATA_IP", metadata.as_str()),
                ("AUDIENCE", audience),
                ("CERTS_URL", certs.as_str()),
            ],
        )
    });
    assert_eq!(stdout.trim(), format!("{audience} {SERVICE_ACCOUNT} True"));
    assert_eq!(
        google.minted(),
        vec![(audience.to_owned(), Some("full".to_owned()))]
    );
}

#[test]
fn the_identity_endpoint_is_the_documented_one() {
    // Metadata-Flavor required both ways; a raw JWT body; 400 without an audience; no e-mail
    // in the standard format.
    let key = TestKey::rsa("mds-key-raw");
    let google = FakeGoogle::minting("test-project", key);
    let path = "/computeMetadata/v1/instance/service-accounts/default/identity";
    let flavor = [("Metadata-Flavor", "Google")];
    let host = google.metadata_host();
    let r = e2e::http::request(
        google.addr,
        "GET",
        &format!("{path}?audience=https%3A%2F%2Fx.run.app&format=full"),
        &host,
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    let r = e2e::http::request(google.addr, "GET", path, &host, &flavor, b"").unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    let r = e2e::http::request(
        google.addr,
        "GET",
        &format!("{path}?audience=https%3A%2F%2Fx.run.app&format=full"),
        &host,
        &flavor,
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("metadata-flavor"), Some("Google"));
    let token = r.text();
    assert_eq!(token.split('.').count(), 3, "a raw JWT: {token}");
    let claims = payload(&token);
    assert_eq!(claims["aud"], "https://x.run.app");
    assert_eq!(claims["email"], SERVICE_ACCOUNT);
    let r = e2e::http::request(
        google.addr,
        "GET",
        &format!("{path}?audience=https%3A%2F%2Fx.run.app"),
        &host,
        &flavor,
        b"",
    )
    .unwrap();
    assert!(payload(&r.text()).get("email").is_none());
    assert_eq!(google.mints_for("https://x.run.app"), 2);
}

fn payload(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}
