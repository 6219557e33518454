//! The leader's scheduler: at each maintenance window's edge it proposes the transition
//! (in_progress, then completed), and once a minute it proposes to forget the email
//! addresses kept no longer (expired confirmations, long-bounced addresses). Only the leader
//! acts, and it acts through the log with the time it read, so no node ever changes state on
//! its own clock. A transition's idempotency key is derived from the maintenance and target
//! status, so two leaders racing across an election cannot apply the same transition twice;
//! forgetting is checked again at apply, so a repeat deletes nothing more.

use std::sync::Arc;
use std::time::Duration;

use statusmesh_model::command::Command;
use statusmesh_model::{limits, Id, Proposal, Timestamp};
use tokio::sync::watch;

use crate::node::ClusterNode;
use crate::worker;

pub const SCHEDULER_TICK: Duration = Duration::from_secs(1);
/// Ticks between two looks for addresses to forget (a scan of every subscriber).
const EXPIRE_EVERY_TICKS: u64 = 60;

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
    let mut ticks: u64 = 0;
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
        transition_maintenances(&node, at).await;
        ticks += 1;
        if ticks % EXPIRE_EVERY_TICKS == 1 {
            expire_subscribers(&node, at).await;
        }
    }
}

async fn transition_maintenances(node: &ClusterNode, at: Timestamp) {
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

/// Proposes to forget the subscribers whose addresses are kept no longer, a bounded batch
/// per command, until none is left or a proposal fails (the next look tries again).
async fn expire_subscribers(node: &ClusterNode, at: Timestamp) {
    loop {
        let ids = node
            .replica()
            .read()
            .state
            .expired_subscribers(at, limits::MAX_EXPIRED_PER_COMMAND);
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return;
        };
        let key = format!("expire:{first}:{last}:{}:{}", ids.len(), at.0);
        let proposal = Proposal::internal(
            key,
            "scheduler",
            node.id,
            Command::ExpireSubscribers { ids },
        );
        match node.propose_as_leader(proposal).await {
            Ok(outcome) => match outcome.result {
                // Listed as expired here, kept at apply (confirmed meanwhile): the next look
                // lists it no more, so this one stops rather than ask again.
                Ok(statusmesh_model::Applied::Expired(0)) => return,
                Ok(applied) => tracing::info!(?applied, "expired email subscriptions forgotten"),
                Err(e) => {
                    tracing::warn!(error = %e, "forgetting expired subscriptions refused");
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "forgetting expired subscriptions not committed");
                return;
            }
        }
    }
}
