//! The status enumerations, spelled as the Statuspage v2 format spells them, with the
//! transition rules of each life-cycle.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CommandError;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the wire spelling; the error names `field` and lists the accepted values.
            pub fn parse(field: &str, s: &str) -> Result<Self, CommandError> {
                s.parse().map_err(|_| CommandError::invalid(
                    field,
                    format!(concat!("{:?} is not a ", $what, " (expected one of: {})"), s,
                        [$($text),+].join(", ")),
                ))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }
    };
}

string_enum!(
    /// A component's status. Variants are ordered from best to worst.
    ComponentStatus, "component status" {
        Operational => "operational",
        UnderMaintenance => "under_maintenance",
        DegradedPerformance => "degraded_performance",
        PartialOutage => "partial_outage",
        MajorOutage => "major_outage",
    }
);

string_enum!(
    /// An incident's status: open (investigating, identified, monitoring), then resolved, then
    /// optionally postmortem.
    IncidentStatus, "incident status" {
        Investigating => "investigating",
        Identified => "identified",
        Monitoring => "monitoring",
        Resolved => "resolved",
        Postmortem => "postmortem",
    }
);

string_enum!(
    /// An incident's impact, ordered from least to most severe.
    Impact, "impact" {
        None => "none",
        Minor => "minor",
        Major => "major",
        Critical => "critical",
    }
);

string_enum!(
    /// A scheduled maintenance's status. `Cancelled` is statusmesh's own: a maintenance called
    /// off before or during its window.
    MaintenanceStatus, "maintenance status" {
        Scheduled => "scheduled",
        InProgress => "in_progress",
        Verifying => "verifying",
        Completed => "completed",
        Cancelled => "cancelled",
    }
);

impl IncidentStatus {
    pub fn is_open(self) -> bool {
        matches!(
            self,
            IncidentStatus::Investigating | IncidentStatus::Identified | IncidentStatus::Monitoring
        )
    }

    /// Whether an update may move an incident from `self` to `to`. Open statuses move freely
    /// among themselves and to resolved; a resolved incident takes only further `resolved`
    /// notes (reopening means a new incident); `postmortem` is reached only by publishing one.
    pub fn check_update_to(self, to: IncidentStatus) -> Result<(), TransitionRefused> {
        use IncidentStatus::*;
        match (self, to) {
            // A note on an incident whose postmortem is out keeps it in postmortem.
            (Postmortem, Postmortem) => Ok(()),
            (_, Postmortem) => Err(TransitionRefused::PostmortemByPublishing),
            (Investigating | Identified | Monitoring, _) => Ok(()),
            (Resolved | Postmortem, Resolved) => Ok(()),
            (Resolved | Postmortem, _) => Err(TransitionRefused::Reopening),
        }
    }
}

impl MaintenanceStatus {
    pub fn is_active(self) -> bool {
        matches!(
            self,
            MaintenanceStatus::InProgress | MaintenanceStatus::Verifying
        )
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            MaintenanceStatus::Completed | MaintenanceStatus::Cancelled
        )
    }

    /// Maintenances only move forward: scheduled -> in_progress -> verifying -> completed, with
    /// in_progress -> completed allowed directly and cancellation before completion.
    pub fn check_transition_to(self, to: MaintenanceStatus) -> Result<(), TransitionRefused> {
        use MaintenanceStatus::*;
        match (self, to) {
            (Scheduled, InProgress | Cancelled)
            | (InProgress, Verifying | Completed | Cancelled)
            | (Verifying, Completed | Cancelled) => Ok(()),
            (Completed | Cancelled, _) => Err(TransitionRefused::Finished),
            (a, b) if a == b => Err(TransitionRefused::AlreadyThere),
            _ => Err(TransitionRefused::Backwards),
        }
    }
}

/// Why a status transition is not allowed (the reason in
/// [`CommandError::IllegalTransition`](crate::CommandError::IllegalTransition)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionRefused {
    #[error("publish a postmortem instead")]
    PostmortemByPublishing,
    #[error("a resolved incident cannot be reopened; create a new incident")]
    Reopening,
    #[error("the maintenance is finished")]
    Finished,
    #[error("the maintenance is already in that status")]
    AlreadyThere,
    #[error("maintenances only move forward: scheduled -> in_progress -> verifying -> completed")]
    Backwards,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_field_and_choices() {
        assert_eq!(
            ComponentStatus::parse("status", "major_outage").unwrap(),
            ComponentStatus::MajorOutage
        );
        let e = ComponentStatus::parse("status", "down")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("status") && e.contains("\"down\"") && e.contains("partial_outage"),
            "{e}"
        );
    }

    #[test]
    fn serde_uses_wire_spelling() {
        let s = serde_json::to_string(&MaintenanceStatus::InProgress).unwrap();
        assert_eq!(s, "\"in_progress\"");
    }

    #[test]
    fn component_statuses_order_by_severity() {
        assert!(ComponentStatus::MajorOutage > ComponentStatus::PartialOutage);
        assert!(ComponentStatus::DegradedPerformance > ComponentStatus::UnderMaintenance);
    }

    #[test]
    fn incident_transitions() {
        use IncidentStatus::*;
        assert!(Investigating.check_update_to(Monitoring).is_ok());
        assert!(Monitoring.check_update_to(Investigating).is_ok());
        assert!(Resolved.check_update_to(Resolved).is_ok());
        assert!(Resolved.check_update_to(Investigating).is_err());
        assert!(Investigating.check_update_to(Postmortem).is_err());
    }

    #[test]
    fn maintenance_transitions() {
        use MaintenanceStatus::*;
        assert!(Scheduled.check_transition_to(InProgress).is_ok());
        assert!(Scheduled.check_transition_to(Verifying).is_err());
        assert!(Completed.check_transition_to(InProgress).is_err());
        assert!(Verifying.check_transition_to(InProgress).is_err());
    }
}
