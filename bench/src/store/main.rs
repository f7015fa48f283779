//! What the run store costs a durable run: the same workflow (three react agents in a chain,
//! each calling one tool once, on orchestrate's scripted model) submitted and executed through
//! the run service (`RunService::submit` + `execute`, in process) on the memory store and on
//! the Firestore emulator, the runs of the two interleaved. Prints, per model latency, the run
//! time at p50 and p90 and what Firestore adds to it, the round trips, commits and document
//! writes per run, and per store operation (a node boundary's commit, an event batch's
//! commit, a lease, ...) the calls per run and what each costs. Then resume after a crash on
//! each store: from a redelivery to the first new event, and to the run's end (`resume.rs`).
//!
//! Usage: orchestrate-store [--runs N] [--latencies MS,MS] [--smoke]
//! Needs `FIRESTORE_EMULATOR_HOST` and `GOOGLE_CLOUD_PROJECT` (`eval "$(bash
//! scripts/emulators.sh)"`). --smoke: a few runs at one latency; exits 1 unless every run
//! completed and every node boundary took exactly one commit.

mod counted;
mod resume;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aixrun::llm::{ChatRequest, Message};
use orchestrate::run::model::{Answer, Scripted};
use orchestrate::run::{Echo, Engine, Status};
use orchestrate::service::{Executed, RunRequest, RunService};
use orchestrate::store::firestore::{FirestoreStore, Stats};
use orchestrate::store::memory::MemoryStore;
use orchestrate::store::{RunStatus, StoreConfig};
use serde_json::{Value, json};

use counted::{BATCH, BOUNDARY, Counted, Op};

const YAML: &str = "model_services:\n  - {name: m, provider: ollama, model: bench}\nmcp_servers:\n  - {name: tools, transport: grpc, address: 127.0.0.1:1}\nagents:\n  - {name: a, role: react, model: m, mcp_servers: [tools]}\n  - {name: b, role: react, model: m, mcp_servers: [tools], inputs: [{source: a}]}\n  - {name: c, role: react, model: m, mcp_servers: [tools], inputs: [{source: b}]}\n";

/// A tool call first; once the tool answered, the agent's answer.
fn script(request: &ChatRequest) -> Answer {
    match request.messages.last() {
        Some(Message::Tool { .. }) => Answer::Text("the refund left on Monday".into()),
        _ => Answer::Calls(vec![("echo".into(), json!({"text": "refund status"}))]),
    }
}

fn engine(latency: Duration, clock: Option<Arc<resume::Clock>>) -> Arc<Engine> {
    let scripted = Scripted::new(move |request| {
        if let Some(clock) = &clock {
            clock.asked();
        }
        script(request)
    });
    let model = Arc::new(scripted.with_latency(latency));
    Arc::new(
        Engine::in_process(YAML, Arc::new(Echo), Arc::new(model)).unwrap_or_else(|e| panic!("{e}")),
    )
}

/// One store under measurement.
struct Path {
    name: &'static str,
    store: Arc<Counted>,
    service: Arc<RunService>,
    times: Vec<Duration>,
    totals: Stats,
}

impl Path {
    fn new(name: &'static str, store: Arc<Counted>, engine: &Arc<Engine>) -> Self {
        let service = Arc::new(RunService::new(
            engine.clone(),
            store.clone(),
            tokio_util::task::TaskTracker::new(),
            aixrun::server::Shutdown::default(),
            Duration::from_secs(30),
        ));
        Self {
            name,
            store,
            service,
            times: Vec::new(),
            totals: Stats::default(),
        }
    }

    /// One run, submitted and executed to its end: its time and the store's counts.
    async fn run(&self) -> Result<(Duration, Stats), String> {
        let Value::Object(fields) = json!({"input": "Where is my refund?"}) else {
            unreachable!()
        };
        let request = RunRequest::parse(&self.service.engine.orchestration, &fields)
            .map_err(|e| e.message)?;
        let (before, started) = (self.store.stats(), Instant::now());
        let (record, _) = self
            .service
            .submit(&request, None, None)
            .await
            .map_err(|e| e.message)?;
        let executed = self
            .service
            .execute(&record.run_id, None)
            .await
            .map_err(|e| e.message)?;
        let took = started.elapsed();
        match executed {
            Executed::Finished(r) if r.status == RunStatus::Stopped(Status::Completed) => {}
            other => {
                return Err(format!(
                    "{}: run {} ended {other:?}",
                    self.name, record.run_id
                ));
            }
        }
        let after = self.store.stats();
        Ok((
            took,
            Stats {
                round_trips: after.round_trips - before.round_trips,
                commits: after.commits - before.commits,
                writes: after.writes - before.writes,
            },
        ))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn per(n: u64, d: u64) -> String {
    if d == 0 {
        return "-".into();
    }
    let v = n as f64 / d as f64;
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    Some(args.get(i + 1).map_or("", String::as_str))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("orchestrate-store [--runs N] [--latencies MS,MS] [--smoke]");
        return;
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let runs: usize = arg(&args, "--runs").map_or(if smoke { 5 } else { 100 }, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("--runs takes a whole number, not {v:?}"))
    });
    let latencies: Vec<u64> = arg(&args, "--latencies")
        .unwrap_or(if smoke { "0" } else { "0,100" })
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("--latencies takes MS,MS, not {v:?}"))
        })
        .collect();
    for var in ["FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"] {
        if std::env::var(var).map_or(true, |v| v.is_empty()) {
            eprintln!(
                "orchestrate-store: {var} is unset: eval \"$(bash scripts/emulators.sh)\" first"
            );
            std::process::exit(1);
        }
    }
    aixrun::crypto::install_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ok = rt.block_on(measure(runs.max(1), &latencies, smoke));
    if !ok {
        std::process::exit(1);
    }
}

async fn measure(runs: usize, latencies: &[u64], smoke: bool) -> bool {
    let env = aixrun::Env::from_pairs(std::env::vars());
    let config = StoreConfig::from_env(&aixrun::Env::from_pairs([("RUN_STORE", "firestore")]))
        .expect("the store's configuration");
    let firestore = Arc::new(FirestoreStore::new(env, &config));
    let host = std::env::var("FIRESTORE_EMULATOR_HOST").unwrap_or_default();
    println!(
        "### Run store cost per run: memory and the Firestore emulator ({host}), side by side\n"
    );
    println!(
        "Workflow: three react agents in a chain, each calling the tool `echo` once (2 model turns and"
    );
    println!(
        "1 tool call per agent), on the scripted model in process, executed through the run service"
    );
    println!(
        "(`submit` + `execute`: create, lease, journal and event commits, end of attempt). {runs} runs per"
    );
    println!(
        "store and latency, interleaved, after a warm-up. Added: Firestore's time minus memory's at the"
    );
    println!(
        "same percentile. Round trips, commits and writes per run are exact; per operation they are"
    );
    println!(
        "the store's counters around each call (the service's cancel poll may overlap one).\n"
    );
    println!(
        "| model latency | store | run p50 ms | run p90 ms | added p50 / p90 ms | round trips / run | commits / run | writes / run |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut ok = true;
    let mut breakdowns = Vec::new();
    for &latency in latencies {
        let engine = engine(Duration::from_millis(latency), None);
        let memory = Arc::new(Counted::memory(Arc::new(MemoryStore::new(100_000))));
        let mut paths = [
            Path::new("memory", memory, &engine),
            Path::new(
                "firestore",
                Arc::new(Counted::firestore(firestore.clone())),
                &engine,
            ),
        ];
        for path in &paths {
            for _ in 0..runs.div_ceil(10).min(5) {
                if let Err(e) = path.run().await {
                    eprintln!("orchestrate-store: warm-up: {e}");
                    return false;
                }
            }
            path.store.take();
        }
        for i in 0..runs {
            // Alternate which goes first, so that neither always follows the other.
            for k in [i % 2, 1 - i % 2] {
                let path = &mut paths[k];
                match path.run().await {
                    Ok((took, stats)) => {
                        path.times.push(took);
                        path.totals.round_trips += stats.round_trips;
                        path.totals.commits += stats.commits;
                        path.totals.writes += stats.writes;
                    }
                    Err(e) => {
                        eprintln!("orchestrate-store: {e}");
                        ok = false;
                    }
                }
            }
        }
        for path in &mut paths {
            path.times.sort_unstable();
        }
        let base = (
            percentile(&paths[0].times, 0.5),
            percentile(&paths[0].times, 0.9),
        );
        for path in &paths {
            let (p50, p90) = (percentile(&path.times, 0.5), percentile(&path.times, 0.9));
            let added = if path.name == "memory" {
                "-".to_owned()
            } else {
                format!("{:.1} / {:.1}", ms(p50) - ms(base.0), ms(p90) - ms(base.1))
            };
            let n = path.times.len() as u64;
            let firestore = path.name == "firestore";
            let count = |v: u64| if firestore { per(v, n) } else { "-".into() };
            println!(
                "| {latency} ms | {} | {:.1} | {:.1} | {added} | {} | {} | {} |",
                path.name,
                ms(p50),
                ms(p90),
                count(path.totals.round_trips),
                count(path.totals.commits),
                count(path.totals.writes),
            );
        }
        breakdowns.push((latency, paths[1].times.len() as u64, paths[1].store.take()));
    }
    for (latency, n, ops) in &breakdowns {
        ok &= breakdown(*latency, *n, ops, smoke);
    }
    ok &= resumes(&firestore, if smoke { 2 } else { runs.min(30) }).await;
    ok
}

/// The resume table: `n` crashes and resumes per store, interleaved.
async fn resumes(firestore: &Arc<FirestoreStore>, n: usize) -> bool {
    const LATENCY_MS: u64 = 20;
    println!("\n### Resume after a crash, memory and the Firestore emulator ({n} each)\n");
    println!(
        "The same workflow, the model answering in {LATENCY_MS} ms. A run's executing service is dropped during"
    );
    println!(
        "the second agent's first model call (as SIGKILL leaves it: lease held, attempt not ended);"
    );
    println!(
        "once the lease lapses, another service (another instance) executes the redelivery. From that"
    );
    println!(
        "call: the model asked again (lease taken, saved events and journal read back, the first agent"
    );
    println!(
        "answered from its journal: the resume's own cost), the first new event committed (after that"
    );
    println!(
        "model answer), and the run's end (about {} ms of model time left).\n",
        4 * LATENCY_MS
    );
    println!(
        "| store | redelivery -> model asked again p50 / p90 ms | -> first new event p50 / p90 ms | -> run completed p50 / p90 ms | round trips before the model is asked |"
    );
    println!("|---|---:|---:|---:|---:|");
    let clock = Arc::new(resume::Clock::default());
    let engine = engine(Duration::from_millis(LATENCY_MS), Some(clock.clone()));
    let stores = [
        (
            "memory",
            Arc::new(Counted::memory(Arc::new(MemoryStore::new(100_000)))),
        ),
        ("firestore", Arc::new(Counted::firestore(firestore.clone()))),
    ];
    let mut results: [Vec<resume::Resume>; 2] = [Vec::new(), Vec::new()];
    for i in 0..n {
        for k in [i % 2, 1 - i % 2] {
            match resume::once(&engine, &clock, &stores[k].1).await {
                Ok(r) => results[k].push(r),
                Err(e) => {
                    eprintln!("orchestrate-store: resume on {}: {e}", stores[k].0);
                    return false;
                }
            }
        }
    }
    for (k, (name, _)) in stores.iter().enumerate() {
        let r = &results[k];
        let mut asked: Vec<Duration> = r.iter().map(|r| r.model_asked).collect();
        let mut first: Vec<Duration> = r.iter().map(|r| r.first_event).collect();
        let mut done: Vec<Duration> = r.iter().map(|r| r.completed).collect();
        asked.sort_unstable();
        first.sort_unstable();
        done.sort_unstable();
        let trips = if *name == "memory" {
            "-".to_owned()
        } else {
            per(r.iter().map(|r| r.round_trips).sum(), r.len() as u64)
        };
        println!(
            "| {name} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {trips} |",
            ms(percentile(&asked, 0.5)),
            ms(percentile(&asked, 0.9)),
            ms(percentile(&first, 0.5)),
            ms(percentile(&first, 0.9)),
            ms(percentile(&done, 0.5)),
            ms(percentile(&done, 0.9)),
        );
    }
    true
}

/// The table of Firestore's operations per run; in smoke mode, whether a node boundary took
/// exactly one commit.
fn breakdown(latency: u64, runs: u64, ops: &BTreeMap<&'static str, Op>, smoke: bool) -> bool {
    println!("\n### Firestore operations per run, model latency {latency} ms ({runs} runs)\n");
    println!(
        "| operation | calls / run | round trips / call | commits / call | writes / call | events / call | p50 ms / call |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, op) in ops {
        let mut times = op.times.clone();
        times.sort_unstable();
        println!(
            "| {name} | {} | {} | {} | {} | {} | {:.2} |",
            per(op.calls, runs),
            per(op.round_trips, op.calls),
            per(op.commits, op.calls),
            per(op.writes, op.calls),
            if op.events > 0 {
                per(op.events, op.calls)
            } else {
                "-".into()
            },
            ms(percentile(&times, 0.5)),
        );
    }
    let Some(boundary) = ops.get(BOUNDARY) else {
        eprintln!("orchestrate-store: no node boundary was committed");
        return false;
    };
    let one_each =
        boundary.commits == boundary.calls && ops.get(BATCH).is_none_or(|b| b.commits == b.calls);
    if !one_each {
        eprintln!(
            "orchestrate-store: {} commits for {} node boundaries: the target is one each",
            boundary.commits, boundary.calls
        );
    }
    !smoke || one_each
}
