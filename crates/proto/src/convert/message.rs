//! Entities -> admin messages. Secrets never leave except in the reply to the write that
//! created them; chat webhook URLs (credentials) are masked unless the caller may see them.

use statusmesh_model::outbox::{AttemptOutcome, AttemptRecord, DeliveryState};
use statusmesh_model::{Component, Event, Id, Incident, Maintenance, State, Subscriber, Timestamp};

use crate::admin as pb;

fn opt_ts(t: Option<Timestamp>) -> Option<String> {
    t.map(|t| t.to_string())
}

pub fn page(state: &State) -> pb::Page {
    let indicator = state.indicator();
    pb::Page {
        id: state.page.id.to_string(),
        emit_maintenance_status: state.page.emit_maintenance_status,
        email_subscriptions: state.page.email_subscriptions,
        webhook_subscriptions: state.page.webhook_subscriptions,
        mail_header: state.page.mail_header.clone(),
        mail_footer: state.page.mail_footer.clone(),
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
    subscribers_listed(state, std::iter::once(s), reveal_urls)
        .pop()
        .unwrap_or_else(|| subscriber_redacted(s, reveal_urls))
}

/// Subscribers, secrets masked, each with its pending deliveries: its explicit ones (counted
/// in one pass over the outbox, not one per subscriber) and the fan-outs that have yet to
/// reach it.
pub fn subscribers_listed<'a>(
    state: &State,
    subs: impl IntoIterator<Item = &'a Subscriber>,
    reveal_urls: bool,
) -> Vec<pb::Subscriber> {
    let pending = state.outbox.pending_per_subscriber();
    let groups = state.group_map();
    let fanning: Vec<(&Event, Option<&Id>)> = state
        .outbox
        .events
        .values()
        .filter_map(|e| e.fanout.as_ref().map(|f| (e, f.after.as_ref())))
        .collect();
    subs.into_iter()
        .map(|s| {
            let mut out = subscriber_redacted(s, reveal_urls);
            let ahead = fanning
                .iter()
                .filter(|(e, after)| {
                    after.is_none_or(|a| a < &s.id) && state.is_fanout_target(e, s, &groups)
                })
                .count() as u32;
            out.pending_deliveries = pending.get(&s.id).copied().unwrap_or(0) + ahead;
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
    if let Some(f) = &e.fanout {
        let groups = state.group_map();
        pending += state
            .subscribers_between(f.after.as_ref(), None)
            .filter(|s| state.is_fanout_target(e, s, &groups))
            .count() as u32;
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
        fanning_out: e.fanout.is_some(),
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
        .of(sub)
        .into_iter()
        .rev()
        .take(limit)
        .map(attempt)
        .collect();
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

/// Every named token (hashes never leave).
pub fn tokens(state: &State) -> pb::TokenList {
    pb::TokenList {
        tokens: state.tokens.by_name.values().map(token).collect(),
    }
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
