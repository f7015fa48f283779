//! One connection's lifetime limits: until its first request (silent sockets, half-sent
//! prefaces, slow TLS), while an HTTP/1 head arrives, and while nothing is in flight (idle).
//! The listener's connection task asks [`ConnState`] when to wake and what to do then; the IO
//! wrapper and the response-body guard record what the connection is doing, cheaply.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::config::ConnectionTimeouts;

/// On drain, how long a connection that has not delivered a request yet may take to do so.
/// A client that connected before the signal has usually written its request already; hyper
/// would otherwise drop those unread bytes and reset the connection.
pub(crate) const FIRST_REQUEST_WINDOW: Duration = Duration::from_secs(1);
/// After an idle or over-limit connection is told to close, how long it may take.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);
/// Stands for "no deadline": a select needs some instant to sleep until.
pub(crate) const NO_DEADLINE: Duration = Duration::from_secs(86_400 * 365);

/// What the connection task should do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing yet.
    Wait,
    /// Drop the connection at once (nothing in flight to lose).
    Close(&'static str),
    /// Start a graceful shutdown: in-flight requests finish, HTTP/2 gets GOAWAY; then allow
    /// `within` (None: as long as the drain allows).
    Shutdown {
        why: &'static str,
        within: Option<Duration>,
    },
}

/// Shared by the connection task, its IO wrapper and its requests' body guards. Times are
/// milliseconds since the connection started, plus one (0 means "not set").
pub(crate) struct ConnState {
    started: Instant,
    /// Beyond `MAX_CONNECTIONS`: answer the first request with 503, then close.
    pub(crate) over_limit: bool,
    first_seen: AtomicBool,
    http2: AtomicBool,
    in_flight: AtomicUsize,
    /// When the first byte of a not-yet-complete HTTP/1 head arrived.
    head_started: AtomicU64,
    /// When the last in-flight request ended.
    idle_since: AtomicU64,
    /// Wakes the connection task on a transition (request started or ended, a head began).
    pub(crate) changed: Notify,
}

impl ConnState {
    pub(crate) fn new(over_limit: bool) -> Self {
        Self {
            started: Instant::now(),
            over_limit,
            first_seen: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            head_started: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn stamp(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn at(&self, stamp: u64) -> Option<Instant> {
        (stamp != 0).then(|| self.started + Duration::from_millis(stamp - 1))
    }

    /// A request's head arrived: it is in flight until the returned guard drops.
    pub(crate) fn request_started(self: &Arc<Self>, http2: bool) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Relaxed);
        if !self.first_seen.swap(true, Ordering::AcqRel) {
            self.http2.store(http2, Ordering::Relaxed);
            self.changed.notify_one();
        }
        InFlight {
            state: self.clone(),
        }
    }

    /// Bytes arrived. Only the first byte of an HTTP/1 head while nothing is in flight
    /// matters (HTTP/2 peers send pings and settings at any time).
    fn bytes_read(&self) {
        if self.first_seen.load(Ordering::Relaxed)
            && !self.http2.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(self.stamp(), Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// When the connection task should look again.
    pub(crate) fn next_deadline(
        &self,
        timeouts: &ConnectionTimeouts,
        drain_since: Option<Instant>,
        now: Instant,
    ) -> Instant {
        if !self.first_seen.load(Ordering::Acquire) {
            let first = self.started + timeouts.first_request;
            return match drain_since {
                Some(d) => first.min(d + FIRST_REQUEST_WINDOW),
                None => first,
            };
        }
        if self.over_limit || drain_since.is_some() {
            return now;
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return now + NO_DEADLINE;
        }
        if let Some(head) = self.at(self.head_started.load(Ordering::Relaxed)) {
            return head + timeouts.header_read;
        }
        let idle = self
            .at(self.idle_since.load(Ordering::Relaxed))
            .unwrap_or(self.started);
        idle + timeouts.idle
    }

    /// What to do at `now`.
    pub(crate) fn decide(
        &self,
        timeouts: &ConnectionTimeouts,
        drain_since: Option<Instant>,
        now: Instant,
    ) -> Decision {
        if !self.first_seen.load(Ordering::Acquire) {
            if drain_since.is_some_and(|d| now >= d + FIRST_REQUEST_WINDOW) {
                return Decision::Shutdown {
                    why: "draining",
                    within: None,
                };
            }
            if now >= self.started + timeouts.first_request {
                return Decision::Close("no request within FIRST_REQUEST_TIMEOUT");
            }
            return Decision::Wait;
        }
        if self.over_limit {
            return Decision::Shutdown {
                why: "over MAX_CONNECTIONS",
                within: Some(timeouts.first_request),
            };
        }
        if drain_since.is_some() {
            return Decision::Shutdown {
                why: "draining",
                within: None,
            };
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Decision::Wait;
        }
        if let Some(head) = self.at(self.head_started.load(Ordering::Relaxed)) {
            if now >= head + timeouts.header_read {
                return Decision::Close("request head not complete within HEADER_READ_TIMEOUT");
            }
            return Decision::Wait;
        }
        let idle = self
            .at(self.idle_since.load(Ordering::Relaxed))
            .unwrap_or(self.started);
        if now >= idle + timeouts.idle {
            return Decision::Shutdown {
                why: "idle for IDLE_TIMEOUT",
                within: Some(CLOSE_WITHIN),
            };
        }
        Decision::Wait
    }
}

/// A request in flight on its connection; dropping it (the response body ended or was
/// dropped) may start the idle clock.
pub(crate) struct InFlight {
    state: Arc<ConnState>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let state = &self.state;
        state.idle_since.store(state.stamp(), Ordering::Relaxed);
        if state.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            state.changed.notify_one();
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until it ends.
    pub(crate) struct InFlightBody<B> {
        #[pin]
        pub(crate) inner: B,
        pub(crate) _guard: InFlight,
    }
}

impl<B: Body<Data = Bytes>> Body for InFlightBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The connection's socket (or TLS stream), noting reads for [`ConnState`].
    pub(crate) struct WatchedIo<IO> {
        #[pin]
        pub(crate) inner: IO,
        pub(crate) state: Arc<ConnState>,
    }
}

impl<IO: AsyncRead> AsyncRead for WatchedIo<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.bytes_read();
        }
        polled
    }
}

impl<IO: AsyncWrite> AsyncWrite for WatchedIo<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> ConnectionTimeouts {
        ConnectionTimeouts {
            first_request: Duration::from_secs(10),
            header_read: Duration::from_secs(5),
            idle: Duration::from_secs(60),
            h2_keepalive_interval: None,
            h2_keepalive_timeout: Duration::from_secs(20),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_at_the_first_request_deadline() {
        let state = ConnState::new(false);
        let t = timeouts();
        let now = Instant::now();
        assert_eq!(state.decide(&t, None, now), Decision::Wait);
        assert_eq!(state.next_deadline(&t, None, now), now + t.first_request);
        assert!(matches!(
            state.decide(&t, None, now + t.first_request),
            Decision::Close(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_starts_when_the_last_response_ends_and_a_head_has_its_own_clock() {
        let state = Arc::new(ConnState::new(false));
        let t = timeouts();
        let guard = state.request_started(false);
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(state.decide(&t, None, Instant::now()), Decision::Wait);
        drop(guard);
        let idle_from = Instant::now();
        assert!(matches!(
            state.decide(&t, None, idle_from + t.idle),
            Decision::Shutdown { .. }
        ));
        // A head begins: the header clock, not the idle one, decides.
        state.bytes_read();
        let head = Instant::now();
        assert_eq!(state.next_deadline(&t, None, head), head + t.header_read);
        assert!(matches!(
            state.decide(&t, None, head + t.header_read),
            Decision::Close(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn http2_reads_never_start_a_header_clock() {
        let state = Arc::new(ConnState::new(false));
        drop(state.request_started(true));
        state.bytes_read();
        assert_eq!(state.head_started.load(Ordering::Relaxed), 0);
    }
}
