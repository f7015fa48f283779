//! Whether each configured model can be reached, probed at most once per `HEALTH_CHECK_TTL`
//! and shared: `/health` shows a failing model as a non-critical check (degraded, still ready:
//! one dependency's outage must not take every instance out of rotation), and `POST /v1/run`
//! answers 503 with the same explanation instead of starting a run that cannot work.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{ModelService, Orchestration, Workflow};

/// Longest a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

struct Entry {
    service: Arc<ModelService>,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

/// The models of a deployment and what their last probe said.
pub struct Reachability {
    ttl: Duration,
    models: BTreeMap<String, Entry>,
}

impl Reachability {
    /// Every model service an agent of `orchestration` uses.
    pub fn new(orchestration: &Orchestration, ttl: Duration) -> Self {
        let mut models = BTreeMap::new();
        for agent in orchestration.agents.values() {
            if let Some(service) = &agent.model {
                models.entry(service.name.clone()).or_insert_with(|| Entry {
                    service: service.clone(),
                    last: Mutex::new(None),
                });
            }
        }
        Self { ttl, models }
    }

    /// The model service names, for their health checks.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// Whether the model service `name` answers (cached for the TTL; concurrent callers share
    /// one probe).
    pub async fn check(&self, name: &str) -> Result<(), String> {
        let Some(entry) = self.models.get(name) else {
            return Ok(());
        };
        let mut last = entry.last.lock().await;
        if let Some((at, result)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return result.clone();
        }
        let service = &entry.service;
        let result = service.endpoint.probe(&service.model, PROBE_TIMEOUT).await;
        *last = Some((Instant::now(), result.clone()));
        result
    }

    /// The first model of `workflow` (its workers' included) that cannot be reached, if any.
    pub async fn workflow(
        &self,
        workflow: &Workflow,
        orchestration: &Orchestration,
    ) -> Result<(), String> {
        for agent in workflow.agents(orchestration) {
            if let Some(service) = &agent.model {
                self.check(&service.name).await?;
            }
        }
        Ok(())
    }
}
