//! A cap on the connections one port holds at once, so that no port can take the file
//! descriptors the others (and RocksDB) need.
//!
//! Every accepted socket must be admitted before anything else is done with it: [`Admission`]
//! hands out one permit per connection, and an [`Admitted`] stream carries its permit until
//! it is dropped. A connection over the cap is closed at once (shed) rather than left in the
//! kernel's backlog, and counted, so a flood shows in `/metrics` instead of as silence.
//!
//! [`TcpIncoming`] is the plaintext accept loop built on it (the TLS one is
//! [`crate::accept_tls`]).

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long an accept loop waits after `accept` fails (EMFILE and friends) before trying
/// again, instead of spinning.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connection cap of one port, shared by its accept loop and its metrics.
#[derive(Debug, Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    port: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    shed: AtomicU64,
}

impl Admission {
    /// At most `max` connections at once on `port` (which names the port in logs).
    pub fn new(port: &'static str, max: usize) -> Self {
        let max = max.max(1);
        Admission {
            inner: Arc::new(Inner {
                port,
                max,
                permits: Arc::new(Semaphore::new(max)),
                shed: AtomicU64::new(0),
            }),
        }
    }

    /// A permit for one more connection, or `None` (and the connection counted as shed) when
    /// the port is full.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        match self.inner.permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let shed = self.inner.shed.fetch_add(1, Ordering::Relaxed);
                // The first one, then one line per thousand: a flood must not flood the log.
                if shed.is_multiple_of(1000) {
                    tracing::warn!(
                        port = self.inner.port,
                        max = self.inner.max,
                        shed = shed + 1,
                        "connection limit reached: closing new connections"
                    );
                }
                None
            }
        }
    }

    pub fn port(&self) -> &'static str {
        self.inner.port
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Connections held now.
    pub fn open(&self) -> usize {
        self.inner.max - self.inner.permits.available_permits()
    }

    /// Connections closed at once because the port was full, since start.
    pub fn shed(&self) -> u64 {
        self.inner.shed.load(Ordering::Relaxed)
    }

    /// Waits until every admitted connection has been dropped, or `within` has passed;
    /// true if they all were.
    pub async fn drained(&self, within: Duration) -> bool {
        let all = u32::try_from(self.inner.max).unwrap_or(u32::MAX);
        tokio::time::timeout(within, self.inner.permits.acquire_many(all))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

pin_project_lite::pin_project! {
    /// A connection that holds one of its port's permits until it is dropped.
    #[derive(Debug)]
    pub struct Admitted<T> {
        #[pin]
        io: T,
        permit: OwnedSemaphorePermit,
    }
}

impl<T> Admitted<T> {
    pub fn new(io: T, permit: OwnedSemaphorePermit) -> Self {
        Admitted { io, permit }
    }

    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncRead> AsyncRead for Admitted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for Admitted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// tonic reads the peer's address and certificates through the admitted connection.
impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Admitted<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Plaintext connections on a listener, each admitted before it is handed on (a `Stream`
/// for tonic's `serve_with_incoming`, and [`TcpIncoming::next_connection`] for HTTP).
#[derive(Debug)]
pub struct TcpIncoming {
    listener: TcpListener,
    admission: Admission,
    backoff: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl TcpIncoming {
    pub fn new(listener: TcpListener, admission: Admission) -> Self {
        TcpIncoming {
            listener,
            admission,
            backoff: None,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn poll_admitted(&mut self, cx: &mut Context<'_>) -> Poll<(Admitted<TcpStream>, SocketAddr)> {
        loop {
            if let Some(b) = self.backoff.as_mut() {
                if b.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.backoff = None;
            }
            match self.listener.poll_accept(cx) {
                Poll::Ready(Ok((tcp, addr))) => {
                    if let Some(permit) = self.admission.admit() {
                        let _ = tcp.set_nodelay(true);
                        return Poll::Ready((Admitted::new(tcp, permit), addr));
                    }
                    // Over the cap: dropping it closes the socket now.
                }
                Poll::Ready(Err(e)) => {
                    tracing::warn!(port = self.admission.port(), error = %e, "accept failed");
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The next admitted connection and its peer address.
    pub async fn next_connection(&mut self) -> (Admitted<TcpStream>, SocketAddr) {
        std::future::poll_fn(|cx| self.poll_admitted(cx)).await
    }
}

impl futures_core::Stream for TcpIncoming {
    type Item = io::Result<Admitted<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_admitted(cx).map(|(io, _)| Some(Ok(io)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_and_counted() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admission = Admission::new("test", 2);
        let mut incoming = TcpIncoming::new(listener, admission.clone());
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let first = incoming.next_connection().await;
        let second = incoming.next_connection().await;
        assert_eq!(admission.open(), 2);
        // The third is accepted and closed while the loop waits for a fourth.
        let waiting = tokio::time::timeout(Duration::from_millis(300), incoming.next_connection());
        assert!(waiting.await.is_err(), "no fourth connection arrived");
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(2), clients[2].read(&mut buf))
            .await
            .expect("the shed connection is closed, not left hanging");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        assert_eq!(admission.shed(), 1);
        drop(first);
        assert_eq!(admission.open(), 1);
        drop(second);
        assert!(admission.drained(Duration::from_secs(1)).await);
    }
}
