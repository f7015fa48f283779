//! The providers against loopback servers that reproduce each documented wire format: Ollama's
//! `/api/chat` NDJSON (ollama/ollama `docs/api.md`) and OpenAI's streamed chat completions
//! (server-sent events), errors included.

mod fake;
mod ollama;
mod openai;

use std::time::Duration;

use super::*;

/// Generous: these tests assert outcomes, and a loaded machine must not turn them into timeouts.
const LONG: Duration = Duration::from_secs(20);

/// Limits for tests: long waits, and quick retries unless a server asks for longer.
fn limits() -> CallLimits {
    CallLimits {
        total: Duration::from_secs(60),
        connect: LONG,
        first_token: LONG,
        gap: LONG,
        max_bytes: 1024 * 1024,
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
        },
    }
}

fn user(text: &str) -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![Message::User(text.into())],
        ..ChatRequest::default()
    }
}

/// Every event until the stream ends, and the error that ended it, if any.
async fn drain(stream: &mut ChatStream) -> (Vec<Event>, Option<LlmError>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

fn text_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn done_of(events: &[Event]) -> &Finish {
    match events.last() {
        Some(Event::Done(finish)) => finish,
        other => panic!("the last event is not Done: {other:?}"),
    }
}

fn calls_of(events: &[Event]) -> Vec<&ToolCall> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn endpoints_from_config_need_a_key_for_public_apis() {
    let env = crate::Env::from_pairs([(config::XAI_API_KEY, "xai-secret")]);
    let xai = Endpoint::from_config(Provider::Xai, None, None, &env).unwrap();
    assert_eq!(xai.base().as_str(), "https://api.x.ai/v1");
    assert!(xai.has_key() && !format!("{xai:?}").contains("xai-secret"));
    let e = Endpoint::from_config(Provider::OpenAi, None, None, &env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "OPENAI_API_KEY=\"\": openai needs an API key; expected OPENAI_API_KEY or config.api_key \
         (or OPENAI_BASE_URL for another OpenAI-compatible server)"
    );
    let e = Endpoint::from_config(Provider::OpenAiCompatible, None, None, &env).unwrap_err();
    assert!(e.to_string().contains("has no default address"), "{e}");
    let vllm = Endpoint::from_config(
        Provider::OpenAiCompatible,
        Some("http://vllm:8000/v1"),
        None,
        &env,
    )
    .unwrap();
    assert_eq!(
        super::join(vllm.base(), "chat/completions").as_str(),
        "http://vllm:8000/v1/chat/completions"
    );
}

#[test]
fn openai_base_url_points_openai_clients_at_another_server() {
    let local = crate::Env::from_pairs([(config::OPENAI_BASE_URL, " http://127.0.0.1:8090/v1 ")]);
    // No key needed: it is not OpenAI's API.
    let openai = Endpoint::from_config(Provider::OpenAi, None, None, &local).unwrap();
    assert_eq!(openai.base().as_str(), "http://127.0.0.1:8090/v1");
    assert!(!openai.has_key());
    let any = Endpoint::from_config(Provider::OpenAiCompatible, None, None, &local).unwrap();
    assert_eq!(any.base().as_str(), "http://127.0.0.1:8090/v1");
    // A model's own address wins; other providers never read it.
    let own = Endpoint::from_config(Provider::OpenAi, Some("http://vllm:8000/v1"), None, &local);
    assert_eq!(own.unwrap().base().as_str(), "http://vllm:8000/v1");
    let keyed = crate::Env::from_pairs([
        (config::OPENAI_BASE_URL, "http://vllm:8000/v1"),
        (config::OPENAI_API_KEY, "sk-local"),
        (config::XAI_API_KEY, "xai-secret"),
    ]);
    let vllm = Endpoint::from_config(Provider::OpenAiCompatible, None, None, &keyed).unwrap();
    assert!(vllm.has_key(), "OPENAI_API_KEY goes with OPENAI_BASE_URL");
    let xai = Endpoint::from_config(Provider::Xai, None, None, &keyed).unwrap();
    assert_eq!(xai.base().as_str(), "https://api.x.ai/v1");
    let bad = crate::Env::from_pairs([(config::OPENAI_BASE_URL, "127.0.0.1:8090")]);
    let e = Endpoint::from_config(Provider::OpenAi, None, None, &bad).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("OPENAI_BASE_URL=\"127.0.0.1:8090\": not an http(s) URL"),
        "{e}"
    );
}
