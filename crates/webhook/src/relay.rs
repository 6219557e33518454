//! The connections to the SMTP relay.
//!
//! Invariants:
//! - At most `connections` are open, and at most that many messages in flight: a relay limits
//!   the connections one client may hold (Postfix: 50 by default), and the dispatcher may have
//!   hundreds of deliveries under way. A message waits for a free connection.
//! - A connection is reused from one message to the next; one idle for [`CHECK_AFTER`] is
//!   checked with a `NOOP` before it carries a message (a relay closes idle clients), and one
//!   idle for [`IDLE_MAX`] is closed. A connection that failed is dropped, never reused.
//! - Every socket has `TCP_NODELAY`: lettre writes a message's body and its final `.` as two
//!   writes before it reads the relay's answer, and with Nagle's algorithm the second waits
//!   for the relay's delayed ACK — about 40 ms a message on Linux, which capped 8 connections
//!   at ~350 messages/s against a relay on loopback.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error as SmtpError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::email::{MailConfig, Security};

/// An idle connection older than this is checked before use.
const CHECK_AFTER: Duration = Duration::from_secs(5);
/// An idle connection older than this is closed.
const IDLE_MAX: Duration = Duration::from_secs(60);

/// Why a message did not reach the relay's answer.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("{0}")]
    Smtp(#[from] SmtpError),
    #[error("cannot reach the relay: {0}")]
    Connect(String),
    #[error("the relay did not answer within {0:?}")]
    Timeout(Duration),
}

impl RelayError {
    /// The relay's reply code, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            RelayError::Smtp(e) => e.status().map(u16::from),
            _ => None,
        }
    }

    /// Whether the relay refused for good (a 5xx).
    pub fn is_permanent(&self) -> bool {
        matches!(self, RelayError::Smtp(e) if e.is_permanent())
    }
}

/// How the relay's TLS is set up: lettre's parameters for STARTTLS, a rustls connector for
/// TLS from the first byte.
#[derive(Clone)]
pub enum Protection {
    None,
    StartTls(TlsParameters),
    Tls(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    ),
}

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protection::None => "none",
            Protection::StartTls(_) => "starttls",
            Protection::Tls(..) => "tls",
        })
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Relay({}:{}, {:?}, {} connections)",
            self.cfg.host, self.cfg.port, self.protection, self.cfg.connections
        )
    }
}

/// A bounded set of reusable connections to one relay.
pub struct Relay {
    cfg: Arc<MailConfig>,
    protection: Protection,
    hello: ClientId,
    permits: Semaphore,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl Relay {
    pub fn new(cfg: Arc<MailConfig>, protection: Protection) -> Self {
        Relay {
            permits: Semaphore::new(cfg.connections.max(1) as usize),
            cfg,
            protection,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `bytes` to the envelope's recipients and returns the relay's answer.
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<Response, RelayError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut conn = match self.reusable().await {
            Some(c) => c,
            None => self.within(self.connect()).await??,
        };
        let answer = self.within(conn.send(envelope, bytes)).await;
        match answer {
            Ok(Ok(response)) => {
                self.park(conn);
                Ok(response)
            }
            // The relay answered, refusing this message: the connection stays usable.
            Ok(Err(e)) if !conn.has_broken() && e.status().is_some() => {
                self.park(conn);
                Err(e.into())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(timeout) => Err(timeout),
        }
    }

    /// An idle connection that still works, if there is one; stale ones are closed.
    async fn reusable(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.lock_idle().pop()?;
            let idle = since.elapsed();
            if idle >= IDLE_MAX {
                conn.abort().await;
                continue;
            }
            if idle < CHECK_AFTER || matches!(self.within(conn.test_connected()).await, Ok(true)) {
                return Some(conn);
            }
        }
    }

    fn park(&self, conn: AsyncSmtpConnection) {
        self.lock_idle().push((conn, Instant::now()));
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn within<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T, RelayError> {
        tokio::time::timeout(self.cfg.timeout, f)
            .await
            .map_err(|_| RelayError::Timeout(self.cfg.timeout))
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, RelayError> {
        let tcp = TcpStream::connect((self.cfg.host.as_str(), self.cfg.port))
            .await
            .map_err(|e| RelayError::Connect(e.to_string()))?;
        tcp.set_nodelay(true)
            .map_err(|e| RelayError::Connect(e.to_string()))?;
        let mut conn = match &self.protection {
            Protection::None => {
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
            }
            Protection::StartTls(tls) => {
                let mut c =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
                if !c.can_starttls() {
                    c.abort().await;
                    return Err(RelayError::Connect(
                        "the relay does not offer STARTTLS (security = \"starttls\")".into(),
                    ));
                }
                c.starttls(tls.clone(), &self.hello).await?;
                c
            }
            Protection::Tls(connector, name) => {
                let peer = tcp
                    .peer_addr()
                    .map_err(|e| RelayError::Connect(e.to_string()))?;
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| RelayError::Connect(format!("TLS: {e}")))?;
                AsyncSmtpConnection::connect_with_transport(
                    Box::new(Tls { tls, peer }),
                    &self.hello,
                )
                .await?
            }
        };
        if let (Some(user), Some(password)) = (&self.cfg.username, &self.cfg.password) {
            let credentials = Credentials::new(user.clone(), password.clone());
            if let Err(e) = conn
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
            {
                conn.abort().await;
                return Err(e.into());
            }
        }
        Ok(conn)
    }
}

impl Protection {
    /// The protection `cfg` asks for: the public roots (and `cfg.ca_pem`'s) are trusted.
    pub fn of(cfg: &MailConfig) -> Result<Protection, String> {
        match cfg.security {
            Security::None => Ok(Protection::None),
            Security::StartTls => {
                let mut b = TlsParameters::builder(cfg.host.clone());
                if let Some(pem) = &cfg.ca_pem {
                    let cert = lettre::transport::smtp::client::Certificate::from_pem(pem)
                        .map_err(|e| e.to_string())?;
                    b = b.add_root_certificate(cert);
                }
                Ok(Protection::StartTls(
                    b.build_rustls().map_err(|e| e.to_string())?,
                ))
            }
            Security::Tls => {
                let mut roots = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                if let Some(pem) = &cfg.ca_pem {
                    use rustls::pki_types::pem::PemObject as _;
                    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                        let cert = cert.map_err(|e| format!("ca_cert: {e}"))?;
                        roots.add(cert).map_err(|e| format!("ca_cert: {e}"))?;
                    }
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let name = rustls::pki_types::ServerName::try_from(cfg.host.clone())
                    .map_err(|e| format!("host {:?}: {e}", cfg.host))?;
                Ok(Protection::Tls(
                    tokio_rustls::TlsConnector::from(Arc::new(config)),
                    name,
                ))
            }
        }
    }
}

/// A TLS stream lettre can speak SMTP over.
struct Tls {
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    peer: SocketAddr,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({})", self.peer)
    }
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.peer)
    }
}
