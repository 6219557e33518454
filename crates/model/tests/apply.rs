//! Pure state-machine tests: every command, every validation error, idempotent replays and
//! determinism. Every refused command is checked to leave the digest unchanged.

#![allow(clippy::unwrap_used)]

use statusmesh_model::command::*;
use statusmesh_model::*;

const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

fn id(s: &str) -> Id {
    Id::parse("id", s).unwrap()
}

/// Drives a `State` the way the leader does: fresh keys, increasing log indexes.
struct Harness {
    state: State,
    index: u64,
    now: i64,
}

impl Harness {
    fn new() -> Self {
        Harness {
            state: State::default(),
            index: 0,
            now: T0,
        }
    }

    fn propose_keyed(&mut self, key: &str, fingerprint: &str, command: Command) -> Outcome {
        self.index += 1;
        self.now += 1000;
        let p = Proposal {
            idempotency_key: key.into(),
            fingerprint: fingerprint.into(),
            at: Timestamp(self.now),
            actor: "test".into(),
            via_node: 1,
            command,
        };
        self.state.apply(self.index, &p)
    }

    fn ok(&mut self, command: Command) -> Applied {
        let key = format!("k{}", self.index + 1);
        let out = self.propose_keyed(&key, &key, command);
        out.result
            .unwrap_or_else(|e| panic!("unexpected refusal: {e}"))
    }

    /// Proposes a command that must be refused, checks the state did not change, and returns
    /// the error's message.
    fn refused(&mut self, command: Command) -> CommandError {
        let before = self.state.digest();
        let key = format!("k{}", self.index + 1);
        let out = self.propose_keyed(&key, &key, command);
        let err = out.result.expect_err("command should have been refused");
        assert_eq!(
            before,
            self.state.digest(),
            "refused command changed the state: {err}"
        );
        err
    }

    fn component(&mut self, cid: &str, name: &str, group: Option<&str>, is_group: bool) {
        self.ok(Command::CreateComponent {
            id: id(cid),
            spec: NewComponent {
                name: name.into(),
                description: None,
                position: None,
                status: ComponentStatus::Operational,
                group_id: group.map(id),
                is_group,
                showcase: true,
                only_show_if_degraded: false,
            },
        });
    }

    fn seeded() -> Self {
        let mut h = Harness::new();
        h.component("grp", "Core", None, true);
        h.component("api", "API", Some("grp"), false);
        h.component("web", "Website", Some("grp"), false);
        h.component("cdn", "CDN", None, false);
        h
    }

    fn status(&self, cid: &str) -> ComponentStatus {
        self.state.components[&id(cid)].status
    }
}

fn new_incident(changes: Vec<(&str, ComponentStatus)>) -> NewIncident {
    NewIncident {
        name: "API errors".into(),
        status: IncidentStatus::Investigating,
        impact: Impact::Major,
        body: "We are investigating elevated error rates.".into(),
        started_at: None,
        component_changes: changes
            .into_iter()
            .map(|(c, s)| ComponentChange {
                component_id: id(c),
                status: s,
            })
            .collect(),
    }
}

fn update(status: Option<IncidentStatus>, body: &str) -> IncidentUpdateSpec {
    IncidentUpdateSpec {
        status,
        impact: None,
        name: None,
        body: body.into(),
        component_changes: vec![],
    }
}

#[test]
fn components_group_order_and_roll_up() {
    let mut h = Harness::seeded();
    let order: Vec<&str> = h
        .state
        .components_in_order()
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(order, ["grp", "api", "web", "cdn"]);
    assert_eq!(h.state.indicator(), Indicator::None);

    h.ok(Command::SetComponentStatus {
        id: id("api"),
        status: ComponentStatus::PartialOutage,
    });
    let grp = h.state.components[&id("grp")].clone();
    assert_eq!(
        h.state.component_status(&grp),
        ComponentStatus::PartialOutage
    );
    assert_eq!(h.state.indicator(), Indicator::Major);
    assert_eq!(h.state.indicator().description(), "Partial System Outage");

    h.ok(Command::UpdateComponent {
        id: id("cdn"),
        patch: ComponentPatch {
            name: Some("Edge CDN".into()),
            description: Some(Some("Static assets".into())),
            position: Some(0),
            ..Default::default()
        },
    });
    let cdn = &h.state.components[&id("cdn")];
    assert_eq!(cdn.name, "Edge CDN");
    assert_eq!(cdn.description.as_deref(), Some("Static assets"));
    assert_eq!(h.state.components_in_order()[0].id, id("cdn"));
}

#[test]
fn component_validation_errors() {
    let mut h = Harness::seeded();
    let e = h.refused(Command::SetComponentStatus {
        id: id("nope"),
        status: ComponentStatus::MajorOutage,
    });
    assert_eq!(e.to_string(), "component nope not found");
    assert_eq!(e.code(), ErrorCode::NotFound);

    let e = h.refused(Command::SetComponentStatus {
        id: id("grp"),
        status: ComponentStatus::MajorOutage,
    });
    assert!(e.to_string().contains("is a group"), "{e}");

    let mut spec = NewComponent {
        name: "".into(),
        description: None,
        position: None,
        status: ComponentStatus::Operational,
        group_id: None,
        is_group: false,
        showcase: false,
        only_show_if_degraded: false,
    };
    let e = h.refused(Command::CreateComponent {
        id: id("x"),
        spec: spec.clone(),
    });
    assert_eq!(e.to_string(), "invalid name: must not be empty");
    spec.name = "n".repeat(300);
    let e = h.refused(Command::CreateComponent {
        id: id("x"),
        spec: spec.clone(),
    });
    assert!(e.to_string().contains("limit of 255"), "{e}");
    spec.name = "Dup".into();
    let e = h.refused(Command::CreateComponent {
        id: id("api"),
        spec: spec.clone(),
    });
    assert_eq!(e.code(), ErrorCode::AlreadyExists);
    spec.group_id = Some(id("cdn"));
    let e = h.refused(Command::CreateComponent {
        id: id("x"),
        spec: spec.clone(),
    });
    assert!(e.to_string().contains("cdn is not a group"), "{e}");
    spec.group_id = Some(id("grp"));
    spec.is_group = true;
    let e = h.refused(Command::CreateComponent { id: id("x"), spec });
    assert!(e.to_string().contains("two levels"), "{e}");

    let e = h.refused(Command::DeleteComponent { id: id("grp") });
    assert!(e.to_string().contains("still has 2 components"), "{e}");
}

#[test]
fn delete_component_drops_references() {
    let mut h = Harness::seeded();
    h.ok(Command::AddSubscriber {
        id: id("sub"),
        spec: NewSubscriber {
            url: "https://hooks.example.com/status".into(),
            component_ids: vec![id("api"), id("cdn")],
            description: None,
            secret: format!("whsec_{}", "A".repeat(32)),
        },
    });
    h.ok(Command::DeleteComponent { id: id("cdn") });
    assert!(!h.state.components.contains_key(&id("cdn")));
    let sub = &h.state.subscribers[&id("sub")];
    assert_eq!(sub.component_ids.len(), 1);
    h.ok(Command::DeleteComponent { id: id("api") });
    h.ok(Command::DeleteComponent { id: id("web") });
    h.ok(Command::DeleteComponent { id: id("grp") });
    assert!(h.state.components.is_empty());
}

#[test]
fn incident_life_cycle() {
    let mut h = Harness::seeded();
    h.ok(Command::CreateIncident {
        id: id("inc"),
        update_id: id("u1"),
        spec: new_incident(vec![("api", ComponentStatus::MajorOutage)]),
    });
    assert_eq!(h.status("api"), ComponentStatus::MajorOutage);
    assert_eq!(h.state.indicator(), Indicator::Critical);

    h.ok(Command::UpdateIncident {
        id: id("inc"),
        update_id: id("u2"),
        spec: IncidentUpdateSpec {
            status: Some(IncidentStatus::Identified),
            impact: Some(Impact::Minor),
            name: None,
            body: "A bad deploy; rolling back.".into(),
            component_changes: vec![ComponentChange {
                component_id: id("api"),
                status: ComponentStatus::DegradedPerformance,
            }],
        },
    });
    h.ok(Command::UpdateIncident {
        id: id("inc"),
        update_id: id("u3"),
        spec: update(Some(IncidentStatus::Monitoring), "Rolled back."),
    });
    let inc = &h.state.incidents[&id("inc")];
    assert_eq!(inc.impact, Impact::Minor);
    assert!(inc.monitoring_at.is_some());
    let a = &inc.updates[1].affected_components[0];
    assert_eq!(
        (a.old_status, a.new_status),
        (
            ComponentStatus::MajorOutage,
            ComponentStatus::DegradedPerformance
        )
    );

    let e = h.refused(Command::PublishPostmortem {
        id: id("inc"),
        body: "too early".into(),
    });
    assert!(e.to_string().contains("resolve the incident"), "{e}");

    h.ok(Command::ResolveIncident {
        id: id("inc"),
        update_id: id("u4"),
        body: "Resolved.".into(),
        restore_components: true,
    });
    assert_eq!(h.status("api"), ComponentStatus::Operational);
    let inc = &h.state.incidents[&id("inc")];
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert!(inc.resolved_at.is_some());
    assert_eq!(inc.updates.len(), 4);
    assert_eq!(h.state.indicator(), Indicator::None);

    let e = h.refused(Command::UpdateIncident {
        id: id("inc"),
        update_id: id("u5"),
        spec: update(Some(IncidentStatus::Investigating), "again?"),
    });
    assert_eq!(e.code(), ErrorCode::FailedPrecondition);
    assert!(e.to_string().contains("resolved -> investigating"), "{e}");
    let e = h.refused(Command::ResolveIncident {
        id: id("inc"),
        update_id: id("u5"),
        body: "x".into(),
        restore_components: false,
    });
    assert!(e.to_string().contains("already resolved"), "{e}");

    h.ok(Command::PublishPostmortem {
        id: id("inc"),
        body: "What happened and what we changed.".into(),
    });
    assert_eq!(
        h.state.incidents[&id("inc")].status,
        IncidentStatus::Postmortem
    );
    // A later note keeps the postmortem status.
    h.ok(Command::UpdateIncident {
        id: id("inc"),
        update_id: id("u6"),
        spec: update(None, "Follow-up items are done."),
    });
    let inc = &h.state.incidents[&id("inc")];
    assert_eq!(inc.status, IncidentStatus::Postmortem);
    assert_eq!(inc.updates.last().unwrap().status, IncidentStatus::Resolved);
}

#[test]
fn incident_validation_errors() {
    let mut h = Harness::seeded();
    let e = h.refused(Command::CreateIncident {
        id: id("inc"),
        update_id: id("u1"),
        spec: new_incident(vec![("ghost", ComponentStatus::MajorOutage)]),
    });
    assert_eq!(e.to_string(), "component ghost not found");
    let e = h.refused(Command::CreateIncident {
        id: id("inc"),
        update_id: id("u1"),
        spec: new_incident(vec![
            ("api", ComponentStatus::MajorOutage),
            ("api", ComponentStatus::PartialOutage),
        ]),
    });
    assert!(e.to_string().contains("listed twice"), "{e}");
    // The first change is valid, the second is not: nothing at all may change.
    let e = h.refused(Command::CreateIncident {
        id: id("inc"),
        update_id: id("u1"),
        spec: new_incident(vec![
            ("api", ComponentStatus::MajorOutage),
            ("grp", ComponentStatus::MajorOutage),
        ]),
    });
    assert!(e.to_string().contains("is a group"), "{e}");
    assert_eq!(h.status("api"), ComponentStatus::Operational);

    let mut spec = new_incident(vec![]);
    spec.body = "x".repeat(25_001);
    let e = h.refused(Command::CreateIncident {
        id: id("inc"),
        update_id: id("u1"),
        spec,
    });
    assert!(e.to_string().starts_with("invalid body"), "{e}");
    let mut spec = new_incident(vec![]);
    spec.started_at = Some(Timestamp(T0 + 100 * HOUR));
    let e = h.refused(Command::CreateIncident {
        id: id("inc"),
        update_id: id("u1"),
        spec,
    });
    assert!(e.to_string().contains("in the future"), "{e}");
    let e = h.refused(Command::UpdateIncident {
        id: id("nope"),
        update_id: id("u1"),
        spec: update(None, "x"),
    });
    assert_eq!(e.to_string(), "incident nope not found");
}

fn maintenance(from: i64, until: i64, auto: bool) -> NewMaintenance {
    NewMaintenance {
        name: "Database upgrade".into(),
        body: "We will upgrade the primary database.".into(),
        scheduled_for: Timestamp(from),
        scheduled_until: Timestamp(until),
        components: vec![id("api"), id("web")],
        auto_transitions: auto,
    }
}

#[test]
fn maintenance_auto_transitions_follow_the_leader_clock() {
    let mut h = Harness::seeded();
    let (from, until) = (T0 + HOUR, T0 + 2 * HOUR);
    h.ok(Command::ScheduleMaintenance {
        id: id("mnt"),
        update_id: id("m1"),
        spec: maintenance(from, until, true),
    });
    assert!(h
        .state
        .due_maintenance_transitions(Timestamp(from - 1))
        .is_empty());
    // Too early: a node whose clock runs fast cannot start it.
    let e = h.refused(Command::AutoTransitionMaintenance {
        id: id("mnt"),
        update_id: id("m2"),
        to: MaintenanceStatus::InProgress,
    });
    assert!(
        e.to_string().contains("cannot become in_progress before"),
        "{e}"
    );

    h.now = from;
    let due = h.state.due_maintenance_transitions(Timestamp(from));
    assert_eq!(due, vec![(id("mnt"), MaintenanceStatus::InProgress)]);
    h.ok(Command::AutoTransitionMaintenance {
        id: id("mnt"),
        update_id: id("m2"),
        to: MaintenanceStatus::InProgress,
    });
    assert_eq!(h.status("api"), ComponentStatus::UnderMaintenance);
    assert_eq!(h.state.indicator(), Indicator::Maintenance);

    h.now = until;
    let due = h.state.due_maintenance_transitions(Timestamp(until));
    assert_eq!(due, vec![(id("mnt"), MaintenanceStatus::Completed)]);
    h.ok(Command::AutoTransitionMaintenance {
        id: id("mnt"),
        update_id: id("m3"),
        to: MaintenanceStatus::Completed,
    });
    let m = &h.state.maintenances[&id("mnt")];
    assert_eq!(m.status, MaintenanceStatus::Completed);
    assert_eq!(m.updates.len(), 3);
    assert_eq!(h.status("api"), ComponentStatus::Operational);
    assert!(h
        .state
        .due_maintenance_transitions(Timestamp(until + HOUR))
        .is_empty());
}

#[test]
fn maintenance_manual_updates_and_errors() {
    let mut h = Harness::seeded();
    let e = h.refused(Command::ScheduleMaintenance {
        id: id("mnt"),
        update_id: id("m1"),
        spec: maintenance(T0 + 2 * HOUR, T0 + HOUR, false),
    });
    assert!(e.to_string().contains("is not after scheduled_for"), "{e}");
    let e = h.refused(Command::ScheduleMaintenance {
        id: id("mnt"),
        update_id: id("m1"),
        spec: maintenance(T0 - 2 * HOUR, T0 - HOUR, false),
    });
    assert!(e.to_string().contains("already past"), "{e}");

    h.ok(Command::ScheduleMaintenance {
        id: id("mnt"),
        update_id: id("m1"),
        spec: maintenance(T0 + HOUR, T0 + 2 * HOUR, false),
    });
    let e = h.refused(Command::UpdateMaintenance {
        id: id("mnt"),
        update_id: id("m2"),
        patch: MaintenancePatch {
            status: Some(MaintenanceStatus::Verifying),
            body: Some("skip".into()),
            ..Default::default()
        },
    });
    assert!(e.to_string().contains("scheduled -> verifying"), "{e}");
    let e = h.refused(Command::UpdateMaintenance {
        id: id("mnt"),
        update_id: id("m2"),
        patch: MaintenancePatch {
            status: Some(MaintenanceStatus::InProgress),
            ..Default::default()
        },
    });
    assert!(e.to_string().contains("needs an update text"), "{e}");
    let e = h.refused(Command::AutoTransitionMaintenance {
        id: id("mnt"),
        update_id: id("m2"),
        to: MaintenanceStatus::InProgress,
    });
    assert!(e.to_string().contains("turned off"), "{e}");

    h.ok(Command::UpdateMaintenance {
        id: id("mnt"),
        update_id: id("m2"),
        patch: MaintenancePatch {
            status: Some(MaintenanceStatus::InProgress),
            body: Some("Starting early.".into()),
            components: Some(vec![id("api")]),
            ..Default::default()
        },
    });
    assert_eq!(h.status("api"), ComponentStatus::UnderMaintenance);
    assert_eq!(h.status("web"), ComponentStatus::Operational);
    h.ok(Command::CancelMaintenance {
        id: id("mnt"),
        update_id: id("m3"),
        body: None,
    });
    assert_eq!(h.status("api"), ComponentStatus::Operational);
    assert_eq!(
        h.state.maintenances[&id("mnt")].status,
        MaintenanceStatus::Cancelled
    );
    let e = h.refused(Command::CancelMaintenance {
        id: id("mnt"),
        update_id: id("m4"),
        body: None,
    });
    assert!(e.to_string().contains("finished"), "{e}");
}

#[test]
fn subscribers_and_page_settings() {
    let mut h = Harness::seeded();
    let secret = format!("whsec_{}", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let spec = |url: &str, secret: &str| NewSubscriber {
        url: url.into(),
        component_ids: vec![],
        description: Some("ops chat".into()),
        secret: secret.into(),
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
    assert!(s.enabled);
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

struct Counter(u8);

impl Entropy for Counter {
    fn id(&mut self) -> Id {
        self.0 += 1;
        Id::from_random([self.0; 12])
    }
    fn secret(&mut self) -> String {
        format!("whsec_{}", "B".repeat(32))
    }
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

#[test]
fn component_status_changes_are_logged_and_pruned_after_ninety_days() {
    let mut h = Harness::seeded();
    h.ok(Command::SetComponentStatus {
        id: id("api"),
        status: ComponentStatus::MajorOutage,
    });
    h.ok(Command::SetComponentStatus {
        id: id("api"),
        status: ComponentStatus::Operational,
    });
    let log = &h.state.components[&id("api")].status_log;
    let seen: Vec<ComponentStatus> = log.iter().map(|c| c.status).collect();
    assert_eq!(
        seen,
        [
            ComponentStatus::Operational,
            ComponentStatus::MajorOutage,
            ComponentStatus::Operational
        ]
    );
    h.now += 100 * 24 * HOUR;
    h.ok(Command::SetComponentStatus {
        id: id("api"),
        status: ComponentStatus::DegradedPerformance,
    });
    let log = &h.state.components[&id("api")].status_log;
    // The change before the window (operational) stays as the window's starting status.
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].status, ComponentStatus::Operational);
    assert_eq!(log[1].status, ComponentStatus::DegradedPerformance);
}
