//! The page-wide status indicator: a roll-up of component statuses and the impact of
//! unresolved incidents, with the descriptions Statuspage clients display.

use crate::state::State;
use crate::status::{ComponentStatus, Impact, MaintenanceStatus};

/// Ordered from best to worst; `Maintenance` ranks below any outage.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    None,
    Maintenance,
    Minor,
    Major,
    Critical,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::None => "none",
            Indicator::Maintenance => "maintenance",
            Indicator::Minor => "minor",
            Indicator::Major => "major",
            Indicator::Critical => "critical",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Indicator::None => "All Systems Operational",
            Indicator::Maintenance => "Service Under Maintenance",
            Indicator::Minor => "Minor Service Outage",
            Indicator::Major => "Partial System Outage",
            Indicator::Critical => "Major Service Outage",
        }
    }
}

impl State {
    /// A component's status as the public sees it: its effective status (worst child for a
    /// group), with `under_maintenance` reported as `operational` when the page setting
    /// `emit_maintenance_status` is off.
    pub fn public_component_status(&self, c: &crate::Component) -> ComponentStatus {
        match self.component_status(c) {
            ComponentStatus::UnderMaintenance if !self.page.emit_maintenance_status => {
                ComponentStatus::Operational
            }
            s => s,
        }
    }

    /// The page indicator as the public sees it (`maintenance` reads `none` when the page
    /// setting `emit_maintenance_status` is off).
    pub fn public_indicator(&self) -> Indicator {
        match self.indicator() {
            Indicator::Maintenance if !self.page.emit_maintenance_status => Indicator::None,
            i => i,
        }
    }

    pub fn indicator(&self) -> Indicator {
        let from_components =
            self.components
                .values()
                .filter(|c| !c.is_group)
                .map(|c| match c.status {
                    ComponentStatus::Operational => Indicator::None,
                    ComponentStatus::UnderMaintenance => Indicator::Maintenance,
                    ComponentStatus::DegradedPerformance => Indicator::Minor,
                    ComponentStatus::PartialOutage => Indicator::Major,
                    ComponentStatus::MajorOutage => Indicator::Critical,
                });
        let from_incidents =
            self.incidents
                .values()
                .filter(|i| i.status.is_open())
                .map(|i| match i.impact {
                    Impact::None => Indicator::None,
                    Impact::Minor => Indicator::Minor,
                    Impact::Major => Indicator::Major,
                    Impact::Critical => Indicator::Critical,
                });
        let from_maintenance = self
            .maintenances
            .values()
            .filter(|m| m.status == MaintenanceStatus::InProgress)
            .map(|_| Indicator::Maintenance);
        from_components
            .chain(from_incidents)
            .chain(from_maintenance)
            .max()
            .unwrap_or(Indicator::None)
    }
}
