//! Golden fixtures at the storage layer: log entries of every command kind as RocksDB holds
//! them (`tests/golden/`), and the model's snapshot fixtures installed and reloaded through the
//! real state machine — the path of a node upgraded in place over data an older build wrote.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, Membership};
use statusmesh_model::testkit;
use statusmesh_model::{codec, Applied, Command};
use statusmesh_store::{Entry, LogId, SnapshotMeta, StoredMembership, TypeConfig};
use tempfile::TempDir;

/// The digest the v1 scenario's state decodes to in this build (the model's v1 and v2
/// fixtures, migrated; pinned in the model's golden test too).
const SCENARIO_DIGEST: &str = "26c92f80e3a8e9a04a287f8c0438b6da3384e8a9eb7891993416b7c886c34afe";
/// The digest the v1 entries replay to: the scenario's history two log indexes later (behind
/// the membership and blank entries), which the state records (event and audit indexes). It
/// changed with state format 3, without a change of the entry format: the v1 history's
/// `RecordAttempts` name deliveries of the incident event that this build does not store one
/// by one (the event fans out instead), so they are stale here and the fan-out is owed again —
/// a replayed old log repeats those deliveries under their `webhook-id`, it loses none.
const V1_ENTRIES_DIGEST: &str = "85d552e91aab90a9b19ab7d70821017ded0b8bc6af99959d09fd8ea6cee5ae6c";
/// The digest the v3 entries (this build's scenario, with fan-out reports and an import)
/// replay to.
const V3_ENTRIES_DIGEST: &str = "540092242a6019fc4ca4b162cbb30f732e09983f28c6d8bf8a7c308733079ef6";
/// The digest of the state the v3 entries' restores hold (that build's scenario; the model's
/// `V3_DECODED_DIGEST`).
const V3_SCENARIO_DIGEST: &str = "f63091d90511d95010bed846d6c4b8648c06b28126dd231ecbda42f607a28373";
/// The digest the v4 entries (the scenario with email subscriptions) replay to.
const V4_ENTRIES_DIGEST: &str = "c17c0265852d731fc86630001a49d808e352b48b21807d19fe324b086ae4e807";
/// The digest the v2 access fixtures name (the scenario's state as state format 2 wrote it).
const V2_ACCESS_DIGEST: &str = "0a113fafea9323372440da18f300f9f10c88cc1b711f21077050705734d5e776";

fn golden(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(version)
}

fn model_fixture(version: &str, file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../model/tests/golden")
        .join(version)
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(2, 1), index)
}

/// The entries the fixture holds: the scenario's history (a membership entry, a blank entry,
/// then every command it applied), then a whole-backup restore and a chunked one (which only
/// apply to an empty state).
fn scenario_entries() -> Vec<Entry> {
    let s = testkit::rich();
    let mut entries = vec![
        Entry {
            log_id: log_id(1),
            payload: EntryPayload::Membership(Membership::new(
                vec![[1u64, 2, 3].into_iter().collect()],
                None,
            )),
        },
        Entry {
            log_id: log_id(2),
            payload: EntryPayload::Blank,
        },
    ];
    for (i, (_, p)) in s.log.into_iter().enumerate() {
        entries.push(Entry {
            log_id: log_id(i as u64 + 3),
            payload: EntryPayload::Normal(p),
        });
    }
    let mut restores = vec![testkit::restore_of(&s.state, s.index)];
    let backup: statusmesh_model::backup::Backup = codec::decode(match &restores[0] {
        Command::Restore { backup } => backup.as_bytes(),
        _ => unreachable!(),
    })
    .unwrap();
    restores.push(backup.begin_command());
    restores.push(backup.chunk_command(0).unwrap());
    let next = entries.len() as u64 + 1;
    for (i, command) in restores.into_iter().enumerate() {
        let p = statusmesh_model::Proposal::internal(format!("restore-{i}"), "restore", 1, command);
        entries.push(Entry {
            log_id: log_id(next + i as u64),
            payload: EntryPayload::Normal(p),
        });
    }
    entries
}

fn entry_name(e: &Entry) -> String {
    match &e.payload {
        EntryPayload::Blank => "blank".into(),
        EntryPayload::Membership(_) => "membership".into(),
        EntryPayload::Normal(p) => p.command.name().into(),
    }
}

/// Writes `tests/golden/<STATUSMESH_WRITE_GOLDEN>/entries/`, refusing an existing directory.
#[test]
#[ignore = "writes fixtures; run by hand when a format version is added"]
fn write_golden_entries() {
    let version = std::env::var("STATUSMESH_WRITE_GOLDEN").expect("STATUSMESH_WRITE_GOLDEN");
    let dir = golden(&version).join("entries");
    assert!(
        !dir.exists(),
        "{} exists: fixtures are never rewritten",
        dir.display()
    );
    std::fs::create_dir_all(&dir).unwrap();
    for e in scenario_entries() {
        let file = format!("{:03}-{}.bin", e.log_id.index, entry_name(&e));
        std::fs::write(dir.join(file), codec::encode(&e).unwrap()).unwrap();
    }
}

fn read_entries(version: &str) -> Vec<(String, Vec<u8>, Entry)> {
    let dir = golden(version).join("entries");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            let entry: Entry = codec::decode(&bytes)
                .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, bytes, entry)
        })
        .collect()
}

/// Byte for byte what this build writes: the log format has not changed.
fn assert_written_by_this_build(entries: &[(String, Vec<u8>, Entry)]) {
    for (name, bytes, entry) in entries {
        assert_eq!(
            &codec::encode(entry).unwrap(),
            bytes,
            "{name} encodes differently now"
        );
    }
}

#[tokio::test]
async fn v1_log_entries_of_every_command_kind_decode_and_replay_to_the_scenario_state() {
    replay_entries("v1", V1_ENTRIES_DIGEST, SCENARIO_DIGEST).await;
}

#[tokio::test]
async fn v3_log_entries_with_fan_out_reports_and_an_import_replay_to_the_scenario_state() {
    let entries = read_entries("v3");
    let kinds: BTreeSet<String> = entries.iter().map(|(_, _, e)| entry_name(e)).collect();
    assert!(kinds.contains("import_subscribers"));
    assert!(entries.iter().any(|(_, _, e)| matches!(&e.payload,
        EntryPayload::Normal(p) if matches!(&p.command,
            Command::RecordAttempts { progress, .. } if !progress.is_empty()))));
    replay_entries("v3", V3_ENTRIES_DIGEST, V3_SCENARIO_DIGEST).await;
}

#[tokio::test]
async fn v4_log_entries_with_email_subscriptions_replay_to_the_scenario_state() {
    let entries = read_entries("v4");
    let kinds: BTreeSet<String> = entries.iter().map(|(_, _, e)| entry_name(e)).collect();
    for kind in [
        "request_subscription",
        "confirm_subscription",
        "set_subscriber_components",
        "expire_subscribers",
        "import_subscribers",
    ] {
        assert!(kinds.contains(kind), "no fixture entry of kind {kind}");
    }
    let scenario = testkit::rich().state.digest();
    replay_entries("v4", V4_ENTRIES_DIGEST, &scenario).await;
}

/// Decodes `version`'s entries (byte for byte what this build writes), checks every command
/// kind is there, replays the history through the real state machine to `digest`, and the
/// restores to `restored`.
async fn replay_entries(version: &str, digest: &str, restored: &str) {
    let entries = read_entries(version);
    assert_written_by_this_build(&entries);
    let kinds: BTreeSet<String> = entries.iter().map(|(_, _, e)| entry_name(e)).collect();
    for kind in [
        "blank",
        "membership",
        "set_page",
        "create_component",
        "update_component",
        "set_component_status",
        "delete_component",
        "create_incident",
        "update_incident",
        "resolve_incident",
        "publish_postmortem",
        "schedule_maintenance",
        "update_maintenance",
        "cancel_maintenance",
        "auto_transition_maintenance",
        "add_subscriber",
        "remove_subscriber",
        "set_subscriber_state",
        "rotate_subscriber_secret",
        "test_subscriber",
        "replay_event",
        "record_attempts",
        "create_token",
        "revoke_token",
        "restore",
        "restore_begin",
        "restore_chunk",
        "add_node",
        "promote_node",
        "remove_node",
    ] {
        assert!(kinds.contains(kind), "no fixture entry of kind {kind}");
    }

    // The history, applied by the real state machine, reaches the scenario's state.
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = statusmesh_store::open(dir.path(), 1).unwrap();
    let (history, restores): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .map(|(_, _, e)| e)
        .partition(|e| !matches!(&e.payload, EntryPayload::Normal(p) if p.command.is_restore()));
    let mut model = statusmesh_model::State::default();
    for e in &history {
        if let EntryPayload::Normal(p) = &e.payload {
            model.apply(e.log_id.index, p).result.unwrap();
        }
    }
    let responses = sm.apply(history).await.unwrap();
    assert!(responses
        .iter()
        .filter_map(|r| r.outcome.as_ref())
        .all(|o| o.result.is_ok()));
    let replayed = sm.replica().read().state.clone();
    assert_eq!(replayed, model);
    assert_eq!(replayed.digest(), digest, "{version}");
    assert_eq!(replayed.page.name, "Acme Cloud");
    // (The v1 history's attempts name deliveries this build does not store; see
    // `V1_ENTRIES_DIGEST`.)
    assert_eq!(replayed.outbox.attempt_log.is_empty(), version == "v1");

    // The restores, into an empty state: whole, and chunked (begin + one chunk).
    for group in [vec![restores[0].clone()], restores[1..].to_vec()] {
        let dir = TempDir::new().unwrap();
        let (_log, mut sm) = statusmesh_store::open(dir.path(), 1).unwrap();
        let out = sm.apply(group).await.unwrap();
        let last = out.last().unwrap().outcome.clone().unwrap().result.unwrap();
        assert_eq!(last, Applied::Restored(restored.into()), "{version}");
    }
}

#[tokio::test]
async fn a_node_upgraded_in_place_over_a_v1_snapshot_starts_with_the_migrated_state() {
    let dir = TempDir::new().unwrap();
    let meta = SnapshotMeta {
        last_log_id: Some(log_id(43)),
        last_membership: StoredMembership::new(
            Some(log_id(1)),
            Membership::new(vec![[1u64, 2, 3].into_iter().collect()], None),
        ),
        snapshot_id: "written-by-v1".into(),
    };
    {
        // What the old build left in RocksDB: its snapshot bytes, exactly (the install path
        // writes the bytes it is given, as a snapshot from an old leader would arrive).
        let (_log, mut sm) = statusmesh_store::open(dir.path(), 1).unwrap();
        sm.install_snapshot(
            &meta,
            Box::new(Cursor::new(model_fixture("v1", "snapshot.bin"))),
        )
        .await
        .unwrap();
        assert_eq!(sm.replica().read().state.digest(), SCENARIO_DIGEST);
    }
    // The new build starts over it (the load path).
    let (log, mut sm) = statusmesh_store::open(dir.path(), 1).unwrap();
    assert_eq!(sm.replica().read().state.digest(), SCENARIO_DIGEST);
    assert_eq!(sm.replica().applied_index(), 43);
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(43)));
    assert_eq!(membership.log_id(), &Some(log_id(1)));
    // Its next snapshot is written in the current format, and reloads.
    let mut builder = sm.get_snapshot_builder().await;
    let snap = openraft::RaftSnapshotBuilder::<TypeConfig>::build_snapshot(&mut builder)
        .await
        .unwrap();
    assert_eq!(
        snap.snapshot.get_ref()[0],
        statusmesh_model::format::STATE_V4
    );
    drop((builder, sm, log));
    let (_log, sm) = statusmesh_store::open(dir.path(), 1).unwrap();
    assert_eq!(sm.replica().read().state.digest(), SCENARIO_DIGEST);
}

/// The entries added with format v2 of the log's commands: the access records
/// (`RecordAccess`), one of each kind, with fixed values.
fn access_entries() -> Vec<Entry> {
    use statusmesh_model::command::Access;
    let accesses = [
        Access::Backup {
            digest: V2_ACCESS_DIGEST.into(),
            applied_index: 41,
        },
        Access::FailedAuthentications {
            source: "2001:db8:1::/64".into(),
            count: 17,
            since: statusmesh_model::Timestamp(1_764_000_000_000),
        },
    ];
    accesses
        .into_iter()
        .enumerate()
        .map(|(i, access)| {
            let mut p = statusmesh_model::Proposal::internal(
                format!("access:0123456789abcdef:{i}"),
                if i == 0 { "oncall" } else { "authentication" },
                2,
                Command::RecordAccess { access },
            );
            p.at = statusmesh_model::Timestamp(1_764_000_060_000 + i as i64);
            Entry {
                log_id: log_id(i as u64 + 1),
                payload: EntryPayload::Normal(p),
            }
        })
        .collect()
}

/// Writes `tests/golden/v2/entries/` (the access records), refusing an existing directory.
#[test]
#[ignore = "writes fixtures; run by hand when a format version is added"]
fn write_golden_access_entries() {
    let dir = golden("v2").join("entries");
    assert!(
        !dir.exists(),
        "{} exists: fixtures are never rewritten",
        dir.display()
    );
    std::fs::create_dir_all(&dir).unwrap();
    for e in access_entries() {
        let file = format!("{:03}-{}.bin", e.log_id.index, entry_name(&e));
        std::fs::write(dir.join(file), codec::encode(&e).unwrap()).unwrap();
    }
}

#[tokio::test]
async fn v2_access_entries_decode_byte_for_byte_and_add_only_audit_records() {
    let entries = read_entries("v2");
    assert_written_by_this_build(&entries);
    let kinds: BTreeSet<String> = entries.iter().map(|(_, _, e)| entry_name(e)).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["backup".to_owned(), "failed_authentications".to_owned()])
    );
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = statusmesh_store::open(dir.path(), 1).unwrap();
    let out = sm
        .apply(entries.into_iter().map(|(_, _, e)| e).collect::<Vec<_>>())
        .await
        .unwrap();
    for o in &out {
        assert_eq!(
            o.outcome.as_ref().unwrap().result,
            Ok(Applied::AccessRecorded)
        );
    }
    let state = sm.replica().read().state.clone();
    let records: Vec<_> = state.audit.records.iter().collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].action, "backup");
    assert_eq!(records[0].actor, "oncall");
    assert_eq!(
        records[0].target.as_deref(),
        Some(format!("state {V2_ACCESS_DIGEST}").as_str())
    );
    assert_eq!(records[1].action, "failed_authentications");
    assert_eq!(records[1].target.as_deref(), Some("2001:db8:1::/64"));
    assert!(records[1].detail.contains("17"), "{}", records[1].detail);
    // Nothing but the audit (and the bookkeeping every write has) changed.
    assert!(state.components.is_empty() && state.outbox.events.is_empty());
}
