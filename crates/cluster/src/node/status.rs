//! What this node reports about itself and the cluster: role, term, leader, lease and the
//! members, read from Raft's metrics (cheap: no state is read), and a way to wait for them to
//! change.

use std::collections::BTreeSet;

use openraft::ServerState;
use statusmesh_store::{NodeId, NodeInfo};
use tokio::sync::watch;

use super::ClusterNode;
use crate::profile::TimingProfile;

/// A member's view as reported by [`ClusterNode::status`].
#[derive(Debug, Clone)]
pub struct MemberStatus {
    pub id: NodeId,
    pub info: NodeInfo,
    pub voter: bool,
    /// The leader's last known matched index for this member (leader only).
    pub matched_index: Option<u64>,
}

/// This node's view of the cluster.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub id: NodeId,
    pub region: String,
    pub state: &'static str,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub millis_since_leader_contact: Option<u64>,
    pub members: Vec<MemberStatus>,
    pub profile: TimingProfile,
    pub disk_bytes: u64,
}

/// Wakes when this node's role, term, leader or membership may have changed (see
/// [`ClusterNode::role_changes`]).
#[derive(Debug)]
pub struct RoleChanges(watch::Receiver<openraft::RaftMetrics<NodeId, NodeInfo>>);

impl RoleChanges {
    /// Waits for the next change; `false` once Raft has stopped (nothing will change again).
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

impl ClusterNode {
    /// The term this node is in (whatever its role).
    pub fn current_term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// A handle for workers that wait to lead or to stop leading.
    pub fn role_changes(&self) -> RoleChanges {
        RoleChanges(self.raft.metrics())
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, info)| MemberStatus {
                id: *id,
                info: info.clone(),
                voter: voters.contains(id),
                matched_index: metrics
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id).copied().flatten())
                    .map(|l| l.index),
            })
            .collect();
        let state = match metrics.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let millis_since_leader_contact = self.millis_since_leader_contact();
        let applied_index = self.replica.applied_index();
        NodeStatus {
            id: self.id,
            region: self.info.region.clone(),
            state,
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            applied_index,
            millis_since_leader_contact,
            members,
            profile: self.profile,
            disk_bytes: self.sm.disk_size(),
        }
    }

    /// Milliseconds since this node last heard from a leader it accepted (on the leader: since
    /// a quorum last acknowledged it). `None` if never. Cheap: no state is read.
    pub fn millis_since_leader_contact(&self) -> Option<u64> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state == ServerState::Leader {
            m.millis_since_quorum_ack.or(Some(0))
        } else {
            self.contact.millis_since()
        }
    }

    /// The term this node leads in, if it leads and a quorum acknowledged it within the
    /// shortest election timeout (its lease: no other leader can have been elected since).
    /// Workers that act outside the log (the webhook dispatcher) check this before acting.
    pub fn leader_lease(&self) -> Option<u64> {
        let m = self.raft.metrics();
        let m = m.borrow();
        if m.state != ServerState::Leader || m.current_leader != Some(self.id) {
            return None;
        }
        let lease = self.profile.timings().election_min.as_millis() as u64;
        let alone = m.membership_config.membership().voter_ids().eq([self.id]);
        let fresh = m
            .millis_since_quorum_ack
            .map_or(alone, |ms| ms < lease || alone);
        fresh.then_some(m.current_term)
    }

    /// Ready to serve: this node holds a replica of an initialised cluster it belongs to
    /// (`/readyz` and the gRPC health status both answer from this).
    pub fn is_member(&self) -> bool {
        let data = self.replica.read();
        data.membership.membership().get_node(&self.id).is_some()
    }

    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }
}
