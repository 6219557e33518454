use crate::command::{Applied, MaintenancePatch, NewMaintenance};
use crate::entities::{Maintenance, MaintenanceUpdate};
use crate::error::{CommandError, EntityKind};
use crate::ids::{Id, Timestamp};
use crate::limits;
use crate::state::State;
use crate::status::{ComponentStatus, MaintenanceStatus};

impl State {
    pub(crate) fn schedule_maintenance(
        &mut self,
        at: Timestamp,
        id: &Id,
        update_id: &Id,
        spec: &NewMaintenance,
    ) -> Result<Applied, CommandError> {
        self.check_new_id(EntityKind::Maintenance, id)?;
        limits::text("name", &spec.name, limits::MAX_NAME_CHARS)?;
        limits::text("body", &spec.body, limits::MAX_BODY_CHARS)?;
        check_window(spec.scheduled_for, spec.scheduled_until)?;
        if spec.scheduled_until <= at {
            return Err(CommandError::invalid(
                "scheduled_until",
                format!("{} is already past", spec.scheduled_until),
            ));
        }
        let components = self.check_component_set("components", &spec.components)?;
        self.maintenances.insert(
            id.clone(),
            Maintenance {
                id: id.clone(),
                name: spec.name.trim().to_owned(),
                status: MaintenanceStatus::Scheduled,
                scheduled_for: spec.scheduled_for,
                scheduled_until: spec.scheduled_until,
                components,
                auto_transitions: spec.auto_transitions,
                created_at: at,
                updated_at: at,
                started_at: None,
                completed_at: None,
                updates: vec![MaintenanceUpdate {
                    id: update_id.clone(),
                    status: MaintenanceStatus::Scheduled,
                    body: spec.body.clone(),
                    created_at: at,
                }],
            },
        );
        Ok(Applied::Maintenance(id.clone()))
    }

    pub(crate) fn update_maintenance(
        &mut self,
        at: Timestamp,
        id: &Id,
        update_id: &Id,
        patch: &MaintenancePatch,
    ) -> Result<Applied, CommandError> {
        let m = self.maintenance(id)?;
        if m.status.is_finished() {
            return Err(CommandError::precondition(format!(
                "maintenance {id} is {}; it can no longer change",
                m.status
            )));
        }
        if let Some(name) = &patch.name {
            limits::text("name", name, limits::MAX_NAME_CHARS)?;
        }
        if let Some(body) = &patch.body {
            limits::text("body", body, limits::MAX_BODY_CHARS)?;
        }
        let window_changes = patch.scheduled_for.is_some() || patch.scheduled_until.is_some();
        if window_changes {
            if patch.scheduled_for.is_some() && m.status != MaintenanceStatus::Scheduled {
                return Err(CommandError::invalid(
                    "scheduled_for",
                    format!("maintenance {id} has already started"),
                ));
            }
            let from = patch.scheduled_for.unwrap_or(m.scheduled_for);
            let until = patch.scheduled_until.unwrap_or(m.scheduled_until);
            check_window(from, until)?;
        }
        let components = match &patch.components {
            Some(ids) => Some(self.check_component_set("components", ids)?),
            None => None,
        };
        if let Some(to) = patch.status {
            check_transition(m, to)?;
            if patch.body.is_none() {
                return Err(CommandError::invalid(
                    "body",
                    "a status change needs an update text",
                ));
            }
        }

        if let Some(set) = components {
            // Components leaving an active maintenance go back to operational.
            if m.status.is_active() {
                let leaving: Vec<Id> = m.components.difference(&set).cloned().collect();
                let joining: Vec<Id> = set.difference(&m.components).cloned().collect();
                self.restore_after_maintenance(at, id, &leaving);
                self.put_under_maintenance(at, &joining);
            }
            if let Some(m) = self.maintenances.get_mut(id) {
                m.components = set;
            }
        }
        let m = self
            .maintenances
            .get_mut(id)
            .ok_or_else(|| CommandError::not_found(EntityKind::Maintenance, id))?;
        if let Some(name) = &patch.name {
            m.name = name.trim().to_owned();
        }
        if let Some(t) = patch.scheduled_for {
            m.scheduled_for = t;
        }
        if let Some(t) = patch.scheduled_until {
            m.scheduled_until = t;
        }
        m.updated_at = at;
        match (patch.status, &patch.body) {
            (Some(to), Some(body)) => self.transition(at, id, update_id, to, body.clone()),
            (None, Some(body)) => {
                let status = m.status;
                m.updates.push(MaintenanceUpdate {
                    id: update_id.clone(),
                    status,
                    body: body.clone(),
                    created_at: at,
                });
            }
            _ => {}
        }
        Ok(Applied::Maintenance(id.clone()))
    }

    pub(crate) fn cancel_maintenance(
        &mut self,
        at: Timestamp,
        id: &Id,
        update_id: &Id,
        body: Option<&str>,
    ) -> Result<Applied, CommandError> {
        let m = self.maintenance(id)?;
        check_transition(m, MaintenanceStatus::Cancelled)?;
        let body = body.unwrap_or("This maintenance has been cancelled.");
        limits::text("body", body, limits::MAX_BODY_CHARS)?;
        self.transition(
            at,
            id,
            update_id,
            MaintenanceStatus::Cancelled,
            body.to_owned(),
        );
        Ok(Applied::Maintenance(id.clone()))
    }

    /// The leader's scheduler asks for this at a window's edge; `at` (leader time) must have
    /// reached the edge, so a node with a fast clock cannot start a maintenance early.
    pub(crate) fn auto_transition_maintenance(
        &mut self,
        at: Timestamp,
        id: &Id,
        update_id: &Id,
        to: MaintenanceStatus,
    ) -> Result<Applied, CommandError> {
        let m = self.maintenance(id)?;
        if !m.auto_transitions {
            return Err(CommandError::precondition(format!(
                "maintenance {id} has automatic transitions turned off"
            )));
        }
        let (edge, body) = match to {
            MaintenanceStatus::InProgress => {
                (m.scheduled_for, "Scheduled maintenance is now in progress.")
            }
            MaintenanceStatus::Completed => (
                m.scheduled_until,
                "Scheduled maintenance has been completed.",
            ),
            other => {
                return Err(CommandError::invalid(
                    "to",
                    format!("automatic transitions go to in_progress or completed, not {other}"),
                ))
            }
        };
        if at < edge {
            return Err(CommandError::precondition(format!(
                "maintenance {id} cannot become {to} before {edge}"
            )));
        }
        check_transition(m, to)?;
        self.transition(at, id, update_id, to, body.to_owned());
        Ok(Applied::Maintenance(id.clone()))
    }

    /// Maintenances whose window edge has passed at `now` and that the leader should move:
    /// `(id, target status)`. Read-only; the leader proposes the transitions.
    pub fn due_maintenance_transitions(&self, now: Timestamp) -> Vec<(Id, MaintenanceStatus)> {
        self.maintenances
            .values()
            .filter(|m| m.auto_transitions)
            .filter_map(|m| match m.status {
                MaintenanceStatus::Scheduled if now >= m.scheduled_until => {
                    // The whole window passed unnoticed (cluster down): start, then complete.
                    Some((m.id.clone(), MaintenanceStatus::InProgress))
                }
                MaintenanceStatus::Scheduled if now >= m.scheduled_for => {
                    Some((m.id.clone(), MaintenanceStatus::InProgress))
                }
                MaintenanceStatus::InProgress | MaintenanceStatus::Verifying
                    if now >= m.scheduled_until =>
                {
                    Some((m.id.clone(), MaintenanceStatus::Completed))
                }
                _ => None,
            })
            .collect()
    }

    /// Moves an already-checked maintenance to `to`, posts the update and adjusts components.
    fn transition(
        &mut self,
        at: Timestamp,
        id: &Id,
        update_id: &Id,
        to: MaintenanceStatus,
        body: String,
    ) {
        let Some(m) = self.maintenances.get_mut(id) else {
            return;
        };
        let from = m.status;
        m.status = to;
        m.updated_at = at;
        if to == MaintenanceStatus::InProgress && m.started_at.is_none() {
            m.started_at = Some(at);
        }
        if to.is_finished() {
            m.completed_at = Some(at);
        }
        m.updates.push(MaintenanceUpdate {
            id: update_id.clone(),
            status: to,
            body,
            created_at: at,
        });
        let components: Vec<Id> = m.components.iter().cloned().collect();
        if !from.is_active() && to.is_active() {
            self.put_under_maintenance(at, &components);
        } else if from.is_active() && to.is_finished() {
            self.restore_after_maintenance(at, id, &components);
        }
    }

    /// Operational components go under maintenance; ones already degraded keep their status.
    fn put_under_maintenance(&mut self, at: Timestamp, ids: &[Id]) {
        for cid in ids {
            if let Some(c) = self.components.get_mut(cid) {
                if !c.is_group && c.status == ComponentStatus::Operational {
                    c.set_status(at, ComponentStatus::UnderMaintenance);
                }
            }
        }
    }

    /// Components under maintenance return to operational unless another active maintenance
    /// (other than `ending`) still covers them.
    fn restore_after_maintenance(&mut self, at: Timestamp, ending: &Id, ids: &[Id]) {
        for cid in ids {
            let still_covered = self
                .maintenances
                .values()
                .any(|m| &m.id != ending && m.status.is_active() && m.components.contains(cid));
            if still_covered {
                continue;
            }
            if let Some(c) = self.components.get_mut(cid) {
                if c.status == ComponentStatus::UnderMaintenance {
                    c.set_status(at, ComponentStatus::Operational);
                }
            }
        }
    }
}

fn check_window(from: Timestamp, until: Timestamp) -> Result<(), CommandError> {
    if until <= from {
        return Err(CommandError::invalid(
            "scheduled_until",
            format!("{until} is not after scheduled_for {from}"),
        ));
    }
    Ok(())
}

fn check_transition(m: &Maintenance, to: MaintenanceStatus) -> Result<(), CommandError> {
    m.status
        .check_transition_to(to)
        .map_err(|reason| CommandError::IllegalTransition {
            kind: EntityKind::Maintenance,
            from: m.status.to_string(),
            to: to.to_string(),
            reason: reason.to_string(),
        })
}
