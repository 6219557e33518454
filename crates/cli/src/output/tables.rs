//! How each reply reads as text ([`Tabular`] for every wire message statusctl prints).

use statusmesh_proto::admin as pb;

use super::{members, opt, table, Tabular};

impl Tabular for pb::ComponentList {
    fn text(&self) -> anyhow::Result<()> {
        let list = self;
        table(
            &["ID", "NAME", "STATUS", "GROUP", "POS", "SHOWCASE"],
            list.components
                .iter()
                .map(|c| {
                    let name = if c.group_id.is_some() {
                        format!("  {}", c.name)
                    } else if c.group {
                        format!("{} (group)", c.name)
                    } else {
                        c.name.clone()
                    };
                    vec![
                        c.id.clone(),
                        name,
                        c.status.clone(),
                        opt(&c.group_id),
                        c.position.to_string(),
                        c.showcase.to_string(),
                    ]
                })
                .collect(),
        );
        Ok(())
    }
}

impl Tabular for pb::Incident {
    fn text(&self) -> anyhow::Result<()> {
        let i = self;
        println!("{}  {}", i.id, i.name);
        println!(
            "status {}  impact {}  started {}",
            i.status, i.impact, i.started_at
        );
        if let Some(r) = &i.resolved_at {
            println!("resolved {r}");
        }
        for u in &i.updates {
            println!(
                "\n{}  [{}]\n  {}",
                u.created_at,
                u.status,
                u.body.replace('\n', "\n  ")
            );
            for a in &u.affected_components {
                println!("  {} : {} -> {}", a.name, a.old_status, a.new_status);
            }
        }
        if let Some(p) = &i.postmortem {
            println!(
                "\nPostmortem ({}):\n  {}",
                opt(&i.postmortem_published_at),
                p.replace('\n', "\n  ")
            );
        }
        Ok(())
    }
}

impl Tabular for pb::IncidentList {
    fn text(&self) -> anyhow::Result<()> {
        let list = self;
        table(
            &["ID", "NAME", "STATUS", "IMPACT", "STARTED", "UPDATES"],
            list.incidents
                .iter()
                .map(|i| {
                    vec![
                        i.id.clone(),
                        i.name.clone(),
                        i.status.clone(),
                        i.impact.clone(),
                        i.started_at.clone(),
                        i.updates.len().to_string(),
                    ]
                })
                .collect(),
        );
        Ok(())
    }
}

impl Tabular for pb::MaintenanceList {
    fn text(&self) -> anyhow::Result<()> {
        let list = self;
        table(
            &["ID", "NAME", "STATUS", "FROM", "UNTIL", "COMPONENTS"],
            list.maintenances
                .iter()
                .map(|m| {
                    vec![
                        m.id.clone(),
                        m.name.clone(),
                        m.status.clone(),
                        m.scheduled_for.clone(),
                        m.scheduled_until.clone(),
                        m.component_ids.join(","),
                    ]
                })
                .collect(),
        );
        Ok(())
    }
}

impl Tabular for pb::SubscriberList {
    fn text(&self) -> anyhow::Result<()> {
        let list = self;
        table(
            &[
                "ID",
                "URL",
                "FORMAT",
                "COMPONENTS",
                "STATE",
                "PENDING",
                "FAILURES",
                "SECRET",
            ],
            list.subscribers
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.url.clone(),
                        s.format.clone(),
                        if s.component_ids.is_empty() {
                            "all".into()
                        } else {
                            s.component_ids.join(",")
                        },
                        match &s.state_reason {
                            Some(r) => format!("{} ({r})", s.state),
                            None => s.state.clone(),
                        },
                        s.pending_deliveries.to_string(),
                        s.recent_failures.to_string(),
                        s.secret.clone(),
                    ]
                })
                .collect(),
        );
        if !list.next_page_token.is_empty() {
            println!(
                "{} of {} subscribers; next page: --page-token {}",
                list.subscribers.len(),
                list.total,
                list.next_page_token
            );
        }
        Ok(())
    }
}

impl Tabular for pb::ImportSubscribersReply {
    fn text(&self) -> anyhow::Result<()> {
        println!(
            "imported {} subscribers (last chunk at index {}{})",
            self.imported,
            self.index,
            match self.replayed_chunks {
                0 => String::new(),
                n => format!("; {n} chunks were already in from an earlier run"),
            }
        );
        Ok(())
    }
}

impl Tabular for pb::DeliveryList {
    fn text(&self) -> anyhow::Result<()> {
        let l = self;
        println!("recent attempts (newest first):");
        table(
            &[
                "AT",
                "WEBHOOK-ID",
                "KIND",
                "#",
                "HTTP",
                "MS",
                "OUTCOME",
                "NEXT",
                "ERROR / RESPONSE",
            ],
            l.attempts
                .iter()
                .map(|a| {
                    let detail = a.error.clone().unwrap_or_else(|| {
                        a.response_excerpt
                            .replace(['\n', '\r'], " ")
                            .chars()
                            .take(60)
                            .collect()
                    });
                    vec![
                        a.at.clone(),
                        a.webhook_id.clone(),
                        a.kind.clone(),
                        a.attempt.to_string(),
                        a.http_status.map_or("-".into(), |s| s.to_string()),
                        a.duration_ms.to_string(),
                        a.outcome.clone(),
                        opt(&a.next_attempt_at),
                        detail,
                    ]
                })
                .collect(),
        );
        println!();
        println!("open deliveries (commit order):");
        table(
            &[
                "WEBHOOK-ID",
                "KIND",
                "STATE",
                "ATTEMPTS",
                "NEXT ATTEMPT",
                "REASON",
            ],
            l.open
                .iter()
                .map(|d| {
                    vec![
                        d.webhook_id.clone(),
                        d.kind.clone(),
                        d.state.clone(),
                        d.attempts.to_string(),
                        d.next_attempt_at.clone(),
                        opt(&d.reason),
                    ]
                })
                .collect(),
        );
        Ok(())
    }
}

impl Tabular for pb::TokenList {
    fn text(&self) -> anyhow::Result<()> {
        let l = self;
        table(
            &["NAME", "ROLE", "CREATED", "REVOKED"],
            l.tokens
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.role.clone(),
                        t.created_at.clone(),
                        t.revoked_at.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect(),
        );
        Ok(())
    }
}

impl Tabular for pb::AuditList {
    fn text(&self) -> anyhow::Result<()> {
        let l = self;
        table(
            &[
                "SEQ", "AT", "ACTOR", "VIA", "REQUEST", "ACTION", "TARGET", "DETAIL",
            ],
            l.records
                .iter()
                .map(|a| {
                    vec![
                        a.seq.to_string(),
                        a.at.clone(),
                        a.actor.clone(),
                        format!("node {}", a.via_node),
                        if a.request_id.is_empty() {
                            "-".into()
                        } else {
                            a.request_id.clone()
                        },
                        a.action.clone(),
                        a.target.clone().unwrap_or_else(|| "-".into()),
                        a.detail.clone(),
                    ]
                })
                .collect(),
        );
        Ok(())
    }
}

impl Tabular for pb::Identity {
    fn text(&self) -> anyhow::Result<()> {
        let i = self;
        println!("{} (role {}, by {})", i.name, i.role, i.method);
        Ok(())
    }
}

impl Tabular for pb::EventList {
    fn text(&self) -> anyhow::Result<()> {
        let l = self;
        table(
            &[
                "WEBHOOK-ID",
                "KIND",
                "AT",
                "RECIPIENTS",
                "PENDING",
                "FAILED",
                "SUMMARY",
            ],
            l.events
                .iter()
                .map(|e| {
                    vec![
                        e.webhook_id.clone(),
                        e.kind.clone(),
                        e.at.clone(),
                        e.recipients.to_string(),
                        e.pending.to_string(),
                        e.failed.to_string(),
                        e.summary.clone(),
                    ]
                })
                .collect(),
        );
        Ok(())
    }
}

impl Tabular for pb::OutboxStatusReply {
    fn text(&self) -> anyhow::Result<()> {
        let s = self;
        println!(
            "events {}  pending {}  failed {}  delivered {}  attempts {}  quarantined subscribers {}",
            s.events,
            s.pending,
            s.failed,
            s.delivered_total,
            s.attempts_total,
            s.quarantined_subscribers
        );
        println!(
            "this node: {}  in flight {}  sent {}",
            if s.dispatching {
                "dispatching (leader)"
            } else {
                "not dispatching"
            },
            s.in_flight,
            s.sent_total
        );
        Ok(())
    }
}

impl Tabular for pb::ClusterStatusReply {
    fn text(&self) -> anyhow::Result<()> {
        let s = self;
        println!(
            "node {} ({})  {}  term {}  leader {}",
            s.node_id,
            s.region,
            s.state,
            s.term,
            s.leader_id.map_or("none".into(), |l| l.to_string())
        );
        println!(
            "applied {}  last log {}  profile {}  disk {} bytes",
            s.applied_index, s.last_log_index, s.timing_profile, s.disk_bytes
        );
        if let Some(ms) = s.millis_since_leader_contact {
            println!("last leader contact {ms} ms ago");
        }
        println!("state digest {}\n", s.state_digest);
        members(&s.members);
        Ok(())
    }
}
