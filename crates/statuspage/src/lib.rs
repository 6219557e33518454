//! The Statuspage v2 public JSON format, rendered from the replicated state.
//!
//! Field names, nesting, enumerations and ordering follow the reference format that widgets,
//! exporters and chat integrations already read: groups alone carry `components`, updates are
//! newest first, lists are capped at 50, timestamps are ISO 8601 with milliseconds in the page's
//! offset. Two statusmesh specifics: a cancelled maintenance is reported as `completed` (the
//! format has no cancelled state), and when the page setting `emit_maintenance_status` is off,
//! `under_maintenance` reads `operational` and the `maintenance` indicator reads `none`.

use chrono_tz::Tz;
use serde_json::{json, Value};
use statusmesh_model::{Component, Incident, Maintenance, MaintenanceStatus, State, Timestamp};

/// The most items a list endpoint returns.
pub const LIST_CAP: usize = 50;

/// Everything a rendering needs besides the state.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub state: &'a State,
    tz: Tz,
}

impl<'a> Ctx<'a> {
    pub fn new(state: &'a State) -> Self {
        let tz = state.page.time_zone.parse().unwrap_or(Tz::UTC);
        Ctx { state, tz }
    }

    /// `2026-05-16T22:43:07.235Z`, or with the page's offset (`...+02:00`).
    pub fn ts(&self, t: Timestamp) -> String {
        let local = t.to_datetime().with_timezone(&self.tz);
        if local.format("%z").to_string() == "+0000" {
            local.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        } else {
            local.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
        }
    }

    fn opt_ts(&self, t: Option<Timestamp>) -> Value {
        t.map_or(Value::Null, |t| Value::String(self.ts(t)))
    }

    fn page_id(&self) -> &str {
        self.state.page.id.as_str()
    }

    pub fn page(&self) -> Value {
        let p = &self.state.page;
        json!({
            "id": self.page_id(),
            "name": p.name,
            "url": p.url,
            "time_zone": p.time_zone,
            "updated_at": self.ts(self.state.clock.max(p.updated_at)),
        })
    }

    pub fn status(&self) -> Value {
        let i = self.state.public_indicator();
        json!({ "indicator": i.as_str(), "description": i.description() })
    }

    pub fn component(&self, c: &Component) -> Value {
        let mut v = json!({
            "id": c.id.as_str(),
            "name": c.name,
            "status": self.state.public_component_status(c).as_str(),
            "created_at": self.ts(c.created_at),
            "updated_at": self.ts(c.updated_at),
            "position": c.position,
            "description": c.description,
            "showcase": c.showcase,
            "start_date": c.created_at.to_datetime().with_timezone(&self.tz).format("%Y-%m-%d").to_string(),
            "group_id": c.group_id.as_ref().map(|g| g.as_str()),
            "page_id": self.page_id(),
            "group": c.is_group,
            "only_show_if_degraded": c.only_show_if_degraded,
        });
        if c.is_group {
            let mut kids: Vec<&Component> = self.state.children(&c.id).collect();
            kids.sort_by(|a, b| (a.position, &a.name, &a.id).cmp(&(b.position, &b.name, &b.id)));
            v["components"] = json!(kids.iter().map(|k| k.id.as_str()).collect::<Vec<_>>());
        }
        v
    }

    pub fn components(&self) -> Value {
        Value::Array(
            self.state
                .components_in_order()
                .into_iter()
                .map(|c| self.component(c))
                .collect(),
        )
    }

    fn components_of<'b>(&self, ids: impl Iterator<Item = &'b statusmesh_model::Id>) -> Value {
        Value::Array(
            ids.filter_map(|id| self.state.components.get(id))
                .map(|c| self.component(c))
                .collect(),
        )
    }

    fn shortlink(&self, kind: &str, id: &str) -> String {
        format!("{}/{kind}/{id}", self.state.page.url.trim_end_matches('/'))
    }

    pub fn incident(&self, i: &Incident) -> Value {
        let updates: Vec<Value> = i
            .updates
            .iter()
            .rev()
            .map(|u| {
                let affected = if u.affected_components.is_empty() {
                    Value::Null
                } else {
                    json!(u
                        .affected_components
                        .iter()
                        .map(|a| json!({
                            "code": a.component_id.as_str(),
                            "name": a.name,
                            "old_status": a.old_status.as_str(),
                            "new_status": a.new_status.as_str(),
                        }))
                        .collect::<Vec<_>>())
                };
                json!({
                    "id": u.id.as_str(),
                    "status": u.status.as_str(),
                    "body": u.body,
                    "incident_id": i.id.as_str(),
                    "created_at": self.ts(u.created_at),
                    "updated_at": self.ts(u.created_at),
                    "display_at": self.ts(u.created_at),
                    "affected_components": affected,
                    "deliver_notifications": true,
                    "custom_tweet": null,
                    "tweet_id": null,
                })
            })
            .collect();
        json!({
            "id": i.id.as_str(),
            "name": i.name,
            "status": i.status.as_str(),
            "impact": i.impact.as_str(),
            "created_at": self.ts(i.created_at),
            "updated_at": self.ts(i.updated_at),
            "monitoring_at": self.opt_ts(i.monitoring_at),
            "resolved_at": self.opt_ts(i.resolved_at),
            "started_at": self.ts(i.started_at),
            "shortlink": self.shortlink("incidents", i.id.as_str()),
            "page_id": self.page_id(),
            "incident_updates": updates,
            "components": self.components_of(i.components.iter()),
        })
    }

    pub fn maintenance(&self, m: &Maintenance) -> Value {
        let status = |s: MaintenanceStatus| match s {
            MaintenanceStatus::Cancelled => MaintenanceStatus::Completed.as_str(),
            s => s.as_str(),
        };
        let updates: Vec<Value> = m
            .updates
            .iter()
            .rev()
            .map(|u| {
                json!({
                    "id": u.id.as_str(),
                    "status": status(u.status),
                    "body": u.body,
                    "incident_id": m.id.as_str(),
                    "created_at": self.ts(u.created_at),
                    "updated_at": self.ts(u.created_at),
                    "display_at": self.ts(u.created_at),
                    "affected_components": null,
                    "deliver_notifications": true,
                    "custom_tweet": null,
                    "tweet_id": null,
                })
            })
            .collect();
        json!({
            "id": m.id.as_str(),
            "name": m.name,
            "status": status(m.status),
            "impact": "maintenance",
            "created_at": self.ts(m.created_at),
            "updated_at": self.ts(m.updated_at),
            "monitoring_at": null,
            "resolved_at": self.opt_ts(m.completed_at),
            "started_at": self.ts(m.started_at.unwrap_or(m.scheduled_for)),
            "shortlink": self.shortlink("incidents", m.id.as_str()),
            "page_id": self.page_id(),
            "incident_updates": updates,
            "components": self.components_of(m.components.iter()),
            "scheduled_for": self.ts(m.scheduled_for),
            "scheduled_until": self.ts(m.scheduled_until),
        })
    }

    /// Incidents newest first (by creation), optionally only unresolved, capped at 50.
    pub fn incidents(&self, unresolved_only: bool) -> Value {
        let mut list: Vec<&Incident> = self
            .state
            .incidents
            .values()
            .filter(|i| !unresolved_only || i.status.is_open())
            .collect();
        list.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Value::Array(
            list.into_iter()
                .take(LIST_CAP)
                .map(|i| self.incident(i))
                .collect(),
        )
    }

    /// Maintenances matching `keep`; the 50 most recent windows, or soonest first for the
    /// upcoming/active views.
    pub fn maintenances(
        &self,
        keep: impl Fn(MaintenanceStatus) -> bool,
        soonest_first: bool,
    ) -> Value {
        let mut list: Vec<&Maintenance> = self
            .state
            .maintenances
            .values()
            .filter(|m| keep(m.status))
            .collect();
        if soonest_first {
            list.sort_by(|a, b| (a.scheduled_for, &a.id).cmp(&(b.scheduled_for, &b.id)));
        } else {
            list.sort_by(|a, b| (b.scheduled_for, &b.id).cmp(&(a.scheduled_for, &a.id)));
        }
        Value::Array(
            list.into_iter()
                .take(LIST_CAP)
                .map(|m| self.maintenance(m))
                .collect(),
        )
    }
}

fn upcoming(s: MaintenanceStatus) -> bool {
    s == MaintenanceStatus::Scheduled
}

fn active(s: MaintenanceStatus) -> bool {
    s.is_active()
}

/// The eight endpoints: path under `/api/v2/` and its body.
pub fn endpoints(state: &State) -> Vec<(&'static str, Value)> {
    let c = Ctx::new(state);
    let page = c.page();
    vec![
        (
            "summary.json",
            json!({
                "page": page,
                "components": c.components(),
                "incidents": c.incidents(true),
                "scheduled_maintenances": c.maintenances(|s| upcoming(s) || active(s), true),
                "status": c.status(),
            }),
        ),
        ("status.json", json!({ "page": page, "status": c.status() })),
        (
            "components.json",
            json!({ "page": page, "components": c.components() }),
        ),
        (
            "incidents.json",
            json!({ "page": page, "incidents": c.incidents(false) }),
        ),
        (
            "incidents/unresolved.json",
            json!({ "page": page, "incidents": c.incidents(true) }),
        ),
        (
            "scheduled-maintenances.json",
            json!({ "page": page, "scheduled_maintenances": c.maintenances(|_| true, false) }),
        ),
        (
            "scheduled-maintenances/upcoming.json",
            json!({ "page": page, "scheduled_maintenances": c.maintenances(upcoming, true) }),
        ),
        (
            "scheduled-maintenances/active.json",
            json!({ "page": page, "scheduled_maintenances": c.maintenances(active, true) }),
        ),
    ]
}
