//! `ListAudit`: the newest records first, filtered by actor, action and time.

use statusmesh_model::entities::redact_url;
use statusmesh_model::{PayloadFormat, State, Timestamp};
use statusmesh_proto::admin as pb;
use statusmesh_proto::convert;
use tonic::Status;

use crate::errors::command_status;

/// Records returned when the caller gives no limit.
const DEFAULT_LIMIT: usize = 50;

/// A checked `ListAuditRequest`.
#[derive(Debug)]
pub(super) struct Query {
    actor: Option<String>,
    action: Option<String>,
    since: Option<Timestamp>,
    limit: usize,
}

impl Query {
    pub(super) fn of(r: &pb::ListAuditRequest) -> Result<Self, Status> {
        let since = r
            .since
            .as_deref()
            .map(|t| Timestamp::parse_rfc3339("since", t))
            .transpose()
            .map_err(|e| command_status(&e))?;
        let limit = match r.limit {
            0 => DEFAULT_LIMIT,
            n => (n as usize).min(statusmesh_model::access::AUDIT_KEEP),
        };
        Ok(Query {
            actor: r.actor.clone(),
            action: r.action.clone(),
            since,
            limit,
        })
    }

    /// The matching records; unless `reveal_urls`, a chat webhook URL in a record's detail
    /// is masked as the subscriber listings mask it.
    pub(super) fn run(&self, s: &State, reveal_urls: bool) -> pb::AuditList {
        let records = s
            .audit
            .records
            .iter()
            .rev()
            .filter(|a| self.actor.as_ref().is_none_or(|x| &a.actor == x))
            .filter(|a| self.action.as_ref().is_none_or(|x| &a.action == x))
            .filter(|a| self.since.is_none_or(|t| a.at >= t))
            .take(self.limit)
            .map(|a| {
                let mut out = convert::audit_record(a);
                if !reveal_urls {
                    out.detail = mask_chat_urls(&out.detail);
                }
                out
            })
            .collect();
        pb::AuditList { records }
    }
}

/// A command's detail with the URL of any subscriber whose format makes the URL a credential
/// masked (the detail is the command as JSON: a subscriber appears as an object with `url` and
/// `format`). A detail that is not JSON is returned as it is (it then holds no URL field).
fn mask_chat_urls(detail: &str) -> String {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                let chat = map
                    .get("format")
                    .and_then(|f| f.as_str())
                    .and_then(|f| PayloadFormat::parse("format", f).ok())
                    .is_some_and(PayloadFormat::url_is_credential);
                for (k, inner) in map.iter_mut() {
                    match (k.as_str(), inner.as_str()) {
                        ("url", Some(url)) if chat => {
                            *inner = serde_json::Value::String(redact_url(url));
                        }
                        _ => walk(inner),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(detail) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) => detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_webhook_urls_are_masked_and_others_kept() {
        let detail = r#"{"AddSubscriber":{"url":"https://hooks.slack.com/services/T0/B0/XYZ","format":"slack","id":"s1"}}"#;
        let masked = mask_chat_urls(detail);
        assert!(!masked.contains("XYZ"), "{masked}");
        assert!(masked.contains("https://hooks.slack.com/…"), "{masked}");
        let plain = r#"{"AddSubscriber":{"url":"https://example.com/hook","format":"statuspage"}}"#;
        assert!(mask_chat_urls(plain).contains("https://example.com/hook"));
        assert_eq!(mask_chat_urls("not json"), "not json");
    }
}
