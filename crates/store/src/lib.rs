//! Durable storage for one statusmesh node: the Raft log, vote and snapshots in one RocksDB
//! instance, and the state machine that applies committed proposals to the replicated
//! [`statusmesh_model::State`].
//!
//! Architecture invariant: this is the only crate that links RocksDB. It honours every
//! openraft storage-v2 contract (synced vote, WAL-synced append before the callback, no holes,
//! atomic snapshot install) and every persisted value starts with a format version byte.

// openraft's storage traits return its `StorageError` by value; our helpers return the same type
// so `?` flows straight through. Boxing it would only add conversions at every trait boundary.
#![allow(clippy::result_large_err)]

/// The persisted encoding lives in the model crate (it has no storage dependency, so the fuzzers
/// can decode log entries without building RocksDB); re-exported here for the store's users.
pub use statusmesh_model::codec;
mod db;
mod log_store;
mod state_machine;
mod types;

use std::path::Path;

pub use codec::{CodecError, FORMAT_V1};
pub use db::{OpenError, MAX_OPEN_FILES};
pub use log_store::LogStore;
pub use state_machine::{Replica, ReplicaData, SnapshotMetrics, StateMachineStore};
pub use types::*;

/// Opens node `node_id`'s store at `path`: the log store and the state machine, both backed by
/// the same RocksDB instance. The state machine starts from the latest persisted snapshot.
pub fn open(path: &Path, node_id: NodeId) -> Result<(LogStore, StateMachineStore), OpenError> {
    let db = db::Db::open(path, node_id)?;
    let sm = StateMachineStore::load(db.clone()).map_err(|e| OpenError::Identity {
        path: path.display().to_string(),
        reason: format!("cannot load the latest snapshot: {e}"),
    })?;
    Ok((LogStore::new(db), sm))
}
