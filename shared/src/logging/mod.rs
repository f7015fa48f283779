//! Logs: Cloud Logging JSON lines on stdout (or readable text on a local terminal), the
//! per-request log line with `httpRequest`, and trace fields from the caller's trace context.

mod cloud;
pub mod project;
mod request;
mod trace_context;

use serde_json::{Map, Value};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use cloud::CloudLogging;
pub use request::{RequestLog, log_request, request_span};
pub use trace_context::TraceContext;

use crate::config::{LogFormat, RuntimeConfig};

/// Crates whose INFO lines are noise for an operator.
/// Crates whose lines are noise for an operator, and the least severe level worth keeping.
/// rmcp logs every JSON-RPC error answer (a client's bad request) at WARN.
const QUIET: &[(&str, &str)] = &[
    ("h2", "warn"),
    ("hyper", "warn"),
    ("tower", "warn"),
    ("tonic_web", "warn"),
    ("reqwest", "warn"),
    ("rmcp", "error"),
];

/// Levels from most to least verbose.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// The filter: `RUST_LOG` when set, else `LOG_LEVEL` for everything, with the chatty crates
/// held at their quiet level (or the global one, whichever is less verbose).
pub fn filter(config: &RuntimeConfig) -> Targets {
    let directives = config.rust_log.clone().unwrap_or_else(|| {
        let rank = |l: &str| LEVELS.iter().position(|x| *x == l).unwrap_or(2);
        let global = config.log_level.as_str();
        let mut d = global.to_owned();
        for (target, quiet) in QUIET {
            let level = if rank(quiet) > rank(global) {
                quiet
            } else {
                global
            };
            d.push_str(&format!(",{target}={level}"));
        }
        d
    });
    // `RUST_LOG` was parsed at config time: a failure here can only be a bug of ours.
    directives
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
}

/// Installs the global subscriber writing to stdout, with the OpenTelemetry layer when a
/// tracer is given (tracing on).
pub fn init(config: &RuntimeConfig, tracer: Option<opentelemetry_sdk::trace::SdkTracer>) {
    init_with_writer(config, std::io::stdout, tracer);
}

/// Installs the global subscriber writing through `writer` (tests capture lines this way).
///
/// The log filter (`LOG_LEVEL`, `RUST_LOG`) applies to log lines only; the OpenTelemetry layer
/// has its own: every span that carries an `otel.name` field, whatever the log level, and no
/// events (log lines are not copied into spans).
pub fn init_with_writer<W>(
    config: &RuntimeConfig,
    writer: W,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer as _;
    if let Some(project) = &config.project_id {
        project::set(project.clone());
    }
    let otel = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_level(false)
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && meta.fields().field("otel.name").is_some()
            }))
    });
    let registry = tracing_subscriber::registry().with(otel);
    let result = match config.log_format {
        LogFormat::Json => registry
            .with(CloudLogging::new(writer, labels(config)).with_filter(filter(config)))
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_target(false)
                    .with_filter(filter(config)),
            )
            .try_init(),
    };
    // A second init (tests that build two apps in one process) keeps the first subscriber.
    let _ = result;
}

fn labels(config: &RuntimeConfig) -> Map<String, Value> {
    let mut labels = Map::new();
    if let Some(rev) = &config.k_revision {
        labels.insert("k_revision".into(), rev.clone().into());
    }
    labels
}
