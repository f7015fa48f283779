//! Pub/Sub through its REST API (v1), over [`crate::outbound`]: publishing a message to a topic,
//! and reading the messages a push subscription delivers ([`PushMessage`]).
//!
//! Configuration as Google's own clients read it: `GOOGLE_CLOUD_PROJECT` (else the metadata
//! server's project) and `PUBSUB_EMULATOR_HOST` (`host:port`: plain HTTP, no token). On Google
//! Cloud each request carries an OAuth access token from the metadata server (kept until near
//! expiry); the service account needs `roles/pubsub.publisher` on the topic.

mod push;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use push::{PushError, PushMessage};

pub use super::rest::{ApiError as Error, ErrorKind};
use super::rest::{Exchange, Preconditions, RestClient};
use crate::config::Env;
use crate::outbound::Method;

/// `PUBSUB_EMULATOR_HOST`: `host:port` of a Pub/Sub emulator, as Google's clients read it.
pub const PUBSUB_EMULATOR_HOST: &str = "PUBSUB_EMULATOR_HOST";
/// Pub/Sub's REST endpoint.
pub const ENDPOINT: &str = "https://pubsub.googleapis.com";
/// The longest one publish may take unless [`PubSub::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message data Pub/Sub takes (10 MB, attributes included; this checks the data).
pub const MAX_DATA_BYTES: usize = 10_000_000;

const SERVICE: &str = "Pub/Sub";
const ANSWER_BYTES: usize = 64 * 1024;

/// A Pub/Sub publisher. Cheap to clone; clones share the token and the count of round trips.
#[derive(Debug, Clone)]
pub struct PubSub {
    rest: RestClient,
    project: String,
}

impl PubSub {
    /// The publisher the variables describe (see the module's documentation); a missing
    /// project or a malformed variable is an [`ErrorKind::Config`] naming the variable.
    pub async fn from_env(env: &Env) -> Result<Self, Error> {
        let rest = RestClient::from_env(
            SERVICE,
            env,
            PUBSUB_EMULATOR_HOST,
            ENDPOINT,
            DEFAULT_TIMEOUT,
        )?;
        let project = super::rest::project(env, SERVICE).await?;
        Ok(Self { rest, project })
    }

    /// Each publish must end within `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.rest.set_timeout(timeout);
        self
    }

    /// The project topics are in (unless named in full).
    pub fn project(&self) -> &str {
        &self.project
    }

    /// Whether this talks to an emulator (`PUBSUB_EMULATOR_HOST`).
    pub fn is_emulator(&self) -> bool {
        self.rest.is_emulator()
    }

    /// `host[:port]` it calls.
    pub fn host(&self) -> String {
        self.rest.host()
    }

    /// HTTP requests sent so far by this client and its clones.
    pub fn round_trips(&self) -> u64 {
        self.rest.round_trips()
    }

    /// `projects/P/topics/T` for `topic` given as `T` or in full.
    pub fn topic_name(&self, topic: &str) -> String {
        if topic.starts_with("projects/") {
            topic.to_owned()
        } else {
            format!("projects/{}/topics/{topic}", self.project)
        }
    }

    /// Publishes one message (`data`, and `attributes` as key-value pairs) to `topic` (`T` or
    /// `projects/P/topics/T`) and returns its message id. Not retried here: a publish that
    /// timed out may have gone through, and a push handler deduplicates anyway (delivery is at
    /// least once).
    pub async fn publish(
        &self,
        topic: &str,
        data: &[u8],
        attributes: &[(&str, &str)],
    ) -> Result<String, Error> {
        let name = self.topic_name(topic);
        let short = name.rsplit('/').next().unwrap_or_default();
        if let Some(why) = bad_topic(&name, short) {
            return Err(self.rest.error(ErrorKind::Invalid, "publish", topic, why));
        }
        if data.len() > MAX_DATA_BYTES {
            let why = format!(
                "{} bytes of data, more than Pub/Sub's {MAX_DATA_BYTES}",
                data.len()
            );
            return Err(self.rest.error(ErrorKind::Invalid, "publish", topic, why));
        }
        #[derive(Serialize)]
        struct Message<'a> {
            data: String,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            attributes: BTreeMap<&'a str, &'a str>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            messages: [Message<'a>; 1],
        }
        let body = Body {
            messages: [Message {
                data: base64::engine::general_purpose::STANDARD.encode(data),
                attributes: attributes.iter().copied().collect(),
            }],
        };
        let url = self.rest.url(&name, Some("publish"), &[]);
        let answer = self
            .rest
            .send(Exchange {
                op: "publish",
                target: &name,
                method: Method::POST,
                url,
                body: Some(&body),
                max_bytes: ANSWER_BYTES,
                preconditions: Preconditions::None,
            })
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => self.rest.error(
                    ErrorKind::NotFound,
                    "publish",
                    &name,
                    format!(
                        "{}; create it: gcloud pubsub topics create {short}",
                        e.detail()
                    ),
                ),
                ErrorKind::Denied => self.rest.error(
                    ErrorKind::Denied,
                    "publish",
                    &name,
                    format!(
                        "{}; grant the service account roles/pubsub.publisher",
                        e.detail()
                    ),
                ),
                _ => e,
            })?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            #[serde(default)]
            message_ids: Vec<String>,
        }
        serde_json::from_slice::<Answer>(&answer)
            .ok()
            .and_then(|a| a.message_ids.into_iter().next())
            .ok_or_else(|| {
                let why = "the answer names no message id";
                self.rest.error(ErrorKind::Invalid, "publish", &name, why)
            })
    }
}

/// Why `name` cannot be a topic: Pub/Sub's names are 3-255 characters, start with a letter,
/// and hold letters, digits and `-_.~+%` (the emulator refuses `t`, for one).
fn bad_topic(name: &str, short: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() != 4 || parts[0] != "projects" || parts[2] != "topics" || parts[1].is_empty() {
        return Some(format!("{name:?} is not projects/P/topics/T"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.~+%".contains(c);
    let ok = (3..=255).contains(&short.len())
        && short.starts_with(|c: char| c.is_ascii_alphabetic())
        && short.chars().all(allowed)
        && !short.starts_with("goog");
    (!ok).then(|| {
        format!(
            "{short:?} is not a topic name (3-255 letters, digits and -_.~+%, starting with a \
             letter, not goog)"
        )
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod publish_tests {
    use super::*;

    #[test]
    fn topic_names_are_checked_before_a_round_trip() {
        let ok = |n: &str| bad_topic(n, n.rsplit('/').next().unwrap()).is_none();
        assert!(ok("projects/p/topics/runs"));
        assert!(ok("projects/p/topics/aixrun-runs.v1"));
        assert!(!ok("projects/p/topics/t"));
        assert!(!ok("projects/p/topics/1runs"));
        assert!(!ok("projects/p/topics/goog-runs"));
        assert!(!ok("projects/p/topics/a b c"));
        assert!(!ok("projects/p/subscriptions/runs"));
    }

    #[tokio::test]
    async fn topics_are_named_in_the_project_unless_given_in_full() {
        let env = Env::from_pairs([
            (PUBSUB_EMULATOR_HOST, "127.0.0.1:1"),
            ("GOOGLE_CLOUD_PROJECT", "p"),
        ]);
        let pubsub = PubSub::from_env(&env).await.unwrap();
        assert_eq!(pubsub.topic_name("runs"), "projects/p/topics/runs");
        assert_eq!(
            pubsub.topic_name("projects/q/topics/x"),
            "projects/q/topics/x"
        );
        let e = pubsub.publish("t", b"x", &[]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert_eq!(pubsub.round_trips(), 0);
    }
}
