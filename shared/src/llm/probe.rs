//! Whether a model can be reached, for health checks and for refusing runs early with a clear
//! 503: Ollama's `GET /api/tags` (and whether the model is pulled), an OpenAI-compatible
//! server's `GET /models` (with the key).

use std::time::Duration;

use serde::Deserialize;

use super::{Endpoint, Provider, join};
use crate::outbound::{Call, Request, StatusCode};

/// The most of a model list that is read.
const MAX_LIST_BYTES: usize = 1024 * 1024;

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
}

impl Endpoint {
    /// `Ok` when the server answers and (Ollama) has `model`; otherwise one line saying what
    /// is wrong, naming the model and the host, never the key.
    pub async fn probe(&self, model: &str, timeout: Duration) -> Result<(), String> {
        let call = Call::new(timeout, MAX_LIST_BYTES);
        let host = crate::outbound::host_of(&self.base);
        let path = match self.provider {
            Provider::Ollama => "api/tags",
            _ => "models",
        };
        let url = join(&self.base, path);
        let response = crate::outbound::with_refresh(
            self.auth.as_deref(),
            |identity| self.sign(Request::get(url.clone()), identity).send(&call),
            |sent| matches!(sent, Ok(r) if r.status() == StatusCode::UNAUTHORIZED),
        )
        .await
        .map_err(|e| format!("model {model} at {host}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let why = match status.as_u16() {
                401 | 403 if self.key.is_some() => "the API key was refused",
                401 | 403 if self.auth.is_some() => "the identity token was refused",
                401 | 403 => "the server wants credentials",
                _ => status.canonical_reason().unwrap_or("error"),
            };
            return Err(format!(
                "model {model} at {host}: {} {why}",
                status.as_u16()
            ));
        }
        if self.provider != Provider::Ollama {
            return Ok(());
        }
        let tags: Tags = response
            .body_json()
            .await
            .map_err(|e| format!("model {model} at {host}: {e}"))?;
        let pulled = tags
            .models
            .iter()
            .any(|t| t.name == model || t.name.strip_suffix(":latest") == Some(model));
        if pulled {
            Ok(())
        } else {
            Err(format!(
                "model {model} is not pulled on the Ollama server at {host}: run `ollama pull {model}`"
            ))
        }
    }
}
