//! The persisted (and peer-wire) encoding of values: a version byte, then JSON.
//!
//! Every persisted value starts with a format version byte, then the JSON encoding. A reader
//! that meets a version it does not know stops with an error instead of misreading data. Each
//! kind of value has its own current version: the replicated state's is in [`crate::format`];
//! every other value (log entries, votes, snapshot meta, peer messages) is [`FORMAT_V1`].

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The format of every value but the state (see [`crate::format`] for the state's).
pub const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value")]
    Empty,
    #[error("unsupported format version {found} (this build reads {reads})")]
    Version { found: u8, reads: &'static str },
    #[error("malformed value: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes a value in [`FORMAT_V1`].
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode_as(FORMAT_V1, value)
}

/// Encodes a value behind the version byte `version`.
pub fn encode_as<T: Serialize>(version: u8, value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![version];
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// Decodes a [`FORMAT_V1`] value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match split(bytes)? {
        (FORMAT_V1, rest) => Ok(serde_json::from_slice(rest)?),
        (found, _) => Err(CodecError::Version {
            found,
            reads: "version 1",
        }),
    }
}

/// The version byte and the JSON after it.
pub fn split(bytes: &[u8]) -> Result<(u8, &[u8]), CodecError> {
    bytes
        .split_first()
        .map(|(v, rest)| (*v, rest))
        .ok_or(CodecError::Empty)
}

/// Log keys: big-endian so byte order is numeric order.
pub fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub fn key_index(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let bytes = encode(&vec![1u32, 2]).unwrap();
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode::<Vec<u32>>(&bytes).unwrap(), vec![1, 2]);
        let mut future = bytes.clone();
        future[0] = 9;
        let err = decode::<Vec<u32>>(&future).unwrap_err();
        assert!(matches!(err, CodecError::Version { found: 9, .. }));
        assert_eq!(
            err.to_string(),
            "unsupported format version 9 (this build reads version 1)"
        );
        assert!(matches!(decode::<Vec<u32>>(&[]), Err(CodecError::Empty)));
    }

    #[test]
    fn index_keys_sort_numerically() {
        assert!(index_key(255) < index_key(256));
        assert_eq!(key_index(&index_key(42)), Some(42));
    }
}
