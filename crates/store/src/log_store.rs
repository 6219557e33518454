//! The Raft log and vote, in RocksDB.
//!
//! Contracts (openraft storage-v2, see ARCHITECTURE.md):
//! - `save_vote` returns only after a synced write.
//! - `append` writes all entries in one batch and calls back only after the WAL is synced.
//! - `truncate` and `purge` leave no holes: `purge` writes `last_purged` and deletes the range
//!   in one atomic batch; an empty log reports `last_log_id = last_purged`.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{self, index_key, key_index};
use crate::db::{synced, Db, CF_LOGS, CF_META};
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// The log store. Cheap to clone: clones share the database.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: Arc<Db>,
}

fn io_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into()
}

impl LogStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        LogStore { db }
    }

    fn get_meta<T: DeserializeOwned>(
        &self,
        key: &[u8],
        subject: ErrorSubject<NodeId>,
    ) -> Result<Option<T>, StorageError> {
        let bytes = self
            .db
            .db
            .get_cf(self.db.cf(CF_META), key)
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Read, e))?;
        bytes
            .map(|b| codec::decode(&b).map_err(|e| io_err(subject, ErrorVerb::Read, e)))
            .transpose()
    }

    fn put_meta<T: Serialize>(
        &self,
        key: &[u8],
        value: &T,
        subject: ErrorSubject<NodeId>,
        sync: bool,
    ) -> Result<(), StorageError> {
        let bytes =
            codec::encode(value).map_err(|e| io_err(subject.clone(), ErrorVerb::Write, e))?;
        let opts = if sync { synced() } else { Default::default() };
        self.db
            .db
            .put_cf_opt(self.db.cf(CF_META), key, bytes, &opts)
            .map_err(|e| io_err(subject, ErrorVerb::Write, e))
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        let mut it = self
            .db
            .db
            .iterator_cf(self.db.cf(CF_LOGS), IteratorMode::End);
        match it.next() {
            None => Ok(None),
            Some(item) => {
                let (_, value) =
                    item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                let entry: Entry = codec::decode(&value)
                    .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let from = index_key(start);
        let mut out = Vec::new();
        let it = self.db.db.iterator_cf(
            self.db.cf(CF_LOGS),
            IteratorMode::From(&from, Direction::Forward),
        );
        for item in it {
            let (key, value) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let Some(index) = key_index(&key) else {
                continue;
            };
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = codec::decode(&value)
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.get_meta(KEY_LAST_PURGED, ErrorSubject::Store)?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta(KEY_VOTE, vote, ErrorSubject::Vote, true)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(KEY_VOTE, ErrorSubject::Vote)
    }

    /// A hint for re-applying committed entries after a restart; not synced (losing it only
    /// means waiting for the leader to say what is committed).
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_meta(KEY_COMMITTED, &committed, ErrorSubject::Store, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .get_meta::<Option<LogId>>(KEY_COMMITTED, ErrorSubject::Store)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let cf = self.db.cf(CF_LOGS);
        for entry in entries {
            let bytes = codec::encode(&entry)
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
            batch.put_cf(cf, index_key(entry.log_id.index), bytes);
        }
        // The callback tells openraft the entries are durable: only after the synced write.
        match self.db.db.write_opt(batch, &synced()) {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.db.cf(CF_LOGS),
            index_key(log_id.index),
            index_key(u64::MAX),
        );
        // u64::MAX itself is excluded by delete_range; no real log reaches it.
        self.db
            .db
            .write_opt(batch, &synced())
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let bytes =
            codec::encode(&log_id).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.db.cf(CF_META), KEY_LAST_PURGED, bytes);
        batch.delete_range_cf(
            self.db.cf(CF_LOGS),
            index_key(0),
            index_key(log_id.index.saturating_add(1)),
        );
        self.db
            .db
            .write_opt(batch, &synced())
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}
