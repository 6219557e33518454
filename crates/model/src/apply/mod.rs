//! Command handlers, one file per entity. Each handler validates fully, then mutates.

mod component;
mod incident;
mod maintenance;
mod outbox;
mod subscriber;

use std::collections::BTreeSet;

use crate::command::ComponentChange;
use crate::entities::AffectedComponent;
use crate::error::CommandError;
use crate::ids::Id;
use crate::limits;
use crate::state::State;

impl State {
    /// Checks a list of component status changes (exist, not a group, no duplicates) and
    /// returns what each would record, without changing anything.
    pub(crate) fn plan_component_changes(
        &self,
        changes: &[ComponentChange],
    ) -> Result<Vec<AffectedComponent>, CommandError> {
        limits::count(
            "component_changes",
            changes.len(),
            limits::MAX_COMPONENTS_PER_CHANGE,
        )?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            let c = self.component(&change.component_id)?;
            if c.is_group {
                return Err(CommandError::invalid(
                    "component_changes",
                    format!(
                        "component {} is a group; its status follows its components",
                        c.id
                    ),
                ));
            }
            if !seen.insert(&change.component_id) {
                return Err(CommandError::invalid(
                    "component_changes",
                    format!("component {} is listed twice", c.id),
                ));
            }
            out.push(AffectedComponent {
                component_id: c.id.clone(),
                name: c.name.clone(),
                old_status: c.status,
                new_status: change.status,
            });
        }
        Ok(out)
    }

    /// Checks that every id names an existing, non-group component, with no duplicates.
    pub(crate) fn check_component_set(
        &self,
        field: &str,
        ids: &[Id],
    ) -> Result<BTreeSet<Id>, CommandError> {
        limits::count(field, ids.len(), limits::MAX_COMPONENTS)?;
        let mut set = BTreeSet::new();
        for id in ids {
            self.component(id)?;
            if !set.insert(id.clone()) {
                return Err(CommandError::invalid(
                    field,
                    format!("component {id} is listed twice"),
                ));
            }
        }
        Ok(set)
    }
}
