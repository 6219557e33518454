//! Identifiers and timestamps. Both are chosen by the leader before a command is proposed and
//! travel inside the command, so that applying it is deterministic on every node.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::CommandError;

/// Length of generated ids (the Statuspage convention: 12 lowercase alphanumerics).
pub const ID_LEN: usize = 12;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// An entity id: 1 to 32 lowercase ASCII letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    /// Parses and validates an id given by a user or read off the wire.
    pub fn parse(field: &str, s: &str) -> Result<Self, CommandError> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Id(s.to_owned()))
        } else {
            Err(CommandError::invalid(
                field,
                format!("{s:?} is not an id (1 to 32 lowercase letters or digits)"),
            ))
        }
    }

    /// Builds an id from 12 random bytes (the caller brings the randomness: this crate does no IO).
    pub fn from_random(bytes: [u8; ID_LEN]) -> Self {
        let s = bytes
            .iter()
            .map(|b| ID_ALPHABET[usize::from(*b) % ID_ALPHABET.len()] as char)
            .collect();
        Id(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A placeholder for an id the leader has not chosen yet (see `Command::stamp`). Apply
    /// refuses any command that still carries one.
    pub fn pending() -> Self {
        Id(String::new())
    }

    pub fn is_pending(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_millis())
    }

    /// Parses an RFC 3339 timestamp (`2026-05-16T22:43:07.235Z`, any offset).
    pub fn parse_rfc3339(field: &str, s: &str) -> Result<Self, CommandError> {
        DateTime::parse_from_rfc3339(s)
            .map(|dt| Timestamp(dt.timestamp_millis()))
            .map_err(|e| {
                CommandError::invalid(field, format!("{s:?} is not an RFC 3339 timestamp: {e}"))
            })
    }

    pub fn saturating_add_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Timestamp {
    /// ISO 8601 in UTC with milliseconds, the format Statuspage clients expect.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_alphanumeric() {
        let id = Id::from_random([255; ID_LEN]);
        assert!(Id::parse("id", id.as_str()).is_ok());
        assert_eq!(id.as_str().len(), ID_LEN);
        assert!(Id::parse("id", "ABC").is_err());
        assert!(Id::parse("id", "").is_err());
        assert!(Id::parse("id", &"a".repeat(33)).is_err());
    }

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let t = Timestamp::parse_rfc3339("at", "2026-05-16T22:43:07.235Z").unwrap();
        assert_eq!(t.to_string(), "2026-05-16T22:43:07.235Z");
        let t2 = Timestamp::parse_rfc3339("at", "2026-05-17T00:43:07.235+02:00").unwrap();
        assert_eq!(t, t2);
        let err = Timestamp::parse_rfc3339("scheduled_for", "tomorrow").unwrap_err();
        assert!(err.to_string().contains("scheduled_for"));
    }
}
