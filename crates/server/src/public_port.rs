//! The public port's HTTP server: hyper's HTTP/1.1 connection driver under the limits a port
//! that faces the internet needs.
//!
//! - Every connection is admitted by the port's [`Admission`] before anything is read from it
//!   (see [`crate::fds`] for how the cap is chosen), so a flood of connections is shed instead
//!   of using up the file descriptors the peer and admin ports and RocksDB need.
//! - A request's headers must arrive within `header_read_timeout` of the server starting to
//!   wait for them. hyper starts that timer as soon as a connection is ready for its next
//!   request, so the same bound closes keep-alive connections left idle (a slowloris that
//!   sends one header byte every few seconds is closed at the deadline).
//! - A connection whose writes make no progress for `write_stall_timeout` (a client that
//!   stops reading a large page) is closed.
//! - On shutdown the port stops accepting, asks every connection to finish its request in
//!   flight, and waits for them up to [`SHUTDOWN_GRACE`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use statusmesh_tls::{Admission, Admitted, TcpIncoming, TlsIncoming};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The longest shutdown waits for open connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The timeouts of the public port.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub write_stall_timeout: Duration,
    /// Whose `X-Forwarded-For` names the client ([`statusmesh_http::TrustedProxies`]).
    pub trusted_proxies: Arc<statusmesh_http::TrustedProxies>,
}

/// Where the public port's connections come from: plain TCP or finished TLS handshakes.
pub trait Incoming: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection and the address it comes from.
    fn next(&mut self) -> impl Future<Output = (Self::Io, SocketAddr)> + Send;
}

impl Incoming for TcpIncoming {
    type Io = Admitted<TcpStream>;
    async fn next(&mut self) -> (Self::Io, SocketAddr) {
        self.next_connection().await
    }
}

impl Incoming for TlsIncoming {
    type Io = Admitted<tokio_rustls::server::TlsStream<TcpStream>>;
    async fn next(&mut self) -> (Self::Io, SocketAddr) {
        self.next_connection().await
    }
}

/// The router with the request's client address in its extensions
/// ([`statusmesh_http::ClientAddr`], read by the subscription form's rate limit): the
/// connection's peer, or the client a trusted proxy forwarded.
#[derive(Clone)]
struct WithClient<S> {
    inner: S,
    peer: std::net::IpAddr,
    trusted: Arc<statusmesh_http::TrustedProxies>,
}

impl<S, B> tower_service::Service<axum::http::Request<B>> for WithClient<S>
where
    S: tower_service::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        let client = self.trusted.client(self.peer, req.headers());
        req.extensions_mut()
            .insert(statusmesh_http::ClientAddr(client));
        self.inner.call(req)
    }
}

/// Serves `service` on every connection `incoming` admits until `stop` turns true.
pub async fn serve<I, S>(
    mut incoming: I,
    service: S,
    admission: Admission,
    limits: HttpLimits,
    stop: watch::Receiver<bool>,
) where
    I: Incoming,
    S: tower_service::Service<
            axum::http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut stopping = stop.clone();
    loop {
        let (io, from) = tokio::select! {
            next = incoming.next() => next,
            () = stopped(&mut stopping) => break,
        };
        let service = WithClient {
            inner: service.clone(),
            peer: from.ip(),
            trusted: limits.trusted_proxies.clone(),
        };
        let conn = http.serve_connection(
            TokioIo::new(StallGuard::new(io, limits.write_stall_timeout)),
            TowerToHyperService::new(service),
        );
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                // Timeouts, resets and malformed requests: the client's problem, not ours.
                tracing::debug!(error = %e, "public connection ended");
            }
        });
    }
    drop(incoming);
    if !admission.drained(SHUTDOWN_GRACE).await {
        tracing::warn!(
            open = admission.open(),
            "public connections still open after the shutdown grace period"
        );
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pin_project_lite::pin_project! {
    /// Fails a write that has been waiting longer than `timeout` for the client to read.
    struct StallGuard<T> {
        #[pin]
        io: T,
        timeout: Duration,
        stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<T> StallGuard<T> {
    fn new(io: T, timeout: Duration) -> Self {
        StallGuard {
            io,
            timeout,
            stalled: None,
        }
    }
}

/// What a write reports once it has waited `timeout` without progress.
fn stalled_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the client stopped reading the response",
    )
}

/// Arms the stall timer on a pending write and fails the write once it fires; any progress
/// disarms it.
fn watch_stall<R>(
    polled: Poll<io::Result<R>>,
    stalled: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Result<R>> {
    match polled {
        Poll::Ready(r) => {
            *stalled = None;
            Poll::Ready(r)
        }
        Poll::Pending => {
            let timer = stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(stalled_error())),
                Poll::Pending => Poll::Pending,
            }
        }
    }
}

impl<T: AsyncRead> AsyncRead for StallGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for StallGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write(cx, buf);
        watch_stall(polled, this.stalled, *this.timeout, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write_vectored(cx, bufs);
        watch_stall(polled, this.stalled, *this.timeout, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let polled = this.io.poll_flush(cx);
        watch_stall(polled, this.stalled, *this.timeout, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_the_client_never_reads_fails_after_the_stall_timeout() {
        // A small pipe fills at once; nobody reads the other end.
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(ours, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let err = guarded
            .write_all(&[0u8; 4096])
            .await
            .expect_err("the write stalls");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 64];
            while total < 2048 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                total += theirs.read(&mut buf).await.expect("read");
            }
        });
        // Each chunk waits ~5 ms for the reader: far below the timeout, however long in all.
        let mut guarded = StallGuard::new(ours, Duration::from_millis(100));
        guarded.write_all(&[0u8; 2048]).await.expect("progress");
        reader.await.expect("reader");
    }
}
