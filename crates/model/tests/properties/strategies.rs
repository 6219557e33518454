//! The generators: values, commands by area, steps (commands or intents) and histories.

use proptest::prelude::*;
use statusmesh_model::access::Role;
use statusmesh_model::command::*;
use statusmesh_model::limits;
use statusmesh_model::*;

use crate::common::scenario;
use crate::T0;

/// One step of a history: a command, or an intent made concrete against the state.
#[derive(Debug, Clone)]
pub enum Step {
    Do(Command),
    /// Reports for up to three pending deliveries (picked by these numbers), with these
    /// outcomes; `stale` sends a wrong attempt number.
    Attempts(Vec<(usize, u8, bool)>),
    /// A stretch of the oldest unfinished fan-out: through the subscriber picked by the first
    /// number (or to the end), failing or deferring the recipients picked by the pairs;
    /// `stale` starts it from a wrong cursor.
    Walk {
        through: Option<usize>,
        picks: Vec<(usize, u8)>,
        stale: bool,
    },
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
        (
            a_name(),
            any::<bool>(),
            prop::option::weighted(0.5, prop::bool::weighted(0.8)),
            prop::option::weighted(0.2, a_name()),
        )
            .prop_map(|(name, emit, email, mail_text)| Command::SetPage {
                page_id: Id::parse("id", "page").unwrap(),
                patch: PagePatch {
                    name: Some(name),
                    url: None,
                    time_zone: Some("Europe/Paris".into()),
                    emit_maintenance_status: Some(emit),
                    email_subscriptions: email,
                    webhook_subscriptions: email,
                    mail_header: mail_text.clone(),
                    mail_footer: mail_text,
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

/// An address from a small pool, so requests meet the subscribers earlier ones made; now and
/// then one that is refused.
fn an_address() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0u8..4).prop_map(|n| format!("a{n}@example.com")),
        1 => Just("not an address".to_owned()),
    ]
}

fn email_id(address: &str) -> Id {
    limits::email_address("email", address)
        .map(|a| email_subscriber_id(&a))
        .unwrap_or_else(|_| Id::parse("id", "e0").unwrap())
}

/// An email subscriber's id, or one of the webhook subscribers'.
fn a_subscriber_id() -> impl Strategy<Value = Id> {
    prop_oneof![
        an_id(),
        an_address().prop_map(|a| email_id(&a)),
        (0..3u8).prop_map(|n| statusmesh_model::webhook_subscriber_id(&format!(
            "https://hooks.example.com/self/{n}"
        ))),
    ]
}

fn email_commands() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => (an_address(), prop::collection::vec(an_id(), 0..2)).prop_map(|(address, component_ids)| {
            Command::RequestSubscription {
                id: email_id(&address),
                spec: NewSubscriber {
                    url: format!("{MAILTO}{address}"),
                    component_ids,
                    description: None,
                    secret: scenario::SECRET_A.into(),
                    format: PayloadFormat::Email,
                    owner: None,
                },
            }
        }),
        2 => a_subscriber_id().prop_map(|id| Command::ConfirmSubscription { id }),
        5 => (a_subscriber_id(), prop::collection::vec(an_id(), 0..2)).prop_map(|(id, component_ids)| {
            Command::SetSubscriberComponents { id, component_ids }
        }),
        1 => an_address().prop_map(|address| Command::AddSubscriber {
            id: email_id(&address),
            spec: NewSubscriber {
                url: format!("{MAILTO}{address}"),
                component_ids: vec![],
                description: None,
                secret: scenario::SECRET_B.into(),
                format: PayloadFormat::Email,
                owner: Some("ops".into()),
            },
        }),
        1 => a_subscriber_id().prop_map(|id| Command::TestSubscriber { id }),
        1 => prop::collection::vec(a_subscriber_id(), 0..3)
            .prop_map(|ids| Command::ExpireSubscribers { ids }),
        2 => (0..3u8, prop::collection::vec(an_id(), 0..2)).prop_map(|(n, component_ids)| {
            let url = format!("https://hooks.example.com/self/{n}");
            Command::RequestSubscription {
                id: statusmesh_model::webhook_subscriber_id(&url),
                spec: NewSubscriber {
                    url,
                    component_ids,
                    description: None,
                    secret: scenario::SECRET_B.into(),
                    format: PayloadFormat::Statuspage,
                    owner: Some("dev@example.com".into()),
                },
            }
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
        1 => prop::collection::vec((an_id(), a_format()), 1..3).prop_map(|rows| {
            Command::ImportSubscribers {
                first_row: 0,
                subscribers: rows
                    .into_iter()
                    .map(|(id, format)| ImportedSubscriber {
                        id,
                        spec: NewSubscriber {
                            url: "https://hooks.example.com/imported".into(),
                            component_ids: vec![],
                            description: None,
                            secret: scenario::SECRET_B.into(),
                            format,
                            owner: None,
                        },
                    })
                    .collect(),
            }
        }),
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

/// The audit-only access records (backups, failed authentications).
fn access_records() -> impl Strategy<Value = Command> {
    prop_oneof![
        ("[0-9a-f]{64}", 1u64..10_000).prop_map(|(digest, applied_index)| {
            Command::RecordAccess {
                access: Access::Backup {
                    digest,
                    applied_index,
                },
            }
        }),
        (
            prop_oneof![
                Just("192.0.2.7".to_owned()),
                Just("2001:db8:1::/64".to_owned())
            ],
            1u32..500,
            0i64..1_000_000
        )
            .prop_map(|(source, count, since)| Command::RecordAccess {
                access: Access::FailedAuthentications {
                    source,
                    count,
                    since: Timestamp(since),
                },
            }),
    ]
}

fn a_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => page_commands().prop_map(Step::Do),
        3 => maintenance_commands().prop_map(Step::Do),
        4 => subscriber_commands().prop_map(Step::Do),
        2 => email_commands().prop_map(Step::Do),
        2 => access_commands().prop_map(Step::Do),
        1 => access_records().prop_map(Step::Do),
        5 => prop::collection::vec((any::<usize>(), 0u8..5, prop::bool::weighted(0.1)), 1..4)
            .prop_map(Step::Attempts),
        5 => (
            prop::option::weighted(0.5, any::<usize>()),
            prop::collection::vec((any::<usize>(), 0u8..6), 0..3),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(through, picks, stale)| Step::Walk { through, picks, stale }),
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
pub fn a_history() -> impl Strategy<Value = (Vec<Step>, usize, Vec<usize>)> {
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
