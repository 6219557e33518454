//! Every state the cluster reaches survives every persistence path, with real processes:
//! snapshots taken while subscribers receive webhooks (attempt records of every outcome in
//! them), a follower SIGKILLed and restarted after the log it missed was purged (it installs a
//! snapshot), a new member added after the purge (it installs one too), and a backup restored
//! into a fresh cluster. Every node converges to one digest, and no acknowledged write or
//! pending delivery is lost.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_server::config::WebhooksConfig;
use statusmesh_tests::backups::*;
use statusmesh_tests::notify::*;
use statusmesh_tests::receiver::{Behavior, Receiver};
use statusmesh_tests::*;

const LIMIT: Duration = Duration::from_secs(60);
const SNAPSHOT_EVERY: u64 = 20;

fn snapshots_built(node: &TestNode) -> usize {
    node.log().matches("snapshot built").count()
}

fn snapshots_installed(node: &TestNode) -> usize {
    node.log().matches("snapshot installed").count()
}

/// An incident update through `c`, retried (same key) until acknowledged.
async fn update_incident(
    c: &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
    id: &str,
    n: usize,
) {
    let k = key(&format!("upd{n}"));
    eventually(LIMIT, "an acknowledged incident update", || {
        let mut c = c.clone();
        let k = k.clone();
        async move {
            c.update_incident(write(
                pb::UpdateIncidentRequest {
                    id: id.into(),
                    body: format!("Update {n}: still working on it."),
                    status: Some(
                        if n.is_multiple_of(2) {
                            "identified"
                        } else {
                            "monitoring"
                        }
                        .into(),
                    ),
                    ..Default::default()
                },
                &k,
            ))
            .await
            .ok()
        }
    })
    .await;
}

/// Every incident the writes created, with its number of updates, as node `i` holds them.
async fn incidents(cluster: &TestCluster, i: usize) -> BTreeMap<String, usize> {
    let mut c = cluster.admin(i).await.unwrap();
    c.list_incidents(read(pb::ListIncidentsRequest {
        limit: 1000,
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
    .incidents
    .into_iter()
    .map(|i| (i.id, i.updates.len()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_survives_snapshots_a_restart_a_new_member_and_a_backup() {
    let recv = Receiver::start().await;
    // One subscriber fails for a while (retries in the snapshots), one asks to be removed
    // (410: disabled, on a receiver of its own), the others answer at once.
    recv.set("/s/flaky", Behavior::FailTimes(6));
    let gone = Receiver::start().await;
    gone.set_default(Behavior::Gone);
    let cfg = WebhooksConfig {
        allow_loopback: true,
        request_timeout_ms: 2_000,
        retry_schedule_s: vec![0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        ..WebhooksConfig::default()
    };
    let mut cluster = TestCluster::start_configured(3, SNAPSHOT_EVERY, cfg);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(leader).await.unwrap();
    let api = create_component(&mut c, "API").await;
    let mut secrets = BTreeMap::new();
    for path in ["/s/0", "/s/1", "/s/flaky"] {
        let s = add_subscriber(&mut c, recv.url(path), vec![], "statuspage").await;
        secrets.insert(path.to_owned(), s.secret);
    }
    add_subscriber(&mut c, gone.url("/gone"), vec![], "statuspage").await;

    let created = c
        .create_incident(write(
            pb::CreateIncidentRequest {
                name: "Storage degraded".into(),
                status: Some("investigating".into()),
                impact: Some("major".into()),
                body: "Writes are slow in one region.".into(),
                component_changes: vec![pb::ComponentChange {
                    component_id: api.clone(),
                    status: "partial_outage".into(),
                }],
                ..Default::default()
            },
            &key("inc"),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(Entity::Incident(incident)) = created.entity else {
        panic!("no incident in {created:?}");
    };
    let mut updates = 1;
    for _ in 0..5 {
        update_incident(&mut c, &incident.id, updates).await;
        updates += 1;
    }

    // A follower dies; the others keep writing and snapshotting until the log it missed is
    // purged behind two snapshots.
    let leader = cluster.wait_leader(LIMIT).await;
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    let built_before = snapshots_built(&cluster.nodes[leader]);
    while snapshots_built(&cluster.nodes[leader]) < built_before + 2 {
        update_incident(&mut c, &incident.id, updates).await;
        updates += 1;
        assert!(updates < 400, "no two snapshots after {updates} updates");
    }
    for _ in 0..SNAPSHOT_EVERY + 5 {
        update_incident(&mut c, &incident.id, updates).await;
        updates += 1;
    }
    let status = cluster.status(leader).await.unwrap();
    println!(
        "follower down; {updates} updates, leader at index {}, {} snapshots built",
        status.applied_index,
        snapshots_built(&cluster.nodes[leader])
    );

    // It comes back, installs a snapshot holding attempt records, and catches up.
    let installed_before = snapshots_installed(&cluster.nodes[follower]);
    cluster.spawn(follower);
    let digest = cluster.wait_converged(LIMIT).await;
    assert!(
        snapshots_installed(&cluster.nodes[follower]) > installed_before,
        "the restarted follower caught up without a snapshot: the log was not purged\n{}",
        cluster.nodes[follower].log()
    );

    // A new member joins after the purge: it too starts from a snapshot.
    let new = cluster.start_extra_node(4);
    let mut f = cluster.admin(follower).await.unwrap();
    f.add_node(read(cluster.nodes[new].add_node_request()))
        .await
        .unwrap();
    f.promote_node(read(pb::NodeIdRequest { id: 4 }))
        .await
        .unwrap();
    let with_four = cluster.wait_converged(LIMIT).await;
    assert!(snapshots_installed(&cluster.nodes[new]) >= 1);
    assert_ne!(
        with_four, digest,
        "the membership change is audited: a write"
    );

    // Every subscriber got every event; the outbox drains (the 410 subscriber's deliveries
    // failed, nothing else).
    let events = event_ids(&c, 1000).await;
    assert!(events.len() >= updates, "{} events", events.len());
    assert_all_delivered(&recv, &secrets, &events).await;
    let drained = wait_outbox_drained(&c, LIMIT).await;
    assert_eq!(drained.pending, 0, "{drained:?}");
    assert!(gone.count() >= 1, "the 410 subscriber was never tried");
    println!(
        "{} events delivered to {} subscribers ({} requests); snapshots installed: follower {}, new member {}",
        events.len(),
        secrets.len(),
        recv.count(),
        snapshots_installed(&cluster.nodes[follower]),
        snapshots_installed(&cluster.nodes[new])
    );
    let digest = cluster.wait_converged(LIMIT).await;
    // Every acknowledged write is on every node.
    let want = incidents(&cluster, leader).await;
    assert_eq!(want.get(&incident.id), Some(&updates));
    for i in 0..cluster.nodes.len() {
        assert_eq!(incidents(&cluster, i).await, want, "node {i}");
    }

    // A backup of that state restores into a fresh cluster with the same digest.
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("state.backup");
    assert_eq!(statusctl_backup(&cluster, new, &file), digest);
    drop(cluster);
    let options = ClusterOptions {
        snapshot_every: SNAPSHOT_EVERY,
        ..ClusterOptions::default()
    };
    let mut target = emptied_cluster_with_restore(3, options, &file, LIMIT).await;
    for i in 0..3 {
        target.spawn(i);
    }
    target.wait_leader(LIMIT).await;
    for i in 0..3 {
        wait_digest(&target, i, &digest, LIMIT).await;
    }
    assert_eq!(incidents(&target, 2).await, want);
}
