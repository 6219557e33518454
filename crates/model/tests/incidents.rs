//! State-machine tests. Incidents: life cycle, transitions, validation.
//! Every refused command is checked to leave the digest unchanged.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use statusmesh_model::command::*;
use statusmesh_model::*;

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
