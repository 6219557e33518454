//! The persisted formats of the replicated state: versions, and the migrations that read old
//! ones.
//!
//! | value | where it is kept | writes | also reads |
//! |---|---|---|---|
//! | the state | snapshot data (RocksDB and the peer wire) | [`STATE_V4`] | [`STATE_V1`], [`STATE_V2`], [`STATE_V3`] |
//! | a backup | `statusctl backup` files, `Command::Restore` | [`BACKUP_V4`](crate::backup::BACKUP_V4) | [`BACKUP_V1`](crate::backup::BACKUP_V1), [`BACKUP_V2`](crate::backup::BACKUP_V2), [`BACKUP_V3`](crate::backup::BACKUP_V3) |
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
/// The second: an outbox that stored one delivery per subscriber per event (see [`v2`]).
pub const STATE_V2: u8 = 2;
/// The third: fan-out cursors, incident events without update copies, one attempt log bounded
/// in bytes, subscribers that know when they were added. Read as it is: format 4 only adds.
pub const STATE_V3: u8 = 3;
/// The current state format: format 3 plus email subscribers (`PayloadFormat::Email`, the
/// `unconfirmed` and `bounced` subscriber states, `bounced` attempts, the subscription events,
/// the page's `email_subscriptions`). A build of format 3 would refuse such a state with an
/// unknown variant somewhere inside; the new version makes it refuse at the first byte, saying
/// which format it found.
pub const STATE_V4: u8 = 4;

const READS: &str = "state formats 1, 2, 3 and 4";

/// A snapshot's data: [`STATE_V4`], then the state's JSON.
pub fn encode_state(state: &State) -> Result<Vec<u8>, CodecError> {
    codec::encode_as(STATE_V4, state)
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
        STATE_V2 => v2::read(serde_json::from_slice(json)?),
        STATE_V3 | STATE_V4 => Ok(serde_json::from_slice(json)?),
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
        super::v2::read(value)
    }
}

/// State format 2.
///
/// Its outbox stored an explicit delivery for every (event, matching subscriber), an incident
/// event held a full copy of the incident, updates included, and the attempt log was a map of
/// per-subscriber lists of at most 50 records.
///
/// Migration, on the JSON value (format 1 goes through it too, after its own step):
/// - events carry no fan-out: every delivery they owe is already an explicit record, which
///   stays as it was (pending and failed alike), so nothing queued is lost or doubled;
/// - an incident event keeps the incident's header and the count of its updates (updates are
///   append-only, so the first `updates` of the incident as it is now are the copy's);
/// - the attempt log becomes one list, ordered by attempt time (then event, subscriber and
///   attempt), cut to the byte bound from the oldest;
/// - subscribers get `since` 0: they predate every event kept.
///
/// The digest of every state changes (subscribers gain `since`).
mod v2 {
    use super::*;
    use serde_json::Value;

    pub(super) fn read(mut value: Value) -> Result<State, CodecError> {
        if let Some(outbox) = value.get_mut("outbox") {
            if let Some(Value::Object(events)) = outbox.get_mut("events") {
                for event in events.values_mut() {
                    strip_incident_updates(event);
                }
            }
            if let Some(log) = outbox.get_mut("attempt_log") {
                *log = flatten_attempt_log(log.take());
            }
        }
        let mut state: State = serde_json::from_value(value)?;
        // Recount through the log's own bound (the v2 logs could hold more).
        let records: Vec<_> = state.outbox.attempt_log.iter().cloned().collect();
        state.outbox.attempt_log = Default::default();
        for r in records {
            state.outbox.attempt_log.push(r);
        }
        Ok(state)
    }

    fn strip_incident_updates(event: &mut Value) {
        let Some(subject) = event.get_mut("subject") else {
            return;
        };
        if subject.get("subject").and_then(Value::as_str) != Some("incident") {
            return;
        }
        let Some(incident) = subject.get_mut("incident") else {
            return;
        };
        let count = match incident.get_mut("updates") {
            Some(Value::Array(updates)) => std::mem::take(updates).len(),
            _ => 0,
        };
        subject["updates"] = Value::from(count);
    }

    fn flatten_attempt_log(log: Value) -> Value {
        let Value::Object(by_subscriber) = log else {
            return log;
        };
        let mut records: Vec<Value> = by_subscriber
            .into_iter()
            .flat_map(|(_, list)| match list {
                Value::Array(items) => items,
                _ => Vec::new(),
            })
            .collect();
        let key = |r: &Value| {
            (
                r.get("at").and_then(Value::as_i64).unwrap_or(0),
                r.get("event").and_then(Value::as_u64).unwrap_or(0),
                r.get("subscriber")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                r.get("attempt").and_then(Value::as_u64).unwrap_or(0),
            )
        };
        records.sort_by_key(key);
        Value::Array(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_state_version_names_the_ones_read() {
        let mut bytes = encode_state(&State::default()).unwrap();
        assert_eq!(bytes[0], STATE_V4);
        assert_eq!(decode_state(&bytes).unwrap(), State::default());
        bytes[0] = 7;
        assert_eq!(
            decode_state(&bytes).unwrap_err().to_string(),
            "unsupported format version 7 (this build reads state formats 1, 2, 3 and 4)"
        );
    }

    #[test]
    fn version_one_keeps_the_digest_of_a_state_without_attempts() {
        let state = State::default();
        let v1 = codec::encode_as(STATE_V1, &state).unwrap();
        assert_eq!(decode_state(&v1).unwrap().digest(), state.digest());
    }
}
