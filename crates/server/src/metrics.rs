//! Prometheus text exposition (version 0.0.4) for `/metrics` on the public port: Raft role,
//! term and indexes, elections and leader changes, replication lag per follower, proposal
//! latency, snapshot durations, webhook outbox and dispatcher figures with delivery latency,
//! request counts and latencies of all three ports, connections held and shed per port, store
//! size. Rendered on demand from the node's own view; cheap: the outbox counts (a walk over
//! every delivery) come from `statusmesh_http::Diagnostics`, computed at most once a second.

use std::sync::atomic::Ordering;

use statusmesh_cluster::ClusterNode;
use statusmesh_metrics::DispatchStats;
use statusmesh_metrics::Exposition;
use statusmesh_proto::request_id::grpc_code_name;

use crate::observe::PortMetrics;
use statusmesh_model::outbox::OutboxStats;
use statusmesh_tls::Admission;

/// The whole exposition.
pub fn render(
    node: &ClusterNode,
    dispatch: &DispatchStats,
    ports: &PortMetrics,
    admissions: &[Admission],
    outbox: &OutboxStats,
) -> String {
    let mut o = Exposition::new();
    let s = node.status();
    let node_label = s.id.to_string();

    o.family(
        "statusmesh_node_info",
        "gauge",
        "This node's id and region (always 1).",
    );
    o.sample(
        "statusmesh_node_info",
        &[("node", &node_label), ("region", &s.region)],
        1.0,
    );
    o.family(
        "statusmesh_raft_state",
        "gauge",
        "1 for this node's current Raft state.",
    );
    for state in ["Leader", "Follower", "Candidate", "Learner", "Shutdown"] {
        let v = if s.state.eq_ignore_ascii_case(state) {
            1.0
        } else {
            0.0
        };
        o.sample(
            "statusmesh_raft_state",
            &[("state", &state.to_ascii_lowercase())],
            v,
        );
    }
    o.gauge(
        "statusmesh_raft_is_leader",
        "1 while this node is the Raft leader.",
        if s.leader == Some(s.id) { 1.0 } else { 0.0 },
    );
    o.gauge(
        "statusmesh_raft_leader_id",
        "The leader this node knows of (0: none).",
        s.leader.unwrap_or(0) as f64,
    );
    o.gauge(
        "statusmesh_raft_term",
        "Current Raft term (each increase is an election).",
        s.term as f64,
    );
    o.gauge(
        "statusmesh_raft_last_log_index",
        "Index of the last entry in this node's log.",
        s.last_log_index as f64,
    );
    o.gauge(
        "statusmesh_raft_applied_index",
        "Index of the last entry applied to this node's state.",
        s.applied_index as f64,
    );
    o.gauge(
        "statusmesh_raft_members",
        "Members (voters and learners) in this node's membership view.",
        s.members.len() as f64,
    );
    o.gauge(
        "statusmesh_raft_seconds_since_leader_contact",
        "Seconds since this node last heard from a leader (-1: never).",
        s.millis_since_leader_contact
            .map_or(-1.0, |ms| ms as f64 / 1000.0),
    );
    o.family(
        "statusmesh_raft_replication_lag_entries",
        "gauge",
        "On the leader: entries each member is behind the leader's log.",
    );
    if s.leader == Some(s.id) {
        for m in s.members.iter().filter(|m| m.id != s.id) {
            let lag = s
                .last_log_index
                .saturating_sub(m.matched_index.unwrap_or(0));
            o.sample(
                "statusmesh_raft_replication_lag_entries",
                &[("member", &m.id.to_string()), ("region", &m.info.region)],
                lag as f64,
            );
        }
    }

    o.counter(
        "statusmesh_raft_elections_total",
        "Elections this node started (each round as a candidate).",
        node.metrics.elections.load(Ordering::Relaxed) as f64,
    );
    o.counter(
        "statusmesh_raft_leader_changes_total",
        "Times this node saw a different leader take over.",
        node.metrics.leader_changes.load(Ordering::Relaxed) as f64,
    );
    o.histogram(
        "statusmesh_proposal_duration_seconds",
        "Writes proposed through this node (admin writes and the maintenance scheduler's), from arrival to commit, forwarding and retries included.",
        &node.metrics.proposal_seconds.snapshot(),
    );
    o.counter(
        "statusmesh_proposal_failures_total",
        "Writes proposed through this node that failed (no quorum, invalid, fatal).",
        node.metrics.proposal_failures.load(Ordering::Relaxed) as f64,
    );
    let snapshots = node.snapshot_metrics();
    o.histogram(
        "statusmesh_snapshot_build_duration_seconds",
        "Snapshots this node built from its state (count) and how long each took.",
        &snapshots.built_seconds.snapshot(),
    );
    o.histogram(
        "statusmesh_snapshot_install_duration_seconds",
        "Snapshots this node installed from the leader (count) and how long each took.",
        &snapshots.installed_seconds.snapshot(),
    );

    o.gauge(
        "statusmesh_webhook_pending_deliveries",
        "Deliveries waiting to be sent or retried (replicated).",
        outbox.pending as f64,
    );
    o.gauge(
        "statusmesh_webhook_failed_deliveries",
        "Deliveries that gave up (schedule exhausted, subscriber disabled or quarantined).",
        outbox.failed as f64,
    );
    o.counter(
        "statusmesh_webhook_delivered_total",
        "Deliveries acknowledged with a 2xx (replicated, cluster-wide).",
        outbox.delivered_total as f64,
    );
    o.counter(
        "statusmesh_webhook_attempts_total",
        "Delivery attempts recorded (replicated, cluster-wide).",
        outbox.attempts_total as f64,
    );
    o.gauge(
        "statusmesh_webhook_quarantined_subscribers",
        "Subscribers quarantined after repeated failures.",
        outbox.quarantined_subscribers as f64,
    );
    o.gauge(
        "statusmesh_webhook_in_flight",
        "Requests this node's dispatcher has running or awaiting their record.",
        dispatch.in_flight.load(Ordering::Relaxed) as f64,
    );
    o.counter(
        "statusmesh_webhook_sent_total",
        "Requests this node has sent since it started.",
        dispatch.sent_total.load(Ordering::Relaxed) as f64,
    );
    o.counter(
        "statusmesh_webhook_record_bytes_total",
        "Encoded bytes of the attempt and fan-out records this node proposed.",
        dispatch.record_bytes.load(Ordering::Relaxed) as f64,
    );
    o.gauge(
        "statusmesh_webhook_fanning_out",
        "Events whose fan-out has not reached every subscriber yet.",
        outbox.fanning_out as f64,
    );
    o.gauge(
        "statusmesh_webhook_dispatching",
        "1 while this node's dispatcher sends (leader within its lease).",
        if dispatch.dispatching.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        },
    );
    o.histogram(
        "statusmesh_webhook_attempt_duration_seconds",
        "Requests this node's dispatcher sent, by how long each took (any outcome).",
        &dispatch.attempt_seconds.snapshot(),
    );
    o.histogram(
        "statusmesh_webhook_delivery_lag_seconds",
        "Deliveries this node completed, by the time from the event's commit to the 2xx (retries and failovers included).",
        &dispatch.delivery_lag_seconds.snapshot(),
    );
    o.requests(
        "statusmesh_http",
        "Public HTTP requests",
        "route",
        &[],
        &ports.http.snapshot(),
        |c| c.to_string(),
    );
    let grpc_code = |c: u16| grpc_code_name(tonic::Code::from(i32::from(c))).to_owned();
    o.requests(
        "statusmesh_grpc_admin",
        "Admin port gRPC calls",
        "method",
        &[],
        &ports.admin.snapshot(),
        grpc_code,
    );
    o.requests(
        "statusmesh_grpc_peer",
        "Peer port gRPC calls (Raft, forwarded writes, read index)",
        "method",
        &[],
        &ports.peer.snapshot(),
        grpc_code,
    );
    connections(&mut o, admissions);
    o.counter(
        "statusmesh_clock_clamped_total",
        "Writes this node stamped with the voters' time because its own clock ran ahead of it.",
        node.clock.clamped() as f64,
    );
    o.gauge(
        "statusmesh_clock_largest_clamp_seconds",
        "How far ahead of the voters' time this node's clock was at its largest clamp.",
        node.clock.largest_clamp_ms() as f64 / 1000.0,
    );
    o.gauge(
        "statusmesh_store_disk_bytes",
        "Bytes RocksDB uses on disk for this node's log and snapshots.",
        s.disk_bytes as f64,
    );
    o.finish()
}

/// Each port's connections: held now, the cap, and those shed at the cap.
fn connections(o: &mut Exposition, admissions: &[Admission]) {
    let families = [
        (
            "statusmesh_port_connections",
            "gauge",
            "Connections each port holds now.",
        ),
        (
            "statusmesh_port_connection_limit",
            "gauge",
            "The most connections each port holds at once (see [limits]).",
        ),
        (
            "statusmesh_port_connections_shed_total",
            "counter",
            "Connections closed on arrival because their port was at its limit.",
        ),
    ];
    for (i, (name, kind, help)) in families.into_iter().enumerate() {
        o.family(name, kind, help);
        for a in admissions {
            let v = match i {
                0 => a.open() as f64,
                1 => a.max() as f64,
                _ => a.shed() as f64,
            };
            o.sample(name, &[("port", a.port())], v);
        }
    }
}
