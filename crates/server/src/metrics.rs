//! Prometheus text exposition (version 0.0.4) for `/metrics` on the public port: Raft role,
//! term and indexes, replication lag per follower, proposal latency, webhook outbox and
//! dispatcher counts, store size. Rendered on demand from the node's own view; cheap (no lock
//! held across anything slow, nothing serialised but numbers).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use statusmesh_cluster::ClusterNode;
use statusmesh_webhook::DispatchStats;

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value);
    }
}

/// The whole exposition.
pub fn render(node: &ClusterNode, dispatch: &DispatchStats) -> String {
    let mut o = Out(String::with_capacity(4096));
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

    let (buckets, count, sum) = node.metrics.proposal_seconds.snapshot();
    o.family(
        "statusmesh_proposal_duration_seconds",
        "histogram",
        "Admin writes from arrival at this node to commit, forwarding and retries included.",
    );
    for (le, c) in &buckets {
        o.sample(
            "statusmesh_proposal_duration_seconds_bucket",
            &[("le", &le.to_string())],
            *c as f64,
        );
    }
    o.sample(
        "statusmesh_proposal_duration_seconds_bucket",
        &[("le", "+Inf")],
        count as f64,
    );
    o.sample("statusmesh_proposal_duration_seconds_sum", &[], sum);
    o.sample(
        "statusmesh_proposal_duration_seconds_count",
        &[],
        count as f64,
    );
    o.counter(
        "statusmesh_proposal_failures_total",
        "Admin writes that failed (no quorum, invalid, fatal).",
        node.metrics.proposal_failures.load(Ordering::Relaxed) as f64,
    );

    let outbox = {
        let data = node.replica().read();
        data.state.outbox.stats(&data.state.subscribers)
    };
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
    o.gauge(
        "statusmesh_webhook_dispatching",
        "1 while this node's dispatcher sends (leader within its lease).",
        if dispatch.dispatching.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        },
    );
    o.gauge(
        "statusmesh_store_disk_bytes",
        "Bytes RocksDB uses on disk for this node's log and snapshots.",
        s.disk_bytes as f64,
    );
    o.0
}
