//! The multi-agent workflows of `bench/orchestrate/workflows.sh`, as the load generator sees
//! them: the input of a run, what makes a run on orchestrate or on ADK count as done right, and
//! the same model calls made directly (the baseline that overhead is measured against).
//!
//! - `router`: a classifier call with a structured answer (`response_format` json_schema:
//!   category, confidence, reasoning; bench-model picks the first category, `billing`), then
//!   the billing specialist's call: two model calls one after the other.
//! - `parallel`: three calls at once, then a consensus call on their answers: four model calls,
//!   two deep.
//!
//! bench-model answers `done` to every call without tools or a schema, so a run's answer is
//! `done` but for orchestrate's consensus (see [`Workflow::check_orchestrate`]).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Answer, INPUT, MODEL, Runner, brief, stream_chat};

/// What a benchmark run is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workflow {
    /// One react agent with one tool call (`bench/orchestrate/run.sh`).
    #[default]
    React,
    /// A classifier routing to one of two specialists.
    Router,
    /// Three agents at once, then a consensus.
    Parallel,
}

const ROUTER_INPUT: &str = "I was charged twice for my last invoice.";
const PARALLEL_INPUT: &str = "What is the tallest mountain in Europe?";
/// The prompts of the direct calls: those of `bench/orchestrate/adk/bench_router` and
/// `bench_parallel` (orchestrate's classifier and aggregator write their own).
const CLASSIFIER_PROMPT: &str = "Classify the user's request into one category: billing \
    (invoices, refunds, payments) or technical (bugs, errors, outages). Answer with the category, \
    your confidence from 0 to 1 and a short reasoning.";
const BILLING_PROMPT: &str = "You answer billing questions.";
const TECH_PROMPT: &str = "You answer technical questions.";
const RESEARCH_PROMPT: &str = "Answer the user's question briefly.";
const SYNTH_PROMPT: &str = "You are given three answers to the same question. Write one answer \
    that they agree on, and name any disagreement.";

impl Workflow {
    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        match name {
            "react" => Ok(Self::React),
            "router" => Ok(Self::Router),
            "parallel" => Ok(Self::Parallel),
            other => Err(format!(
                "--workflow must be react, router or parallel, not {other:?}"
            )),
        }
    }

    /// The run's input.
    pub(crate) fn input(self) -> &'static str {
        match self {
            Self::React => INPUT,
            Self::Router => ROUTER_INPUT,
            Self::Parallel => PARALLEL_INPUT,
        }
    }

    /// The model calls a run makes.
    fn model_calls(self) -> u64 {
        match self {
            Self::React | Self::Router => 2,
            Self::Parallel => 4,
        }
    }

    /// An orchestrate result of a router or parallel run: completed, an answer, and as many
    /// model calls as the workflow makes (which branch ran is the engine's business; the
    /// end-to-end tests check it). The answer is not always `done`: the consensus aggregator
    /// asks for a structured answer, and bench-model fills its schema's strings with `ok`.
    pub(crate) fn check_orchestrate(self, result: &Value) -> Result<(), String> {
        let calls = result["usage"]["model_calls"].as_u64();
        let answered = result["output"].as_str().is_some_and(|o| !o.is_empty());
        if result["status"] == "completed" && answered && calls == Some(self.model_calls()) {
            Ok(())
        } else {
            Err(format!(
                "not a completed {self:?} run with an answer after {} model calls: {}",
                self.model_calls(),
                brief(result)
            ))
        }
    }

    /// ADK's events of a router or parallel run: each agent that must have run answered, the
    /// last text is `done`.
    pub(crate) fn check_adk(self, events: &Value) -> Result<(), String> {
        let events = events.as_array().map(Vec::as_slice).unwrap_or_default();
        let texts = |author: &'static str| {
            events
                .iter()
                .filter(move |e| e["author"] == author)
                .flat_map(|e| e["content"]["parts"].as_array().into_iter().flatten())
                .filter_map(|p| p["text"].as_str())
        };
        let agents: &[&'static str] = match self {
            Self::React => &[],
            Self::Router => &["billing_agent"],
            Self::Parallel => &["r1", "r2", "r3", "synth"],
        };
        let classified = self != Self::Router || texts("router").any(|t| t.contains("billing"));
        let answered = agents.iter().all(|a| texts(a).any(|t| t == "done"));
        let last = events
            .iter()
            .flat_map(|e| e["content"]["parts"].as_array().into_iter().flatten())
            .filter_map(|p| p["text"].as_str())
            .next_back();
        if classified && answered && last == Some("done") {
            Ok(())
        } else {
            Err(format!(
                "not a {self:?} run of {agents:?} answering done: {}",
                brief(&Value::from(events.to_vec()))
            ))
        }
    }
}

/// The calls of a router or parallel run, made by the load generator itself.
pub(crate) struct Direct {
    client: reqwest::Client,
    completions: String,
    workflow: Workflow,
}

impl Direct {
    pub(crate) fn new(
        client: reqwest::Client,
        model: &str,
        workflow: Workflow,
    ) -> Result<Self, String> {
        if workflow == Workflow::React {
            return Err("direct-workflow needs --workflow router or parallel".into());
        }
        Ok(Self {
            client,
            completions: format!("{model}/chat/completions"),
            workflow,
        })
    }

    /// One streamed call with a system prompt and a user message, constrained to `schema` when
    /// given.
    async fn chat(
        &self,
        system: &str,
        user: &str,
        schema: Option<&Value>,
    ) -> Result<Answer, String> {
        let mut body = json!({
            "model": MODEL,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_completion_tokens": 20000,
        });
        if let Some(schema) = schema {
            body["response_format"] = json!({"type": "json_schema",
                "json_schema": {"name": "route", "schema": schema, "strict": true}});
        }
        stream_chat(&self.client, &self.completions, &body).await
    }

    async fn router(&self) -> Result<String, String> {
        let schema = json!({"type": "object", "properties": {
                "category": {"type": "string", "enum": ["billing", "technical"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "reasoning": {"type": "string"}},
            "required": ["category", "confidence", "reasoning"], "additionalProperties": false});
        let input = self.workflow.input();
        let route = self.chat(CLASSIFIER_PROMPT, input, Some(&schema)).await?;
        let route: Value = serde_json::from_str(&route.text)
            .map_err(|e| format!("the classifier's answer {:?}: {e}", route.text))?;
        let prompt = match route["category"].as_str() {
            Some("billing") => BILLING_PROMPT,
            Some("technical") => TECH_PROMPT,
            _ => return Err(format!("no category in {route}")),
        };
        Ok(self.chat(prompt, input, None).await?.text)
    }

    async fn parallel(&self) -> Result<String, String> {
        let input = self.workflow.input();
        let (a, b, c) = tokio::join!(
            self.chat(RESEARCH_PROMPT, input, None),
            self.chat(RESEARCH_PROMPT, input, None),
            self.chat(RESEARCH_PROMPT, input, None),
        );
        let answers = format!("r1: {}\nr2: {}\nr3: {}", a?.text, b?.text, c?.text);
        Ok(self.chat(SYNTH_PROMPT, &answers, None).await?.text)
    }
}

impl Runner for Direct {
    async fn once(&self, _: u64) -> Result<Duration, String> {
        let started = Instant::now();
        let answer = match self.workflow {
            Workflow::Router => self.router().await?,
            _ => self.parallel().await?,
        };
        let elapsed = started.elapsed();
        if answer == "done" {
            Ok(elapsed)
        } else {
            Err(format!("unexpected answer {answer:?}"))
        }
    }
}
