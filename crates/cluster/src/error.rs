//! Why a proposal or a membership change did not complete.

use serde::{Deserialize, Serialize};
use statusmesh_store::{NodeId, NodeInfo};

/// The error of a write that did not commit. Serializable: a leader returns it to the follower
/// that forwarded the write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "error", content = "detail")]
pub enum ProposeError {
    /// No leader could commit the write (or confirm a linearizable read) before the deadline:
    /// a majority of the cluster is unreachable or an election did not settle. A write may
    /// still commit later; retrying it with the same idempotency key is safe.
    #[error("no quorum: nothing could be committed within {0} ms (a majority of nodes is unreachable or no leader is elected); retrying is safe, a write with the same idempotency key applies at most once")]
    NoQuorum(u64),
    /// This node is not the leader (internal: triggers forwarding).
    #[error("node is not the leader")]
    NotLeader { leader: Option<u64> },
    /// The write, encoded, is larger than one log entry may hold
    /// (`statusmesh_model::limits::MAX_ENTRY_BYTES`). Nothing was proposed.
    #[error("the write is {bytes} bytes encoded, more than the {limit} bytes one log entry may hold; nothing was written")]
    TooLarge { bytes: usize, limit: usize },
    #[error("raft failure: {0}")]
    Fatal(String),
    #[error("{0}")]
    Invalid(String),
}

/// Why a node could not start Raft or initialise its cluster.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid raft configuration: {0}")]
    Config(#[from] Box<openraft::ConfigError>),
    #[error("cannot start raft: {0}")]
    Raft(#[from] openraft::error::Fatal<NodeId>),
    #[error("cannot initialise the cluster: {0}")]
    Initialize(
        #[from]
        openraft::error::RaftError<NodeId, openraft::error::InitializeError<NodeId, NodeInfo>>,
    ),
}

/// A timing profile name that is neither `lan` nor `wan`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a timing profile (lan or wan)")]
pub struct UnknownProfile(pub String);

#[derive(Debug, Clone, thiserror::Error)]
pub enum MembershipError {
    #[error("node {0} is not the leader; send membership changes to the leader")]
    NotLeader(u64),
    #[error("membership change failed: {0}")]
    Rejected(String),
    #[error("{0}")]
    Invalid(String),
}
