//! State-machine tests. The envelope and the machine: idempotency keys, stamping, determinism, clock, subscribers, page.
//! Every refused command is checked to leave the digest unchanged.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use statusmesh_model::command::*;
use statusmesh_model::*;

#[test]
fn subscribers_and_page_settings() {
    let mut h = Harness::seeded();
    let secret = format!("whsec_{}", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let spec = |url: &str, secret: &str| NewSubscriber {
        url: url.into(),
        component_ids: vec![],
        description: Some("ops chat".into()),
        secret: secret.into(),
        format: PayloadFormat::Statuspage,
        owner: None,
    };
    let e = h.refused(Command::AddSubscriber {
        id: id("s1"),
        spec: spec("ftp://example.com/x", &secret),
    });
    assert!(e.to_string().contains("invalid url"), "{e}");
    let e = h.refused(Command::AddSubscriber {
        id: id("s1"),
        spec: spec("https://example.com/x", "whsec_short"),
    });
    assert!(e.to_string().contains("invalid secret") && !e.to_string().contains("short"));
    h.ok(Command::AddSubscriber {
        id: id("s1"),
        spec: spec("https://example.com/x", &secret),
    });
    let s = &h.state.subscribers[&id("s1")];
    assert!(s.is_active());
    assert_eq!(s.redacted().secret, "whsec_****");
    h.ok(Command::RemoveSubscriber { id: id("s1") });
    let e = h.refused(Command::RemoveSubscriber { id: id("s1") });
    assert_eq!(e.to_string(), "subscriber s1 not found");

    h.ok(Command::SetPage {
        page_id: id("page"),
        patch: PagePatch {
            name: Some("Acme".into()),
            url: Some("https://status.acme.test/".into()),
            time_zone: Some("Europe/Paris".into()),
            emit_maintenance_status: None,
            email_subscriptions: None,
            webhook_subscriptions: None,
            mail_header: None,
            mail_footer: None,
        },
    });
    assert_eq!(h.state.page.time_zone, "Europe/Paris");
    let e = h.refused(Command::SetPage {
        page_id: id("page"),
        patch: PagePatch {
            name: None,
            url: None,
            time_zone: Some("Mars/Olympus".into()),
            emit_maintenance_status: None,
            email_subscriptions: None,
            webhook_subscriptions: None,
            mail_header: None,
            mail_footer: None,
        },
    });
    assert!(e.to_string().contains("IANA"), "{e}");
}

#[test]
fn a_repeated_key_returns_the_original_result_without_applying_twice() {
    let mut h = Harness::seeded();
    let create = |iid: &str| Command::CreateIncident {
        id: id(iid),
        update_id: id("u1"),
        spec: new_incident(vec![]),
    };
    let first = h.propose_keyed("retry-1", "fp", create("inca"));
    assert!(!first.replayed);
    let digest = h.state.digest();
    // A retry through another leader: same key, same request, different leader-chosen id.
    let again = h.propose_keyed("retry-1", "fp", create("incb"));
    assert!(again.replayed);
    assert_eq!(again.index, first.index);
    assert_eq!(again.result, Ok(Applied::Incident(id("inca"))));
    assert_eq!(h.state.incidents.len(), 1);
    assert_eq!(h.state.digest(), digest);

    let reused = h.propose_keyed("retry-1", "other-request", create("incc"));
    assert!(matches!(
        reused.result,
        Err(CommandError::IdempotencyKeyReused { .. })
    ));
    assert_eq!(h.state.digest(), digest);

    // Refusals are not remembered: the same key may carry a corrected request.
    let bad = h.propose_keyed(
        "retry-2",
        "fp2",
        Command::DeleteComponent { id: id("nope") },
    );
    assert!(bad.result.is_err());
    let good = h.propose_keyed("retry-2", "fp3", Command::DeleteComponent { id: id("cdn") });
    assert!(good.result.is_ok());
}

#[test]
fn keys_are_remembered_for_a_day_then_forgotten() {
    let mut h = Harness::seeded();
    h.propose_keyed("old", "fp", Command::DeleteComponent { id: id("cdn") });
    assert!(h.state.idempotency.get("old").is_some());
    h.now += 23 * HOUR;
    h.ok(Command::SetPage {
        page_id: id("page"),
        patch: PagePatch {
            name: Some("x".into()),
            url: None,
            time_zone: None,
            emit_maintenance_status: None,
            email_subscriptions: None,
            webhook_subscriptions: None,
            mail_header: None,
            mail_footer: None,
        },
    });
    assert!(
        h.state.idempotency.get("old").is_some(),
        "forgotten too early"
    );
    h.now += 2 * HOUR;
    h.ok(Command::SetPage {
        page_id: id("page"),
        patch: PagePatch {
            name: Some("y".into()),
            url: None,
            time_zone: None,
            emit_maintenance_status: None,
            email_subscriptions: None,
            webhook_subscriptions: None,
            mail_header: None,
            mail_footer: None,
        },
    });
    assert!(h.state.idempotency.get("old").is_none());
}

#[test]
fn bad_envelopes_are_refused() {
    let mut h = Harness::seeded();
    let before = h.state.digest();
    let out = h.propose_keyed("", "fp", Command::DeleteComponent { id: id("cdn") });
    assert!(out
        .result
        .unwrap_err()
        .to_string()
        .contains("idempotency_key"));
    let out = h.propose_keyed("a b", "fp", Command::DeleteComponent { id: id("cdn") });
    assert!(out.result.is_err());
    assert_eq!(before, h.state.digest());
}

#[test]
fn state_clock_never_runs_backwards() {
    let mut h = Harness::seeded();
    let clock = h.state.clock;
    h.now -= 10 * HOUR; // a new leader with a slow clock
    h.ok(Command::SetComponentStatus {
        id: id("api"),
        status: ComponentStatus::MajorOutage,
    });
    assert!(h.state.clock >= clock);
    assert!(h.state.components[&id("api")].updated_at >= clock);
}

#[test]
fn same_commands_give_the_same_digest() {
    let build = || {
        let mut h = Harness::seeded();
        h.ok(Command::CreateIncident {
            id: id("inc"),
            update_id: id("u1"),
            spec: new_incident(vec![("api", ComponentStatus::MajorOutage)]),
        });
        h.ok(Command::ScheduleMaintenance {
            id: id("mnt"),
            update_id: id("m1"),
            spec: maintenance(T0 + HOUR, T0 + 2 * HOUR, true),
        });
        h
    };
    let (a, mut b) = (build(), build());
    assert_eq!(a.state.digest(), b.state.digest());
    assert_eq!(a.state, b.state);
    b.ok(Command::SetComponentStatus {
        id: id("cdn"),
        status: ComponentStatus::DegradedPerformance,
    });
    assert_ne!(a.state.digest(), b.state.digest());
    // The digest is stable across an encode/decode round trip (what a snapshot does).
    let bytes = serde_json::to_vec(&a.state).unwrap();
    let decoded: State = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(decoded.digest(), a.state.digest());
}

#[test]
fn unstamped_commands_are_refused_and_stamping_fills_only_pending_ids() {
    let mut h = Harness::seeded();
    let mut cmd = Command::CreateIncident {
        id: Id::pending(),
        update_id: Id::pending(),
        spec: new_incident(vec![]),
    };
    let e = h.refused(cmd.clone());
    assert!(e.to_string().contains("not assigned by the leader"), "{e}");
    cmd.stamp(&mut Counter(0));
    assert!(!cmd.is_unstamped());
    h.ok(cmd);

    let mut sub = Command::AddSubscriber {
        id: id("keepme"),
        spec: NewSubscriber {
            url: "https://example.com/hook".into(),
            component_ids: vec![],
            description: None,
            secret: String::new(),
            format: PayloadFormat::Slack,
            owner: Some("ops@example.com".into()),
        },
    };
    sub.stamp(&mut Counter(0));
    match &sub {
        Command::AddSubscriber { id: sid, spec } => {
            assert_eq!(sid.as_str(), "keepme");
            assert!(spec.secret.starts_with("whsec_"));
        }
        _ => unreachable!(),
    }
    h.ok(sub);
}
