//! `statusmesh recover --force-new-cluster`: the way back when a quorum is gone for good (two of
//! three regions destroyed), like etcd's `--force-new-cluster`.
//!
//! On a stopped survivor it rebuilds the state from the local snapshot plus every entry in the
//! local log (entries this node holds but could not know were committed are kept, as etcd
//! does), moves the Raft directory aside (never deletes it), and stages that state as a restore
//! with a flag that makes the next `serve` initialise a one-node cluster of just this node.
//! New nodes then join with `statusctl cluster add-node` and `promote`.
//!
//! It refuses while a quorum of the old membership answers on its peer ports, unless forced
//! twice: forcing a new cluster while the old one lives splits the page in two.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::EntryPayload;
use statusmesh_model::backup::Backup;
use statusmesh_model::{codec, Timestamp};

use crate::config::Config;

/// The flag that makes `serve` initialise a one-node cluster.
pub fn flag(data_dir: &Path) -> PathBuf {
    data_dir.join("force-new-cluster")
}

/// What `recover` did, for the operator.
#[derive(Debug)]
pub struct Recovered {
    pub last_index: u64,
    pub digest: String,
    pub moved_to: PathBuf,
    pub reachable_peers: Vec<u64>,
}

pub async fn force_new_cluster(config: &Config, force: u8) -> anyhow::Result<Recovered> {
    let raft_dir = config.data_dir.join("raft");
    anyhow::ensure!(
        raft_dir.exists(),
        "{} does not exist: there is nothing to recover on this node",
        raft_dir.display()
    );
    // Opening takes RocksDB's lock: a running node makes this fail, which is what we want.
    let (mut log, sm) = statusmesh_store::open(&raft_dir, config.node_id)
        .with_context(|| "cannot open the store (is the node still running? stop it first)")?;
    let replica = sm.replica();
    let (mut state, applied, mut membership) = {
        let data = replica.read();
        (
            data.state.clone(),
            data.last_applied.map(|l| l.index),
            data.membership.membership().clone(),
        )
    };
    // The first entry (index 0) is the initial membership: start there when nothing is applied.
    let first = applied.map_or(0, |i| i + 1);
    let mut last = applied.unwrap_or(0);
    let mut reader = log.get_log_reader().await;
    let entries = reader
        .try_get_log_entries(first..)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the log: {e}"))?;
    for entry in entries {
        match entry.payload {
            EntryPayload::Normal(p) => {
                let _ = state.apply(entry.log_id.index, &p);
            }
            EntryPayload::Membership(m) => membership = m,
            EntryPayload::Blank => {}
        }
        last = entry.log_id.index;
    }
    drop(reader);
    drop(log);
    drop(replica);
    drop(sm);

    // Is the old cluster still alive? Ask every other voter's peer port.
    let voters: Vec<(u64, String)> = membership
        .nodes()
        .filter(|(id, _)| membership.voter_ids().any(|v| v == **id))
        .map(|(id, n)| (*id, n.peer_addr.clone()))
        .collect();
    let mut reachable = Vec::new();
    for (id, addr) in &voters {
        if *id == config.node_id {
            continue;
        }
        let dial =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr));
        if matches!(dial.await, Ok(Ok(_))) {
            reachable.push(*id);
        }
    }
    anyhow::ensure!(
        !voters.is_empty(),
        "this node's data holds no cluster membership: it never joined a cluster, so there is nothing to recover"
    );
    let quorum = voters.len() / 2 + 1;
    let alive = reachable.len() + usize::from(voters.iter().any(|(id, _)| *id == config.node_id));
    if alive >= quorum && force < 2 {
        anyhow::bail!(
            "refusing: {alive} of {} voters answer (nodes {reachable:?} besides this one), which is a quorum; \
             the cluster can still elect a leader, so a forced new cluster would split it. \
             If those nodes are truly gone for good, pass --force twice",
            voters.len()
        );
    }

    let backup = Backup::of(
        &state,
        config.node_id,
        last,
        Timestamp(chrono::Utc::now().timestamp_millis()),
    )?;
    let bytes = codec::encode(&backup)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let moved_to = config.data_dir.join(format!("raft.before-recover-{stamp}"));
    std::fs::rename(&raft_dir, &moved_to)
        .with_context(|| format!("cannot move {} aside", raft_dir.display()))?;
    std::fs::write(crate::restore::marker(&config.data_dir), &bytes)?;
    std::fs::write(flag(&config.data_dir), b"")?;
    Ok(Recovered {
        last_index: last,
        digest: backup.digest,
        moved_to,
        reachable_peers: reachable,
    })
}
