//! Model <-> admin wire conversions. Requests become commands with pending ids (the leader
//! stamps them); entities become messages. Every parse error names the request field.

use statusmesh_model::command::{
    ComponentChange, ComponentPatch, IncidentUpdateSpec, MaintenancePatch, NewComponent,
    NewIncident, NewMaintenance, NewSubscriber, PagePatch,
};
use statusmesh_model::outbox::{AttemptOutcome, AttemptRecord, DeliveryState};
use statusmesh_model::{
    Command, CommandError, Component, ComponentStatus, Id, Impact, Incident, IncidentStatus,
    Maintenance, MaintenanceStatus, State, Subscriber, Timestamp,
};
use statusmesh_model::{Event, PayloadFormat};

use crate::admin as pb;

type Result<T> = std::result::Result<T, CommandError>;

fn id(field: &str, s: &str) -> Result<Id> {
    Id::parse(field, s)
}

fn ids(field: &str, v: &[String]) -> Result<Vec<Id>> {
    v.iter().map(|s| id(field, s)).collect()
}

fn ts(field: &str, s: &str) -> Result<Timestamp> {
    Timestamp::parse_rfc3339(field, s)
}

fn changes(v: &[pb::ComponentChange]) -> Result<Vec<ComponentChange>> {
    v.iter()
        .map(|c| {
            Ok(ComponentChange {
                component_id: id("component_changes.component_id", &c.component_id)?,
                status: ComponentStatus::parse("component_changes.status", &c.status)?,
            })
        })
        .collect()
}

pub fn set_page(r: &pb::SetPageRequest) -> Result<Command> {
    let patch = PagePatch {
        name: r.name.clone(),
        url: r.url.clone(),
        time_zone: r.time_zone.clone(),
        emit_maintenance_status: r.emit_maintenance_status,
    };
    if patch == PagePatch::default() {
        return Err(CommandError::invalid("page", "nothing to change"));
    }
    Ok(Command::SetPage {
        page_id: Id::pending(),
        patch,
    })
}

pub fn create_component(r: &pb::CreateComponentRequest) -> Result<Command> {
    Ok(Command::CreateComponent {
        id: Id::pending(),
        spec: NewComponent {
            name: r.name.clone(),
            description: r.description.clone(),
            position: r.position,
            status: match &r.status {
                Some(s) => ComponentStatus::parse("status", s)?,
                None => ComponentStatus::Operational,
            },
            group_id: r
                .group_id
                .as_deref()
                .map(|g| id("group_id", g))
                .transpose()?,
            is_group: r.group,
            showcase: r.showcase,
            only_show_if_degraded: r.only_show_if_degraded,
        },
    })
}

pub fn update_component(r: &pb::UpdateComponentRequest) -> Result<Command> {
    let patch = ComponentPatch {
        name: r.name.clone(),
        description: r
            .description
            .clone()
            .map(|d| Some(d).filter(|d| !d.is_empty())),
        position: r.position,
        group_id: match r.group_id.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(g) => Some(Some(id("group_id", g)?)),
        },
        showcase: r.showcase,
        only_show_if_degraded: r.only_show_if_degraded,
    };
    if patch == ComponentPatch::default() {
        return Err(CommandError::invalid("component", "nothing to change"));
    }
    Ok(Command::UpdateComponent {
        id: id("id", &r.id)?,
        patch,
    })
}

pub fn set_component_status(r: &pb::SetComponentStatusRequest) -> Result<Command> {
    Ok(Command::SetComponentStatus {
        id: id("id", &r.id)?,
        status: ComponentStatus::parse("status", &r.status)?,
    })
}

pub fn delete_component(r: &pb::IdRequest) -> Result<Command> {
    Ok(Command::DeleteComponent {
        id: id("id", &r.id)?,
    })
}

pub fn create_incident(r: &pb::CreateIncidentRequest) -> Result<Command> {
    Ok(Command::CreateIncident {
        id: Id::pending(),
        update_id: Id::pending(),
        spec: NewIncident {
            name: r.name.clone(),
            status: match &r.status {
                Some(s) => IncidentStatus::parse("status", s)?,
                None => IncidentStatus::Investigating,
            },
            impact: match &r.impact {
                Some(s) => Impact::parse("impact", s)?,
                None => Impact::Minor,
            },
            body: r.body.clone(),
            started_at: r
                .started_at
                .as_deref()
                .map(|s| ts("started_at", s))
                .transpose()?,
            component_changes: changes(&r.component_changes)?,
        },
    })
}

pub fn update_incident(r: &pb::UpdateIncidentRequest) -> Result<Command> {
    Ok(Command::UpdateIncident {
        id: id("id", &r.id)?,
        update_id: Id::pending(),
        spec: IncidentUpdateSpec {
            status: r
                .status
                .as_deref()
                .map(|s| IncidentStatus::parse("status", s))
                .transpose()?,
            impact: r
                .impact
                .as_deref()
                .map(|s| Impact::parse("impact", s))
                .transpose()?,
            name: r.name.clone(),
            body: r.body.clone(),
            component_changes: changes(&r.component_changes)?,
        },
    })
}

pub fn resolve_incident(r: &pb::ResolveIncidentRequest) -> Result<Command> {
    Ok(Command::ResolveIncident {
        id: id("id", &r.id)?,
        update_id: Id::pending(),
        body: r
            .body
            .clone()
            .unwrap_or_else(|| "This incident has been resolved.".into()),
        restore_components: !r.keep_component_status,
    })
}

pub fn publish_postmortem(r: &pb::PostmortemRequest) -> Result<Command> {
    Ok(Command::PublishPostmortem {
        id: id("id", &r.id)?,
        body: r.body.clone(),
    })
}

pub fn schedule_maintenance(r: &pb::ScheduleMaintenanceRequest) -> Result<Command> {
    Ok(Command::ScheduleMaintenance {
        id: Id::pending(),
        update_id: Id::pending(),
        spec: NewMaintenance {
            name: r.name.clone(),
            body: r.body.clone(),
            scheduled_for: ts("scheduled_for", &r.scheduled_for)?,
            scheduled_until: ts("scheduled_until", &r.scheduled_until)?,
            components: ids("component_ids", &r.component_ids)?,
            auto_transitions: !r.manual_transitions,
        },
    })
}

pub fn update_maintenance(r: &pb::UpdateMaintenanceRequest) -> Result<Command> {
    let patch = MaintenancePatch {
        name: r.name.clone(),
        scheduled_for: r
            .scheduled_for
            .as_deref()
            .map(|s| ts("scheduled_for", s))
            .transpose()?,
        scheduled_until: r
            .scheduled_until
            .as_deref()
            .map(|s| ts("scheduled_until", s))
            .transpose()?,
        components: if r.set_components {
            Some(ids("component_ids", &r.component_ids)?)
        } else {
            None
        },
        status: r
            .status
            .as_deref()
            .map(|s| MaintenanceStatus::parse("status", s))
            .transpose()?,
        body: r.body.clone(),
    };
    if patch == MaintenancePatch::default() {
        return Err(CommandError::invalid("maintenance", "nothing to change"));
    }
    Ok(Command::UpdateMaintenance {
        id: id("id", &r.id)?,
        update_id: Id::pending(),
        patch,
    })
}

pub fn cancel_maintenance(r: &pb::CancelMaintenanceRequest) -> Result<Command> {
    Ok(Command::CancelMaintenance {
        id: id("id", &r.id)?,
        update_id: Id::pending(),
        body: r.body.clone(),
    })
}

pub fn add_subscriber(r: &pb::AddSubscriberRequest) -> Result<Command> {
    Ok(Command::AddSubscriber {
        id: Id::pending(),
        spec: NewSubscriber {
            url: r.url.clone(),
            component_ids: ids("component_ids", &r.component_ids)?,
            description: r.description.clone(),
            secret: String::new(),
            format: PayloadFormat::parse("format", &r.format)?,
            owner: r.owner.clone(),
        },
    })
}

pub fn set_subscriber_state(r: &pb::SetSubscriberStateRequest) -> Result<Command> {
    Ok(Command::SetSubscriberState {
        id: id("id", &r.id)?,
        enabled: r.enabled,
        replay_since: r
            .replay_since
            .as_deref()
            .map(|t| ts("replay_since", t))
            .transpose()?,
    })
}

pub fn rotate_subscriber_secret(r: &pb::RotateSecretRequest) -> Result<Command> {
    let overlap_ms = i64::try_from(r.overlap_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    Ok(Command::RotateSubscriberSecret {
        id: id("id", &r.id)?,
        secret: String::new(),
        overlap_ms,
    })
}

pub fn test_subscriber(r: &pb::IdRequest) -> Result<Command> {
    Ok(Command::TestSubscriber {
        id: id("id", &r.id)?,
    })
}

pub fn replay_event(r: &pb::ReplayEventRequest) -> Result<Command> {
    if r.event_id.is_empty() {
        return Err(CommandError::invalid("event_id", "must not be empty"));
    }
    Ok(Command::ReplayEvent {
        event: r.event_id.clone(),
        subscriber: r
            .subscriber_id
            .as_deref()
            .map(|s| id("subscriber_id", s))
            .transpose()?,
    })
}

pub fn remove_subscriber(r: &pb::IdRequest) -> Result<Command> {
    Ok(Command::RemoveSubscriber {
        id: id("id", &r.id)?,
    })
}

// ---- entities -> messages ----

fn opt_ts(t: Option<Timestamp>) -> Option<String> {
    t.map(|t| t.to_string())
}

pub fn page(state: &State) -> pb::Page {
    let indicator = state.indicator();
    pb::Page {
        id: state.page.id.to_string(),
        emit_maintenance_status: state.page.emit_maintenance_status,
        name: state.page.name.clone(),
        url: state.page.url.clone(),
        time_zone: state.page.time_zone.clone(),
        updated_at: state.page.updated_at.to_string(),
        indicator: indicator.as_str().into(),
        description: indicator.description().into(),
    }
}

pub fn component(state: &State, c: &Component) -> pb::Component {
    pb::Component {
        id: c.id.to_string(),
        name: c.name.clone(),
        description: c.description.clone(),
        position: c.position,
        status: state.component_status(c).to_string(),
        group_id: c.group_id.as_ref().map(Id::to_string),
        group: c.is_group,
        showcase: c.showcase,
        only_show_if_degraded: c.only_show_if_degraded,
        created_at: c.created_at.to_string(),
        updated_at: c.updated_at.to_string(),
    }
}

pub fn incident(i: &Incident) -> pb::Incident {
    pb::Incident {
        id: i.id.to_string(),
        name: i.name.clone(),
        status: i.status.to_string(),
        impact: i.impact.to_string(),
        created_at: i.created_at.to_string(),
        updated_at: i.updated_at.to_string(),
        started_at: i.started_at.to_string(),
        monitoring_at: opt_ts(i.monitoring_at),
        resolved_at: opt_ts(i.resolved_at),
        component_ids: i.components.iter().map(Id::to_string).collect(),
        updates: i
            .updates
            .iter()
            .rev()
            .map(|u| pb::IncidentUpdate {
                id: u.id.to_string(),
                status: u.status.to_string(),
                body: u.body.clone(),
                created_at: u.created_at.to_string(),
                affected_components: u
                    .affected_components
                    .iter()
                    .map(|a| pb::AffectedComponent {
                        component_id: a.component_id.to_string(),
                        name: a.name.clone(),
                        old_status: a.old_status.to_string(),
                        new_status: a.new_status.to_string(),
                    })
                    .collect(),
            })
            .collect(),
        postmortem: i.postmortem.as_ref().map(|p| p.body.clone()),
        postmortem_published_at: i.postmortem.as_ref().map(|p| p.published_at.to_string()),
    }
}

pub fn maintenance(m: &Maintenance) -> pb::Maintenance {
    pb::Maintenance {
        id: m.id.to_string(),
        name: m.name.clone(),
        status: m.status.to_string(),
        scheduled_for: m.scheduled_for.to_string(),
        scheduled_until: m.scheduled_until.to_string(),
        component_ids: m.components.iter().map(Id::to_string).collect(),
        auto_transitions: m.auto_transitions,
        created_at: m.created_at.to_string(),
        updated_at: m.updated_at.to_string(),
        started_at: opt_ts(m.started_at),
        completed_at: opt_ts(m.completed_at),
        updates: m
            .updates
            .iter()
            .rev()
            .map(|u| pb::MaintenanceUpdate {
                id: u.id.to_string(),
                status: u.status.to_string(),
                body: u.body.clone(),
                created_at: u.created_at.to_string(),
            })
            .collect(),
    }
}

/// The subscriber with its secret masked (the full secret is only shown once, at creation),
/// and a chat webhook URL masked unless `reveal_urls` (the admin role).
pub fn subscriber_redacted(s: &Subscriber, reveal_urls: bool) -> pb::Subscriber {
    subscriber_with_secret(&s.shown(reveal_urls))
}

/// The subscriber including its secret: only for the reply to the write that created it.
pub fn subscriber_with_secret(s: &Subscriber) -> pb::Subscriber {
    pb::Subscriber {
        id: s.id.to_string(),
        url: s.url.clone(),
        component_ids: s.component_ids.iter().map(Id::to_string).collect(),
        secret: s.secret.clone(),
        description: s.description.clone(),
        state: s.state.as_str().into(),
        created_at: s.created_at.to_string(),
        format: s.format.as_str().into(),
        owner: s.owner.clone(),
        state_reason: s.state.reason().map(str::to_owned),
        previous_secret_until: s.previous_secret.as_ref().map(|p| p.until.to_string()),
        recent_failures: s.recent_failures.len() as u32,
        pending_deliveries: 0,
    }
}

/// One subscriber, secret masked, with its count of pending deliveries.
pub fn subscriber_listed(state: &State, s: &Subscriber, reveal_urls: bool) -> pb::Subscriber {
    let mut out = subscriber_redacted(s, reveal_urls);
    out.pending_deliveries = state
        .outbox
        .deliveries
        .values()
        .filter_map(|m| m.get(&s.id))
        .filter(|d| d.is_pending())
        .count() as u32;
    out
}

/// Every subscriber, secrets masked, with pending counts taken in one pass over the outbox
/// (not one pass per subscriber).
pub fn subscribers_listed(state: &State, reveal_urls: bool) -> Vec<pb::Subscriber> {
    let pending = state.outbox.pending_per_subscriber();
    state
        .subscribers
        .values()
        .map(|s| {
            let mut out = subscriber_redacted(s, reveal_urls);
            out.pending_deliveries = pending.get(&s.id).copied().unwrap_or(0);
            out
        })
        .collect()
}

pub fn event(state: &State, e: &Event) -> pb::Event {
    let (mut pending, mut failed) = (0, 0);
    if let Some(m) = state.outbox.deliveries.get(&e.seq) {
        for d in m.values() {
            if d.is_pending() {
                pending += 1;
            } else {
                failed += 1;
            }
        }
    }
    pb::Event {
        webhook_id: e.webhook_id.clone(),
        kind: e.kind.as_str().into(),
        at: e.at.to_string(),
        index: e.index,
        summary: e.summary(),
        component_ids: e.component_ids.iter().map(Id::to_string).collect(),
        recipients: e.recipients,
        pending,
        failed,
    }
}

pub fn attempt(r: &AttemptRecord) -> pb::DeliveryAttempt {
    let a = &r.report;
    pb::DeliveryAttempt {
        webhook_id: r.webhook_id.clone(),
        kind: r.kind.as_str().into(),
        attempt: a.attempt,
        at: a.at.to_string(),
        duration_ms: a.duration_ms,
        http_status: a.http_status.map(u32::from),
        error: a.error.clone(),
        response_excerpt: a.response_excerpt.clone(),
        outcome: a.outcome.as_str().into(),
        next_attempt_at: match &a.outcome {
            AttemptOutcome::Retry { next_at } => Some(next_at.to_string()),
            _ => None,
        },
    }
}

/// A subscriber's recent attempts (newest first, at most `limit`) and open deliveries.
pub fn deliveries(state: &State, sub: &Id, limit: usize) -> pb::DeliveryList {
    let attempts = state
        .outbox
        .attempt_log
        .get(sub)
        .map(|log| log.iter().rev().take(limit).map(attempt).collect())
        .unwrap_or_default();
    let open = state
        .outbox
        .deliveries
        .iter()
        .filter_map(|(seq, m)| m.get(sub).map(|d| (seq, d)))
        .map(|(seq, d)| {
            let e = state.outbox.events.get(seq);
            let (state, reason) = match &d.state {
                DeliveryState::Pending => ("pending", None),
                DeliveryState::Failed { reason, .. } => ("failed", Some(reason.clone())),
            };
            pb::OpenDelivery {
                webhook_id: e.map(|e| e.webhook_id.clone()).unwrap_or_default(),
                kind: e.map(|e| e.kind.as_str()).unwrap_or_default().into(),
                attempts: d.attempts,
                state: state.into(),
                next_attempt_at: d.next_attempt_at.to_string(),
                reason,
            }
        })
        .collect();
    pb::DeliveryList { attempts, open }
}

/// A token request becomes a command carrying only the secret's hash.
pub fn create_token(r: &pb::CreateTokenRequest) -> Result<Command> {
    use sha2::Digest as _;
    use statusmesh_model::access::{check_token_name, Role};
    check_token_name("name", &r.name)?;
    let role = Role::parse("role", &r.role)?;
    if r.secret.len() < 32
        || r.secret.len() > 256
        || !r.secret.bytes().all(|b| b.is_ascii_graphic())
    {
        // Never echo the secret.
        return Err(CommandError::invalid(
            "secret",
            "must be 32 to 256 printable ASCII characters",
        ));
    }
    Ok(Command::CreateToken {
        name: r.name.clone(),
        role,
        hash: hex::encode(sha2::Sha256::digest(r.secret.as_bytes())),
    })
}

pub fn token(t: &statusmesh_model::ApiToken) -> pb::Token {
    pb::Token {
        name: t.name.clone(),
        role: t.role.to_string(),
        created_at: t.created_at.to_string(),
        revoked_at: t.revoked_at.map(|r| r.to_string()),
    }
}

pub fn audit_record(a: &statusmesh_model::AuditRecord) -> pb::AuditRecord {
    pb::AuditRecord {
        seq: a.seq,
        index: a.index,
        at: a.at.to_string(),
        actor: a.actor.clone(),
        via_node: a.via_node,
        action: a.action.clone(),
        target: a.target.clone(),
        detail: a.detail.clone(),
        request_id: a.request_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_name_the_field() {
        let e = set_component_status(&pb::SetComponentStatusRequest {
            id: "api".into(),
            status: "down".into(),
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid status"), "{e}");
        let e = schedule_maintenance(&pb::ScheduleMaintenanceRequest {
            name: "x".into(),
            body: "y".into(),
            scheduled_for: "soon".into(),
            scheduled_until: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid scheduled_for"), "{e}");
        let e = update_component(&pb::UpdateComponentRequest {
            id: "api".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("nothing to change"), "{e}");
    }

    #[test]
    fn new_entities_carry_pending_ids() {
        let cmd = create_incident(&pb::CreateIncidentRequest {
            name: "x".into(),
            body: "y".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(cmd.is_unstamped());
    }
}
