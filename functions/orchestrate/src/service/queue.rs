//! The run queue on Pub/Sub (`RUNS_TOPIC`): a run to execute is one message, `{"run_id"}`
//! with a `run_id` attribute, and a push subscription delivers it to `POST
//! /v1/runs:execute`, which executes it inside that request.

use aixrun::config::Env;
use aixrun::gcp::pubsub::PubSub;
use tokio::sync::OnceCell;

use super::Queue;

/// `RUNS_TOPIC`: the Pub/Sub topic background runs are published to (unset: runs execute in
/// the instance that accepted them).
pub const RUNS_TOPIC: &str = "RUNS_TOPIC";

/// The queue on `topic`.
pub struct PubSubQueue {
    env: Env,
    topic: String,
    /// Made on first use: finding the project may ask the metadata server, which start-up
    /// does not wait for.
    client: OnceCell<PubSub>,
}

impl PubSubQueue {
    /// The queue `RUNS_TOPIC` names, if any.
    pub fn from_env(env: &Env) -> Option<Self> {
        let topic = env.get(RUNS_TOPIC)?.trim();
        (!topic.is_empty()).then(|| Self {
            env: env.clone(),
            topic: topic.to_owned(),
            client: OnceCell::new(),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    async fn client(&self) -> Result<&PubSub, String> {
        self.client
            .get_or_try_init(|| async { PubSub::from_env(&self.env).await })
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl Queue for PubSubQueue {
    async fn publish(&self, id: &str) -> Result<(), String> {
        let data = serde_json::json!({ "run_id": id }).to_string();
        self.client()
            .await?
            .publish(&self.topic, data.as_bytes(), &[("run_id", id)])
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
