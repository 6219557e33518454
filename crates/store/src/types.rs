//! The openraft type configuration: what a log entry carries and what a node is.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};
use statusmesh_model::{Outcome, Proposal};

pub type NodeId = u64;

/// Where a member runs and how to reach it. Stored in membership entries, so every node knows
/// every member's region and addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Region or data-center name (e.g. `paris`).
    pub region: String,
    /// Raft peer gRPC address, `host:port`.
    pub peer_addr: String,
    /// Admin gRPC address, `host:port` (writes are forwarded there).
    pub admin_addr: String,
    /// Public HTTP address, `host:port`.
    pub public_addr: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.region, self.peer_addr)
    }
}

/// The state machine's answer for one log entry: blank and membership entries have no outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResponse {
    pub outcome: Option<Outcome>,
}

openraft::declare_raft_types!(
    /// statusmesh's Raft types: entries carry a [`Proposal`], nodes are [`NodeInfo`].
    pub TypeConfig:
        D = Proposal,
        R = ApplyResponse,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
pub type StorageError = openraft::StorageError<NodeId>;
