//! Backups and restores the way an operator makes them: `statusctl backup` against a node,
//! `statusmesh restore` into an emptied cluster of real processes.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::{binary, eventually, ClusterOptions, TestCluster, TOKEN};

/// `statusctl --output json --linearizable backup --out FILE` through node `i`; returns the
/// digest the backup reports.
pub fn statusctl_backup(cluster: &TestCluster, i: usize, file: &Path) -> String {
    let out = Command::new(binary("statusctl"))
        .env("STATUSMESH_ENDPOINT", cluster.nodes[i].admin_endpoint())
        .env("STATUSMESH_CA_CERT", cluster.ca_cert().unwrap())
        .env("STATUSMESH_TOKEN", TOKEN)
        .args(["--output", "json", "--linearizable", "backup", "--out"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    made["digest"].as_str().unwrap().to_owned()
}

/// `statusmesh restore --from FILE --config <node's config>`.
pub fn statusmesh_restore(file: &Path, config: &Path) -> Output {
    Command::new(binary("statusmesh"))
        .args(["restore", "--from"])
        .arg(file)
        .arg("--config")
        .arg(config)
        .env_remove("STATUSMESH_CONFIG")
        .output()
        .unwrap()
}

/// A new cluster of `n` nodes, started once (so it has certificates and configs), stopped and
/// emptied, with `file` staged on its first node: the state a restore starts from. Its nodes
/// are not running.
pub async fn emptied_cluster_with_restore(
    n: u64,
    options: ClusterOptions,
    file: &Path,
    limit: Duration,
) -> TestCluster {
    let mut target = TestCluster::start_options(n, options);
    target.wait_leader(limit).await;
    for i in 0..target.nodes.len() {
        target.stop(i);
        target.wipe(i);
    }
    let out = statusmesh_restore(file, &target.nodes[0].config_path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target
}

/// Waits until node `i` holds `digest`.
pub async fn wait_digest(cluster: &TestCluster, i: usize, digest: &str, limit: Duration) {
    eventually(limit, "the restored digest", || async move {
        let s = cluster.status(i).await.ok()?;
        (s.state_digest == digest).then_some(())
    })
    .await;
}

/// Waits for the audit record of the backup `digest` on node `i` and returns it.
pub async fn backup_audit_record(
    cluster: &TestCluster,
    i: usize,
    digest: &str,
) -> statusmesh_proto::admin::AuditRecord {
    use statusmesh_proto::admin as pb;
    let audit = cluster.admin(i).await.unwrap();
    let target = format!("state {digest}");
    eventually(Duration::from_secs(30), "the backup's audit record", || {
        let (mut audit, target) = (audit.clone(), target.clone());
        async move {
            let list = audit
                .list_audit(crate::read(pb::ListAuditRequest {
                    action: Some("backup".into()),
                    ..Default::default()
                }))
                .await
                .ok()?
                .into_inner();
            list.records
                .into_iter()
                .find(|r| r.target.as_deref() == Some(target.as_str()))
        }
    })
    .await
}
