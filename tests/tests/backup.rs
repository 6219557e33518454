//! Backup and restore: `statusctl backup` from a running cluster, `statusmesh restore` into a
//! new one; every member of the new cluster ends with the backup's state digest.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use statusmesh_proto::admin as pb;
use statusmesh_tests::backups::*;
use statusmesh_tests::*;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_into_a_new_cluster_has_the_same_digest() {
    let mut source = TestCluster::start(3);
    source.wait_leader(LIMIT).await;
    let mut c = source.admin(0).await.unwrap();
    for name in ["API", "Dashboard", "Webhooks"] {
        create_component(&mut c, name).await;
    }
    c.create_incident(write(
        pb::CreateIncidentRequest {
            name: "Elevated errors".into(),
            body: "Investigating".into(),
            impact: Some("minor".into()),
            ..Default::default()
        },
        &key("inc"),
    ))
    .await
    .unwrap();
    c.create_token(write(
        pb::CreateTokenRequest {
            name: "oncall".into(),
            role: "operator".into(),
            secret: "s".repeat(40),
        },
        &key("tok"),
    ))
    .await
    .unwrap();

    // Backup through a follower-or-leader, whichever node 2 is.
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("status.backup");
    let digest = statusctl_backup(&source, 1, &file);
    // Taking it is audited (the state moves on by that record), naming the state it holds.
    backup_audit_record(&source, 1, &digest).await;
    // A second backup to the same file is refused and the first is kept.
    let again = Command::new(binary("statusctl"))
        .env("STATUSMESH_ENDPOINT", source.nodes[1].admin_endpoint())
        .env("STATUSMESH_CA_CERT", source.ca_cert().unwrap())
        .env("STATUSMESH_TOKEN", TOKEN)
        .args(["backup", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // A new cluster, stopped and emptied, is seeded from it through node 1.
    let mut target = emptied_cluster_with_restore(3, ClusterOptions::default(), &file, LIMIT).await;
    for i in 0..3 {
        target.spawn(i);
    }
    target.wait_leader(LIMIT).await;
    for i in 0..3 {
        wait_digest(&target, i, &digest, LIMIT).await;
    }
    let mut t = target.admin(2).await.unwrap();
    let comps = t
        .list_components(read(pb::ReadRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(comps.components.len(), 3);
    // The restored cluster takes writes.
    create_component(&mut t, "After restore").await;

    // Restoring into a data directory that holds data is refused, and nothing changes.
    target.stop(0);
    let out = statusmesh_restore(&file, &target.nodes[0].config_path);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds"),
        "{out:?}"
    );
    // A damaged backup is refused with a clear error.
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    let broken = dir.path().join("broken.backup");
    std::fs::write(&broken, bytes).unwrap();
    let out = Command::new(binary("statusmesh"))
        .args(["restore", "--from"])
        .arg(&broken)
        .arg("--config")
        .arg(&target.nodes[0].config_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a statusmesh backup"),
        "{out:?}"
    );
}

fn recover(cfg: &std::path::Path, force: usize) -> std::process::Output {
    let mut cmd = Command::new(binary("statusmesh"));
    cmd.args(["recover", "--force-new-cluster", "--config"])
        .arg(cfg)
        .env_remove("STATUSMESH_CONFIG");
    for _ in 0..force {
        cmd.arg("--force");
    }
    cmd.output().unwrap()
}

/// Two of three regions destroyed: the survivor is forced into a one-node cluster with its data,
/// then two new nodes join and the cluster is healthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_survivor_is_forced_into_a_new_cluster_and_new_nodes_join() {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(leader).await.unwrap();
    for n in 0..5 {
        create_component(&mut c, &format!("before-{n}")).await;
    }
    let before = cluster.wait_converged(LIMIT).await;

    // While the other two are alive, recovery is refused and nothing is touched.
    cluster.stop(0);
    let out = recover(&cluster.nodes[0].config_path, 1);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing") && err.contains("quorum"), "{err}");
    assert!(cluster.nodes[0].config.data_dir.join("raft").exists());

    // Regions 2 and 3 burn down.
    cluster.kill(1);
    cluster.kill(2);
    let out = recover(&cluster.nodes[0].config_path, 0);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING"));
    cluster.spawn(0);
    eventually(
        LIMIT,
        "the survivor leads a one-node cluster with its data",
        || {
            let this = &cluster;
            let before = before.clone();
            async move {
                let s = this.status(0).await.ok()?;
                (s.leader_id == Some(1) && s.state_digest == before && s.members.len() == 1)
                    .then_some(())
            }
        },
    )
    .await;
    let mut c = cluster.admin(0).await.unwrap();
    create_component(&mut c, "after recovery").await;

    // Two new nodes (new ids, empty data) join and become voters.
    for id in [4u64, 5] {
        let i = cluster.start_extra_node(id);
        c.add_node(read(cluster.nodes[i].add_node_request()))
            .await
            .unwrap();
        c.promote_node(read(pb::NodeIdRequest { id }))
            .await
            .unwrap();
    }
    let running = [0, cluster.index_of(4), cluster.index_of(5)];
    let digest = eventually(LIMIT, "the three members converge", || {
        let this = &cluster;
        async move {
            let mut d = None;
            for &i in &running {
                let s = this.status(i).await.ok()?;
                if d.as_ref().is_some_and(|x| x != &s.state_digest) || s.members.len() != 3 {
                    return None;
                }
                d = Some(s.state_digest);
            }
            d
        }
    })
    .await;
    let mut c4 = cluster.admin(cluster.index_of(4)).await.unwrap();
    let comps = c4
        .list_components(read(pb::ReadRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(comps.components.len(), 6);
    assert!(!digest.is_empty());
    // A quorum again: the cluster survives losing the recovered node too.
    cluster.kill(0);
    let mut c5 = cluster.admin(cluster.index_of(5)).await.unwrap();
    eventually(LIMIT, "a write after losing the recovered node", || {
        let mut c5 = c5.clone();
        async move {
            c5.create_component(write(component_request("without node 1"), &key("w1")))
                .await
                .ok()
        }
    })
    .await;
    let _ = c5.get_page(read(pb::ReadRequest::default())).await.unwrap();
}
