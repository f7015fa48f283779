//! [`CachedServer`]: a server whose tool list is kept for the `ttlMs` it announced (else a
//! default), so that every agent step does not list the tools again. Concurrent callers of an
//! expired list share one request, and its answer: a failure reaches every caller that waited
//! for it at once, instead of each retrying in turn behind a lock while its run's budget runs
//! down.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, WeakShared};
use tokio::time::Instant;

use super::{Arguments, McpError, McpServer, ToolList, ToolResult};

/// How long a list stays fresh when the server gives no `ttlMs`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

type ListingFuture = BoxFuture<'static, Result<ToolList, McpError>>;
type Listing = Shared<ListingFuture>;

/// `inner` with its tool list cached.
pub struct CachedServer<S: ?Sized> {
    default_ttl: Duration,
    state: Mutex<State>,
    inner: Arc<S>,
}

#[derive(Default)]
struct State {
    fresh: Option<(ToolList, Instant)>,
    /// The listing under way. Weak: when every caller waiting for it has gone (their runs
    /// cancelled), the request is dropped with them, and the next caller starts a new one
    /// rather than resuming an abandoned one.
    listing: Option<WeakShared<ListingFuture>>,
}

impl<S: McpServer + ?Sized + 'static> CachedServer<S> {
    /// Caches `inner`'s list for its `ttlMs`, else for `default_ttl`.
    pub fn new(inner: Arc<S>, default_ttl: Duration) -> Self {
        Self {
            default_ttl,
            state: Mutex::new(State::default()),
            inner,
        }
    }

    /// Drops the cached list (say, on `notifications/tools/list_changed`).
    pub fn invalidate(&self) {
        self.state().fresh = None;
    }

    /// Never held across an await, so a poisoned lock can only mean a panic between two
    /// plain assignments: the state is still whole.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fresh list, else the listing to wait for (joining the one under way, if any).
    fn fresh_or_listing(&self) -> Result<ToolList, Listing> {
        let mut state = self.state();
        if let Some((list, expires)) = &state.fresh
            && Instant::now() < *expires
        {
            return Ok(list.clone());
        }
        if let Some(listing) = state.listing.as_ref().and_then(WeakShared::upgrade) {
            return Err(listing);
        }
        let inner = Arc::clone(&self.inner);
        let listing = async move { inner.list_tools().await }.boxed().shared();
        state.listing = listing.downgrade();
        Err(listing)
    }

    /// Records a finished listing, once: the first caller to see it clears it and keeps the
    /// list; an error is not kept, so the next caller asks again.
    fn finish(&self, listing: &Listing, result: &Result<ToolList, McpError>) {
        let mut state = self.state();
        let current = state
            .listing
            .as_ref()
            .and_then(WeakShared::upgrade)
            .is_some_and(|l| l.ptr_eq(listing));
        if !current {
            return;
        }
        state.listing = None;
        if let Ok(list) = result {
            let ttl = list.ttl.unwrap_or(self.default_ttl);
            // A huge ttl (Duration::MAX) saturates instead of overflowing.
            let expires = Instant::now()
                .checked_add(ttl)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
            state.fresh = Some((list.clone(), expires));
        }
    }
}

#[async_trait::async_trait]
impl<S: McpServer + ?Sized + 'static> McpServer for CachedServer<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn list_tools(&self) -> Result<ToolList, McpError> {
        let listing = match self.fresh_or_listing() {
            Ok(list) => return Ok(list),
            Err(listing) => listing,
        };
        let result = listing.clone().await;
        self.finish(&listing, &result);
        result
    }

    async fn call_tool(
        &self,
        tool: &str,
        arguments: Arguments,
        timeout: Duration,
        idempotency_key: Option<&str>,
    ) -> Result<ToolResult, McpError> {
        self.inner
            .call_tool(tool, arguments, timeout, idempotency_key)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::mcp::ToolInfo;

    /// Counts listings; each takes `delay`, then announces `ttl` or, with `fail`, fails.
    #[derive(Default)]
    struct Counting {
        lists: AtomicUsize,
        ttl: Option<Duration>,
        delay: Duration,
        fail: bool,
    }

    #[async_trait::async_trait]
    impl McpServer for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        async fn list_tools(&self) -> Result<ToolList, McpError> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if self.fail {
                return Err(McpError::Transport {
                    server: "counting".into(),
                    problem: "connection refused".into(),
                });
            }
            let tools: Arc<[ToolInfo]> = Arc::new([]);
            Ok(ToolList {
                tools,
                ttl: self.ttl,
            })
        }
        async fn call_tool(
            &self,
            _: &str,
            _: Arguments,
            _: Duration,
            _: Option<&str>,
        ) -> Result<ToolResult, McpError> {
            Ok(ToolResult::default())
        }
    }

    // Paused clock: time moves only when the test advances it, so no real waiting and no
    // timing assertion.
    #[tokio::test(start_paused = true)]
    async fn ttl_from_the_server_wins_over_the_default() {
        let inner = Arc::new(Counting {
            ttl: Some(Duration::from_secs(10)),
            ..Counting::default()
        });
        let cached = CachedServer::new(inner.clone(), Duration::from_secs(1000));
        cached.list_tools().await.unwrap();
        cached.list_tools().await.unwrap();
        assert_eq!(inner.lists.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(11)).await;
        cached.list_tools().await.unwrap();
        assert_eq!(inner.lists.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn default_ttl_applies_without_one() {
        let inner = Arc::new(Counting {
            ..Counting::default()
        });
        let cached = CachedServer::new(inner.clone(), Duration::from_secs(60));
        cached.list_tools().await.unwrap();
        tokio::time::advance(Duration::from_secs(59)).await;
        cached.list_tools().await.unwrap();
        assert_eq!(inner.lists.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        cached.list_tools().await.unwrap();
        cached.invalidate();
        cached.list_tools().await.unwrap();
        assert_eq!(inner.lists.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn callers_of_a_failing_listing_share_its_error() {
        let inner = Arc::new(Counting {
            delay: Duration::from_secs(5),
            fail: true,
            ..Counting::default()
        });
        let cached = CachedServer::new(inner.clone(), DEFAULT_TTL);
        let results = futures_util::future::join_all((0..5).map(|_| cached.list_tools())).await;
        assert!(results.iter().all(Result::is_err), "{results:?}");
        assert_eq!(inner.lists.load(Ordering::SeqCst), 1);
        // The error is not kept: the next caller asks again.
        cached.list_tools().await.unwrap_err();
        assert_eq!(inner.lists.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_listing_is_not_resumed() {
        let inner = Arc::new(Counting {
            delay: Duration::from_secs(5),
            ..Counting::default()
        });
        let cached = CachedServer::new(inner.clone(), DEFAULT_TTL);
        // The only caller gives up (its run cancelled): the listing is dropped with it.
        tokio::time::timeout(Duration::from_secs(1), cached.list_tools())
            .await
            .unwrap_err();
        cached.list_tools().await.unwrap();
        assert_eq!(inner.lists.load(Ordering::SeqCst), 2);
        cached.list_tools().await.unwrap();
        assert_eq!(inner.lists.load(Ordering::SeqCst), 2);
    }
}
