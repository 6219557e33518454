//! Seeding a new cluster from a backup.
//!
//! `statusmesh restore --from FILE --config node.toml` checks the backup (format, digest) and
//! that the node's data directory is empty, then leaves the backup in the data directory as
//! `restore.pending`. When that node next serves and the cluster has a leader, it proposes
//! `Command::Restore` with the backup: the state travels through the log, so every member of
//! the new cluster applies it and holds the backup's digest. The marker is removed once the
//! state is in place; a cluster that already holds data is never overwritten.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use statusmesh_cluster::ClusterNode;
use statusmesh_model::backup::Backup;
use statusmesh_model::{codec, Command, Proposal};
use tokio::sync::watch;

use crate::config::Config;

/// The pending-restore marker inside a data directory.
pub fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join("restore.pending")
}

/// Reads and checks a backup file.
pub fn read_backup(path: &Path) -> anyhow::Result<(Backup, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let backup: Backup = codec::decode(&bytes)
        .with_context(|| format!("{} is not a statusmesh backup", path.display()))?;
    backup
        .verified_state()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((backup, bytes))
}

/// `statusmesh restore`: stages `from` for the node configured by `config`.
pub fn prepare(config: &Config, from: &Path) -> anyhow::Result<Backup> {
    let (backup, bytes) = read_backup(from)?;
    let raft = config.data_dir.join("raft");
    let holds_data = std::fs::read_dir(&raft)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if holds_data {
        anyhow::bail!(
            "{} already holds this node's data: a backup seeds a new cluster, so restore into an empty data_dir (nothing was changed)",
            raft.display()
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let path = marker(&config.data_dir);
    std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(backup)
}

/// While serving: applies a staged backup once the cluster has a leader.
pub async fn apply_pending(
    node: Arc<ClusterNode>,
    data_dir: PathBuf,
    write_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let path = marker(&data_dir);
    let Ok((backup, bytes)) = read_backup(&path) else {
        if path.exists() {
            tracing::error!(file = %path.display(), "the staged restore is unreadable; remove it or stage it again");
        }
        return;
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let (empty, digest) = {
            let data = node.replica().read();
            (data.state.is_empty(), data.state.digest())
        };
        if digest == backup.digest {
            let _ = std::fs::remove_file(&path);
            tracing::info!(digest = %backup.digest, "the backup is in place");
            return;
        }
        if !empty {
            let refused = data_dir.join("restore.refused");
            let _ = std::fs::rename(&path, &refused);
            tracing::error!(file = %refused.display(), "not restoring: the cluster already holds data");
            return;
        }
        if node.is_member() && node.status().leader.is_some() {
            let command = Command::Restore {
                backup: String::from_utf8_lossy(&bytes).into_owned(),
            };
            let key = format!("restore-{}", backup.digest);
            let proposal = Proposal::internal(key, "restore", node.id, command);
            match node.propose(proposal, write_timeout).await {
                Ok(out) => match out.result {
                    Ok(_) => {
                        tracing::info!(
                            index = out.index,
                            from_node = backup.node_id,
                            from_index = backup.applied_index,
                            "backup restored"
                        );
                        continue; // the digest check above removes the marker once applied here
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the backup was refused");
                        let _ = std::fs::rename(&path, data_dir.join("restore.refused"));
                        return;
                    }
                },
                Err(e) => tracing::warn!(error = %e, "restore not committed yet; retrying"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return,
        }
    }
}
