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

/// Whom event `seq` still owes a delivery: its explicit deliveries and the recipients its
/// fan-out has not reached yet.
fn recipients(h: &Harness, seq: u64) -> Vec<String> {
    let mut out: Vec<String> = h
        .state
        .outbox
        .deliveries
        .get(&seq)
        .map(|m| m.keys().map(|k| k.to_string()).collect())
        .unwrap_or_default();
    let e = &h.state.outbox.events[&seq];
    if let Some(f) = &e.fanout {
        let groups = h.state.group_map();
        out.extend(
            h.state
                .subscribers_between(f.after.as_ref(), None)
                .filter(|s| h.state.is_fanout_target(e, s, &groups))
                .map(|s| s.id.to_string()),
        );
    }
    out.sort();
    out
}

/// Reports the fan-out of `seq` from its cursor through `through` (to the end: `None`).
fn walk(
    h: &mut Harness,
    seq: u64,
    through: Option<&str>,
    failed: Vec<AttemptReport>,
    deferred: &[&str],
) -> u32 {
    let from = h.state.outbox.events[&seq]
        .fanout
        .as_ref()
        .map(|f| f.after.clone())
        .unwrap_or_default();
    walk_from(h, seq, from, through, failed, deferred)
}

fn walk_from(
    h: &mut Harness,
    seq: u64,
    from: Option<Id>,
    through: Option<&str>,
    failed: Vec<AttemptReport>,
    deferred: &[&str],
) -> u32 {
    let progress = FanoutProgress {
        event: seq,
        from,
        through: through
            .map(id)
            .or_else(|| h.state.subscribers.keys().next_back().cloned()),
        complete: through.is_none(),
        failed,
        deferred: deferred.iter().map(|d| id(d)).collect(),
    };
    match h.ok(Command::RecordAttempts {
        policy: POLICY,
        reports: vec![],
        progress: vec![progress],
    }) {
        Applied::AttemptsRecorded(n) => n,
        other => panic!("unexpected {other:?}"),
    }
}

const POLICY: QuarantinePolicy = QuarantinePolicy {
    failures: 3,
    window_ms: HOUR,
};

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
        policy: POLICY,
        reports,
        progress: vec![],
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
    // Recorded without a delivery record per subscriber: a fan-out from the first one.
    assert!(h.state.outbox.deliveries.is_empty());
    for e in &events {
        assert_eq!(e.fanout, Some(Fanout::default()));
        assert_eq!(e.recipients, 0);
    }
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    for seq in seqs {
        assert_eq!(recipients(&h, seq), ["all", "apionly", "grponly"]);
        assert_eq!(walk(&mut h, seq, None, vec![], &[]), 3);
        let e = &h.state.outbox.events[&seq];
        assert_eq!((e.recipients, e.fanout.is_none()), (3, true));
    }
    assert_eq!(h.state.outbox.delivered_total, 6);
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
    let b_fails = report(
        seq,
        "b",
        1,
        now,
        AttemptOutcome::Retry {
            next_at: Timestamp(now + 5000),
        },
    );
    // The walk through a: delivered. Reported again (a deposed leader, a duplicate batch),
    // or from another cursor, it changes nothing.
    assert_eq!(walk(&mut h, seq, Some("a"), vec![], &[]), 1);
    let outbox = h.state.outbox.clone();
    assert_eq!(walk_from(&mut h, seq, None, Some("a"), vec![], &[]), 0);
    assert_eq!(walk_from(&mut h, seq, None, None, vec![], &[]), 0);
    assert_eq!(h.state.outbox, outbox);
    // The rest: b failed its first attempt and becomes an explicit, retrying delivery.
    assert_eq!(walk(&mut h, seq, None, vec![b_fails.clone()], &[]), 1);
    assert!(h.state.outbox.events[&seq].fanout.is_none());
    assert_eq!(recipients(&h, seq), ["b"]);
    let d = &h.state.outbox.deliveries[&seq][&id("b")];
    assert_eq!((d.attempts, d.next_attempt_at), (1, Timestamp(now + 5000)));
    assert_eq!(h.state.outbox.delivered_total, 1);
    // Explicit reports: the same attempt again is stale, an unknown event is ignored.
    let n = record(
        &mut h,
        vec![
            b_fails,
            report(seq, "a", 1, now, AttemptOutcome::Delivered),
            report(999, "b", 1, now, AttemptOutcome::Delivered),
        ],
    );
    assert_eq!(n, 0);
    let log = h.state.outbox.attempt_log.of(&id("b"));
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
    walk(
        &mut h,
        seqs[0],
        None,
        vec![
            report(seqs[0], "dead", 1, now, retry(1)),
            report(seqs[0], "gone", 1, now, AttemptOutcome::Gone),
        ],
        &[],
    );
    walk(
        &mut h,
        seqs[1],
        None,
        vec![report(seqs[1], "dead", 1, now, retry(1))],
        &[],
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
    let newest = *h.state.outbox.events.keys().next_back().unwrap();
    assert!(h.state.outbox.pending().next().is_none());
    assert!(recipients(&h, newest).is_empty());
    // Enabling with --replay-since queues every matching broadcast event since then,
    // explicitly: the failed ones again, and the newest, whose fan-out then skips it.
    h.ok(Command::SetSubscriberState {
        id: id("dead"),
        enabled: true,
        replay_since: Some(Timestamp(T0)),
    });
    let pending: Vec<u64> = h.state.outbox.pending().map(|(s, _, _)| s).collect();
    assert_eq!(pending, [seqs[0], seqs[1], newest]);
    assert_eq!(recipients(&h, newest), ["dead"]);
    assert_eq!(walk(&mut h, newest, None, vec![], &[]), 0);
    assert!(h.state.subscribers[&id("dead")].is_active());
    // An exhausted schedule quarantines as well.
    let first = pending[0];
    assert_eq!(first, seqs[0]);
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
    assert_eq!(walk(&mut h, e.seq, None, vec![], &[]), 1);
    assert!(recipients(&h, e.seq).is_empty());
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
    assert!(h.state.outbox.attempt_log.of(&id("b")).is_empty());
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
    let seq = *h.state.outbox.events.keys().next_back().unwrap();
    assert!(recipients(&h, seq).is_empty());
}

/// The scale issue's invariants on one node's state: recording an event costs the same
/// whatever the subscriber count; the fan-out walks in stretches; subscribers added after the
/// event are not its recipients; deferred and failed recipients, and only they, become
/// explicit records.
#[test]
fn a_fan_out_walks_the_subscribers_in_stretches_and_keeps_records_only_for_the_failing() {
    let mut h = Harness::seeded();
    let rows = |from: usize, n: usize| -> Vec<ImportedSubscriber> {
        (from..from + n)
            .map(|i| ImportedSubscriber {
                id: id(&format!("s{i:05}")),
                spec: NewSubscriber {
                    url: format!("https://hooks.example.com/{i}"),
                    component_ids: vec![],
                    description: None,
                    secret: format!("whsec_{}", "B".repeat(32)),
                    format: PayloadFormat::Statuspage,
                    owner: None,
                },
            })
            .collect()
    };
    for chunk in 0..5 {
        assert_eq!(
            h.ok(Command::ImportSubscribers {
                first_row: 0,
                subscribers: rows(chunk * 2000, 2000)
            }),
            Applied::Imported(2000)
        );
    }
    let before = serde_json::to_vec(&h.state.outbox).unwrap().len();
    h.ok(Command::SetComponentStatus {
        id: id("cdn"),
        status: ComponentStatus::MajorOutage,
    });
    let seq = *h.state.outbox.events.keys().next_back().unwrap();
    let grown = serde_json::to_vec(&h.state.outbox).unwrap().len() - before;
    assert!(
        grown < 2_000,
        "recording one event for 10,000 subscribers grew the outbox by {grown} bytes"
    );
    // A subscriber added after the event is not one of its recipients.
    h.ok(Command::ImportSubscribers {
        first_row: 0,
        subscribers: rows(10_000, 1),
    });
    assert_eq!(recipients(&h, seq).len(), 10_000);
    let now = h.now;
    let failed = report(
        seq,
        "s00010",
        1,
        now,
        AttemptOutcome::Retry {
            next_at: Timestamp(now + 60_000),
        },
    );
    assert_eq!(
        walk(&mut h, seq, Some("s04999"), vec![failed], &["s00020"]),
        5_000
    );
    assert_eq!(
        h.state.outbox.events[&seq].fanout,
        Some(Fanout {
            after: Some(id("s04999"))
        })
    );
    // A failure outside the stretch, or a first attempt numbered 2, is not taken.
    let outside = report(seq, "s00030", 1, now, AttemptOutcome::Gone);
    assert_eq!(walk(&mut h, seq, None, vec![outside], &[]), 5_000);
    assert!(h.state.outbox.events[&seq].fanout.is_none());
    assert!(h.state.subscribers[&id("s00030")].is_active());
    let explicit: Vec<(&Id, &Delivery)> = h.state.outbox.deliveries[&seq].iter().collect();
    assert_eq!(explicit.len(), 2);
    assert_eq!(explicit[0].0.as_str(), "s00010");
    assert_eq!(explicit[0].1.attempts, 1);
    assert_eq!(
        (explicit[1].0.as_str(), explicit[1].1.attempts),
        ("s00020", 0)
    );
    assert_eq!(h.state.outbox.delivered_total, 9_998);
    assert_eq!(h.state.outbox.events[&seq].recipients, 10_000);
    assert!(recipients(&h, seq).len() == 2);
}

#[test]
fn an_import_adds_every_row_or_none_naming_the_refused_row() {
    let mut h = Harness::seeded();
    let row = |sid: &str, url: &str| ImportedSubscriber {
        id: id(sid),
        spec: NewSubscriber {
            url: url.into(),
            component_ids: vec![],
            description: None,
            secret: format!("whsec_{}", "B".repeat(32)),
            format: PayloadFormat::Statuspage,
            owner: None,
        },
    };
    let before = h.state.digest();
    let err = h.refused(Command::ImportSubscribers {
        first_row: 0,
        subscribers: vec![
            row("i1", "https://hooks.example.com/1"),
            row("i2", "ftp://hooks.example.com/2"),
        ],
    });
    assert!(err.to_string().starts_with("invalid row 2 url"), "{err}");
    let err = h.refused(Command::ImportSubscribers {
        first_row: 0,
        subscribers: vec![
            row("i1", "https://hooks.example.com/1"),
            row("i1", "https://hooks.example.com/2"),
        ],
    });
    assert!(err.to_string().contains("row 2"), "{err}");
    assert_eq!(h.state.digest(), before);
    assert_eq!(
        h.ok(Command::ImportSubscribers {
            first_row: 0,
            subscribers: vec![row("i1", "https://hooks.example.com/1")]
        }),
        Applied::Imported(1)
    );
    // The audit record sums the rows up instead of copying them.
    let audit = h.state.audit.records.back().unwrap();
    assert_eq!(audit.action, "import_subscribers");
    assert_eq!(audit.target.as_deref(), Some("1 subscribers"));
    assert!(audit.detail.contains(r#""rows":1"#), "{}", audit.detail);
    assert!(
        !audit.detail.contains("hooks.example.com"),
        "{}",
        audit.detail
    );
    let err = h.refused(Command::ImportSubscribers {
        first_row: 0,
        subscribers: vec![row("i1", "https://hooks.example.com/1")],
    });
    assert!(err.to_string().contains("row 1"), "{err}");
}

#[test]
fn the_attempt_log_stays_within_its_byte_bound() {
    let mut h = Harness::seeded();
    add_sub(&mut h, "a", &[]);
    h.ok(Command::SetComponentStatus {
        id: id("cdn"),
        status: ComponentStatus::MajorOutage,
    });
    let seq = *h.state.outbox.events.keys().next_back().unwrap();
    let now = h.now;
    let retry = AttemptOutcome::Retry {
        next_at: Timestamp(now),
    };
    walk(
        &mut h,
        seq,
        None,
        vec![report(seq, "a", 1, now, retry.clone())],
        &[],
    );
    let policy = QuarantinePolicy {
        failures: 1_000_000,
        window_ms: HOUR,
    };
    for attempt in 2..20_000u32 {
        h.ok(Command::RecordAttempts {
            policy,
            reports: vec![report(seq, "a", attempt, now, retry.clone())],
            progress: vec![],
        });
        if h.state.outbox.attempt_log.bytes() > ATTEMPT_LOG_BYTES * 9 / 10 {
            break;
        }
    }
    let log = &h.state.outbox.attempt_log;
    assert!(log.bytes() <= ATTEMPT_LOG_BYTES, "{}", log.bytes());
    let kept = log.len();
    for attempt in 0..2_000u32 {
        let next = h.state.outbox.deliveries[&seq][&id("a")].attempts + 1;
        h.ok(Command::RecordAttempts {
            policy,
            reports: vec![report(
                seq,
                "a",
                next,
                now + i64::from(attempt),
                retry.clone(),
            )],
            progress: vec![],
        });
    }
    let log = &h.state.outbox.attempt_log;
    assert!(log.bytes() <= ATTEMPT_LOG_BYTES, "{}", log.bytes());
    assert!(log.len() >= kept * 9 / 10 && log.len() <= kept + 2_000);
    // The newest records are the ones kept, and a subscriber's listing is its latest 50.
    let shown = log.of(&id("a"));
    assert_eq!(shown.len(), ATTEMPT_LOG_PER_SUBSCRIBER);
    assert_eq!(
        shown.last().unwrap().report.attempt,
        h.state.outbox.deliveries[&seq][&id("a")].attempts
    );
}
