//! The shared harness of the state-machine tests: drives a `State` the way the leader does.

#![allow(dead_code, clippy::unwrap_used)]

use statusmesh_model::command::*;
use statusmesh_model::*;

pub const T0: i64 = 1_800_000_000_000;

pub const HOUR: i64 = 3_600_000;

pub fn id(s: &str) -> Id {
    Id::parse("id", s).unwrap()
}

/// Drives a `State` the way the leader does: fresh keys, increasing log indexes.
pub struct Harness {
    pub state: State,
    pub index: u64,
    pub now: i64,
}

impl Harness {
    pub fn new() -> Self {
        Harness {
            state: State::default(),
            index: 0,
            now: T0,
        }
    }

    pub fn propose_keyed(&mut self, key: &str, fingerprint: &str, command: Command) -> Outcome {
        self.index += 1;
        self.now += 1000;
        let p = Proposal {
            idempotency_key: key.into(),
            fingerprint: fingerprint.into(),
            at: Timestamp(self.now),
            actor: "test".into(),
            via_node: 1,
            request_id: String::new(),
            command,
        };
        self.state.apply(self.index, &p)
    }

    pub fn ok(&mut self, command: Command) -> Applied {
        let key = format!("k{}", self.index + 1);
        let out = self.propose_keyed(&key, &key, command);
        out.result
            .unwrap_or_else(|e| panic!("unexpected refusal: {e}"))
    }

    /// Proposes a command that must be refused, checks the state did not change, and returns
    /// the error's message.
    pub fn refused(&mut self, command: Command) -> CommandError {
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

    pub fn component(&mut self, cid: &str, name: &str, group: Option<&str>, is_group: bool) {
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

    pub fn seeded() -> Self {
        let mut h = Harness::new();
        h.component("grp", "Core", None, true);
        h.component("api", "API", Some("grp"), false);
        h.component("web", "Website", Some("grp"), false);
        h.component("cdn", "CDN", None, false);
        h
    }

    pub fn status(&self, cid: &str) -> ComponentStatus {
        self.state.components[&id(cid)].status
    }
}

pub fn new_incident(changes: Vec<(&str, ComponentStatus)>) -> NewIncident {
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

pub fn update(status: Option<IncidentStatus>, body: &str) -> IncidentUpdateSpec {
    IncidentUpdateSpec {
        status,
        impact: None,
        name: None,
        body: body.into(),
        component_changes: vec![],
    }
}

pub fn maintenance(from: i64, until: i64, auto: bool) -> NewMaintenance {
    NewMaintenance {
        name: "Database upgrade".into(),
        body: "We will upgrade the primary database.".into(),
        scheduled_for: Timestamp(from),
        scheduled_until: Timestamp(until),
        components: vec![id("api"), id("web")],
        auto_transitions: auto,
    }
}

pub struct Counter(pub u8);

impl Entropy for Counter {
    fn id(&mut self) -> Id {
        self.0 += 1;
        Id::from_random([self.0; 12])
    }
    fn secret(&mut self) -> String {
        format!("whsec_{}", "B".repeat(32))
    }
}

#[allow(unused_imports)]
pub use statusmesh_model::testkit as scenario;
