//! Size limits on every field and collection, and the checks that enforce them. A value past a
//! limit is refused with an error naming the field and the limit; it is never truncated.

use crate::error::CommandError;

pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
pub const MAX_BODY_CHARS: usize = 25_000;
pub const MAX_URL_CHARS: usize = 2_048;
pub const MAX_COMPONENTS: usize = 1_000;
pub const MAX_COMPONENTS_PER_CHANGE: usize = 200;
pub const MAX_UPDATES_PER_INCIDENT: usize = 1_000;
/// Subscribers of every kind (the outbox's size does not grow with it per event, see
/// [`crate::outbox`]).
pub const MAX_SUBSCRIBERS: usize = 1_000_000;
/// The most rows one `ImportSubscribers` entry carries (the importer also cuts by size, to
/// stay within [`MAX_ENTRY_BYTES`]).
pub const MAX_IMPORT_ROWS: usize = 2_000;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;
pub const MAX_ACTOR_CHARS: usize = 128;
/// The longest a rotated-out webhook secret keeps signing.
pub const MAX_SECRET_OVERLAP_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// The most bytes one log entry may hold, encoded. Every proposal is checked against it before
/// it is proposed (a larger one is refused with its size), commands that can grow (attempt
/// batches, restores) are cut to fit, and the peer transport's message limit is sized for
/// a full AppendEntries batch of such entries (see `statusmesh_cluster::profile`).
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// The most attempt reports in one `RecordAttempts` command.
pub const MAX_REPORTS_PER_BATCH: usize = 10_000;
/// How long an idempotency key is remembered, measured in command time.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// A required, trimmed-nonempty text of at most `max` characters, without control characters
/// other than newlines and tabs.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), CommandError> {
    if value.trim().is_empty() {
        return Err(CommandError::invalid(field, "must not be empty"));
    }
    optional_text(field, value, max)
}

/// Like [`text`] but an empty value is allowed.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<(), CommandError> {
    let chars = value.chars().count();
    if chars > max {
        return Err(CommandError::invalid(
            field,
            format!("{chars} characters is longer than the limit of {max}"),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t' && *c != '\r')
    {
        return Err(CommandError::invalid(
            field,
            format!("contains the control character {:?}", c),
        ));
    }
    Ok(())
}

/// An absolute http(s) URL with a host and no fragment, at most [`MAX_URL_CHARS`] long.
pub fn http_url(field: &str, value: &str) -> Result<url::Url, CommandError> {
    if value.len() > MAX_URL_CHARS {
        return Err(CommandError::invalid(
            field,
            format!(
                "{} bytes is longer than the limit of {MAX_URL_CHARS}",
                value.len()
            ),
        ));
    }
    let url = url::Url::parse(value)
        .map_err(|e| CommandError::invalid(field, format!("{value:?} is not a URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(CommandError::invalid(
            field,
            format!("scheme {:?} is not http or https", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CommandError::invalid(
            field,
            format!("{value:?} has no host"),
        ));
    }
    if url.fragment().is_some() {
        return Err(CommandError::invalid(
            field,
            format!("{value:?} has a fragment"),
        ));
    }
    Ok(url)
}

/// How long a self-service subscription waits for its confirmation link to be followed.
pub const SUBSCRIPTION_CONFIRM_MS: i64 = 24 * 60 * 60 * 1000;
/// A recipient gets at most one confirmation or manage-link mail per this long, however often
/// the page's form is sent with its address.
pub const SUBSCRIPTION_NOTICE_INTERVAL_MS: i64 = 10 * 60 * 1000;

/// The longest mail header or footer text a page may set.
pub const MAX_MAIL_TEXT_CHARS: usize = 2_000;

/// How long a bounced address stays listed for operators before it is deleted.
pub const BOUNCED_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// The most subscribers one [`crate::Command::ExpireSubscribers`] forgets.
pub const MAX_EXPIRED_PER_COMMAND: usize = 1_000;

/// The longest email address accepted (RFC 5321's path limit, less the brackets).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A mailbox address as customers type it: `local@domain`, trimmed, the domain lower-cased.
/// Deliberately narrower than RFC 5322 (no quoted local parts, comments or address literals):
/// a dot-atom local part of at most 64 characters and a domain of at least two DNS labels.
/// Nothing that could end or add a mail header (spaces, control characters, `<>`, `,`) passes.
pub fn email_address(field: &str, value: &str) -> Result<String, CommandError> {
    let value = value.trim();
    let bad = |why: &str| {
        CommandError::invalid(field, format!("{value:?} is not an email address: {why}"))
    };
    if value.len() > MAX_EMAIL_CHARS {
        return Err(bad(&format!("longer than {MAX_EMAIL_CHARS} characters")));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(bad("no @"));
    };
    const LOCAL_EXTRA: &[u8] = b"!#$%&'*+-/=?^_`{|}~.";
    if local.is_empty() || local.len() > 64 {
        return Err(bad("the part before @ must be 1 to 64 characters"));
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || LOCAL_EXTRA.contains(&b))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(bad(
            "the part before @ has a character or dot that is not allowed",
        ));
    }
    let domain = domain.to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(bad("the domain must be a name like example.com"));
    }
    Ok(format!("{local}@{domain}"))
}

pub fn count(field: &str, n: usize, max: usize) -> Result<(), CommandError> {
    if n > max {
        return Err(CommandError::invalid(
            field,
            format!("{n} items is more than the limit of {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_name_the_field() {
        assert!(text("name", "API", MAX_NAME_CHARS).is_ok());
        let e = text("name", "  ", MAX_NAME_CHARS).unwrap_err();
        assert_eq!(e.to_string(), "invalid name: must not be empty");
        let e = text("name", &"x".repeat(256), MAX_NAME_CHARS).unwrap_err();
        assert!(e.to_string().contains("limit of 255"), "{e}");
        assert!(text("body", "a\u{0}b", 10).is_err());
        assert!(text("body", "line\nline", 20).is_ok());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(http_url("url", "https://hooks.example.com/x?y=1").is_ok());
        assert!(http_url("url", "ftp://example.com").is_err());
        assert!(http_url("url", "not a url").is_err());
        assert!(http_url("url", "https://example.com/#frag").is_err());
    }

    #[test]
    fn email_addresses_are_plain_mailboxes() {
        assert_eq!(
            email_address("email", "  Jane.Doe+status@Example.COM ").unwrap(),
            "Jane.Doe+status@example.com"
        );
        for bad in [
            "",
            "jane",
            "@example.com",
            "jane@",
            "jane@localhost",
            "jane@exa mple.com",
            "jane doe@example.com",
            "jane@example.com\r\nBcc: x@y.z",
            "<jane@example.com>",
            "a,b@example.com",
            ".jane@example.com",
            "ja..ne@example.com",
            "jane@-example.com",
            "\"jane\"@example.com",
        ] {
            let e = email_address("email", bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid email: "), "{bad:?}: {e}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(email_address("email", &long).is_err());
    }
}
