//! A scripted history that reaches every kind of state the cluster can hold: every `Command`
//! variant applied successfully at least once (webhook attempts with every outcome, quarantine,
//! a disabled and a re-enabled subscriber, a rotated secret, replays, tokens, audit and
//! membership records, maintenances through every transition) — and a backup of the result, so
//! `Restore` has something real to restore.
//!
//! The golden fixtures (`tests/golden/`) were written from it, and the property test restores
//! it as a donor state. Test support only (the `testkit` feature): it panics on a refusal.

#![allow(clippy::unwrap_used)]

use crate::access::Role;
use crate::backup::Backup;
use crate::command::*;
use crate::outbox::{AttemptOutcome, AttemptReport, FanoutProgress, QuarantinePolicy};
use crate::*;

/// The scenario's first command time.
pub const T0: i64 = 1_800_000_000_000;
pub const HOUR: i64 = 3_600_000;

pub fn id(s: &str) -> Id {
    Id::parse("id", s).unwrap()
}

/// The scenario's log: every proposal it made, with its index.
#[derive(Debug, Default)]
pub struct Scenario {
    pub state: State,
    pub index: u64,
    pub now: i64,
    pub log: Vec<(u64, Proposal)>,
}

pub const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

impl Scenario {
    /// An empty state with the clock at [`T0`].
    pub fn new() -> Self {
        Scenario {
            now: T0,
            ..Scenario::default()
        }
    }

    /// Applies `command` at the scenario's clock plus one second; it must succeed.
    pub fn ok(&mut self, command: Command) -> Applied {
        self.now += 1000;
        self.ok_at(self.now, command)
    }

    pub fn ok_at(&mut self, at: i64, command: Command) -> Applied {
        self.now = self.now.max(at);
        self.index += 1;
        let key = format!("scenario-{}", self.index);
        let p = Proposal {
            idempotency_key: key.clone(),
            fingerprint: format!("fp-{key}"),
            at: Timestamp(at),
            actor: "scenario".into(),
            via_node: 1 + self.index % 3,
            request_id: format!("req-{}", self.index),
            command,
        };
        let out = self.state.apply(self.index, &p);
        self.log.push((self.index, p));
        out.result
            .unwrap_or_else(|e| panic!("scenario step {} refused: {e}", self.index))
    }

    /// The sequence number of the newest event of `kind`.
    pub fn event(&self, kind: EventKind) -> u64 {
        self.state
            .outbox
            .events
            .values()
            .rev()
            .find(|e| e.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} event"))
            .seq
    }

    /// The next attempt number of a delivery: 1 while it is only part of a fan-out.
    pub fn next_attempt(&self, event: u64, sub: &str) -> u32 {
        self.state
            .outbox
            .delivery(event, &id(sub))
            .map_or(1, |d| d.attempts + 1)
    }

    /// The rest of `event`'s fan-out in one stretch: from its cursor to the last subscriber,
    /// with `failed` first attempts and `deferred` recipients; every other recipient delivered.
    pub fn fanout(
        &self,
        event: u64,
        failed: &[(&str, AttemptOutcome)],
        deferred: &[&str],
    ) -> FanoutProgress {
        let from = self.state.outbox.events[&event]
            .fanout
            .as_ref()
            .unwrap_or_else(|| panic!("event {event} has no fan-out"))
            .after
            .clone();
        FanoutProgress {
            event,
            from,
            through: self.state.subscribers.keys().next_back().cloned(),
            complete: true,
            failed: failed
                .iter()
                .map(|(sub, outcome)| self.report(event, sub, outcome.clone()))
                .collect(),
            deferred: deferred.iter().map(|d| id(d)).collect(),
        }
    }

    pub fn report(&self, event: u64, sub: &str, outcome: AttemptOutcome) -> AttemptReport {
        let failed = outcome != AttemptOutcome::Delivered;
        AttemptReport {
            event,
            subscriber: id(sub),
            attempt: self.next_attempt(event, sub),
            at: Timestamp(self.now),
            duration_ms: 42,
            http_status: match outcome {
                AttemptOutcome::Delivered => Some(200),
                AttemptOutcome::Gone => Some(410),
                _ => Some(503),
            },
            // Longer than the attempt log keeps: apply truncates.
            error: failed.then(|| format!("server error: {}", "é".repeat(600))),
            response_excerpt: if failed {
                "<html>unavailable</html>".repeat(20)
            } else {
                "ok".into()
            },
            outcome,
        }
    }
}

fn component(name: &str, group: Option<&str>, is_group: bool) -> NewComponent {
    NewComponent {
        name: name.into(),
        description: Some(format!("The {name}")),
        position: None,
        status: ComponentStatus::Operational,
        group_id: group.map(id),
        is_group,
        showcase: true,
        only_show_if_degraded: false,
    }
}

fn subscriber(url: &str, format: PayloadFormat, components: &[&str]) -> NewSubscriber {
    NewSubscriber {
        url: url.into(),
        component_ids: components.iter().copied().map(id).collect(),
        description: Some(format!("{} receiver", format.as_str())),
        secret: SECRET_A.into(),
        format,
        owner: Some("sre@example.com".into()),
    }
}

const POLICY: QuarantinePolicy = QuarantinePolicy {
    failures: 2,
    window_ms: HOUR,
};

/// Runs the whole history.
pub fn rich() -> Scenario {
    let mut s = Scenario::new();
    s.ok(Command::SetPage {
        page_id: id("page1"),
        patch: PagePatch {
            name: Some("Acme Cloud".into()),
            url: Some("https://status.example.com".into()),
            time_zone: Some("Europe/Paris".into()),
            emit_maintenance_status: Some(true),
            email_subscriptions: None,
            webhook_subscriptions: None,
            mail_header: None,
            mail_footer: None,
        },
    });
    for (cid, name, group, is_group) in [
        ("grp", "Platform", None, true),
        ("api", "API", Some("grp"), false),
        ("web", "Website", Some("grp"), false),
        ("cdn", "CDN", None, false),
    ] {
        s.ok(Command::CreateComponent {
            id: id(cid),
            spec: component(name, group, is_group),
        });
    }
    s.ok(Command::UpdateComponent {
        id: id("cdn"),
        patch: ComponentPatch {
            description: Some(Some("Edge caches".into())),
            only_show_if_degraded: Some(false),
            ..ComponentPatch::default()
        },
    });
    for (sid, url, format, comps) in [
        (
            "sall",
            "https://hooks.example.com/all",
            PayloadFormat::Statuspage,
            &[][..],
        ),
        (
            "sapi",
            "https://hooks.slack.com/services/T0/B0/x",
            PayloadFormat::Slack,
            &["api"][..],
        ),
        (
            "sgrp",
            "https://discord.com/api/webhooks/1/x",
            PayloadFormat::Discord,
            &["grp"][..],
        ),
        (
            "sgone",
            "https://hooks.example.com/gone",
            PayloadFormat::Statuspage,
            &[][..],
        ),
        (
            "stired",
            "https://hooks.example.com/tired",
            PayloadFormat::Statuspage,
            &[][..],
        ),
        (
            "soff",
            "https://hooks.example.com/off",
            PayloadFormat::Statuspage,
            &["cdn"][..],
        ),
    ] {
        s.ok(Command::AddSubscriber {
            id: id(sid),
            spec: subscriber(url, format, comps),
        });
    }
    // Two more in one import (one keeps its own secret, one gets the leader's).
    s.ok(Command::ImportSubscribers {
        first_row: 0,
        subscribers: vec![
            ImportedSubscriber {
                id: id("simp1"),
                spec: subscriber(
                    "https://hooks.example.com/imported/1",
                    PayloadFormat::Statuspage,
                    &[],
                ),
            },
            ImportedSubscriber {
                id: id("simp2"),
                spec: NewSubscriber {
                    secret: SECRET_B.into(),
                    ..subscriber(
                        "https://hooks.example.com/imported/2",
                        PayloadFormat::Statuspage,
                        &["cdn"],
                    )
                },
            },
        ],
    });

    // An incident with component changes: events for every matching subscriber.
    s.ok(Command::CreateIncident {
        id: id("inc1"),
        update_id: id("inc1u1"),
        spec: NewIncident {
            name: "Elevated API errors".into(),
            status: IncidentStatus::Investigating,
            impact: Impact::Major,
            body: "Some requests fail with 503.".into(),
            started_at: Some(Timestamp(T0 - HOUR)),
            component_changes: vec![ComponentChange {
                component_id: id("api"),
                status: ComponentStatus::MajorOutage,
            }],
        },
    });
    s.ok(Command::UpdateIncident {
        id: id("inc1"),
        update_id: id("inc1u2"),
        spec: IncidentUpdateSpec {
            status: Some(IncidentStatus::Identified),
            impact: Some(Impact::Critical),
            name: Some("API errors in Europe".into()),
            body: "A faulty load balancer; replacing it.".into(),
            component_changes: vec![ComponentChange {
                component_id: id("web"),
                status: ComponentStatus::PartialOutage,
            }],
        },
    });
    s.ok(Command::SetComponentStatus {
        id: id("cdn"),
        status: ComponentStatus::DegradedPerformance,
    });

    // Attempts with every outcome. sgone answers 410 (disabled); stired fails twice within
    // the window (quarantined by the policy); sgrp exhausts its schedule (quarantined);
    // sapi is retrying; sall is delivered.
    // The incident's fan-out in one stretch (sall delivered at the first attempt, sgrp
    // deferred behind its earlier deliveries), then the explicit deliveries' attempts.
    let created = s.event(EventKind::IncidentCreated);
    let walked = s.fanout(
        created,
        &[
            (
                "sapi",
                AttemptOutcome::Retry {
                    next_at: Timestamp(s.now + 60_000),
                },
            ),
            ("sgone", AttemptOutcome::Gone),
            (
                "stired",
                AttemptOutcome::Retry {
                    next_at: Timestamp(s.now + 5_000),
                },
            ),
        ],
        &["sgrp"],
    );
    s.ok(Command::RecordAttempts {
        policy: POLICY,
        reports: vec![],
        progress: vec![walked],
    });
    let second = vec![
        s.report(
            created,
            "stired",
            AttemptOutcome::Retry {
                next_at: Timestamp(s.now + 10_000),
            },
        ),
        s.report(created, "sgrp", AttemptOutcome::Exhausted),
    ];
    s.ok(Command::RecordAttempts {
        policy: POLICY,
        reports: second,
        progress: vec![],
    });

    s.ok(Command::TestSubscriber { id: id("sall") });
    let ping = s.event(EventKind::Ping);
    let delivered = vec![s.report(ping, "sall", AttemptOutcome::Delivered)];
    s.ok(Command::RecordAttempts {
        policy: POLICY,
        reports: delivered,
        progress: vec![],
    });
    let webhook_id = s.state.outbox.events[&created].webhook_id.clone();
    s.ok(Command::ReplayEvent {
        event: webhook_id,
        subscriber: Some(id("sall")),
    });
    s.ok(Command::RotateSubscriberSecret {
        id: id("sall"),
        secret: SECRET_B.into(),
        overlap_ms: 24 * HOUR,
    });
    s.ok(Command::SetSubscriberState {
        id: id("soff"),
        enabled: false,
        replay_since: None,
    });
    s.ok(Command::SetSubscriberState {
        id: id("stired"),
        enabled: true,
        replay_since: Some(Timestamp(T0)),
    });

    s.ok(Command::ResolveIncident {
        id: id("inc1"),
        update_id: id("inc1u3"),
        body: "The load balancer was replaced; errors are back to normal.".into(),
        restore_components: true,
    });
    s.ok(Command::PublishPostmortem {
        id: id("inc1"),
        body: "## What happened\nA load balancer failed.".into(),
    });

    // Maintenances: automatic (scheduled -> in progress -> completed), manual (scheduled ->
    // in progress -> verifying -> completed), and cancelled.
    let from = s.now + 60_000;
    let until = from + HOUR;
    for (mid, uid, auto) in [
        ("mauto", "mautou1", true),
        ("mman", "mmanu1", false),
        ("mcxl", "mcxlu1", true),
    ] {
        s.ok(Command::ScheduleMaintenance {
            id: id(mid),
            update_id: id(uid),
            spec: NewMaintenance {
                name: format!("Maintenance {mid}"),
                body: "We will upgrade the database.".into(),
                scheduled_for: Timestamp(from),
                scheduled_until: Timestamp(until),
                components: vec![id("api"), id("cdn")],
                auto_transitions: auto,
            },
        });
    }
    s.ok(Command::CancelMaintenance {
        id: id("mcxl"),
        update_id: id("mcxlu2"),
        body: Some("No longer needed.".into()),
    });
    s.ok_at(
        from,
        Command::AutoTransitionMaintenance {
            id: id("mauto"),
            update_id: id("mautou2"),
            to: MaintenanceStatus::InProgress,
        },
    );
    for (n, status) in [
        MaintenanceStatus::InProgress,
        MaintenanceStatus::Verifying,
        MaintenanceStatus::Completed,
    ]
    .into_iter()
    .enumerate()
    {
        s.ok(Command::UpdateMaintenance {
            id: id("mman"),
            update_id: id(&format!("mmanu{}", n + 2)),
            patch: MaintenancePatch {
                status: Some(status),
                body: Some(format!("Now {}", status.as_str())),
                ..MaintenancePatch::default()
            },
        });
    }
    s.ok_at(
        until,
        Command::AutoTransitionMaintenance {
            id: id("mauto"),
            update_id: id("mautou3"),
            to: MaintenanceStatus::Completed,
        },
    );

    s.ok(Command::CreateToken {
        name: "ci".into(),
        role: Role::ReadOnly,
        hash: "a".repeat(64),
    });
    s.ok(Command::CreateToken {
        name: "oncall".into(),
        role: Role::Operator,
        hash: "b".repeat(64),
    });
    s.ok(Command::RevokeToken {
        name: "oncall".into(),
    });
    for (change, index) in [
        (MembershipChange::AddNode, 900),
        (MembershipChange::PromoteNode, 901),
        (MembershipChange::RemoveNode, 902),
    ] {
        s.ok(Command::RecordMembershipChange {
            change,
            node: 4,
            membership_index: index,
        });
    }
    email_subscriptions(&mut s);
    s.ok(Command::RemoveSubscriber { id: id("sgone") });
    s.ok(Command::DeleteComponent { id: id("web") });
    s
}

/// The email part of the history: self-service turned on; one request left unconfirmed (its
/// confirmation mail pending), one confirmed then filtered and asked again (a manage-link
/// mail), one added by an operator and bounced by the relay.
fn email_subscriptions(s: &mut Scenario) {
    s.ok(Command::SetPage {
        page_id: id("page1"),
        patch: PagePatch {
            email_subscriptions: Some(true),
            webhook_subscriptions: Some(true),
            mail_header: Some(
                "Acme status updates: what is broken and when it will be fixed.".into(),
            ),
            mail_footer: Some("Acme Ltd, 1 Example Street, Paris".into()),
            ..PagePatch::default()
        },
    });
    let request = |address: &str| Command::RequestSubscription {
        id: email_subscriber_id(address),
        spec: NewSubscriber {
            secret: SECRET_A.into(),
            ..subscriber(&format!("{MAILTO}{address}"), PayloadFormat::Email, &[])
        },
    };
    s.ok(request("jane@example.com"));
    s.ok(request("bob@example.com"));
    let bob = email_subscriber_id("bob@example.com");
    s.ok(Command::ConfirmSubscription { id: bob.clone() });
    s.ok(Command::SetSubscriberComponents {
        id: bob,
        component_ids: vec![id("api")],
    });
    s.ok_at(
        s.now + crate::limits::SUBSCRIPTION_NOTICE_INTERVAL_MS,
        request("bob@example.com"),
    );
    let ops = email_subscriber_id("ops@example.com");
    s.ok(Command::AddSubscriber {
        id: ops.clone(),
        spec: subscriber("mailto:ops@example.com", PayloadFormat::Email, &[]),
    });
    s.ok(Command::TestSubscriber { id: ops.clone() });
    let ping = s.event(EventKind::Ping);
    let mut bounced = s.report(ping, ops.as_str(), AttemptOutcome::Bounced);
    bounced.http_status = None;
    bounced.error = Some("permanent error (550): mailbox unavailable".into());
    bounced.response_excerpt = "550 5.1.1 <recipient>: user unknown".into();
    s.ok(Command::RecordAttempts {
        policy: POLICY,
        reports: vec![bounced],
        progress: vec![],
    });
    // A developer's webhook asked for on the page, confirmed from the mail to its contact.
    let hook = "https://hooks.example.net/acme-status";
    let dev = crate::webhook_subscriber_id(hook);
    s.ok(Command::RequestSubscription {
        id: dev.clone(),
        spec: NewSubscriber {
            secret: SECRET_B.into(),
            owner: Some("dev@example.net".into()),
            ..subscriber(hook, PayloadFormat::Statuspage, &[])
        },
    });
    s.ok(Command::ConfirmSubscription { id: dev });
    // The scheduler's look comes too early for both: nothing is forgotten yet.
    s.ok(Command::ExpireSubscribers {
        ids: vec![email_subscriber_id("jane@example.com"), ops],
    });
}

/// A `Restore` of `state` (as `statusmesh restore` proposes it).
pub fn restore_of(state: &State, applied_index: u64) -> Command {
    let backup = Backup::of(state, 1, applied_index, Timestamp(T0 + 100 * HOUR)).unwrap();
    Command::Restore {
        backup: String::from_utf8(codec::encode(&backup).unwrap()).unwrap(),
    }
}
