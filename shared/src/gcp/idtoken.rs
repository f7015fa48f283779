//! Google ID tokens for outgoing calls: `Authorization: Bearer <ID token>` minted for the
//! target's audience (Cloud Run checks it before the container sees the request).
//!
//! Tokens come from Application Default Credentials through `google-cloud-auth`: the metadata
//! server's `identity?audience=` on Google Cloud (`GCE_METADATA_HOST`; `format=full`, so the
//! token carries the service account's e-mail), a service-account key file, or gcloud's user
//! credentials elsewhere. Each audience's token is kept until five minutes before it expires;
//! callers that need one at the same time share one mint; a target that answers 401 gets
//! [`IdTokens::refused`], which drops the token so that the next call mints a fresh one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use google_cloud_auth::credentials::idtoken::{Builder, IDTokenCredentials};
use http::HeaderValue;

use crate::config::{Env, K_SERVICE};
use crate::outbound::{AuthProvider, Url};

/// A token is replaced this long before it expires (they live an hour).
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Longest wait for one mint.
const MINT_TIMEOUT: Duration = Duration::from_secs(10);
/// When a token's `exp` can't be read, it is kept this long.
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
#[error(
    "no ID token for audience {audience}: {problem}; on Google Cloud the metadata server mints \
     them, elsewhere set GOOGLE_APPLICATION_CREDENTIALS to a service-account key or run \
     `gcloud auth application-default login`"
)]
pub struct IdTokenError {
    audience: String,
    problem: String,
}

/// ID tokens by audience, shared by every outgoing client of a process.
#[derive(Default)]
pub struct IdTokens {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for IdTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokens")
    }
}

/// One audience: its credentials (built on first use) and its current token. The async lock
/// is held while minting, so concurrent callers wait for that one mint.
#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    credentials: Option<IDTokenCredentials>,
    token: Option<(String, SystemTime)>,
}

impl IdTokens {
    /// An empty cache; nothing is fetched until a token is asked for.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The process's one cache: every client of the process (MCP servers, model services,
    /// health targets) shares its tokens, which are per audience, not per client.
    pub fn shared() -> Arc<Self> {
        static SHARED: OnceLock<Arc<IdTokens>> = OnceLock::new();
        Arc::clone(SHARED.get_or_init(Self::new))
    }

    fn slot(&self, audience: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(slots.entry(audience.to_owned()).or_default())
    }

    /// The token for `audience`, minted when there is none or it expires within
    /// [`REFRESH_BEFORE`].
    pub async fn token(&self, audience: &str) -> Result<String, IdTokenError> {
        let slot = self.slot(audience);
        let mut state = slot.state.lock().await;
        if let Some((token, refresh_at)) = &state.token
            && SystemTime::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let fail = |problem: String| IdTokenError {
            audience: audience.to_owned(),
            problem,
        };
        let credentials = match &state.credentials {
            Some(c) => c.clone(),
            None => {
                let built = Builder::new(audience)
                    .with_include_email()
                    .build()
                    .map_err(|e| fail(e.to_string()))?;
                state.credentials = Some(built.clone());
                built
            }
        };
        let token = tokio::time::timeout(MINT_TIMEOUT, credentials.id_token())
            .await
            .map_err(|_| fail(format!("no answer within {}s", MINT_TIMEOUT.as_secs())))?
            .map_err(|e| fail(e.to_string()))?;
        let refresh_at = expiry(&token).map_or_else(
            || SystemTime::now() + UNKNOWN_LIFETIME,
            |exp| exp.checked_sub(REFRESH_BEFORE).unwrap_or(exp),
        );
        state.token = Some((token.clone(), refresh_at));
        Ok(token)
    }

    /// The target refused `audience`'s token (401): forget it and the credentials' own cache,
    /// so that the next call mints a new one.
    pub async fn refused(&self, audience: &str) {
        let slot = self.slot(audience);
        let mut state = slot.state.lock().await;
        *state = State::default();
    }
}

/// The `exp` claim of a JWT, read without checking the signature (the issuer checks it; we
/// only need to know when to mint the next one).
pub fn expiry(jwt: &str) -> Option<SystemTime> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(exp))
}

/// The audience Cloud Run expects by default: the target URL's origin (`https://host[:port]`).
pub fn default_audience(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether a target configured without any `auth` gets ID tokens anyway: on Google Cloud
/// (`K_SERVICE` set), for `https://` targets, which is what Cloud Run services deployed with
/// `--no-allow-unauthenticated` require. The one rule for MCP servers and model services.
pub fn on_by_default(env: &Env, url: &Url) -> bool {
    env.get(K_SERVICE).is_some() && url.scheme() == "https"
}

/// A Google ID token for one audience, from a shared cache ([`IdTokens::shared`]), as an
/// [`AuthProvider`]: a refusal drops the token so that the retry mints a fresh one.
pub struct IdTokenAuth {
    tokens: Arc<IdTokens>,
    audience: String,
}

impl IdTokenAuth {
    /// Tokens for `audience` (the target's origin unless configured) from `tokens`.
    pub fn new(tokens: Arc<IdTokens>, audience: String) -> Self {
        Self { tokens, audience }
    }

    /// The audience tokens are minted for.
    pub fn audience(&self) -> &str {
        &self.audience
    }
}

impl std::fmt::Debug for IdTokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdTokenAuth({})", self.audience)
    }
}

#[async_trait::async_trait]
impl AuthProvider for IdTokenAuth {
    async fn header(&self) -> Option<HeaderValue> {
        match self.tokens.token(&self.audience).await {
            Ok(token) => {
                let mut value = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
                value.set_sensitive(true);
                Some(value)
            }
            Err(e) => {
                // The call goes out without a token and the target's 401 says so; this line
                // says why.
                tracing::warn!(error = %e, "no ID token");
                None
            }
        }
    }

    async fn refused(&self) {
        self.tokens.refused(&self.audience).await;
    }

    fn refreshes(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b64(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn expiry_is_read_from_the_payload() {
        let t = jwt(serde_json::json!({"exp": 2_000_000_000u64, "aud": "x"}));
        assert_eq!(
            expiry(&t),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(expiry("not-a-jwt"), None);
        assert_eq!(expiry(&jwt(serde_json::json!({"aud": "x"}))), None);
    }

    #[test]
    fn the_default_audience_is_the_origin() {
        let url = crate::outbound::Url::parse("https://mcp-tool-abc-ew.a.run.app/mcp?x=1").unwrap();
        assert_eq!(default_audience(&url), "https://mcp-tool-abc-ew.a.run.app");
        let url = crate::outbound::Url::parse("http://10.0.0.1:8080/").unwrap();
        assert_eq!(default_audience(&url), "http://10.0.0.1:8080");
    }
}
