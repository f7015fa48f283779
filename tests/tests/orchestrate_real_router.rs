//! A router on a real model: llama.cpp's HTTP server (in process through the PyPI wheel
//! `xllamacpp`) with SmolLM2-135M-Instruct, through the OpenAI-compatible provider. The
//! classifier's answer is real structured output (llama.cpp turns the JSON Schema, with the
//! category names as an enum, into a grammar), the run takes the branch it names, and that
//! react branch answers. The 135M model's choice is poor, so the test asserts structure (a
//! valid category, its branch ran and answered), never which category. Ignored by
//! `cargo test --workspace`: `scripts/test-peers.sh` installs the wheels, and
//! `-- --include-ignored` runs it.

use std::time::Duration;

use e2e::TempDir;
use e2e::orchestrate;
use e2e::python::PythonServer;
use serde_json::json;

/// Loading the weights takes a few seconds on 2 busy cores.
const MODEL_LOAD: Duration = Duration::from_secs(120);
/// A whole run: the classifier's call and the branch's.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs llama.cpp and SmolLM2 (Python peers): run scripts/test-peers.sh"]
async fn a_classifier_on_a_real_model_routes_to_the_branch_it_names() {
    let Some(llama) =
        tokio::task::block_in_place(|| PythonServer::start("llama_server.py", &[], MODEL_LOAD))
    else {
        return;
    };
    tokio::task::block_in_place(|| llama.wait_ok("/health", MODEL_LOAD));
    let yaml = format!(
        "model_services:
  - name: small
    provider: llamacpp
    model: smollm2
    config: {{address: http://{addr}/v1, temperature: 0, seed: 1}}
agents:
  - name: router
    role: classifier
    model: small
    classifier_config:
      categories:
        - {{name: billing, description: 'Payments, invoices and refunds'}}
        - {{name: weather, description: Questions about the weather}}
      confidence_threshold: 0
    outputs: [{{target: cashier, when: billing}}, {{target: forecaster, when: weather}}]
  - name: cashier
    role: react
    model: small
    prompt: Answer in one short sentence.
    budget: {{output_tokens: 48}}
  - name: forecaster
    role: react
    model: small
    prompt: Answer in one short sentence.
    budget: {{output_tokens: 48}}
defaults:
  budget: {{output_tokens: 400}}
",
        addr = llama.addr
    );
    let dir = TempDir::new();
    let app = orchestrate::spawn(&dir, &yaml, &[]);

    // Two model calls on one thread of a busy machine: minutes, not the usual 20 s.
    let response = e2e::clients::builder()
        .timeout(RUN_TIMEOUT)
        .build()
        .unwrap()
        .post(app.url("/v1/run"))
        .json(&json!({"input": "Will it rain in Paris tomorrow?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let result: serde_json::Value = response.json().await.unwrap();
    assert_eq!(result["status"], "completed", "{result:#}");
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{result:#}");
    let router = &steps[0];
    assert_eq!(router["agent"], "router");
    assert_eq!(router["usage"]["model_calls"], 1, "{result:#}");
    let decision = &router["decisions"][0];
    assert_eq!(decision["kind"], "route");
    assert_eq!(decision["by"], "model");
    let category = decision["categories"][0].as_str().unwrap();
    let branch = match category {
        "billing" => "cashier",
        "weather" => "forecaster",
        other => panic!("not a category: {other}"),
    };
    let confidence = decision["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence), "{decision}");
    // The branch the model named ran, on the router's input, and answered.
    let taken = &steps[1];
    assert_eq!(taken["agent"], branch, "{result:#}");
    assert_eq!(taken["branch"], category);
    assert_eq!(taken["status"], "completed");
    assert!(
        !taken["output"].as_str().unwrap().trim().is_empty(),
        "{taken}"
    );
    assert_eq!(result["output"], taken["output"]);
}
