//! Recording notification events and the attempts to deliver them.

use std::collections::{BTreeMap, BTreeSet};

use crate::command::{Applied, Command};
use crate::entities::{Component, SubscriberState};
use crate::error::CommandError;
use crate::ids::{Id, Timestamp};
use crate::limits;
use crate::outbox::{
    self, AttemptOutcome, AttemptRecord, AttemptReport, DeliveryState, Event, EventKind,
    EventSubject, QuarantinePolicy,
};
use crate::state::State;
use crate::status::{ComponentStatus, IncidentStatus, MaintenanceStatus};

/// Component statuses before a command, to tell which ones it changed.
pub(crate) type StatusSnapshot = BTreeMap<Id, ComponentStatus>;

impl State {
    pub(crate) fn status_snapshot(&self) -> StatusSnapshot {
        self.components
            .values()
            .filter(|c| !c.is_group)
            .map(|c| (c.id.clone(), c.status))
            .collect()
    }

    /// Child component -> its group, for component filters.
    fn group_map(&self) -> BTreeMap<Id, Id> {
        self.components
            .values()
            .filter_map(|c| c.group_id.clone().map(|g| (c.id.clone(), g)))
            .collect()
    }

    fn webhook_id_prefix(&self) -> String {
        if self.page.id.is_pending() {
            "msg_".into()
        } else {
            format!("msg_{}_", self.page.id)
        }
    }

    fn new_event(
        &self,
        index: u64,
        at: Timestamp,
        kind: EventKind,
        components: BTreeSet<Id>,
        subject: EventSubject,
    ) -> Event {
        Event {
            // Both assigned by `Outbox::record`.
            seq: 0,
            webhook_id: String::new(),
            kind,
            at,
            index,
            indicator: self.public_indicator(),
            component_ids: components,
            subject,
            recipients: 0,
        }
    }

    /// Records a broadcast event and queues it for every active subscriber whose filter matches.
    fn broadcast(&mut self, event: Event) {
        let groups = self.group_map();
        let recipients: Vec<Id> = self
            .subscribers
            .values()
            .filter(|s| s.is_active() && outbox::wants(s, &event.component_ids, &groups))
            .map(|s| s.id.clone())
            .collect();
        let prefix = self.webhook_id_prefix();
        self.outbox.record(event, &prefix, recipients);
    }

    /// Records the events a successful page command raised: the incident or maintenance event
    /// first, then one per component whose status changed.
    pub(crate) fn emit_events(
        &mut self,
        index: u64,
        at: Timestamp,
        command: &Command,
        before: &StatusSnapshot,
    ) {
        let main = match command {
            Command::CreateIncident { id, .. } => Some((EventKind::IncidentCreated, id)),
            Command::UpdateIncident { id, .. } => {
                let resolved = self
                    .incidents
                    .get(id)
                    .is_some_and(|i| i.status == IncidentStatus::Resolved);
                Some((
                    if resolved {
                        EventKind::IncidentResolved
                    } else {
                        EventKind::IncidentUpdated
                    },
                    id,
                ))
            }
            Command::ResolveIncident { id, .. } => Some((EventKind::IncidentResolved, id)),
            Command::PublishPostmortem { id, .. } => {
                Some((EventKind::IncidentPostmortemPublished, id))
            }
            Command::ScheduleMaintenance { id, .. } => Some((EventKind::MaintenanceScheduled, id)),
            Command::CancelMaintenance { id, .. } => Some((EventKind::MaintenanceCancelled, id)),
            Command::UpdateMaintenance { id, patch, .. } => match patch.status {
                Some(MaintenanceStatus::InProgress) => Some((EventKind::MaintenanceStarted, id)),
                Some(MaintenanceStatus::Completed) => Some((EventKind::MaintenanceCompleted, id)),
                Some(MaintenanceStatus::Cancelled) => Some((EventKind::MaintenanceCancelled, id)),
                _ => None,
            },
            Command::AutoTransitionMaintenance { id, to, .. } => match to {
                MaintenanceStatus::InProgress => Some((EventKind::MaintenanceStarted, id)),
                MaintenanceStatus::Completed => Some((EventKind::MaintenanceCompleted, id)),
                _ => None,
            },
            _ => None,
        };
        if let Some((kind, id)) = main {
            let found = if let Some(i) = self.incidents.get(id) {
                Some((
                    i.components.clone(),
                    EventSubject::Incident {
                        incident: Box::new(i.clone()),
                    },
                ))
            } else {
                self.maintenances.get(id).map(|m| {
                    (
                        m.components.clone(),
                        EventSubject::Maintenance {
                            maintenance: Box::new(m.clone()),
                        },
                    )
                })
            };
            if let Some((components, subject)) = found {
                let event = self.new_event(index, at, kind, components, subject);
                self.broadcast(event);
            }
        }
        let changed: Vec<(Component, ComponentStatus)> = self
            .components
            .values()
            .filter(|c| !c.is_group)
            .filter_map(|c| {
                let old = before.get(&c.id).copied().unwrap_or(c.status);
                (old != c.status).then(|| {
                    let mut snapshot = c.clone();
                    snapshot.status_log.clear();
                    (snapshot, old)
                })
            })
            .collect();
        for (component, old_status) in changed {
            let new_status = component.status;
            let event = self.new_event(
                index,
                at,
                EventKind::ComponentStatusChanged,
                BTreeSet::from([component.id.clone()]),
                EventSubject::Component {
                    component: Box::new(component),
                    old_status,
                    new_status,
                },
            );
            self.broadcast(event);
        }
        self.outbox.prune(at);
    }

    pub(crate) fn test_subscriber(
        &mut self,
        index: u64,
        at: Timestamp,
        id: &Id,
    ) -> Result<Applied, CommandError> {
        self.subscriber(id)?;
        let event = self.new_event(
            index,
            at,
            EventKind::Ping,
            BTreeSet::new(),
            EventSubject::Subscriber {
                subscriber_id: id.clone(),
                reason: "test delivery requested by an operator".into(),
            },
        );
        let prefix = self.webhook_id_prefix();
        let seq = self.outbox.record(event, &prefix, vec![id.clone()]);
        self.outbox.prune(at);
        Ok(Applied::Event(self.outbox.events[&seq].webhook_id.clone()))
    }

    pub(crate) fn replay_event(
        &mut self,
        at: Timestamp,
        event_ref: &str,
        subscriber: Option<&Id>,
    ) -> Result<Applied, CommandError> {
        let seq = self.outbox.parse_event_ref(event_ref).ok_or_else(|| {
            CommandError::invalid(
                "event",
                format!("no event {event_ref:?} is kept (see `statusctl event list`)"),
            )
        })?;
        let event = &self.outbox.events[&seq];
        let groups = self.group_map();
        let targets: Vec<Id> = match (subscriber, &event.subject) {
            (Some(sub), _) => {
                let s = self.subscriber(sub)?;
                if !s.is_active() {
                    return Err(CommandError::precondition(format!(
                        "subscriber {sub} is {}; enable it first",
                        s.state.as_str()
                    )));
                }
                vec![sub.clone()]
            }
            (None, EventSubject::Subscriber { subscriber_id, .. }) => {
                if event.kind == EventKind::Ping {
                    vec![subscriber_id.clone()]
                } else {
                    vec![]
                }
            }
            (None, _) => self
                .subscribers
                .values()
                .filter(|s| s.is_active() && outbox::wants(s, &event.component_ids, &groups))
                .map(|s| s.id.clone())
                .collect(),
        };
        if event.kind == EventKind::SubscriberQuarantined || targets.is_empty() {
            return Err(CommandError::precondition(format!(
                "event {event_ref} has no active subscriber to deliver to"
            )));
        }
        for sub in &targets {
            self.outbox.requeue(seq, sub, at);
        }
        Ok(Applied::Requeued(targets.len() as u32))
    }

    /// Queues again, for a re-enabled subscriber, every broadcast event since `since` that its
    /// filter matches (those still pending are left as they are).
    pub(crate) fn replay_since(&mut self, at: Timestamp, sub: &Id, since: Timestamp) {
        let Some(s) = self.subscribers.get(sub) else {
            return;
        };
        let groups = self.group_map();
        let seqs: Vec<u64> = self
            .outbox
            .events
            .values()
            .filter(|e| e.at >= since && e.kind.is_broadcast())
            .filter(|e| outbox::wants(s, &e.component_ids, &groups))
            .map(|e| e.seq)
            .collect();
        for seq in seqs {
            let pending = self
                .outbox
                .deliveries
                .get(&seq)
                .and_then(|m| m.get(sub))
                .is_some_and(|d| d.is_pending());
            if !pending {
                self.outbox.requeue(seq, sub, at);
            }
        }
    }

    pub(crate) fn record_attempts(
        &mut self,
        index: u64,
        at: Timestamp,
        policy: &QuarantinePolicy,
        reports: &[AttemptReport],
    ) -> Result<Applied, CommandError> {
        if policy.failures == 0 || policy.window_ms < 0 {
            return Err(CommandError::invalid(
                "policy",
                "quarantine needs at least one failure and a non-negative window",
            ));
        }
        limits::count("reports", reports.len(), limits::MAX_REPORTS_PER_BATCH)?;
        let mut counted = 0;
        for report in reports {
            if self.record_attempt(index, at, policy, report) {
                counted += 1;
            }
        }
        self.outbox.prune(at);
        Ok(Applied::AttemptsRecorded(counted))
    }

    /// Applies one report; false if it was stale (not the delivery's next attempt).
    fn record_attempt(
        &mut self,
        index: u64,
        at: Timestamp,
        policy: &QuarantinePolicy,
        r: &AttemptReport,
    ) -> bool {
        let Some(d) = self
            .outbox
            .deliveries
            .get_mut(&r.event)
            .and_then(|m| m.get_mut(&r.subscriber))
        else {
            return false;
        };
        if !d.is_pending() || r.attempt != d.attempts + 1 {
            return false;
        }
        d.attempts = r.attempt;
        let attempts = d.attempts;
        let report = r.clone().bounded();
        let failed = match &r.outcome {
            AttemptOutcome::Delivered => {
                if let Some(m) = self.outbox.deliveries.get_mut(&r.event) {
                    m.remove(&r.subscriber);
                    if m.is_empty() {
                        self.outbox.deliveries.remove(&r.event);
                    }
                }
                self.outbox.delivered_total += 1;
                if let Some(s) = self.subscribers.get_mut(&r.subscriber) {
                    s.recent_failures.clear();
                }
                false
            }
            AttemptOutcome::Retry { next_at } => {
                d.next_attempt_at = *next_at;
                true
            }
            AttemptOutcome::Exhausted | AttemptOutcome::Gone => {
                d.state = DeliveryState::Failed {
                    at,
                    reason: format!("gave up after {attempts} attempts"),
                };
                true
            }
        };
        self.outbox.attempts_total += 1;
        let (webhook_id, kind) = self
            .outbox
            .events
            .get(&r.event)
            .map(|e| (e.webhook_id.clone(), e.kind))
            .unwrap_or_else(|| (String::new(), EventKind::Ping));
        self.outbox.log_attempt(AttemptRecord {
            webhook_id,
            kind,
            report,
        });
        if !failed {
            return true;
        }
        match &r.outcome {
            AttemptOutcome::Gone => {
                self.disable_subscriber(at, &r.subscriber, "the endpoint answered 410 Gone".into())
            }
            AttemptOutcome::Exhausted => self.quarantine(
                index,
                at,
                &r.subscriber,
                format!("the retry schedule was exhausted ({attempts} attempts)"),
            ),
            _ => {
                let Some(s) = self.subscribers.get_mut(&r.subscriber) else {
                    return true;
                };
                s.recent_failures.push(r.at);
                let window_start = r.at.0 - policy.window_ms;
                s.recent_failures.retain(|t| t.0 >= window_start);
                let n = s.recent_failures.len();
                if n >= policy.failures as usize && s.is_active() {
                    self.quarantine(
                        index,
                        at,
                        &r.subscriber,
                        format!(
                            "{n} failed attempts in a row within {} minutes",
                            policy.window_ms / 60_000
                        ),
                    );
                }
            }
        }
        true
    }

    /// Stops deliveries to a failing subscriber and records an event for operators.
    fn quarantine(&mut self, index: u64, at: Timestamp, sub: &Id, reason: String) {
        let Some(s) = self.subscribers.get_mut(sub) else {
            return;
        };
        if !s.is_active() {
            return;
        }
        s.state = SubscriberState::Quarantined {
            at,
            reason: reason.clone(),
        };
        s.updated_at = at;
        self.outbox
            .fail_all_of(sub, at, &format!("subscriber quarantined: {reason}"));
        let event = self.new_event(
            index,
            at,
            EventKind::SubscriberQuarantined,
            BTreeSet::new(),
            EventSubject::Subscriber {
                subscriber_id: sub.clone(),
                reason,
            },
        );
        let prefix = self.webhook_id_prefix();
        self.outbox.record(event, &prefix, vec![]);
    }
}
