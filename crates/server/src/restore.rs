//! Seeding a new cluster from a backup.
//!
//! `statusmesh restore --from FILE --config node.toml` checks the backup (format, digest) and
//! that the node's data directory is empty, then leaves the backup in the data directory as
//! `restore.pending`. When that node next serves and the cluster has a leader, it proposes
//! `Command::RestoreBegin` and the backup's state in `Command::RestoreChunk`s (each fits a log
//! entry; see `statusmesh_model::restore`): the state travels through the log, so every member
//! of the new cluster applies it and holds the backup's digest. The marker is removed once the
//! state is in place; a cluster that already holds data is never overwritten.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use statusmesh_cluster::ClusterNode;
use statusmesh_model::backup::Backup;
use statusmesh_model::{codec, Applied, Command, Proposal};
use tokio::sync::watch;

use crate::config::Config;

/// The pending-restore marker inside a data directory.
pub fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join("restore.pending")
}

/// Reads and checks a backup file: the backup, the file's bytes, and the digest the restored
/// state will have (the backup's own, or the one its format's migration gives).
pub fn read_backup(path: &Path) -> anyhow::Result<(Backup, Vec<u8>, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let backup: Backup = codec::decode(&bytes)
        .with_context(|| format!("{} is not a statusmesh backup", path.display()))?;
    let (_, restored) = backup
        .verified()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((backup, bytes, restored))
}

/// `statusmesh restore`: stages `from` for the node configured by `config`.
pub fn prepare(config: &Config, from: &Path) -> anyhow::Result<Backup> {
    let (backup, bytes, _) = read_backup(from)?;
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

/// Where the cluster stands with the staged backup, read off this node's replica.
enum Progress {
    /// The state is the backup's.
    Done,
    /// The restore of this backup is under way: this many bytes of its state are in.
    Receiving(u64),
    /// The state is empty: the restore can begin.
    Fresh,
    /// The state holds other data: a backup never overwrites it.
    Occupied,
}

fn progress(node: &ClusterNode, backup: &Backup, restored: &str) -> Progress {
    let data = node.replica().read();
    let state = &data.state;
    match &state.restoring {
        Some(p) if p.digest == backup.digest => Progress::Receiving(p.received.len() as u64),
        _ if state.digest() == restored => Progress::Done,
        _ if state.is_empty() => Progress::Fresh,
        _ => Progress::Occupied,
    }
}

/// A chunk refused this many times at the same offset ends the restore (the backup does not
/// verify, or the cluster took other writes meanwhile).
const MAX_REFUSALS: u32 = 3;

/// While serving: restores a staged backup once the cluster has a leader, in chunks that each
/// fit a log entry (`RestoreBegin`, then `RestoreChunk`s). Progress is read from the replica
/// after every commit, so a leader change, a refused duplicate or a restart of this node
/// resumes where the cluster is, never where this loop thought it was.
/// How soon a restore step is tried again (doubling up to the max).
const RETRY: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub async fn apply_pending(
    node: Arc<ClusterNode>,
    data_dir: PathBuf,
    write_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let path = marker(&data_dir);
    let Ok((backup, _, restored)) = read_backup(&path) else {
        if path.exists() {
            tracing::error!(file = %path.display(), "the staged restore is unreadable; remove it or stage it again");
        }
        return;
    };
    let total = backup.state.len() as u64;
    let mut refusals = (0u64, 0u32);
    let mut reported = 0u64;
    // Waiting for a leader or after a step that did not commit.
    let mut retry = statusmesh_cluster::worker::Backoff::new(RETRY, RETRY_MAX);
    loop {
        if *stop.borrow() {
            return;
        }
        let command = match progress(&node, &backup, &restored) {
            Progress::Done => {
                let _ = std::fs::remove_file(&path);
                tracing::info!(digest = %restored, "the backup is in place");
                return;
            }
            Progress::Occupied => {
                let refused = data_dir.join("restore.refused");
                let _ = std::fs::rename(&path, &refused);
                tracing::error!(file = %refused.display(), "not restoring: the cluster already holds data");
                return;
            }
            Progress::Fresh => Some(backup.begin_command()),
            Progress::Receiving(received) => {
                if received >= reported + total / 10 {
                    reported = received;
                    tracing::info!(received, total, "restoring the backup");
                }
                backup.chunk_command(received)
            }
        };
        let leader_known = node.is_member() && node.status().leader.is_some();
        if let (Some(command), true) = (command, leader_known) {
            let offset = match &command {
                Command::RestoreChunk { offset, .. } => *offset,
                _ => 0,
            };
            let key = format!("restore-{}-{offset}-{}", backup.digest, command.name());
            let proposal = Proposal::internal(key, "restore", node.id, command);
            match node.propose(proposal, write_timeout).await {
                Ok(out) => {
                    retry.reset();
                    // Read the next step off a replica that has applied this one.
                    node.replica().wait_applied(out.index, write_timeout).await;
                    match out.result {
                        Err(e) => {
                            refusals = if refusals.0 == offset {
                                (offset, refusals.1 + 1)
                            } else {
                                (offset, 1)
                            };
                            tracing::warn!(error = %e, offset, "a restore step was refused");
                            if refusals.1 >= MAX_REFUSALS {
                                tracing::error!(error = %e, "the backup was refused");
                                let _ = std::fs::rename(&path, data_dir.join("restore.refused"));
                                return;
                            }
                        }
                        Ok(Applied::Restored(digest)) => tracing::info!(
                            index = out.index,
                            %digest,
                            from_node = backup.node_id,
                            from_index = backup.applied_index,
                            "backup restored"
                        ),
                        Ok(_) => {}
                    }
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "restore step not committed yet; retrying"),
            }
        }
        tokio::select! {
            _ = retry.wait() => {}
            _ = stop.changed() => return,
        }
    }
}
