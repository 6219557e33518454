//! What the commands carry: new entities and patches, as the admin API's requests give them
//! (ids pending until the leader stamps them).

use serde::{Deserialize, Serialize};

use crate::entities::PayloadFormat;
use crate::ids::{Id, Timestamp};
use crate::status::{ComponentStatus, Impact, IncidentStatus, MaintenanceStatus};

/// Page settings to change; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagePatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub time_zone: Option<String>,
    pub emit_maintenance_status: Option<bool>,
    /// Absent from the entries of builds before self-service subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_subscriptions: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_subscriptions: Option<bool>,
    /// The subscriber mails' header and footer text ("" removes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_footer: Option<String>,
}

/// One component's new status, as part of an incident update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentChange {
    pub component_id: Id,
    pub status: ComponentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewComponent {
    pub name: String,
    pub description: Option<String>,
    /// `None`: after the last sibling.
    pub position: Option<u32>,
    pub status: ComponentStatus,
    pub group_id: Option<Id>,
    pub is_group: bool,
    pub showcase: bool,
    pub only_show_if_degraded: bool,
}

/// Fields left `None` keep their value. `group_id: Some(None)` moves a component out of its group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub position: Option<u32>,
    pub group_id: Option<Option<Id>>,
    pub showcase: Option<bool>,
    pub only_show_if_degraded: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIncident {
    pub name: String,
    pub status: IncidentStatus,
    pub impact: Impact,
    /// The first update's text.
    pub body: String,
    /// `None`: the command's time.
    pub started_at: Option<Timestamp>,
    pub component_changes: Vec<ComponentChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentUpdateSpec {
    /// `None`: keep the current status.
    pub status: Option<IncidentStatus>,
    pub impact: Option<Impact>,
    pub name: Option<String>,
    pub body: String,
    pub component_changes: Vec<ComponentChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMaintenance {
    pub name: String,
    pub body: String,
    pub scheduled_for: Timestamp,
    pub scheduled_until: Timestamp,
    pub components: Vec<Id>,
    pub auto_transitions: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenancePatch {
    pub name: Option<String>,
    pub scheduled_for: Option<Timestamp>,
    pub scheduled_until: Option<Timestamp>,
    pub components: Option<Vec<Id>>,
    pub status: Option<MaintenanceStatus>,
    /// Posted as an update when present (required with a status change).
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSubscriber {
    pub url: String,
    pub component_ids: Vec<Id>,
    pub description: Option<String>,
    /// Chosen by the leader (`whsec_` + base64 of 24 random bytes).
    pub secret: String,
    pub format: PayloadFormat,
    pub owner: Option<String>,
}

/// One row of an [`super::Command::ImportSubscribers`]: the id (pending until the leader stamps
/// it) and what `AddSubscriber` would carry. A row that brings its own secret (a page moving
/// from another provider, whose receivers already verify it) keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedSubscriber {
    pub id: Id,
    pub spec: NewSubscriber,
}
