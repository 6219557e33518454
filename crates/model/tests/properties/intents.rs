//! Steps made concrete against the state they apply to.

use std::collections::BTreeSet;

use statusmesh_model::backup::Backup;
use statusmesh_model::command::*;
use statusmesh_model::outbox::{AttemptOutcome, AttemptReport, FanoutProgress, QuarantinePolicy};
use statusmesh_model::*;

use crate::strategies::Step;

const POLICY: QuarantinePolicy = QuarantinePolicy {
    failures: 3,
    window_ms: 3_600_000,
};

/// What a donor backup is, for the restore steps.
pub struct Donor {
    pub backup: Backup,
    pub encoded: String,
    /// The chunk size of the chunked restore under way.
    pub chunk: usize,
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
        3 => AttemptOutcome::Gone,
        _ => AttemptOutcome::Bounced,
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
pub fn concrete(step: &Step, state: &State, at: i64, donor: &mut Donor) -> Option<Command> {
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
                policy: POLICY,
                reports,
                progress: vec![],
            }
        }
        Step::Walk {
            through,
            picks,
            stale,
        } => {
            let event = state.outbox.events.values().find(|e| e.fanout.is_some())?;
            let from = event.fanout.as_ref()?.after.clone();
            let ahead: Vec<&Subscriber> = state.subscribers_between(from.as_ref(), None).collect();
            let through = through.and_then(|n| (!ahead.is_empty()).then(|| ahead[n % ahead.len()]));
            let upper = through.map(|s| &s.id);
            let groups = state.group_map();
            let targets: Vec<&Id> = state
                .subscribers_between(from.as_ref(), upper)
                .filter(|s| state.is_fanout_target(event, s, &groups))
                .map(|s| &s.id)
                .collect();
            let mut failed = Vec::new();
            let mut deferred = Vec::new();
            let mut seen = BTreeSet::new();
            for &(n, outcome) in picks {
                if targets.is_empty() {
                    break;
                }
                let sub = targets[n % targets.len()];
                if !seen.insert(sub) {
                    continue;
                }
                match outcome {
                    // 0 would be a delivery: a delivered recipient is not listed.
                    0 | 4 => deferred.push(sub.clone()),
                    o => failed.push(report(state, event.seq, sub, 1, o, at)),
                }
            }
            let stale_from = Some(Id::parse("id", "zzz").unwrap());
            Command::RecordAttempts {
                policy: POLICY,
                reports: vec![],
                progress: vec![FanoutProgress {
                    event: event.seq,
                    from: if *stale { stale_from } else { from },
                    through: through
                        .map(|s| s.id.clone())
                        .or_else(|| ahead.last().map(|s| s.id.clone())),
                    complete: through.is_none(),
                    failed,
                    deferred,
                }],
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
            let m = pick(state.maintenances.values(), *n, |m| !m.status.is_finished())?;
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
            let i = pick(state.incidents.values(), *n, |i| {
                i.status == IncidentStatus::Resolved
            })?;
            Command::PublishPostmortem {
                id: i.id.clone(),
                body: format!("what happened, take {n}"),
            }
        }
        Step::UpdateOpenIncident(n, status) => Command::UpdateIncident {
            id: open_incident(state, *n)?,
            update_id: Id::parse("id", &format!("upd{at}")).unwrap(),
            spec: IncidentUpdateSpec {
                status: Some(*status),
                impact: None,
                name: None,
                body: format!("update {n}"),
                component_changes: vec![],
            },
        },
        Step::ResolveOpenIncident(n, restore) => Command::ResolveIncident {
            id: open_incident(state, *n)?,
            update_id: Id::parse("id", &format!("res{at}")).unwrap(),
            body: "resolved".into(),
            restore_components: *restore,
        },
        Step::TouchComponent(n, status, delete) => {
            let id = pick(state.components.values(), *n, |c| !c.is_group)?
                .id
                .clone();
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
            let m = pick(state.maintenances.values(), *n, |m| !m.status.is_finished())?;
            Command::CancelMaintenance {
                id: m.id.clone(),
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

/// The `n`-th (modulo their number) of the items that `keep`, or `None` when there are none.
fn pick<'a, T>(
    items: impl Iterator<Item = &'a T>,
    n: usize,
    keep: impl Fn(&T) -> bool,
) -> Option<&'a T>
where
    T: 'a,
{
    let kept: Vec<&T> = items.filter(|t| keep(t)).collect();
    (!kept.is_empty()).then(|| kept[n % kept.len()])
}

/// The id of an unresolved incident, picked by `n`.
fn open_incident(state: &State, n: usize) -> Option<Id> {
    pick(state.incidents.values(), n, |i| {
        i.status != IncidentStatus::Resolved
    })
    .map(|i| i.id.clone())
}
