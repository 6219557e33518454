//! The replicated outbox: notification events and the deliveries they owe to subscribers.
//!
//! Its size follows subscribers + events + failing deliveries, never subscribers × events.
//!
//! Invariants:
//! - The command that changes the page records its events in the same apply, so a committed
//!   change cannot lose its notifications. A broadcast event does not list its recipients: it
//!   goes, by one deterministic rule ([`State::is_fanout_target`]), to every active subscriber
//!   that existed before it (`Subscriber::since` < the event's index), whose filter matches,
//!   and that has no explicit delivery record for it.
//! - Its progress is a cursor over subscriber order ([`Fanout::after`]): every recipient up to
//!   the cursor has been handled. The dispatcher reports a stretch of the walk with
//!   [`FanoutProgress`], which counts only if it continues from the cursor as it stands, so a
//!   deposed leader's late report or a duplicate batch changes nothing; the recipients of the
//!   stretch that were not delivered at the first attempt (retrying, failed, or waiting behind
//!   their earlier deliveries) become explicit [`Delivery`] records, and only those.
//! - An event's `webhook_id` is fixed when it is recorded and reused for every attempt, replay
//!   and failover; receivers deduplicate on it.
//! - Explicit deliveries' attempts are reported through the log in batches ([`AttemptReport`]).
//!   A report counts only if it names the delivery's next attempt number and the delivery is
//!   still pending. A delivered delivery is removed (counted); failed ones stay until their
//!   event ages out.
//! - An incident event keeps the incident's header and how many of its (append-only) updates
//!   existed, not a copy of them; payloads rebuild the incident as it was from the state.
//! - The attempt log ([`AttemptLog`]) keeps explicit attempts, newest last, within
//!   [`ATTEMPT_LOG_BYTES`] in all; first-attempt successes of a fan-out are only counted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::entities::{Component, Incident, Maintenance, Subscriber, SubscriberState};
use crate::ids::{Id, Timestamp};
use crate::rollup::Indicator;
use crate::status::ComponentStatus;

/// Events older than this (command time) are forgotten once none of their deliveries is pending.
pub const EVENT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// At most this many events are kept (the oldest without pending deliveries go first).
pub const MAX_EVENTS: usize = 5_000;
/// Attempts shown per subscriber by `statusctl subscriber deliveries`.
pub const ATTEMPT_LOG_PER_SUBSCRIBER: usize = 50;
/// The attempt log's size bound, in encoded bytes (the oldest records go first).
pub const ATTEMPT_LOG_BYTES: usize = 4 * 1024 * 1024;
/// Response bodies are kept to this many characters in the attempt log.
pub const MAX_RESPONSE_EXCERPT_CHARS: usize = 256;
/// Error texts are kept to this many characters.
pub const MAX_ERROR_CHARS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    IncidentCreated,
    IncidentUpdated,
    IncidentResolved,
    IncidentPostmortemPublished,
    ComponentStatusChanged,
    MaintenanceScheduled,
    MaintenanceStarted,
    MaintenanceCompleted,
    MaintenanceCancelled,
    /// `statusctl subscriber test`: delivered to one subscriber only.
    Ping,
    /// For operators: a subscriber was quarantined. Not delivered to anyone.
    SubscriberQuarantined,
    /// The confirmation mail of a self-service email subscription: to that subscriber only.
    SubscriptionConfirm,
    /// An address already subscribed asked again on the page: its manage link, to it only.
    SubscriptionManage,
}

impl EventKind {
    /// The dotted name used in payloads and listings (`incident.created`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::IncidentCreated => "incident.created",
            EventKind::IncidentUpdated => "incident.updated",
            EventKind::IncidentResolved => "incident.resolved",
            EventKind::IncidentPostmortemPublished => "incident.postmortem_published",
            EventKind::ComponentStatusChanged => "component.status_changed",
            EventKind::MaintenanceScheduled => "maintenance.scheduled",
            EventKind::MaintenanceStarted => "maintenance.started",
            EventKind::MaintenanceCompleted => "maintenance.completed",
            EventKind::MaintenanceCancelled => "maintenance.cancelled",
            EventKind::Ping => "ping",
            EventKind::SubscriberQuarantined => "subscriber.quarantined",
            EventKind::SubscriptionConfirm => "subscription.confirm",
            EventKind::SubscriptionManage => "subscription.manage",
        }
    }

    /// A subscription's own notice (its confirmation or manage link): always a mail.
    pub fn is_subscription_notice(self) -> bool {
        matches!(
            self,
            EventKind::SubscriptionConfirm | EventKind::SubscriptionManage
        )
    }

    /// Whether subscribers receive this kind through the component filter.
    pub fn is_broadcast(self) -> bool {
        !matches!(
            self,
            EventKind::Ping
                | EventKind::SubscriberQuarantined
                | EventKind::SubscriptionConfirm
                | EventKind::SubscriptionManage
        )
    }
}

/// What an event is about, as it was when the event was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "subject")]
pub enum EventSubject {
    Incident {
        /// The incident's header; its updates are left out (see `updates`).
        incident: Box<Incident>,
        /// How many of the incident's updates existed when the event was recorded: incident
        /// updates are append-only, so the incident as it was is its first `updates` updates.
        #[serde(default)]
        updates: u32,
    },
    Maintenance {
        maintenance: Box<Maintenance>,
    },
    Component {
        /// Without its status log.
        component: Box<Component>,
        old_status: ComponentStatus,
        new_status: ComponentStatus,
    },
    Subscriber {
        subscriber_id: Id,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// The `webhook-id` of every attempt to deliver this event.
    pub webhook_id: String,
    pub kind: EventKind,
    pub at: Timestamp,
    /// The log index of the command that recorded it.
    pub index: u64,
    /// The page roll-up right after the change.
    pub indicator: Indicator,
    /// The components the event touches (drives component filters).
    pub component_ids: BTreeSet<Id>,
    pub subject: EventSubject,
    /// How many subscribers it has reached so far (fan-out stretches reported, explicit
    /// deliveries queued).
    pub recipients: u32,
    /// The fan-out still to walk; absent once it has reached every subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanout: Option<Fanout>,
}

/// Where an event's fan-out stands: every recipient up to and including `after` (in subscriber
/// order) has been handled; `None` before the first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fanout {
    pub after: Option<Id>,
}

/// A stretch of one event's fan-out, reported by the dispatcher through the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanoutProgress {
    pub event: u64,
    /// The cursor this stretch continues from: it counts only if the event's cursor is this.
    pub from: Option<Id>,
    /// The stretch ends with this subscriber (`None` with `complete` for an empty walk).
    pub through: Option<Id>,
    /// The walk reached the last subscriber: the fan-out is done.
    pub complete: bool,
    /// First attempts in the stretch that did not succeed (attempt 1 each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<AttemptReport>,
    /// Recipients in the stretch not sent to yet (their endpoint was busy with earlier
    /// deliveries): they become pending explicit deliveries, due at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<Id>,
}

impl FanoutProgress {
    /// The bytes this stretch adds to a `RecordAttempts` entry.
    pub fn encoded_len(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len() + 1)
    }
}

impl Event {
    /// The incident an incident event is about, as it was when the event was recorded: its
    /// header with the first `updates` of the incident's (append-only) updates. `None` for
    /// other subjects.
    pub fn incident_as_recorded(&self, state: &crate::State) -> Option<Incident> {
        let EventSubject::Incident { incident, updates } = &self.subject else {
            return None;
        };
        let mut out = (**incident).clone();
        if out.updates.is_empty() {
            if let Some(now) = state.incidents.get(&incident.id) {
                out.updates = now
                    .updates
                    .iter()
                    .take(*updates as usize)
                    .cloned()
                    .collect();
            }
        }
        Some(out)
    }

    /// A one-line description for listings and chat messages.
    pub fn summary(&self) -> String {
        match &self.subject {
            EventSubject::Incident { incident, .. } => {
                format!("{} ({})", incident.name, incident.status.as_str())
            }
            EventSubject::Maintenance { maintenance } => {
                format!("{} ({})", maintenance.name, maintenance.status.as_str())
            }
            EventSubject::Component {
                component,
                old_status,
                new_status,
            } => format!(
                "{}: {} -> {}",
                component.name,
                old_status.as_str(),
                new_status.as_str()
            ),
            EventSubject::Subscriber {
                subscriber_id,
                reason,
            } => format!("subscriber {subscriber_id}: {reason}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum DeliveryState {
    Pending,
    Failed { at: Timestamp, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Attempts made so far; the next report must carry `attempts + 1`.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub state: DeliveryState,
}

impl Delivery {
    fn pending(at: Timestamp) -> Self {
        Delivery {
            attempts: 0,
            next_attempt_at: at,
            state: DeliveryState::Pending,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.state == DeliveryState::Pending
    }
}

/// What the dispatcher concluded from one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AttemptOutcome {
    /// 2xx.
    Delivered,
    /// Failed; the next attempt is due at `next_at` (schedule, jitter and `Retry-After` applied).
    Retry { next_at: Timestamp },
    /// Failed and the retry schedule is used up.
    Exhausted,
    /// `410 Gone`: the endpoint asked to be removed.
    Gone,
    /// The mail relay refused the recipient permanently (5xx): the subscriber is bounced.
    Bounced,
}

impl AttemptOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry { .. } => "retry",
            AttemptOutcome::Exhausted => "exhausted",
            AttemptOutcome::Gone => "gone",
            AttemptOutcome::Bounced => "bounced",
        }
    }
}

/// One attempt's result, sent by the dispatcher through the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptReport {
    pub event: u64,
    pub subscriber: Id,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: Timestamp,
    pub duration_ms: u32,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub response_excerpt: String,
    pub outcome: AttemptOutcome,
}

impl AttemptReport {
    /// The report as the attempt log keeps it: error and response excerpt cut to
    /// [`MAX_ERROR_CHARS`] and [`MAX_RESPONSE_EXCERPT_CHARS`]. The dispatcher cuts before it
    /// proposes (so it knows a batch's size), and apply cuts again (reports of older builds).
    pub fn bounded(mut self) -> Self {
        truncate(&mut self.response_excerpt, MAX_RESPONSE_EXCERPT_CHARS);
        if let Some(e) = self.error.as_mut() {
            truncate(e, MAX_ERROR_CHARS);
        }
        self
    }

    /// The bytes this report adds to a `RecordAttempts` entry (its JSON, and a separator).
    pub fn encoded_len(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len() + 1)
    }
}

/// Cuts `s` to at most `max` characters.
fn truncate(s: &mut String, max: usize) {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
}

/// When repeated failures quarantine a subscriber; chosen by the leader's configuration and
/// carried in the command so every replica decides the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinePolicy {
    /// This many failed attempts in a row...
    pub failures: u32,
    /// ...all within this window.
    pub window_ms: i64,
}

impl Default for QuarantinePolicy {
    fn default() -> Self {
        QuarantinePolicy {
            failures: 10,
            window_ms: 60 * 60 * 1000,
        }
    }
}

/// One line of a subscriber's attempt log: the report (which names the event by its sequence
/// number, `report.event`) and what the event was.
///
/// Format version 1 also had a field `event` here, beside the flattened report's own, so each
/// record was written with the key twice; [`crate::format`] reads that shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub webhook_id: String,
    pub kind: EventKind,
    #[serde(flatten)]
    pub report: AttemptReport,
}

/// Counts for operators and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxStats {
    pub events: u64,
    pub pending: u64,
    pub failed: u64,
    pub delivered_total: u64,
    pub attempts_total: u64,
    pub quarantined_subscribers: u64,
    /// Events whose fan-out has not reached every subscriber yet.
    #[serde(default)]
    pub fanning_out: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    pub next_seq: u64,
    pub events: BTreeMap<u64, Event>,
    /// Explicit deliveries (retrying, failed, deferred, replayed, pings): event seq ->
    /// subscriber -> delivery. Iterating gives commit order.
    pub deliveries: BTreeMap<u64, BTreeMap<Id, Delivery>>,
    pub attempt_log: AttemptLog,
    pub delivered_total: u64,
    pub attempts_total: u64,
}

/// The subscribers an event goes to, by the component filter.
pub fn wants(sub: &Subscriber, event_components: &BTreeSet<Id>, groups: &BTreeMap<Id, Id>) -> bool {
    sub.component_ids.is_empty()
        || event_components.iter().any(|c| {
            sub.component_ids.contains(c)
                || groups.get(c).is_some_and(|g| sub.component_ids.contains(g))
        })
}

impl Outbox {
    /// Whether `event` is a component change recorded by an incident or maintenance command
    /// (the events of one command are consecutive and share its log index; the incident or
    /// maintenance event comes first). Once that event has aged out the answer turns false —
    /// events age out oldest first, so only after days, and only for a fan-out still walking
    /// then; the worst case is a redundant component mail counted without being sent.
    pub fn accompanies_update(&self, event: &Event) -> bool {
        event.kind == EventKind::ComponentStatusChanged
            && self
                .events
                .range(..event.seq)
                .rev()
                .take_while(|(_, e)| e.index == event.index)
                .any(|(_, e)| {
                    matches!(
                        e.subject,
                        EventSubject::Incident { .. } | EventSubject::Maintenance { .. }
                    )
                })
    }

    /// Parses `msg_..._<seq>` (or a bare number) to the event's sequence number.
    pub fn parse_event_ref(&self, s: &str) -> Option<u64> {
        let tail = s.rsplit('_').next()?;
        let seq: u64 = tail.parse().ok()?;
        self.events
            .get(&seq)
            .filter(|e| e.webhook_id == s || s == tail)?;
        Some(seq)
    }

    /// Pending deliveries per subscriber, counted in one pass.
    pub fn pending_per_subscriber(&self) -> BTreeMap<&Id, u32> {
        let mut out = BTreeMap::new();
        for (_, sub, _) in self.pending() {
            *out.entry(sub).or_insert(0) += 1;
        }
        out
    }

    pub fn stats(&self, subscribers: &crate::state::Subscribers) -> OutboxStats {
        let (mut pending, mut failed) = (0, 0);
        for d in self.deliveries.values().flat_map(|m| m.values()) {
            if d.is_pending() {
                pending += 1;
            } else {
                failed += 1;
            }
        }
        OutboxStats {
            events: self.events.len() as u64,
            pending,
            failed,
            delivered_total: self.delivered_total,
            attempts_total: self.attempts_total,
            quarantined_subscribers: subscribers
                .values()
                .filter(|s| matches!(s.state, SubscriberState::Quarantined { .. }))
                .count() as u64,
            fanning_out: self.events.values().filter(|e| e.fanout.is_some()).count() as u64,
        }
    }

    /// Pending deliveries in commit order.
    pub fn pending(&self) -> impl Iterator<Item = (u64, &Id, &Delivery)> + '_ {
        self.deliveries.iter().flat_map(|(seq, m)| {
            m.iter()
                .filter(|(_, d)| d.is_pending())
                .map(move |(sub, d)| (*seq, sub, d))
        })
    }

    /// Records an event and queues explicit deliveries to `recipients` (a broadcast event
    /// carries its `fanout` instead). Returns its sequence number.
    /// The event's `seq` and `webhook_id` (`id_prefix` + seq) are assigned here.
    pub(crate) fn record(&mut self, mut event: Event, id_prefix: &str, recipients: Vec<Id>) -> u64 {
        let seq = self.next_seq.max(1);
        self.next_seq = seq + 1;
        event.seq = seq;
        event.webhook_id = format!("{id_prefix}{seq}");
        event.recipients = recipients.len() as u32;
        if !recipients.is_empty() {
            let at = event.at;
            self.deliveries.insert(
                seq,
                recipients
                    .into_iter()
                    .map(|s| (s, Delivery::pending(at)))
                    .collect(),
            );
        }
        self.events.insert(seq, event);
        seq
    }

    /// Queues (again) the delivery of `seq` to `sub`, from attempt one, due at `at`.
    pub(crate) fn requeue(&mut self, seq: u64, sub: &Id, at: Timestamp) {
        self.deliveries
            .entry(seq)
            .or_default()
            .insert(sub.clone(), Delivery::pending(at));
    }

    /// Marks every pending delivery of `sub` failed.
    pub(crate) fn fail_all_of(&mut self, sub: &Id, at: Timestamp, reason: &str) {
        for m in self.deliveries.values_mut() {
            if let Some(d) = m.get_mut(sub) {
                if d.is_pending() {
                    d.state = DeliveryState::Failed {
                        at,
                        reason: reason.to_owned(),
                    };
                }
            }
        }
    }

    pub(crate) fn forget_subscriber(&mut self, sub: &Id) {
        for m in self.deliveries.values_mut() {
            m.remove(sub);
        }
        self.deliveries.retain(|_, m| !m.is_empty());
        self.attempt_log.forget(sub);
    }

    /// The explicit delivery of event `seq` to `sub`, if there is one.
    pub fn delivery(&self, seq: u64, sub: &Id) -> Option<&Delivery> {
        self.deliveries.get(&seq).and_then(|m| m.get(sub))
    }

    /// True while event `seq` still owes something: its fan-out, or a pending delivery.
    pub fn is_busy(&self, seq: u64) -> bool {
        self.events.get(&seq).is_some_and(|e| e.fanout.is_some())
            || self
                .deliveries
                .get(&seq)
                .is_some_and(|m| m.values().any(Delivery::is_pending))
    }

    /// Forgets the oldest events past the retention or the count limit, stopping at the first
    /// one that still has a pending delivery.
    pub(crate) fn prune(&mut self, now: Timestamp) {
        let cutoff = now.0 - EVENT_RETENTION_MS;
        while let Some((&seq, e)) = self.events.first_key_value() {
            let expired = e.at.0 < cutoff || self.events.len() > MAX_EVENTS;
            if !expired || self.is_busy(seq) {
                break;
            }
            self.events.remove(&seq);
            self.deliveries.remove(&seq);
        }
    }
}

/// The attempts made on explicit deliveries, newest last, kept within [`ATTEMPT_LOG_BYTES`]
/// (each record counted at its encoded size; the oldest go first, whoever they belong to).
/// Encoded as the list of records; the byte count is recomputed when read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "VecDeque<AttemptRecord>", into = "VecDeque<AttemptRecord>")]
pub struct AttemptLog {
    records: VecDeque<AttemptRecord>,
    bytes: usize,
}

impl From<VecDeque<AttemptRecord>> for AttemptLog {
    fn from(records: VecDeque<AttemptRecord>) -> Self {
        let bytes = records.iter().map(AttemptRecord::encoded_len).sum();
        AttemptLog { records, bytes }
    }
}

impl From<AttemptLog> for VecDeque<AttemptRecord> {
    fn from(log: AttemptLog) -> Self {
        log.records
    }
}

impl AttemptRecord {
    fn encoded_len(&self) -> usize {
        serde_json::to_vec(self).map_or(0, |v| v.len() + 1)
    }
}

impl AttemptLog {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The encoded size of the records kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every record, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &AttemptRecord> + '_ {
        self.records.iter()
    }

    /// `sub`'s latest records, at most [`ATTEMPT_LOG_PER_SUBSCRIBER`], oldest first.
    pub fn of(&self, sub: &Id) -> Vec<&AttemptRecord> {
        let mut out: Vec<&AttemptRecord> = self
            .records
            .iter()
            .rev()
            .filter(|r| &r.report.subscriber == sub)
            .take(ATTEMPT_LOG_PER_SUBSCRIBER)
            .collect();
        out.reverse();
        out
    }

    pub(crate) fn push(&mut self, record: AttemptRecord) {
        self.bytes += record.encoded_len();
        self.records.push_back(record);
        while self.bytes > ATTEMPT_LOG_BYTES {
            let Some(old) = self.records.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(old.encoded_len());
        }
    }

    fn forget(&mut self, sub: &Id) {
        self.records.retain(|r| &r.report.subscriber != sub);
        self.bytes = self.records.iter().map(AttemptRecord::encoded_len).sum();
    }
}
