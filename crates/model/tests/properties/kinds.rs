//! What the coverage check counts: a number per `Command` variant, and the kinds of stored
//! value a state can hold.

use std::collections::BTreeSet;

use statusmesh_model::command::*;
use statusmesh_model::outbox::{AttemptOutcome, DeliveryState};
use statusmesh_model::*;

/// The number of `Command` variants; `kind` gives each one a number below it.
pub const KINDS: usize = 32;

/// A number per `Command` variant. No wildcard: a new variant does not compile until it is
/// numbered here (and `KINDS` raised), and then the coverage check fails until the generator
/// produces it.
pub fn kind(c: &Command) -> usize {
    match c {
        Command::SetPage { .. } => 0,
        Command::CreateComponent { .. } => 1,
        Command::UpdateComponent { .. } => 2,
        Command::SetComponentStatus { .. } => 3,
        Command::DeleteComponent { .. } => 4,
        Command::CreateIncident { .. } => 5,
        Command::UpdateIncident { .. } => 6,
        Command::ResolveIncident { .. } => 7,
        Command::PublishPostmortem { .. } => 8,
        Command::ScheduleMaintenance { .. } => 9,
        Command::UpdateMaintenance { .. } => 10,
        Command::CancelMaintenance { .. } => 11,
        Command::AutoTransitionMaintenance { .. } => 12,
        Command::AddSubscriber { .. } => 13,
        Command::RemoveSubscriber { .. } => 14,
        Command::SetSubscriberState { .. } => 15,
        Command::RotateSubscriberSecret { .. } => 16,
        Command::TestSubscriber { .. } => 17,
        Command::ReplayEvent { .. } => 18,
        Command::RecordAttempts { .. } => 19,
        Command::CreateToken { .. } => 20,
        Command::RevokeToken { .. } => 21,
        Command::Restore { .. } => 22,
        Command::RestoreBegin { .. } => 23,
        Command::RestoreChunk { .. } => 24,
        Command::RecordMembershipChange { .. } => 25,
        Command::RecordAccess { .. } => 26,
        Command::ImportSubscribers { .. } => 27,
        Command::RequestSubscription { .. } => 28,
        Command::ConfirmSubscription { .. } => 29,
        Command::SetSubscriberComponents { .. } => 30,
        Command::ExpireSubscribers { .. } => 31,
    }
}

/// The kinds of stored value a state can hold, beyond "a command of kind N applied".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    AttemptDelivered,
    AttemptRetry,
    AttemptExhausted,
    AttemptGone,
    AttemptBounced,
    DeliveryPending,
    DeliveryFailed,
    SubscriberDisabled,
    SubscriberQuarantined,
    SubscriberUnconfirmed,
    SubscriberBounced,
    RetiringSecret,
    RecentFailures,
    EventOfEveryKind,
    TokenRevoked,
    AuditRecords,
    IdempotencyRecords,
    MaintenanceInProgress,
    MaintenanceVerifying,
    MaintenanceCompleted,
    MaintenanceCancelled,
    IncidentResolved,
    Postmortem,
    ComponentGroup,
    RestoreUnderWay,
    FanoutPartWay,
}

pub const ALL_REACHED: usize = 26;

pub fn reached(s: &State) -> BTreeSet<Reached> {
    use Reached::*;
    let mut r = BTreeSet::new();
    if s.outbox
        .events
        .values()
        .any(|e| e.fanout.as_ref().is_some_and(|f| f.after.is_some()))
    {
        r.insert(FanoutPartWay);
    }
    for rec in s.outbox.attempt_log.iter() {
        r.insert(match rec.report.outcome {
            AttemptOutcome::Delivered => AttemptDelivered,
            AttemptOutcome::Retry { .. } => AttemptRetry,
            AttemptOutcome::Exhausted => AttemptExhausted,
            AttemptOutcome::Gone => AttemptGone,
            AttemptOutcome::Bounced => AttemptBounced,
        });
    }
    for d in s.outbox.deliveries.values().flat_map(|m| m.values()) {
        r.insert(match d.state {
            DeliveryState::Pending => DeliveryPending,
            DeliveryState::Failed { .. } => DeliveryFailed,
        });
    }
    for sub in s.subscribers.values() {
        match sub.state {
            SubscriberState::Disabled { .. } => {
                r.insert(SubscriberDisabled);
            }
            SubscriberState::Quarantined { .. } => {
                r.insert(SubscriberQuarantined);
            }
            SubscriberState::Unconfirmed { .. } => {
                r.insert(SubscriberUnconfirmed);
            }
            SubscriberState::Bounced { .. } => {
                r.insert(SubscriberBounced);
            }
            SubscriberState::Active => {}
        }
        if sub.previous_secret.is_some() {
            r.insert(RetiringSecret);
        }
        if !sub.recent_failures.is_empty() {
            r.insert(RecentFailures);
        }
    }
    let kinds: BTreeSet<EventKind> = s.outbox.events.values().map(|e| e.kind).collect();
    if kinds.len() >= 9 {
        r.insert(EventOfEveryKind);
    }
    if s.tokens.by_name.values().any(|t| t.revoked_at.is_some()) {
        r.insert(TokenRevoked);
    }
    if !s.audit.records.is_empty() {
        r.insert(AuditRecords);
    }
    if !s.idempotency.is_empty() {
        r.insert(IdempotencyRecords);
    }
    for m in s.maintenances.values() {
        match m.status {
            MaintenanceStatus::InProgress => r.insert(MaintenanceInProgress),
            MaintenanceStatus::Verifying => r.insert(MaintenanceVerifying),
            MaintenanceStatus::Completed => r.insert(MaintenanceCompleted),
            MaintenanceStatus::Cancelled => r.insert(MaintenanceCancelled),
            MaintenanceStatus::Scheduled => false,
        };
    }
    for i in s.incidents.values() {
        if i.status == IncidentStatus::Resolved {
            r.insert(IncidentResolved);
        }
        if i.postmortem.is_some() {
            r.insert(Postmortem);
        }
    }
    if s.components.values().any(|c| c.is_group) {
        r.insert(ComponentGroup);
    }
    if s.restoring.is_some() {
        r.insert(RestoreUnderWay);
    }
    r
}
