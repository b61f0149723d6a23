//! One admin API connection, with every wait bounded: the TLS handshake, the
//! first request (HTTP/1 and HTTP/2 alike: a connection that completes TLS and
//! then stays silent, or sends only an HTTP/2 preface, is closed), and the idle
//! time between requests.
//!
//! hyper's HTTP/1 `header_read_timeout` does not start before the auto builder
//! has decided between HTTP/1 and HTTP/2, and HTTP/2 has no first-request
//! deadline at all (keep-alive pings are answered by any idle client), so a
//! watchdog tracks the requests in flight and closes the connection when none
//! has started within the deadline.
//!
//! Every connection ends with a TLS close_notify (see [`SharedTls`]), whatever
//! ended it, so a client reusing a kept-alive connection can tell a closed one
//! from a broken one.

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// After the watchdog asks a connection to close, it gets this long to finish
/// what it is writing before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Sending close_notify and draining what the peer still sends, at the end of
/// a connection, take at most this long: a peer that reads nothing cannot hold
/// the task.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// Deadlines of an API connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnSettings {
    /// The TLS handshake must complete within this (`api.handshake_timeout_secs`).
    pub handshake_timeout: Duration,
    /// The first request's headers must arrive within this after the handshake
    /// (`api.header_read_timeout_secs`).
    pub header_read_timeout: Duration,
    /// A connection without a request in flight for this long is closed
    /// (`api.idle_timeout_secs`).
    pub idle_timeout: Duration,
    /// A peer that takes nothing of an answer for this long (the socket stays
    /// full) is cut off (`api.send_timeout_secs`): an answer in flight is not
    /// idleness, so without this a client that never reads would hold its
    /// connection for ever.
    pub send_timeout: Duration,
}

impl Default for ConnSettings {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
        }
    }
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    served_any: AtomicBool,
    last_end: Mutex<Instant>,
    changed: Notify,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            served_any: AtomicBool::new(false),
            last_end: Mutex::new(Instant::now()),
            changed: Notify::new(),
        })
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served_any.store(true, Ordering::Release);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// Resolves when the connection has been without a request for too long:
    /// `first` before any request, `idle` after one.
    async fn expired(&self, first: Duration, idle: Duration) {
        loop {
            // A permit stored by `notify_one` between this read and the wait
            // below is not lost: the wait returns at once.
            let notified = self.changed.notified();
            if self.in_flight.load(Ordering::Acquire) > 0 {
                notified.await;
                continue;
            }
            let last = *self.last_end.lock().unwrap_or_else(PoisonError::into_inner);
            let limit = if self.served_any.load(Ordering::Acquire) {
                idle
            } else {
                first
            };
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = notified => {}
            }
        }
    }
}

/// A request in flight: from its headers to the end of its response body.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request counted as in flight until it has
/// been sent (or dropped), so a long download is not taken for idleness.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The TLS stream of a connection, shared by hyper (which reads and writes it)
/// and [`serve_one`] (which closes it). hyper drops its IO without a TLS
/// close_notify when a connection ends by an error (its header-read timeout
/// among them) or when its future is dropped (the watchdog, node shutdown);
/// clients then see an unclean EOF ("EOF occurred in violation of protocol")
/// on a connection they may have meant to reuse. Keeping a handle lets
/// `serve_one` end every connection the same way once hyper is done with it.
#[derive(Clone)]
struct SharedTls(Arc<Mutex<TlsStream<TcpStream>>>, Arc<WriteStall>);

/// Since when writes have been refused by a full socket (`None`: they go through).
#[derive(Default)]
struct WriteStall(Mutex<Option<Instant>>);

impl WriteStall {
    /// Notes the outcome of a write attempt.
    fn note<T>(&self, r: &Poll<T>) {
        let mut since = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match r {
            Poll::Pending => {
                since.get_or_insert_with(Instant::now);
            }
            Poll::Ready(_) => *since = None,
        }
    }

    /// Resolves once writes have been blocked for `limit` without a break.
    async fn exceeded(&self, limit: Duration) {
        loop {
            let since = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let wake = match since {
                Some(t) if t.elapsed() >= limit => return,
                Some(t) => t + limit,
                // Checked again a few times per limit: a stall starts unannounced.
                None => Instant::now() + (limit / 4).max(Duration::from_millis(100)),
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

impl SharedTls {
    fn new(tls: TlsStream<TcpStream>) -> Self {
        Self(Arc::new(Mutex::new(tls)), Arc::new(WriteStall::default()))
    }

    /// Runs `f` on the stream. The lock is only held within one poll (hyper
    /// and `close` never poll at the same time), so it is never contended.
    fn with<R>(&self, f: impl FnOnce(Pin<&mut TlsStream<TcpStream>>) -> R) -> R {
        let mut tls = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(Pin::new(&mut *tls))
    }

    /// Ends the connection cleanly, within [`CLOSE_LIMIT`]: close_notify (once;
    /// hyper may have sent it already) and the TCP write side, then what the
    /// peer still sends is read and dropped until it closes too. A socket closed
    /// with unread data is reset, and a reset can destroy the last answer and the
    /// close_notify before the peer has read them.
    async fn close(&self, peer: SocketAddr) {
        let ended = tokio::time::timeout(CLOSE_LIMIT, async {
            poll_fn(|cx| self.with(|tls| tls.poll_shutdown(cx))).await?;
            let mut sink = [0u8; 1024];
            let mut this = self.clone();
            while this.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
        match ended {
            Ok(Ok(())) => {}
            // The peer may have gone already: nothing more to do.
            Ok(Err(e)) => tracing::trace!(%peer, error = %e, "API connection close"),
            Err(_) => tracing::debug!(%peer, "API connection close: peer did not close within the limit"),
        }
    }
}

impl AsyncRead for SharedTls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.with(|tls| tls.poll_read(cx, buf))
    }
}

impl AsyncWrite for SharedTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = self.with(|tls| tls.poll_write(cx, buf));
        self.1.note(&r);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = self.with(|tls| tls.poll_write_vectored(cx, bufs));
        self.1.note(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.with(|tls| tls.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = self.with(|tls| tls.poll_flush(cx));
        self.1.note(&r);
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|tls| tls.poll_shutdown(cx))
    }
}

/// Serves one accepted connection until it ends, a deadline passes or `shutdown`.
pub(super) async fn serve_one(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    settings: ConnSettings,
    shutdown: CancellationToken,
) {
    let tls = match tokio::time::timeout(settings.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "API TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "API TLS handshake timed out"),
    };
    let activity = Activity::new();
    let hyper_service = TowerToHyperService::new(app);
    let tracker = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        // The peer address reaches handlers and middleware (budgets per source) as ConnectInfo.
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let in_flight = tracker.begin();
        let response = hyper::service::Service::call(&hyper_service, req);
        async move {
            let response: Result<_, Infallible> = response.await;
            response.map(|r| {
                r.map(|inner| TrackedBody {
                    inner,
                    _in_flight: in_flight,
                })
            })
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // hyper's own HTTP/1 header timeout also runs between keep-alive requests;
    // it backs the watchdog up and must not cut an idle connection before it.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout.max(settings.idle_timeout));
    builder.http2().timer(TokioTimer::new());
    let tls = SharedTls::new(tls);
    {
        let conn = builder.serve_connection(TokioIo::new(tls.clone()), service);
        tokio::pin!(conn);
        let ended = tokio::select! {
            r = conn.as_mut() => Ended::Done(r),
            _ = activity.expired(settings.header_read_timeout, settings.idle_timeout) => {
                tracing::debug!(%peer, "API connection closed: no request within the deadline");
                Ended::Deadline
            }
            _ = tls.1.exceeded(settings.send_timeout) => {
                tracing::debug!(%peer, "API connection cut: the peer reads nothing of its answer");
                Ended::Stalled
            }
            _ = shutdown.cancelled() => Ended::Deadline,
        };
        let ended = match ended {
            Ended::Done(r) => Some(r),
            // A deadline or node shutdown: what is being answered may finish.
            Ended::Deadline => {
                conn.as_mut().graceful_shutdown();
                tokio::time::timeout(CLOSE_GRACE, conn).await.ok()
            }
            // Nothing more can be delivered to a peer that does not read: the
            // socket is closed as it is (dropping the last handle).
            Ended::Stalled => return,
        };
        if let Some(Err(e)) = ended {
            tracing::debug!(%peer, error = %e, "API connection ended with an error");
        }
    }
    tls.close(peer).await;
}

/// How [`serve_one`]'s wait for its connection ended.
enum Ended<E> {
    Done(Result<(), E>),
    Deadline,
    Stalled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_request_and_idleness_have_deadlines() {
        let a = Activity::new();
        let start = Instant::now();
        a.expired(Duration::from_secs(2), Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2), "no first request");

        let a = Activity::new();
        let req = a.begin();
        let watch = {
            let a = a.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                a.expired(Duration::from_secs(2), Duration::from_secs(5)).await;
                start.elapsed()
            })
        };
        // A request in flight for 60 s is not idleness; idleness counts from its end.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(req);
        assert_eq!(watch.await.unwrap(), Duration::from_secs(65));
    }
}
