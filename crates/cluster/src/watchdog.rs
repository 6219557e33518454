//! Prompt campaigns after the leader lease runs out.
//!
//! openraft 0.9 makes a follower wait for the leader lease (`election_timeout_max` since it last
//! heard from the leader) *and then* its own random election timeout before it campaigns, so a
//! failover takes about 1.5-2x `election_timeout_max`. The lease is what protects a live leader
//! (every follower refuses votes while its own lease runs); the extra random wait only spreads
//! candidates apart. This watchdog lets a voting follower campaign once the lease has run out
//! plus a short random spread (up to half the minimum election timeout), which keeps candidates
//! apart by far more than a vote round trip.
//!
//! Safety is unaffected (Raft's safety never depends on timing, and a follower still inside its
//! lease refuses the vote). What changes is liveness: failover shortens by about one election
//! timeout. A campaign that loses (a split vote) falls back to openraft's own timers.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use rand::Rng;
use tokio::sync::watch;

use crate::node::ClusterNode;
use crate::worker;

/// Runs until `shutdown` turns true, in the `election_watchdog` worker span.
pub async fn run_election_watchdog(node: Arc<ClusterNode>, shutdown: watch::Receiver<bool>) {
    worker::run("election_watchdog", |span| {
        watch_elections(node, shutdown, span)
    })
    .await;
}

async fn watch_elections(
    node: Arc<ClusterNode>,
    mut shutdown: watch::Receiver<bool>,
    span: worker::WorkerSpan,
) {
    let t = node.profile.timings();
    let lease = t.election_max.as_millis() as u64;
    let spread = (t.election_min.as_millis() as u64 / 2).max(1);
    let tick = (t.heartbeat / 4).max(Duration::from_millis(10));
    let mut jitter = rand::rng().random_range(0..spread);
    let mut campaigned_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let (follower, voter) = {
            let m = node.raft.metrics();
            let m = m.borrow();
            (
                m.state == ServerState::Follower,
                m.membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == node.id),
            )
        };
        let Some(silence) = node.contact.millis_since() else {
            continue;
        };
        if !follower || !voter || silence < lease + jitter {
            worker::set_state(&span, "watching");
            continue;
        }
        worker::set_state(&span, "leaderless");
        // One campaign per election timeout at most; then openraft's timers take over.
        if campaigned_at.is_some_and(|at| at.elapsed() < t.election_min) {
            continue;
        }
        tracing::info!(
            silence_ms = silence,
            "no leader within its lease: campaigning"
        );
        if let Err(e) = node.raft.trigger().elect().await {
            tracing::warn!(error = %e, "could not start an election");
        }
        campaigned_at = Some(tokio::time::Instant::now());
        jitter = rand::rng().random_range(0..spread);
    }
}
