//! Restoring a backup through the log, in chunks.
//!
//! A backup's state can be far larger than one log entry may hold ([`limits::MAX_ENTRY_BYTES`]),
//! so it travels as a [`Command::RestoreBegin`] and then [`Command::RestoreChunk`]s of at most
//! [`RESTORE_CHUNK_BYTES`] of its state text. Invariants:
//! - The progress ([`RestoreProgress`]) is part of the replicated state, so a snapshot taken
//!   part-way carries it, and a proposer that changed (leader change, restart) resumes from
//!   `received`, never from its own memory.
//! - A chunk is refused unless it starts exactly where the received text ends: a duplicate or
//!   out-of-order chunk changes nothing.
//! - The chunk that completes the text replaces the state only if the whole text hashes to the
//!   backup's digest and parses ([`Backup::verified_state`]) and the state is still empty;
//!   otherwise it is refused and nothing changes. A `RestoreBegin` for the same digest resumes
//!   (it never discards what is in), so text that does not hash to its digest is only ever
//!   replaced by beginning another backup's restore; `statusmesh restore` checks the file's
//!   digest before it sends anything, and gives up after three refusals at one offset.
//!
//! [`Command::RestoreBegin`]: crate::command::Command::RestoreBegin
//! [`Command::RestoreChunk`]: crate::command::Command::RestoreChunk

use serde::{Deserialize, Serialize};

use crate::backup::{Backup, BACKUP_V1, BACKUP_V2, BACKUP_V3, BACKUP_V4, READS};
use crate::command::{Applied, Command};
use crate::error::CommandError;
use crate::ids::Timestamp;
use crate::limits;
use crate::state::State;

/// The most state text one chunk carries, in bytes. Encoding a chunk's text inside the entry's
/// JSON at most doubles it (the text is JSON, whose control characters are already escaped:
/// only `"` and `\` grow, to two bytes), so a chunk's entry stays under
/// [`limits::MAX_ENTRY_BYTES`].
pub const RESTORE_CHUNK_BYTES: usize = limits::MAX_ENTRY_BYTES / 2 - 4 * 1024;

/// The largest backup state text a restore accepts.
pub const MAX_RESTORE_BYTES: u64 = 4 << 30;

/// A chunked restore under way: the backup's envelope and the text received so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreProgress {
    pub digest: String,
    pub format: u32,
    pub bytes: u64,
    pub node_id: u64,
    pub applied_index: u64,
    pub taken_at: Timestamp,
    pub received: String,
}

const NOT_EMPTY: &str = "a backup is only restored into an empty cluster (this one has components, incidents, maintenances, subscribers or tokens)";

impl Backup {
    /// The command that starts restoring this backup in chunks.
    pub fn begin_command(&self) -> Command {
        Command::RestoreBegin {
            digest: self.digest.clone(),
            format: self.format,
            bytes: self.state.len() as u64,
            node_id: self.node_id,
            applied_index: self.applied_index,
            taken_at: self.taken_at,
        }
    }

    /// The chunk that starts at byte `offset` of the state text (cut on a character
    /// boundary), or `None` once `offset` is at the end.
    pub fn chunk_command(&self, offset: u64) -> Option<Command> {
        let text = &self.state;
        let start = usize::try_from(offset).ok().filter(|&o| o < text.len())?;
        let mut end = (start + RESTORE_CHUNK_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(Command::RestoreChunk {
            digest: self.digest.clone(),
            offset,
            data: text[start..end].to_owned(),
        })
    }
}

impl State {
    /// `Command::Restore`: the whole backup in one entry (logs written by earlier builds).
    /// What a restore command answers when the state already is the backup it restores (the
    /// command, or the last chunk of it, applied once already): `Restored` of the backup's
    /// digest. `None` otherwise (an empty state, a restore under way, another state).
    pub(crate) fn restore_replay(&self, command: &Command) -> Option<Applied> {
        if self.is_empty() || self.restoring.is_some() {
            return None;
        }
        match command {
            Command::Restore { backup } => {
                let (state, digest) = crate::codec::decode::<Backup>(backup.as_bytes())
                    .ok()?
                    .verified()
                    .ok()?;
                (*self == state).then_some(Applied::Restored(digest))
            }
            Command::RestoreBegin { digest, .. } | Command::RestoreChunk { digest, .. } => {
                (self.digest() == *digest).then(|| Applied::Restored(digest.clone()))
            }
            _ => None,
        }
    }

    pub(crate) fn restore(&mut self, encoded: &str) -> Result<Applied, CommandError> {
        let backup: Backup = crate::codec::decode(encoded.as_bytes())
            .map_err(|e| CommandError::invalid("backup", e.to_string()))?;
        let (state, digest) = backup.verified()?;
        if !self.is_empty() {
            return Err(CommandError::precondition(NOT_EMPTY));
        }
        *self = state;
        Ok(Applied::Restored(digest))
    }

    pub(crate) fn restore_begin(
        &mut self,
        progress: RestoreProgress,
    ) -> Result<Applied, CommandError> {
        if !self.is_empty() {
            return Err(CommandError::precondition(NOT_EMPTY));
        }
        if ![BACKUP_V1, BACKUP_V2, BACKUP_V3, BACKUP_V4].contains(&progress.format) {
            return Err(CommandError::invalid(
                "format",
                format!(
                    "backup format {} is not one this build reads ({READS})",
                    progress.format
                ),
            ));
        }
        if progress.bytes == 0 || progress.bytes > MAX_RESTORE_BYTES {
            return Err(CommandError::invalid(
                "bytes",
                format!(
                    "a backup's state must be 1 to {MAX_RESTORE_BYTES} bytes, got {}",
                    progress.bytes
                ),
            ));
        }
        if !is_digest(&progress.digest) {
            return Err(CommandError::invalid(
                "digest",
                format!("{:?} is not a SHA-256 in hex", progress.digest),
            ));
        }
        if let Some(current) = &self.restoring {
            if current.digest == progress.digest {
                return Ok(Applied::RestoreReceived(current.received.len() as u64));
            }
        }
        self.restoring = Some(progress);
        Ok(Applied::RestoreReceived(0))
    }

    pub(crate) fn restore_chunk(
        &mut self,
        digest: &str,
        offset: u64,
        data: &str,
    ) -> Result<Applied, CommandError> {
        let Some(progress) = self.restoring.as_ref().filter(|p| p.digest == digest) else {
            return Err(CommandError::precondition(format!(
                "no restore of the backup {digest} is under way (start it with RestoreBegin)"
            )));
        };
        let received = progress.received.len() as u64;
        if offset != received {
            return Err(CommandError::precondition(format!(
                "the chunk starts at byte {offset} but {received} bytes of the backup are in"
            )));
        }
        let total = received + data.len() as u64;
        if data.is_empty() || total > progress.bytes {
            return Err(CommandError::invalid(
                "data",
                format!(
                    "a chunk of {} bytes at {offset} does not fit a backup of {} bytes",
                    data.len(),
                    progress.bytes
                ),
            ));
        }
        if total < progress.bytes {
            if let Some(p) = self.restoring.as_mut() {
                p.received.push_str(data);
            }
            return Ok(Applied::RestoreReceived(total));
        }
        // The last chunk: check everything before anything changes.
        if !self.is_empty() {
            return Err(CommandError::precondition(NOT_EMPTY));
        }
        let Some(mut progress) = self.restoring.take() else {
            return Err(CommandError::precondition("no restore is under way"));
        };
        progress.received.push_str(data);
        let backup = Backup {
            format: progress.format,
            taken_at: progress.taken_at,
            node_id: progress.node_id,
            applied_index: progress.applied_index,
            digest: progress.digest,
            state: progress.received,
        };
        match backup.verified() {
            Ok((state, digest)) => {
                *self = state;
                Ok(Applied::Restored(digest))
            }
            Err(e) => {
                // Refused: put the progress back exactly as it was.
                let mut received = backup.state;
                received.truncate(received.len() - data.len());
                self.restoring = Some(RestoreProgress {
                    digest: backup.digest,
                    format: backup.format,
                    bytes: progress.bytes,
                    node_id: backup.node_id,
                    applied_index: backup.applied_index,
                    taken_at: backup.taken_at,
                    received,
                });
                Err(e)
            }
        }
    }
}

fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
