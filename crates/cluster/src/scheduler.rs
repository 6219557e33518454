//! The leader's maintenance scheduler: at each window's edge it proposes the transition
//! (in_progress, then completed). Only the leader acts, and it acts through the log with the
//! time it read, so no node ever changes state on its own clock. The idempotency key is
//! derived from the maintenance and target status, so two leaders racing across an election
//! cannot apply the same transition twice.

use std::sync::Arc;
use std::time::Duration;

use statusmesh_model::command::Command;
use statusmesh_model::{Id, Proposal};
use tokio::sync::watch;

use crate::node::ClusterNode;
use crate::worker;

pub const SCHEDULER_TICK: Duration = Duration::from_secs(1);

/// Runs until `shutdown` turns true, in the `maintenance_scheduler` worker span.
pub async fn run_maintenance_scheduler(node: Arc<ClusterNode>, shutdown: watch::Receiver<bool>) {
    worker::run("maintenance_scheduler", |span| {
        schedule(node, shutdown, span)
    })
    .await;
}

async fn schedule(
    node: Arc<ClusterNode>,
    mut shutdown: watch::Receiver<bool>,
    span: worker::WorkerSpan,
) {
    let mut tick = tokio::time::interval(SCHEDULER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if !node.is_leader() {
            worker::set_state(&span, "following");
            continue;
        }
        worker::set_state(&span, "leading");
        // The cluster's time, not this node's wall clock alone: a leader whose clock runs
        // ahead must not start maintenances early (see `crate::clock`).
        let at = node.cluster_now().await;
        let due = node.replica().read().state.due_maintenance_transitions(at);
        for (id, to) in due {
            let key = format!("auto:{id}:{to}");
            let command = Command::AutoTransitionMaintenance {
                id: id.clone(),
                update_id: Id::pending(),
                to,
            };
            let proposal = Proposal::internal(key, "scheduler", node.id, command);
            match node.propose_as_leader(proposal).await {
                Ok(outcome) => match outcome.result {
                    Ok(_) => {
                        tracing::info!(maintenance = %id, status = %to, "maintenance moved at its window edge")
                    }
                    Err(e) => {
                        tracing::warn!(maintenance = %id, status = %to, error = %e, "automatic maintenance transition refused")
                    }
                },
                Err(e) => {
                    tracing::warn!(maintenance = %id, error = %e, "automatic maintenance transition not committed")
                }
            }
        }
    }
}
