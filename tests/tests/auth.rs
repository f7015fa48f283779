//! Verifying incoming credentials (`AUTH_MODE`) on the real mcp-tool binary, against a loopback
//! key set serving keys generated here: Google ID tokens (RS256), IAP assertions (ES256) and
//! API keys; the rejection matrix; one layer over REST, `/mcp`, gRPC and gRPC-Web; open health
//! routes; the key set fetched lazily, once for concurrent requests, cached, and fetched again
//! for a new `kid`; the principal in the request log and no credential in any output.

use std::time::Duration;

use aixrun_proto::mcp as pb;
use aixrun_proto::mcp::mcp_service_client::McpServiceClient;
use e2e::google::{FakeGoogle, SecretAnswer};
use e2e::http::{self, RawResponse};
use e2e::jwks::{self, JwksServer, TestKey};
use e2e::mcp::{grpc_web_request, initialize};
use e2e::{TestApp, clients, run};
use serde_json::{Value, json};
use tonic::Code;

const AUD: &str = "https://mcp-tool-abc123-uc.a.run.app";
const CALLER: &str = "caller@example.com";
const STRANGER: &str = "mallory@evil.test";
const IAP_AUD: &str = "/projects/123456/global/backendServices/7890";

/// mcp-tool with `AUTH_MODE=google` against `jwks`, callers limited to example.com, plus `extra`.
fn google_app(jwks: &JwksServer, extra: &[(&str, &str)]) -> TestApp {
    let url = jwks.url();
    let mut envs = vec![
        ("AUTH_MODE", "google"),
        ("AUTH_AUDIENCES", AUD),
        ("GOOGLE_JWKS_URL", url.as_str()),
        ("AUTH_ALLOWED_PRINCIPALS", "*@example.com"),
    ];
    envs.extend_from_slice(extra);
    TestApp::spawn("mcp-tool", &envs)
}

fn host(app: &TestApp) -> String {
    format!("localhost:{}", app.addr.port())
}

/// `POST /mcp` (a legacy `initialize`) with these headers.
fn post_mcp(app: &TestApp, headers: &[(&str, &str)]) -> RawResponse {
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    http::request(
        app.addr,
        "POST",
        "/mcp",
        &host(app),
        &all,
        initialize(1).to_string().as_bytes(),
    )
    .expect("POST /mcp")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A 401 with the common body, the challenge and a message containing `fragment`.
fn assert_unauthenticated(r: &RawResponse, fragment: &str, token_given: bool, case: &str) {
    assert_eq!(r.status, 401, "{case}: {r:?}");
    let body = r.json();
    assert_eq!(body["code"], "unauthenticated", "{case}: {body}");
    assert_eq!(body["status"], 401, "{case}: {body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains(fragment), "{case}: {message:?}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"mcp-tool\""),
        "{case}: {challenge:?}"
    );
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        token_given,
        "{case}: {challenge:?}"
    );
}

/// Nothing of `token` (its signature, or the whole of a short one) in `text`.
fn assert_not_echoed(text: &str, token: &str, case: &str) {
    let secret_part = token.rsplit('.').next().filter(|s| s.len() >= 16);
    let needle = secret_part.unwrap_or(token);
    assert!(
        !text.contains(needle),
        "{case}: the credential was echoed: {text}"
    );
}

#[test]
fn google_id_tokens_rejection_matrix() {
    let key = TestKey::rsa("google-key-1");
    let impostor = TestKey::rsa("google-key-1");
    let unpublished = TestKey::rsa("google-key-unpublished");
    let jwks = JwksServer::start(&[&key]);
    let app = google_app(&jwks, &[]);
    let good = jwks::google_claims(AUD, CALLER);
    let with = |changes: Value| {
        let mut claims = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let now = jwks::now();

    // Accepted: 200 from the MCP server itself.
    let token = key.sign(&good);
    let r = post_mcp(&app, &[("Authorization", &bearer(&token))]);
    assert_eq!(r.status, 200, "good token: {r:?}");
    assert!(r.text().contains("protocolVersion"), "{r:?}");

    // No credential: a plain challenge, no error code.
    let r = post_mcp(&app, &[]);
    assert_unauthenticated(
        &r,
        "Google ID token in Authorization: Bearer",
        false,
        "none",
    );

    let cases: Vec<(&str, String, &str)> = vec![
        ("bad signature", impostor.sign(&good), "has a bad signature"),
        ("alg none", key.alg_none(&good), "alg none"),
        (
            "HS256 signed with the public key",
            key.hs256_with_public_key(&good),
            "alg HS256",
        ),
        (
            "expired",
            key.sign(&with(json!({"iat": now - 7200, "exp": now - 3600}))),
            "has expired",
        ),
        (
            "not yet valid (nbf)",
            key.sign(&with(json!({"nbf": now + 3600}))),
            "not valid yet (nbf",
        ),
        (
            "not yet valid (iat)",
            key.sign(&with(json!({"iat": now + 3600, "exp": now + 7200}))),
            "iat in the future",
        ),
        (
            "wrong aud",
            key.sign(&with(json!({"aud": "https://other-service.a.run.app"}))),
            "another audience",
        ),
        (
            "wrong iss",
            key.sign(&with(json!({"iss": "https://evil.example.com"}))),
            "not issued by accounts.google.com",
        ),
        (
            "no exp",
            key.sign(&{
                let mut c = good.clone();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
            "no exp claim",
        ),
        ("unknown kid", unpublished.sign(&good), "unknown key"),
        ("not a JWT", "not-a-jwt".to_owned(), "not a well-formed JWT"),
    ];
    for (case, token, fragment) in &cases {
        let r = post_mcp(&app, &[("Authorization", &bearer(token))]);
        assert_unauthenticated(&r, fragment, true, case);
        assert_not_echoed(&r.text(), token, case);
        assert_not_echoed(
            r.header("www-authenticate").unwrap_or_default(),
            token,
            case,
        );
    }

    // Verified, but not among AUTH_ALLOWED_PRINCIPALS: 403.
    let token = key.sign(&with(json!({"email": STRANGER})));
    let r = post_mcp(&app, &[("Authorization", &bearer(&token))]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["code"], "forbidden");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not allowed to call this service"),
        "{r:?}"
    );

    // An e-mail Google has not verified does not count: the subject does not match either.
    let token = key.sign(&with(json!({"email_verified": false})));
    assert_eq!(
        post_mcp(&app, &[("Authorization", &bearer(&token))]).status,
        403
    );

    // The accepted request's log line names its principal; no output holds any token.
    let line = app.wait_for_log("request line with the principal", |v| {
        v["principal"] == CALLER && v["httpRequest"]["status"] == 200
    });
    assert_eq!(line["auth_mode"], "google", "{line}");
    let logs = app.logs().join("\n");
    for (case, token, _) in &cases {
        assert_not_echoed(&logs, token, case);
    }
    assert_not_echoed(&logs, &key.sign(&good), "good token");
}

#[test]
fn iap_assertions_are_es256_with_the_iap_audience() {
    let key = TestKey::p256("iap-key-1");
    let rsa = TestKey::rsa("iap-key-1");
    let jwks = JwksServer::start(&[&key]);
    let url = jwks.url();
    let app = TestApp::spawn(
        "mcp-tool",
        &[
            ("AUTH_MODE", "iap"),
            ("IAP_AUDIENCE", IAP_AUD),
            ("IAP_JWKS_URL", &url),
        ],
    );
    let good = jwks::iap_claims(IAP_AUD, CALLER);
    let r = post_mcp(&app, &[("X-Goog-IAP-JWT-Assertion", &key.sign(&good))]);
    assert_eq!(r.status, 200, "good assertion: {r:?}");
    let line = app.wait_for_log("IAP principal", |v| v["auth_mode"] == "iap");
    assert_eq!(line["principal"], CALLER, "{line}");

    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("/projects/123456/global/backendServices/9999");
    let mut expired = good.clone();
    expired["exp"] = json!(jwks::now() - 3600);
    let mut google_iss = good.clone();
    google_iss["iss"] = json!(jwks::GOOGLE_ISSUER);
    for (case, token, fragment) in [
        (
            "wrong audience",
            key.sign(&wrong_aud),
            "another audience (aud not in IAP_AUDIENCE)",
        ),
        ("expired", key.sign(&expired), "has expired"),
        (
            "wrong iss",
            key.sign(&google_iss),
            "not issued by https://cloud.google.com/iap",
        ),
        ("RS256", rsa.sign(&good), "alg RS256"),
        ("alg none", key.alg_none(&good), "alg none"),
    ] {
        let r = post_mcp(&app, &[("X-Goog-IAP-JWT-Assertion", &token)]);
        assert_unauthenticated(&r, fragment, true, case);
        assert_not_echoed(&r.text(), &token, case);
    }
    // A Google ID token in Authorization is no IAP assertion.
    let r = post_mcp(&app, &[("Authorization", &bearer(&key.sign(&good)))]);
    assert_unauthenticated(&r, "X-Goog-IAP-JWT-Assertion", false, "bearer only");
}

#[test]
fn api_keys_in_bearer_or_x_api_key() {
    let keys = "first-key-0123456789,second-key-0123456789";
    let app = TestApp::spawn(
        "mcp-tool",
        &[("AUTH_MODE", "api-key"), ("AUTH_API_KEYS", keys)],
    );
    let r = post_mcp(&app, &[("Authorization", "Bearer second-key-0123456789")]);
    assert_eq!(r.status, 200, "{r:?}");
    let r = post_mcp(&app, &[("X-API-Key", "first-key-0123456789")]);
    assert_eq!(r.status, 200, "{r:?}");
    for (case, headers) in [
        ("wrong key", vec![("X-API-Key", "third-key-0123456789")]),
        ("prefix of a key", vec![("X-API-Key", "first-key")]),
        (
            "both keys joined",
            vec![(
                "Authorization",
                "Bearer first-key-0123456789,second-key-0123456789",
            )],
        ),
        ("wrong bearer", vec![("Authorization", "Bearer nope")]),
    ] {
        let r = post_mcp(&app, &headers);
        assert_unauthenticated(&r, "API key is not recognised", true, case);
    }
    assert_unauthenticated(&post_mcp(&app, &[]), "an API key", false, "none");
    let line = app.wait_for_log("api-key principal", |v| v["principal"] == "api-key:2");
    assert_eq!(line["auth_mode"], "api-key", "{line}");
    let logs = app.logs().join("\n");
    assert!(!logs.contains("key-0123456789"), "a key was logged: {logs}");
}

#[test]
fn api_keys_can_come_from_secret_manager() {
    let google = FakeGoogle::start(
        "test-project",
        &[(
            "api-keys",
            SecretAnswer::Value("secret-key-from-sm-42".into()),
        )],
        Duration::ZERO,
    );
    let (metadata, endpoint) = (google.metadata_host(), google.endpoint());
    let app = TestApp::spawn(
        "mcp-tool",
        &[
            ("AUTH_MODE", "api-key"),
            ("AUTH_API_KEYS", "sm://api-keys"),
            ("GCE_METADATA_HOST", &metadata),
            ("SECRET_MANAGER_ENDPOINT", &endpoint),
        ],
    );
    assert_eq!(google.secret_reads(), 1);
    let r = post_mcp(&app, &[("X-API-Key", "secret-key-from-sm-42")]);
    assert_eq!(r.status, 200, "the resolved key is accepted: {r:?}");
    let r = post_mcp(&app, &[("X-API-Key", "sm://api-keys")]);
    assert_eq!(r.status, 401, "the reference itself is no key: {r:?}");
}

#[test]
fn several_modes_accept_any_of_their_credentials() {
    let key = TestKey::rsa("k1");
    let jwks = JwksServer::start(&[&key]);
    let app = google_app(
        &jwks,
        &[
            ("AUTH_MODE", "google,api-key"),
            ("AUTH_API_KEYS", "the-api-key-000111"),
        ],
    );
    let token = key.sign(&jwks::google_claims(AUD, CALLER));
    assert_eq!(
        post_mcp(&app, &[("Authorization", &bearer(&token))]).status,
        200
    );
    assert_eq!(
        post_mcp(&app, &[("Authorization", "Bearer the-api-key-000111")]).status,
        200
    );
    assert_eq!(
        post_mcp(&app, &[("X-API-Key", "the-api-key-000111")]).status,
        200
    );
    // A bad JWT is judged as a Google ID token, a bad opaque bearer as an API key.
    let mut claims = jwks::google_claims(AUD, CALLER);
    claims["exp"] = json!(jwks::now() - 3600);
    let r = post_mcp(&app, &[("Authorization", &bearer(&key.sign(&claims)))]);
    assert_unauthenticated(&r, "Google ID token has expired", true, "expired JWT");
    let r = post_mcp(&app, &[("Authorization", "Bearer wrong")]);
    assert_unauthenticated(&r, "API key is not recognised", true, "wrong key");
    // A wrong API key does not spoil a good token sent alongside.
    let r = post_mcp(
        &app,
        &[("Authorization", &bearer(&token)), ("X-API-Key", "wrong")],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = post_mcp(&app, &[]);
    assert_unauthenticated(
        &r,
        "Google ID token in Authorization: Bearer, or an API key",
        false,
        "none",
    );
}

fn echo_body() -> Vec<u8> {
    grpc_web_request(&pb::CallToolRequest {
        name: "echo".into(),
        arguments_json: r#"{"text": "hi"}"#.into(),
        ..Default::default()
    })
}

fn grpc_web_call(app: &TestApp, authorization: Option<&str>) -> RawResponse {
    let mut headers = vec![
        ("Content-Type", "application/grpc-web+proto"),
        ("X-Grpc-Web", "1"),
    ];
    if let Some(value) = authorization {
        headers.push(("Authorization", value));
    }
    http::request(
        app.addr,
        "POST",
        "/mcp.MCPService/CallTool",
        &host(app),
        &headers,
        &echo_body(),
    )
    .expect("gRPC-Web call")
}

async fn grpc_list_tools(app: &TestApp, authorization: Option<&str>) -> Result<(), tonic::Status> {
    let mut client = McpServiceClient::new(clients::grpc_channel(app.addr).await);
    let mut request = tonic::Request::new(pb::ListToolsRequest::default());
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    client.list_tools(request).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_layer_covers_rest_mcp_grpc_and_grpc_web() {
    let key = TestKey::rsa("k1");
    let jwks = JwksServer::start(&[&key]);
    // Only readiness stays open: /metrics is a protected REST route here.
    let app = google_app(&jwks, &[("AUTH_OPEN_PATHS", "/health/ready")]);
    let good = bearer(&key.sign(&jwks::google_claims(AUD, CALLER)));
    let mut expired = jwks::google_claims(AUD, CALLER);
    expired["exp"] = json!(jwks::now() - 3600);
    let bad = bearer(&key.sign(&expired));
    let stranger = bearer(&key.sign(&jwks::google_claims(AUD, STRANGER)));
    let host = host(&app);

    let rest = |authorization: Option<&str>| {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        http::request(app.addr, "GET", "/metrics", &host, &headers, b"").unwrap()
    };
    let mcp = |authorization: Option<&str>| {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        post_mcp(&app, &headers)
    };
    for (name, call) in [
        ("REST", &rest as &dyn Fn(Option<&str>) -> RawResponse),
        ("/mcp", &mcp),
    ] {
        assert_unauthenticated(&call(None), "authentication required", false, name);
        assert_unauthenticated(&call(Some(bad.as_str())), "has expired", true, name);
        assert_eq!(call(Some(stranger.as_str())).status, 403, "{name}");
        assert_eq!(call(Some(good.as_str())).status, 200, "{name}");
    }

    // gRPC: UNAUTHENTICATED, PERMISSION_DENIED, served.
    let status = grpc_list_tools(&app, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("authentication required"),
        "{status:?}"
    );
    let status = grpc_list_tools(&app, Some(bad.as_str())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("has expired"), "{status:?}");
    let status = grpc_list_tools(&app, Some(stranger.as_str()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    grpc_list_tools(&app, Some(good.as_str()))
        .await
        .expect("served with a good token");

    // gRPC-Web: the same codes in the status; the tool runs only with a good token.
    let (app_ref, none, bad_ref, stranger_ref, good_ref) =
        (&app, None, bad.as_str(), stranger.as_str(), good.as_str());
    let replies = tokio::task::block_in_place(|| {
        [
            grpc_web_call(app_ref, none),
            grpc_web_call(app_ref, Some(bad_ref)),
            grpc_web_call(app_ref, Some(stranger_ref)),
            grpc_web_call(app_ref, Some(good_ref)),
        ]
    });
    for (reply, code) in replies[..3].iter().zip(["16", "16", "7"]) {
        assert_eq!(reply.header("grpc-status"), Some(code), "{reply:?}");
        assert!(!reply.text().contains("hi"), "the tool ran: {reply:?}");
    }
    assert_eq!(replies[3].status, 200, "{:?}", replies[3]);
    assert!(replies[3].text().contains("hi"), "{:?}", replies[3]);

    // Refused gRPC and gRPC-Web calls are counted like served ones, in the gRPC metrics, by
    // the method they asked for and the status they got (refused REST is in the HTTP ones).
    let text = rest(Some(good.as_str())).text();
    let samples = e2e::metrics::parse(&text);
    let grpc = |method: &str, status: &str| {
        e2e::metrics::value(
            &samples,
            "aixgo_grpc_requests_total",
            &[("method", method), ("status", status)],
        )
    };
    assert_eq!(
        grpc("/mcp.MCPService/ListTools", "Unauthenticated"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        grpc("/mcp.MCPService/ListTools", "PermissionDenied"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(grpc("/mcp.MCPService/ListTools", "OK"), Some(1.0), "{text}");
    assert_eq!(
        grpc("/mcp.MCPService/CallTool", "Unauthenticated"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        grpc("/mcp.MCPService/CallTool", "PermissionDenied"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(grpc("/mcp.MCPService/CallTool", "OK"), Some(1.0), "{text}");
    let http_status = |status: &str| {
        e2e::metrics::value(
            &samples,
            "aixgo_http_requests_total",
            &[("method", "POST"), ("path", "/mcp"), ("status", status)],
        )
    };
    assert_eq!(http_status("401"), Some(2.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_stay_open_and_nothing_else_does() {
    let key = TestKey::rsa("k1");
    let jwks = JwksServer::start(&[&key]);
    let app = google_app(&jwks, &[]);
    for path in ["/health", "/health/ready", "/health/live", "/metrics"] {
        let r = http::request(app.addr, "GET", path, &host(&app), &[], b"").unwrap();
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(clients::grpc_channel(app.addr).await);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("gRPC health is open");
    assert_eq!(reply.into_inner().status, 1, "SERVING");
    // An unknown path is refused before routing: no token, no 404 that reveals the routes.
    let r = http::request(app.addr, "GET", "/nowhere", &host(&app), &[], b"").unwrap();
    assert_eq!(r.status, 401, "{r:?}");
    // Reflection is not open.
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            clients::grpc_channel(app.addr).await,
        );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let outcome = reflection
        .server_reflection_info(futures_util::stream::iter([request]))
        .await;
    assert_eq!(
        outcome.map(|_| ()).unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(jwks.fetches(), 0, "no key was needed");
}

#[test]
fn the_key_set_is_fetched_lazily_once_cached_and_again_for_a_new_kid() {
    let key = TestKey::rsa("k1");
    let jwks = JwksServer::start(&[&key]);
    jwks.set_latency(Duration::from_millis(300));
    let app = google_app(&jwks, &[]);
    // Started and probed: nothing fetched yet.
    assert_eq!(jwks.fetches(), 0, "fetched at start-up");

    // Eight requests at once on a cold cache: one fetch.
    let token = bearer(&key.sign(&jwks::google_claims(AUD, CALLER)));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| post_mcp(&app, &[("Authorization", &token)]).status))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 200);
        }
    });
    assert_eq!(jwks.fetches(), 1, "concurrent requests share one fetch");
    assert_eq!(post_mcp(&app, &[("Authorization", &token)]).status, 200);
    assert_eq!(jwks.fetches(), 1, "cached (max-age=3600)");

    // Google rotates: a token signed with the new key triggers one fetch and is accepted.
    let rotated = TestKey::rsa("k2");
    jwks.set_keys(&[&key, &rotated]);
    std::thread::sleep(Duration::from_millis(1100)); // fetches are at least 1 s apart
    let token2 = bearer(&rotated.sign(&jwks::google_claims(AUD, CALLER)));
    assert_eq!(post_mcp(&app, &[("Authorization", &token2)]).status, 200);
    assert_eq!(jwks.fetches(), 2);

    // A burst of unknown kids right after: refused, without a fetch each.
    let stranger_key = TestKey::rsa("k3");
    let token3 = bearer(&stranger_key.sign(&jwks::google_claims(AUD, CALLER)));
    for _ in 0..5 {
        let r = post_mcp(&app, &[("Authorization", &token3)]);
        assert_unauthenticated(&r, "unknown key", true, "unknown kid");
    }
    assert!(jwks.fetches() <= 3, "fetches: {}", jwks.fetches());

    // The key-set server fails: a new kid can't be checked (503), the keys held still verify.
    jwks.set_failing(true);
    std::thread::sleep(Duration::from_millis(1100));
    let r = post_mcp(&app, &[("Authorization", &token3)]);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.text().contains("503 Service Unavailable"), "{r:?}");
    assert_eq!(post_mcp(&app, &[("Authorization", &token)]).status, 200);
}

#[test]
fn unreachable_keys_are_503_not_401() {
    let url = format!("http://127.0.0.1:{}/certs", e2e::closed_port());
    let app = TestApp::spawn(
        "mcp-tool",
        &[
            ("AUTH_MODE", "google"),
            ("AUTH_AUDIENCES", AUD),
            ("GOOGLE_JWKS_URL", &url),
        ],
    );
    let key = TestKey::rsa("k1");
    let token = key.sign(&jwks::google_claims(AUD, CALLER));
    let r = post_mcp(&app, &[("Authorization", &bearer(&token))]);
    assert_eq!(r.status, 503, "{r:?}");
    let message = r.json()["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("Google's signing keys are unavailable"),
        "{message}"
    );
    assert_not_echoed(&message, &token, "503");
}

#[test]
fn auth_config_errors_stop_startup_with_one_line() {
    for (envs, fragment) in [
        (vec![("AUTH_MODE", "google")], "AUTH_AUDIENCES"),
        (
            vec![("AUTH_MODE", "google,kerberos")],
            "unknown mode \"kerberos\"",
        ),
        (vec![("AUTH_MODE", "iap")], "IAP_AUDIENCE"),
        (vec![("AUTH_MODE", "api-key")], "AUTH_API_KEYS"),
        (
            vec![("AUTH_MODE", "iap"), ("IAP_AUDIENCE", "my-backend")],
            "is not an IAP audience",
        ),
    ] {
        let out = run("mcp-tool", &[], &envs, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{envs:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{envs:?}: {lines:?}");
        assert!(lines[0].contains(fragment), "{envs:?}: {}", lines[0]);
    }
}
