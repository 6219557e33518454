//! Dialling a TLS server for tonic: TCP (optionally from a chosen source address), then a
//! rustls handshake with the client configuration current at that moment.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector as RustlsConnector;

use crate::TlsError;

type ConfigFn = Arc<dyn Fn() -> Arc<ClientConfig> + Send + Sync>;

/// A tonic connector (`Service<Uri>`) that speaks TLS to one server identity.
#[derive(Clone)]
pub struct TlsConnector {
    config: ConfigFn,
    server_name: ServerName<'static>,
    local_address: Option<IpAddr>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .field("local_address", &self.local_address)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// `server_name` is what the server's certificate must name (for peers,
    /// `node-<id>.statusmesh`; for an admin port, its host).
    pub fn new(
        config: impl Fn() -> Arc<ClientConfig> + Send + Sync + 'static,
        server_name: &str,
        local_address: Option<IpAddr>,
    ) -> Result<TlsConnector, TlsError> {
        let server_name = ServerName::try_from(server_name.to_owned()).map_err(|source| {
            TlsError::ServerName {
                name: server_name.to_owned(),
                source,
            }
        })?;
        Ok(TlsConnector {
            config: Arc::new(config),
            server_name,
            local_address,
        })
    }
}

async fn dial(addr: &str, local: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let mut last = None;
    for target in tokio::net::lookup_host(addr).await? {
        let socket = if target.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = local {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        socket.set_nodelay(true)?;
        match socket.connect(target).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolves to nothing"),
        )
    }))
}

impl tower_service::Service<http::Uri> for TlsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let authority = uri
                .authority()
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "address has no host:port",
                    )
                })?
                .to_string();
            let tcp = dial(&authority, this.local_address).await?;
            let tls = RustlsConnector::from((this.config)())
                .connect(this.server_name.clone(), tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}
