use std::collections::BTreeSet;

use crate::command::{Applied, ComponentChange, IncidentUpdateSpec, NewIncident};
use crate::entities::{AffectedComponent, Incident, IncidentUpdate, Postmortem};
use crate::error::{CommandError, EntityKind};
use crate::ids::{Id, Timestamp};
use crate::limits;
use crate::state::State;
use crate::status::{ComponentStatus, IncidentStatus};

impl State {
    pub(crate) fn create_incident(
        &mut self,
        at: Timestamp,
        id: &Id,
        update_id: &Id,
        spec: &NewIncident,
    ) -> Result<Applied, CommandError> {
        self.check_new_id(EntityKind::Incident, id)?;
        limits::text("name", &spec.name, limits::MAX_NAME_CHARS)?;
        limits::text("body", &spec.body, limits::MAX_BODY_CHARS)?;
        if spec.status == IncidentStatus::Postmortem {
            return Err(CommandError::invalid(
                "status",
                "an incident cannot start in postmortem; resolve it, then publish one",
            ));
        }
        let started_at = spec.started_at.unwrap_or(at);
        if started_at > at {
            return Err(CommandError::invalid(
                "started_at",
                format!("{started_at} is in the future"),
            ));
        }
        let affected = self.plan_component_changes(&spec.component_changes)?;

        self.commit_component_changes(at, &affected);
        let status = spec.status;
        self.incidents.insert(
            id.clone(),
            Incident {
                id: id.clone(),
                name: spec.name.trim().to_owned(),
                status,
                impact: spec.impact,
                created_at: at,
                updated_at: at,
                started_at,
                monitoring_at: (status == IncidentStatus::Monitoring).then_some(at),
                resolved_at: (status == IncidentStatus::Resolved).then_some(at),
                components: affected.iter().map(|a| a.component_id.clone()).collect(),
                updates: vec![IncidentUpdate {
                    id: update_id.clone(),
                    status,
                    body: spec.body.clone(),
                    created_at: at,
                    affected_components: affected,
                }],
                postmortem: None,
            },
        );
        Ok(Applied::Incident(id.clone()))
    }

    pub(crate) fn update_incident(
        &mut self,
        at: Timestamp,
        id: &Id,
        update_id: &Id,
        spec: &IncidentUpdateSpec,
    ) -> Result<Applied, CommandError> {
        let incident = self.incident(id)?;
        limits::text("body", &spec.body, limits::MAX_BODY_CHARS)?;
        if let Some(name) = &spec.name {
            limits::text("name", name, limits::MAX_NAME_CHARS)?;
        }
        let to = spec.status.unwrap_or(incident.status);
        incident
            .status
            .check_update_to(to)
            .map_err(|reason| CommandError::IllegalTransition {
                kind: EntityKind::Incident,
                from: incident.status.to_string(),
                to: to.to_string(),
                reason: reason.to_string(),
            })?;
        limits::count(
            "updates",
            incident.updates.len() + 1,
            limits::MAX_UPDATES_PER_INCIDENT,
        )?;
        let affected = self.plan_component_changes(&spec.component_changes)?;

        self.commit_component_changes(at, &affected);
        let incident = self
            .incidents
            .get_mut(id)
            .ok_or_else(|| CommandError::not_found(EntityKind::Incident, id))?;
        if let Some(name) = &spec.name {
            incident.name = name.trim().to_owned();
        }
        if let Some(impact) = spec.impact {
            incident.impact = impact;
        }
        record_update(incident, at, update_id, to, spec.body.clone(), affected);
        Ok(Applied::Incident(id.clone()))
    }

    pub(crate) fn resolve_incident(
        &mut self,
        at: Timestamp,
        id: &Id,
        update_id: &Id,
        body: &str,
        restore_components: bool,
    ) -> Result<Applied, CommandError> {
        let incident = self.incident(id)?;
        if !incident.status.is_open() {
            return Err(CommandError::IllegalTransition {
                kind: EntityKind::Incident,
                from: incident.status.to_string(),
                to: IncidentStatus::Resolved.to_string(),
                reason: "the incident is already resolved".into(),
            });
        }
        let changes: Vec<ComponentChange> = if restore_components {
            incident
                .components
                .iter()
                .filter(|c| {
                    self.components
                        .get(*c)
                        .is_some_and(|c| !c.is_group && c.status != ComponentStatus::Operational)
                })
                .map(|c| ComponentChange {
                    component_id: c.clone(),
                    status: ComponentStatus::Operational,
                })
                .collect()
        } else {
            Vec::new()
        };
        self.update_incident(
            at,
            id,
            update_id,
            &IncidentUpdateSpec {
                status: Some(IncidentStatus::Resolved),
                impact: None,
                name: None,
                body: body.to_owned(),
                component_changes: changes,
            },
        )
    }

    pub(crate) fn publish_postmortem(
        &mut self,
        at: Timestamp,
        id: &Id,
        body: &str,
    ) -> Result<Applied, CommandError> {
        let incident = self.incident(id)?;
        limits::text("body", body, limits::MAX_BODY_CHARS)?;
        if incident.status.is_open() {
            return Err(CommandError::IllegalTransition {
                kind: EntityKind::Incident,
                from: incident.status.to_string(),
                to: IncidentStatus::Postmortem.to_string(),
                reason: "resolve the incident before publishing a postmortem".into(),
            });
        }
        let incident = self
            .incidents
            .get_mut(id)
            .ok_or_else(|| CommandError::not_found(EntityKind::Incident, id))?;
        incident.postmortem = Some(Postmortem {
            body: body.to_owned(),
            published_at: at,
        });
        incident.status = IncidentStatus::Postmortem;
        incident.updated_at = at;
        Ok(Applied::Incident(id.clone()))
    }

    /// Applies already-checked component changes (see `plan_component_changes`).
    pub(crate) fn commit_component_changes(
        &mut self,
        at: Timestamp,
        affected: &[AffectedComponent],
    ) {
        for a in affected {
            if let Some(c) = self.components.get_mut(&a.component_id) {
                c.set_status(at, a.new_status);
            }
        }
    }
}

fn record_update(
    incident: &mut Incident,
    at: Timestamp,
    update_id: &Id,
    status: IncidentStatus,
    body: String,
    affected: Vec<AffectedComponent>,
) {
    let touched: BTreeSet<Id> = affected.iter().map(|a| a.component_id.clone()).collect();
    incident.components.extend(touched);
    if status == IncidentStatus::Monitoring && incident.monitoring_at.is_none() {
        incident.monitoring_at = Some(at);
    }
    if status == IncidentStatus::Resolved && incident.resolved_at.is_none() {
        incident.resolved_at = Some(at);
    }
    // Notes after a postmortem keep the incident in postmortem; the update itself says resolved.
    let update_status = if status == IncidentStatus::Postmortem {
        IncidentStatus::Resolved
    } else {
        status
    };
    if incident.status != IncidentStatus::Postmortem {
        incident.status = status;
    }
    incident.updated_at = at;
    incident.updates.push(IncidentUpdate {
        id: update_id.clone(),
        status: update_status,
        body,
        created_at: at,
        affected_components: affected,
    });
}
