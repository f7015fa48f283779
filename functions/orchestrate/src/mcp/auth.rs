//! Outgoing identity: an [`AuthProvider`] gives the `Authorization` header for a server's
//! audience before each request: a static bearer token, or a Google ID token minted for the
//! server's audience ([`IdTokenAuth`], over `aixrun::gcp::idtoken`).

use std::fmt;
use std::sync::Arc;

use aixrun::gcp::idtoken::IdTokens;
use http::HeaderValue;

/// Gives the `Authorization` header value for requests to `audience` (the server's URL as
/// configured, which is what Cloud Run ID tokens are minted for), or `None` to send none.
#[async_trait::async_trait]
pub trait AuthProvider: Send + Sync {
    /// The header value, marked sensitive so that no log or `Debug` prints it.
    async fn header(&self, audience: &str) -> Option<HeaderValue>;

    /// The server refused the credentials (401, UNAUTHENTICATED): drop any cached token so
    /// that the retry gets a fresh one.
    async fn refused(&self) {}
}

/// A Google ID token for one audience, from the process's shared cache.
pub struct IdTokenAuth {
    tokens: Arc<IdTokens>,
    audience: String,
}

impl IdTokenAuth {
    /// Tokens for `audience` (the server's origin unless configured) from `tokens`.
    pub fn new(tokens: Arc<IdTokens>, audience: String) -> Self {
        Self { tokens, audience }
    }
}

impl fmt::Debug for IdTokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdTokenAuth({})", self.audience)
    }
}

#[async_trait::async_trait]
impl AuthProvider for IdTokenAuth {
    async fn header(&self, _audience: &str) -> Option<HeaderValue> {
        match self.tokens.token(&self.audience).await {
            Ok(token) => {
                let mut value = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
                value.set_sensitive(true);
                Some(value)
            }
            Err(e) => {
                // The call goes out without a token and the server's 401 says so; this line
                // says why.
                tracing::warn!(error = %e, "no ID token");
                None
            }
        }
    }

    async fn refused(&self) {
        self.tokens.refused(&self.audience).await;
    }
}

/// The same bearer token for every server, e.g. from an environment variable.
#[derive(Clone)]
pub struct StaticBearer {
    value: HeaderValue,
}

impl StaticBearer {
    /// `Authorization: Bearer <token>`; `None` if the token can't be a header value (the token
    /// itself is never part of any message).
    pub fn new(token: &str) -> Option<Self> {
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.trim())).ok()?;
        value.set_sensitive(true);
        Some(Self { value })
    }

    /// The token in environment variable `var`, when it is set and not empty.
    pub fn from_env(env: &aixrun::Env, var: &str) -> Option<Self> {
        env.get(var)
            .filter(|t| !t.trim().is_empty())
            .and_then(Self::new)
    }
}

impl fmt::Debug for StaticBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticBearer(<redacted>)")
    }
}

#[async_trait::async_trait]
impl AuthProvider for StaticBearer {
    async fn header(&self, _audience: &str) -> Option<HeaderValue> {
        Some(self.value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_bearer_is_sensitive_and_never_printed() {
        let auth = StaticBearer::new("s3cret").unwrap();
        assert!(!format!("{auth:?}").contains("s3cret"));
        let header = auth.header("https://x").await.unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("s3cret"));
        assert_eq!(header.to_str().unwrap(), "Bearer s3cret");
    }

    #[test]
    fn empty_or_unset_variables_give_no_provider() {
        let env = aixrun::Env::from_pairs([("EMPTY", " ")]);
        assert!(StaticBearer::from_env(&env, "EMPTY").is_none());
        assert!(StaticBearer::from_env(&env, "UNSET").is_none());
        assert!(StaticBearer::new("bad\ntoken").is_none());
    }
}
