//! Properties of the state machine over random histories that use every `Command` variant:
//!
//! - after every step the state encodes (snapshot format), decodes to an equal value with an
//!   equal digest, and so does a backup of it;
//! - a replica rebuilt from a snapshot part-way through (and then applying the rest of the
//!   log) holds the same state as one that never snapshotted, at every later step;
//! - every refused command leaves the state exactly as it was;
//! - over the whole run, every command variant was applied successfully at least once and the
//!   states reached cover every kind of stored value ([`Reached`]) — a new `Command` variant
//!   fails to compile in [`kind`] until it is given a number, and then fails the coverage check
//!   until the generator produces it.
//!
//! Commands that only make sense against what the state holds (an attempt report for a pending
//! delivery, with its next attempt number; a replay of a kept event; a due maintenance
//! transition; the next chunk of a restore) are generated as intents and made concrete against
//! the state when they are applied.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use statusmesh_model::access::Role;
use statusmesh_model::backup::Backup;
use statusmesh_model::command::*;
use statusmesh_model::format;
use statusmesh_model::outbox::{AttemptOutcome, AttemptReport, DeliveryState, QuarantinePolicy};
use statusmesh_model::*;

use common::scenario;

const T0: i64 = scenario::T0;

/// The number of `Command` variants; `kind` gives each one a number below it.
const KINDS: usize = 26;

/// A number per `Command` variant. No wildcard: a new variant does not compile until it is
/// numbered here (and `KINDS` raised), and then the coverage check fails until the generator
/// produces it.
fn kind(c: &Command) -> usize {
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
    }
}

/// The kinds of stored value a state can hold, beyond "a command of kind N applied".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reached {
    AttemptDelivered,
    AttemptRetry,
    AttemptExhausted,
    AttemptGone,
    DeliveryPending,
    DeliveryFailed,
    SubscriberDisabled,
    SubscriberQuarantined,
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
}

const ALL_REACHED: usize = 22;

fn reached(s: &State) -> BTreeSet<Reached> {
    use Reached::*;
    let mut r = BTreeSet::new();
    for rec in s.outbox.attempt_log.values().flatten() {
        r.insert(match rec.report.outcome {
            AttemptOutcome::Delivered => AttemptDelivered,
            AttemptOutcome::Retry { .. } => AttemptRetry,
            AttemptOutcome::Exhausted => AttemptExhausted,
            AttemptOutcome::Gone => AttemptGone,
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

/// One step of a history: a command, or an intent made concrete against the state.
#[derive(Debug, Clone)]
enum Step {
    Do(Command),
    /// Reports for up to three pending deliveries (picked by these numbers), with these
    /// outcomes; `stale` sends a wrong attempt number.
    Attempts(Vec<(usize, u8, bool)>),
    /// Replays a kept event (picked by the number), to one subscriber or to all.
    Replay(usize, Option<Id>),
    /// The first maintenance transition that is due.
    DueTransition,
    /// Moves an unfinished maintenance (picked by the number) one status forward by hand.
    AdvanceMaintenance(usize),
    /// Publishes a postmortem on a resolved incident (picked by the number).
    Postmortem(usize),
    /// Posts an update (with this status) to an unresolved incident (picked by the number).
    UpdateOpenIncident(usize, IncidentStatus),
    /// Resolves an unresolved incident (picked by the number).
    ResolveOpenIncident(usize, bool),
    /// Sets the status of an existing component (picked by the number), or deletes it.
    TouchComponent(usize, ComponentStatus, bool),
    /// Cancels an unfinished maintenance (picked by the number).
    CancelOpenMaintenance(usize),
    /// Restores the scenario's state: in one entry, or begun in chunks of this size.
    RestoreWhole,
    RestoreBegin(usize),
    /// The next chunk of the restore under way; `skew` sends it at a wrong offset.
    RestoreNext(bool),
}

fn an_id() -> impl Strategy<Value = Id> {
    (0u8..5).prop_map(|n| Id::parse("id", &format!("e{n}")).unwrap())
}

/// Update ids are never reused (by any entity), so they come from a larger pool.
fn an_update_id() -> impl Strategy<Value = Id> {
    (0u8..60).prop_map(|n| Id::parse("id", &format!("u{n}")).unwrap())
}

fn a_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z ]{1,12}",
        1 => Just(String::new()),
        1 => Just("x".repeat(300)),
        1 => Just("bad\u{7}name".to_owned()),
    ]
}

fn a_status() -> impl Strategy<Value = ComponentStatus> {
    prop_oneof![
        "operational",
        "degraded_performance",
        "partial_outage",
        "major_outage",
        "under_maintenance"
    ]
    .prop_map(|s| ComponentStatus::parse("status", &s).unwrap())
}

fn an_incident_status() -> impl Strategy<Value = IncidentStatus> {
    prop_oneof!["investigating", "identified", "monitoring", "resolved"]
        .prop_map(|s| IncidentStatus::parse("status", &s).unwrap())
}

fn a_maintenance_status() -> impl Strategy<Value = MaintenanceStatus> {
    prop_oneof![
        Just(MaintenanceStatus::InProgress),
        Just(MaintenanceStatus::Verifying),
        Just(MaintenanceStatus::Completed),
        Just(MaintenanceStatus::Cancelled),
        Just(MaintenanceStatus::Scheduled),
    ]
}

fn an_impact() -> impl Strategy<Value = Impact> {
    prop_oneof!["none", "minor", "major", "critical"]
        .prop_map(|s| Impact::parse("impact", &s).unwrap())
}

fn changes() -> impl Strategy<Value = Vec<ComponentChange>> {
    prop::collection::vec(
        (an_id(), a_status()).prop_map(|(component_id, status)| ComponentChange {
            component_id,
            status,
        }),
        0..3,
    )
}

fn a_format() -> impl Strategy<Value = PayloadFormat> {
    prop_oneof![
        Just(PayloadFormat::Statuspage),
        Just(PayloadFormat::Slack),
        Just(PayloadFormat::Discord)
    ]
}

fn page_commands() -> impl Strategy<Value = Command> {
    prop_oneof![
        (a_name(), any::<bool>()).prop_map(|(name, emit)| Command::SetPage {
            page_id: Id::parse("id", "page").unwrap(),
            patch: PagePatch {
                name: Some(name),
                url: None,
                time_zone: Some("Europe/Paris".into()),
                emit_maintenance_status: Some(emit),
            },
        }),
        (
            an_id(),
            a_name(),
            a_status(),
            prop::option::of(an_id()),
            any::<bool>()
        )
            .prop_map(
                |(id, name, status, group_id, is_group)| Command::CreateComponent {
                    id,
                    spec: NewComponent {
                        name,
                        description: Some("d".into()),
                        position: None,
                        status,
                        group_id,
                        is_group,
                        showcase: true,
                        only_show_if_degraded: false,
                    },
                }
            ),
        (an_id(), prop::option::of(a_name()), any::<bool>()).prop_map(|(id, name, showcase)| {
            Command::UpdateComponent {
                id,
                patch: ComponentPatch {
                    name,
                    showcase: Some(showcase),
                    ..ComponentPatch::default()
                },
            }
        }),
        (an_id(), a_status()).prop_map(|(id, status)| Command::SetComponentStatus { id, status }),
        an_id().prop_map(|id| Command::DeleteComponent { id }),
        (
            an_id(),
            an_update_id(),
            a_name(),
            an_incident_status(),
            an_impact(),
            changes()
        )
            .prop_map(|(id, update_id, name, status, impact, component_changes)| {
                Command::CreateIncident {
                    id,
                    update_id,
                    spec: NewIncident {
                        name,
                        status,
                        impact,
                        body: "investigating".into(),
                        started_at: None,
                        component_changes,
                    },
                }
            }),
        (
            an_id(),
            an_update_id(),
            prop::option::of(an_incident_status()),
            prop::option::of(an_impact()),
            changes()
        )
            .prop_map(|(id, update_id, status, impact, component_changes)| {
                Command::UpdateIncident {
                    id,
                    update_id,
                    spec: IncidentUpdateSpec {
                        status,
                        impact,
                        name: None,
                        body: "update".into(),
                        component_changes,
                    },
                }
            }),
        (an_id(), an_update_id(), any::<bool>()).prop_map(|(id, update_id, restore)| {
            Command::ResolveIncident {
                id,
                update_id,
                body: "fixed".into(),
                restore_components: restore,
            }
        }),
        an_id().prop_map(|id| Command::PublishPostmortem {
            id,
            body: "what happened".into()
        }),
    ]
}

fn maintenance_commands() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            an_id(),
            an_update_id(),
            0i64..4,
            1i64..4,
            any::<bool>(),
            prop::collection::vec(an_id(), 0..2)
        )
            .prop_map(|(id, update_id, start, len, auto, components)| {
                // Step times are T0 + i s; the window opens a few steps from T0 + 10 s.
                let from = T0 + 10_000 + start * 3_000;
                Command::ScheduleMaintenance {
                    id,
                    update_id,
                    spec: NewMaintenance {
                        name: "maintenance".into(),
                        body: "we will upgrade".into(),
                        scheduled_for: Timestamp(from),
                        scheduled_until: Timestamp(from + len * 3_000),
                        components,
                        auto_transitions: auto,
                    },
                }
            }),
        (
            an_id(),
            an_update_id(),
            prop::option::of(a_maintenance_status())
        )
            .prop_map(|(id, update_id, status)| Command::UpdateMaintenance {
                id,
                update_id,
                patch: MaintenancePatch {
                    status,
                    body: Some("progress".into()),
                    ..MaintenancePatch::default()
                },
            }),
        (an_id(), an_update_id()).prop_map(|(id, update_id)| Command::CancelMaintenance {
            id,
            update_id,
            body: Some("not needed".into()),
        }),
        (an_id(), an_update_id(), a_maintenance_status()).prop_map(|(id, update_id, to)| {
            Command::AutoTransitionMaintenance { id, update_id, to }
        }),
    ]
}

fn subscriber_commands() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => (an_id(), prop::collection::vec(an_id(), 0..2), a_format()).prop_map(
            |(id, component_ids, format)| Command::AddSubscriber {
                id,
                spec: NewSubscriber {
                    url: "https://hooks.example.com/x".into(),
                    component_ids,
                    description: None,
                    secret: scenario::SECRET_A.into(),
                    format,
                    owner: Some("sre".into()),
                },
            }
        ),
        1 => an_id().prop_map(|id| Command::RemoveSubscriber { id }),
        2 => (an_id(), any::<bool>(), any::<bool>()).prop_map(|(id, enabled, replay)| {
            Command::SetSubscriberState {
                id,
                enabled,
                replay_since: (enabled && replay).then_some(Timestamp(T0)),
            }
        }),
        1 => (an_id(), 0i64..3).prop_map(|(id, h)| Command::RotateSubscriberSecret {
            id,
            secret: scenario::SECRET_B.into(),
            overlap_ms: h * 3_600_000,
        }),
        1 => an_id().prop_map(|id| Command::TestSubscriber { id }),
    ]
}

fn access_commands() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            (0u8..3),
            prop_oneof![
                Just(Role::ReadOnly),
                Just(Role::Operator),
                Just(Role::Admin)
            ],
            "[0-9a-f]{64}|[xyz]{3}"
        )
            .prop_map(|(n, role, hash)| Command::CreateToken {
                name: format!("t{n}"),
                role,
                hash
            }),
        (0u8..3).prop_map(|n| Command::RevokeToken {
            name: format!("t{n}")
        }),
        (
            prop_oneof![
                Just(MembershipChange::AddNode),
                Just(MembershipChange::PromoteNode),
                Just(MembershipChange::RemoveNode)
            ],
            1u64..6,
            1u64..1000
        )
            .prop_map(|(change, node, membership_index)| {
                Command::RecordMembershipChange {
                    change,
                    node,
                    membership_index,
                }
            }),
    ]
}

fn a_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => page_commands().prop_map(Step::Do),
        3 => maintenance_commands().prop_map(Step::Do),
        4 => subscriber_commands().prop_map(Step::Do),
        2 => access_commands().prop_map(Step::Do),
        5 => prop::collection::vec((any::<usize>(), 0u8..4, prop::bool::weighted(0.1)), 1..4)
            .prop_map(Step::Attempts),
        1 => (any::<usize>(), prop::option::of(an_id())).prop_map(|(n, s)| Step::Replay(n, s)),
        3 => Just(Step::DueTransition),
        2 => any::<usize>().prop_map(Step::AdvanceMaintenance),
        1 => any::<usize>().prop_map(Step::Postmortem),
        2 => (any::<usize>(), an_incident_status()).prop_map(|(n, s)| Step::UpdateOpenIncident(n, s)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(n, r)| Step::ResolveOpenIncident(n, r)),
        2 => (any::<usize>(), a_status(), prop::bool::weighted(0.2))
            .prop_map(|(n, s, d)| Step::TouchComponent(n, s, d)),
        1 => any::<usize>().prop_map(Step::CancelOpenMaintenance),
        1 => prop::bool::weighted(0.2).prop_map(Step::RestoreNext),
    ]
}

/// A history: sometimes it opens with a restore of the scenario's state (the only time a
/// restore can succeed is into an empty state), then random steps.
fn a_history() -> impl Strategy<Value = (Vec<Step>, usize, Vec<usize>)> {
    let opening = prop_oneof![
        3 => Just(vec![]),
        1 => Just(vec![Step::RestoreWhole]),
        1 => (500usize..20_000).prop_map(|n| {
            let mut steps = vec![Step::RestoreBegin(n)];
            steps.extend(std::iter::repeat_n(Step::RestoreNext(false), 200));
            steps
        }),
    ];
    (
        opening,
        prop::collection::vec(a_step(), 1..80),
        0usize..120,
        prop::collection::vec(0usize..120, 0..3),
    )
        .prop_map(|(mut open, rest, snapshot_at, backups_at)| {
            open.extend(rest);
            (open, snapshot_at, backups_at)
        })
}

/// What a donor backup is, for the restore steps.
struct Donor {
    backup: Backup,
    encoded: String,
    /// The chunk size of the chunked restore under way.
    chunk: usize,
}

fn report(
    state: &State,
    event: u64,
    sub: &Id,
    attempt: u32,
    outcome: u8,
    at: i64,
) -> AttemptReport {
    let outcome = match outcome {
        0 => AttemptOutcome::Delivered,
        1 => AttemptOutcome::Retry {
            next_at: Timestamp(at + 2_000),
        },
        2 => AttemptOutcome::Exhausted,
        _ => AttemptOutcome::Gone,
    };
    let _ = state;
    AttemptReport {
        event,
        subscriber: sub.clone(),
        attempt,
        at: Timestamp(at),
        duration_ms: 7,
        http_status: Some(if outcome == AttemptOutcome::Delivered {
            200
        } else {
            500
        }),
        error: (outcome != AttemptOutcome::Delivered).then(|| "x".repeat(700)),
        response_excerpt: "y".repeat(300),
        outcome,
    }
}

/// Turns a step into the command to propose, given the state it applies to.
fn concrete(step: &Step, state: &State, at: i64, donor: &mut Donor) -> Option<Command> {
    Some(match step {
        Step::Do(c) => c.clone(),
        Step::Attempts(picks) => {
            let pending: Vec<(u64, Id, u32)> = state
                .outbox
                .pending()
                .map(|(seq, sub, d)| (seq, sub.clone(), d.attempts))
                .collect();
            if pending.is_empty() {
                return None;
            }
            let mut seen = BTreeSet::new();
            let reports = picks
                .iter()
                .filter_map(|&(n, outcome, stale)| {
                    let (seq, sub, attempts) = pending[n % pending.len()].clone();
                    seen.insert((seq, sub.clone())).then(|| {
                        let attempt = if stale { attempts } else { attempts + 1 };
                        report(state, seq, &sub, attempt, outcome, at)
                    })
                })
                .collect();
            Command::RecordAttempts {
                policy: QuarantinePolicy {
                    failures: 3,
                    window_ms: 3_600_000,
                },
                reports,
            }
        }
        Step::Replay(n, sub) => {
            let events: Vec<&Event> = state.outbox.events.values().collect();
            if events.is_empty() {
                return None;
            }
            let e = events[n % events.len()];
            Command::ReplayEvent {
                event: if n.is_multiple_of(2) {
                    e.webhook_id.clone()
                } else {
                    e.seq.to_string()
                },
                subscriber: sub.clone(),
            }
        }
        Step::DueTransition => {
            let (id, to) = state
                .due_maintenance_transitions(Timestamp(at))
                .into_iter()
                .next()?;
            Command::AutoTransitionMaintenance {
                id,
                update_id: Id::parse("id", &format!("auto{at}")).unwrap(),
                to,
            }
        }
        Step::AdvanceMaintenance(n) => {
            let open: Vec<&Maintenance> = state
                .maintenances
                .values()
                .filter(|m| !m.status.is_finished())
                .collect();
            if open.is_empty() {
                return None;
            }
            let m = open[n % open.len()];
            let to = match m.status {
                MaintenanceStatus::Scheduled => MaintenanceStatus::InProgress,
                MaintenanceStatus::InProgress => MaintenanceStatus::Verifying,
                _ => MaintenanceStatus::Completed,
            };
            Command::UpdateMaintenance {
                id: m.id.clone(),
                update_id: Id::parse("id", &format!("adv{at}")).unwrap(),
                patch: MaintenancePatch {
                    status: Some(to),
                    body: Some(format!("now {to}")),
                    ..MaintenancePatch::default()
                },
            }
        }
        Step::Postmortem(n) => {
            let resolved: Vec<&Id> = state
                .incidents
                .values()
                .filter(|i| i.status == IncidentStatus::Resolved)
                .map(|i| &i.id)
                .collect();
            if resolved.is_empty() {
                return None;
            }
            Command::PublishPostmortem {
                id: resolved[n % resolved.len()].clone(),
                body: format!("what happened, take {n}"),
            }
        }
        Step::UpdateOpenIncident(n, status) => {
            let open: Vec<&Id> = state
                .incidents
                .values()
                .filter(|i| i.status != IncidentStatus::Resolved)
                .map(|i| &i.id)
                .collect();
            if open.is_empty() {
                return None;
            }
            Command::UpdateIncident {
                id: open[n % open.len()].clone(),
                update_id: Id::parse("id", &format!("upd{at}")).unwrap(),
                spec: IncidentUpdateSpec {
                    status: Some(*status),
                    impact: None,
                    name: None,
                    body: format!("update {n}"),
                    component_changes: vec![],
                },
            }
        }
        Step::ResolveOpenIncident(n, restore) => {
            let open: Vec<&Id> = state
                .incidents
                .values()
                .filter(|i| i.status != IncidentStatus::Resolved)
                .map(|i| &i.id)
                .collect();
            if open.is_empty() {
                return None;
            }
            Command::ResolveIncident {
                id: open[n % open.len()].clone(),
                update_id: Id::parse("id", &format!("res{at}")).unwrap(),
                body: "resolved".into(),
                restore_components: *restore,
            }
        }
        Step::TouchComponent(n, status, delete) => {
            let ids: Vec<&Id> = state
                .components
                .values()
                .filter(|c| !c.is_group)
                .map(|c| &c.id)
                .collect();
            if ids.is_empty() {
                return None;
            }
            let id = ids[n % ids.len()].clone();
            if *delete {
                Command::DeleteComponent { id }
            } else {
                Command::SetComponentStatus {
                    id,
                    status: *status,
                }
            }
        }
        Step::CancelOpenMaintenance(n) => {
            let open: Vec<&Id> = state
                .maintenances
                .values()
                .filter(|m| !m.status.is_finished())
                .map(|m| &m.id)
                .collect();
            if open.is_empty() {
                return None;
            }
            Command::CancelMaintenance {
                id: open[n % open.len()].clone(),
                update_id: Id::parse("id", &format!("cxl{at}")).unwrap(),
                body: Some("not needed".into()),
            }
        }
        Step::RestoreWhole => Command::Restore {
            backup: donor.encoded.clone(),
        },
        Step::RestoreBegin(chunk) => {
            donor.chunk = *chunk;
            donor.backup.begin_command()
        }
        Step::RestoreNext(skew) => {
            let received = state.restoring.as_ref()?.received.len();
            let text = &donor.backup.state;
            let start = if *skew { received / 2 } else { received };
            let mut end = (start + donor.chunk).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            if start >= end {
                return None;
            }
            Command::RestoreChunk {
                digest: donor.backup.digest.clone(),
                offset: start as u64,
                data: text[start..end].to_owned(),
            }
        }
    })
}

fn proposal(i: usize, command: Command) -> Proposal {
    Proposal {
        // Some keys repeat, exercising the idempotency path.
        idempotency_key: format!("k{}", i % 50),
        fingerprint: format!("f{i}"),
        at: Timestamp(T0 + i as i64 * 1000),
        actor: "prop".into(),
        via_node: 1,
        request_id: if i.is_multiple_of(3) {
            format!("req-{i}")
        } else {
            String::new()
        },
        command,
    }
}

/// Encodes as a snapshot and decodes again; both must be exact.
fn through_snapshot(state: &State) -> Result<State, TestCaseError> {
    let bytes = format::encode_state(state).unwrap();
    let back = format::decode_state(&bytes)
        .map_err(|e| TestCaseError::fail(format!("a snapshot does not decode: {e}")))?;
    prop_assert_eq!(&back, state);
    prop_assert_eq!(back.digest(), state.digest());
    Ok(back)
}

#[derive(Default)]
struct Coverage {
    /// How many commands of each kind applied successfully.
    applied: std::collections::BTreeMap<usize, usize>,
    reached: BTreeSet<Reached>,
    steps: usize,
    refused: usize,
}

fn run_history(
    steps: &[Step],
    snapshot_at: usize,
    backups_at: &[usize],
    coverage: &Mutex<Coverage>,
) -> Result<(), TestCaseError> {
    let donor_state = scenario::rich().state;
    let backup = Backup::of(&donor_state, 1, 41, Timestamp(T0)).unwrap();
    let mut donor = Donor {
        encoded: String::from_utf8(codec::encode(&backup).unwrap()).unwrap(),
        backup,
        chunk: 1,
    };
    // `a` never snapshots; `b` is rebuilt from a snapshot of itself at `snapshot_at`.
    let mut a = State::default();
    let mut b = State::default();
    let mut applied = Vec::new();
    let mut reached_here = BTreeSet::new();
    let mut refused = 0;
    for (i, step) in steps.iter().enumerate() {
        if i == snapshot_at {
            b = through_snapshot(&b)?;
        }
        let Some(command) = concrete(step, &a, T0 + i as i64 * 1000, &mut donor) else {
            continue;
        };
        let p = proposal(i, command);
        let before = a.digest();
        let out_a = a.apply(i as u64 + 1, &p);
        let out_b = b.apply(i as u64 + 1, &p);
        prop_assert_eq!(&out_a, &out_b);
        match &out_a.result {
            Ok(_) if !out_a.replayed => {
                applied.push(kind(&p.command));
            }
            Ok(_) => {}
            Err(e) => {
                refused += 1;
                prop_assert_eq!(
                    &before,
                    &a.digest(),
                    "a refused command changed the state: {}",
                    e
                );
            }
        }
        // Every state reached survives a snapshot, and the snapshotted replica agrees.
        through_snapshot(&a)?;
        prop_assert_eq!(a.digest(), b.digest());
        if backups_at.contains(&i) {
            let backup = Backup::of(&a, 1, i as u64, Timestamp(T0)).unwrap();
            let file = codec::encode(&backup).unwrap();
            let back: Backup = codec::decode(&file).unwrap();
            prop_assert_eq!(back.verified_state().unwrap(), a.clone());
        }
        reached_here.extend(reached(&a));
    }
    let mut c = coverage.lock().unwrap();
    for k in applied {
        *c.applied.entry(k).or_default() += 1;
    }
    c.reached.extend(reached_here);
    c.steps += steps.len();
    c.refused += refused;
    Ok(())
}

fn run_cases(runner: &mut TestRunner) -> Coverage {
    let coverage = Mutex::new(Coverage::default());
    runner
        .run(&a_history(), |(steps, snapshot_at, backups_at)| {
            run_history(&steps, snapshot_at, &backups_at, &coverage)
        })
        .unwrap();
    coverage.into_inner().unwrap()
}

/// The coverage run: a fixed seed, so what it covers is the same on every run (a random seed
/// made a rare command kind go missing now and then); the properties hold at every step.
#[test]
fn every_reachable_state_round_trips_and_replicas_agree() {
    let config = Config {
        cases: 256,
        ..Config::default()
    };
    let rng = proptest::test_runner::TestRng::deterministic_rng(config.rng_algorithm);
    let c = run_cases(&mut TestRunner::new_with_rng(config, rng));
    let missing: Vec<usize> = (0..KINDS).filter(|k| !c.applied.contains_key(k)).collect();
    let rarest = c.applied.iter().min_by_key(|(_, n)| **n);
    println!("successful applications per kind: {:?}", c.applied);
    println!(
        "{} steps, {} refused; command kinds applied: {}/{KINDS} (rarest: kind {:?}); state kinds reached: {}/{ALL_REACHED} {:?}",
        c.steps,
        c.refused,
        c.applied.len(),
        rarest,
        c.reached.len(),
        c.reached
    );
    assert!(
        missing.is_empty(),
        "command kinds never applied successfully (see `kind`): {missing:?}"
    );
    // A floor, so that a change to the generator that starves a kind shows here.
    let thin: Vec<(&usize, &usize)> = c.applied.iter().filter(|(_, n)| **n < 5).collect();
    assert!(
        thin.is_empty(),
        "command kinds applied fewer than 5 times (kind, count): {thin:?}"
    );
    assert_eq!(
        c.reached.len(),
        ALL_REACHED,
        "state kinds never reached: only {:?}",
        c.reached
    );
}

/// The same properties over histories no run has seen before (a fresh seed each run, as
/// proptest does by default; a failure prints the seed and the shrunk history).
#[test]
fn random_histories_round_trip_and_replicas_agree() {
    run_cases(&mut TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    }));
}
