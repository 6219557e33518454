//! Standard Webhooks v1 signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
//! where the key is the base64-decoded part of a `whsec_` secret.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Receivers accept a timestamp this far from their clock, either way.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the secret is not whsec_ followed by base64")]
    BadSecret,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not an integer number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is {0} s away from now (more than {TOLERANCE_SECS} s)")]
    TimestampOutOfTolerance(i64),
    #[error("no v1 signature matches")]
    NoMatch,
}

fn key(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = B64.decode(b64).map_err(|_| VerifyError::BadSecret)?;
    if key.is_empty() {
        return Err(VerifyError::BadSecret);
    }
    Ok(key)
}

fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut m = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// One `v1,<base64>` signature.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, VerifyError> {
    Ok(format!(
        "v1,{}",
        B64.encode(mac(&key(secret)?, msg_id, timestamp, body))
    ))
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[&str],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, VerifyError> {
    let sigs: Result<Vec<String>, VerifyError> = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect();
    Ok(sigs?.join(" "))
}

/// What a receiver does: checks the timestamp window and that one `v1` entry of the header
/// matches, comparing in constant time. Unknown versions are skipped.
pub fn verify(
    secret: &str,
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let key = key(secret)?;
    let msg_id = msg_id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let timestamp = timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let signature = signature.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let ts: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now_secs - ts;
    if skew.abs() > TOLERANCE_SECS {
        return Err(VerifyError::TimestampOutOfTolerance(skew));
    }
    let expected = mac(&key, msg_id, ts, body);
    let matched = signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| B64.decode(b64).ok())
        .any(|sig| bool::from(sig.ct_eq(&expected)));
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn check(
        sig: Option<&str>,
        ts: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        verify(SECRET, Some(ID), ts, sig, body, now)
    }

    #[test]
    fn conformance_vector() {
        assert_eq!(sign(SECRET, ID, TS, BODY).as_deref(), Ok(EXPECTED));
        assert_eq!(check(Some(EXPECTED), Some("1614265330"), BODY, TS), Ok(()));
    }

    #[test]
    fn negative_cases() {
        let ts = Some("1614265330");
        assert_eq!(
            verify(SECRET, None, ts, Some(EXPECTED), BODY, TS),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            check(None, ts, BODY, TS),
            Err(VerifyError::MissingHeader("webhook-signature"))
        );
        assert_eq!(
            check(Some(EXPECTED), None, BODY, TS),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
        assert_eq!(
            check(Some(EXPECTED), Some("soon"), BODY, TS),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            check(Some(EXPECTED), ts, BODY, TS + 301),
            Err(VerifyError::TimestampOutOfTolerance(301))
        );
        assert_eq!(check(Some(EXPECTED), ts, BODY, TS - 300), Ok(()));
        assert_eq!(
            check(Some(EXPECTED), ts, br#"{"test": 2432232315}"#, TS),
            Err(VerifyError::NoMatch)
        );
        let mut last_changed = EXPECTED.to_owned();
        last_changed.pop();
        last_changed.push('0');
        assert_eq!(
            check(Some(&last_changed), ts, BODY, TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify("whsec_", Some(ID), ts, Some(EXPECTED), BODY, TS),
            Err(VerifyError::BadSecret)
        );
        assert_eq!(sign("", ID, TS, BODY), Err(VerifyError::BadSecret));
    }

    #[test]
    fn several_entries_and_unknown_versions() {
        let ts = Some("1614265330");
        let header = format!("v1,bad v2,whatever {EXPECTED}");
        assert_eq!(check(Some(&header), ts, BODY, TS), Ok(()));
        let other = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB";
        let both = signature_header(&[other, SECRET], ID, TS, BODY).unwrap_or_default();
        assert_eq!(both.split(' ').count(), 2);
        assert_eq!(check(Some(&both), ts, BODY, TS), Ok(()));
        assert!(verify(other, Some(ID), ts, Some(&both), BODY, TS).is_ok());
    }
}
