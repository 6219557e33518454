//! What the node counts about its own Raft life for Prometheus: proposal latency, elections
//! this node started and leader changes it saw. Rendering is the server's job
//! (`statusmesh_server::metrics`); these are lock-free to record.

use std::sync::atomic::{AtomicU64, Ordering};

use openraft::ServerState;
use statusmesh_metrics::Histogram;
use statusmesh_store::{NodeId, NodeInfo};

#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Writes proposed through this node (admin writes, the maintenance scheduler's), from
    /// arrival to commit, successful or not, forwarding and retries included.
    pub proposal_seconds: Histogram,
    /// Writes that failed (no quorum, refused as invalid, fatal).
    pub proposal_failures: AtomicU64,
    /// Times this node became a candidate (started an election).
    pub elections: AtomicU64,
    /// Times this node saw the leader change to a different node (or to the first one).
    pub leader_changes: AtomicU64,
}

impl NodeMetrics {
    /// Follows openraft's metrics until the Raft instance shuts down, counting elections and
    /// leader changes (the watch skips intermediate values, so a flapping leader may be counted
    /// less than it changed, never more).
    pub(crate) async fn follow(
        &self,
        mut raft: tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, NodeInfo>>,
    ) {
        let (mut state, mut term, mut leader) = {
            let m = raft.borrow_and_update();
            (m.state, m.current_term, m.current_leader)
        };
        // The term whose candidacy was counted last.
        let mut counted = None;
        while raft.changed().await.is_ok() {
            let m = raft.borrow_and_update();
            // A new candidacy, or another round of one (a new term while still a candidate).
            let candidacy = m.state == ServerState::Candidate
                && (state != ServerState::Candidate || m.current_term > term);
            // A node leads only in a term it campaigned in: when the watch skipped the
            // candidate state (a quick election), the leadership shows the candidacy.
            let skipped = m.state == ServerState::Leader
                && state != ServerState::Leader
                && counted != Some(m.current_term);
            if candidacy || skipped {
                self.elections.fetch_add(1, Ordering::Relaxed);
                counted = Some(m.current_term);
            }
            term = m.current_term;
            if m.current_leader.is_some() && m.current_leader != leader {
                self.leader_changes.fetch_add(1, Ordering::Relaxed);
                leader = m.current_leader;
            }
            state = m.state;
        }
    }
}
