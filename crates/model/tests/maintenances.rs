//! State-machine tests. Maintenances: automatic and manual transitions, validation.
//! Every refused command is checked to leave the digest unchanged.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use statusmesh_model::command::*;
use statusmesh_model::*;

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
