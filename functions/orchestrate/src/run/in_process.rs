//! An engine with nothing deployed, for tests and benchmarks: a configuration given as text
//! (no variables), the caller's tools and models, metrics counted into a registry of its own;
//! and [`Echo`], the one tool they mostly need.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{AgentTool, BoxFuture, Engine, Models, RunMetrics, ToolReply, Tools};
use crate::config::Agent;

impl Engine {
    /// An engine on the configuration `yaml` with `tools` and `models`; payloads are not
    /// logged. Errs with the configuration's one-line problem.
    pub fn in_process(
        yaml: &str,
        tools: Arc<dyn Tools>,
        models: Arc<dyn Models>,
    ) -> Result<Self, String> {
        let env = aixrun::Env::from_pairs(std::iter::empty::<(&str, &str)>());
        let orchestration =
            crate::config::parse("in-process.yaml", yaml, &env).map_err(|e| e.to_string())?;
        Ok(Self {
            orchestration: Arc::new(orchestration),
            tools,
            models,
            metrics: RunMetrics::register(&mut prometheus_client::registry::Registry::default()),
            log_payloads: false,
        })
    }
}

/// Every agent's one tool, `echo`, answering its `text` at once (the arguments as JSON when
/// there is no `text`).
pub struct Echo;

impl Echo {
    /// The `echo` tool as agents see it.
    pub fn tool() -> AgentTool {
        AgentTool {
            name: "echo".into(),
            server: "tools".into(),
            tool: "echo".into(),
            description: "Says the text back.".into(),
            parameters: json!({"type": "object", "properties": {"text": {"type": "string"}}}),
            timeout: Duration::from_secs(5),
            annotations: None,
        }
    }

    /// What it answers to `arguments`.
    pub fn reply(arguments: Map<String, Value>) -> String {
        match arguments.get("text") {
            Some(Value::String(text)) => text.clone(),
            _ => Value::Object(arguments).to_string(),
        }
    }
}

impl Tools for Echo {
    fn list<'a>(&'a self, _agent: &'a Agent) -> BoxFuture<'a, Result<Vec<AgentTool>, String>> {
        Box::pin(async { Ok(vec![Self::tool()]) })
    }

    fn call<'a>(
        &'a self,
        _tool: &'a AgentTool,
        arguments: Map<String, Value>,
        _timeout: Duration,
        _idempotency_key: &'a str,
    ) -> BoxFuture<'a, ToolReply> {
        Box::pin(async move {
            ToolReply {
                text: Self::reply(arguments),
                is_error: false,
            }
        })
    }
}
