//! Health: the lifecycle (starting, ready, draining), a registry of named checks whose results
//! are cached for a TTL, the full report `/health` reads and the readiness (critical checks
//! only) that `/health/ready` and `grpc.health.v1` read.
//!
//! Nothing runs in the background: Cloud Run throttles the CPU between requests, so a check
//! runs inside the request that finds its cached result stale. Readiness awaits critical checks
//! only; non-critical ones run when `/health` is asked, so one that hangs never slows readiness.

pub mod config;
mod grpc;
mod routes;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{Mutex, watch};

pub use grpc::HealthService;
pub use routes::router;

/// Where the process is in its life; only `Ready` takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the listener is serving.
    Starting,
    /// Serving.
    Ready,
    /// SIGTERM received: finishing in-flight work.
    Draining,
}

/// The outcome of one check run.
pub type CheckResult = Result<String, String>;
type CheckFn = dyn Fn() -> Pin<Box<dyn Future<Output = CheckResult> + Send>> + Send + Sync;

/// How long a check registered with [`Health::add_check`] may run before counting as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

struct Check {
    name: String,
    critical: bool,
    timeout: Duration,
    run: Box<CheckFn>,
    cache: Mutex<Option<Cached>>,
}

#[derive(Clone)]
struct Cached {
    healthy: bool,
    message: String,
    last_checked: OffsetDateTime,
    at: Instant,
}

/// Overall status in the seed's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every check passes.
    Healthy,
    /// A non-critical check fails: still serving.
    Degraded,
    /// A critical check fails, or the process is not ready.
    Unhealthy,
}

/// One check's line in the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// `healthy` or `unhealthy`.
    pub status: &'static str,
    /// `OK` or what failed.
    pub message: String,
    /// When the check last ran (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub last_checked: OffsetDateTime,
    /// Whether a failure makes the function unready.
    pub critical: bool,
}

/// The result of evaluating every check.
#[derive(Debug, Clone)]
pub struct Report {
    /// Lifecycle phase at evaluation.
    pub phase: Phase,
    /// Overall status.
    pub status: Status,
    /// Per-check results, by name.
    pub checks: BTreeMap<String, CheckReport>,
}

impl Report {
    /// Ready to take traffic: serving, and no critical check failing.
    pub fn ready(&self) -> bool {
        self.phase == Phase::Ready && self.status != Status::Unhealthy
    }

    /// Why not ready, for the 503 body.
    pub fn reason(&self) -> String {
        match self.phase {
            Phase::Starting => "starting".into(),
            Phase::Draining => "draining".into(),
            Phase::Ready => {
                let failing: Vec<&str> = self
                    .checks
                    .iter()
                    .filter(|(_, c)| c.critical && c.status != "healthy")
                    .map(|(n, _)| n.as_str())
                    .collect();
                format!("critical check failing: {}", failing.join(", "))
            }
        }
    }
}

/// Identity reported by `/health`.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Function version.
    pub version: &'static str,
    /// `K_SERVICE`, `K_REVISION`, `K_CONFIGURATION`.
    pub k_service: Option<String>,
    #[allow(missing_docs)]
    pub k_revision: Option<String>,
    #[allow(missing_docs)]
    pub k_configuration: Option<String>,
}

/// Shared handle to the health state; cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    phase: watch::Sender<Phase>,
    checks: std::sync::RwLock<Vec<Arc<Check>>>,
    ttl: Duration,
    started: Instant,
    identity: Identity,
}

impl Health {
    /// A registry in the `Starting` phase.
    pub fn new(identity: Identity, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                phase: watch::Sender::new(Phase::Starting),
                checks: std::sync::RwLock::new(Vec::new()),
                ttl,
                started: Instant::now(),
                identity,
            }),
        }
    }

    /// Registers a named check. `critical` failures make the function unready and
    /// `/health` unhealthy; others make it degraded. The check runs at most once per TTL.
    pub fn add_check<F, Fut>(&self, name: impl Into<String>, critical: bool, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        self.add_check_with_timeout(name, critical, CHECK_TIMEOUT, check);
    }

    /// [`Self::add_check`] for a check that may run up to `timeout` before counting as failed.
    pub fn add_check_with_timeout<F, Fut>(
        &self,
        name: impl Into<String>,
        critical: bool,
        timeout: Duration,
        check: F,
    ) where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        let check = Check {
            name: name.into(),
            critical,
            timeout,
            run: Box::new(move || Box::pin(check())),
            cache: Mutex::new(None),
        };
        self.inner
            .checks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(check));
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        *self.inner.phase.borrow()
    }

    /// A receiver that sees every phase change.
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.inner.phase.subscribe()
    }

    /// Marks the function serving.
    pub fn set_ready(&self) {
        self.inner.phase.send_replace(Phase::Ready);
    }

    /// Marks the function draining: readiness turns false at once, for good.
    pub fn set_draining(&self) {
        self.inner.phase.send_replace(Phase::Draining);
    }

    /// Identity given at construction.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// Time since the registry was made (process start, in practice).
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Every check, each run (in parallel) when its cached result is older than the TTL: what
    /// `/health` shows.
    pub async fn report(&self) -> Report {
        self.evaluate(|_| true).await
    }

    /// The phase and the critical checks only (run when their cached result is stale): what
    /// `/health/ready` and `grpc.health.v1` answer. Non-critical checks are neither run nor
    /// reported here.
    pub async fn readiness(&self) -> Report {
        self.evaluate(|check| check.critical).await
    }

    async fn evaluate(&self, wanted: impl Fn(&Check) -> bool) -> Report {
        let phase = self.phase();
        let checks: Vec<Arc<Check>> = self
            .inner
            .checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|c| wanted(c))
            .cloned()
            .collect();
        let ttl = self.inner.ttl;
        let results =
            futures_util::future::join_all(checks.iter().map(|c| evaluate(c.clone(), ttl))).await;
        let mut status = Status::Healthy;
        let mut out = BTreeMap::new();
        for (check, cached) in checks.iter().zip(results) {
            if !cached.healthy {
                if check.critical {
                    status = Status::Unhealthy;
                } else if status == Status::Healthy {
                    status = Status::Degraded;
                }
            }
            out.insert(
                check.name.clone(),
                CheckReport {
                    status: if cached.healthy {
                        "healthy"
                    } else {
                        "unhealthy"
                    },
                    message: cached.message,
                    last_checked: cached.last_checked,
                    critical: check.critical,
                },
            );
        }
        if phase != Phase::Ready {
            status = Status::Unhealthy;
        }
        Report {
            phase,
            status,
            checks: out,
        }
    }
}

/// Returns the cached result if fresh; otherwise runs the check once, however many callers wait.
async fn evaluate(check: Arc<Check>, ttl: Duration) -> Cached {
    let mut slot = check.cache.lock().await;
    if let Some(cached) = slot.as_ref().filter(|c| c.at.elapsed() < ttl) {
        return cached.clone();
    }
    let outcome = match tokio::time::timeout(check.timeout, (check.run)()).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {:?}", check.timeout)),
    };
    let (healthy, message) = match outcome {
        Ok(m) => (true, m),
        Err(m) => (false, m),
    };
    let cached = Cached {
        healthy,
        message,
        last_checked: OffsetDateTime::now_utc(),
        at: Instant::now(),
    };
    *slot = Some(cached.clone());
    cached
}

/// Formats a duration the way Go's `time.Duration.String` does after rounding to seconds
/// (`1h30m0s`, `2m5s`, `7s`): the seed's `uptime` field.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn health() -> Health {
        Health::new(
            Identity {
                version: "1",
                k_service: None,
                k_revision: None,
                k_configuration: None,
            },
            Duration::from_secs(60),
        )
    }

    #[tokio::test]
    async fn non_critical_failure_degrades_and_stays_ready() {
        let h = health();
        h.set_ready();
        h.add_check("cache", false, || async { Err("down".to_string()) });
        let r = h.report().await;
        assert_eq!(r.status, Status::Degraded);
        assert!(r.ready());
    }

    #[tokio::test]
    async fn readiness_never_runs_non_critical_checks() {
        let h = health();
        h.set_ready();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        h.add_check("hangs", false, move || {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::pending()
        });
        h.add_check("db", true, || async { Ok("OK".to_string()) });
        let r = h.readiness().await;
        assert!(r.ready());
        assert_eq!(r.checks.keys().collect::<Vec<_>>(), ["db"]);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn critical_failure_is_unhealthy_and_unready() {
        let h = health();
        h.set_ready();
        h.add_check("db", true, || async { Err("down".to_string()) });
        let r = h.report().await;
        assert_eq!(r.status, Status::Unhealthy);
        assert!(!r.ready());
        assert_eq!(r.reason(), "critical check failing: db");
        assert!(!h.readiness().await.ready());
    }

    #[tokio::test]
    async fn results_are_cached_for_the_ttl() {
        let h = health();
        h.set_ready();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        h.add_check("x", true, move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok("OK".to_string()) }
        });
        for _ in 0..5 {
            h.report().await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn starting_and_draining_are_not_ready() {
        let h = health();
        assert!(!h.report().await.ready());
        h.set_ready();
        assert!(h.report().await.ready());
        h.set_draining();
        let r = h.report().await;
        assert!(!r.ready());
        assert_eq!(r.reason(), "draining");
    }

    #[test]
    fn uptime_reads_like_go() {
        assert_eq!(go_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(go_duration(Duration::from_secs(125)), "2m5s");
        assert_eq!(go_duration(Duration::from_millis(900)), "0s");
    }
}
