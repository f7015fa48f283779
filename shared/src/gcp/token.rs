//! OAuth access tokens for Google's APIs from Application Default Credentials: the metadata
//! server on Google Cloud (read directly, over the outbound client), else
//! `GOOGLE_APPLICATION_CREDENTIALS` or gcloud's user credentials through `google-cloud-auth`.
//! [`AccessTokens`] keeps one until shortly before it expires, for clients that call an API on
//! every request (Firestore, Pub/Sub); Secret Manager at start-up asks once.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The scope every token is asked for (IAM roles then decide what it may do).
pub(crate) const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// One metadata read: the server is local, seconds mean it is not there.
const METADATA_TIMEOUT: Duration = Duration::from_secs(3);
/// A cached token is replaced this long before it expires, so that no request carries one that
/// lapses on the way (metadata tokens live about an hour and are refreshed by the server five
/// minutes before the end).
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// How long a token without a stated lifetime is kept.
const UNSTATED_LIFETIME: Duration = Duration::from_secs(300);
/// What a message tells the operator when no token can be had.
pub(crate) const HINT: &str = "on Google Cloud the metadata server provides one; elsewhere run \
                               `gcloud auth application-default login` or set \
                               GOOGLE_APPLICATION_CREDENTIALS";

/// A token and how long it is good for, when the source says.
pub(crate) struct Token {
    pub(crate) token: String,
    pub(crate) expires_in: Option<Duration>,
}

/// Whether Application Default Credentials come from the metadata server, by ADC's own rules
/// (AIP-4110, as google-cloud-auth applies them): no `GOOGLE_APPLICATION_CREDENTIALS` and no
/// gcloud file at `$HOME/.config/gcloud/application_default_credentials.json`.
pub(crate) fn adc_is_metadata_server() -> bool {
    if std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").is_some() {
        return false;
    }
    std::env::var_os("HOME").is_none_or(|home| {
        !std::path::Path::new(&home)
            .join(".config/gcloud/application_default_credentials.json")
            .exists()
    })
}

/// `instance/service-accounts/default/token` (`{"access_token", "expires_in",
/// "token_type"}`), retried on connection errors and 5xx while `timeout` allows: GKE's
/// metadata server can take a moment to answer at pod start.
pub(crate) async fn from_metadata(base: &str, timeout: Duration) -> Result<Token, String> {
    use super::metadata::{MetadataError, get};
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        expires_in: Option<u64>,
    }
    let path = format!("instance/service-accounts/default/token?scopes={CLOUD_PLATFORM}");
    let deadline = Instant::now() + timeout;
    let mut attempt = 1;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = get(base, &path, METADATA_TIMEOUT.min(left)).await;
        let retry = match &outcome {
            Ok(_) => false,
            Err(MetadataError::Unreachable(_)) => true,
            Err(MetadataError::Status { status, .. }) => *status >= 500,
            Err(_) => false,
        };
        let wait = Duration::from_millis(50 << attempt.min(5));
        if !retry || attempt >= 4 || wait >= deadline.saturating_duration_since(Instant::now()) {
            let body = outcome.map_err(|e| e.to_string())?;
            let answer: Answer = serde_json::from_str(&body)
                .map_err(|_| "the metadata server's token answer is not JSON".to_owned())?;
            return Ok(Token {
                token: answer.access_token,
                expires_in: answer.expires_in.map(Duration::from_secs),
            });
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// A token from whatever Application Default Credentials find. When ADC would fall back to the
/// metadata server, it is read from it directly over the outbound client: one client and one
/// round trip to a local server, instead of google-cloud-auth building its own client first
/// (about 12 ms of TLS set-up before its first request). The error says what to do.
pub(crate) async fn from_adc(metadata_base: &str, timeout: Duration) -> Result<Token, String> {
    if adc_is_metadata_server() {
        return from_metadata(metadata_base, timeout)
            .await
            .map_err(|why| format!("no access token ({why}); {HINT}"));
    }
    let credentials = adc_credentials()?;
    token_from(&credentials, timeout).await
}

fn adc_credentials() -> Result<google_cloud_auth::credentials::AccessTokenCredentials, String> {
    google_cloud_auth::credentials::Builder::default()
        .with_scopes([CLOUD_PLATFORM])
        .build_access_token_credentials()
        .map_err(|e| format!("no Google credentials ({e}); {HINT}"))
}

async fn token_from(
    credentials: &google_cloud_auth::credentials::AccessTokenCredentials,
    timeout: Duration,
) -> Result<Token, String> {
    let token = tokio::time::timeout(timeout, credentials.access_token())
        .await
        .map_err(|_| format!("no access token within {timeout:?}; {HINT}"))?
        .map_err(|e| format!("no access token ({e}); {HINT}"))?;
    // google-cloud-auth keeps and refreshes its own token: asking it again is cheap.
    Ok(Token {
        token: token.token,
        expires_in: Some(Duration::ZERO),
    })
}

/// Access tokens for a long-lived client: one is fetched when first needed and kept until
/// [`REFRESH_MARGIN`] before it expires, or until the API refuses it ([`AccessTokens::refused`]).
/// Concurrent callers wait for the one fetch in progress instead of each starting their own.
pub(crate) struct AccessTokens {
    metadata_base: String,
    /// Decided once, when the client is made: whether ADC means the metadata server.
    metadata: bool,
    cached: Mutex<Option<(String, Instant)>>,
    credentials: Mutex<Option<google_cloud_auth::credentials::AccessTokenCredentials>>,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessTokens(<redacted>)")
    }
}

impl AccessTokens {
    /// Tokens from ADC, the metadata server at `metadata_base` (`http://HOST`) on Google Cloud.
    pub(crate) fn new(metadata_base: &str) -> Self {
        Self::with_source(metadata_base, adc_is_metadata_server())
    }

    /// Tokens from the metadata server at `metadata_base` (`metadata`), or from
    /// google-cloud-auth's other ADC sources.
    pub(crate) fn with_source(metadata_base: &str, metadata: bool) -> Self {
        Self {
            metadata_base: metadata_base.to_owned(),
            metadata,
            cached: Mutex::new(None),
            credentials: Mutex::new(None),
        }
    }

    /// A token good for a while yet, within `timeout` when one must be fetched.
    pub(crate) async fn get(&self, timeout: Duration) -> Result<String, String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let token = if self.metadata {
            from_metadata(&self.metadata_base, timeout)
                .await
                .map_err(|why| format!("no access token ({why}); {HINT}"))?
        } else {
            let mut credentials = self.credentials.lock().await;
            if credentials.is_none() {
                *credentials = Some(adc_credentials()?);
            }
            let credentials = credentials.as_ref().expect("set just above");
            token_from(credentials, timeout).await?
        };
        let lifetime = token.expires_in.unwrap_or(UNSTATED_LIFETIME);
        let until = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN);
        *cached = Some((token.token.clone(), until));
        Ok(token.token)
    }

    /// The API refused the token (401): the next [`AccessTokens::get`] fetches a new one.
    pub(crate) async fn refused(&self) {
        *self.cached.lock().await = None;
    }
}
