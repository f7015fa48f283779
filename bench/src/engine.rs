//! The run engine's own costs, in process, on orchestrate's scripted model (no sockets, no
//! model time): the overhead per node of three workflows (a chain of three react agents, a
//! router, a fan-out of three into an aggregator) at p50 and p99; the wall time of a fan-out
//! of 1, 10 and 50 branches against a model with a fixed latency, as a ratio to one branch;
//! and the memory each in-flight three-node run holds. Prints Markdown tables on stdout.
//!
//! Usage: orchestrate-engine [--runs N] [--latency-ms MS] [--in-flight N]

use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrate::config::Budget;
use orchestrate::run::model::{Answer, Scripted};
use orchestrate::run::{
    AgentTool, BoxFuture, Engine, Interruptions, RunSpec, Status, ToolReply, Tools,
};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// No tools: the workflows here only talk to the model.
struct NoTools;

impl Tools for NoTools {
    fn list<'a>(
        &'a self,
        _agent: &'a orchestrate::config::Agent,
    ) -> BoxFuture<'a, Result<Vec<AgentTool>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn call<'a>(
        &'a self,
        _tool: &'a AgentTool,
        _arguments: Map<String, Value>,
        _timeout: Duration,
        _idempotency_key: &'a str,
    ) -> BoxFuture<'a, ToolReply> {
        Box::pin(async { ToolReply::error("no tools") })
    }
}

const HEAD: &str = "model_services:\n  - {name: m, provider: ollama, model: bench}\n";

const CHAIN: &str = "agents:\n  - {name: a, role: react, model: m}\n  - {name: b, role: react, model: m, inputs: [{source: a}]}\n  - {name: c, role: react, model: m, inputs: [{source: b}]}\n";

const ROUTER: &str = "agents:\n  - name: router\n    role: classifier\n    model: m\n    classifier_config:\n      categories: [{name: billing}, {name: tech}]\n    outputs: [{target: b, when: billing}, {target: t, when: tech}]\n  - {name: b, role: react, model: m}\n  - {name: t, role: react, model: m}\n";

fn fan_out(branches: usize) -> String {
    let mut yaml = String::from("agents:\n");
    let mut inputs = Vec::new();
    for i in 0..branches {
        yaml.push_str(&format!("  - {{name: r{i}, role: react, model: m}}\n"));
        inputs.push(format!("{{source: r{i}}}"));
    }
    yaml.push_str(&format!(
        "  - name: agg\n    role: aggregator\n    aggregator_config: {{strategy: concat}}\n    inputs: [{}]\ndefaults: {{branch_concurrency: 64}}\n",
        inputs.join(", ")
    ));
    yaml
}

/// Answers every call at once: a category for the classifier, text for the rest.
fn answer(request: &aixrun::llm::ChatRequest) -> Answer {
    if request.output_schema.is_some() {
        Answer::json(json!({"category": "billing", "confidence": 0.9}))
    } else {
        Answer::Text("an answer of a few words".into())
    }
}

fn engine(yaml: &str, model: Arc<Scripted>) -> Engine {
    Engine::in_process(&format!("{HEAD}{yaml}"), Arc::new(NoTools), model)
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn one_run(engine: &Engine) -> (Duration, usize) {
    let budget = Budget {
        model_calls: 1000,
        ..Budget::default()
    };
    let spec = RunSpec {
        run_id: orchestrate::run::run_id(),
        workflow: "default".into(),
        input: Value::String("Where is my refund?".into()),
        budget,
        deadline: tokio::time::Instant::now() + budget.wall_time,
    };
    let stop = Interruptions {
        cancel: CancellationToken::new(),
        shutdown: aixrun::server::Shutdown::default(),
    };
    let started = Instant::now();
    let result = engine.run(spec, None, stop).await;
    let took = started.elapsed();
    assert_eq!(result.summary.status, Status::Completed, "{result:?}");
    (took, result.summary.steps.len())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a whole number, not {v:?}"))
        })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("orchestrate-engine [--runs N] [--latency-ms MS] [--in-flight N]");
        return;
    }
    let runs = arg(&args, "--runs", 2000) as usize;
    let latency = Duration::from_millis(arg(&args, "--latency-ms", 100));
    let in_flight = arg(&args, "--in-flight", 1000) as usize;
    aixrun::crypto::install_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        println!("### Engine overhead per node (scripted model, no latency, {runs} runs each)\n");
        println!("| workflow | nodes per run | run p50 (µs) | run p99 (µs) | per node p50 (µs) | per node p99 (µs) |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, yaml) in [
            ("chain of 3 react", CHAIN.to_owned()),
            ("router (classifier -> 1 of 2)", ROUTER.to_owned()),
            ("fan-out 3 -> aggregator", fan_out(3)),
        ] {
            let model = Arc::new(Scripted::new(answer));
            let engine = engine(&yaml, model);
            for _ in 0..runs / 10 {
                one_run(&engine).await;
            }
            let mut times = Vec::with_capacity(runs);
            let mut nodes = 0;
            for _ in 0..runs {
                let (took, n) = one_run(&engine).await;
                times.push(took);
                nodes = n;
            }
            times.sort_unstable();
            let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
            println!(
                "| {name} | {nodes} | {} | {} | {} | {} |",
                us(p50),
                us(p99),
                us(p50 / nodes as u32),
                us(p99 / nodes as u32)
            );
        }

        let rounds = 10;
        println!(
            "\n### Fan-out against a model with {} ms latency ({rounds} runs each, median)\n",
            latency.as_millis()
        );
        println!("| branches | wall time p50 (ms) | ratio to 1 branch | model calls in flight at once |");
        println!("|---:|---:|---:|---:|");
        let mut one = None;
        for branches in [1usize, 10, 50] {
            let model = Arc::new(Scripted::new(answer).with_latency(latency));
            let engine = engine(&fan_out(branches), model.clone());
            let mut times = Vec::new();
            for _ in 0..rounds {
                times.push(one_run(&engine).await.0);
            }
            times.sort_unstable();
            let p50 = percentile(&times, 0.5);
            let base = *one.get_or_insert(p50);
            println!(
                "| {branches} | {:.1} | {:.3} | {} |",
                p50.as_secs_f64() * 1e3,
                p50.as_secs_f64() / base.as_secs_f64(),
                model.most_at_once()
            );
        }

        println!("\n### Memory per in-flight run (chain of 3 react, model answering after 60 s)\n");
        let model = Arc::new(
            Scripted::new(answer).with_latency(Duration::from_secs(60)),
        );
        let engine = Arc::new(engine(CHAIN, model.clone()));
        let before = rss_kib();
        let cancel = CancellationToken::new();
        let mut handles = Vec::new();
        for _ in 0..in_flight {
            let engine = engine.clone();
            let cancel = cancel.clone();
            handles.push(tokio::spawn(async move {
                let budget = Budget::default();
                let spec = RunSpec {
                    run_id: orchestrate::run::run_id(),
                    workflow: "default".into(),
                    input: Value::String("Where is my refund?".into()),
                    budget,
                    deadline: tokio::time::Instant::now() + budget.wall_time,
                };
                let stop = Interruptions {
                    cancel,
                    shutdown: aixrun::server::Shutdown::default(),
                };
                engine.run(spec, None, stop).await
            }));
        }
        while model.requests().len() < in_flight {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let peak = rss_kib();
        cancel.cancel();
        for h in handles {
            let _ = h.await;
        }
        println!("| runs in flight | RSS before (KiB) | RSS with them (KiB) | per run (KiB) |");
        println!("|---:|---:|---:|---:|");
        println!(
            "| {in_flight} | {before} | {peak} | {:.1} |",
            (peak.saturating_sub(before)) as f64 / in_flight as f64
        );
    });
}
