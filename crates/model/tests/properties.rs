//! Properties of the state machine over random command sequences:
//! - two replicas applying the same log hold the same state (equal digests), even when one of
//!   them is rebuilt from a snapshot (serialised and read back) part-way through;
//! - every refused command leaves the state exactly as it was.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use statusmesh_model::access::Role;
use statusmesh_model::command::*;
use statusmesh_model::*;

/// A small pool of ids, so commands often address entities that exist (and sometimes not).
fn an_id() -> impl Strategy<Value = Id> {
    (0u8..6).prop_map(|n| Id::parse("id", &format!("e{n}")).unwrap())
}

fn a_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z ]{1,12}",
        Just(String::new()),
        Just("x".repeat(300)),
        Just("bad\u{7}name".to_owned()),
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
    prop_oneof![
        "investigating",
        "identified",
        "monitoring",
        "resolved",
        "postmortem"
    ]
    .prop_map(|s| IncidentStatus::parse("status", &s).unwrap())
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

fn a_command() -> impl Strategy<Value = Command> {
    prop_oneof![
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
                        description: None,
                        position: None,
                        status,
                        group_id,
                        is_group,
                        showcase: true,
                        only_show_if_degraded: false,
                    },
                }
            ),
        (an_id(), a_status()).prop_map(|(id, status)| Command::SetComponentStatus { id, status }),
        an_id().prop_map(|id| Command::DeleteComponent { id }),
        (
            an_id(),
            an_id(),
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
            an_id(),
            prop::option::of(an_incident_status()),
            changes()
        )
            .prop_map(|(id, update_id, status, component_changes)| {
                Command::UpdateIncident {
                    id,
                    update_id,
                    spec: IncidentUpdateSpec {
                        status,
                        impact: None,
                        name: None,
                        body: "update".into(),
                        component_changes,
                    },
                }
            }),
        (an_id(), an_id(), any::<bool>()).prop_map(|(id, update_id, restore)| {
            Command::ResolveIncident {
                id,
                update_id,
                body: "fixed".into(),
                restore_components: restore,
            }
        }),
        (an_id(), prop::collection::vec(an_id(), 0..2)).prop_map(|(id, component_ids)| {
            Command::AddSubscriber {
                id,
                spec: NewSubscriber {
                    url: "https://hooks.example.com/x".into(),
                    component_ids,
                    description: None,
                    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                    format: PayloadFormat::Statuspage,
                    owner: None,
                },
            }
        }),
        an_id().prop_map(|id| Command::RemoveSubscriber { id }),
        (an_id(), any::<bool>()).prop_map(|(id, enabled)| Command::SetSubscriberState {
            id,
            enabled,
            replay_since: None
        }),
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
    ]
}

fn proposal(i: usize, command: &Command) -> Proposal {
    Proposal {
        // Some keys repeat, exercising the idempotency path.
        idempotency_key: format!("k{}", i % 40),
        fingerprint: format!("f{i}"),
        at: Timestamp(1_800_000_000_000 + i as i64 * 1000),
        actor: "prop".into(),
        via_node: 1,
        request_id: String::new(),
        command: command.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replicas_agree_and_refusals_change_nothing(
        commands in prop::collection::vec(a_command(), 1..60),
        snapshot_at in 0usize..60,
    ) {
        let mut a = State::default();
        let mut b = State::default();
        for (i, c) in commands.iter().enumerate() {
            if i == snapshot_at {
                // Replica b is rebuilt from a snapshot of itself.
                let bytes = serde_json::to_vec(&b).unwrap();
                b = serde_json::from_slice(&bytes).unwrap();
            }
            let p = proposal(i, c);
            let before = a.digest();
            let out_a = a.apply(i as u64 + 1, &p);
            let out_b = b.apply(i as u64 + 1, &p);
            prop_assert_eq!(&out_a, &out_b);
            if out_a.result.is_err() {
                prop_assert_eq!(&before, &a.digest(), "a refused command changed the state: {:?}", out_a.result);
            }
            prop_assert_eq!(a.digest(), b.digest());
        }
    }
}
