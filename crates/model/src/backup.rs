//! A backup: the whole replicated state at one applied index, with its digest.
//!
//! `statusctl backup` writes one ([`codec`](crate::codec)-encoded); `statusmesh restore`
//! seeds a new cluster with it through the log, so every replica of the new cluster applies the
//! same state and the restored digest equals the backup's (or, for a backup of an older format,
//! the digest its migration gives: see [`crate::format`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::codec::CodecError;
use crate::error::CommandError;
use crate::format::{self, STATE_V1, STATE_V2, STATE_V3, STATE_V4};
use crate::ids::Timestamp;
use crate::state::State;

/// Backup format 1: `state` is the state's JSON in state format 1.
pub const BACKUP_V1: u32 = 1;
/// Backup format 2: `state` is the state's JSON in state format 2.
pub const BACKUP_V2: u32 = 2;
/// Backup format 3: `state` is the state's JSON in state format 3.
pub const BACKUP_V3: u32 = 3;
/// Backup format 4 (written now): `state` is the state's JSON in state format 4.
pub const BACKUP_V4: u32 = 4;
/// The backup formats this build reads, for messages.
pub const READS: &str = "1, 2, 3 or 4";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub format: u32,
    pub taken_at: Timestamp,
    /// The node it was taken from and the log index its state reflects.
    pub node_id: u64,
    pub applied_index: u64,
    /// The SHA-256 of `state` as written (`State::digest` of the state, when it was taken).
    pub digest: String,
    /// The state as JSON (kept as text so the digest can be checked before it is used).
    pub state: String,
}

/// The hex SHA-256 of some bytes, as digests are written.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Backup {
    pub fn of(
        state: &State,
        node_id: u64,
        applied_index: u64,
        taken_at: Timestamp,
    ) -> Result<Backup, CodecError> {
        let json = serde_json::to_string(state)?;
        Ok(Backup {
            format: BACKUP_V4,
            taken_at,
            node_id,
            applied_index,
            digest: sha256_hex(json.as_bytes()),
            state: json,
        })
    }

    /// The state format of `state`.
    fn state_version(&self) -> Result<u8, CommandError> {
        match self.format {
            BACKUP_V1 => Ok(STATE_V1),
            BACKUP_V2 => Ok(STATE_V2),
            BACKUP_V3 => Ok(STATE_V3),
            BACKUP_V4 => Ok(STATE_V4),
            other => Err(CommandError::invalid(
                "backup",
                format!("format {other} is not one this build reads ({READS})"),
            )),
        }
    }

    /// The state, once the format is known and the text matches its digest (migrated from an
    /// older format if need be).
    pub fn verified_state(&self) -> Result<State, CommandError> {
        self.verified().map(|(state, _)| state)
    }

    /// The verified state and the digest it has (the backup's own in the current format, the
    /// migrated one otherwise), computed once: encoding a large state is the costly part.
    pub fn verified(&self) -> Result<(State, String), CommandError> {
        let version = self.state_version()?;
        let written = sha256_hex(self.state.as_bytes());
        if written != self.digest {
            return Err(CommandError::invalid(
                "backup",
                format!(
                    "digest mismatch: the file says {} but its state hashes to {written}",
                    self.digest
                ),
            ));
        }
        let state = format::state_from_json(version, self.state.as_bytes()).map_err(|e| {
            CommandError::invalid("backup", format!("the state does not parse: {e}"))
        })?;
        // In the current format the decoded state must encode back to the same bytes; a
        // difference is a round-trip bug, and restoring would give a different digest.
        let digest = state.digest();
        if version == STATE_V4 && digest != self.digest {
            return Err(CommandError::invalid(
                "backup",
                format!(
                    "the state does not encode back to its digest {} (got {digest})",
                    self.digest
                ),
            ));
        }
        Ok((state, digest))
    }
}
