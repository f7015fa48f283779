//! The orchestrator's metric families: the seed's agent series, runs by workflow and status,
//! model calls, tokens and latency named after the OpenTelemetry GenAI metrics, and tool calls
//! by server, tool and status.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentMessageLabels {
    agent: String,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabels {
    agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    workflow: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    gen_ai_provider_name: String,
    gen_ai_request_model: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    gen_ai_provider_name: String,
    gen_ai_request_model: String,
    gen_ai_token_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    server: String,
    tool: String,
    status: &'static str,
}

/// GenAI token buckets (agents.md: powers of 4 from 1).
fn token_histogram() -> Histogram {
    Histogram::new((0..11).map(|i| 4f64.powi(i)))
}

/// GenAI operation duration buckets in seconds (0.01 doubling to 81.92).
fn operation_histogram() -> Histogram {
    Histogram::new((0..14).map(|i| 0.01 * 2f64.powi(i)))
}

/// Run and step duration buckets in seconds: from a scripted model's tenth of a second to
/// Cloud Run's longest request timeout (3600 s), since a model-backed run takes seconds to
/// minutes (the HTTP request histogram's buckets end at 10 s).
const RUN_BUCKETS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    3600.0,
];

fn run_histogram() -> Histogram {
    Histogram::new(RUN_BUCKETS)
}

/// Every family the engine records into.
#[derive(Clone)]
pub struct RunMetrics {
    agent_messages: Family<AgentMessageLabels, Counter>,
    agent_duration: Family<AgentLabels, Histogram, fn() -> Histogram>,
    runs: Family<RunLabels, Counter>,
    run_duration: Family<RunLabels, Histogram, fn() -> Histogram>,
    model_calls: Family<ModelLabels, Counter>,
    model_duration: Family<ModelLabels, Histogram, fn() -> Histogram>,
    tokens: Family<TokenLabels, Histogram, fn() -> Histogram>,
    tool_calls: Family<ToolLabels, Counter>,
}

impl RunMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            agent_messages: Family::default(),
            agent_duration: Family::new_with_constructor(run_histogram),
            runs: Family::default(),
            run_duration: Family::new_with_constructor(run_histogram),
            model_calls: Family::default(),
            model_duration: Family::new_with_constructor(operation_histogram),
            tokens: Family::new_with_constructor(token_histogram),
            tool_calls: Family::default(),
        };
        registry.register(
            "aixgo_agent_messages",
            "Messages agents received and sent, by agent and type (input, output, error)",
            m.agent_messages.clone(),
        );
        registry.register(
            "aixgo_agent_execution_duration_seconds",
            "Time agents took per step",
            m.agent_duration.clone(),
        );
        registry.register(
            "aixgo_orchestrate_runs",
            "Runs by workflow and final status",
            m.runs.clone(),
        );
        registry.register(
            "aixgo_orchestrate_run_duration_seconds",
            "Wall time of runs, by workflow and final status",
            m.run_duration.clone(),
        );
        registry.register(
            "aixgo_model_calls",
            "Model calls by provider, model and outcome",
            m.model_calls.clone(),
        );
        registry.register(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (model calls, to their last chunk)",
            m.model_duration.clone(),
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens per model call, by token type (input, output)",
            m.tokens.clone(),
        );
        registry.register(
            "aixgo_orchestrate_tool_calls",
            "Tool calls agents made, by MCP server, tool and outcome",
            m.tool_calls.clone(),
        );
        m
    }

    /// A step received its input, or produced output or an error.
    pub fn agent_message(&self, agent: &str, kind: &'static str) {
        self.agent_messages
            .get_or_create(&AgentMessageLabels {
                agent: agent.to_owned(),
                r#type: kind,
            })
            .inc();
    }

    /// A step ended.
    pub fn agent_step(&self, agent: &str, took: Duration) {
        self.agent_duration
            .get_or_create(&AgentLabels {
                agent: agent.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A run ended after `took`.
    pub fn run(&self, workflow: &str, status: &'static str, took: Duration) {
        let labels = RunLabels {
            workflow: workflow.to_owned(),
            status,
        };
        self.runs.get_or_create(&labels).inc();
        self.run_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A model call ended.
    pub fn model_call(
        &self,
        provider: &str,
        model: &str,
        status: &str,
        input_tokens: u64,
        output_tokens: u64,
        took: Duration,
    ) {
        let labels = ModelLabels {
            gen_ai_provider_name: provider.to_owned(),
            gen_ai_request_model: model.to_owned(),
            status: status.to_owned(),
        };
        self.model_calls.get_or_create(&labels).inc();
        self.model_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        // Every call's tokens, a cut-off or failed call's counted from its text.
        if input_tokens + output_tokens > 0 {
            for (kind, n) in [("input", input_tokens), ("output", output_tokens)] {
                self.tokens
                    .get_or_create(&TokenLabels {
                        gen_ai_provider_name: provider.to_owned(),
                        gen_ai_request_model: model.to_owned(),
                        gen_ai_token_type: kind,
                    })
                    .observe(n as f64);
            }
        }
    }

    /// A tool call ended.
    pub fn tool_call(&self, server: &str, tool: &str, status: &'static str) {
        self.tool_calls
            .get_or_create(&ToolLabels {
                server: server.to_owned(),
                tool: tool.to_owned(),
                status,
            })
            .inc();
    }
}
