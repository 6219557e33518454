//! The persisted (and peer-wire) encoding of values: a version byte, then JSON.
//!
//! Every persisted value starts with a format version byte, then the JSON encoding. A reader
//! that meets a version it does not know stops with an error instead of misreading data.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The current on-disk format of every value this crate writes.
pub const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value")]
    Empty,
    #[error("unsupported format version {0} (this build reads version {FORMAT_V1})")]
    Version(u8),
    #[error("malformed value: {0}")]
    Json(#[from] serde_json::Error),
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_V1];
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_V1, rest)) => Ok(serde_json::from_slice(rest)?),
        Some((&v, _)) => Err(CodecError::Version(v)),
    }
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
        assert!(matches!(
            decode::<Vec<u32>>(&future),
            Err(CodecError::Version(9))
        ));
        assert!(decode::<Vec<u32>>(&[]).is_err());
    }

    #[test]
    fn index_keys_sort_numerically() {
        assert!(index_key(255) < index_key(256));
        assert_eq!(key_index(&index_key(42)), Some(42));
    }
}
