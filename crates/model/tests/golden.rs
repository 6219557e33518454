//! Golden fixtures: values written by earlier builds, decoded by this one forever.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use statusmesh_model::backup::Backup;
use statusmesh_model::*;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Writes the fixtures of this build's formats into `tests/golden/<STATUSMESH_WRITE_GOLDEN>`,
/// refusing to touch a directory that exists: fixtures are never rewritten.
/// `STATUSMESH_WRITE_GOLDEN=v1 cargo test -p statusmesh-model --test golden -- --ignored`
#[test]
#[ignore = "writes fixtures; run by hand when a format version is added"]
fn write_golden_fixtures() {
    let Ok(version) = std::env::var("STATUSMESH_WRITE_GOLDEN") else {
        panic!("set STATUSMESH_WRITE_GOLDEN to the new fixture directory's name");
    };
    let dir = golden().join(&version);
    assert!(!dir.exists(), "{} exists: fixtures are never rewritten", dir.display());
    std::fs::create_dir_all(&dir).unwrap();
    let s = common::scenario::rich();
    std::fs::write(dir.join("snapshot.bin"), codec::encode(&s.state).unwrap()).unwrap();
    let backup = Backup::of(&s.state, 1, s.index, Timestamp(common::T0 + 100 * common::HOUR));
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
