//! Logs: Cloud Logging JSON lines on stdout (or readable text on a local terminal), the
//! per-request log line with `httpRequest`, and trace fields from the caller's trace context.

mod cloud;
pub mod config;
pub mod project;
mod request;

use serde_json::{Map, Value};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use crate::telemetry::TraceContext;
pub use cloud::CloudLogging;
pub use config::{LogConfig, LogFormat};
pub use request::{RequestLog, log_request, request_span};

use config::LEVELS;

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

/// The filter: `RUST_LOG` when set, else `LOG_LEVEL` for everything, with the chatty crates
/// held at their quiet level (or the global one, whichever is less verbose).
pub fn filter(config: &LogConfig) -> Targets {
    let directives = config.rust_log.clone().unwrap_or_else(|| {
        let rank = |l: &str| LEVELS.iter().position(|x| *x == l).unwrap_or(2);
        let global = config.level.as_str();
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

/// Where the lines come from: the project their trace fields name (`GOOGLE_CLOUD_PROJECT`,
/// else looked up on the first traced request) and the revision every line is labelled with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Source<'a> {
    /// `GOOGLE_CLOUD_PROJECT`.
    pub project_id: Option<&'a str>,
    /// `K_REVISION`.
    pub k_revision: Option<&'a str>,
}

/// Installs the global subscriber writing to stdout, with the OpenTelemetry layer when a
/// tracer is given (tracing on).
pub fn init(
    config: &LogConfig,
    source: Source<'_>,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) {
    init_with_writer(config, source, std::io::stdout, tracer);
}

/// Installs the global subscriber writing through `writer` (tests capture lines this way).
///
/// The log filter (`LOG_LEVEL`, `RUST_LOG`) applies to log lines only; the OpenTelemetry layer
/// has its own: every span that carries an `otel.name` field, whatever the log level, and no
/// events (log lines are not copied into spans).
pub fn init_with_writer<W>(
    config: &LogConfig,
    source: Source<'_>,
    writer: W,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer as _;
    if let Some(project) = source.project_id {
        project::set(project.to_owned());
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
    let result = match config.format {
        LogFormat::Json => registry
            .with(CloudLogging::new(writer, labels(source)).with_filter(filter(config)))
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

fn labels(source: Source<'_>) -> Map<String, Value> {
    let mut labels = Map::new();
    if let Some(rev) = source.k_revision {
        labels.insert("k_revision".into(), rev.into());
    }
    labels
}
