//! The cluster: openraft wired to the RocksDB store, the tonic peer transport, the write path
//! (leader stamping, forwarding, retries across leader changes), membership changes, and the
//! leader's maintenance scheduler.
//!
//! Architecture invariant: ids, secrets and time are chosen here, on the leader, immediately
//! before proposing; `statusmesh_model::State::apply` never reads them from the environment.
//! Every peer request names its sender and target, and a node refuses one meant for another id.

pub mod clock;
pub mod error;
pub mod metrics;
pub mod network;
pub mod node;
pub mod peer_server;
pub mod profile;
pub mod scheduler;
pub mod watchdog;
pub mod worker;

pub use error::{MembershipError, ProposeError, StartError, UnknownProfile};
pub use node::{now, ClusterNode, MemberStatus, NodeConfig, NodeStatus, RoleChanges};
pub use peer_server::PeerService;
pub use profile::TimingProfile;
