//! Generated gRPC code for `proto/` (packages `statusmesh.admin.v1` and `statusmesh.peer.v1`)
//! and the conversions between model types and admin wire messages.
//!
//! Architecture invariant: wire types stay at the edge. This is the one place that knows both
//! the model and the protobuf messages; nothing below it imports prost or tonic.

pub mod convert;
pub mod request_id;

/// Builds an admin request with its bearer token and, for writes, the idempotency key.
pub fn authed<T>(
    message: T,
    token: &str,
    idempotency_key: Option<&str>,
) -> Result<tonic::Request<T>, String> {
    let mut req = tonic::Request::new(message);
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token contains characters not allowed in a header".to_string())?;
    req.metadata_mut().insert("authorization", bearer);
    if let Some(key) = idempotency_key {
        let key = key
            .parse()
            .map_err(|_| format!("idempotency key {key:?} is not a valid header value"))?;
        req.metadata_mut().insert("idempotency-key", key);
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
) -> Result<admin::admin_client::AdminClient<tonic::transport::Channel>, String> {
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
) -> Result<tonic::transport::Channel, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let mut ep = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| format!("invalid endpoint {endpoint:?}: {e}"))?
        .connect_timeout(connect_timeout)
        .timeout(timeout);
    if let Some(ca) = ca_pem_file.filter(|_| endpoint.starts_with("https://")) {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        ep = ep
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            .map_err(|e| format!("invalid TLS settings: {e}"))?;
    }
    ep.connect()
        .await
        .map_err(|e| format!("cannot connect to {endpoint}: {e}"))
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
