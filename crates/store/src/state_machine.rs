//! The state machine: an in-memory [`State`] behind a [`Replica`], persisted as snapshots.
//!
//! Persistence model (one of the two openraft allows, see ARCHITECTURE.md): applying does not
//! write to disk. Every snapshot is written to RocksDB (meta and data in one synced batch, so a
//! crash leaves either the old snapshot or the new one), the log is only purged behind a
//! persisted snapshot, and at start-up openraft re-applies the log from the snapshot up to the
//! saved committed index. So nothing committed is lost and the in-memory state is rebuilt
//! exactly.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError};
use rocksdb::WriteBatch;
use statusmesh_model::{format, State};
use tokio::sync::watch;

use crate::codec;
use crate::db::{synced, Db, CF_SNAPSHOT};
use crate::types::{
    ApplyResponse, Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const KEY_SNAPSHOT_META: &[u8] = b"meta";
const KEY_SNAPSHOT_DATA: &[u8] = b"data";

/// What a replica holds: the state and the log position it reflects.
#[derive(Debug, Default)]
pub struct ReplicaData {
    pub state: State,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

/// The node's applied state, shared with the read paths (admin reads, public pages).
///
/// Readers take a short read lock and never hold it across an `.await`; the applied index is
/// also published on a watch channel so a reader can wait for a given index without polling.
#[derive(Debug)]
pub struct Replica {
    data: RwLock<ReplicaData>,
    applied: watch::Sender<u64>,
}

/// An empty replica (index 0, the empty state), as a node has before it applies anything.
impl Default for Replica {
    fn default() -> Self {
        Self::new()
    }
}

impl Replica {
    fn new() -> Self {
        Replica {
            data: RwLock::new(ReplicaData::default()),
            applied: watch::Sender::new(0),
        }
    }

    /// Read access to the replica. Keep the guard short and never across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, ReplicaData> {
        self.data
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the replica has applied at least `index`; false if `timeout` passes first.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= index))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// A receiver that sees every new applied index.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ReplicaData> {
        self.data
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish(&self, last_applied: Option<LogId>) {
        let index = last_applied.map_or(0, |l| l.index);
        self.applied.send_replace(index);
    }
}

/// The openraft state machine over a [`Replica`]. Clones share the replica and the database.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    db: Arc<Db>,
    replica: Arc<Replica>,
    snapshot_seq: Arc<AtomicU64>,
    snapshots: Arc<SnapshotMetrics>,
}

/// How long snapshots took on this node (each histogram's count is the number of snapshots).
#[derive(Debug, Default)]
pub struct SnapshotMetrics {
    /// Building one from the replica: serialising the state and writing it to RocksDB.
    pub built_seconds: statusmesh_metrics::Histogram,
    /// Installing one received from the leader: decoding, writing, replacing the replica.
    pub installed_seconds: statusmesh_metrics::Histogram,
}

fn sm_err(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        openraft::AnyError::new(&e),
    )
    .into()
}

fn snap_err(
    meta: Option<&SnapshotMeta>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError {
    StorageIOError::new(
        ErrorSubject::Snapshot(meta.map(|m| m.signature())),
        verb,
        openraft::AnyError::new(&e),
    )
    .into()
}

impl StateMachineStore {
    /// Loads the latest persisted snapshot, if any, into a fresh replica.
    pub(crate) fn load(db: Arc<Db>) -> Result<Self, StorageError> {
        let sm = StateMachineStore {
            db,
            replica: Arc::new(Replica::new()),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            snapshots: Arc::default(),
        };
        if let Some((meta, data)) = sm.read_snapshot()? {
            let state = format::decode_state(&data)
                .map_err(|e| snap_err(Some(&meta), ErrorVerb::Read, e))?;
            let mut guard = sm.replica.write();
            guard.state = state;
            guard.last_applied = meta.last_log_id;
            guard.membership = meta.last_membership.clone();
            drop(guard);
            sm.replica.publish(meta.last_log_id);
        }
        Ok(sm)
    }

    pub fn replica(&self) -> Arc<Replica> {
        self.replica.clone()
    }

    pub fn snapshot_metrics(&self) -> Arc<SnapshotMetrics> {
        self.snapshots.clone()
    }

    /// Approximate bytes on disk for the whole node store.
    pub fn disk_size(&self) -> u64 {
        self.db.approximate_size()
    }

    fn read_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let cf = self.db.cf(CF_SNAPSHOT);
        let meta = self
            .db
            .db
            .get_cf(cf, KEY_SNAPSHOT_META)
            .map_err(|e| snap_err(None, ErrorVerb::Read, e))?;
        let Some(meta) = meta else {
            return Ok(None);
        };
        let meta: SnapshotMeta =
            codec::decode(&meta).map_err(|e| snap_err(None, ErrorVerb::Read, e))?;
        let data = self
            .db
            .db
            .get_cf(cf, KEY_SNAPSHOT_DATA)
            .map_err(|e| snap_err(Some(&meta), ErrorVerb::Read, e))?
            .ok_or_else(|| {
                // Meta and data are written in one batch: one without the other is damage.
                snap_err(
                    Some(&meta),
                    ErrorVerb::Read,
                    std::io::Error::other("the snapshot's meta is stored but its data is missing"),
                )
            })?;
        Ok(Some((meta, data)))
    }

    /// Meta and data in one synced batch: after a crash, either the old snapshot or the new one.
    fn write_snapshot(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let meta_bytes =
            codec::encode(meta).map_err(|e| snap_err(Some(meta), ErrorVerb::Write, e))?;
        let cf = self.db.cf(CF_SNAPSHOT);
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, KEY_SNAPSHOT_META, meta_bytes);
        batch.put_cf(cf, KEY_SNAPSHOT_DATA, data);
        self.db
            .db
            .write_opt(batch, &synced())
            .map_err(|e| snap_err(Some(meta), ErrorVerb::Write, e))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let started = std::time::Instant::now();
        // A copy taken under the read lock (the subscribers are a persistent map, shared, not
        // copied), encoded off it: applies go on while a large state is written.
        let (state, last_applied, membership) = {
            let guard = self.replica.read();
            (
                guard.state.clone(),
                guard.last_applied,
                guard.membership.clone(),
            )
        };
        let locked = started.elapsed();
        let data = format::encode_state(&state).map_err(|e| sm_err(ErrorVerb::Read, e))?;
        drop(state);
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{}-{}", l.leader_id, l.index, nanos, seq),
            None => format!("empty-{nanos}-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        self.write_snapshot(&meta, &data)?;
        self.snapshots.built_seconds.observe(started.elapsed());
        tracing::info!(
            snapshot = %meta.snapshot_id,
            bytes = data.len(),
            lock_ms = locked.as_secs_f64() * 1000.0,
            total_ms = started.elapsed().as_secs_f64() * 1000.0,
            "snapshot built"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let guard = self.replica.read();
        Ok((guard.last_applied, guard.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut responses = Vec::new();
        let last = {
            let mut guard = self.replica.write();
            for entry in entries {
                guard.last_applied = Some(entry.log_id);
                let outcome = match entry.payload {
                    EntryPayload::Blank => None,
                    EntryPayload::Normal(proposal) => {
                        Some(guard.state.apply(entry.log_id.index, &proposal))
                    }
                    EntryPayload::Membership(m) => {
                        guard.membership = StoredMembership::new(Some(entry.log_id), m);
                        None
                    }
                };
                responses.push(ApplyResponse { outcome });
            }
            guard.last_applied
        };
        self.replica.publish(last);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        let data = snapshot.into_inner();
        // Decode before anything is written: a corrupt snapshot changes nothing.
        let state =
            format::decode_state(&data).map_err(|e| snap_err(Some(meta), ErrorVerb::Read, e))?;
        self.write_snapshot(meta, &data)?;
        {
            let mut guard = self.replica.write();
            guard.state = state;
            guard.last_applied = meta.last_log_id;
            guard.membership = meta.last_membership.clone();
        }
        self.replica.publish(meta.last_log_id);
        self.snapshots.installed_seconds.observe(started.elapsed());
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.read_snapshot()?.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
