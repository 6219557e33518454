//! Recording notification events and the attempts to deliver them.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::command::{Applied, Command};
use crate::entities::{Component, Subscriber, SubscriberState};
use crate::error::CommandError;
use crate::ids::{Id, Timestamp};
use crate::limits;
use crate::outbox::{
    self, AttemptOutcome, AttemptRecord, AttemptReport, Delivery, DeliveryState, Event, EventKind,
    EventSubject, Fanout, FanoutProgress, Outbox, QuarantinePolicy,
};
use crate::state::State;
use crate::status::{ComponentStatus, IncidentStatus, MaintenanceStatus};

/// Whether broadcast `event` is for `sub`, whatever its state: it was added before the event
/// and its filter matches — and, for an email subscriber, it is not a component change that
/// an incident or maintenance update made (that update's own mail lists the components; one
/// change, one mail).
fn is_recipient(
    outbox: &Outbox,
    event: &Event,
    sub: &Subscriber,
    groups: &BTreeMap<Id, Id>,
) -> bool {
    sub.since < event.index
        && outbox::wants(sub, &event.component_ids, groups)
        && !(sub.format.is_email() && outbox.accompanies_update(event))
}

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
    pub fn group_map(&self) -> BTreeMap<Id, Id> {
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
            fanout: None,
        }
    }

    /// Records a broadcast event: its fan-out starts before the first subscriber. Constant
    /// time whatever the number of subscribers.
    fn broadcast(&mut self, mut event: Event) {
        if !self.subscribers.is_empty() {
            event.fanout = Some(Fanout::default());
        }
        let prefix = self.webhook_id_prefix();
        self.outbox.record(event, &prefix, Vec::new());
    }

    /// Whether the fan-out of `event` goes to `sub`: active, added before the event, its
    /// filter matching, and no explicit delivery of the event to it (a replay or deferral
    /// already queued one). The one rule the dispatcher's walk and the apply of its reports
    /// share.
    pub fn is_fanout_target(
        &self,
        event: &Event,
        sub: &Subscriber,
        groups: &BTreeMap<Id, Id>,
    ) -> bool {
        sub.is_active()
            && is_recipient(&self.outbox, event, sub, groups)
            && self.outbox.delivery(event.seq, &sub.id).is_none()
    }

    /// The subscribers after `after` in subscriber order (all, from `None`), up to and
    /// including `through` (to the end, from `None`).
    pub fn subscribers_between<'a>(
        &'a self,
        after: Option<&Id>,
        through: Option<&Id>,
    ) -> impl Iterator<Item = &'a Subscriber> + 'a {
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.clone()));
        let upper = through.map_or(Bound::Unbounded, |t| Bound::Included(t.clone()));
        let empty = matches!((&lower, &upper), (Bound::Excluded(a), Bound::Included(t)) if t <= a);
        (!empty)
            .then(|| self.subscribers.range((lower, upper)).map(|(_, s)| s))
            .into_iter()
            .flatten()
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
                let mut header = i.clone();
                header.updates.clear();
                Some((
                    i.components.clone(),
                    EventSubject::Incident {
                        incident: Box::new(header),
                        updates: i.updates.len() as u32,
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
        let seq = self.notify_one(
            index,
            at,
            EventKind::Ping,
            id,
            "test delivery requested by an operator",
        );
        Ok(Applied::Event(self.outbox.events[&seq].webhook_id.clone()))
    }

    /// Records an event for one subscriber only (a ping, a subscription's confirmation or
    /// manage link), with its delivery queued; returns its sequence number.
    pub(crate) fn notify_one(
        &mut self,
        index: u64,
        at: Timestamp,
        kind: EventKind,
        id: &Id,
        reason: &str,
    ) -> u64 {
        let event = self.new_event(
            index,
            at,
            kind,
            BTreeSet::new(),
            EventSubject::Subscriber {
                subscriber_id: id.clone(),
                reason: reason.into(),
            },
        );
        let prefix = self.webhook_id_prefix();
        let seq = self.outbox.record(event, &prefix, vec![id.clone()]);
        self.outbox.prune(at);
        seq
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
        if subscriber.is_none() && event.kind.is_broadcast() {
            return self.replay_broadcast(seq, event_ref);
        }
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
            (None, EventSubject::Subscriber { subscriber_id, .. })
                if event.kind == EventKind::Ping =>
            {
                vec![subscriber_id.clone()]
            }
            (None, _) => vec![],
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

    /// Replays a broadcast event to every subscriber it matches: its fan-out starts again
    /// from the first subscriber. Pending explicit deliveries stay as they are (the walk skips
    /// them); failed ones are dropped so that the walk reaches them again.
    fn replay_broadcast(&mut self, seq: u64, event_ref: &str) -> Result<Applied, CommandError> {
        let groups = self.group_map();
        let event = &self.outbox.events[&seq];
        let targets = self
            .subscribers
            .values()
            .filter(|s| s.is_active() && is_recipient(&self.outbox, event, s, &groups))
            .count();
        if targets == 0 {
            return Err(CommandError::precondition(format!(
                "event {event_ref} has no active subscriber to deliver to"
            )));
        }
        if let Some(m) = self.outbox.deliveries.get_mut(&seq) {
            m.retain(|_, d| d.is_pending());
            if m.is_empty() {
                self.outbox.deliveries.remove(&seq);
            }
        }
        if let Some(e) = self.outbox.events.get_mut(&seq) {
            e.fanout = Some(Fanout::default());
        }
        Ok(Applied::Requeued(targets as u32))
    }

    /// Queues again, for a re-enabled subscriber, every broadcast event since `since` that its
    /// filter matches, as explicit deliveries (those still pending are left as they are). An
    /// event still fanning out skips it from then on (it has an explicit record), wherever the
    /// walk is, so it is neither missed nor sent twice.
    pub(crate) fn replay_since(&mut self, at: Timestamp, sub: &Id, since: Timestamp) {
        let Some(s) = self.subscribers.get(sub) else {
            return;
        };
        let groups = self.group_map();
        let seqs: Vec<u64> = self
            .outbox
            .events
            .values()
            .filter(|e| {
                e.at >= since && e.kind.is_broadcast() && is_recipient(&self.outbox, e, s, &groups)
            })
            .filter(|e| {
                !self
                    .outbox
                    .delivery(e.seq, sub)
                    .is_some_and(Delivery::is_pending)
            })
            .map(|e| e.seq)
            .collect();
        for seq in seqs {
            self.outbox.requeue(seq, sub, at);
        }
    }

    pub(crate) fn record_attempts(
        &mut self,
        index: u64,
        at: Timestamp,
        policy: &QuarantinePolicy,
        reports: &[AttemptReport],
        progress: &[FanoutProgress],
    ) -> Result<Applied, CommandError> {
        if policy.failures == 0 || policy.window_ms < 0 {
            return Err(CommandError::invalid(
                "policy",
                "quarantine needs at least one failure and a non-negative window",
            ));
        }
        limits::count("reports", reports.len(), limits::MAX_REPORTS_PER_BATCH)?;
        limits::count("progress", progress.len(), limits::MAX_REPORTS_PER_BATCH)?;
        let mut counted = 0;
        for report in reports {
            if self.record_attempt(index, at, policy, report) {
                counted += 1;
            }
        }
        for stretch in progress {
            counted += self.record_fanout(index, at, policy, stretch);
        }
        self.outbox.prune(at);
        Ok(Applied::AttemptsRecorded(counted))
    }

    /// Applies one stretch of a fan-out; returns the deliveries it settled (0 if stale: the
    /// event's cursor is not where the stretch starts).
    fn record_fanout(
        &mut self,
        index: u64,
        at: Timestamp,
        policy: &QuarantinePolicy,
        p: &FanoutProgress,
    ) -> u32 {
        let Some(event) = self.outbox.events.get(&p.event) else {
            return 0;
        };
        let Some(fanout) = &event.fanout else {
            return 0;
        };
        let forward = p.complete
            || match (&p.from, &p.through) {
                (Some(from), Some(through)) => through > from,
                (None, Some(_)) => true,
                (_, None) => false,
            };
        if fanout.after != p.from || !forward {
            return 0;
        }
        let groups = self.group_map();
        let failed: BTreeMap<&Id, &AttemptReport> = p
            .failed
            .iter()
            .filter(|r| r.attempt == 1 && r.event == p.event)
            .map(|r| (&r.subscriber, r))
            .collect();
        let deferred: BTreeSet<&Id> = p.deferred.iter().collect();
        let upper = p.through.as_ref();
        let mut delivered = Vec::new();
        let mut explicit: Vec<(Id, Option<AttemptReport>)> = Vec::new();
        for sub in self.subscribers_between(p.from.as_ref(), upper) {
            if !self.is_fanout_target(event, sub, &groups) {
                continue;
            }
            if let Some(r) = failed.get(&sub.id) {
                explicit.push((sub.id.clone(), Some((*r).clone())));
            } else if deferred.contains(&sub.id) {
                explicit.push((sub.id.clone(), None));
            } else {
                delivered.push(sub.id.clone());
            }
        }
        let settled = (delivered.len() + explicit.len()) as u32;
        for id in &delivered {
            if let Some(s) = self.subscribers.get_mut(id) {
                if !s.recent_failures.is_empty() {
                    s.recent_failures.clear();
                }
            }
        }
        let n = delivered.len() as u64;
        self.outbox.delivered_total += n;
        self.outbox.attempts_total += n;
        if let Some(e) = self.outbox.events.get_mut(&p.event) {
            e.recipients = e.recipients.saturating_add(settled);
            e.fanout = (!p.complete).then(|| Fanout {
                after: p.through.clone(),
            });
        }
        for (id, report) in explicit {
            self.outbox.requeue(p.event, &id, at);
            if let Some(report) = report {
                self.record_attempt(index, at, policy, &report);
            }
        }
        settled
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
            AttemptOutcome::Exhausted | AttemptOutcome::Gone | AttemptOutcome::Bounced => {
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
        self.outbox.attempt_log.push(AttemptRecord {
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
            AttemptOutcome::Bounced => {
                let reason = format!("the mail relay refused the address: {}", r.response_excerpt);
                self.bounce_subscriber(at, &r.subscriber, reason)
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
