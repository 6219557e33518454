//! Accepting TLS connections without letting a slow or hostile handshake hold up the others.
//!
//! [`TlsIncoming`] runs the accept loop in its own task: each handshake runs in a task of its
//! own with a deadline, at most [`MAX_HANDSHAKES`] at once, and only finished handshakes reach
//! the server. Every connection is admitted by the port's [`Admission`] before its handshake
//! starts, and holds its permit while it lives. It is a `Stream` for tonic's
//! `serve_with_incoming`, and [`TlsIncoming::next_connection`] feeds the public HTTP server.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::admission::{Admission, Admitted, ACCEPT_BACKOFF};

/// Handshakes in progress at once; further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 256;
/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A stream of connections whose TLS handshake has completed.
#[derive(Debug)]
pub struct TlsIncoming {
    rx: mpsc::Receiver<(Admitted<TlsStream<TcpStream>>, SocketAddr)>,
    local: SocketAddr,
}

/// Starts accepting on `listener`; `config` is asked for the configuration of each new
/// connection (so reloaded certificates apply to the next handshake); `admission` caps the
/// connections held at once and names the port in logs. Stops when `stop` turns true.
pub fn accept_tls(
    listener: TcpListener,
    config: impl Fn() -> Arc<ServerConfig> + Send + Sync + 'static,
    admission: Admission,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<TlsIncoming> {
    let port = admission.port();
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (tcp, addr) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(port, error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                _ = stopped(&mut stop) => return,
            };
            let Some(admitted) = admission.admit() else {
                // Over the cap: dropping it closes the socket now.
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(config());
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((Admitted::new(tls, admitted), addr)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(port, peer = %addr, error = %e, "TLS handshake refused");
                    }
                    Err(_) => {
                        tracing::warn!(port, peer = %addr, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    Ok(TlsIncoming { rx, local })
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

impl TlsIncoming {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl futures_core::Stream for TlsIncoming {
    type Item = std::io::Result<Admitted<TlsStream<TcpStream>>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|(stream, _)| Ok(stream)))
    }
}

impl TlsIncoming {
    /// The next connection and its peer address (for an axum `Listener`); never returns once
    /// the accept loop has stopped.
    pub async fn next_connection(&mut self) -> (Admitted<TlsStream<TcpStream>>, SocketAddr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }
}
