//! A backup: the whole replicated state at one applied index, with its digest.
//!
//! `statusctl backup` writes one ([`codec`](crate::codec)-encoded); `statusmesh restore`
//! seeds a new cluster with it through the log (`Command::Restore`), so every replica of the new
//! cluster applies the same state and the restored digest equals the backup's.

use serde::{Deserialize, Serialize};

use crate::error::CommandError;
use crate::ids::Timestamp;
use crate::state::State;

/// The backup format this build writes and reads.
pub const BACKUP_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub format: u32,
    pub taken_at: Timestamp,
    /// The node it was taken from and the log index its state reflects.
    pub node_id: u64,
    pub applied_index: u64,
    /// `State::digest` of `state`.
    pub digest: String,
    /// The state as JSON (kept as text so the digest can be checked before it is used).
    pub state: String,
}

impl Backup {
    pub fn of(state: &State, node_id: u64, applied_index: u64, taken_at: Timestamp) -> Backup {
        Backup {
            format: BACKUP_FORMAT,
            taken_at,
            node_id,
            applied_index,
            digest: state.digest(),
            state: serde_json::to_string(state).unwrap_or_default(),
        }
    }

    /// The state, once its format and digest are checked.
    pub fn verified_state(&self) -> Result<State, CommandError> {
        if self.format != BACKUP_FORMAT {
            return Err(CommandError::invalid(
                "backup",
                format!(
                    "format {} is not {BACKUP_FORMAT}, the one this build reads",
                    self.format
                ),
            ));
        }
        let state: State = serde_json::from_str(&self.state).map_err(|e| {
            CommandError::invalid("backup", format!("the state does not parse: {e}"))
        })?;
        let digest = state.digest();
        if digest != self.digest {
            return Err(CommandError::invalid(
                "backup",
                format!(
                    "digest mismatch: the file says {} but its state hashes to {digest}",
                    self.digest
                ),
            ));
        }
        Ok(state)
    }
}
