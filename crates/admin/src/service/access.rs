//! Access records: audit entries for what changes nothing but matters to security — a backup
//! taken (it exports every secret) and failed authentications, summarised once a minute per
//! source so that a flood of failures costs at most a few entries.

use std::sync::atomic::Ordering;
use std::time::Duration;

use statusmesh_model::command::Access;
use statusmesh_model::{Command, Proposal};
use tokio::sync::watch;

use super::AdminService;
use crate::auth::Caller;

/// How often failed authentications are summarised into the audit log.
pub const FAILURE_REPORT_EVERY: Duration = Duration::from_secs(60);
/// Sources named per summary; the rest are counted together as `other`.
pub const SOURCES_PER_REPORT: usize = 20;

impl AdminService {
    /// Commits an access record in the background; a record that cannot be committed (no
    /// quorum) is logged, and what it records goes ahead regardless.
    pub(super) fn record_access(&self, caller: &Caller, request_id: String, access: Access) {
        let this = self.clone();
        let actor = caller.name.clone();
        tokio::spawn(async move { this.commit_access(&actor, request_id, access).await });
    }

    async fn commit_access(&self, actor: &str, request_id: String, access: Access) {
        let n = self.access_seq.fetch_add(1, Ordering::Relaxed);
        let key = format!("access:{}:{n}", self.node.incarnation);
        let proposal = Proposal {
            request_id,
            ..Proposal::internal(key, actor, self.node.id, Command::RecordAccess { access })
        };
        if let Err(e) = self.node.propose(proposal, self.write_timeout).await {
            tracing::error!(error = %e, "an access record (backup or failed authentications) was not committed");
        }
    }

    /// Until `stop`: every [`FAILURE_REPORT_EVERY`], the failed authentications this node
    /// counted since the last summary become one audit record per source (actor
    /// `authentication`).
    pub async fn report_failed_authentications(self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(FAILURE_REPORT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            for (source, count, since) in self.auth.take_failure_report(SOURCES_PER_REPORT) {
                let access = Access::FailedAuthentications {
                    source,
                    count,
                    since,
                };
                self.commit_access("authentication", String::new(), access)
                    .await;
            }
        }
    }
}
