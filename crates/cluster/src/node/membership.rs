//! Membership changes (leader only, one at a time) and what this node knows of the members.
//!
//! Invariant: a change is made only by the leader and under `membership_lock`, so two changes
//! never race; a voter is removed in two steps (demoted, then removed) so the configuration
//! never loses its joint-consensus safety.

use std::collections::BTreeSet;

use openraft::ChangeMembers;
use statusmesh_store::{NodeId, NodeInfo};

use super::ClusterNode;
use crate::error::MembershipError;

impl ClusterNode {
    fn check_leader(&self) -> Result<(), MembershipError> {
        if self.current_leader() == Some(self.id) {
            Ok(())
        } else {
            Err(MembershipError::NotLeader(self.id))
        }
    }

    /// Adds a node as a learner and waits until it has caught up. Leader only.
    pub async fn add_learner(&self, id: NodeId, info: NodeInfo) -> Result<u64, MembershipError> {
        let _guard = self.membership_lock.lock().await;
        self.check_leader()?;
        let existing = self.leader_info(id);
        if let Some(existing) = existing {
            if existing != info {
                return Err(MembershipError::Invalid(format!(
                    "node {id} is already a member at {}; remove it first",
                    existing.peer_addr
                )));
            }
        }
        let resp = self
            .raft
            .add_learner(id, info, true)
            .await
            .map_err(|e| MembershipError::Rejected(e.to_string()))?;
        Ok(resp.log_id.index)
    }

    /// Makes a learner a voter. Leader only.
    pub async fn promote(&self, id: NodeId) -> Result<u64, MembershipError> {
        let _guard = self.membership_lock.lock().await;
        self.check_leader()?;
        let is_learner = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let found = m
                .membership_config
                .membership()
                .learner_ids()
                .any(|l| l == id);
            found
        };
        if !is_learner {
            return Err(MembershipError::Invalid(format!(
                "node {id} is not a learner; add it first (or it is already a voter)"
            )));
        }
        let resp = self
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| MembershipError::Rejected(e.to_string()))?;
        Ok(resp.log_id.index)
    }

    /// Removes a node (voter or learner) from the cluster. Leader only.
    pub async fn remove(&self, id: NodeId) -> Result<u64, MembershipError> {
        let _guard = self.membership_lock.lock().await;
        self.check_leader()?;
        let (is_voter, is_member, voters) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            let voters = membership.voter_ids().count();
            (
                membership.voter_ids().any(|v| v == id),
                membership.get_node(&id).is_some(),
                voters,
            )
        };
        if !is_member {
            return Err(MembershipError::Invalid(format!(
                "node {id} is not a member"
            )));
        }
        let mut index = 0;
        if is_voter {
            if voters <= 1 {
                return Err(MembershipError::Invalid(
                    "cannot remove the last voter".into(),
                ));
            }
            index = self
                .raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(|e| MembershipError::Rejected(e.to_string()))?
                .log_id
                .index;
        }
        // A leader removing itself steps down; the learner entry then goes via the new leader.
        if id == self.id && is_voter {
            return Ok(index);
        }
        let resp = self
            .raft
            .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
            .await
            .map_err(|e| MembershipError::Rejected(e.to_string()))?;
        Ok(resp.log_id.index)
    }

    /// Whether `id` is in the membership this node knows (voters and learners); `None` while
    /// this node knows no membership yet (a node waiting to be added trusts the cluster CA
    /// alone until the leader's first entries arrive).
    pub fn knows_member(&self, id: NodeId) -> Option<bool> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        // No membership at all yet: nothing to check against.
        membership.nodes().next()?;
        Some(membership.get_node(&id).is_some())
    }
}
