//! The aggregator's dependency metrics around one [`Target`] check (the check itself, HTTP or
//! gRPC, with or without an ID token, is `aixrun::probe::target`, shared with every function's
//! `probe` command).

use std::time::{Duration, Instant};

use aixrun::probe::Target;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// Label of the dependency families: the target's configured name (a bounded set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Target name.
    pub target: String,
}

/// `aixgo_dependency_up{target}` and `aixgo_dependency_check_duration_seconds{target}`.
#[derive(Clone)]
pub struct DependencyMetrics {
    /// 1 when ready at the last check.
    pub up: Family<TargetLabels, Gauge>,
    /// Check latency.
    pub latency: Family<TargetLabels, Histogram, fn() -> Histogram>,
}

/// [`Target::check`], recording `aixgo_dependency_up` and the latency histogram.
pub async fn check_recorded(
    target: &Target,
    timeout: Duration,
    metrics: &DependencyMetrics,
) -> Result<String, String> {
    let start = Instant::now();
    let result = target.check(timeout).await;
    let labels = TargetLabels {
        target: target.name.clone(),
    };
    metrics
        .latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    metrics
        .up
        .get_or_create(&labels)
        .set(i64::from(result.is_ok()));
    result
}
