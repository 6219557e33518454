//! State-machine tests of the replicated outbox: which events a change records, who they are
//! queued for, and how attempt reports, quarantine, replay and rotation change the state.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use statusmesh_model::command::*;
use statusmesh_model::outbox::*;
use statusmesh_model::*;

fn add_sub(h: &mut Harness, sid: &str, filter: &[&str]) {
    h.ok(Command::AddSubscriber {
        id: id(sid),
        spec: NewSubscriber {
            url: format!("https://hooks.example.com/{sid}"),
            component_ids: filter.iter().map(|c| id(c)).collect(),
            description: None,
            secret: format!("whsec_{}", "A".repeat(32)),
            format: PayloadFormat::Statuspage,
            owner: Some("ops@example.com".into()),
        },
    });
}

fn recipients(h: &Harness, seq: u64) -> Vec<String> {
    h.state
        .outbox
        .deliveries
        .get(&seq)
        .map(|m| m.keys().map(|k| k.to_string()).collect())
        .unwrap_or_default()
}

fn report(seq: u64, sub: &str, attempt: u32, at: i64, outcome: AttemptOutcome) -> AttemptReport {
    AttemptReport {
        event: seq,
        subscriber: id(sub),
        attempt,
        at: Timestamp(at),
        duration_ms: 3,
        http_status: Some(500),
        error: None,
        response_excerpt: "x".repeat(1000),
        outcome,
    }
}

fn record(h: &mut Harness, reports: Vec<AttemptReport>) -> u32 {
    match h.ok(Command::RecordAttempts {
        policy: QuarantinePolicy {
            failures: 3,
            window_ms: HOUR,
        },
        reports,
    }) {
        Applied::AttemptsRecorded(n) => n,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_change_records_its_events_for_matching_subscribers_in_the_same_apply() {
    let mut h = Harness::seeded();
    add_sub(&mut h, "all", &[]);
    add_sub(&mut h, "apionly", &["api"]);
    add_sub(&mut h, "grponly", &["grp"]);
    add_sub(&mut h, "cdnonly", &["cdn"]);
    h.ok(Command::CreateIncident {
        id: id("inc"),
        update_id: id("u1"),
        spec: new_incident(vec![("api", ComponentStatus::MajorOutage)]),
    });
    let events: Vec<&Event> = h.state.outbox.events.values().collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, EventKind::IncidentCreated);
    assert_eq!(events[1].kind, EventKind::ComponentStatusChanged);
    assert_eq!(events[0].indicator, Indicator::Critical);
    assert!(events[0].webhook_id.starts_with("msg_"));
    assert_ne!(events[0].webhook_id, events[1].webhook_id);
    for e in &events {
        assert_eq!(recipients(&h, e.seq), ["all", "apionly", "grponly"]);
        assert_eq!(e.recipients, 3);
    }
    // Updates and resolution are events too; a refused command records nothing.
    let n = h.state.outbox.events.len();
    h.refused(Command::UpdateIncident {
        id: id("nope"),
        update_id: id("u2"),
        spec: update(None, "x"),
    });
    assert_eq!(h.state.outbox.events.len(), n);
    h.ok(Command::ResolveIncident {
        id: id("inc"),
        update_id: id("u3"),
        body: "Fixed.".into(),
        restore_components: true,
    });
    let kinds: Vec<EventKind> = h.state.outbox.events.values().map(|e| e.kind).collect();
    assert_eq!(
        kinds[2..],
        [
            EventKind::IncidentResolved,
            EventKind::ComponentStatusChanged
        ]
    );
    // A maintenance touching only the cdn goes to the cdn filter and the whole-page subscriber.
    let mut m = maintenance(T0 + HOUR, T0 + 2 * HOUR, false);
    m.components = vec![id("cdn")];
    h.ok(Command::ScheduleMaintenance {
        id: id("mnt"),
        update_id: id("m1"),
        spec: m,
    });
    let last = h.state.outbox.events.values().last().unwrap();
    assert_eq!(last.kind, EventKind::MaintenanceScheduled);
    assert_eq!(recipients(&h, last.seq), ["all", "cdnonly"]);
    // Page-less commands record nothing.
    let n = h.state.outbox.events.len();
    h.ok(Command::SetSubscriberState {
        id: id("cdnonly"),
        enabled: false,
        replay_since: None,
    });
    assert_eq!(h.state.outbox.events.len(), n);
}

#[test]
fn attempt_reports_deliver_retry_and_ignore_stale_ones() {
    let mut h = Harness::seeded();
    add_sub(&mut h, "a", &[]);
    add_sub(&mut h, "b", &[]);
    h.ok(Command::SetComponentStatus {
        id: id("cdn"),
        status: ComponentStatus::DegradedPerformance,
    });
    let seq = *h.state.outbox.events.keys().next().unwrap();
    let now = h.now;
    let n = record(
        &mut h,
        vec![
            report(seq, "a", 1, now, AttemptOutcome::Delivered),
            report(
                seq,
                "b",
                1,
                now,
                AttemptOutcome::Retry {
                    next_at: Timestamp(now + 5000),
                },
            ),
            // Same attempt again (a deposed leader's report): ignored.
            report(seq, "a", 1, now, AttemptOutcome::Delivered),
            report(seq, "b", 1, now, AttemptOutcome::Delivered),
            // Unknown event: ignored.
            report(999, "b", 1, now, AttemptOutcome::Delivered),
        ],
    );
    assert_eq!(n, 2);
    assert_eq!(recipients(&h, seq), ["b"]);
    let d = &h.state.outbox.deliveries[&seq][&id("b")];
    assert_eq!((d.attempts, d.next_attempt_at), (1, Timestamp(now + 5000)));
    assert_eq!(h.state.outbox.delivered_total, 1);
    let log = &h.state.outbox.attempt_log[&id("b")];
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].report.response_excerpt.len(),
        MAX_RESPONSE_EXCERPT_CHARS
    );
    assert_eq!(
        record(
            &mut h,
            vec![report(seq, "b", 2, now, AttemptOutcome::Delivered)]
        ),
        1
    );
    assert!(h.state.outbox.deliveries.is_empty());
    assert!(h.state.subscribers[&id("b")].recent_failures.is_empty());
}

#[test]
fn failing_subscribers_are_quarantined_and_come_back_with_replay() {
    let mut h = Harness::seeded();
    add_sub(&mut h, "dead", &[]);
    add_sub(&mut h, "gone", &[]);
    for s in [ComponentStatus::MajorOutage, ComponentStatus::Operational] {
        h.ok(Command::SetComponentStatus {
            id: id("cdn"),
            status: s,
        });
    }
    let seqs: Vec<u64> = h.state.outbox.events.keys().copied().collect();
    let now = h.now;
    let retry = |n| AttemptOutcome::Retry {
        next_at: Timestamp(now + n),
    };
    record(
        &mut h,
        vec![
            report(seqs[0], "dead", 1, now, retry(1)),
            report(seqs[1], "dead", 1, now, retry(1)),
            report(seqs[0], "gone", 1, now, AttemptOutcome::Gone),
        ],
    );
    assert!(h.state.subscribers[&id("dead")].is_active());
    let gone = &h.state.subscribers[&id("gone")];
    assert_eq!(gone.state.as_str(), "disabled");
    assert!(gone.state.reason().unwrap().contains("410"));
    // The third failure within the window quarantines, fails the rest, and tells operators.
    record(&mut h, vec![report(seqs[0], "dead", 2, now + 10, retry(1))]);
    let dead = &h.state.subscribers[&id("dead")];
    assert_eq!(dead.state.as_str(), "quarantined");
    assert!(h.state.outbox.pending().next().is_none());
    let last = h.state.outbox.events.values().last().unwrap();
    assert_eq!(last.kind, EventKind::SubscriberQuarantined);
    assert_eq!(last.recipients, 0);
    assert_eq!(
        h.state
            .outbox
            .stats(&h.state.subscribers)
            .quarantined_subscribers,
        1
    );
    // New events skip it while quarantined.
    h.ok(Command::SetComponentStatus {
        id: id("api"),
        status: ComponentStatus::PartialOutage,
    });
    assert!(h.state.outbox.pending().next().is_none());
    // Enabling with --replay-since queues every matching broadcast event since then.
    h.ok(Command::SetSubscriberState {
        id: id("dead"),
        enabled: true,
        replay_since: Some(Timestamp(T0)),
    });
    let pending: Vec<u64> = h.state.outbox.pending().map(|(s, _, _)| s).collect();
    assert_eq!(pending.len(), 3, "{pending:?}");
    assert!(h.state.subscribers[&id("dead")].is_active());
    // An exhausted schedule quarantines as well.
    let first = pending[0];
    record(
        &mut h,
        vec![report(first, "dead", 1, now, AttemptOutcome::Exhausted)],
    );
    assert_eq!(
        h.state.subscribers[&id("dead")].state.as_str(),
        "quarantined"
    );
}

#[test]
fn replay_test_rotation_and_removal() {
    let mut h = Harness::seeded();
    add_sub(&mut h, "a", &["api"]);
    add_sub(&mut h, "b", &[]);
    h.ok(Command::SetComponentStatus {
        id: id("cdn"),
        status: ComponentStatus::MajorOutage,
    });
    let e = h.state.outbox.events.values().next().unwrap().clone();
    let now = h.now;
    record(
        &mut h,
        vec![report(e.seq, "b", 1, now, AttemptOutcome::Delivered)],
    );
    // Replay by webhook id to every matching subscriber: only b wants a cdn event.
    assert_eq!(
        h.ok(Command::ReplayEvent {
            event: e.webhook_id.clone(),
            subscriber: None,
        }),
        Applied::Requeued(1)
    );
    assert_eq!(recipients(&h, e.seq), ["b"]);
    let err = h.refused(Command::ReplayEvent {
        event: "msg_404".into(),
        subscriber: None,
    });
    assert!(err.to_string().contains("no event"), "{err}");
    // A ping goes to one subscriber only.
    let Applied::Event(ping) = h.ok(Command::TestSubscriber { id: id("a") }) else {
        panic!("no event");
    };
    let seq = h.state.outbox.parse_event_ref(&ping).unwrap();
    assert_eq!(recipients(&h, seq), ["a"]);
    // Rotation keeps the old secret signing during the overlap.
    let old = h.state.subscribers[&id("a")].secret.clone();
    let new = format!("whsec_{}", "C".repeat(32));
    h.ok(Command::RotateSubscriberSecret {
        id: id("a"),
        secret: new.clone(),
        overlap_ms: HOUR,
    });
    let s = &h.state.subscribers[&id("a")];
    assert_eq!(
        s.signing_secrets(Timestamp(h.now)),
        [new.as_str(), old.as_str()]
    );
    assert_eq!(
        s.signing_secrets(Timestamp(h.now + 2 * HOUR)),
        [new.as_str()]
    );
    assert!(!format!("{:?}", s.redacted()).contains(&"C".repeat(32)));
    let err = h.refused(Command::RotateSubscriberSecret {
        id: id("a"),
        secret: new,
        overlap_ms: 30 * 24 * HOUR,
    });
    assert!(err.to_string().contains("overlap"), "{err}");
    // Removing a subscriber drops its deliveries and log.
    h.ok(Command::RemoveSubscriber { id: id("b") });
    assert!(h.state.outbox.pending().all(|(_, s, _)| s.as_str() != "b"));
    assert!(!h.state.outbox.attempt_log.contains_key(&id("b")));
}

#[test]
fn deleting_the_last_filtered_component_disables_rather_than_widens() {
    let mut h = Harness::seeded();
    add_sub(&mut h, "c", &["cdn"]);
    h.ok(Command::DeleteComponent { id: id("cdn") });
    let s = &h.state.subscribers[&id("c")];
    assert_eq!(s.state.as_str(), "disabled");
    h.ok(Command::SetComponentStatus {
        id: id("api"),
        status: ComponentStatus::MajorOutage,
    });
    assert!(h.state.outbox.pending().next().is_none());
}
