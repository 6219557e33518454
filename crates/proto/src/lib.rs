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
