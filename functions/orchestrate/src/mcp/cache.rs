//! [`CachedServer`]: a server whose tool list is kept for the `ttlMs` it announced (else a
//! default), so that every agent step does not list the tools again. Concurrent callers of an
//! expired list share one request.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{Arguments, McpError, McpServer, ToolList, ToolResult};

/// How long a list stays fresh when the server gives no `ttlMs`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// `inner` with its tool list cached.
pub struct CachedServer<S: ?Sized> {
    default_ttl: Duration,
    cached: Mutex<Option<(ToolList, Instant)>>,
    inner: Arc<S>,
}

impl<S: McpServer + ?Sized> CachedServer<S> {
    /// Caches `inner`'s list for its `ttlMs`, else for `default_ttl`.
    pub fn new(inner: Arc<S>, default_ttl: Duration) -> Self {
        Self {
            default_ttl,
            cached: Mutex::new(None),
            inner,
        }
    }

    /// Drops the cached list (say, on `notifications/tools/list_changed`).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

#[async_trait::async_trait]
impl<S: McpServer + ?Sized> McpServer for CachedServer<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn list_tools(&self) -> Result<ToolList, McpError> {
        // Held across the request: callers arriving meanwhile wait for its answer instead of
        // sending their own.
        let mut cached = self.cached.lock().await;
        if let Some((list, expires)) = cached.as_ref()
            && Instant::now() < *expires
        {
            return Ok(list.clone());
        }
        let list = self.inner.list_tools().await?;
        let ttl = list.ttl.unwrap_or(self.default_ttl);
        // A huge ttl (Duration::MAX) saturates instead of overflowing.
        let expires = Instant::now()
            .checked_add(ttl)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        *cached = Some((list.clone(), expires));
        Ok(list)
    }

    async fn call_tool(
        &self,
        tool: &str,
        arguments: Arguments,
        timeout: Duration,
    ) -> Result<ToolResult, McpError> {
        self.inner.call_tool(tool, arguments, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::mcp::ToolInfo;

    /// Counts listings; announces `ttl`.
    struct Counting {
        lists: AtomicUsize,
        ttl: Option<Duration>,
    }

    #[async_trait::async_trait]
    impl McpServer for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        async fn list_tools(&self) -> Result<ToolList, McpError> {
            self.lists.fetch_add(1, Ordering::SeqCst);
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
        ) -> Result<ToolResult, McpError> {
            Ok(ToolResult::default())
        }
    }

    // Paused clock: time moves only when the test advances it, so no real waiting and no
    // timing assertion.
    #[tokio::test(start_paused = true)]
    async fn ttl_from_the_server_wins_over_the_default() {
        let inner = Arc::new(Counting {
            lists: AtomicUsize::new(0),
            ttl: Some(Duration::from_secs(10)),
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
            lists: AtomicUsize::new(0),
            ttl: None,
        });
        let cached = CachedServer::new(inner.clone(), Duration::from_secs(60));
        cached.list_tools().await.unwrap();
        tokio::time::advance(Duration::from_secs(59)).await;
        cached.list_tools().await.unwrap();
        assert_eq!(inner.lists.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        cached.list_tools().await.unwrap();
        cached.invalidate().await;
        cached.list_tools().await.unwrap();
        assert_eq!(inner.lists.load(Ordering::SeqCst), 3);
    }
}
