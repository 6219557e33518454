//! The persisted formats of the replicated state: versions, and the migrations that read old
//! ones.
//!
//! | value | where it is kept | writes | also reads |
//! |---|---|---|---|
//! | the state | snapshot data (RocksDB and the peer wire) | [`STATE_V2`] | [`STATE_V1`] |
//! | a backup | `statusctl backup` files, `Command::Restore` | [`BACKUP_V2`](crate::backup::BACKUP_V2) | [`BACKUP_V1`](crate::backup::BACKUP_V1) |
//! | everything else | log entries, votes, snapshot meta, peer messages | [`codec::FORMAT_V1`] | — |
//!
//! Rules (the golden fixtures in `crates/model/tests/golden/` hold every build to them):
//! - A build writes only the current version of each value, and reads every version any build
//!   ever wrote. A change that an older reader would misread gets a new version, and a module
//!   `vN` here holding what is needed to read version N and turn it into today's types.
//! - The digest ([`State::digest`]) is the SHA-256 of the current version's JSON. A decoded old
//!   value's digest may differ from the one its writer computed only where that version's
//!   migration says so.
//! - New fields of the state are `#[serde(default)]` and left out of the encoding while empty,
//!   so a state that does not use them keeps its encoding and its digest.

use crate::codec::{self, CodecError};
use crate::state::State;

/// The first state format. Each attempt record carried the key `event` twice (see [`v1`]).
pub const STATE_V1: u8 = 1;
/// The current state format.
pub const STATE_V2: u8 = 2;

const READS: &str = "state formats 1 and 2";

/// A snapshot's data: [`STATE_V2`], then the state's JSON.
pub fn encode_state(state: &State) -> Result<Vec<u8>, CodecError> {
    codec::encode_as(STATE_V2, state)
}

/// Reads a snapshot's data in any state format this build knows.
pub fn decode_state(bytes: &[u8]) -> Result<State, CodecError> {
    let (version, json) = codec::split(bytes)?;
    state_from_json(version, json)
}

/// Reads the state's JSON as written in `version`.
pub fn state_from_json(version: u8, json: &[u8]) -> Result<State, CodecError> {
    match version {
        STATE_V1 => v1::read(json),
        STATE_V2 => Ok(serde_json::from_slice(json)?),
        found => Err(CodecError::Version {
            found,
            reads: READS,
        }),
    }
}

/// State format 1.
///
/// `AttemptRecord` had a field `event` and also flattened `AttemptReport`, which has its own
/// `event`, so each attempt record was written as `{"event":7,"webhook_id":..,"event":7,..}`.
/// serde refuses a duplicate field, so a state with one recorded attempt could be written but
/// not read back. Both keys always held the same number (the record copied it from the
/// report), and format 2 keeps only the report's.
///
/// Migration: the JSON is read into a `serde_json::Value` first, whose maps keep one value per
/// key; that value has format 2's shape exactly. The digest of a state holding attempt records
/// changes (the second key is gone); every other state keeps its digest.
mod v1 {
    use super::*;

    pub(super) fn read(json: &[u8]) -> Result<State, CodecError> {
        let value: serde_json::Value = serde_json::from_slice(json)?;
        Ok(serde_json::from_value(value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_state_version_names_the_ones_read() {
        let mut bytes = encode_state(&State::default()).unwrap();
        assert_eq!(bytes[0], STATE_V2);
        assert_eq!(decode_state(&bytes).unwrap(), State::default());
        bytes[0] = 7;
        assert_eq!(
            decode_state(&bytes).unwrap_err().to_string(),
            "unsupported format version 7 (this build reads state formats 1 and 2)"
        );
    }

    #[test]
    fn version_one_keeps_the_digest_of_a_state_without_attempts() {
        let state = State::default();
        let v1 = codec::encode_as(STATE_V1, &state).unwrap();
        assert_eq!(decode_state(&v1).unwrap().digest(), state.digest());
    }
}
