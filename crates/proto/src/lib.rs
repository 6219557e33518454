//! Generated gRPC code for `proto/` (packages `statusmesh.admin.v1` and `statusmesh.peer.v1`)
//! and the conversions between model types and admin wire messages.
//!
//! Architecture invariant: wire types stay at the edge. This is the one place that knows both
//! the model and the protobuf messages; nothing below it imports prost or tonic.

pub mod convert;
pub mod request_id;

/// The header carrying a write's idempotency key (admin requests).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Why an admin request could not be built or a connection not made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the token contains characters not allowed in a header")]
    BadToken,
    #[error("idempotency key {0:?} is not a valid header value")]
    BadIdempotencyKey(String),
    #[error("invalid endpoint {endpoint:?}: {source}")]
    BadEndpoint {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("cannot read {path}: {source}", path = path.display())]
    ReadCa {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("invalid TLS settings: {0}")]
    Tls(tonic::transport::Error),
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

/// Builds an admin request with its bearer token and, for writes, the idempotency key.
pub fn authed<T>(
    message: T,
    token: &str,
    idempotency_key: Option<&str>,
) -> Result<tonic::Request<T>, ClientError> {
    let mut req = tonic::Request::new(message);
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| ClientError::BadToken)?;
    req.metadata_mut().insert("authorization", bearer);
    if let Some(key) = idempotency_key {
        let key = key
            .parse()
            .map_err(|_| ClientError::BadIdempotencyKey(key.to_owned()))?;
        req.metadata_mut().insert(IDEMPOTENCY_HEADER, key);
    }
    Ok(req)
}

/// Connects to a node's admin port: `https://` endpoints are verified against the CA in
/// `ca_pem_file` (the cluster's own CA). For tools and tests; `statusctl` adds client
/// certificates and the system roots on top of this.
pub async fn connect_admin(
    endpoint: &str,
    ca_pem_file: Option<&std::path::Path>,
    connect_timeout: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<admin::admin_client::AdminClient<tonic::transport::Channel>, ClientError> {
    connect_admin_channel(endpoint, ca_pem_file, connect_timeout, timeout)
        .await
        .map(admin::admin_client::AdminClient::new)
}

/// The channel [`connect_admin`] wraps (for callers that speak to the port below the
/// generated client, such as a table test calling every RPC by name).
pub async fn connect_admin_channel(
    endpoint: &str,
    ca_pem_file: Option<&std::path::Path>,
    connect_timeout: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<tonic::transport::Channel, ClientError> {
    let ca_pem = match ca_pem_file.filter(|_| endpoint.starts_with("https://")) {
        Some(path) => Some(std::fs::read(path).map_err(|source| ClientError::ReadCa {
            path: path.to_owned(),
            source,
        })?),
        None => None,
    };
    let tls = AdminTls {
        ca_pem,
        ..AdminTls::default()
    };
    connect_admin_with(endpoint, &tls, connect_timeout, timeout).await
}

/// How an `https://` admin endpoint is verified, and what the client presents.
#[derive(Debug, Clone, Default)]
pub struct AdminTls {
    /// A CA to trust (PEM), such as the cluster's own.
    pub ca_pem: Option<Vec<u8>>,
    /// Trust the platform's roots too (an admin port behind a public certificate).
    pub system_roots: bool,
    /// A client certificate and key (operator certificates).
    pub identity: Option<tonic::transport::Identity>,
}

/// Connects to a node's admin port; `tls` applies to `https://` endpoints only.
pub async fn connect_admin_with(
    endpoint: &str,
    tls: &AdminTls,
    connect_timeout: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<tonic::transport::Channel, ClientError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let mut ep = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|source| ClientError::BadEndpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?
        .connect_timeout(connect_timeout)
        .timeout(timeout);
    let configured = tls.system_roots || tls.ca_pem.is_some() || tls.identity.is_some();
    if endpoint.starts_with("https://") && configured {
        let mut config = ClientTlsConfig::new();
        if tls.system_roots {
            config = config.with_enabled_roots();
        }
        if let Some(pem) = &tls.ca_pem {
            config = config.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some(id) = &tls.identity {
            config = config.identity(id.clone());
        }
        ep = ep.tls_config(config).map_err(ClientError::Tls)?;
    }
    ep.connect().await.map_err(|source| ClientError::Connect {
        endpoint: endpoint.to_owned(),
        source,
    })
}

#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod admin {
    tonic::include_proto!("statusmesh.admin.v1");
}

#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod peer {
    tonic::include_proto!("statusmesh.peer.v1");
}

/// The encoded descriptor set of every statusmesh proto file (for gRPC server reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/statusmesh_descriptor.bin"));
