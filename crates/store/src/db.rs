//! The one RocksDB instance of a node. All column families share one WAL, so a vote and a log
//! append can never be reordered on disk.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options, WriteOptions, DB};

use crate::codec;
use crate::types::NodeId;

/// Vote, committed log id, last purged log id, node identity.
pub(crate) const CF_META: &str = "meta";
/// Log entries keyed by big-endian index.
pub(crate) const CF_LOGS: &str = "logs";
/// The latest snapshot (meta and data, written in one batch).
pub(crate) const CF_SNAPSHOT: &str = "snapshot";

pub(crate) const KEY_IDENTITY: &[u8] = b"identity";

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the RocksDB store at {path}: {source}")]
    Rocks {
        path: String,
        #[source]
        source: rocksdb::Error,
    },
    #[error(
        "the data directory {path} belongs to node {stored}, not node {configured}; \
         a node id and its data directory go together (use a fresh directory for a new id)"
    )]
    WrongNode {
        path: String,
        stored: NodeId,
        configured: NodeId,
    },
    #[error("cannot read the node identity in {path}: {reason}")]
    Identity { path: String, reason: String },
}

/// The most table files RocksDB keeps open at once.
pub const MAX_OPEN_FILES: i32 = 256;

#[derive(Debug)]
pub(crate) struct Db {
    pub(crate) db: DB,
}

impl Db {
    /// Opens (creating if needed) the store of node `node_id` at `path`. A directory written by
    /// another node id is refused: reusing it would let one node impersonate another's log.
    pub(crate) fn open(path: &Path, node_id: NodeId) -> Result<Arc<Db>, OpenError> {
        let shown = path.display().to_string();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Bounded so the node can budget its file descriptors (`statusmesh_server::fds`);
        // RocksDB closes the least recently used table files past it.
        opts.set_max_open_files(MAX_OPEN_FILES);
        let mut logs = Options::default();
        logs.set_compression_type(DBCompressionType::Lz4);
        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_META, Options::default()),
            ColumnFamilyDescriptor::new(CF_LOGS, logs),
            ColumnFamilyDescriptor::new(CF_SNAPSHOT, Options::default()),
        ];
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|source| OpenError::Rocks {
            path: shown.clone(),
            source,
        })?;
        let db = Db { db };
        db.check_identity(&shown, node_id)?;
        Ok(Arc::new(db))
    }

    fn check_identity(&self, path: &str, node_id: NodeId) -> Result<(), OpenError> {
        let ident_err = |reason: String| OpenError::Identity {
            path: path.to_owned(),
            reason,
        };
        let stored = self
            .db
            .get_cf(self.cf(CF_META), KEY_IDENTITY)
            .map_err(|e| ident_err(e.to_string()))?;
        match stored {
            Some(bytes) => {
                let stored: NodeId = codec::decode(&bytes).map_err(|e| ident_err(e.to_string()))?;
                if stored != node_id {
                    return Err(OpenError::WrongNode {
                        path: path.to_owned(),
                        stored,
                        configured: node_id,
                    });
                }
            }
            None => {
                let bytes = codec::encode(&node_id).map_err(|e| ident_err(e.to_string()))?;
                self.db
                    .put_cf_opt(self.cf(CF_META), KEY_IDENTITY, bytes, &synced())
                    .map_err(|e| ident_err(e.to_string()))?;
            }
        }
        Ok(())
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        // The three families are created at open; a missing one is a programming error.
        #[allow(clippy::expect_used)]
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    /// Total size of the live SST files and memtables, for status reporting.
    pub(crate) fn approximate_size(&self) -> u64 {
        let prop = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        prop("rocksdb.total-sst-files-size") + prop("rocksdb.cur-size-all-mem-tables")
    }
}

/// Write options that fsync the WAL before returning.
pub(crate) fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}
