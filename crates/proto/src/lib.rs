//! Generated gRPC code for `proto/` (packages `statusmesh.admin.v1` and `statusmesh.peer.v1`)
//! and the conversions between model types and admin wire messages.
//!
//! Architecture invariant: wire types stay at the edge. This is the one place that knows both
//! the model and the protobuf messages; nothing below it imports prost or tonic.

pub mod convert;

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
