//! Rendering replies: JSON (the wire message as-is) or a readable table.

use serde::Serialize;
use statusmesh_proto::admin::{self as pb, write_reply::Entity};

use crate::args::Output;

pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A reply statusctl prints: with `--output json` the wire message as it is, otherwise as
/// text for people ([`Tabular::text`]).
pub trait Tabular: Serialize {
    fn text(&self) -> anyhow::Result<()>;
}

/// Prints `v` the way `out` asks.
pub fn show<T: Tabular>(out: Output, v: &T) -> anyhow::Result<()> {
    match out {
        Output::Json => json(v),
        Output::Table => v.text(),
    }
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = widths[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

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

/// A new token: the reply plus the secret, which exists only here.
pub fn token_created(out: Output, w: &pb::WriteReply, secret: &str) -> anyhow::Result<()> {
    if out == Output::Json {
        let mut v = write_json(w)?;
        v["secret"] = serde_json::Value::String(secret.to_owned());
        return json(&v);
    }
    write(out, w)?;
    println!("token secret (shown once, store it now): {secret}");
    Ok(())
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

/// A write reply as `{"index", "replayed", "<kind>": {...}}`.
fn write_json(w: &pb::WriteReply) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::json!({ "index": w.index, "replayed": w.replayed });
    let (kind, entity) = match &w.entity {
        Some(Entity::Page(p)) => ("page", serde_json::to_value(p)?),
        Some(Entity::Component(c)) => ("component", serde_json::to_value(c)?),
        Some(Entity::Incident(i)) => ("incident", serde_json::to_value(i)?),
        Some(Entity::Maintenance(m)) => ("maintenance", serde_json::to_value(m)?),
        Some(Entity::Subscriber(s)) => ("subscriber", serde_json::to_value(s)?),
        Some(Entity::DeletedId(id)) => ("deleted_id", serde_json::to_value(id)?),
        Some(Entity::EventId(id)) => ("event_id", serde_json::to_value(id)?),
        Some(Entity::Requeued(n)) => ("requeued", serde_json::to_value(n)?),
        Some(Entity::Token(t)) => ("token", serde_json::to_value(t)?),
        None => return Ok(v),
    };
    v[kind] = entity;
    Ok(v)
}

pub fn write(out: Output, w: &pb::WriteReply) -> anyhow::Result<()> {
    if out == Output::Json {
        return json(&write_json(w)?);
    }
    let replay = if w.replayed {
        " (replayed: already applied)"
    } else {
        ""
    };
    match &w.entity {
        Some(Entity::Page(p)) => println!("page {:?} updated ({}){replay}", p.name, p.description),
        Some(Entity::Component(c)) => {
            println!("component {} {:?} is {}{replay}", c.id, c.name, c.status)
        }
        Some(Entity::Incident(i)) => println!(
            "incident {} {:?} is {} (impact {}){replay}",
            i.id, i.name, i.status, i.impact
        ),
        Some(Entity::Maintenance(m)) => println!(
            "maintenance {} {:?} is {} ({} .. {}){replay}",
            m.id, m.name, m.status, m.scheduled_for, m.scheduled_until
        ),
        Some(Entity::Subscriber(s)) => {
            println!("subscriber {} -> {} is {}{replay}", s.id, s.url, s.state);
            if !s.secret.ends_with("****") {
                println!("signing secret (shown once, store it now): {}", s.secret);
            }
            if let Some(until) = &s.previous_secret_until {
                println!("the previous secret keeps signing until {until}");
            }
        }
        Some(Entity::DeletedId(id)) => println!("{id} deleted{replay}"),
        Some(Entity::EventId(id)) => println!("event {id} queued{replay}"),
        Some(Entity::Requeued(n)) => println!("{n} deliveries queued again{replay}"),
        Some(Entity::Token(t)) => match &t.revoked_at {
            Some(at) => println!("token {} revoked at {at}{replay}", t.name),
            None => println!("token {} ({}) created{replay}", t.name, t.role),
        },
        None => println!("done{replay}"),
    }
    println!("committed at index {}", w.index);
    Ok(())
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

pub fn members(members: &[pb::Member]) {
    table(
        &["ID", "REGION", "ROLE", "PEER", "ADMIN", "PUBLIC", "MATCHED"],
        members
            .iter()
            .map(|m| {
                vec![
                    m.id.to_string(),
                    m.region.clone(),
                    m.role.clone(),
                    m.peer_addr.clone(),
                    m.admin_addr.clone(),
                    m.public_addr.clone(),
                    m.matched_index.to_string(),
                ]
            })
            .collect(),
    );
}
