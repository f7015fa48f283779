//! orchestrate's OpenAPI document (`GET /openapi.json`) kept true against the real binary:
//! every request shape it documents is sent (JSON and streamed runs of a classifier, a react
//! agent with a tool and a supervisor with a worker, every run field, the `grpc-timeout` header,
//! each refusal: bad bodies, an unknown workflow, a body too large, a foreign origin, a missing
//! credential, an unreachable model; the workflows, the console on and off, health, metrics),
//! and each answer must have a status and content type the document lists for it and a body
//! that matches its schema; each server-sent event must match `RunEvent` and carry its
//! `event:` name as `type`. Every documented route must be exercised.

use std::collections::{BTreeSet, HashMap};

use aixrun::schema::Schema;
use e2e::model::{FakeModel, Reply};
use e2e::orchestrate::{self, openai_service};
use e2e::sse::SseReader;
use e2e::{TempDir, TestApp, clients, closed_port};
use serde_json::{Value, json};

/// The document, its compiled schemas and what the test has exercised.
struct Contract {
    doc: Value,
    schemas: HashMap<String, Schema>,
    seen: BTreeSet<(String, String, u16)>,
}

impl Contract {
    fn new(doc: Value) -> Self {
        Self {
            doc,
            schemas: HashMap::new(),
            seen: BTreeSet::new(),
        }
    }

    /// Checks `schema` (a schema object of the document) against `instance`.
    fn validate(&mut self, schema: &Value, instance: &Value, what: &str) {
        let key = schema.to_string();
        let components = self.doc["components"].clone();
        let compiled = self.schemas.entry(key).or_insert_with(|| {
            let mut root = schema.clone();
            if let Value::Object(map) = &mut root {
                map.insert("components".into(), components);
            }
            Schema::compile(&root).unwrap_or_else(|e| panic!("{what}: schema: {e}"))
        });
        if let Err(e) = compiled.validate(instance) {
            panic!("{what}: {e}\nbody: {instance:#}");
        }
    }

    /// `schema`, or what its `$ref` names.
    fn resolve(&self, schema: &Value) -> Value {
        match schema["$ref"].as_str() {
            Some(r) => self.doc.pointer(&r[1..]).cloned().unwrap(),
            None => schema.clone(),
        }
    }

    /// The documented response for this status (a `$ref` followed).
    fn response(&self, method: &str, path: &str, status: u16) -> Value {
        let operation = &self.doc["paths"][path][method];
        assert!(
            operation.is_object(),
            "{method} {path} is not in the document"
        );
        let response = &operation["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which the document does not list"
        );
        match response["$ref"].as_str() {
            Some(r) => self.doc.pointer(&r[1..]).cloned().unwrap(),
            None => response.clone(),
        }
    }

    /// Sends `request` and checks the answer against the document; returns (status, JSON body
    /// or the stream's events' data).
    async fn call(
        &mut self,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let request = request.build().unwrap();
        let method = request.method().as_str().to_ascii_lowercase();
        let response = clients::http1().execute(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let what = format!("{method} {path} -> {status}");
        self.seen.insert((path.to_owned(), method.clone(), status));
        let documented = self.response(&method, path, status);
        let media = headers
            .get("content-type")
            .map(|v| {
                v.to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        let content = &documented["content"][&media];
        assert!(
            content.is_object(),
            "{what}: content type {media:?} is not documented: {}",
            documented["content"]
        );
        if media == "text/event-stream" {
            let events = SseReader::new(response).all().await;
            assert!(!events.is_empty(), "{what}: no events");
            // The schema describes each event (OpenAPI 3.2's reading of event streams); its
            // `data` is JSON whose schema is `contentSchema` (an annotation to JSON Schema, so
            // checked here on its own).
            let schema = self.resolve(&content["schema"]);
            let data_schema = schema["properties"]["data"]["contentSchema"].clone();
            let mut data = Vec::new();
            for (i, event) in events.iter().enumerate() {
                let what = format!("{what}: event {i}");
                assert_eq!(event.data["type"], event.event, "{what}");
                let id = event.id.clone().unwrap_or_default();
                assert_eq!(id, event.data["seq"].to_string(), "{what}");
                let fields =
                    json!({"event": event.event, "id": id, "data": event.data.to_string()});
                self.validate(&schema, &fields, &what);
                // The event's own schema first (by the discriminator), for a precise message.
                let union = self.resolve(&data_schema);
                let own = &union["discriminator"]["mapping"][event.event.as_str()];
                assert!(own.is_string(), "{what}: {} is not documented", event.event);
                self.validate(&json!({"$ref": own}), &event.data, &what);
                self.validate(&data_schema, &event.data, &what);
                data.push(event.data.clone());
            }
            assert_eq!(data.last().unwrap()["type"], "run.finished", "{what}");
            return (status, Value::Array(data), headers);
        }
        let text = response.text().await.unwrap();
        if media == "application/json" {
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
            let schema = content["schema"].clone();
            self.validate(&schema, &body, &what);
            return (status, body, headers);
        }
        (status, Value::String(text), headers)
    }

    /// Asserts that every documented route was asked at least once.
    fn assert_every_route_exercised(&self) {
        let mut missing = Vec::new();
        let mut unexercised = Vec::new();
        for (path, operations) in self.doc["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                if !self.seen.iter().any(|(p, m, _)| p == path && m == method) {
                    missing.push(format!("{method} {path}"));
                }
                for status in operation["responses"].as_object().unwrap().keys() {
                    let code: u16 = status.parse().unwrap();
                    if !self.seen.contains(&(path.clone(), method.clone(), code)) {
                        unexercised.push(format!("{method} {path} {status}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "never exercised: {missing:?}");
        // Listed, not failed: some answers need a state the test does not stage (a draining
        // instance's 503 from /health/ready, for one).
        eprintln!("documented answers not exercised here: {unexercised:?}");
    }
}

const KEY: &str = "test-key-1";

/// A classifier routing to a react agent with the echo tool or to a chatter, a supervisor with
/// a helper as its worker, and a react agent alone.
fn config(model_service: &str) -> String {
    format!(
        "mcp_servers:
  - name: tools
    transport: local
    tools: [echo]
model_services:
{model_service}agents:
  - name: router
    role: classifier
    model: fake
    classifier_config:
      categories:
        - {{name: tools, description: Repeating things, keywords: [echo]}}
        - {{name: chat, keywords: [hello]}}
      keywords_first: true
      fallback: chat
    outputs:
      - {{target: assistant, when: tools}}
      - {{target: chatter, when: chat}}
  - name: assistant
    role: react
    model: fake
    prompt: Use the echo tool.
    mcp_servers: [tools]
  - name: chatter
    role: react
    model: fake
    prompt: Chat briefly.
  - name: solo
    role: react
    model: fake
    prompt: Answer briefly.
  - name: helper
    role: react
    model: fake
    prompt: Help.
  - name: lead
    role: supervisor
    model: fake
    workers: [helper]
    max_rounds: 3
workflows:
  - {{name: routed, description: A classifier and two specialists, agents: [router, assistant, chatter]}}
  - {{name: team, agents: [lead]}}
  - {{name: plain, agents: [solo]}}
"
    )
}

fn post(app: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    clients::http1()
        .post(app.url("/v1/run"))
        .header("content-type", "application/json")
        .body(body)
}

fn get(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    clients::http1().get(app.url(path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_request_shape_gets_a_documented_answer() {
    let model = FakeModel::openai(vec![
        // 1. routed, JSON: a tool call, then the answer.
        Reply::call("echo", json!({"text": "this"})),
        Reply::text("It said this."),
        // 2. routed, streamed by Accept.
        Reply::call("echo", json!({"text": "that"})),
        Reply::text("It said that."),
        // 3. team, streamed by the body: a delegation, the worker, the answer.
        Reply::text(r#"{"action": "delegate", "worker": "helper", "task": "say hi"}"#),
        Reply::text("hi"),
        Reply::text(r#"{"action": "finish", "answer": "They said hi."}"#),
        // 4. plain, every field.
        Reply::text("Fine."),
        // 5. plain, deadline_ms 0 (may end before asking the model).
        Reply::text("Late."),
    ]);
    let dir = TempDir::new();
    let app = orchestrate::spawn(&dir, &config(&openai_service(&model)), &[]);

    let (status, doc, _) = {
        let r = get(&app, "/openapi.json").send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap(), ())
    };
    assert_eq!(status, 200);
    let mut c = Contract::new(doc);
    c.call("/openapi.json", get(&app, "/openapi.json")).await;

    // The workflows, as graphs.
    let (_, workflows, _) = c.call("/v1/workflows", get(&app, "/v1/workflows")).await;
    let routed = &workflows["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "routed")
        .unwrap();
    assert_eq!(routed["entries"], json!(["router"]));
    assert_eq!(routed["edges"][0]["when"], "tools");
    let team = workflows["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "team")
        .unwrap();
    assert_eq!(team["workers"][0]["name"], "helper", "{team}");

    // 1. A JSON run through a keyword route and a tool call.
    let (status, result, _) = c
        .call(
            "/v1/run",
            post(
                &app,
                json!({"workflow": "routed", "input": "please echo this"}).to_string(),
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["steps"][0]["decisions"][0]["kind"], "route");
    assert_eq!(result["steps"][1]["tool_calls"][0]["name"], "echo");

    // 2. The same, streamed because of Accept.
    let (_, events, headers) = c
        .call(
            "/v1/run",
            post(
                &app,
                json!({"workflow": "routed", "input": "echo that"}).to_string(),
            )
            .header("accept", "text/event-stream"),
        )
        .await;
    assert_eq!(headers["cache-control"], "no-cache");
    let types: BTreeSet<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for t in [
        "run.started",
        "agent.started",
        "agent.decided",
        "model.call",
        "tool.call",
        "tool.result",
        "message.delta",
        "agent.finished",
        "run.finished",
    ] {
        assert!(types.contains(t), "no {t} in {types:?}");
    }

    // 3. A supervisor's run, streamed because of the body: the worker's step is a child.
    let (_, events, _) = c
        .call(
            "/v1/run",
            post(
                &app,
                json!({"workflow": "team", "input": "greet", "stream": true}).to_string(),
            ),
        )
        .await;
    let finished = events.as_array().unwrap().last().unwrap();
    assert_eq!(finished["status"], "completed", "{finished}");
    assert!(
        finished["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["parent_step_id"].is_string()),
        "{finished}"
    );

    // 4. Every field, an object input and the caller's grpc-timeout.
    let every = json!({
        "workflow": "plain",
        "input": {"question": "how are you?"},
        "metadata": {"from": "the OpenAPI test"},
        "budget": {"wall_time_ms": 60000, "input_tokens": 10000, "output_tokens": 1000,
                   "model_calls": 5, "tool_calls": 5},
        "deadline_ms": 60000,
        "stream": null,
    });
    let (status, result, _) = c
        .call(
            "/v1/run",
            post(&app, every.to_string()).header("grpc-timeout", "30S"),
        )
        .await;
    assert_eq!(
        (status, result["status"].as_str()),
        (200, Some("completed")),
        "{result}"
    );

    // 5. A run out of time at once, JSON although Accept asks for a stream.
    let (status, result, _) = c
        .call(
            "/v1/run",
            post(
                &app,
                json!({"workflow": "plain", "input": "x", "deadline_ms": 0, "stream": false})
                    .to_string(),
            )
            .header("accept", "text/event-stream"),
        )
        .await;
    assert_eq!(status, 200, "{result}");

    // Refusals, each in the common error body.
    for (body, code) in [
        ("not json".to_owned(), 400),
        ("[1]".to_owned(), 400),
        (json!({}).to_string(), 400),
        (json!({"input": 1}).to_string(), 400),
        (json!({"input": "x", "colour": "red"}).to_string(), 400),
        (json!({"input": "x", "workflow": 7}).to_string(), 400),
        (json!({"input": "x", "metadata": []}).to_string(), 400),
        (json!({"input": "x", "stream": "yes"}).to_string(), 400),
        (json!({"input": "x", "deadline_ms": -1}).to_string(), 400),
        (
            json!({"input": "x", "workflow": "plain", "budget": {"model_calls": 1000}}).to_string(),
            400,
        ),
        (
            json!({"input": "x", "workflow": "plain", "budget": {"minutes": 1}}).to_string(),
            400,
        ),
        (json!({"input": "x"}).to_string(), 400), // three workflows, none named default
        (json!({"input": "x", "workflow": "nope"}).to_string(), 404),
        // Asked for as a stream: a stream of one run.finished, or the JSON error.
        (
            json!({"input": "x", "workflow": "nope", "stream": true}).to_string(),
            404,
        ),
        (
            json!({"input": "x".repeat(1024 * 1024 + 1), "workflow": "plain"}).to_string(),
            413,
        ),
    ] {
        let (status, error, _) = c.call("/v1/run", post(&app, body.clone())).await;
        assert_eq!(status, code, "{}: {error}", &body[..body.len().min(80)]);
        match error.as_array() {
            Some(events) => assert_eq!(events[0]["status"], "failed", "{error}"),
            None => assert_eq!(error["status"], code),
        }
    }
    let (status, _, _) = c
        .call(
            "/v1/run",
            post(&app, json!({"input": "x", "workflow": "plain"}).to_string())
                .header("grpc-timeout", "soon"),
        )
        .await;
    assert_eq!(status, 400);
    let (status, error, _) = c
        .call(
            "/v1/workflows",
            get(&app, "/v1/workflows").header("origin", "http://evil.example"),
        )
        .await;
    assert_eq!((status, error["code"].as_str()), (403, Some("forbidden")));

    // The console (on by default off the platform), health and metrics.
    let (status, page, headers) = c.call("/ui", get(&app, "/ui")).await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("/ui/app.js"));
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    for asset in ["/ui/app.js", "/ui/app.css"] {
        let r = get(&app, asset).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }
    let (_, health, _) = c.call("/health", get(&app, "/health")).await;
    assert!(health["checks"]["model:fake"].is_object(), "{health}");
    c.call("/health/live", get(&app, "/health/live")).await;
    c.call("/health/ready", get(&app, "/health/ready")).await;
    let (_, metrics, _) = c.call("/metrics", get(&app, "/metrics")).await;
    assert!(metrics.as_str().unwrap().contains("orchestrate_"));

    // An instance whose model does not answer, behind an API key, without the console.
    let dead = format!(
        "  - name: fake\n    provider: openai_compatible\n    model: fake-model\n    \
         config:\n      address: http://127.0.0.1:{}/v1\n",
        closed_port()
    );
    let dir2 = TempDir::new();
    let locked = orchestrate::spawn(
        &dir2,
        &config(&dead),
        &[
            ("AUTH_MODE", "api-key"),
            ("AUTH_API_KEYS", KEY),
            ("DEV_UI", "false"),
        ],
    );
    let (status, _, headers) = c.call("/v1/workflows", get(&locked, "/v1/workflows")).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    let (status, error, headers) = c
        .call(
            "/v1/run",
            post(
                &locked,
                json!({"input": "x", "workflow": "plain"}).to_string(),
            )
            .header("x-api-key", KEY),
        )
        .await;
    assert_eq!(status, 503, "{error}");
    assert!(headers.contains_key("retry-after"));
    let (status, _, _) = c
        .call("/ui", get(&locked, "/ui").header("x-api-key", KEY))
        .await;
    assert_eq!(status, 404);
    let (status, health, _) = c.call("/health", get(&locked, "/health")).await;
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("degraded")),
        "{health}"
    );

    c.assert_every_route_exercised();
}
