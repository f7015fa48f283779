//! One secret's fetch: `GET {endpoint}/v1/{resource}:access` with the access token, retried
//! on connection errors, 429 and 5xx within its time, its failure told as HTTP status and
//! Google's error status (never the value), its payload checked against its CRC32C.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use super::SecretValue;
use crate::outbound::{Call, OutboundError, Request, RetryPolicy, Url};

/// One attempt: Secret Manager answers in tens of milliseconds; seconds mean trouble.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Payloads are at most 64 KiB, so an answer (base64 and JSON around it) fits in 128 KiB.
const MAX_ANSWER_BYTES: usize = 128 * 1024;

/// `GET {endpoint}/v1/{resource}:access`, retried on connection errors, 429 and 5xx.
pub(super) async fn fetch_one(
    endpoint: &str,
    resource: &str,
    token: &str,
    timeout: Duration,
) -> Result<SecretValue, String> {
    let url = Url::parse(&format!("{endpoint}/v1/{resource}:access"))
        .map_err(|e| format!("not a URL: {e}"))?;
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut attempt = 1;
    loop {
        // The first attempt gets the whole timeout exactly (its error then says so).
        let left = match attempt {
            1 => timeout,
            _ => deadline.saturating_duration_since(tokio::time::Instant::now()),
        };
        let call = Call::new(ATTEMPT_TIMEOUT.min(left), MAX_ANSWER_BYTES);
        let outcome = once(&call, url.clone(), token).await;
        let (retry, wait) = match &outcome {
            Ok(_) => return outcome.map_err(Failure::into_message),
            Err(Failure::Status {
                status,
                retry_after,
                ..
            }) if *status == 429 || *status >= 500 => (true, *retry_after),
            Err(Failure::Unreachable(e)) => (!matches!(e, OutboundError::Tls { .. }), None),
            Err(_) => (false, None),
        };
        let wait = wait.unwrap_or_else(|| policy.backoff(attempt));
        let room = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !retry || attempt >= policy.max_attempts || wait >= room {
            return outcome.map_err(Failure::into_message);
        }
        tracing::warn!(
            secret = resource,
            attempt,
            problem = %outcome.as_ref().err().map(Failure::message).unwrap_or_default(),
            "Secret Manager: retrying"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Why one attempt failed.
pub(super) enum Failure {
    Unreachable(OutboundError),
    Status {
        status: u16,
        google: Option<GoogleError>,
        retry_after: Option<Duration>,
    },
    Checksum,
    Malformed(String),
}

impl Failure {
    fn message(&self) -> String {
        match self {
            Self::Unreachable(e) => e.to_string(),
            Self::Status { status, google, .. } => {
                let mut m = status.to_string();
                if let Some(g) = google {
                    if !g.status.is_empty() {
                        m.push(' ');
                        m.push_str(&g.status);
                    }
                    if !g.message.is_empty() {
                        m.push_str(": ");
                        m.push_str(&crate::error::one_line(&g.message, 300));
                    }
                }
                if let Some(hint) = hint(*status) {
                    m.push_str("; ");
                    m.push_str(hint);
                }
                m
            }
            Self::Checksum => {
                "the payload does not match its dataCrc32c checksum (corrupted in transit); \
                 not used"
                    .into()
            }
            Self::Malformed(why) => why.clone(),
        }
    }

    fn into_message(self) -> String {
        self.message()
    }
}

fn hint(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "the access token was refused",
        403 => {
            "grant the service account roles/secretmanager.secretAccessor on the secret \
             (and enable the Secret Manager API)"
        }
        404 => "check the secret's name, project and version (`gcloud secrets versions list`)",
        400 => "the version may be disabled or destroyed",
        _ => return None,
    })
}

/// Google's error body: `{"error": {"code", "message", "status"}}`.
#[derive(Deserialize)]
struct GoogleErrorBody {
    error: GoogleError,
}

#[derive(Deserialize)]
pub(super) struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// `{"name", "payload": {"data": base64, "dataCrc32c": "decimal int64"}}`.
#[derive(Deserialize)]
struct AccessResponse {
    payload: Payload,
}

#[derive(Deserialize)]
pub(super) struct Payload {
    #[serde(default)]
    pub(super) data: String,
    #[serde(rename = "dataCrc32c")]
    pub(super) data_crc32c: Option<String>,
}

async fn once(call: &Call, url: Url, token: &str) -> Result<SecretValue, Failure> {
    let response = Request::get(url)
        .bearer(token)
        .send(call)
        .await
        .map_err(Failure::Unreachable)?;
    let status = response.status().as_u16();
    if status != 200 {
        let retry_after = crate::outbound::retry_after(response.headers());
        let google = response
            .body_bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<GoogleErrorBody>(&b).ok())
            .map(|b| b.error);
        return Err(Failure::Status {
            status,
            google,
            retry_after,
        });
    }
    let answer: AccessResponse = response.body_json().await.map_err(Failure::Unreachable)?;
    decode(&answer.payload)
}

pub(super) fn decode(payload: &Payload) -> Result<SecretValue, Failure> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.data.as_bytes())
        .map_err(|_| Failure::Malformed("the payload is not base64".into()))?;
    if let Some(expected) = &payload.data_crc32c {
        let expected: u64 = expected
            .parse()
            .map_err(|_| Failure::Malformed("dataCrc32c is not a decimal number".into()))?;
        if u64::from(crc32c::crc32c(&bytes)) != expected {
            return Err(Failure::Checksum);
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::Malformed(
            "the payload is not UTF-8 text, which an environment variable must be".into(),
        )
    })?;
    Ok(SecretValue(text))
}
