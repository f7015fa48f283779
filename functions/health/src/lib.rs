//! The health function: aggregates the readiness of the deployment's functions, and probes
//! one URL from the command line.

pub mod config;
pub mod target;

use std::process::ExitCode;

use aixrun::{App, Function};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::target::{DependencyMetrics, TargetLabels};

/// Command-line usage.
pub const USAGE: &str = "usage: health [serve]\n       health probe URL [--grpc] [--timeout 2s] [--id-token] [--audience AUDIENCE]";

const FUNCTION: Function = Function {
    name: "health",
    version: env!("CARGO_PKG_VERSION"),
};

/// Serves the aggregator until SIGTERM.
pub fn serve() -> ExitCode {
    aixrun::run(FUNCTION, |app| async move { setup(app) })
}

fn setup(mut app: App) -> Result<App, aixrun::StartupError> {
    let config = config::AggregatorConfig::from_env(app.env())?;
    for t in &config.targets {
        if let Some(token) = &t.id_token {
            tracing::info!(name = %t.name, audience = %token.audience, "checked with ID tokens");
        }
    }
    let up = Family::<TargetLabels, Gauge>::default();
    let latency = Family::new_with_constructor(aixrun::metrics::duration_histogram as fn() -> _);
    let registry = app.registry_mut();
    registry.register(
        "aixgo_dependency_up",
        "1 when the target answered ready at the last check, else 0",
        up.clone(),
    );
    registry.register(
        "aixgo_dependency_check_duration_seconds",
        "Time taken to check a target's readiness, in seconds",
        latency.clone(),
    );
    let metrics = DependencyMetrics { up, latency };
    for t in config.targets {
        let metrics = metrics.clone();
        let timeout = config.timeout;
        let name = t.name.clone();
        let target = std::sync::Arc::new(t);
        // The target's own timeout decides; the registry's bound only backs it up.
        let bound = timeout + std::time::Duration::from_secs(1);
        app.health()
            .add_check_with_timeout(name, config.critical, bound, move || {
                let target = target.clone();
                let metrics = metrics.clone();
                async move { crate::target::check_recorded(&target, timeout, &metrics).await }
            });
    }
    Ok(app)
}
