//! Outgoing credentials: an [`AuthProvider`] gives the `Authorization` header before each
//! request (a fixed bearer token, [`StaticBearer`], or a Google ID token minted for the target's
//! audience, [`crate::gcp::idtoken::IdTokenAuth`]), and [`with_refresh`] is the one rule every
//! client follows when the target refuses it: a 401 (gRPC UNAUTHENTICATED) drops the cached
//! token, one new one is minted, and the request is sent once more. Streamable HTTP and gRPC MCP
//! calls and model calls all go through it.
//!
//! Only requests that can be sent again safely are retried: the refusal is an answer to the
//! request head, before any of the response's body was read or passed on, so nothing was
//! processed and nothing was streamed to the caller.

use std::fmt;
use std::future::Future;

use http::HeaderValue;

use crate::config::Env;

/// Gives the `Authorization` header value for requests to one target, or `None` to send none.
#[async_trait::async_trait]
pub trait AuthProvider: Send + Sync + fmt::Debug {
    /// The header value, marked sensitive so that no log or `Debug` prints it.
    async fn header(&self) -> Option<HeaderValue>;

    /// The target refused the credentials (401, UNAUTHENTICATED): drop any cached token so
    /// that the next [`AuthProvider::header`] gets a fresh one.
    async fn refused(&self) {}

    /// Whether [`AuthProvider::refused`] can change what the next header is (a minted token:
    /// yes; a fixed one: no, so a refusal is not worth a second request).
    fn refreshes(&self) -> bool {
        false
    }
}

/// Sends a request with `auth`'s header (`attempt` gets it, or `None`), and when `refused`
/// says the answer is a refusal of the credentials and the provider can mint a new token:
/// drops the token, gets a fresh one and sends once more, returning the second answer. Without
/// a provider it is one plain attempt.
///
/// `attempt` must not have consumed anything the retry needs (it gets called twice at most),
/// and `refused` must only accept answers that came back before any response body was used.
pub async fn with_refresh<T, F, Fut>(
    auth: Option<&dyn AuthProvider>,
    mut attempt: F,
    refused: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut(Option<HeaderValue>) -> Fut,
    Fut: Future<Output = T>,
{
    let Some(auth) = auth else {
        return attempt(None).await;
    };
    let first = attempt(auth.header().await).await;
    if !auth.refreshes() || !refused(&first) {
        return first;
    }
    tracing::debug!(provider = ?auth, "credentials refused; minting a new token and retrying once");
    drop(first);
    auth.refused().await;
    attempt(auth.header().await).await
}

/// The same bearer token on every request, e.g. from an environment variable.
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
    pub fn from_env(env: &Env, var: &str) -> Option<Self> {
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
    async fn header(&self) -> Option<HeaderValue> {
        Some(self.value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn static_bearer_is_sensitive_and_never_printed() {
        let auth = StaticBearer::new("s3cret").unwrap();
        assert!(!format!("{auth:?}").contains("s3cret"));
        let header = auth.header().await.unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("s3cret"));
        assert_eq!(header.to_str().unwrap(), "Bearer s3cret");
    }

    #[test]
    fn empty_or_unset_variables_give_no_provider() {
        let env = Env::from_pairs([("EMPTY", " ")]);
        assert!(StaticBearer::from_env(&env, "EMPTY").is_none());
        assert!(StaticBearer::from_env(&env, "UNSET").is_none());
        assert!(StaticBearer::new("bad\ntoken").is_none());
    }

    /// Tokens `t1`, `t2`, ... ; `refused` counts the drops.
    #[derive(Debug, Default)]
    struct Minting {
        minted: AtomicUsize,
        dropped: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl AuthProvider for Minting {
        async fn header(&self) -> Option<HeaderValue> {
            let n = self.minted.fetch_add(1, Ordering::SeqCst) + 1;
            HeaderValue::try_from(format!("Bearer t{n}")).ok()
        }
        async fn refused(&self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
        fn refreshes(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn a_refusal_mints_once_and_retries_once() {
        let minting = Minting::default();
        let auth: &dyn AuthProvider = &minting;
        let sent = Mutex::new(Vec::new());
        // The target refuses every token: two attempts, not more.
        let status = with_refresh(
            Some(auth),
            |h| {
                sent.lock()
                    .unwrap()
                    .push(h.unwrap().to_str().unwrap().to_owned());
                async { 401 }
            },
            |s| *s == 401,
        )
        .await;
        assert_eq!(status, 401);
        assert_eq!(*sent.lock().unwrap(), ["Bearer t1", "Bearer t2"]);
        assert_eq!(minting.dropped.load(Ordering::SeqCst), 1);
        // Accepted at once: one attempt, nothing dropped.
        let status = with_refresh(Some(auth), |_| async { 200 }, |s| *s == 401).await;
        assert_eq!(status, 200);
        assert_eq!(minting.dropped.load(Ordering::SeqCst), 1);
        // A fixed token is not sent twice.
        let fixed = StaticBearer::new("k").unwrap();
        let tries = AtomicUsize::new(0);
        with_refresh(
            Some(&fixed as &dyn AuthProvider),
            |_| {
                tries.fetch_add(1, Ordering::SeqCst);
                async { 401 }
            },
            |s| *s == 401,
        )
        .await;
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
