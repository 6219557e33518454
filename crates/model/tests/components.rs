//! State-machine tests. Components: create, update, status, groups, delete, status log.
//! Every refused command is checked to leave the digest unchanged.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use statusmesh_model::command::*;
use statusmesh_model::*;

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
            format: PayloadFormat::Statuspage,
            owner: None,
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
