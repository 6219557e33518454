//! `ListAudit`: the newest records first, filtered by actor, action and time.

use statusmesh_model::{State, Timestamp};
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

    pub(super) fn run(&self, s: &State) -> pb::AuditList {
        let records = s
            .audit
            .records
            .iter()
            .rev()
            .filter(|a| self.actor.as_ref().is_none_or(|x| &a.actor == x))
            .filter(|a| self.action.as_ref().is_none_or(|x| &a.action == x))
            .filter(|a| self.since.is_none_or(|t| a.at >= t))
            .take(self.limit)
            .map(convert::audit_record)
            .collect();
        pb::AuditList { records }
    }
}
