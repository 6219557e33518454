use crate::command::{Applied, ComponentPatch, NewComponent};
use crate::entities::Component;
use crate::error::{CommandError, EntityKind};
use crate::ids::{Id, Timestamp};
use crate::limits;
use crate::state::State;
use crate::status::ComponentStatus;

impl State {
    pub(crate) fn create_component(
        &mut self,
        at: Timestamp,
        id: &Id,
        spec: &NewComponent,
    ) -> Result<Applied, CommandError> {
        self.check_new_id(EntityKind::Component, id)?;
        limits::count(
            "components",
            self.components.len() + 1,
            limits::MAX_COMPONENTS,
        )?;
        limits::text("name", &spec.name, limits::MAX_NAME_CHARS)?;
        if let Some(d) = &spec.description {
            limits::optional_text("description", d, limits::MAX_DESCRIPTION_CHARS)?;
        }
        if let Some(group) = &spec.group_id {
            if spec.is_group {
                return Err(CommandError::invalid(
                    "group_id",
                    "a group cannot belong to another group (two levels only)",
                ));
            }
            self.check_group(group)?;
        }
        let position = spec
            .position
            .unwrap_or_else(|| self.next_position(spec.group_id.as_ref()));
        let initial = if spec.is_group {
            ComponentStatus::Operational
        } else {
            spec.status
        };
        let mut component = Component {
            id: id.clone(),
            name: spec.name.trim().to_owned(),
            description: spec.description.clone().filter(|d| !d.trim().is_empty()),
            position,
            status: initial,
            group_id: spec.group_id.clone(),
            is_group: spec.is_group,
            showcase: spec.showcase,
            only_show_if_degraded: spec.only_show_if_degraded,
            created_at: at,
            updated_at: at,
            status_log: Vec::new(),
        };
        component.set_status(at, initial);
        self.components.insert(id.clone(), component);
        Ok(Applied::Component(id.clone()))
    }

    pub(crate) fn update_component(
        &mut self,
        at: Timestamp,
        id: &Id,
        patch: &ComponentPatch,
    ) -> Result<Applied, CommandError> {
        let current = self.component(id)?;
        if let Some(name) = &patch.name {
            limits::text("name", name, limits::MAX_NAME_CHARS)?;
        }
        if let Some(Some(d)) = &patch.description {
            limits::optional_text("description", d, limits::MAX_DESCRIPTION_CHARS)?;
        }
        if let Some(Some(group)) = &patch.group_id {
            if current.is_group {
                return Err(CommandError::invalid(
                    "group_id",
                    "a group cannot belong to another group (two levels only)",
                ));
            }
            self.check_group(group)?;
        }
        let c = self
            .components
            .get_mut(id)
            .ok_or_else(|| CommandError::not_found(EntityKind::Component, id))?;
        if let Some(name) = &patch.name {
            c.name = name.trim().to_owned();
        }
        if let Some(d) = &patch.description {
            c.description = d.clone().filter(|d| !d.trim().is_empty());
        }
        if let Some(p) = patch.position {
            c.position = p;
        }
        if let Some(g) = &patch.group_id {
            c.group_id = g.clone();
        }
        if let Some(s) = patch.showcase {
            c.showcase = s;
        }
        if let Some(s) = patch.only_show_if_degraded {
            c.only_show_if_degraded = s;
        }
        c.updated_at = at;
        Ok(Applied::Component(id.clone()))
    }

    pub(crate) fn set_component_status(
        &mut self,
        at: Timestamp,
        id: &Id,
        status: ComponentStatus,
    ) -> Result<Applied, CommandError> {
        let current = self.component(id)?;
        if current.is_group {
            return Err(CommandError::invalid(
                "id",
                format!("component {id} is a group; its status follows its components"),
            ));
        }
        if let Some(c) = self.components.get_mut(id) {
            c.set_status(at, status);
        }
        Ok(Applied::Component(id.clone()))
    }

    /// Deletes a component. A group must be emptied first. References from open maintenances
    /// and subscriber filters are dropped; incident history keeps the name it recorded.
    ///
    /// A subscriber whose filter named only deleted components is disabled rather than left
    /// with an empty filter, which would mean "every event".
    pub(crate) fn delete_component(
        &mut self,
        at: Timestamp,
        id: &Id,
    ) -> Result<Applied, CommandError> {
        let current = self.component(id)?;
        if current.is_group {
            let n = self.children(id).count();
            if n > 0 {
                return Err(CommandError::precondition(format!(
                    "group {id} still has {n} components; move or delete them first"
                )));
            }
        }
        self.components.remove(id);
        for m in self.maintenances.values_mut() {
            if !m.status.is_finished() {
                m.components.remove(id);
            }
        }
        let mut emptied = Vec::new();
        // Found first, then changed: a write to the subscriber map copies the nodes it
        // touches (it shares them with snapshots being written), so only touch those that
        // change.
        let filtering: Vec<Id> = self
            .subscribers
            .values()
            .filter(|s| s.component_ids.contains(id))
            .map(|s| s.id.clone())
            .collect();
        for sub in filtering {
            if let Some(s) = self.subscribers.get_mut(&sub) {
                s.component_ids.remove(id);
                if s.component_ids.is_empty() {
                    emptied.push(sub);
                }
            }
        }
        for sub in emptied {
            self.disable_subscriber(
                at,
                &sub,
                format!("every component in its filter was deleted (last: {id})"),
            );
        }
        Ok(Applied::ComponentDeleted(id.clone()))
    }

    fn check_group(&self, group: &Id) -> Result<(), CommandError> {
        let g = self.component(group)?;
        if !g.is_group {
            return Err(CommandError::invalid(
                "group_id",
                format!("component {group} is not a group"),
            ));
        }
        Ok(())
    }

    fn next_position(&self, group: Option<&Id>) -> u32 {
        self.components
            .values()
            .filter(|c| c.group_id.as_ref() == group)
            .map(|c| c.position.saturating_add(1))
            .max()
            .unwrap_or(1)
    }
}
