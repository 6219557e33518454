//! The Statuspage v2 JSON, checked against the reference format's rules: field sets, the
//! group/children asymmetry, newest-first updates, 50-item caps, millisecond timestamps in the
//! page's offset, maintenance states, the roll-up indicator and the maintenance page setting.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde_json::Value;
use statusmesh_model::command::*;
use statusmesh_model::*;
use statusmesh_statuspage::endpoints;

const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

struct H {
    state: State,
    n: u64,
    now: i64,
}

impl H {
    fn new() -> Self {
        H {
            state: State::default(),
            n: 0,
            now: T0,
        }
    }

    fn id(&mut self) -> Id {
        self.n += 1;
        Id::parse("id", &format!("x{:011}", self.n)).unwrap()
    }

    fn ok(&mut self, mut command: Command) -> Id {
        self.n += 1;
        self.now += 1000;
        let n = self.n;
        struct E<'a>(&'a mut u64);
        impl Entropy for E<'_> {
            fn id(&mut self) -> Id {
                *self.0 += 1;
                Id::parse("id", &format!("g{:011}", self.0)).unwrap()
            }
            fn secret(&mut self) -> String {
                format!("whsec_{}", "A".repeat(32))
            }
        }
        let mut counter = n * 1000;
        command.stamp(&mut E(&mut counter));
        let p = Proposal {
            idempotency_key: format!("k{n}"),
            fingerprint: format!("k{n}"),
            at: Timestamp(self.now),
            actor: "t".into(),
            via_node: 1,
            request_id: String::new(),
            command,
        };
        match self.state.apply(n, &p).result.unwrap() {
            Applied::Component(id)
            | Applied::Incident(id)
            | Applied::Maintenance(id)
            | Applied::Subscriber(id) => id,
            _ => Id::pending(),
        }
    }

    fn component(&mut self, name: &str, group: Option<&Id>, is_group: bool) -> Id {
        let id = self.id();
        self.ok(Command::CreateComponent {
            id,
            spec: NewComponent {
                name: name.into(),
                description: Some(format!("{name} description")),
                position: None,
                status: ComponentStatus::Operational,
                group_id: group.cloned(),
                is_group,
                showcase: true,
                only_show_if_degraded: false,
            },
        })
    }

    fn incident(&mut self, name: &str, changes: Vec<(Id, ComponentStatus)>) -> Id {
        self.ok(Command::CreateIncident {
            id: Id::pending(),
            update_id: Id::pending(),
            spec: NewIncident {
                name: name.into(),
                status: IncidentStatus::Investigating,
                impact: Impact::Minor,
                body: format!("{name} first update"),
                started_at: None,
                component_changes: changes
                    .into_iter()
                    .map(|(component_id, status)| ComponentChange {
                        component_id,
                        status,
                    })
                    .collect(),
            },
        })
    }

    fn maintenance(&mut self, from: i64, until: i64, components: Vec<Id>) -> Id {
        self.ok(Command::ScheduleMaintenance {
            id: Id::pending(),
            update_id: Id::pending(),
            spec: NewMaintenance {
                name: "Upgrade".into(),
                body: "Planned".into(),
                scheduled_for: Timestamp(from),
                scheduled_until: Timestamp(until),
                components,
                auto_transitions: true,
            },
        })
    }

    fn render(&self) -> BTreeMap<&'static str, Value> {
        endpoints(&self.state).into_iter().collect()
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn is_ms_timestamp(s: &str) -> bool {
    // 2026-05-16T22:43:07.235Z or 2026-05-16T22:43:07.235+02:00
    let b = s.as_bytes();
    b.len() >= 24
        && b[10] == b'T'
        && b[19] == b'.'
        && b[20..23].iter().all(u8::is_ascii_digit)
        && (&s[23..] == "Z" || (s.len() == 29 && (b[23] == b'+' || b[23] == b'-') && b[26] == b':'))
}

#[test]
fn an_empty_page_has_every_endpoint_with_empty_lists() {
    let h = H::new();
    let r = h.render();
    assert_eq!(r.len(), 8);
    let s = &r["summary.json"];
    assert_eq!(
        keys(s),
        [
            "components",
            "incidents",
            "page",
            "scheduled_maintenances",
            "status"
        ]
    );
    assert_eq!(s["status"]["indicator"], "none");
    assert_eq!(s["status"]["description"], "All Systems Operational");
    assert_eq!(
        keys(&s["page"]),
        ["id", "name", "time_zone", "updated_at", "url"]
    );
    assert!(s["components"].as_array().unwrap().is_empty());
    assert_eq!(keys(&r["status.json"]), ["page", "status"]);
    assert_eq!(keys(&r["components.json"]), ["components", "page"]);
    assert_eq!(keys(&r["incidents.json"]), ["incidents", "page"]);
    assert_eq!(
        keys(&r["scheduled-maintenances/active.json"]),
        ["page", "scheduled_maintenances"]
    );
}

#[test]
fn groups_alone_carry_components_and_children_point_back() {
    let mut h = H::new();
    let g = h.component("Platform", None, true);
    let api = h.component("API", Some(&g), false);
    let web = h.component("Web", Some(&g), false);
    let cdn = h.component("CDN", None, false);
    h.ok(Command::SetComponentStatus {
        id: web.clone(),
        status: ComponentStatus::PartialOutage,
    });
    let comps = h.render()["components.json"]["components"].clone();
    let comps = comps.as_array().unwrap();
    let by_id = |id: &Id| {
        comps
            .iter()
            .find(|c| c["id"] == id.as_str())
            .unwrap()
            .clone()
    };
    let group = by_id(&g);
    assert_eq!(group["group"], true);
    assert_eq!(
        group["components"],
        serde_json::json!([api.as_str(), web.as_str()])
    );
    assert_eq!(
        group["status"], "partial_outage",
        "a group shows its worst child"
    );
    assert_eq!(
        keys(&group),
        [
            "components",
            "created_at",
            "description",
            "group",
            "group_id",
            "id",
            "name",
            "only_show_if_degraded",
            "page_id",
            "position",
            "showcase",
            "start_date",
            "status",
            "updated_at"
        ]
    );
    for child in [by_id(&api), by_id(&cdn)] {
        assert!(
            child.get("components").is_none(),
            "only groups carry `components`"
        );
        assert_eq!(child["group"], false);
    }
    assert_eq!(by_id(&api)["group_id"], g.as_str());
    assert!(by_id(&cdn)["group_id"].is_null());
    assert!(is_ms_timestamp(group["created_at"].as_str().unwrap()));
    assert_eq!(group["start_date"].as_str().unwrap().len(), 10);
    // The roll-up: a partial outage is a "major" indicator.
    assert_eq!(h.render()["status.json"]["status"]["indicator"], "major");
}

#[test]
fn incidents_have_newest_first_updates_and_the_reference_fields() {
    let mut h = H::new();
    let api = h.component("API", None, false);
    let inc = h.incident("Errors", vec![(api.clone(), ComponentStatus::MajorOutage)]);
    h.ok(Command::UpdateIncident {
        id: inc.clone(),
        update_id: Id::pending(),
        spec: IncidentUpdateSpec {
            status: Some(IncidentStatus::Identified),
            impact: None,
            name: None,
            body: "Found it".into(),
            component_changes: vec![],
        },
    });
    let r = h.render();
    let i = &r["incidents/unresolved.json"]["incidents"][0];
    assert_eq!(
        keys(i),
        [
            "components",
            "created_at",
            "id",
            "impact",
            "incident_updates",
            "monitoring_at",
            "name",
            "page_id",
            "resolved_at",
            "shortlink",
            "started_at",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(i["status"], "identified");
    let updates = i["incident_updates"].as_array().unwrap();
    assert_eq!(
        updates[0]["body"], "Found it",
        "newest first: integrations read [0]"
    );
    assert_eq!(updates[1]["affected_components"][0]["code"], api.as_str());
    assert_eq!(
        updates[1]["affected_components"][0]["old_status"],
        "operational"
    );
    assert_eq!(
        updates[1]["affected_components"][0]["new_status"],
        "major_outage"
    );
    assert!(updates[0]["affected_components"].is_null());
    assert_eq!(
        keys(&updates[0]),
        [
            "affected_components",
            "body",
            "created_at",
            "custom_tweet",
            "deliver_notifications",
            "display_at",
            "id",
            "incident_id",
            "status",
            "tweet_id",
            "updated_at"
        ]
    );
    assert_eq!(i["components"][0]["id"], api.as_str());
    assert_eq!(r["summary.json"]["incidents"].as_array().unwrap().len(), 1);
    assert_eq!(r["summary.json"]["status"]["indicator"], "critical");

    h.ok(Command::ResolveIncident {
        id: inc,
        update_id: Id::pending(),
        body: "Fixed".into(),
        restore_components: true,
    });
    let r = h.render();
    assert!(
        r["summary.json"]["incidents"]
            .as_array()
            .unwrap()
            .is_empty(),
        "summary holds only unresolved incidents"
    );
    assert_eq!(r["incidents.json"]["incidents"][0]["status"], "resolved");
    assert!(is_ms_timestamp(
        r["incidents.json"]["incidents"][0]["resolved_at"]
            .as_str()
            .unwrap()
    ));
}

#[test]
fn lists_are_capped_at_fifty_newest_first() {
    let mut h = H::new();
    let mut ids = Vec::new();
    for n in 0..60 {
        ids.push(h.incident(&format!("inc {n}"), vec![]));
    }
    let r = h.render();
    let list = r["incidents.json"]["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 50);
    assert_eq!(list[0]["id"], ids[59].as_str());
    assert_eq!(list[49]["id"], ids[10].as_str());
    assert_eq!(
        r["incidents/unresolved.json"]["incidents"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
}

#[test]
fn maintenance_states_and_views() {
    let mut h = H::new();
    let db = h.component("DB", None, false);
    let later = h.maintenance(T0 + 10 * HOUR, T0 + 11 * HOUR, vec![db.clone()]);
    let now = h.maintenance(T0 + HOUR, T0 + 3 * HOUR, vec![db.clone()]);
    let gone = h.maintenance(T0 + 5 * HOUR, T0 + 6 * HOUR, vec![]);
    h.ok(Command::CancelMaintenance {
        id: gone.clone(),
        update_id: Id::pending(),
        body: None,
    });
    h.now = T0 + HOUR;
    h.ok(Command::AutoTransitionMaintenance {
        id: now.clone(),
        update_id: Id::pending(),
        to: MaintenanceStatus::InProgress,
    });
    let r = h.render();
    let ids = |path: &str| -> Vec<String> {
        r[path]["scheduled_maintenances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids("scheduled-maintenances/upcoming.json"),
        [later.to_string()]
    );
    assert_eq!(ids("scheduled-maintenances/active.json"), [now.to_string()]);
    assert_eq!(
        ids("summary.json"),
        [now.to_string(), later.to_string()],
        "in progress + upcoming, soonest first"
    );
    assert_eq!(ids("scheduled-maintenances.json").len(), 3);
    let all = r["scheduled-maintenances.json"]["scheduled_maintenances"]
        .as_array()
        .unwrap();
    let cancelled = all.iter().find(|m| m["id"] == gone.as_str()).unwrap();
    assert_eq!(
        cancelled["status"], "completed",
        "the format has no cancelled state"
    );
    let active = &r["scheduled-maintenances/active.json"]["scheduled_maintenances"][0];
    assert_eq!(active["impact"], "maintenance");
    assert_eq!(active["status"], "in_progress");
    assert!(is_ms_timestamp(active["scheduled_for"].as_str().unwrap()));
    assert_eq!(r["status.json"]["status"]["indicator"], "maintenance");
    assert_eq!(
        r["components.json"]["components"][0]["status"],
        "under_maintenance"
    );

    // The page setting for strict clients.
    h.ok(Command::SetPage {
        page_id: Id::pending(),
        patch: PagePatch {
            emit_maintenance_status: Some(false),
            ..Default::default()
        },
    });
    let r = h.render();
    assert_eq!(r["status.json"]["status"]["indicator"], "none");
    assert_eq!(
        r["components.json"]["components"][0]["status"],
        "operational"
    );
}

#[test]
fn timestamps_use_the_page_offset_with_milliseconds() {
    let mut h = H::new();
    h.ok(Command::SetPage {
        page_id: Id::pending(),
        patch: PagePatch {
            name: Some("Acme".into()),
            url: Some("https://status.acme.test/".into()),
            time_zone: Some("Asia/Singapore".into()),
            ..Default::default()
        },
    });
    let api = h.component("API", None, false);
    let inc = h.incident("Errors", vec![(api, ComponentStatus::DegradedPerformance)]);
    let r = h.render();
    let page = &r["status.json"]["page"];
    assert_eq!(page["time_zone"], "Asia/Singapore");
    assert!(
        !page["id"].as_str().unwrap().is_empty(),
        "the first SetPage assigns the page id"
    );
    let created = r["incidents.json"]["incidents"][0]["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        created.ends_with("+08:00") && is_ms_timestamp(&created),
        "{created}"
    );
    assert_eq!(
        r["incidents.json"]["incidents"][0]["shortlink"],
        format!("https://status.acme.test/incidents/{inc}")
    );
    assert_eq!(r["incidents.json"]["incidents"][0]["page_id"], page["id"]);
}
