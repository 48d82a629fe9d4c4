//! Accepting connections and keeping them from holding the service hostage.
//!
//! `axum::serve` holds a connection for as long as its client keeps it open, and accepts every
//! connection the operating system hands over: a client that opens sockets and sends half a
//! request on each ("slowloris") exhausts the process's descriptors until `/healthz` stops
//! answering. This loop serves the same router with hyper's HTTP/1.1 connection directly and adds
//! what a public service needs:
//!
//! - **A cap on open connections** ([`Limits::max_connections`]). Beyond it, a new connection
//!   gets a short `503 too_many_connections` (written only if the socket can take it at once) and
//!   is closed, before any of its bytes are read.
//! - **A request-head timeout** ([`Limits::header_timeout`]): a client must send a complete
//!   request head within this long of connecting, or of its first byte after a previous answer.
//! - **An idle timeout** ([`Limits::idle_timeout`]) for keep-alive connections between requests.
//! - **A stall limit** ([`Limits::request_timeout`]): a request still in flight after this long
//!   (a client that stopped reading its answer) loses its connection. Handlers themselves are cut
//!   off earlier, by the router's timeout layer.
//!
//! hyper's own `header_read_timeout` starts when it waits for a head, so it cannot tell an idle
//! keep-alive connection from a slow head; the timers here watch the connection from outside:
//! the socket marks when bytes arrive, the service marks when a request starts and when its answer
//! has been written (its body dropped), and one task per connection sleeps until the nearest
//! deadline.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::error::{self, ErrorCode};
use crate::metrics::Metrics;

/// How many connections the service holds and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; more are refused with `503` as they arrive.
    pub max_connections: usize,
    /// From a connection's start, or from the first byte of a later request, to the end of the
    /// request's head.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A request whose answer is not written after this long loses its connection.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: default_max_connections(descriptor_limit()),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// Descriptors kept for what is not a client connection: the database and its WAL, the lock,
/// webhook deliveries, the background filter build, logs.
const RESERVED_DESCRIPTORS: u64 = 128;

/// The default cap: what the process's descriptor limit leaves after the reserve, at most 10,000
/// (beyond that, memory per connection matters more than descriptors).
pub fn default_max_connections(descriptor_limit: Option<u64>) -> usize {
    let limit = descriptor_limit.unwrap_or(1024);
    limit.saturating_sub(RESERVED_DESCRIPTORS).clamp(16, 10_000) as usize
}

/// The process's soft limit on open descriptors, if the platform says.
pub fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft descriptor limit to the hard one, as servers commonly do at start (the soft
/// limit of 1,024 that many systems set is a leftover of `select`, which nothing here uses).
/// Returns the limit now in force.
pub fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
            && current < maximum
        {
            let raised = rustix::process::Rlimit { current: Some(maximum), maximum: Some(maximum) };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return Some(maximum);
            }
        }
        limit.current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish (idle connections close at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors (or memory): wait for connections to close rather than spin.
                // Errors about one connection (reset before accept) need no pause.
                if !is_connection_error(&error) {
                    if last_accept_error.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                        tracing::error!(%error, "cannot accept connections; retrying");
                        last_accept_error = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.connections_refused.inc();
            refuse(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stop = stop_rx.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // Dropped however the task ends (a handler's panic unwinds through it too).
            let _open = OpenConnection::new(&metrics);
            serve_connection(stream, peer, router, limits, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task holds a permit: all permits back means all connections are done.
    let _ = permits.acquire_many(limits.max_connections.max(1) as u32).await;
    Ok(())
}

/// Counts a connection in `leadscore_http_connections` while it lives.
struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    fn new(metrics: &Arc<Metrics>) -> OpenConnection {
        metrics.connections.inc();
        OpenConnection(metrics.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// The whole answer to a connection over the cap, written once: a flood of connections is when
/// it is sent most.
static REFUSAL: LazyLock<String> = LazyLock::new(|| {
    let code = ErrorCode::TooManyConnections;
    let status = code.status();
    let body = error::body_text(code, "the service holds as many connections as it may; retry shortly");
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        status.as_str(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    )
});

/// Refused connections being closed at once, at most: each waits a moment (below) before it
/// closes, and a flood must not hold more descriptors that way than this.
const CLOSING_AT_ONCE: usize = 64;
static CLOSING: AtomicUsize = AtomicUsize::new(0);

/// Answers a connection over the cap with a `503`, written only if the socket takes it without
/// waiting. Closing a socket whose client has sent bytes the server has not read makes the
/// system send a reset, which loses the answer; so the socket is shut for writing and its
/// input read (100 ms, 16 KB at most) before it closes, for a bounded number at once.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(REFUSAL.as_bytes());
    if CLOSING.fetch_add(1, Ordering::AcqRel) >= CLOSING_AT_ONCE {
        CLOSING.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        let mut buffer = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(100), async {
            for _ in 0..4 {
                match tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        CLOSING.fetch_sub(1, Ordering::AcqRel);
    });
}

/// What a connection's socket and service tell its watcher, in milliseconds since it opened.
#[derive(Default)]
struct Activity {
    /// Requests whose answers are not yet written.
    in_flight: AtomicUsize,
    /// When the last answer was written (or the connection opened).
    idle_since: AtomicU64,
    /// When the newest request started.
    request_since: AtomicU64,
    /// Whether bytes arrived since `idle_since` (a request head has begun)...
    head_begun: AtomicBool,
    /// ...and when the first of them did.
    head_since: AtomicU64,
    /// Whether bytes arrived while a request was in flight (a pipelined head has begun).
    bytes_during_request: AtomicBool,
    opened: std::sync::OnceLock<Instant>,
    /// Wakes the watcher when a deadline moves: its sleep was computed from the state before.
    changed: tokio::sync::Notify,
}

impl Activity {
    fn now(&self) -> u64 {
        self.opened.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    fn bytes_arrived(&self) {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            self.bytes_during_request.store(true, Ordering::Release);
        } else if !self.head_begun.load(Ordering::Acquire) {
            self.head_since.store(self.now(), Ordering::Release);
            self.head_begun.store(true, Ordering::Release);
            self.changed.notify_one();
        }
    }

    fn request_started(&self) {
        self.request_since.store(self.now(), Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    fn answer_written(&self) {
        let now = self.now();
        // Bytes read while the request was in flight are the start of the next head: its time
        // counts from now.
        let pipelined = self.bytes_during_request.swap(false, Ordering::AcqRel);
        self.head_since.store(now, Ordering::Release);
        self.head_begun.store(pipelined, Ordering::Release);
        self.idle_since.store(now, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// `None` when the connection has overstayed; otherwise how long until the next check.
    fn next_check(&self, limits: &Limits, first_request: bool) -> Option<Duration> {
        let now = self.now();
        let (since, limit) = if self.in_flight.load(Ordering::Acquire) > 0 {
            (self.request_since.load(Ordering::Acquire), limits.request_timeout)
        } else if self.head_begun.load(Ordering::Acquire) {
            // A head begun on a kept-alive connection counts from its first byte; the first
            // request's counts from the connection's start.
            let since = if first_request { 0 } else { self.head_since.load(Ordering::Acquire) };
            (since, limits.header_timeout)
        } else if first_request {
            (0, limits.header_timeout)
        } else {
            (self.idle_since.load(Ordering::Acquire), limits.idle_timeout)
        };
        let deadline = since.saturating_add(limit.as_millis() as u64);
        (now < deadline).then(|| Duration::from_millis(deadline - now))
    }
}

/// Serves one connection, closing it when it overstays a limit or the service stops.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::default());
    activity.now();
    let served = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(WatchedStream { inner: stream, activity: activity.clone() });
    let service = {
        let activity = activity.clone();
        let served = served.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            activity.request_started();
            served.fetch_add(1, Ordering::AcqRel);
            let guard = AnswerGuard(activity.clone());
            let router = router.clone();
            async move {
                let mut request = request.map(Body::new);
                // The client's address, for handlers that slow down guessing per address.
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                let response = router.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| Body::new(GuardedBody { body, _guard: guard })))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The timers here replace hyper's, which would otherwise close idle keep-alive connections
    // at the head timeout; hyper needs a timer all the same.
    builder.timer(TokioTimer::new()).header_read_timeout(None).max_buf_size(256 * 1024);
    let mut connection = std::pin::pin!(builder.serve_connection(io, service));
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        let first_request = served.load(Ordering::Acquire) == 0;
        let Some(wait) = activity.next_check(&limits, first_request) else {
            tracing::debug!(%peer, "connection closed: it overstayed a time limit");
            return;
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow() {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep(wait) => {}
            () = activity.changed.notified() => {}
        }
    }
}

/// Marks the answer written when hyper drops its body.
struct AnswerGuard(Arc<Activity>);

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        self.0.answer_written();
    }
}

struct GuardedBody {
    body: Body,
    _guard: AnswerGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A socket that tells its connection's [`Activity`] when bytes arrive.
struct WatchedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 10,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            request_timeout: Duration::from_secs(120),
        }
    }

    #[test]
    fn the_default_cap_leaves_descriptors_for_the_database_and_webhooks() {
        assert_eq!(default_max_connections(Some(1024)), 896);
        assert_eq!(default_max_connections(Some(100)), 16);
        assert_eq!(default_max_connections(Some(1 << 20)), 10_000);
        assert_eq!(default_max_connections(None), 896);
    }

    #[test]
    fn a_new_connection_has_the_head_timeout_and_a_kept_alive_one_the_idle_timeout() {
        let activity = Activity::default();
        activity.now();
        let wait = activity.next_check(&limits(), true).unwrap();
        assert!(wait <= Duration::from_secs(10) && wait > Duration::from_secs(9), "{wait:?}");
        activity.request_started();
        let wait = activity.next_check(&limits(), false).unwrap();
        assert!(wait > Duration::from_secs(100), "{wait:?}");
        activity.answer_written();
        let wait = activity.next_check(&limits(), false).unwrap();
        assert!(wait > Duration::from_secs(70), "{wait:?}");
        activity.bytes_arrived();
        let wait = activity.next_check(&limits(), false).unwrap();
        assert!(wait <= Duration::from_secs(10), "{wait:?}");
    }

    #[test]
    fn a_connection_past_its_deadline_is_closed() {
        let activity = Activity::default();
        activity.now();
        let none = Limits { header_timeout: Duration::ZERO, ..limits() };
        assert_eq!(activity.next_check(&none, true), None);
    }
}
