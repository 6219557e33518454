//! Golden fixtures (`tests/golden/`, see its README): values written by earlier builds, which
//! this build must decode — forever, to the same state and digest, or through a migration
//! that says what changes.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use statusmesh_model::backup::{sha256_hex, Backup, BACKUP_V1, BACKUP_V2, BACKUP_V3, BACKUP_V4};
use statusmesh_model::format::{self, STATE_V1, STATE_V2, STATE_V3, STATE_V4};
use statusmesh_model::restore::RESTORE_CHUNK_BYTES;
use statusmesh_model::*;

use common::scenario::{self, HOUR, T0};

/// The digests the fixtures' states decode to with this build. Each may change only with a
/// new format version whose migration says why (see `statusmesh_model::format`).
///
/// v1 → the v1 migration drops each attempt record's duplicate `event` key, then the v2
/// migration reshapes the outbox (see `format::v2`), so the digest is not the one the v1
/// writer computed (`manifest.json`).
const V1_DECODED_DIGEST: &str = "26c92f80e3a8e9a04a287f8c0438b6da3384e8a9eb7891993416b7c886c34afe";
/// A v2 snapshot taken part-way through a chunked restore (its empty attempt log is now a list).
const V2_RESTORING_DIGEST: &str =
    "2cc32f76a767185e05bbb98d1358843dfaa769182c4825fed7ee4c2ef8ae1015";
/// v2 → the v2 migration (fan-out cursors, incident events without update copies, one attempt
/// log, subscribers' `since`): v1 and v2 fixtures were written from the same history and
/// still decode to one state.
const V2_DECODED_DIGEST: &str = V1_DECODED_DIGEST;
/// v3: in the current format, the digest is the writer's.
const V3_DECODED_DIGEST: &str = "f63091d90511d95010bed846d6c4b8648c06b28126dd231ecbda42f607a28373";
/// v4: in the current format, the digest is the writer's (the scenario with email subscribers).
const V4_DECODED_DIGEST: &str = "187b652f676c6aaeeae517196f0e4d9156223810360a45d2b533b321f4654988";
const V3_RESTORING_DIGEST: &str =
    "94767d2e2be8028733dd6f997f89b88cbc3580a9ba3a924b552abb3713dda3a3";
const V4_RESTORING_DIGEST: &str =
    "4c6e2fabf36142d30ad21d38b4fd9bd3e08d856876db65172acfd2a2a6b37959";

fn golden(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(version)
}

fn read(version: &str, file: &str) -> Vec<u8> {
    let path = golden(version).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest(version: &str) -> serde_json::Value {
    serde_json::from_slice(&read(version, "manifest.json")).unwrap()
}

/// Writes the fixtures of this build's formats into `tests/golden/<STATUSMESH_WRITE_GOLDEN>`,
/// refusing to touch a directory that exists: fixtures are never rewritten.
/// `STATUSMESH_WRITE_GOLDEN=v3 cargo test --workspace --test golden -- --ignored write_golden_fixtures`
#[test]
#[ignore = "writes fixtures; run by hand when a format version is added"]
fn write_golden_fixtures() {
    let Ok(version) = std::env::var("STATUSMESH_WRITE_GOLDEN") else {
        panic!("set STATUSMESH_WRITE_GOLDEN to the new fixture directory's name");
    };
    let dir = golden(&version);
    assert!(
        !dir.exists(),
        "{} exists: fixtures are never rewritten",
        dir.display()
    );
    std::fs::create_dir_all(&dir).unwrap();
    let s = scenario::rich();
    std::fs::write(
        dir.join("snapshot.bin"),
        format::encode_state(&s.state).unwrap(),
    )
    .unwrap();
    let backup = Backup::of(&s.state, 1, s.index, Timestamp(T0 + 100 * HOUR)).unwrap();
    std::fs::write(dir.join("backup.smbackup"), codec::encode(&backup).unwrap()).unwrap();
    let manifest = serde_json::json!({
        "applied_index": s.index,
        "state_digest_as_written": s.state.digest(),
        "commands": s.log.len(),
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

/// A state with a chunked restore under way (the first chunk of `version`'s backup in): the
/// only state field the scenario's final state leaves empty.
fn restoring_state(version: &str) -> State {
    let backup: Backup = codec::decode(&read(version, "backup.smbackup")).unwrap();
    let mut state = State::default();
    apply_ok(&mut state, 1, backup.begin_command());
    apply_ok(
        &mut state,
        2,
        backup
            .chunk_command(0)
            .map(|c| match c {
                Command::RestoreChunk { digest, data, .. } => Command::RestoreChunk {
                    digest,
                    offset: 0,
                    data: data[..data.len() / 2].to_owned(),
                },
                other => other,
            })
            .unwrap(),
    );
    state
}

/// Writes `tests/golden/<STATUSMESH_WRITE_GOLDEN>/snapshot-restoring.bin` from that
/// directory's backup (refusing an existing file).
#[test]
#[ignore = "writes a fixture; run by hand"]
fn write_golden_restoring_snapshot() {
    let Ok(version) = std::env::var("STATUSMESH_WRITE_GOLDEN") else {
        panic!("set STATUSMESH_WRITE_GOLDEN to the fixture directory's name");
    };
    let path = golden(&version).join("snapshot-restoring.bin");
    assert!(
        !path.exists(),
        "{} exists: fixtures are never rewritten",
        path.display()
    );
    std::fs::write(
        path,
        format::encode_state(&restoring_state(&version)).unwrap(),
    )
    .unwrap();
}

#[test]
fn snapshots_of_a_restore_under_way_decode_with_their_progress() {
    for (version, digest) in [
        ("v2", V2_RESTORING_DIGEST),
        ("v3", V3_RESTORING_DIGEST),
        ("v4", V4_RESTORING_DIGEST),
    ] {
        let bytes = read(version, "snapshot-restoring.bin");
        let state = format::decode_state(&bytes).unwrap();
        let p = state.restoring.as_ref().expect("the restore progress");
        assert!(!p.received.is_empty());
        assert_eq!(p.bytes as usize, read_backup_state_len(version));
        assert_eq!(state.digest(), digest, "{version}");
        assert_eq!(state, restoring_state(version), "{version}");
    }
    // Format 4 only adds to format 3: a v3 state encodes to the same JSON.
    let v3 = read("v3", "snapshot-restoring.bin");
    let again = format::encode_state(&format::decode_state(&v3).unwrap()).unwrap();
    assert_eq!((again[0], &again[1..]), (STATE_V4, &v3[1..]));
}

fn read_backup_state_len(version: &str) -> usize {
    let backup: Backup = codec::decode(&read(version, "backup.smbackup")).unwrap();
    backup.state.len()
}

/// What the scenario's state holds, checked on every decoded fixture (beyond its digest).
fn assert_rich(state: &State) {
    assert_eq!(state.page.name, "Acme Cloud");
    assert_eq!(state.components.len(), 3);
    assert_eq!(state.maintenances.len(), 3);
    assert_eq!(state.tokens.by_name.len(), 2);
    let log = &state.outbox.attempt_log;
    assert!(log
        .iter()
        .any(|r| r.report.event == 1 && r.webhook_id == "msg_page1_1"));
    let mut outcomes: std::collections::BTreeSet<&str> =
        log.iter().map(|r| r.report.outcome.as_str()).collect();
    // (From v4 on, the scenario's operator-added email subscriber bounces.)
    outcomes.remove("bounced");
    assert_eq!(
        outcomes,
        ["delivered", "exhausted", "retry"].into_iter().collect(),
        "the gone subscriber was removed with its log"
    );
    assert!(state
        .subscribers
        .values()
        .any(|s| s.state.as_str() == "quarantined"));
}

#[test]
fn v1_snapshot_with_duplicate_event_keys_decodes_through_the_migration() {
    let bytes = read("v1", "snapshot.bin");
    assert_eq!(bytes[0], STATE_V1);
    let body = std::str::from_utf8(&bytes[1..]).unwrap();
    // The fixture is the buggy shape: serde itself refuses it.
    assert!(body
        .contains(r#"{"event":1,"webhook_id":"msg_page1_1","kind":"incident_created","event":1,"#));
    // (This build's reader refuses it sooner: the attempt log was a map then.)
    assert!(serde_json::from_str::<State>(body).is_err());
    // The writer's digest was over exactly these bytes.
    assert_eq!(
        sha256_hex(&bytes[1..]),
        manifest("v1")["state_digest_as_written"].as_str().unwrap()
    );

    let state = format::decode_state(&bytes).unwrap();
    assert_rich(&state);
    assert_eq!(state.digest(), V1_DECODED_DIGEST);
    assert_ne!(
        state.digest(),
        manifest("v1")["state_digest_as_written"].as_str().unwrap()
    );
    // Both fixtures were written from the same history: the migration gives exactly the state
    // the current format holds.
    assert_eq!(
        state,
        format::decode_state(&read("v2", "snapshot.bin")).unwrap()
    );
    // Written again, it is the current format, and reads back equal.
    let again = format::encode_state(&state).unwrap();
    assert_eq!(again[0], STATE_V4);
    assert_eq!(format::decode_state(&again).unwrap(), state);
}

#[test]
fn v1_backup_is_verified_and_restores_to_the_migrated_state() {
    let bytes = read("v1", "backup.smbackup");
    let backup: Backup = codec::decode(&bytes).unwrap();
    assert_eq!(backup.format, BACKUP_V1);
    assert_eq!(
        backup.applied_index,
        manifest("v1")["applied_index"].as_u64().unwrap()
    );
    let state = backup.verified_state().unwrap();
    assert_eq!(state.digest(), V1_DECODED_DIGEST);

    // Through the log: in one entry (logs of earlier builds) and in chunks (this build).
    let text = String::from_utf8(bytes).unwrap();
    let mut one = State::default();
    let applied = apply_ok(&mut one, 1, Command::Restore { backup: text });
    assert_eq!(applied, Applied::Restored(V1_DECODED_DIGEST.into()));
    let mut chunked = State::default();
    let restored = restore_in_chunks(&mut chunked, &backup, 1000);
    assert_eq!(restored, Applied::Restored(V1_DECODED_DIGEST.into()));
    assert_eq!(chunked, one);
}

/// The explicit deliveries a state's JSON holds: (event, subscriber, attempts, pending).
fn deliveries_in(json: &serde_json::Value) -> Vec<(String, String, u64, bool)> {
    let mut out = Vec::new();
    for (seq, by_sub) in json["outbox"]["deliveries"].as_object().unwrap() {
        for (sub, d) in by_sub.as_object().unwrap() {
            out.push((
                seq.clone(),
                sub.clone(),
                d["attempts"].as_u64().unwrap(),
                d["state"]["state"] == "pending",
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn v2_fixtures_migrate_without_losing_a_queued_delivery() {
    let bytes = read("v2", "snapshot.bin");
    assert_eq!(bytes[0], STATE_V2);
    let state = format::decode_state(&bytes).unwrap();
    assert_rich(&state);
    assert_eq!(state.digest(), V2_DECODED_DIGEST);
    assert_ne!(
        state.digest(),
        manifest("v2")["state_digest_as_written"].as_str().unwrap()
    );
    // Every delivery v2 stored explicitly is still there, as it was; no event fans out again.
    let written: serde_json::Value = serde_json::from_slice(&bytes[1..]).unwrap();
    let migrated = serde_json::to_value(&state).unwrap();
    assert_eq!(deliveries_in(&migrated), deliveries_in(&written));
    assert!(state.outbox.events.values().all(|e| e.fanout.is_none()));
    // Incident events keep the header and how many updates existed; rebuilt from the state,
    // the incident is the one v2 copied.
    for (seq, event) in written["outbox"]["events"].as_object().unwrap() {
        if event["subject"]["subject"] != "incident" {
            continue;
        }
        let copy: Incident = serde_json::from_value(event["subject"]["incident"].clone()).unwrap();
        let e = &state.outbox.events[&seq.parse::<u64>().unwrap()];
        assert_eq!(e.incident_as_recorded(&state).unwrap(), copy, "event {seq}");
    }
    let again = format::encode_state(&state).unwrap();
    assert_eq!(again[0], STATE_V4);
    assert_eq!(format::decode_state(&again).unwrap(), state);

    let backup: Backup = codec::decode(&read("v2", "backup.smbackup")).unwrap();
    assert_eq!(backup.format, BACKUP_V2);
    assert_eq!(backup.verified_state().unwrap(), state);
    let mut restored = State::default();
    let applied = restore_in_chunks(&mut restored, &backup, RESTORE_CHUNK_BYTES);
    assert_eq!(applied, Applied::Restored(V2_DECODED_DIGEST.into()));
}

#[test]
fn v3_fixtures_decode_to_their_digest() {
    let bytes = read("v3", "snapshot.bin");
    assert_eq!(bytes[0], STATE_V3);
    let state = format::decode_state(&bytes).unwrap();
    assert_rich(&state);
    assert_eq!(state.digest(), V3_DECODED_DIGEST);
    // In the current format, the digest is the writer's.
    assert_eq!(
        state.digest(),
        manifest("v3")["state_digest_as_written"].as_str().unwrap()
    );
    // Format 4 only adds to format 3: the same JSON behind the new version byte.
    let again = format::encode_state(&state).unwrap();
    assert_eq!((again[0], &again[1..]), (STATE_V4, &bytes[1..]));
    assert!(state.subscribers.values().all(|s| s.since > 0));

    let backup: Backup = codec::decode(&read("v3", "backup.smbackup")).unwrap();
    assert_eq!(backup.format, BACKUP_V3);
    assert_eq!(backup.verified_state().unwrap(), state);
    let mut restored = State::default();
    let applied = restore_in_chunks(&mut restored, &backup, RESTORE_CHUNK_BYTES);
    assert_eq!(applied, Applied::Restored(V3_DECODED_DIGEST.into()));
}

#[test]
fn v4_fixtures_hold_email_subscribers_and_decode_to_their_digest() {
    let bytes = read("v4", "snapshot.bin");
    assert_eq!(bytes[0], STATE_V4);
    let state = format::decode_state(&bytes).unwrap();
    assert_rich(&state);
    assert_eq!(state.digest(), V4_DECODED_DIGEST);
    assert_eq!(
        state.digest(),
        manifest("v4")["state_digest_as_written"].as_str().unwrap()
    );
    assert_eq!(format::encode_state(&state).unwrap(), bytes);
    assert!(state.page.email_subscriptions);
    let states: std::collections::BTreeMap<&str, &str> = ["jane", "bob", "ops"]
        .into_iter()
        .map(|who| {
            let id = email_subscriber_id(&format!("{who}@example.com"));
            (who, state.subscribers[&id].state.as_str())
        })
        .collect();
    assert_eq!(
        states,
        [
            ("bob", "active"),
            ("jane", "unconfirmed"),
            ("ops", "bounced")
        ]
        .into_iter()
        .collect()
    );
    let bob = &state.subscribers[&email_subscriber_id("bob@example.com")];
    assert_eq!(bob.email(), Some("bob@example.com"));
    assert_eq!(bob.component_ids.len(), 1);
    assert!(bob.notice_at.is_some());
    let kinds: std::collections::BTreeSet<EventKind> =
        state.outbox.events.values().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::SubscriptionConfirm));
    assert!(kinds.contains(&EventKind::SubscriptionManage));
    assert!(state
        .outbox
        .attempt_log
        .iter()
        .any(|r| r.report.outcome.as_str() == "bounced"));

    let backup: Backup = codec::decode(&read("v4", "backup.smbackup")).unwrap();
    assert_eq!(backup.format, BACKUP_V4);
    assert_eq!(backup.verified_state().unwrap(), state);
    let mut restored = State::default();
    let applied = restore_in_chunks(&mut restored, &backup, RESTORE_CHUNK_BYTES);
    assert_eq!(applied, Applied::Restored(V4_DECODED_DIGEST.into()));
}

#[test]
fn this_build_writes_the_v4_fixtures_byte_for_byte() {
    // While v4 is current, the scenario encodes to the committed fixture: a change to the
    // encoding (or to the scenario) shows up here first. When v5 is added, this test moves on
    // to v5 and v4 stays decoded above.
    let s = scenario::rich();
    assert_eq!(
        format::encode_state(&s.state).unwrap(),
        read("v4", "snapshot.bin")
    );
}

#[test]
fn a_tampered_or_unknown_backup_is_refused_with_its_reason() {
    let mut backup: Backup = codec::decode(&read("v3", "backup.smbackup")).unwrap();
    let good = backup.clone();
    backup.state = backup.state.replacen("Acme Cloud", "Acme Cloue", 1);
    let err = backup.verified_state().unwrap_err().to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    let mut future = good.clone();
    future.format = 9;
    let err = future.verified_state().unwrap_err().to_string();
    assert!(
        err.contains("format 9 is not one this build reads"),
        "{err}"
    );
}

fn apply_ok(state: &mut State, index: u64, command: Command) -> Applied {
    let p = Proposal::internal(format!("golden-{index}"), "golden", 1, command);
    state
        .apply(index, &p)
        .result
        .unwrap_or_else(|e| panic!("refused: {e}"))
}

/// Restores `backup` through `RestoreBegin` and chunks of at most `chunk` bytes, checking that
/// a repeated chunk is refused without a change; returns the last chunk's answer.
fn restore_in_chunks(state: &mut State, backup: &Backup, chunk: usize) -> Applied {
    let mut index = 1;
    assert_eq!(
        apply_ok(state, index, backup.begin_command()),
        Applied::RestoreReceived(0)
    );
    let text = &backup.state;
    let mut offset = 0;
    loop {
        let mut end = (offset + chunk).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let command = Command::RestoreChunk {
            digest: backup.digest.clone(),
            offset: offset as u64,
            data: text[offset..end].to_owned(),
        };
        index += 1;
        let applied = apply_ok(state, index, command.clone());
        if end == text.len() {
            return applied;
        }
        assert_eq!(applied, Applied::RestoreReceived(end as u64));
        let before = state.digest();
        let p = Proposal::internal(format!("dup-{index}"), "golden", 1, command);
        assert!(state.apply(index + 1, &p).result.is_err());
        assert_eq!(state.digest(), before, "a repeated chunk changed the state");
        offset = end;
    }
}

#[test]
fn a_restore_whose_text_does_not_match_its_digest_is_refused_at_the_last_chunk_and_changes_nothing()
{
    let mut backup: Backup = codec::decode(&read("v2", "backup.smbackup")).unwrap();
    // The text no longer hashes to the digest: every chunk but the last is taken (nothing can
    // be checked before the whole text is in), the last is refused and changes nothing.
    backup.state = backup.state.replacen("Acme Cloud", "Acme Cloue", 1);
    let mut state = State::default();
    apply_ok(&mut state, 1, backup.begin_command());
    let half = backup.state.len() / 2;
    let first = Command::RestoreChunk {
        digest: backup.digest.clone(),
        offset: 0,
        data: backup.state[..half].to_owned(),
    };
    apply_ok(&mut state, 2, first);
    let before = state.clone();
    let last = Command::RestoreChunk {
        digest: backup.digest.clone(),
        offset: half as u64,
        data: backup.state[half..].to_owned(),
    };
    let p = Proposal::internal("golden-last".into(), "golden", 1, last);
    let err = state.apply(3, &p).result.unwrap_err().to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(state, before);
    assert_eq!(state.restoring.as_ref().unwrap().received.len(), half);
    // Beginning another backup's restore replaces the unfinished one.
    let other: Backup = codec::decode(&read("v1", "backup.smbackup")).unwrap();
    let restored = restore_in_chunks(&mut state, &other, RESTORE_CHUNK_BYTES);
    assert_eq!(restored, Applied::Restored(V1_DECODED_DIGEST.into()));
}

/// Item 14 of the hardening issue: a restore retried after its reply was lost (it applied)
/// used to be refused as "not empty"; it answers as a replay of the same restore, and only
/// while the state still is that backup.
#[test]
fn a_retried_restore_that_already_applied_answers_as_a_replay() {
    let text = String::from_utf8(read("v3", "backup.smbackup")).unwrap();
    let backup: Backup = codec::decode(text.as_bytes()).unwrap();
    let p = Proposal::internal(
        "restore-retried".into(),
        "operator",
        1,
        Command::Restore { backup: text },
    );
    let mut state = State::default();
    let first = state.apply(1, &p);
    assert!(!first.replayed);
    let restored = first.result.unwrap();
    assert!(matches!(restored, Applied::Restored(_)), "{restored:?}");
    let digest = state.digest();
    let again = state.apply(2, &p);
    assert!(again.replayed, "{again:?}");
    assert_eq!(again.result.unwrap(), restored);
    assert_eq!(state.digest(), digest, "the replay changed nothing");

    // The chunked path: the last chunk retried after the restore completed.
    let mut chunked = State::default();
    let done = restore_in_chunks(&mut chunked, &backup, 64 * 1024);
    let retried = Proposal::internal(
        "chunk-retried".into(),
        "operator",
        1,
        Command::RestoreChunk {
            digest: backup.digest.clone(),
            offset: 0,
            data: backup.state[..16].to_owned(),
        },
    );
    let again = chunked.apply(100, &retried);
    assert!(again.replayed, "{again:?}");
    assert_eq!(again.result.unwrap(), done);

    // Once the state is no longer the backup (anything else written since), refused as before.
    state.clock = statusmesh_model::Timestamp(state.clock.0 + 1);
    let later = state.apply(3, &p);
    assert!(!later.replayed);
    assert!(later.result.is_err(), "{later:?}");
}
