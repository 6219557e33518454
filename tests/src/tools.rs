//! Third-party tools the tests run (pip and npm packages), installed once per machine under
//! `~/.cache/<name>`.
//!
//! Several tests — in one test binary or in several running at once — may need the same tools
//! on a cold cache. An install runs under an exclusive lock on `<dir>/.lock`, so the first
//! caller installs and the others wait for it, and it is recorded by a marker written last
//! (`<dir>/installed`, holding the pinned versions): an install that was interrupted, or one of
//! other versions, is wiped and redone instead of being trusted half-made.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const LOCK: &str = ".lock";
const MARKER: &str = "installed";

/// The directory `~/.cache/<name>`, with `install` run into it once for this `pinned` set of
/// versions (any text that changes when the versions do).
pub fn installed(name: &str, pinned: &str, install: impl FnOnce(&Path)) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let dir = Path::new(&home).join(".cache").join(name);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))
        .unwrap_or_else(|e| panic!("cannot open {}/{LOCK}: {e}", dir.display()));
    // Blocks until no other process (or thread) is installing; released when `lock` drops.
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}/{LOCK}: {e}", dir.display()));
    let marker = dir.join(MARKER);
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == pinned) {
        return dir;
    }
    wipe_except_lock(&dir);
    install(&dir);
    let mut f =
        File::create(&marker).unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
    f.write_all(pinned.as_bytes())
        .and_then(|()| f.sync_all())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
    drop(lock);
    dir
}

fn wipe_except_lock(dir: &Path) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap();
        if entry.file_name() == LOCK {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
    }
}

/// `~/.cache/<name>/venv` holding the pinned PyPI packages; returns the venv's `bin` directory.
pub fn python_venv(name: &str, packages: &[&str]) -> PathBuf {
    let dir = installed(name, &packages.join("+"), |dir| {
        run_ok(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(dir.join("venv")),
        );
        run_ok(
            Command::new(dir.join("venv/bin/pip"))
                .args(["install", "-q", "--disable-pip-version-check"])
                .args(packages),
        );
    });
    dir.join("venv/bin")
}

/// Runs a command to completion; panics with its output unless it succeeded.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
