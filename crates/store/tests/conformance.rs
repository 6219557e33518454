//! The openraft storage conformance suite against the real RocksDB store, plus the store's own
//! guarantees: node identity, snapshot persistence across reopen, corrupt snapshots refused.

#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Membership, RaftSnapshotBuilder};
use statusmesh_model::command::Command;
use statusmesh_model::{Proposal, Timestamp};
use statusmesh_store::{
    LogId, LogStore, NodeInfo, OpenError, SnapshotMeta, StateMachineStore, StorageError,
    StoredMembership, TypeConfig,
};
use tempfile::TempDir;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let (log, sm) = statusmesh_store::open(dir.path(), 0).expect("open store");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_on_rocksdb() {
    if let Err(e) = Suite::test_all(RocksBuilder) {
        panic!("the storage suite failed: {e}");
    }
}

#[test]
fn a_data_directory_belongs_to_one_node_id() {
    let dir = TempDir::new().unwrap();
    drop(statusmesh_store::open(dir.path(), 7).unwrap());
    let err = statusmesh_store::open(dir.path(), 8).unwrap_err();
    assert!(matches!(
        err,
        OpenError::WrongNode {
            stored: 7,
            configured: 8,
            ..
        }
    ));
    assert!(err.to_string().contains("belongs to node 7"), "{err}");
    assert!(statusmesh_store::open(dir.path(), 7).is_ok());
}

fn proposal(key: &str) -> Proposal {
    Proposal {
        idempotency_key: key.into(),
        fingerprint: key.into(),
        at: Timestamp(1_800_000_000_000),
        actor: "test".into(),
        via_node: 1,
        request_id: String::new(),
        command: Command::SetPage {
            page_id: statusmesh_model::Id::parse("id", "page").unwrap(),
            patch: statusmesh_model::command::PagePatch {
                name: Some(format!("page {key}")),
                ..Default::default()
            },
        },
    }
}

fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

#[tokio::test]
async fn snapshots_survive_reopen_and_restore_the_state() {
    let dir = TempDir::new().unwrap();
    let digest = {
        let (mut log, mut sm) = statusmesh_store::open(dir.path(), 1).unwrap();
        let entries = vec![
            openraft::Entry::<TypeConfig> {
                log_id: log_id(1),
                payload: openraft::EntryPayload::Membership(Membership::new(
                    vec![[1u64].into_iter().collect()],
                    None,
                )),
            },
            openraft::Entry::<TypeConfig> {
                log_id: log_id(2),
                payload: openraft::EntryPayload::Normal(proposal("a")),
            },
        ];
        let responses = sm.apply(entries).await.unwrap();
        assert_eq!(responses.len(), 2);
        assert!(responses[0].outcome.is_none());
        assert!(responses[1].outcome.as_ref().unwrap().result.is_ok());
        let mut builder = sm.get_snapshot_builder().await;
        let snap = builder.build_snapshot().await.unwrap();
        assert_eq!(snap.meta.last_log_id, Some(log_id(2)));
        log.save_vote(&openraft::Vote::new(3, 1)).await.unwrap();
        let digest = sm.replica().read().state.digest();
        digest
    };
    let (mut log, mut sm) = statusmesh_store::open(dir.path(), 1).unwrap();
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(openraft::Vote::new(3, 1))
    );
    let replica = sm.replica();
    assert_eq!(replica.read().state.digest(), digest);
    assert_eq!(replica.read().state.page.name, "page a");
    assert_eq!(replica.applied_index(), 2);
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(2)));
    assert_eq!(membership.log_id(), &Some(log_id(1)));
}

#[tokio::test]
async fn a_corrupt_snapshot_is_refused_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = statusmesh_store::open(dir.path(), 1).unwrap();
    let before = sm.replica().read().state.digest();
    let meta = SnapshotMeta {
        last_log_id: Some(log_id(10)),
        last_membership: StoredMembership::default(),
        snapshot_id: "bad".into(),
    };
    let err = sm
        .install_snapshot(&meta, Box::new(Cursor::new(vec![42, 1, 2, 3])))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unsupported format version 42"),
        "{err}"
    );
    assert_eq!(sm.replica().read().state.digest(), before);
    assert!(sm.get_current_snapshot().await.unwrap().is_none());
    let _ = NodeInfo::default();
}
